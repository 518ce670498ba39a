-- L-1 search: SQLite's migration 0027 moves its full-text index into a file of its own.
-- PostgreSQL's GIN index is written with the row; this migration keeps the two backends'
-- version numbers in step.
SELECT 1;
