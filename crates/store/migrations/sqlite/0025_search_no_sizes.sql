-- L-1 search keeps no token counts. FTS5 stores, for every row it indexes, how many tokens
-- each column holds (the `_docsize` table), which only ranking (bm25) reads; search here
-- asks whether a lead holds each token as a prefix and orders by the leads' own columns.
-- Without it each indexed lead is one B-tree insert fewer: a million leads' index built in
-- 5.3–6.3 s instead of 7.1–8.5 s in the `sqlite3` shell (both orders, alternated), and each
-- capture writes a row fewer. Both indexes are made again from the leads table, as in 0023.
-- PostgreSQL's 0025 keeps the versions in step.

DROP TABLE leads_fts;
CREATE VIRTUAL TABLE leads_fts USING fts5(
    search_text,
    content = 'leads',
    content_rowid = 'id',
    tokenize = 'ascii',
    detail = none,
    columnsize = 0
);
INSERT INTO leads_fts (rowid, search_text)
    SELECT id, search_text FROM leads WHERE id NOT IN (SELECT id FROM leads_fts_pending);

DROP TABLE leads_fts_new;
CREATE VIRTUAL TABLE leads_fts_new USING fts5(
    search_text,
    content = 'leads',
    content_rowid = 'id',
    tokenize = 'ascii',
    detail = none,
    columnsize = 0
);
INSERT INTO leads_fts_new (rowid, search_text)
    SELECT l.id, l.search_text FROM leads_fts_pending p JOIN leads l ON l.id = p.id;
