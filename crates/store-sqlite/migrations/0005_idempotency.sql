-- An idempotency reservation belongs to the request that took it for a lease: `owner` is a
-- random id per attempt, `lease_until` (microseconds) when the reservation is presumed dead
-- (its process crashed) and may be taken over by a retry. The business transaction of the
-- request records what it committed in `committed` (JSON: audit event, entity, timeline event,
-- jobs), so a retry after a crash replays a rebuilt response instead of running it twice.
ALTER TABLE idempotency_keys ADD COLUMN owner TEXT NOT NULL DEFAULT '';
ALTER TABLE idempotency_keys ADD COLUMN lease_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE idempotency_keys ADD COLUMN committed TEXT;
-- Reservations taken before this migration never recorded a commit: keep them in progress for
-- their whole time to live, as before, rather than risk running a committed request twice.
UPDATE idempotency_keys SET lease_until = created_at + 86400000000 WHERE status_code IS NULL;
