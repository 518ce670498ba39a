-- L-2: SQLite's migration 0028 moves its weak-key index into the search file. PostgreSQL
-- keeps its index with the row; this migration keeps the two backends' version numbers in
-- step.
SELECT 1;
