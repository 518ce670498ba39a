-- C-3 subscription businesses: each subscription is one plan at one monthly recurring
-- revenue (MRR) over a period (an upgrade ends one and starts another); retention, renewal
-- and net dollar retention by cohort are computed from these, not from orders. Days are
-- counted from 1970-01-01; end_day is the first day no longer paid for (NULL while running).
-- Keep in step with the other backend's 0020_subscriptions.sql (the parity test compares them).

CREATE TABLE subscriptions (
    id INTEGER PRIMARY KEY,
    external_id TEXT NOT NULL UNIQUE,
    customer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    plan TEXT NOT NULL,
    start_day INTEGER NOT NULL,
    end_day INTEGER,
    mrr_fen INTEGER NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL,
    updated_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX subscriptions_customer ON subscriptions (customer_id);
