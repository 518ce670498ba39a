-- Follow-up SLAs (L-5): activities on leads, detected breaches, in-app notifications and
-- outbound webhooks. Keep in step with the other backend's 0003_sla.sql.

-- What a sales owner (or marketing) did with a lead: the first one answers the first-response
-- SLA, each one restarts the follow-up clock.
CREATE TABLE lead_activities (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    at TIMESTAMPTEXT NOT NULL,
    kind TEXT NOT NULL,
    note TEXT,
    user_id INTEGER REFERENCES users (id) ON DELETE SET NULL
);
CREATE INDEX lead_activities_lead ON lead_activities (lead_id, at);

-- One row per missed deadline: the unique key makes each breach handled once, however many
-- instances scan.
CREATE TABLE sla_breaches (
    id INTEGER PRIMARY KEY,
    lead_id INTEGER NOT NULL REFERENCES leads (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    due_at TIMESTAMPTEXT NOT NULL,
    detected_at TIMESTAMPTEXT NOT NULL,
    owner_id INTEGER,
    team_id INTEGER,
    playbook_version INTEGER NOT NULL,
    UNIQUE (lead_id, kind, due_at)
);
CREATE INDEX sla_breaches_detected ON sla_breaches (detected_at);

CREATE TABLE notifications (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at TIMESTAMPTEXT NOT NULL,
    kind TEXT NOT NULL,
    lead_id INTEGER,
    data JSONTEXT NOT NULL,
    read_at TIMESTAMPTEXT
);
CREATE INDEX notifications_user ON notifications (user_id, id);

CREATE TABLE webhooks (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    url TEXT NOT NULL,
    format TEXT NOT NULL,
    events TEXT NOT NULL,
    active BOOLEAN NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id INTEGER PRIMARY KEY,
    webhook_id INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    event TEXT NOT NULL,
    body JSONTEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT,
    response_status INTEGER,
    created_at TIMESTAMPTEXT NOT NULL,
    delivered_at TIMESTAMPTEXT
);
CREATE INDEX webhook_deliveries_hook ON webhook_deliveries (webhook_id, id);
