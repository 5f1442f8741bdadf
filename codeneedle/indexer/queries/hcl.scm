;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; A top-level block with labels is one chunk, named as Terraform addresses it (chunker.hcl_name): resource
; "aws_s3_bucket" "logs" is aws_s3_bucket.logs, data "x" "y" data.x.y, module "vpc" module.vpc, variable "cidr"
; var.cidr, output "arn" output.arn, and any other block its type and labels (Packer's source.amazon-ebs.ubuntu,
; Nomad's job.web). Blocks without labels (terraform, locals) and nested ones stay where they are.
(config_file
  (body
    (block . (identifier) @name . [(string_lit) (identifier)]) @definition.class))
