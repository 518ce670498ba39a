-- C-5 funnel events as numbers: each user id and each channel/campaign pair is stored once
-- and events refer to them, the step is 0 exposure, 1 click, 2 conversion, 3 repurchase, and
-- the instant is microseconds since 1970 (UTC). The funnel reads four integers per event from
-- one index ordered by time that holds all four, so a period is one range of that index.
-- Keep in step with the other backend's 0017_funnel_numbers.sql (the parity test compares them).

CREATE TABLE funnel_users (
    id INTEGER PRIMARY KEY,
    user_key TEXT NOT NULL UNIQUE
);

CREATE TABLE funnel_groups (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    campaign TEXT NOT NULL,
    UNIQUE (channel, campaign)
);

INSERT INTO funnel_users (user_key) SELECT user_key FROM funnel_events GROUP BY user_key ORDER BY min(id);
INSERT INTO funnel_groups (channel, campaign)
    SELECT channel, campaign FROM funnel_events GROUP BY channel, campaign ORDER BY min(id);

CREATE TABLE funnel_events_numbered (
    id INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES funnel_users (id),
    group_id INTEGER NOT NULL REFERENCES funnel_groups (id),
    step INTEGER NOT NULL CHECK (step BETWEEN 0 AND 3),
    at_us BIGINT NOT NULL
);

-- Stored instants are `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
INSERT INTO funnel_events_numbered (id, user_id, group_id, step, at_us)
SELECT e.id, u.id, g.id,
       CASE e.kind WHEN 'exposure' THEN 0 WHEN 'click' THEN 1 WHEN 'conversion' THEN 2 ELSE 3 END,
       unixepoch(substr(e.at, 1, 19)) * 1000000 + CAST(substr(e.at, 21, 6) AS INTEGER)
FROM funnel_events e
JOIN funnel_users u ON u.user_key = e.user_key
JOIN funnel_groups g ON g.channel = e.channel AND g.campaign = e.campaign;

DROP TABLE funnel_events;
ALTER TABLE funnel_events_numbered RENAME TO funnel_events;
CREATE INDEX funnel_events_at ON funnel_events (at_us, user_id, group_id, step);
