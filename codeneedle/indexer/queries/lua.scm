;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

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

; tables of functions name their fields after the table: local M = { add = function(a, b) ... end } -> M.add,
; M.util = { f = function() end } and { util = { f = ... } } -> M.util.f (the inner assignment of `local M = {...}`
; is the one matched: matching the declaration too would name them M.M.add)
(assignment_statement
  (variable_list . name: [(identifier) (dot_index_expression)] @name .)
  (expression_list . value: (table_constructor) .)) @definition.namespace

(field name: (identifier) @name value: (table_constructor)) @definition.namespace

; only in a table that is named or returned (a module): one passed to a call (`setmetatable(t, { __index = function
; ... end })`) is the call's detail, left in its block
(assignment_statement
  (expression_list . value: (table_constructor (field name: (identifier) @name value: (function_definition))
                                                @definition.method) .))

(field value: (table_constructor (field name: (identifier) @name value: (function_definition)) @definition.method))

(return_statement
  (expression_list . (table_constructor (field name: (identifier) @name value: (function_definition))
                                        @definition.method) .))
