-- Nurture touches (L-6) and deals with their attribution (L-8). Keep in step with the other
-- backend's 0004_deals.sql.

CREATE TABLE lead_touches (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    at TIMESTAMPTEXT NOT NULL,
    kind TEXT NOT NULL,
    stage TEXT NOT NULL,
    title TEXT,
    user_id INTEGER
);
CREATE INDEX lead_touches_lead ON lead_touches (lead_id, at);

CREATE TABLE deals (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL UNIQUE REFERENCES leads (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    amount_fen INTEGER NOT NULL,
    stage TEXT NOT NULL,
    lost_reason TEXT,
    owner_id INTEGER,
    team_id INTEGER,
    company_size TEXT,
    first_channel TEXT NOT NULL,
    first_campaign_id INTEGER,
    last_channel TEXT NOT NULL,
    last_campaign_id INTEGER,
    opened_at TIMESTAMPTEXT NOT NULL,
    closed_at TIMESTAMPTEXT,
    cycle_days INTEGER,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX deals_closed ON deals (stage, closed_at);
