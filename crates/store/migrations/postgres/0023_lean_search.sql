-- L-1 leaner lead writes: the SLA scan reads its two partial indexes (0021) and nothing else
-- reads leads by first-response deadline alone, so its full index goes. (SQLite's migration
-- also keeps less in its full-text indexes; PostgreSQL's GIN index holds no positions.)
-- Keep in step with the other backend's 0023_lean_search.sql (the parity test compares them).

DROP INDEX leads_first_response_due;
