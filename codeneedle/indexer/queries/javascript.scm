;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

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
  (field_definition
    property: (_) @name
    value: [(arrow_function) (function_expression) (generator_function)]) @definition.method)

(class_declaration name: (identifier) @name) @definition.class

; Object literals name their methods (old-style modules): `var api = module.exports = { key: function () {},
; other() {} }` -> api.key, api.other. The object's variable (or assignment target) qualifies them.
(variable_declarator name: (identifier) @name value: (object)) @definition.namespace

(assignment_expression left: (_) @name right: (object)) @definition.namespace

(object
  (pair
    key: [(property_identifier) (string) (number)] @name
    value: [(arrow_function) (function_expression) (generator_function)]) @definition.method)

(object (method_definition name: (_) @name) @definition.method)

(variable_declarator
  name: (identifier) @name
  value: (assignment_expression right: (object))) @definition.namespace

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
