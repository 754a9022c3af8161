-- Dunning steps passed over (PostgreSQL). Kept in step with store-sqlite.
-- When one pass finds several steps due, only the latest is performed; the others are still
-- recorded (so no later pass takes them) with `passed` set.
ALTER TABLE dunning_actions ADD COLUMN passed BOOLEAN NOT NULL DEFAULT false;
