;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; tree-sitter-dart puts a function's signature and its body side by side: the signature is captured and the chunker
; runs its range on over the function_body after it. A signature without a body (abstract, external) is no chunk.

; int add(int a, int b) => a + b; / int get answer => 42; / set x(v) {} (top level or in a class)
((function_signature name: (identifier) @name) @definition.function . (function_body))
((getter_signature name: (identifier) @name) @definition.function . (function_body))
((setter_signature name: (identifier) @name) @definition.function . (function_body))

; members: double distanceTo(Point other) {...}, operator +, A(this.x) {...}, A.named() : x = 1 {...}, factory A.of()
((method_signature [(function_signature name: (identifier) @name)
                    (getter_signature name: (identifier) @name)
                    (setter_signature name: (identifier) @name)
                    (operator_signature (binary_operator) @name)
                    (operator_signature ["[]" "[]="] @name)
                    (constructor_signature (identifier) @name . parameters: (formal_parameter_list))
                    (factory_constructor_signature (identifier) @name . (formal_parameter_list))]) @definition.method
  . (function_body))

(class_definition name: (identifier) @name) @definition.class

(mixin_declaration (identifier) @name) @definition.class

(enum_declaration name: (identifier) @name) @definition.class

(extension_type_declaration name: (identifier) @name) @definition.class

; extension NumberParsing on String: NumberParsing.parseInt; an unnamed one is named after its type (String.blank)
(extension_declaration name: (identifier) @name) @definition.class

(extension_declaration !name class: (_) @name.type) @definition.class

(type_alias . (type_identifier) @name) @definition.class

; constructors whose code is an initializer list or a redirection, beside the signature: UnionSet.from(...) : this(...);
(declaration (constructor_signature (identifier) @name . parameters: (formal_parameter_list)) @definition.method
  . [(initializers) (redirection)])
