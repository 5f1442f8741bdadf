;; Definitions for the Needle chunker. Captures:
;;   @definition.function  function (a method when it sits in a class)
;;   @definition.method    method (also outside a class when it names its owner: receiver or Owner::name)
;;   @definition.class     class-like: one chunk with method bodies left out
;;   @definition.namespace qualifies names inside it, no chunk of its own
;;   @name                 the name; @name.type a type expression naming it; @receiver the owner type
;;   captures starting with _ are only used by predicates

(method name: (_) @name) @definition.function

; def self.name (receiver self is the enclosing class) / def Owner.name
(singleton_method object: (_) @receiver name: (_) @name) @definition.method

(class name: (_) @name) @definition.class

(module name: (_) @name) @definition.class

; class << self: its methods belong to the enclosing class
(singleton_class) @definition.namespace
