;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

(function_definition name: (name) @name) @definition.function

; abstract and interface methods (no body) stay in their type's chunk
(method_declaration name: (name) @name body: (compound_statement)) @definition.method

(class_declaration name: (name) @name) @definition.class

(interface_declaration name: (name) @name) @definition.class

(trait_declaration name: (name) @name) @definition.class

(enum_declaration name: (name) @name) @definition.class

; `namespace App\Billing { ... }`, or `namespace App\Billing;` up to the next namespace statement (chunker: open
; scopes); App\Billing qualifies as App.Billing
(namespace_definition name: (namespace_name) @name) @definition.namespace
