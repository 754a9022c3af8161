-- Settings every node reads (PostgreSQL). Kept in step with store-sqlite.
-- One row per named group (`billing`), its value a JSON document, guarded by a revision.
CREATE TABLE settings (
    name       TEXT PRIMARY KEY,
    value      jsonb NOT NULL,
    revision   BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
