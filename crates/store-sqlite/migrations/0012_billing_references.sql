-- Billing's references are checked by the store, as on PostgreSQL (SQLite). Kept in step with
-- store-postgres.
--
-- invoices.subscriber_id, invoices.billing_run_id, invoice_lines.invoice_id,
-- invoice_lines.service_id and invoice_lines.plan_version_id are no longer declared foreign
-- keys: commit_billing_batch, the only writer of these tables, checks them with a few
-- set-based statements per batch inside its transaction, failing the same way
-- (StoreError::InUse). Declared, SQLite probed every parent per inserted row (five text-key
-- index searches per invoice, three per line) and scanned the children of each inserted
-- invoice: a quarter of a billing run's writer time. Nothing deletes subscribers, services,
-- plan versions, billing runs or invoices, so the check at insert is the whole constraint.
-- credit_notes and dunning_actions keep their declared references to invoices.
--
-- SQLite cannot drop a constraint, so both tables are rebuilt (the migration runner turns
-- foreign keys off around migrations and checks them before committing). The view over
-- invoices is dropped and made again: a table rename re-reads every view.
DROP VIEW ledger_entries;

CREATE TABLE invoices_new (
    id                 TEXT PRIMARY KEY,
    subscriber_id      TEXT NOT NULL,       -- subscribers (id), see above
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
    billing_run_id     TEXT,                -- billing_runs (id), see above
    voided_at          INTEGER,
    void_reason        TEXT,
    -- Numbered exactly when issued (a void draft never was).
    CHECK (status <> 'draft' OR number IS NULL),
    CHECK (status IN ('draft', 'void') OR number IS NOT NULL),
    CHECK ((status = 'void') = (voided_at IS NOT NULL))
) STRICT, WITHOUT ROWID;
INSERT INTO invoices_new
    SELECT id, subscriber_id, number, status, currency, period_start, period_end, created_at,
           issued_at, due_date, subtotal_minor, tax_minor, total_minor, prices_include_tax,
           billing_run_id, voided_at, void_reason
    FROM invoices;

CREATE TABLE invoice_lines_new (
    id                  TEXT PRIMARY KEY,
    invoice_id          TEXT NOT NULL,      -- invoices (id), see above
    subscriber_id       TEXT NOT NULL,
    position            INTEGER NOT NULL,
    description         TEXT NOT NULL,
    service_id          TEXT NOT NULL,      -- services (id), see above
    charge_kind         TEXT NOT NULL
        CHECK (charge_kind IN ('recurring', 'setup_fee', 'early_termination', 'discount')),
    charge_period_start TEXT NOT NULL,
    plan_version_id     TEXT NOT NULL,      -- plan_versions (id), see above
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
           tax_minor, taxes
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
-- The dunning job's worklist: issued, unpaid invoices by due date.
CREATE INDEX invoices_unpaid_due_date_idx ON invoices (due_date) WHERE status = 'issued';
-- List filters, each serving its order and cursor (see 0008).
CREATE INDEX invoices_status_idx ON invoices (status, id);
CREATE INDEX invoices_period_start_idx ON invoices (period_start, id);
CREATE INDEX invoices_subscriber_id_idx ON invoices (subscriber_id, id);
CREATE INDEX invoice_lines_invoice_id_idx ON invoice_lines (invoice_id);

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
