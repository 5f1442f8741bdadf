;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; protocol requirements (no body) stay in the protocol's chunk
(function_declaration name: (simple_identifier) @name body: (function_body)) @definition.function

; operators: static func == (lhs: P, rhs: P) -> P.==
(function_declaration "func" . _ @name body: (function_body)) @definition.function

(init_declaration "init" @name body: (function_body)) @definition.method

(deinit_declaration "deinit" @name body: (function_body)) @definition.method

; subscript(index: Int) -> T { ... } -> Vec.subscript; a protocol's `{ get set }` has no statements and stays there
(subscript_declaration "subscript" @name
  (computed_property [(statements) (computed_getter (statements)) (computed_setter (statements))
                      (computed_modify (statements))])) @definition.method

; macros: public macro Union() = #externalMacro(...), used as @Union (as Rust's macro_rules!, a function)
(macro_declaration (simple_identifier) @name) @definition.function

; computed properties: var area: Double { width * height }
(property_declaration name: (pattern bound_identifier: (simple_identifier) @name) computed_value: (computed_property))
  @definition.method

; class, struct, enum, actor
(class_declaration name: (type_identifier) @name) @definition.class

; extension Invoice: Codable { ... } -> Invoice.method
(class_declaration name: (user_type) @name) @definition.class

(protocol_declaration name: (type_identifier) @name) @definition.class

(typealias_declaration name: (type_identifier) @name) @definition.class
