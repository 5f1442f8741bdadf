;; Definitions for the Needle chunker; README.md beside this file says what each capture means.


; Elixir definitions are macro calls. defmodule MyApp.Repo / defprotocol Size: a class; a nested module is named
; after the one around it (MyApp.Repo.Query), as Elixir names it
(call
  target: (identifier) @_keyword
  (arguments . (alias) @name)
  (#any-of? @_keyword "defmodule" "defprotocol")) @definition.class

; defimpl Size, for: BitString: the module Elixir makes of it, Size.BitString
(call
  target: (identifier) @_keyword
  (arguments . (alias) @object
    (keywords (pair key: (keyword) @_for value: (alias) @name)))
  (#eq? @_keyword "defimpl")
  (#match? @_for "^for:")) @definition.class

; def get(repo, id) / def get(repo, id) when is_integer(id) / def hidden, do: :ok (and defp, defmacro, defguard,
; defdelegate, Nx's defn): MyApp.Repo.get
(call
  target: (identifier) @_keyword
  (arguments . [(call target: (identifier) @name)
                (binary_operator left: (call target: (identifier) @name) operator: "when")
                (identifier) @name])
  (#any-of? @_keyword "def" "defp" "defmacro" "defmacrop" "defguard" "defguardp" "defdelegate" "defn" "defnp"))
  @definition.function

; defimpl Enumerable do ... end inside defmodule Date.Range: Date.Range.Enumerable
(call
  target: (identifier) @_keyword
  (arguments . (alias) @name .)
  (#eq? @_keyword "defimpl")) @definition.class

; operators: defmacro left &&& right / def a + b when ... / defmacro ~~~expr: Bitwise.&&&, Bitwise.~~~
(call
  target: (identifier) @_keyword
  (arguments . [(binary_operator left: (identifier) operator: _ @name right: (identifier))
                (binary_operator left: (binary_operator left: (identifier) operator: _ @name right: (identifier))
                                 operator: "when")
                (unary_operator operator: _ @name operand: (identifier))])
  (#any-of? @_keyword "def" "defp" "defmacro" "defmacrop"))
  @definition.function
