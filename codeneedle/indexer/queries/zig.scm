;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; pub fn add(a: i32, b: i32) i32 { ... } (an extern fn without a body is no chunk); in a container, a method: Point.len
(function_declaration name: (identifier) @name body: (block)) @definition.function

; Zig's types are values: const Point = struct { ... } (enum, union, opaque alike) is the class Point
(variable_declaration
  (identifier) @name
  [(struct_declaration) (enum_declaration) (union_declaration) (opaque_declaration)]) @definition.class

; test "add works" { ... }: a function named after its description (ranked as a test)
(test_declaration (string (string_content) @name)) @definition.function

(test_declaration (identifier) @name) @definition.function
