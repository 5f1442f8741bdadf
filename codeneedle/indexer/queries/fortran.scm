;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; a module (and a submodule) qualifies its procedures (vectors.norm), and so does a program its internal ones
(module (module_statement (name) @name)) @definition.class

(submodule (submodule_statement (name) @name)) @definition.class

(program (program_statement (name) @name)) @definition.class

(derived_type_definition (derived_type_statement (type_name) @name)) @definition.class

; procedures; an interface block's are declarations only, read in the interface's text
(subroutine (subroutine_statement name: (_) @name)) @definition.function

(function (function_statement name: (_) @name)) @definition.function

(module_procedure (module_procedure_statement name: (_) @name)) @definition.function
