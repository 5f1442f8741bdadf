;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

(function_declaration name: (identifier) @name) @definition.function

(method_declaration
  receiver: (parameter_list) @receiver
  name: (field_identifier) @name) @definition.method

; every named type: structs and interfaces, and `type HandlerFunc func(...)`, `type Level int`
(type_spec name: (type_identifier) @name) @definition.class

; type Alias = Other
(type_alias name: (type_identifier) @name) @definition.class
