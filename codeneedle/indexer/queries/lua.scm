;; Definitions for the Needle chunker. Captures:
;;   @definition.function  function (a method when it sits in a class)
;;   @definition.method    method (also outside a class when it names its owner: receiver or Owner::name)
;;   @definition.class     class-like: one chunk with method bodies left out
;;   @definition.namespace qualifies names inside it, no chunk of its own
;;   @name                 the name; @name.type a type expression naming it; @receiver the owner type
;;   captures starting with _ are only used by predicates

; function clamp(x) / local function clamp(x)
(function_declaration name: (identifier) @name) @definition.function

; function M.new(n) / function Stack:push(v) -> M.new, Stack.push
(function_declaration name: [(dot_index_expression) (method_index_expression)] @name) @definition.method

; local fmt = function (s) ... end
(variable_declaration
  (assignment_statement
    (variable_list . name: (identifier) @name .)
    (expression_list . value: (function_definition) .))) @definition.function

; fmt = function (s) ... end / M.pop = function (self) ... end
(assignment_statement
  (variable_list . name: (identifier) @name .)
  (expression_list . value: (function_definition) .)) @definition.function

(assignment_statement
  (variable_list . name: (dot_index_expression) @name .)
  (expression_list . value: (function_definition) .)) @definition.method
