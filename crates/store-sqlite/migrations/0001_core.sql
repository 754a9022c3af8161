-- Lastmile core schema (SQLite). Kept in step with store-postgres/migrations/0001_core.sql:
-- same tables, columns, constraint and index names.
-- Timestamps: INTEGER microseconds since the Unix epoch, UTC, bound by the application.
-- Ids: UUID text (hyphenated). Money: INTEGER minor units. JSON: TEXT.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;

CREATE TABLE operators (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'billing', 'support', 'noc', 'readonly')),
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    operator_id TEXT NOT NULL REFERENCES operators (id),
    token_hash  TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER
) STRICT;
CREATE UNIQUE INDEX api_tokens_token_hash_key ON api_tokens (token_hash);

CREATE TABLE subscribers (
    id              TEXT PRIMARY KEY,
    number          TEXT NOT NULL,
    name            TEXT NOT NULL,
    email           TEXT,
    phone           TEXT,
    billing_address TEXT NOT NULL,
    currency        TEXT NOT NULL,
    tax_zone        TEXT,
    billing_day     INTEGER NOT NULL CHECK (billing_day BETWEEN 1 AND 28),
    status          TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    custom_fields   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    revision        INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX subscribers_number_key ON subscribers (number);
CREATE INDEX subscribers_status_idx ON subscribers (status);

CREATE TABLE plans (
    id                 TEXT PRIMARY KEY,
    code               TEXT NOT NULL,
    name               TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    current_version_id TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    revision           INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX plans_code_key ON plans (code);

CREATE TABLE plan_versions (
    id                          TEXT PRIMARY KEY,
    plan_id                     TEXT NOT NULL REFERENCES plans (id),
    version                     INTEGER NOT NULL,
    download_kbps               INTEGER NOT NULL,
    upload_kbps                 INTEGER NOT NULL,
    burst                       TEXT,
    price_minor                 INTEGER NOT NULL,
    currency                    TEXT NOT NULL,
    billing_interval            TEXT NOT NULL CHECK (billing_interval IN ('monthly', 'quarterly', 'annual')),
    setup_fee_minor             INTEGER NOT NULL,
    data_cap_bytes              INTEGER,
    cap_policy                  TEXT NOT NULL,
    free_window                 TEXT,
    contract_months             INTEGER NOT NULL,
    early_termination_fee_minor INTEGER NOT NULL,
    tax_class                   TEXT NOT NULL,
    created_at                  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX plan_versions_plan_id_version_key ON plan_versions (plan_id, version);

CREATE TABLE nas (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    ip                      TEXT NOT NULL,
    secret_ciphertext       BLOB NOT NULL,
    vendor                  TEXT NOT NULL,
    coa_port                INTEGER NOT NULL CHECK (coa_port BETWEEN 1 AND 65535),
    api_url                 TEXT,
    api_username            TEXT,
    api_password_ciphertext BLOB,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    revision                INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX nas_ip_key ON nas (ip);

CREATE TABLE services (
    id                      TEXT PRIMARY KEY,
    subscriber_id           TEXT NOT NULL REFERENCES subscribers (id),
    plan_id                 TEXT NOT NULL REFERENCES plans (id),
    plan_version_id         TEXT NOT NULL REFERENCES plan_versions (id),
    initial_plan_id         TEXT NOT NULL REFERENCES plans (id),
    initial_plan_version_id TEXT NOT NULL REFERENCES plan_versions (id),
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'terminated')),
    suspension_cause        TEXT CHECK (suspension_cause IN ('operator', 'dunning')),
    service_address         TEXT NOT NULL,
    access_kind             TEXT NOT NULL CHECK (access_kind IN ('pppoe', 'hotspot', 'ipoe')),
    username                TEXT,
    password_ciphertext     BLOB,
    mac_address             TEXT,
    circuit_id              TEXT,
    static_ip               TEXT,
    ip_pool                 TEXT,
    nas_id                  TEXT REFERENCES nas (id),
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    revision                INTEGER NOT NULL
) STRICT;
-- Logins, MACs and static addresses are unique among services that still exist on the
-- network; a terminated service frees them for reuse.
CREATE UNIQUE INDEX services_username_key ON services (username)
    WHERE username IS NOT NULL AND status <> 'terminated';
CREATE UNIQUE INDEX services_mac_address_key ON services (mac_address)
    WHERE mac_address IS NOT NULL AND status <> 'terminated';
CREATE UNIQUE INDEX services_static_ip_key ON services (static_ip)
    WHERE static_ip IS NOT NULL AND status <> 'terminated';
CREATE INDEX services_subscriber_id_idx ON services (subscriber_id);
CREATE INDEX services_plan_id_idx ON services (plan_id);
CREATE INDEX services_nas_id_idx ON services (nas_id);

CREATE TABLE service_events (
    id               TEXT PRIMARY KEY,
    subscriber_id    TEXT NOT NULL REFERENCES subscribers (id),
    service_id       TEXT NOT NULL REFERENCES services (id),
    seq              INTEGER NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('activated', 'plan_changed', 'suspended', 'resumed', 'terminated')),
    effective_at     INTEGER NOT NULL,
    recorded_at      INTEGER NOT NULL,
    plan_id          TEXT REFERENCES plans (id),
    plan_version_id  TEXT REFERENCES plan_versions (id),
    suspension_cause TEXT CHECK (suspension_cause IN ('operator', 'dunning')),
    reason           TEXT,
    actor            TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX service_events_service_id_seq_key ON service_events (service_id, seq);
CREATE INDEX service_events_effective_at_idx ON service_events (effective_at);

CREATE TABLE audit_events (
    id            TEXT PRIMARY KEY,
    at            INTEGER NOT NULL,
    actor_id      TEXT NOT NULL,
    actor_name    TEXT NOT NULL,
    subscriber_id TEXT,
    entity_type   TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    action        TEXT NOT NULL,
    before        TEXT,
    after         TEXT,
    reason        TEXT
) STRICT;
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id);
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id);
CREATE INDEX audit_events_subscriber_id_idx ON audit_events (subscriber_id);
CREATE INDEX audit_events_at_idx ON audit_events (at);

CREATE TABLE provisioning_jobs (
    id            TEXT PRIMARY KEY,
    subscriber_id TEXT,
    service_id    TEXT,
    kind          TEXT NOT NULL,
    payload       TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    attempts      INTEGER NOT NULL,
    max_attempts  INTEGER NOT NULL,
    run_after     INTEGER NOT NULL,
    locked_until  INTEGER,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX provisioning_jobs_runnable_idx ON provisioning_jobs (status, run_after);
CREATE INDEX provisioning_jobs_service_id_idx ON provisioning_jobs (service_id);
CREATE INDEX provisioning_jobs_subscriber_id_idx ON provisioning_jobs (subscriber_id);

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   INTEGER,
    response_body BLOB,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) STRICT;
