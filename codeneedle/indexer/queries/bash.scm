;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; name() { ... } / function name { ... }
(function_definition name: (word) @name) @definition.function
