-- L-10: who made a rule. Tasks for leads with no owner and no team (nurture and content
-- leads belong to marketing) go to this person.
ALTER TABLE automation_rules ADD COLUMN owner_id BIGINT REFERENCES users (id) ON DELETE SET NULL;
