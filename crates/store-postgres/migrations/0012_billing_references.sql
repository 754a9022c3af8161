-- Billing's references are checked by the store (PostgreSQL). Kept in step with store-sqlite,
-- where this version rebuilds invoices and invoice_lines without their declared foreign keys.
-- PostgreSQL never declared them (see 0002_billing.sql): nothing changes here.
SELECT 1;
