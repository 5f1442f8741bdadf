;; Definitions for the Needle chunker. Captures:
;;   @definition.function  function (a method when it sits in a class)
;;   @definition.method    method (also outside a class when it names its owner: receiver or Owner::name)
;;   @definition.class     class-like: one chunk with method bodies left out
;;   @definition.namespace qualifies names inside it, no chunk of its own
;;   @name                 the name; @name.type a type expression naming it; @receiver the owner type
;;   captures starting with _ are only used by predicates


; An .mli interface declares what its .ml defines: val push : 'a -> 'a t -> unit is the stub of `let push`, ranked
; below it (ranking._STUB_SUFFIXES) and leading to it (declarations)
(value_specification (value_name) @name) @definition.function

(external (value_name) @name) @definition.function

(module_binding (module_name) @name module_type: (signature)) @definition.class

(module_type_definition (module_type_name) @name) @definition.class

(type_binding name: (type_constructor) @name) @definition.class

(class_definition (class_binding (class_name) @name)) @definition.class
