-- Lastmile core schema (PostgreSQL). Kept in step with store-sqlite/migrations/0001_core.sql:
-- same tables, columns, constraint and index names (the error mapping in
-- lastmile_store::rows relies on them; primary keys are PostgreSQL's default `<table>_pkey`).
-- Timestamps: BIGINT microseconds since the Unix epoch, UTC, bound by the application.
-- Ids: native uuid. Money: BIGINT minor units. JSON: jsonb. Every integer is BIGINT so Rust
-- decodes i64 on both backends.

CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);

CREATE TABLE operators (
    id         uuid PRIMARY KEY,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'billing', 'support', 'noc', 'readonly')),
    created_at BIGINT NOT NULL
);

CREATE TABLE api_tokens (
    id          uuid PRIMARY KEY,
    operator_id uuid NOT NULL REFERENCES operators (id),
    token_hash  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);
CREATE UNIQUE INDEX api_tokens_token_hash_key ON api_tokens (token_hash);

CREATE TABLE subscribers (
    id              uuid PRIMARY KEY,
    number          TEXT NOT NULL,
    name            TEXT NOT NULL,
    email           TEXT,
    phone           TEXT,
    billing_address jsonb NOT NULL,
    currency        TEXT NOT NULL,
    tax_zone        TEXT,
    billing_day     BIGINT NOT NULL CHECK (billing_day BETWEEN 1 AND 28),
    status          TEXT NOT NULL CHECK (status IN ('active', 'suspended', 'closed')),
    custom_fields   jsonb NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    revision        BIGINT NOT NULL
);
CREATE UNIQUE INDEX subscribers_number_key ON subscribers (number);
CREATE INDEX subscribers_status_idx ON subscribers (status);

CREATE TABLE plans (
    id                 uuid PRIMARY KEY,
    code               TEXT NOT NULL,
    name               TEXT NOT NULL,
    status             TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    current_version_id uuid NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    revision           BIGINT NOT NULL
);
CREATE UNIQUE INDEX plans_code_key ON plans (code);

CREATE TABLE plan_versions (
    id                          uuid PRIMARY KEY,
    plan_id                     uuid NOT NULL REFERENCES plans (id),
    version                     BIGINT NOT NULL,
    download_kbps               BIGINT NOT NULL,
    upload_kbps                 BIGINT NOT NULL,
    burst                       jsonb,
    price_minor                 BIGINT NOT NULL,
    currency                    TEXT NOT NULL,
    billing_interval            TEXT NOT NULL CHECK (billing_interval IN ('monthly', 'quarterly', 'annual')),
    setup_fee_minor             BIGINT NOT NULL,
    data_cap_bytes              BIGINT,
    cap_policy                  jsonb NOT NULL,
    free_window                 jsonb,
    contract_months             BIGINT NOT NULL,
    early_termination_fee_minor BIGINT NOT NULL,
    tax_class                   TEXT NOT NULL,
    created_at                  BIGINT NOT NULL
);
CREATE UNIQUE INDEX plan_versions_plan_id_version_key ON plan_versions (plan_id, version);

CREATE TABLE nas (
    id                      uuid PRIMARY KEY,
    name                    TEXT NOT NULL,
    ip                      TEXT NOT NULL,
    secret_ciphertext       bytea NOT NULL,
    vendor                  TEXT NOT NULL,
    coa_port                BIGINT NOT NULL CHECK (coa_port BETWEEN 1 AND 65535),
    api_url                 TEXT,
    api_username            TEXT,
    api_password_ciphertext bytea,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    revision                BIGINT NOT NULL
);
CREATE UNIQUE INDEX nas_ip_key ON nas (ip);

CREATE TABLE services (
    id                      uuid PRIMARY KEY,
    subscriber_id           uuid NOT NULL REFERENCES subscribers (id),
    plan_id                 uuid NOT NULL REFERENCES plans (id),
    plan_version_id         uuid NOT NULL REFERENCES plan_versions (id),
    initial_plan_id         uuid NOT NULL REFERENCES plans (id),
    initial_plan_version_id uuid NOT NULL REFERENCES plan_versions (id),
    status                  TEXT NOT NULL CHECK (status IN ('pending', 'active', 'suspended', 'terminated')),
    suspension_cause        TEXT CHECK (suspension_cause IN ('operator', 'dunning')),
    service_address         jsonb NOT NULL,
    access_kind             TEXT NOT NULL CHECK (access_kind IN ('pppoe', 'hotspot', 'ipoe')),
    username                TEXT,
    password_ciphertext     bytea,
    mac_address             TEXT,
    circuit_id              TEXT,
    static_ip               TEXT,
    ip_pool                 TEXT,
    nas_id                  uuid REFERENCES nas (id),
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    revision                BIGINT NOT NULL
);
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
    id               uuid PRIMARY KEY,
    subscriber_id    uuid NOT NULL REFERENCES subscribers (id),
    service_id       uuid NOT NULL REFERENCES services (id),
    seq              BIGINT NOT NULL,
    kind             TEXT NOT NULL CHECK (kind IN ('activated', 'plan_changed', 'suspended', 'resumed', 'terminated')),
    effective_at     BIGINT NOT NULL,
    recorded_at      BIGINT NOT NULL,
    plan_id          uuid REFERENCES plans (id),
    plan_version_id  uuid REFERENCES plan_versions (id),
    suspension_cause TEXT CHECK (suspension_cause IN ('operator', 'dunning')),
    reason           TEXT,
    actor            TEXT NOT NULL
);
CREATE UNIQUE INDEX service_events_service_id_seq_key ON service_events (service_id, seq);
CREATE INDEX service_events_effective_at_idx ON service_events (effective_at);

CREATE TABLE audit_events (
    id            uuid PRIMARY KEY,
    at            BIGINT NOT NULL,
    actor_id      TEXT NOT NULL,
    actor_name    TEXT NOT NULL,
    subscriber_id uuid,
    entity_type   TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    action        TEXT NOT NULL,
    before        jsonb,
    after         jsonb,
    reason        TEXT
);
CREATE INDEX audit_events_entity_idx ON audit_events (entity_type, entity_id);
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id);
CREATE INDEX audit_events_subscriber_id_idx ON audit_events (subscriber_id);
CREATE INDEX audit_events_at_idx ON audit_events (at);

CREATE TABLE provisioning_jobs (
    id            uuid PRIMARY KEY,
    subscriber_id uuid,
    service_id    uuid,
    kind          TEXT NOT NULL,
    payload       jsonb NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'running', 'succeeded', 'failed')),
    attempts      BIGINT NOT NULL,
    max_attempts  BIGINT NOT NULL,
    run_after     BIGINT NOT NULL,
    locked_until  BIGINT,
    last_error    TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);
CREATE INDEX provisioning_jobs_runnable_idx ON provisioning_jobs (status, run_after);
CREATE INDEX provisioning_jobs_service_id_idx ON provisioning_jobs (service_id);
CREATE INDEX provisioning_jobs_subscriber_id_idx ON provisioning_jobs (subscriber_id);

CREATE TABLE idempotency_keys (
    scope         TEXT NOT NULL,
    key           TEXT NOT NULL,
    request_hash  TEXT NOT NULL,
    status_code   BIGINT,
    response_body bytea,
    created_at    BIGINT NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (scope, key)
);
