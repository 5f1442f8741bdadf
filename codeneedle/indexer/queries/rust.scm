;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

(function_item name: (identifier) @name) @definition.function

(struct_item name: (type_identifier) @name) @definition.class

(enum_item name: (type_identifier) @name) @definition.class

(union_item name: (type_identifier) @name) @definition.class

(trait_item name: (type_identifier) @name) @definition.class

; impl Type / impl Trait for Type: methods inside are Type.method
(impl_item type: (_) @name.type) @definition.class

(mod_item name: (identifier) @name body: (declaration_list)) @definition.namespace

; macro_rules! name { ... }: called like a function, documented like one
(macro_definition name: (identifier) @name) @definition.function

; type Name<T> = ...;
(type_item name: (type_identifier) @name) @definition.class
