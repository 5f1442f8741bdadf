;; Definitions for the Needle chunker. Captures:
;;   @definition.function  function (a method when it sits in a class)
;;   @definition.method    method (also outside a class when it names its owner: receiver or Owner::name)
;;   @definition.class     class-like: one chunk with method bodies left out
;;   @definition.namespace qualifies names inside it, no chunk of its own
;;   @name                 the name; @name.type a type expression naming it; @receiver the owner type
;;   captures starting with _ are only used by predicates


; sub new { ... }: in package My::Stack, My.Stack.new; sub My::Other::thing { ... } keeps its own package
(subroutine_declaration_statement name: (bareword) @name body: (block)) @definition.function

; package My::Stack; qualifies the subs after it, up to the next package statement; package Inner { ... } its block
(package_statement name: (package) @name) @definition.namespace
