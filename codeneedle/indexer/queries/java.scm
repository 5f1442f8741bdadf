;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; methods without a body (abstract, interface) stay in their class's chunk
(method_declaration name: (identifier) @name body: (block)) @definition.method

(constructor_declaration name: (identifier) @name) @definition.method

(compact_constructor_declaration name: (identifier) @name) @definition.method

(class_declaration name: (identifier) @name) @definition.class

(interface_declaration name: (identifier) @name) @definition.class

(enum_declaration name: (identifier) @name) @definition.class

(record_declaration name: (identifier) @name) @definition.class

(annotation_type_declaration name: (identifier) @name) @definition.class
