;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; `namespace Shop` and a file's `module Shop.Inventory` qualify what follows them (Shop.Inventory.add)
(namespace name: (long_identifier) @name) @definition.namespace

(named_module name: (long_identifier) @name) @definition.namespace

; a nested `module Report =` is class-like: its lets are its members (Report.lines)
(module_defn (identifier) @name) @definition.class

; each type of a `type ... and ...` group: records, unions, classes, interfaces
(type_definition (_ (type_name type_name: (identifier) @name)) @definition.class)

; a let with parameters (`let add x y =`, `let rec f = ... and g = ...` as one); a value (`let limit = 100`) is not,
; unless bound to a lambda (`let handler = fun x -> ...`)
(function_or_value_defn (function_declaration_left . (identifier) @name)) @definition.function

(function_or_value_defn
  (function_declaration_left . (access_modifier) . (identifier) @name)) @definition.function

(function_or_value_defn
  (value_declaration_left . (identifier_pattern . (long_identifier_or_op . (identifier) @name)))
  body: (fun_expression)) @definition.function

; members with code: `member this.Count(code) = ...`, `static member Empty = ...`, `static member (+) ...`, `new() =`
; (an abstract member's signature stays in its type's chunk)
(member_defn (method_or_prop_defn name: (property_or_ident method: (_) @name))) @definition.method

(member_defn (method_or_prop_defn name: (property_or_ident . [(identifier) (op_identifier)] @name .)))
  @definition.method

(member_defn (additional_constr_defn "new" @name)) @definition.method
