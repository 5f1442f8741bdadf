;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; a file's functions (its main one and local ones) and a classdef's methods (Account.deposit)
(function_definition name: (identifier) @name) @definition.function

(class_definition name: (identifier) @name) @definition.class
