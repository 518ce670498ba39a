-- Lead engine (SPEC L-1…L-10): campaigns and their cost ledger, leads with their grading,
-- routing and SLA clocks, the lead history, and idempotency keys for API capture.
-- Keep in step with the other backend's 0002_leads.sql (the parity test compares them).

ALTER TABLE users ADD COLUMN available BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE teams ADD COLUMN territories TEXT NOT NULL DEFAULT '';
ALTER TABLE teams ADD COLUMN interface_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL;
ALTER TABLE teams ADD COLUMN last_assigned_user_id INTEGER;

CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    channel TEXT NOT NULL,
    starts_on TEXT,
    ends_on TEXT,
    planned_cost_fen INTEGER NOT NULL,
    owner_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);

-- Money spent, one row per payment: the ledger budgets (B-2) extend with more references.
CREATE TABLE spend_entries (
    id INTEGER PRIMARY KEY,
    campaign_id INTEGER REFERENCES campaigns (id) ON DELETE CASCADE,
    spent_on TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    category TEXT NOT NULL,
    note TEXT,
    created_by INTEGER,
    created_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX spend_entries_campaign ON spend_entries (campaign_id, spent_on);

CREATE TABLE leads (
    id INTEGER PRIMARY KEY,
    name TEXT,
    company TEXT,
    title TEXT,
    email TEXT,
    email_key TEXT UNIQUE,
    phone TEXT,
    phone_key TEXT UNIQUE,
    weak_key TEXT,
    province TEXT,
    city TEXT,
    company_size TEXT,
    channel TEXT NOT NULL,
    campaign_id INTEGER REFERENCES campaigns (id) ON DELETE SET NULL,
    utm_source TEXT,
    utm_medium TEXT,
    utm_campaign TEXT,
    utm_term TEXT,
    utm_content TEXT,
    budget TEXT,
    authority TEXT,
    need TEXT,
    timeline TEXT,
    budget_points INTEGER NOT NULL,
    authority_points INTEGER NOT NULL,
    need_points INTEGER NOT NULL,
    timeline_points INTEGER NOT NULL,
    total INTEGER NOT NULL,
    grade TEXT NOT NULL,
    graded_version INTEGER NOT NULL,
    graded_at TIMESTAMPTEXT NOT NULL,
    route TEXT NOT NULL,
    route_reason TEXT,
    status TEXT NOT NULL,
    owner_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    team_id INTEGER REFERENCES teams (id) ON DELETE SET NULL,
    assigned_at TIMESTAMPTEXT,
    first_response_due TIMESTAMPTEXT,
    first_response_at TIMESTAMPTEXT,
    follow_up_due TIMESTAMPTEXT,
    last_activity_at TIMESTAMPTEXT NOT NULL,
    nurture_stage TEXT,
    sources JSONTEXT NOT NULL,
    note TEXT,
    search_text TEXT NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX leads_weak_key ON leads (weak_key);
CREATE INDEX leads_owner ON leads (owner_id, id);
CREATE INDEX leads_team ON leads (team_id, id);
CREATE INDEX leads_grade ON leads (grade, id);
CREATE INDEX leads_channel ON leads (channel, created_at);
CREATE INDEX leads_campaign ON leads (campaign_id);
CREATE INDEX leads_created ON leads (created_at);
CREATE INDEX leads_first_response_due ON leads (first_response_due);

-- Everything that happened to a lead, for its history (merges keep both histories).
CREATE TABLE lead_events (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    at TIMESTAMPTEXT NOT NULL,
    kind TEXT NOT NULL,
    actor_id INTEGER,
    actor_label TEXT NOT NULL,
    data JSONTEXT NOT NULL
);
CREATE INDEX lead_events_lead ON lead_events (lead_id, id);

-- L-1: an API retry with the same key returns the first result.
CREATE TABLE idempotency_keys (
    id INTEGER PRIMARY KEY,
    owner_key TEXT NOT NULL,
    key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    lead_id INTEGER,
    status_code INTEGER NOT NULL,
    response JSONTEXT NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL,
    UNIQUE (owner_key, key)
);
