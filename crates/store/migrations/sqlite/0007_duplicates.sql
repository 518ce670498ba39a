-- L-2: pairs of leads a person decided are not the same (company + name matched weakly).
CREATE TABLE duplicate_dismissals (
    id INTEGER PRIMARY KEY,
    lead_a INTEGER NOT NULL,
    lead_b INTEGER NOT NULL,
    user_id INTEGER,
    at TIMESTAMPTEXT NOT NULL,
    UNIQUE (lead_a, lead_b)
);
