;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

(method name: (_) @name) @definition.function

; def self.name (receiver self is the enclosing class) / def Owner.name
(singleton_method object: (_) @receiver name: (_) @name) @definition.method

(class name: (_) @name) @definition.class

(module name: (_) @name) @definition.class

; class << self: its methods belong to the enclosing class
(singleton_class) @definition.namespace
