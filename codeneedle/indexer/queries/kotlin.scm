;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; functions without a body (abstract, interface) stay in their class's chunk
(function_declaration name: (identifier) @name (function_body)) @definition.function

; extension functions: fun String.shout() -> String.shout
(function_declaration (user_type) @receiver . name: (identifier) @name (function_body)) @definition.method

(secondary_constructor "constructor" @name) @definition.method

; properties with a getter or setter that has code: val total get() = ..., val String.size get() { ... }
(property_declaration (variable_declaration (identifier) @name) [(getter (function_body)) (setter (function_body))])
  @definition.method

(property_declaration
  (user_type) @receiver . (variable_declaration (identifier) @name)
  [(getter (function_body)) (setter (function_body))]) @definition.method

; class, interface, enum class, data/sealed/value class
(class_declaration name: (identifier) @name) @definition.class

(object_declaration name: (identifier) @name) @definition.class

; a companion object is a chunk (Outer.Companion) and names its members (Outer.Companion.of): as Outer.of they would
; share a name with the class's own `of`
(companion_object name: (identifier) @name) @definition.class

(companion_object) @definition.class

(type_alias type: (identifier) @name) @definition.class

; an object expression's members are named through the property holding it (`val listener = object : Listener {
; override fun onEnd() }` -> Outer.listener.onEnd), an enum entry's through the entry (Types.PHONE.inputType): named
; after the class alone they were one name with its own members and with each other
(property_declaration (variable_declaration (identifier) @name) (object_literal)) @definition.namespace

(object_literal (class_body (function_declaration name: (identifier) @name (function_body)) @definition.method))

(enum_entry (identifier) @name (class_body)) @definition.namespace
