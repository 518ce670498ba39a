-- C-6 experiments: each test's definition (variants, weights, plan inputs), the users
-- assigned to its variants (by a hash, stored when first asked so the count is exact), and
-- the users who converted (once each). Keep in step with the other backend's
-- 0014_experiments.sql (the parity test compares them).

CREATE TABLE experiments (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    definition JSONTEXT NOT NULL,
    status TEXT NOT NULL,
    created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
    created_at TIMESTAMPTEXT NOT NULL,
    started_at TIMESTAMPTEXT,
    stopped_at TIMESTAMPTEXT
);

CREATE TABLE experiment_assignments (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    user_key TEXT NOT NULL,
    variant INTEGER NOT NULL,
    assigned_at TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (experiment_id, user_key)
);

CREATE TABLE experiment_conversions (
    experiment_id INTEGER NOT NULL REFERENCES experiments (id) ON DELETE CASCADE,
    user_key TEXT NOT NULL,
    converted_at TIMESTAMPTEXT NOT NULL,
    PRIMARY KEY (experiment_id, user_key)
);
