-- Settings every node reads (SQLite). Kept in step with store-postgres.
-- One row per named group (`billing`), its value a JSON document, guarded by a revision.
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    revision   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT;
