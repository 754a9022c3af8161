-- Typed job kinds. The RADIUS server's directory follows the store's change feed, so the
-- policy re-publish job is gone; any left in the queue would never be claimed again.
DELETE FROM provisioning_jobs WHERE kind = 'radius.update-policy';

-- The last attempt's outcome as a person reads it ("CoA-ACK from core-1 for 2 sessions").
ALTER TABLE provisioning_jobs ADD COLUMN last_result TEXT;
