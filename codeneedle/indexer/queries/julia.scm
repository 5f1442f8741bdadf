;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; function area(s::Circle) ... end, typed (::Int) or with a where clause; Base.show extends another module's
; function and keeps its name (Base.show); `function (c::Circle)(x)` (a functor) is named after its type
(function_definition
  (signature [(call_expression . [(identifier) (field_expression)] @name)
              (typed_expression . (call_expression . [(identifier) (field_expression)] @name))
              (where_expression . (call_expression . [(identifier) (field_expression)] @name))
              (where_expression . (typed_expression . (call_expression . [(identifier) (field_expression)] @name)))
              (call_expression . (parenthesized_expression (typed_expression . (_) . (identifier) @name)))]))
  @definition.function

; the short form: area(s::Square) = s.side^2 (typed or with a where clause alike)
(assignment
  . [(call_expression . [(identifier) (field_expression)] @name)
     (typed_expression . (call_expression . [(identifier) (field_expression)] @name))
     (where_expression . (call_expression . [(identifier) (field_expression)] @name))
     (where_expression . (typed_expression . (call_expression . [(identifier) (field_expression)] @name)))]
  (operator) @_op
  (#eq? @_op "=")) @definition.function

(macro_definition (signature (call_expression . (identifier) @name))) @definition.function

; struct Point{T} <: Shape ... end / abstract type Shape end
(struct_definition (type_head [(identifier) @name
                               (parametrized_type_expression . (identifier) @name)
                               (binary_expression . [(identifier) @name
                                                     (parametrized_type_expression . (identifier) @name)])]))
  @definition.class

(abstract_definition (type_head [(identifier) @name
                                 (parametrized_type_expression . (identifier) @name)
                                 (binary_expression . [(identifier) @name
                                                       (parametrized_type_expression . (identifier) @name)])]))
  @definition.class

; module Shapes ... end qualifies what it defines (Shapes.area) and, usually the whole file, is no chunk itself
(module_definition name: (identifier) @name) @definition.namespace
