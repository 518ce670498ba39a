-- L-1 search: a new lead is marked pending and given its row in the small full-text index
-- by the statements that wrote its batch (`capture::index_new_raw`), not by an insert
-- trigger. FTS5 keeps the rows of a transaction in memory and writes them out as a segment
-- whenever another statement of the transaction begins; with a row per lead from the
-- trigger, every lead of a capture batch became a segment of its own, later merged again
-- (FTS5 was a fifth of the capture writer's time). Without a trigger, inserting a lead is a
-- single-row write that needs no statement journal either.
-- PostgreSQL's 0026 keeps the versions in step.

DROP TRIGGER leads_fts_insert;
