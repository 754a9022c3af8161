-- Money: drafts, taxes, discounts, payments, credit notes, refunds, allocations, dunning
-- (SQLite). Kept in step with store-postgres.

-- Drafts have no number, issue date or due date yet; lines may be discounts and carry tax.
-- SQLite cannot relax NOT NULL or change a CHECK in place, so both tables are rebuilt, as
-- WITHOUT ROWID tables: their UUIDv7 keys are time-ordered, and a row then lives in its
-- primary key's b-tree instead of a rowid table plus a key index (one insert less per row on
-- the billing run's hot path).
CREATE TABLE invoices_new (
    id                 TEXT PRIMARY KEY,
    subscriber_id      TEXT NOT NULL REFERENCES subscribers (id),
    number             TEXT,
    status             TEXT NOT NULL CHECK (status IN ('draft', 'issued', 'paid', 'void')),
    currency           TEXT NOT NULL,
    period_start       TEXT NOT NULL,
    period_end         TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    issued_at          INTEGER,
    due_date           TEXT,
    subtotal_minor     INTEGER NOT NULL,
    tax_minor          INTEGER NOT NULL,
    total_minor        INTEGER NOT NULL,
    prices_include_tax INTEGER NOT NULL,
    billing_run_id     TEXT REFERENCES billing_runs (id),
    voided_at          INTEGER,
    void_reason        TEXT,
    -- Numbered exactly when issued (a void draft never was).
    CHECK (status <> 'draft' OR number IS NULL),
    CHECK (status IN ('draft', 'void') OR number IS NOT NULL),
    CHECK ((status = 'void') = (voided_at IS NOT NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO invoices_new
    SELECT id, subscriber_id, number, status, currency, period_start, period_end, issued_at,
           issued_at, due_date, subtotal_minor, tax_minor, total_minor, 0, billing_run_id,
           NULL, NULL
    FROM invoices;

CREATE TABLE invoice_lines_new (
    id                  TEXT PRIMARY KEY,
    invoice_id          TEXT NOT NULL REFERENCES invoices_new (id),
    subscriber_id       TEXT NOT NULL,
    position            INTEGER NOT NULL,
    description         TEXT NOT NULL,
    service_id          TEXT NOT NULL REFERENCES services (id),
    charge_kind         TEXT NOT NULL
        CHECK (charge_kind IN ('recurring', 'setup_fee', 'early_termination', 'discount')),
    charge_period_start TEXT NOT NULL,
    plan_version_id     TEXT NOT NULL REFERENCES plan_versions (id),
    correction          INTEGER NOT NULL,
    days                INTEGER NOT NULL,
    period_days         INTEGER NOT NULL,
    amount_minor        INTEGER NOT NULL,
    tax_minor           INTEGER NOT NULL,
    taxes               TEXT
) STRICT, WITHOUT ROWID;
INSERT INTO invoice_lines_new
    SELECT id, invoice_id, subscriber_id, position, description, service_id, charge_kind,
           charge_period_start, plan_version_id, correction, days, period_days, amount_minor,
           0, NULL
    FROM invoice_lines;

DROP TABLE invoice_lines;
DROP TABLE invoices;
ALTER TABLE invoices_new RENAME TO invoices;
ALTER TABLE invoice_lines_new RENAME TO invoice_lines;
CREATE UNIQUE INDEX invoices_number_key ON invoices (number);
-- One live invoice per subscriber and period, whatever runs race: the idempotency of billing.
-- A void one no longer counts, so the period can be billed again.
CREATE UNIQUE INDEX invoices_subscriber_id_period_start_key
    ON invoices (subscriber_id, period_start) WHERE status <> 'void';
CREATE INDEX invoices_subscriber_id_idx ON invoices (subscriber_id);
-- The dunning job's worklist: issued, unpaid invoices by due date.
CREATE INDEX invoices_unpaid_due_date_idx ON invoices (due_date) WHERE status = 'issued';
CREATE INDEX invoice_lines_invoice_id_idx ON invoice_lines (invoice_id);
-- Lines are read by subscriber through their invoices (invoices_subscriber_id_idx), so they
-- need no subscriber index of their own.

-- A run for one subscriber is its own scope: it never joins or resumes a full run.
ALTER TABLE billing_runs ADD COLUMN subscriber_id TEXT REFERENCES subscribers (id);
DROP INDEX billing_runs_running_key;
CREATE UNIQUE INDEX billing_runs_running_key ON billing_runs (as_of)
    WHERE status = 'running' AND subscriber_id IS NULL;

-- Guards every change of a subscriber's money documents and allocations.
ALTER TABLE subscribers ADD COLUMN account_revision INTEGER NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN dunning_policy TEXT;

CREATE TABLE tax_zones (
    id                 TEXT PRIMARY KEY,
    code               TEXT NOT NULL,
    name               TEXT NOT NULL,
    prices_include_tax INTEGER NOT NULL,
    taxes              TEXT NOT NULL,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    revision           INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX tax_zones_code_key ON tax_zones (code);

CREATE TABLE discounts (
    id            TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    service_id    TEXT REFERENCES services (id),
    value         TEXT NOT NULL,
    starts_on     TEXT NOT NULL,
    ends_on       TEXT,
    description   TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX discounts_subscriber_id_idx ON discounts (subscriber_id);

CREATE TABLE dunning_policies (
    id                  TEXT PRIMARY KEY,
    code                TEXT NOT NULL,
    name                TEXT NOT NULL,
    steps               TEXT NOT NULL,
    bill_suspended_days INTEGER NOT NULL,
    is_default          INTEGER NOT NULL,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL,
    revision            INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX dunning_policies_code_key ON dunning_policies (code);
CREATE UNIQUE INDEX dunning_policies_default_key ON dunning_policies (is_default) WHERE is_default = 1;

CREATE TABLE payments (
    id            TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    currency      TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    method        TEXT NOT NULL,
    reference     TEXT,
    external_id   TEXT,
    received_at   INTEGER NOT NULL,
    recorded_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX payments_subscriber_id_idx ON payments (subscriber_id);
CREATE UNIQUE INDEX payments_external_id_key ON payments (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE credit_notes (
    id             TEXT PRIMARY KEY,
    number         TEXT NOT NULL,
    subscriber_id  TEXT NOT NULL REFERENCES subscribers (id),
    invoice_id     TEXT NOT NULL REFERENCES invoices (id),
    currency       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    subtotal_minor INTEGER NOT NULL,
    tax_minor      INTEGER NOT NULL,
    total_minor    INTEGER NOT NULL CHECK (total_minor > 0),
    issued_at      INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX credit_notes_number_key ON credit_notes (number);
CREATE INDEX credit_notes_subscriber_id_idx ON credit_notes (subscriber_id);
CREATE INDEX credit_notes_invoice_id_idx ON credit_notes (invoice_id);

CREATE TABLE refunds (
    id            TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    currency      TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    method        TEXT NOT NULL,
    reference     TEXT,
    reason        TEXT NOT NULL,
    refunded_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX refunds_subscriber_id_idx ON refunds (subscriber_id);

-- Part of a credit (payment, credit note, negative invoice) applied to a debit (invoice,
-- refund). Documents of several tables, so no foreign keys: written only with them.
CREATE TABLE allocations (
    id            TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    credit_kind   TEXT NOT NULL CHECK (credit_kind IN ('payment', 'credit_note', 'invoice')),
    credit_id     TEXT NOT NULL,
    debit_kind    TEXT NOT NULL CHECK (debit_kind IN ('invoice', 'refund')),
    debit_id      TEXT NOT NULL,
    amount_minor  INTEGER NOT NULL CHECK (amount_minor > 0),
    created_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX allocations_subscriber_id_idx ON allocations (subscriber_id);

CREATE TABLE dunning_actions (
    id            TEXT PRIMARY KEY,
    subscriber_id TEXT NOT NULL REFERENCES subscribers (id),
    invoice_id    TEXT NOT NULL REFERENCES invoices (id),
    days_overdue  INTEGER NOT NULL,
    action        TEXT NOT NULL CHECK (action IN ('remind', 'suspend', 'terminate')),
    performed_at  INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX dunning_actions_step_key ON dunning_actions (invoice_id, days_overdue, action);
CREATE INDEX dunning_actions_subscriber_id_idx ON dunning_actions (subscriber_id);

-- The ledger: every money document's effect on the balance, derived from the documents
-- themselves (they are immutable once issued), so it cannot drift from them.
CREATE VIEW ledger_entries AS
    SELECT subscriber_id, 'invoice' AS kind, id AS document_id, number AS label,
           issued_at AS at, total_minor AS amount_minor
    FROM invoices WHERE number IS NOT NULL
    UNION ALL
    SELECT subscriber_id, 'invoice_void', id, number, voided_at, -total_minor
    FROM invoices WHERE status = 'void' AND number IS NOT NULL
    UNION ALL
    SELECT subscriber_id, 'credit_note', id, number, issued_at, -total_minor FROM credit_notes
    UNION ALL
    SELECT subscriber_id, 'payment', id, reference, received_at, -amount_minor FROM payments
    UNION ALL
    SELECT subscriber_id, 'refund', id, reference, refunded_at, amount_minor FROM refunds;
