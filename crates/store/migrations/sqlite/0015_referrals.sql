-- C-4 referrals: each customer's code, and who referred whom (a customer is referred once).
-- Rewards are not stored: the playbook's rule decides them from the referred customer's
-- orders whenever the report is read. Keep in step with the other backend's
-- 0015_referrals.sql (the parity test compares them).

CREATE TABLE referral_codes (
    customer_id INTEGER PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    code TEXT NOT NULL UNIQUE,
    created_at TIMESTAMPTEXT NOT NULL
);

CREATE TABLE referrals (
    id INTEGER PRIMARY KEY,
    referrer_id INTEGER NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    referred_id INTEGER NOT NULL UNIQUE REFERENCES customers (id) ON DELETE CASCADE,
    referred_day INTEGER NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX referrals_referrer ON referrals (referrer_id);
