-- Billing: runs, invoices and their lines (PostgreSQL). Kept in step with
-- store-sqlite/migrations/0002_billing.sql: same tables, columns, constraint and index names.
-- Dates (civil, operator time zone) are TEXT 'YYYY-MM-DD', so both backends decode them the
-- same way (and they sort as dates). Integers are BIGINT, ids uuid, JSON jsonb.
--
-- One deliberate difference: the references SQLite declares as foreign keys
-- (invoices.subscriber_id, invoices.billing_run_id, invoice_lines.invoice_id,
-- invoice_lines.service_id, invoice_lines.plan_version_id) are checked by
-- commit_billing_batch, the only writer of these tables, with one set-based statement per
-- batch, failing the same way (StoreError::InUse). PostgreSQL checks a foreign key with a
-- trigger per inserted row; with these five, a billing run of 100,000 subscribers took about
-- three times as long (20 s instead of 7 s on a 2-core machine). Nothing deletes subscribers,
-- services, plan versions, billing runs or invoices.

CREATE TABLE billing_runs (
    id                    uuid PRIMARY KEY,
    as_of                 TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('running', 'completed')),
    started_at            BIGINT NOT NULL,
    finished_at           BIGINT,
    cursor                uuid,
    subscribers_processed BIGINT NOT NULL,
    invoices_created      BIGINT NOT NULL,
    errors                jsonb NOT NULL
);
-- At most one unfinished run per as-of date: a second start resumes it.
CREATE UNIQUE INDEX billing_runs_running_key ON billing_runs (as_of) WHERE status = 'running';

CREATE TABLE invoices (
    id             uuid PRIMARY KEY,
    subscriber_id  uuid NOT NULL,            -- subscribers (id), see above
    number         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('draft', 'issued', 'paid', 'void')),
    currency       TEXT NOT NULL,
    period_start   TEXT NOT NULL,
    period_end     TEXT NOT NULL,
    issued_at      BIGINT NOT NULL,
    due_date       TEXT NOT NULL,
    subtotal_minor BIGINT NOT NULL,
    tax_minor      BIGINT NOT NULL,
    total_minor    BIGINT NOT NULL,
    billing_run_id uuid                      -- billing_runs (id), see above
);
CREATE UNIQUE INDEX invoices_number_key ON invoices (number);
-- One invoice per subscriber and period, whatever runs race: the idempotency of billing.
-- Also serves billing_inputs' range scan by subscriber.
CREATE UNIQUE INDEX invoices_subscriber_id_period_start_key ON invoices (subscriber_id, period_start);

CREATE TABLE invoice_lines (
    id                  uuid PRIMARY KEY,
    invoice_id          uuid NOT NULL,       -- invoices (id), see above
    subscriber_id       uuid NOT NULL,
    position            BIGINT NOT NULL,
    description         TEXT NOT NULL,
    service_id          uuid NOT NULL,       -- services (id), see above
    charge_kind         TEXT NOT NULL CHECK (charge_kind IN ('recurring', 'setup_fee', 'early_termination')),
    charge_period_start TEXT NOT NULL,
    plan_version_id     uuid NOT NULL,       -- plan_versions (id), see above
    correction          BIGINT NOT NULL,
    days                BIGINT NOT NULL,
    period_days         BIGINT NOT NULL,
    amount_minor        BIGINT NOT NULL
);
CREATE INDEX invoice_lines_invoice_id_idx ON invoice_lines (invoice_id);
CREATE INDEX invoice_lines_subscriber_id_idx ON invoice_lines (subscriber_id);
CREATE INDEX service_events_subscriber_id_idx ON service_events (subscriber_id);
