-- L-1 search: SQLite's migration 0025 has its full-text indexes keep no per-row token
-- counts. PostgreSQL's GIN index keeps none; this migration keeps the two backends'
-- version numbers in step.
SELECT 1;
