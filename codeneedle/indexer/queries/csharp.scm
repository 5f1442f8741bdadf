;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; methods without a body (abstract, interface, extern, partial) stay in their type's chunk; `=> expr` is a body
(method_declaration name: (identifier) @name body: (_)) @definition.method

; explicit interface implementations are named through the interface (`IEnumerator IEnumerable.GetEnumerator()` ->
; List.IEnumerable.GetEnumerator, as C# docs write it): beside the class's own GetEnumerator, a name of their own
(method_declaration (explicit_interface_specifier) @receiver name: (identifier) @name body: (_)) @definition.method

(property_declaration (explicit_interface_specifier) @receiver name: (identifier) @name
  [(accessor_list (accessor_declaration body: (_))) (arrow_expression_clause)]) @definition.method

(constructor_declaration name: (identifier) @name body: (_)) @definition.method

; properties with code: accessors with a body (`get { ... }`, `set => ...`) or an expression body (`int Count => n;`);
; auto-properties (`{ get; set; }`) are fields and stay in their type's chunk
(property_declaration name: (identifier) @name accessors: (accessor_list (accessor_declaration body: (_)))) @definition.method

(property_declaration name: (identifier) @name value: (arrow_expression_clause)) @definition.method

; indexers with code (`public T this[int i] { get { ... } }`, `this[string k] => ...`), operators (`operator +`),
; conversions (`implicit operator Vec(int x)`) and finalizers (`~Vec()`): the chunker names them as written
; (`Vec.this[]`, `Vec.operator+`, `Vec.implicit operator Vec`, `Vec.~Vec`), for they have no identifier of their own
(indexer_declaration accessors: (accessor_list (accessor_declaration body: (_)))) @definition.method

(indexer_declaration value: (arrow_expression_clause)) @definition.method

(operator_declaration body: (_)) @definition.method

(conversion_operator_declaration body: (_)) @definition.method

(destructor_declaration body: (_)) @definition.method

; events with code in their accessors: public event EventHandler Changed { add { ... } remove { ... } }
(event_declaration name: (identifier) @name accessors: (accessor_list (accessor_declaration body: (_))))
  @definition.method

(class_declaration name: (identifier) @name) @definition.class

(struct_declaration name: (identifier) @name) @definition.class

(interface_declaration name: (identifier) @name) @definition.class

(enum_declaration name: (identifier) @name) @definition.class

(record_declaration name: (identifier) @name) @definition.class

; public delegate void Handler(object sender);
(delegate_declaration name: (identifier) @name) @definition.class

(namespace_declaration name: (_) @name) @definition.namespace

; `namespace Acme.Billing;` qualifies everything after it in the file (chunker: open scopes)
(file_scoped_namespace_declaration name: (_) @name) @definition.namespace
