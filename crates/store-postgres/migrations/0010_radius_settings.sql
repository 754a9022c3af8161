-- Per-NAS RADIUS settings and per-service Simultaneous-Use. Kept in step with store-sqlite:
-- the same columns, defaults and constraint names. Integers are BIGINT here as everywhere on
-- PostgreSQL (the shared decoders read 64-bit integers).
ALTER TABLE nas ADD COLUMN require_message_authenticator BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE nas ADD COLUMN interim_interval_secs BIGINT NOT NULL DEFAULT 300
    CONSTRAINT nas_interim_interval_secs_check
    CHECK (interim_interval_secs = 0 OR interim_interval_secs BETWEEN 60 AND 86400);
ALTER TABLE nas ADD COLUMN session_timeout_secs BIGINT
    CONSTRAINT nas_session_timeout_secs_check
    CHECK (session_timeout_secs BETWEEN 60 AND 2592000);
ALTER TABLE nas ADD COLUMN suspended_action TEXT NOT NULL DEFAULT 'reject'
    CONSTRAINT nas_suspended_action_check
    CHECK (suspended_action IN ('reject', 'walled_garden'));
ALTER TABLE nas ADD COLUMN suspended_reply_message TEXT;
ALTER TABLE nas ADD COLUMN suspended_address_list TEXT;
ALTER TABLE nas ADD COLUMN suspended_pool TEXT;
-- A rejecting NAS has no walled garden; a walled garden has no Reply-Message (it may name
-- neither list nor pool: the walled-garden tier alone, e.g. a policy on a BNG).
ALTER TABLE nas ADD CONSTRAINT nas_suspended_fields_check CHECK (
    CASE suspended_action
        WHEN 'reject' THEN suspended_address_list IS NULL AND suspended_pool IS NULL
        ELSE suspended_reply_message IS NULL
    END);
ALTER TABLE nas ADD COLUMN stale_session_multiplier BIGINT NOT NULL DEFAULT 3
    CONSTRAINT nas_stale_session_multiplier_check
    CHECK (stale_session_multiplier BETWEEN 2 AND 100);

ALTER TABLE services ADD COLUMN simultaneous_use BIGINT NOT NULL DEFAULT 1
    CONSTRAINT services_simultaneous_use_check CHECK (simultaneous_use BETWEEN 0 AND 1000);
