-- L-1 search: a GIN index over leads.search_text (jieba-segmented, space-separated tokens
-- written by the application), taken as lexemes as they are — no parser, no dictionary — so
-- matching is the same as SQLite FTS5's over the same text.
CREATE INDEX leads_search ON leads USING gin (array_to_tsvector(string_to_array(search_text, ' ')));
