-- C-5 funnel events: exposure, click, conversion and repurchase of a user (the company's own
-- user id) in a channel and campaign. Keep in step with the other backend's file.

CREATE TABLE funnel_events (
    id INTEGER PRIMARY KEY,
    user_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    campaign TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX funnel_events_at ON funnel_events (at);
