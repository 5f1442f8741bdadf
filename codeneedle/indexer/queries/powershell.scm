;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; function and filter Verb-Noun { ... }
(function_statement (function_name) @name) @definition.function

(class_statement . (simple_name) @name) @definition.class

(enum_statement . (simple_name) @name) @definition.class

; a class's methods and constructors (Stack.Push, Stack.Stack)
(class_method_definition (simple_name) @name) @definition.method
