-- L-1 search: a full-text index over leads.search_text (jieba-segmented, space-separated
-- tokens written by the application). External content: the text lives in leads only;
-- triggers keep the index in step. `unicode61` without diacritic folding splits on the
-- spaces exactly as PostgreSQL's array_to_tsvector(string_to_array(…, ' ')) does.
CREATE VIRTUAL TABLE leads_fts USING fts5(
    search_text,
    content = 'leads',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0'
);

CREATE TRIGGER leads_fts_insert AFTER INSERT ON leads BEGIN
    INSERT INTO leads_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;

CREATE TRIGGER leads_fts_delete AFTER DELETE ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
END;

CREATE TRIGGER leads_fts_update AFTER UPDATE OF search_text ON leads BEGIN
    INSERT INTO leads_fts (leads_fts, rowid, search_text) VALUES ('delete', old.id, old.search_text);
    INSERT INTO leads_fts (rowid, search_text) VALUES (new.id, new.search_text);
END;

INSERT INTO leads_fts (leads_fts) VALUES ('rebuild');
