-- Uploaded files waiting for their column mapping (lead import, L-1). Kept in the database,
-- not on one server's disk, so the next step may be served by another instance.
CREATE TABLE uploads (
    id INTEGER PRIMARY KEY,
    token TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    bytes BLOB NOT NULL,
    created_at TIMESTAMPTEXT NOT NULL
);
