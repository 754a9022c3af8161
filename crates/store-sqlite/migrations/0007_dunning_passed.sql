-- Dunning steps passed over (SQLite). Kept in step with store-postgres.
-- When one pass finds several steps due, only the latest is performed; the others are still
-- recorded (so no later pass takes them) with `passed` set.
ALTER TABLE dunning_actions ADD COLUMN passed INTEGER NOT NULL DEFAULT 0 CHECK (passed IN (0, 1));
