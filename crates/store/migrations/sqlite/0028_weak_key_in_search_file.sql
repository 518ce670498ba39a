-- L-2's weaker match (company + name) is looked up only on a lead's page, but its index
-- took a page of the database at random for every capture: the most written index of the
-- capture writer's commits (47 of 166 pages per commit in the capture benchmark). The
-- leads' weak keys are now indexed in the search file (`store::search`), by its indexer,
-- and a lookup stays exact as a search does: leads past the index and leads changed since
-- are taken by their stored key.
DROP INDEX leads_weak_key;

-- A lead whose weak key changes is listed for the indexer as one whose search text does.
DROP TRIGGER leads_fts_update;
CREATE TRIGGER leads_fts_update AFTER UPDATE OF search_text, weak_key ON leads
    WHEN new.search_text IS NOT old.search_text OR new.weak_key IS NOT old.weak_key BEGIN
    INSERT INTO leads_fts_dirty (id) VALUES (new.id);
END;

-- A search file made before holds no weak keys: a new epoch has it made again.
UPDATE leads_fts_epoch SET n = abs(random());
