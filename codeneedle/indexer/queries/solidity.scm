;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

(contract_declaration name: (identifier) @name) @definition.class

(interface_declaration name: (identifier) @name) @definition.class

(library_declaration name: (identifier) @name) @definition.class

(struct_declaration name: (identifier) @name) @definition.class

(enum_declaration name: (identifier) @name) @definition.class

; functions with a body (an interface's declarations stay in its chunk, as Java's do); a free function at file level
; is a function, one in a contract a method (Vault.deposit)
(function_definition name: (identifier) @name body: (function_body)) @definition.function

(modifier_definition name: (identifier) @name) @definition.method

(constructor_definition "constructor" @name) @definition.method

(fallback_receive_definition ["receive" "fallback"] @name) @definition.method

; events and custom errors: one line each, named with their NatSpec
(event_definition name: (identifier) @name) @definition.method

(error_declaration name: (identifier) @name) @definition.method
