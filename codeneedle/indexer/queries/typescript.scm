;; Definitions for the Needle chunker; README.md beside this file says what each capture means.
;; TSX reads this file too (languages._QUERY_FILES): it has TypeScript's node types, plus JSX.

(function_declaration name: (identifier) @name) @definition.function

(generator_function_declaration name: (identifier) @name) @definition.function

; const f = () => {} / var f = function () {}
(lexical_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function

(variable_declaration
  (variable_declarator
    name: (identifier) @name
    value: [(arrow_function) (function_expression) (generator_function)])) @definition.function

; exports.f = function () {} / obj.f = () => {}
(expression_statement
  (assignment_expression
    left: (member_expression) @name
    right: [(arrow_function) (function_expression) (generator_function)])) @definition.function

; Foo.prototype.bar = function () {}
(expression_statement
  (assignment_expression
    left: (member_expression
      object: (member_expression
        property: (property_identifier) @_prototype (#eq? @_prototype "prototype"))) @name
    right: [(arrow_function) (function_expression) (generator_function)])) @definition.method

; methods of classes only: methods of object literals stay in the code around them
(class_body (method_definition name: (_) @name) @definition.method)

(class_body
  (public_field_definition
    name: (_) @name
    value: [(arrow_function) (function_expression) (generator_function)]) @definition.method)

(class_declaration name: (type_identifier) @name) @definition.class

(abstract_class_declaration name: (type_identifier) @name) @definition.class

(interface_declaration name: (type_identifier) @name) @definition.class

(enum_declaration name: (identifier) @name) @definition.class

; type Options = { ... } / type Key = string | number
(type_alias_declaration name: (type_identifier) @name) @definition.class

(internal_module name: (_) @name) @definition.namespace

(module name: (_) @name) @definition.namespace

; Object literals name their methods: `export const api = { key: function () {}, other() {} }` -> api.key.
(variable_declarator name: (identifier) @name value: (object)) @definition.namespace

(variable_declarator
  name: (identifier) @name
  value: (assignment_expression right: (object))) @definition.namespace

(assignment_expression left: (_) @name right: (object)) @definition.namespace

(object
  (pair
    key: [(property_identifier) (string) (number)] @name
    value: [(arrow_function) (function_expression) (generator_function)]) @definition.method)

(object (method_definition name: (_) @name) @definition.method)

; Declarations without a body (`declare function f(): T;` in .d.ts files, overload signatures) are named chunks
; too, so search can rank them below their implementation instead of inside an anonymous window.
(function_signature name: (identifier) @name) @definition.function

; Written without a name, named after the file (a function expression's own name first): `export default function
; () {}`, `export default class {}`, `module.exports = function checked() {}` (chunker.unnamed)
(export_statement value: [(arrow_function) (function_expression) (generator_function)]) @definition.function

(export_statement value: (class)) @definition.class

; const Foo = class { bar() {} } -> Foo, Foo.bar
(lexical_declaration (variable_declarator name: (identifier) @name value: (class))) @definition.class

; Properties defined by a call: `Object.defineProperty(req, 'protocol', { get: function () {} })`,
; `defineGetter(req, 'ip', function () {})` -> req.protocol, req.ip, with the doc comment above the call
(expression_statement
  (call_expression
    function: (member_expression property: (property_identifier) @_define (#eq? @_define "defineProperty"))
    arguments: (arguments . (_) @object . (string) @name
      . (object [(pair key: (property_identifier) @_accessor value: [(function_expression) (arrow_function)])
                 (method_definition name: (property_identifier) @_accessor)])
      (#match? @_accessor "^(get|set|value)$")))) @definition.method

; only define-style helpers: `$(el).on('click', '.row', fn)` or `fs.readFile(path, 'utf8', fn)` define nothing
(expression_statement
  (call_expression
    function: [(identifier) (member_expression)] @_define (#match? @_define "[dD]efine")
    arguments: (arguments . (_) @object . (string) @name . [(function_expression) (arrow_function)] .))) @definition.method
