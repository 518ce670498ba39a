-- L-1 search: SQLite's migration 0022 gives its full-text index a small second index for new
-- leads, moved into the main one in the background. PostgreSQL's GIN index needs nothing of
-- the kind; this migration keeps the two backends' version numbers in step.
SELECT 1;
