;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; A function is its type signature and every equation after it (push :: a -> Stack a -> Stack a; push x s = ...):
; the chunker starts it at the signature, or at the first equation when there is none, and runs it on over the
; equations of the same name that follow.
(signature name: (variable) @name) @definition.function

(function name: (variable) @name) @definition.function

(bind name: (variable) @name) @definition.function

; (<|>) :: a -> a -> a / x <|> y = ... / (<|>) x y = ...
(signature name: (prefix_id (operator) @name)) @definition.function

(function (infix operator: (operator) @name)) @definition.function

(function name: (prefix_id (operator) @name)) @definition.function

(data_type name: (name) @name) @definition.class

(newtype name: (name) @name) @definition.class

(type_synonym name: (name) @name) @definition.class

(type_family name: (name) @name) @definition.class

; class Sized f where ...: its signatures and defaults are Sized.size
(class name: (name) @name) @definition.class

; instance Sized Stack where ...: Sized.Stack.size; instance Show (N a): Show.N; instance Serial (a, b): Serial.(a,b)
(instance name: (name) @object patterns: (type_patterns . [(name) (unit) (tuple) (list)] @name)) @definition.class

(instance name: (name) @object patterns: (type_patterns . (parens (apply . constructor: (name) @name))))
  @definition.class
