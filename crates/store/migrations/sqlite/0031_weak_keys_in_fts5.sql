-- L-2: the search file indexes the leads' weak keys in an FTS5 table of its own, where it
-- had a B-tree of them (`store::search`): each indexing step appends a segment instead of
-- writing a page at random for nearly every new lead. A search file made before has the
-- B-tree and not the table: a new epoch has it made again.
UPDATE leads_fts_epoch SET n = abs(random());
