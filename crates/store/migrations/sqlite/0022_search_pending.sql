-- L-1 search without stalls in capture. Every new lead's text went straight into the one
-- full-text index; each capture transaction left a small segment there, and once enough
-- had piled up FTS5 merged them inside whichever capture transaction came next (at 80 % of
-- the peak rate the p99 went from 22 ms to 138 ms, BENCHMARKS.md).
-- Now a new lead's text goes to a second, small index (`leads_fts_new`, its ids listed in
-- `leads_fts_pending`); every second the server moves what is there into the main index as
-- one large segment and empties the small one (`store::leads::flush_search`). Search reads
-- both, so a lead is found as soon as it is committed, with the same tokens either way.
-- SQLite only: PostgreSQL's GIN index has no such merges in the writer's path.

CREATE TABLE leads_fts_pending (id INTEGER PRIMARY KEY);

CREATE VIRTUAL TABLE leads_fts_new USING fts5(
    search_text,
    content = 'leads',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0'
);

DROP TRIGGER leads_fts_insert;
DROP TRIGGER leads_fts_delete;
DROP TRIGGER leads_fts_update;

CREATE TRIGGER leads_fts_insert AFTER INSERT ON leads BEGIN
    INSERT INTO leads_fts_pending (id) VALUES (new.id);
    INSERT INTO leads_fts_new (rowid, search_text) VALUES (new.id, new.search_text);
END;

-- An external-content index must be told the text it holds for a row being removed: the
-- row is in the small index while it is pending, in the main one after.
CREATE TRIGGER leads_fts_delete AFTER DELETE ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, search_text) SELECT 'delete', old.id, old.search_text
        WHERE NOT EXISTS (SELECT 1 FROM leads_fts_pending WHERE id = old.id);
    INSERT INTO leads_fts_new (leads_fts_new, rowid, search_text) SELECT 'delete', old.id, old.search_text
        WHERE EXISTS (SELECT 1 FROM leads_fts_pending WHERE id = old.id);
    DELETE FROM leads_fts_pending WHERE id = old.id;
END;

CREATE TRIGGER leads_fts_update AFTER UPDATE OF search_text ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, search_text) SELECT 'delete', old.id, old.search_text
        WHERE NOT EXISTS (SELECT 1 FROM leads_fts_pending WHERE id = old.id);
    INSERT INTO leads_fts (rowid, search_text) SELECT new.id, new.search_text
        WHERE NOT EXISTS (SELECT 1 FROM leads_fts_pending WHERE id = old.id);
    INSERT INTO leads_fts_new (leads_fts_new, rowid, search_text) SELECT 'delete', old.id, old.search_text
        WHERE EXISTS (SELECT 1 FROM leads_fts_pending WHERE id = old.id);
    INSERT INTO leads_fts_new (rowid, search_text) SELECT new.id, new.search_text
        WHERE EXISTS (SELECT 1 FROM leads_fts_pending WHERE id = old.id);
END;
