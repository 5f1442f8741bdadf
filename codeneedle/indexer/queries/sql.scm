;; Definitions for the Needle chunker; README.md beside this file says what each capture means.

; CREATE [OR REPLACE] FUNCTION / PROCEDURE: functions, named as written (app.total, a schema's); the statement is the
; chunk, its `;` with it. Every other statement (INSERT, ALTER, CREATE INDEX, GRANT, ...) stays in the line windows,
; so a migration of a thousand statements is not a thousand chunks.
(statement (create_function (object_reference) @name)) @definition.function

(statement (create_procedure (object_reference) @name)) @definition.function

; tables and views are the data's definitions, as classes are code's
(statement (create_table (object_reference) @name)) @definition.class

(statement (create_view (object_reference) @name)) @definition.class

(statement (create_materialized_view (object_reference) @name)) @definition.class

(statement (create_trigger . (keyword_create) (object_reference) @name)) @definition.function
