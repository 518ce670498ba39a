-- Rate limits that must hold across instances (public lead forms per address, L-1).
CREATE TABLE rate_events (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    at TIMESTAMPTEXT NOT NULL
);
CREATE INDEX rate_events_lookup ON rate_events (scope, key, at);
