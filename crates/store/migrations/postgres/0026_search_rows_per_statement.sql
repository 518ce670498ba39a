-- L-1 search: SQLite's migration 0026 writes new leads' full-text rows one statement per
-- batch. PostgreSQL's GIN index is written with the row; this migration keeps the two
-- backends' version numbers in step.
SELECT 1;
