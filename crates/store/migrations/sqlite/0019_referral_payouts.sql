-- C-4 rewards paid: each payout of a referral's rewards (to the referrer and to the referred
-- customer), with the playbook version whose rule decided the amounts and who paid; each
-- referral keeps its running totals, so what is still owed is the rule's reward less them
-- and two payouts of one reward cannot both pass (the second finds the totals moved).
-- Keep in step with the other backend's 0019_referral_payouts.sql (the parity test compares them).

ALTER TABLE referrals ADD COLUMN paid_referrer_fen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE referrals ADD COLUMN paid_referred_fen INTEGER NOT NULL DEFAULT 0;

CREATE TABLE referral_payouts (
    id INTEGER PRIMARY KEY,
    referral_id INTEGER NOT NULL REFERENCES referrals (id) ON DELETE CASCADE,
    referrer_fen INTEGER NOT NULL,
    referred_fen INTEGER NOT NULL,
    reference TEXT,
    playbook_version INTEGER NOT NULL,
    paid_by TEXT NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX referral_payouts_referral ON referral_payouts (referral_id);
