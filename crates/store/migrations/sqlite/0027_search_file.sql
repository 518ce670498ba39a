-- L-1 search: the full-text index of the leads' search text moves out of the database
-- file into a file of its own beside it (`<file>-search`), written by one indexer on a
-- connection of its own (`store::search`). SQLite lets one writer at a time into a file:
-- with the index here, moving new leads into it (15–30 ms, up to 90 ms with FTS5's
-- merges, every thousand captures) held the capture writer, and every capture behind it,
-- still. In its own file the index is written beside the writer, never in its way.
--
-- This file keeps what a search needs to stay exact while the index catches up:
-- * `leads_fts_dirty`: every lead whose search text changed or that was deleted, in order
--   (`seq`); the search file records up to which `seq` it has applied. A search takes a
--   changed lead by its stored text, not from the index, until the index has it again.
-- * `leads_fts_epoch`: the identity of this database's leads for the index; a restore
--   gives it a new one, and an index made for another one is rebuilt, not trusted.
-- New leads need no entry: the search file records up to which lead id it has indexed,
-- and a search takes leads past it by their stored text.

DROP TRIGGER leads_fts_delete;
DROP TRIGGER leads_fts_update;
DROP TABLE leads_fts;
DROP TABLE leads_fts_new;
DROP TABLE leads_fts_pending;

CREATE TABLE leads_fts_dirty (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id INTEGER NOT NULL
);

CREATE TABLE leads_fts_epoch (
    k INTEGER PRIMARY KEY CHECK (k = 0),
    n INTEGER NOT NULL
);
INSERT INTO leads_fts_epoch (k, n) VALUES (0, abs(random()));

CREATE TRIGGER leads_fts_update AFTER UPDATE OF search_text ON leads
    WHEN new.search_text IS NOT old.search_text BEGIN
    INSERT INTO leads_fts_dirty (id) VALUES (new.id);
END;

CREATE TRIGGER leads_fts_delete AFTER DELETE ON leads BEGIN
    INSERT INTO leads_fts_dirty (id) VALUES (old.id);
END;
