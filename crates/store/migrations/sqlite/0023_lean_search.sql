-- L-1 leaner lead writes. (1) The SLA scan reads its two partial indexes (0021); nothing else
-- reads leads by first-response deadline alone, and the full index on it cost every capture
-- one more index write and every large import one more index build (1 M leads: ~0.4 s,
-- 21 MB). (2) Search asks only whether a lead holds each token (as a prefix): no phrases,
-- no NEAR, no ranking. The full-text indexes keep only which leads hold a token
-- (`detail = none`) instead of every position: 1 M leads' index 64 → 37 MB, built in 4.7
-- instead of 6.1 s. Both indexes are made again from the leads table here, each with the
-- leads it held (the small one: those still pending).
-- Keep in step with the other backend's 0023_lean_search.sql (the parity test compares them).

DROP INDEX leads_first_response_due;

DROP TABLE leads_fts;
CREATE VIRTUAL TABLE leads_fts USING fts5(
    search_text,
    content = 'leads',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0',
    detail = none
);
INSERT INTO leads_fts (rowid, search_text)
    SELECT id, search_text FROM leads WHERE id NOT IN (SELECT id FROM leads_fts_pending);

DROP TABLE leads_fts_new;
CREATE VIRTUAL TABLE leads_fts_new USING fts5(
    search_text,
    content = 'leads',
    content_rowid = 'id',
    tokenize = 'unicode61 remove_diacritics 0',
    detail = none
);
INSERT INTO leads_fts_new (rowid, search_text)
    SELECT l.id, l.search_text FROM leads_fts_pending p JOIN leads l ON l.id = p.id;
