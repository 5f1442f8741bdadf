;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; let push x s = ... / let rec length = function ... and helper x = ... / let ( |> ) x f = f x: each binding with
; parameters, or bound to a function, is a function (a module's are Queue.create); other lets are values, in blocks
(let_binding pattern: [(value_name) (parenthesized_operator)] @name (parameter)) @definition.function

(let_binding pattern: [(value_name) (parenthesized_operator)] @name body: [(function_expression) (fun_expression)])
  @definition.function

; module Queue = struct ... end, a functor module Make (X : S) = struct ... end, module type S = sig ... end
(module_binding (module_name) @name body: (structure)) @definition.class

(module_binding (module_name) @name body: (functor (structure))) @definition.class

(module_type_definition (module_type_name) @name) @definition.class

(type_binding name: (type_constructor) @name) @definition.class

(class_definition (class_binding (class_name) @name)) @definition.class

(method_definition (method_name) @name) @definition.method
