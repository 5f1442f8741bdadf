;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

(function_definition name: (identifier) @name) @definition.function

(class_definition name: (identifier) @name) @definition.class
