;; Definitions for the Needle chunker. Captures:
;;   @definition.function  function (a method when it sits in a class)
;;   @definition.method    method (also outside a class when it names its owner: receiver or Owner::name)
;;   @definition.class     class-like: one chunk with method bodies left out
;;   @definition.namespace qualifies names inside it, no chunk of its own
;;   @name                 the name; @name.type a type expression naming it; @receiver the owner type
;;   captures starting with _ are only used by predicates

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
