-- L-2: SQLite's migration 0031 has its search file made again with the weak keys in FTS5.
-- PostgreSQL keeps its index with the row; this migration keeps the two backends' version
-- numbers in step.
SELECT 1;
