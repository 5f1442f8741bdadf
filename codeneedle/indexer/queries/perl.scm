;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; sub new { ... }: in package My::Stack, My.Stack.new; sub My::Other::thing { ... } keeps its own package
(subroutine_declaration_statement name: (bareword) @name body: (block)) @definition.function

; package My::Stack; qualifies the subs after it, up to the next package statement; package Inner { ... } its block
(package_statement name: (package) @name) @definition.namespace
