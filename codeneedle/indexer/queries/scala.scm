;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; `def f(x: Int): Int` without a body (abstract, in a trait) is a function_declaration: it stays in its type's chunk
(function_definition name: (_) @name) @definition.function

(class_definition name: (identifier) @name) @definition.class

(object_definition name: (identifier) @name) @definition.class

(trait_definition name: (identifier) @name) @definition.class

(enum_definition name: (identifier) @name) @definition.class

; extension (s: String) { def shout = ... } -> String.shout
(extension_definition parameters: (parameters . (parameter type: (_) @name.type))) @definition.class

; type Row = Map[String, Any]
(type_definition name: (type_identifier) @name) @definition.class

; package a.b { ... } (a package clause without braces names the file's package, like Java's: no qualifier)
(package_clause name: (package_identifier) @name body: (template_body)) @definition.namespace
