-- MarketOps foundation schema (SQLite). Keep in step with ../postgres/0001_foundation.sql:
-- the schema parity test compares the two after migrating.
-- Type names: TIMESTAMPTEXT holds fixed-width RFC 3339 UTC text (see store::Ts), JSONTEXT
-- holds JSON text; both have TEXT affinity.

CREATE TABLE company (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL,
    industry TEXT,
    business_type TEXT NOT NULL,
    stage TEXT NOT NULL,
    size TEXT NOT NULL,
    currency TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    weekend_days TEXT NOT NULL,
    working_hours TEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);

CREATE TABLE departments (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    head_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    description TEXT,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);

CREATE TABLE teams (
    id INTEGER PRIMARY KEY,
    department_id INTEGER NOT NULL REFERENCES departments (id) ON DELETE RESTRICT,
    name TEXT NOT NULL,
    lead_user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
    focus TEXT,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL,
    UNIQUE (department_id, name)
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    email TEXT NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL,
    department_id INTEGER REFERENCES departments (id) ON DELETE SET NULL,
    team_id INTEGER REFERENCES teams (id) ON DELETE SET NULL,
    active BOOLEAN NOT NULL,
    password_hash TEXT NOT NULL,
    locale TEXT,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX users_department ON users (department_id);
CREATE INDEX users_team ON users (team_id);

CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTEXT NOT NULL,
    last_seen_at TIMESTAMPTEXT NOT NULL,
    expires_at TIMESTAMPTEXT NOT NULL,
    ip TEXT,
    user_agent TEXT
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expires ON sessions (expires_at);

CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX login_failures_lookup ON login_failures (scope, key, at);

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL,
    last_used_at TIMESTAMPTEXT,
    revoked_at TIMESTAMPTEXT
);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE playbook_versions (
    id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL UNIQUE,
    document TEXT NOT NULL,
    note TEXT,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTEXT NOT NULL
);

CREATE TABLE calendar_days (
    day TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);

CREATE TABLE audit_log (
    id INTEGER PRIMARY KEY,
    at TIMESTAMPTEXT NOT NULL,
    actor_id INTEGER,
    actor_label TEXT NOT NULL,
    via TEXT NOT NULL,
    action TEXT NOT NULL,
    entity TEXT NOT NULL,
    entity_id TEXT,
    before JSONTEXT,
    after JSONTEXT
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_entity ON audit_log (entity, entity_id);
CREATE INDEX audit_log_actor ON audit_log (actor_id);

CREATE TABLE jobs (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    payload JSONTEXT NOT NULL,
    priority INTEGER NOT NULL,
    status TEXT NOT NULL,
    run_at TIMESTAMPTEXT NOT NULL,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    dedup_key TEXT UNIQUE,
    locked_by TEXT,
    locked_until TIMESTAMPTEXT,
    last_error TEXT,
    created_at TIMESTAMPTEXT NOT NULL,
    finished_at TIMESTAMPTEXT
);
CREATE INDEX jobs_ready ON jobs (status, run_at);
