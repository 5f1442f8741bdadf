;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; the name is the declarator: the chunker follows pointer/function declarators down to the identifier
(function_definition declarator: (_) @name) @definition.function

(struct_specifier name: (_) @name body: (field_declaration_list)) @definition.class

(union_specifier name: (_) @name body: (field_declaration_list)) @definition.class

(enum_specifier name: (_) @name body: (enumerator_list)) @definition.class

; typedef struct { ... } name_t;
(type_definition
  type: [(struct_specifier body: (field_declaration_list))
         (union_specifier body: (field_declaration_list))
         (enum_specifier body: (enumerator_list))]
  declarator: (type_identifier) @name) @definition.class

; function types, a callback's signature: typedef int (*compare_fn)(const void *, const void *); -> compare_fn (as a Go
; `type HandlerFunc func(...)`; a plain `typedef unsigned long size_t;` stays in its block)
(type_definition declarator: [(function_declarator) (pointer_declarator declarator: (function_declarator))] @name)
  @definition.class

; prototypes (`int parse(const char *s);`, `struct node *make(void);`): named stubs, ranked below the definition
; (not `void (*on_signal)(int);`, a variable holding a function pointer: its declarator is in parentheses)
(declaration declarator: (function_declarator declarator: (identifier)) @name) @definition.function

(declaration declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier))) @name)
  @definition.function

; function-like macros: #define MAX(a, b) ...
(preproc_function_def name: (identifier) @name) @definition.function
