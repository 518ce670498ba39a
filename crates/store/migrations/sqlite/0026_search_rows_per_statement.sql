-- L-1 search: a new lead's row in the small full-text index is written by the statement that
-- wrote the lead's batch (`capture::index_new`), not by this trigger. FTS5 keeps the rows of
-- a transaction in memory and writes them out as a segment whenever another statement of
-- the transaction begins; with a row per lead from the trigger, every lead of a capture
-- batch became a segment of its own, later merged again (FTS5 was a fifth of the capture
-- writer's time). The trigger still marks the lead as pending.
-- PostgreSQL's 0026 keeps the versions in step.

DROP TRIGGER leads_fts_insert;
CREATE TRIGGER leads_fts_insert AFTER INSERT ON leads BEGIN
    INSERT INTO leads_fts_pending (id) VALUES (new.id);
END;
