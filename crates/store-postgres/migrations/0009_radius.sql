-- RADIUS: sessions from accounting, hourly usage per service, and the change feed the RADIUS
-- servers follow to keep their in-memory directory of services and NASes current. Kept in
-- step with store-sqlite: the same tables, columns and index names.

CREATE TABLE radius_sessions (
    id                 uuid PRIMARY KEY,
    nas_id             uuid NOT NULL REFERENCES nas (id) ON DELETE CASCADE,
    acct_session_id    TEXT NOT NULL,
    service_id         uuid REFERENCES services (id),
    subscriber_id      uuid REFERENCES subscribers (id),
    username           TEXT,
    framed_ip          TEXT,
    calling_station_id TEXT,
    nas_port_id        TEXT,
    started_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    stopped_at         BIGINT,
    end_reason         TEXT CHECK (end_reason IN ('stop', 'nas_restart', 'stale')),
    terminate_cause    BIGINT,
    session_time       BIGINT NOT NULL,
    download_bytes     BIGINT NOT NULL,
    upload_bytes       BIGINT NOT NULL,
    base_download      BIGINT NOT NULL,
    base_upload        BIGINT NOT NULL,
    accepted_policy    TEXT,
    policy_updated_at  BIGINT,
    CONSTRAINT radius_sessions_end_check CHECK ((stopped_at IS NULL) = (end_reason IS NULL))
);
CREATE UNIQUE INDEX radius_sessions_open_key ON radius_sessions (nas_id, acct_session_id)
    WHERE stopped_at IS NULL;
CREATE INDEX radius_sessions_key_idx ON radius_sessions (nas_id, acct_session_id, started_at);
CREATE INDEX radius_sessions_service_id_idx ON radius_sessions (service_id, id);
CREATE INDEX radius_sessions_subscriber_id_idx ON radius_sessions (subscriber_id, id);
CREATE INDEX radius_sessions_username_idx ON radius_sessions (username, id);
CREATE INDEX radius_sessions_framed_ip_idx ON radius_sessions (framed_ip, id);

CREATE TABLE usage_hourly (
    subscriber_id  uuid NOT NULL REFERENCES subscribers (id),
    hour_start     BIGINT NOT NULL,
    service_id     uuid NOT NULL REFERENCES services (id),
    download_bytes BIGINT NOT NULL,
    upload_bytes   BIGINT NOT NULL,
    PRIMARY KEY (subscriber_id, hour_start, service_id)
);

-- Which services and NASes changed. Sequence numbers are NOT visible in commit order here
-- (a transaction that took seq 5 may commit after one that took seq 6), so a reader cannot
-- resume from "seq > last seen". Each row records its transaction id instead (`tx`, the
-- 64-bit xid8 as bigint), and a reader resumes from the snapshot's xmin: every transaction
-- below it has finished, so every row of theirs was visible to the read that followed.
CREATE TABLE directory_changes (
    seq       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tx        BIGINT NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    entity    TEXT NOT NULL CHECK (entity IN ('service', 'nas')),
    entity_id uuid NOT NULL
);
CREATE INDEX directory_changes_tx_idx ON directory_changes (tx, seq);

CREATE FUNCTION directory_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO directory_changes (entity, entity_id) VALUES (TG_ARGV[0], OLD.id);
    ELSE
        INSERT INTO directory_changes (entity, entity_id) VALUES (TG_ARGV[0], NEW.id);
    END IF;
    -- A wake-up for pollers only; the table is the record.
    PERFORM pg_notify('lastmile_directory', '');
    RETURN NULL;
END
$$;
CREATE TRIGGER services_directory_change AFTER INSERT OR UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION directory_change('service');
CREATE TRIGGER nas_directory_change AFTER INSERT OR UPDATE OR DELETE ON nas
    FOR EACH ROW EXECUTE FUNCTION directory_change('nas');
