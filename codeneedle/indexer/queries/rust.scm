;; Definitions for the Needle chunker. Captures:
;;   @definition.function  function (a method when it sits in a class)
;;   @definition.method    method (also outside a class when it names its owner: receiver or Owner::name)
;;   @definition.class     class-like: one chunk with method bodies left out
;;   @definition.namespace qualifies names inside it, no chunk of its own
;;   @name                 the name; @name.type a type expression naming it; @receiver the owner type
;;   captures starting with _ are only used by predicates

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
