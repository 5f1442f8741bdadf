;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; Objective-C methods are named by their selector after their class: RCTBridge.initWithDelegate:launchOptions:,
; RCTBridge.dealloc (the chunker spells the selector from the method's keywords); a category's methods are its
; class's. Declarations in an @interface or @protocol have no body and stay in its chunk.
(method_definition . (method_type)? . (identifier) @name) @definition.method

(class_implementation . (identifier) @name) @definition.class

(class_interface . (identifier) @name) @definition.class

(protocol_declaration . (identifier) @name) @definition.class

; C, as in c.scm: functions, structs, unions, enums, typedefs, prototypes and function-like macros
(function_definition declarator: (_) @name) @definition.function

(struct_specifier name: (_) @name body: (field_declaration_list)) @definition.class

(union_specifier name: (_) @name body: (field_declaration_list)) @definition.class

(enum_specifier name: (_) @name body: (enumerator_list)) @definition.class

(type_definition
  type: [(struct_specifier body: (field_declaration_list))
         (union_specifier body: (field_declaration_list))
         (enum_specifier body: (enumerator_list))]
  declarator: (type_identifier) @name) @definition.class

(declaration declarator: (function_declarator declarator: (identifier)) @name) @definition.function

(declaration declarator: (pointer_declarator declarator: (function_declarator declarator: (identifier))) @name)
  @definition.function

(preproc_function_def name: (identifier) @name) @definition.function
