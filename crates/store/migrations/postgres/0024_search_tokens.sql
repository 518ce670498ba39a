-- L-1 search: SQLite's migration 0024 has its full-text indexes take the application's
-- tokens as they are. PostgreSQL's GIN index over `array_to_tsvector` already does; this
-- migration keeps the two backends' version numbers in step.
SELECT 1;
