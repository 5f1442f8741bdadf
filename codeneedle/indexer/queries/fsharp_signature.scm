;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; An .fsi signature file: its `val`s are stubs that lead to the .fs's lets (declarations.py), its types and modules
; classes, as in the implementation
(namespace name: (long_identifier) @name) @definition.namespace

(named_module name: (long_identifier) @name) @definition.namespace

(module_defn (identifier) @name) @definition.class

(type_definition (_ (type_name type_name: (identifier) @name)) @definition.class)

(value_definition
  (value_declaration_left . (identifier_pattern . (long_identifier_or_op . (identifier) @name)))) @definition.function
