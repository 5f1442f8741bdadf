;; Definitions for the Needle chunker. Captures:
;;   @definition.function  function (a method when it sits in a class)
;;   @definition.method    method (also outside a class when it names its owner: receiver or Owner::name)
;;   @definition.class     class-like: one chunk with method bodies left out
;;   @definition.namespace qualifies names inside it, no chunk of its own
;;   @name                 the name; @name.type a type expression naming it; @receiver the owner type
;;   captures starting with _ are only used by predicates


; pub fn add(a: i32, b: i32) i32 { ... } (an extern fn without a body is no chunk); in a container, a method: Point.len
(function_declaration name: (identifier) @name body: (block)) @definition.function

; Zig's types are values: const Point = struct { ... } (enum, union, opaque alike) is the class Point
(variable_declaration
  (identifier) @name
  [(struct_declaration) (enum_declaration) (union_declaration) (opaque_declaration)]) @definition.class

; test "add works" { ... }: a function named after its description (ranked as a test)
(test_declaration (string (string_content) @name)) @definition.function

(test_declaration (identifier) @name) @definition.function
