-- RADIUS: sessions from accounting, hourly usage per service, and the change feed the RADIUS
-- servers follow to keep their in-memory directory of services and NASes current.

CREATE TABLE radius_sessions (
    id                 TEXT PRIMARY KEY,
    nas_id             TEXT NOT NULL REFERENCES nas (id) ON DELETE CASCADE,
    acct_session_id    TEXT NOT NULL,
    service_id         TEXT REFERENCES services (id),
    subscriber_id      TEXT REFERENCES subscribers (id),
    username           TEXT,
    framed_ip          TEXT,
    calling_station_id TEXT,
    nas_port_id        TEXT,
    started_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    stopped_at         INTEGER,
    end_reason         TEXT CHECK (end_reason IN ('stop', 'nas_restart', 'stale')),
    terminate_cause    INTEGER,
    session_time       INTEGER NOT NULL,
    download_bytes     INTEGER NOT NULL,
    upload_bytes       INTEGER NOT NULL,
    base_download      INTEGER NOT NULL,
    base_upload        INTEGER NOT NULL,
    accepted_policy    TEXT,
    policy_updated_at  INTEGER,
    CONSTRAINT radius_sessions_end_check CHECK ((stopped_at IS NULL) = (end_reason IS NULL))
) STRICT;
-- One open session per NAS and Acct-Session-Id; closed ones with the same id may follow.
-- Also the open sessions of a NAS, for the stale sweep and Accounting-On. (No index has
-- updated_at or the counters: an Interim-Update then rewrites the row alone, no index page.)
CREATE UNIQUE INDEX radius_sessions_open_key ON radius_sessions (nas_id, acct_session_id)
    WHERE stopped_at IS NULL;
CREATE INDEX radius_sessions_key_idx ON radius_sessions (nas_id, acct_session_id, started_at);
CREATE INDEX radius_sessions_service_id_idx ON radius_sessions (service_id, id);
CREATE INDEX radius_sessions_subscriber_id_idx ON radius_sessions (subscriber_id, id);
CREATE INDEX radius_sessions_username_idx ON radius_sessions (username, id);
CREATE INDEX radius_sessions_framed_ip_idx ON radius_sessions (framed_ip, id);

-- Octets per service and clock hour (UTC). Subscriber first: a subscriber's usage over a
-- period is one range of the primary key.
CREATE TABLE usage_hourly (
    subscriber_id  TEXT NOT NULL REFERENCES subscribers (id),
    hour_start     INTEGER NOT NULL,
    service_id     TEXT NOT NULL REFERENCES services (id),
    download_bytes INTEGER NOT NULL,
    upload_bytes   INTEGER NOT NULL,
    PRIMARY KEY (subscriber_id, hour_start, service_id)
) STRICT, WITHOUT ROWID;

-- Which services and NASes changed, in commit order. Written by triggers, so no write path
-- can forget it. SQLite has one writer: sequence numbers become visible in order, so a
-- reader that saw `seq` has seen every change before it. (`tx` is PostgreSQL's transaction
-- id there; always 0 here.)
CREATE TABLE directory_changes (
    seq       INTEGER PRIMARY KEY,
    tx        INTEGER NOT NULL DEFAULT 0,
    entity    TEXT NOT NULL CHECK (entity IN ('service', 'nas')),
    entity_id TEXT NOT NULL
) STRICT;
CREATE INDEX directory_changes_tx_idx ON directory_changes (tx, seq);

CREATE TRIGGER services_directory_insert AFTER INSERT ON services BEGIN
    INSERT INTO directory_changes (entity, entity_id) VALUES ('service', NEW.id);
END;
CREATE TRIGGER services_directory_update AFTER UPDATE ON services BEGIN
    INSERT INTO directory_changes (entity, entity_id) VALUES ('service', NEW.id);
END;
CREATE TRIGGER nas_directory_insert AFTER INSERT ON nas BEGIN
    INSERT INTO directory_changes (entity, entity_id) VALUES ('nas', NEW.id);
END;
CREATE TRIGGER nas_directory_update AFTER UPDATE ON nas BEGIN
    INSERT INTO directory_changes (entity, entity_id) VALUES ('nas', NEW.id);
END;
CREATE TRIGGER nas_directory_delete AFTER DELETE ON nas BEGIN
    INSERT INTO directory_changes (entity, entity_id) VALUES ('nas', OLD.id);
END;
