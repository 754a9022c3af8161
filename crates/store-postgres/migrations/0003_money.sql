-- Money: drafts, taxes, discounts, payments, credit notes, refunds, allocations, dunning
-- (PostgreSQL). Kept in step with store-sqlite.

-- Drafts have no number, issue date or due date yet; lines may be discounts and carry tax.
ALTER TABLE invoices ALTER COLUMN number DROP NOT NULL;
ALTER TABLE invoices ALTER COLUMN issued_at DROP NOT NULL;
ALTER TABLE invoices ALTER COLUMN due_date DROP NOT NULL;
ALTER TABLE invoices ADD COLUMN created_at BIGINT;
UPDATE invoices SET created_at = issued_at;
ALTER TABLE invoices ALTER COLUMN created_at SET NOT NULL;
ALTER TABLE invoices ADD COLUMN prices_include_tax BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE invoices ADD COLUMN voided_at BIGINT;
ALTER TABLE invoices ADD COLUMN void_reason TEXT;
-- Numbered exactly when issued (a void draft never was).
ALTER TABLE invoices ADD CHECK (status <> 'draft' OR number IS NULL);
ALTER TABLE invoices ADD CHECK (status IN ('draft', 'void') OR number IS NOT NULL);
ALTER TABLE invoices ADD CHECK ((status = 'void') = (voided_at IS NOT NULL));
-- One live invoice per subscriber and period, whatever runs race: the idempotency of billing.
-- A void one no longer counts, so the period can be billed again.
DROP INDEX invoices_subscriber_id_period_start_key;
CREATE UNIQUE INDEX invoices_subscriber_id_period_start_key
    ON invoices (subscriber_id, period_start) WHERE status <> 'void';
CREATE INDEX invoices_subscriber_id_idx ON invoices (subscriber_id);
-- The dunning job's worklist: issued, unpaid invoices by due date.
CREATE INDEX invoices_unpaid_due_date_idx ON invoices (due_date) WHERE status = 'issued';

ALTER TABLE invoice_lines DROP CONSTRAINT invoice_lines_charge_kind_check;
ALTER TABLE invoice_lines ADD CONSTRAINT invoice_lines_charge_kind_check
    CHECK (charge_kind IN ('recurring', 'setup_fee', 'early_termination', 'discount'));
ALTER TABLE invoice_lines ADD COLUMN tax_minor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invoice_lines ADD COLUMN taxes jsonb;
-- Lines are read by subscriber through their invoices (invoices_subscriber_id_idx).
DROP INDEX invoice_lines_subscriber_id_idx;

-- A run for one subscriber is its own scope: it never joins or resumes a full run.
ALTER TABLE billing_runs ADD COLUMN subscriber_id uuid REFERENCES subscribers (id);
DROP INDEX billing_runs_running_key;
CREATE UNIQUE INDEX billing_runs_running_key ON billing_runs (as_of)
    WHERE status = 'running' AND subscriber_id IS NULL;

-- Guards every change of a subscriber's money documents and allocations.
ALTER TABLE subscribers ADD COLUMN account_revision BIGINT NOT NULL DEFAULT 0;
ALTER TABLE subscribers ADD COLUMN dunning_policy TEXT;

CREATE TABLE tax_zones (
    id                 uuid PRIMARY KEY,
    code               TEXT NOT NULL,
    name               TEXT NOT NULL,
    prices_include_tax BOOLEAN NOT NULL,
    taxes              jsonb NOT NULL,
    created_at         BIGINT NOT NULL,
    updated_at         BIGINT NOT NULL,
    revision           BIGINT NOT NULL
);
CREATE UNIQUE INDEX tax_zones_code_key ON tax_zones (code);

CREATE TABLE discounts (
    id            uuid PRIMARY KEY,
    subscriber_id uuid NOT NULL REFERENCES subscribers (id),
    service_id    uuid REFERENCES services (id),
    value         jsonb NOT NULL,
    starts_on     TEXT NOT NULL,
    ends_on       TEXT,
    description   TEXT NOT NULL,
    created_at    BIGINT NOT NULL
);
CREATE INDEX discounts_subscriber_id_idx ON discounts (subscriber_id);

