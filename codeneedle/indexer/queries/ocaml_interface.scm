;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; An .mli interface declares what its .ml defines: val push : 'a -> 'a t -> unit is the stub of `let push`, ranked
; below it (ranking._STUB_SUFFIXES) and leading to it (declarations)
(value_specification (value_name) @name) @definition.function

(external (value_name) @name) @definition.function

(module_binding (module_name) @name module_type: (signature)) @definition.class

(module_type_definition (module_type_name) @name) @definition.class

(type_binding name: (type_constructor) @name) @definition.class

(class_definition (class_binding (class_name) @name)) @definition.class
