-- Billing: runs, invoices and their lines (SQLite). Kept in step with store-postgres.
-- Dates (civil, operator time zone) are TEXT 'YYYY-MM-DD'.

CREATE TABLE billing_runs (
    id                    TEXT PRIMARY KEY,
    as_of                 TEXT NOT NULL,
    status                TEXT NOT NULL CHECK (status IN ('running', 'completed')),
    started_at            INTEGER NOT NULL,
    finished_at           INTEGER,
    cursor                TEXT,
    subscribers_processed INTEGER NOT NULL,
    invoices_created      INTEGER NOT NULL,
    errors                TEXT NOT NULL
) STRICT;
-- At most one unfinished run per as-of date: a second start resumes it.
CREATE UNIQUE INDEX billing_runs_running_key ON billing_runs (as_of) WHERE status = 'running';

CREATE TABLE invoices (
    id             TEXT PRIMARY KEY,
    subscriber_id  TEXT NOT NULL REFERENCES subscribers (id),
    number         TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('draft', 'issued', 'paid', 'void')),
    currency       TEXT NOT NULL,
    period_start   TEXT NOT NULL,
    period_end     TEXT NOT NULL,
    issued_at      INTEGER NOT NULL,
    due_date       TEXT NOT NULL,
    subtotal_minor INTEGER NOT NULL,
    tax_minor      INTEGER NOT NULL,
    total_minor    INTEGER NOT NULL,
    billing_run_id TEXT REFERENCES billing_runs (id)
) STRICT;
CREATE UNIQUE INDEX invoices_number_key ON invoices (number);
-- One invoice per subscriber and period, whatever runs race: the idempotency of billing.
CREATE UNIQUE INDEX invoices_subscriber_id_period_start_key ON invoices (subscriber_id, period_start);

CREATE TABLE invoice_lines (
    id                  TEXT PRIMARY KEY,
    invoice_id          TEXT NOT NULL REFERENCES invoices (id),
    subscriber_id       TEXT NOT NULL,
    position            INTEGER NOT NULL,
    description         TEXT NOT NULL,
    service_id          TEXT NOT NULL REFERENCES services (id),
    charge_kind         TEXT NOT NULL CHECK (charge_kind IN ('recurring', 'setup_fee', 'early_termination')),
    charge_period_start TEXT NOT NULL,
    plan_version_id     TEXT NOT NULL REFERENCES plan_versions (id),
    correction          INTEGER NOT NULL,
    days                INTEGER NOT NULL,
    period_days         INTEGER NOT NULL,
    amount_minor        INTEGER NOT NULL
) STRICT;
CREATE INDEX invoice_lines_invoice_id_idx ON invoice_lines (invoice_id);
CREATE INDEX invoice_lines_subscriber_id_idx ON invoice_lines (subscriber_id);
CREATE INDEX service_events_subscriber_id_idx ON service_events (subscriber_id);