CREATE TABLE dunning_policies (
    id                  uuid PRIMARY KEY,
    code                TEXT NOT NULL,
    name                TEXT NOT NULL,
    steps               jsonb NOT NULL,
    bill_suspended_days BOOLEAN NOT NULL,
    is_default          BOOLEAN NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    revision            BIGINT NOT NULL
);
CREATE UNIQUE INDEX dunning_policies_code_key ON dunning_policies (code);
CREATE UNIQUE INDEX dunning_policies_default_key ON dunning_policies (is_default) WHERE is_default;

CREATE TABLE payments (
    id            uuid PRIMARY KEY,
    subscriber_id uuid NOT NULL REFERENCES subscribers (id),
    currency      TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    method        TEXT NOT NULL,
    reference     TEXT,
    external_id   TEXT,
    received_at   BIGINT NOT NULL,
    recorded_at   BIGINT NOT NULL
);
CREATE INDEX payments_subscriber_id_idx ON payments (subscriber_id);
CREATE UNIQUE INDEX payments_external_id_key ON payments (external_id) WHERE external_id IS NOT NULL;

CREATE TABLE credit_notes (
    id             uuid PRIMARY KEY,
    number         TEXT NOT NULL,
    subscriber_id  uuid NOT NULL REFERENCES subscribers (id),
    invoice_id     uuid NOT NULL,            -- invoices (id): see 0002 on billing foreign keys
    currency       TEXT NOT NULL,
    reason         TEXT NOT NULL,
    subtotal_minor BIGINT NOT NULL,
    tax_minor      BIGINT NOT NULL,
    total_minor    BIGINT NOT NULL CHECK (total_minor > 0),
    issued_at      BIGINT NOT NULL
);
CREATE UNIQUE INDEX credit_notes_number_key ON credit_notes (number);
CREATE INDEX credit_notes_subscriber_id_idx ON credit_notes (subscriber_id);
CREATE INDEX credit_notes_invoice_id_idx ON credit_notes (invoice_id);

CREATE TABLE refunds (
    id            uuid PRIMARY KEY,
    subscriber_id uuid NOT NULL REFERENCES subscribers (id),
    currency      TEXT NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    method        TEXT NOT NULL,
    reference     TEXT,
    reason        TEXT NOT NULL,
    refunded_at   BIGINT NOT NULL
);
CREATE INDEX refunds_subscriber_id_idx ON refunds (subscriber_id);

-- Part of a credit (payment, credit note, negative invoice) applied to a debit (invoice,
-- refund). Documents of several tables, so no foreign keys: written only with them.
CREATE TABLE allocations (
    id            uuid PRIMARY KEY,
    subscriber_id uuid NOT NULL REFERENCES subscribers (id),
    credit_kind   TEXT NOT NULL CHECK (credit_kind IN ('payment', 'credit_note', 'invoice')),
    credit_id     uuid NOT NULL,
    debit_kind    TEXT NOT NULL CHECK (debit_kind IN ('invoice', 'refund')),
    debit_id      uuid NOT NULL,
    amount_minor  BIGINT NOT NULL CHECK (amount_minor > 0),
    created_at    BIGINT NOT NULL
);
CREATE INDEX allocations_subscriber_id_idx ON allocations (subscriber_id);

CREATE TABLE dunning_actions (
    id            uuid PRIMARY KEY,
    subscriber_id uuid NOT NULL REFERENCES subscribers (id),
    invoice_id    uuid NOT NULL,             -- invoices (id): see 0002 on billing foreign keys
    days_overdue  BIGINT NOT NULL,
    action        TEXT NOT NULL CHECK (action IN ('remind', 'suspend', 'terminate')),
    performed_at  BIGINT NOT NULL
);
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
