-- L-10 automation: rules "when EVENT and CONDITION, after DELAY, do ACTION", their runs,
-- and the follow-up tasks they (or people) create. Keep in step with the other backend.

CREATE TABLE automation_rules (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    event TEXT NOT NULL,
    conditions JSONTEXT NOT NULL,
    delay_amount INTEGER,
    delay_unit TEXT NOT NULL,
    delay_key TEXT,
    action TEXT NOT NULL,
    params JSONTEXT NOT NULL,
    enabled BOOLEAN NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);

CREATE TABLE automation_runs (
    id INTEGER PRIMARY KEY,
    rule_id INTEGER NOT NULL REFERENCES automation_rules (id) ON DELETE CASCADE,
    lead_id INTEGER NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    at TIMESTAMPTEXT NOT NULL,
    status TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX automation_runs_lead ON automation_runs (lead_id, id);
CREATE INDEX automation_runs_rule ON automation_runs (rule_id, lead_id, at);

CREATE TABLE tasks (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    assignee_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    title TEXT NOT NULL,
    script TEXT,
    due_at TIMESTAMPTEXT,
    done_at TIMESTAMPTEXT,
    rule_id INTEGER,
    created_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX tasks_assignee ON tasks (assignee_id, done_at);
CREATE INDEX tasks_lead ON tasks (lead_id);
