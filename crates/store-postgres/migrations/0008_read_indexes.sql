-- Reads that stay fast at scale (PostgreSQL). Kept in step with store-sqlite: the same index
-- names. Every list is keyset-paginated in id order (`... AND id > $after ORDER BY id LIMIT n`),
-- so each filter gets an index whose leading column is the filter and whose next column is id:
-- the index then yields the page in order and stops after n rows, however many match.

-- Where a list has several filters, its query leaves all but the most selective one out of
-- index use on SQLite (`+col = $n`), which has no statistics to tell; and each table's
-- indexes are created least selective first, since SQLite, when two indexes look alike,
-- prefers the one created last.

-- Subscribers: by status (the number is unique already).
DROP INDEX subscribers_status_idx;
CREATE INDEX subscribers_status_idx ON subscribers (status, id);

-- Services: by status, plan, NAS, subscriber.
CREATE INDEX services_status_idx ON services (status, id);
DROP INDEX services_plan_id_idx;
CREATE INDEX services_plan_id_idx ON services (plan_id, id);
DROP INDEX services_nas_id_idx;
CREATE INDEX services_nas_id_idx ON services (nas_id, id);
DROP INDEX services_subscriber_id_idx;
CREATE INDEX services_subscriber_id_idx ON services (subscriber_id, id);

-- Audit trail: by entity type, actor, subscriber, entity id. The old (entity_type, entity_id)
-- index could serve neither a filter on entity_id alone nor the id order; entity_type and
-- entity_id together now use the entity_id index (an id is all but unique).
DROP INDEX audit_events_entity_idx;
CREATE INDEX audit_events_entity_type_idx ON audit_events (entity_type, id);
DROP INDEX audit_events_actor_id_idx;
CREATE INDEX audit_events_actor_id_idx ON audit_events (actor_id, id);
DROP INDEX audit_events_subscriber_id_idx;
CREATE INDEX audit_events_subscriber_id_idx ON audit_events (subscriber_id, id);
CREATE INDEX audit_events_entity_id_idx ON audit_events (entity_id, id);

-- Provisioning jobs: by status, kind, subscriber, service (the runnable index stays for
-- claiming, which orders by run_after).
CREATE INDEX provisioning_jobs_status_idx ON provisioning_jobs (status, id);
CREATE INDEX provisioning_jobs_kind_idx ON provisioning_jobs (kind, id);
DROP INDEX provisioning_jobs_subscriber_id_idx;
CREATE INDEX provisioning_jobs_subscriber_id_idx ON provisioning_jobs (subscriber_id, id);
DROP INDEX provisioning_jobs_service_id_idx;
CREATE INDEX provisioning_jobs_service_id_idx ON provisioning_jobs (service_id, id);

-- Invoices: by status, period, subscriber (the number is unique already).
CREATE INDEX invoices_status_idx ON invoices (status, id);
CREATE INDEX invoices_period_start_idx ON invoices (period_start, id);
DROP INDEX invoices_subscriber_id_idx;
CREATE INDEX invoices_subscriber_id_idx ON invoices (subscriber_id, id);

-- Money documents: by subscriber (credit notes also by invoice, more selective).
DROP INDEX payments_subscriber_id_idx;
CREATE INDEX payments_subscriber_id_idx ON payments (subscriber_id, id);
DROP INDEX credit_notes_subscriber_id_idx;
CREATE INDEX credit_notes_subscriber_id_idx ON credit_notes (subscriber_id, id);
DROP INDEX credit_notes_invoice_id_idx;
CREATE INDEX credit_notes_invoice_id_idx ON credit_notes (invoice_id, id);
DROP INDEX refunds_subscriber_id_idx;
CREATE INDEX refunds_subscriber_id_idx ON refunds (subscriber_id, id);
DROP INDEX allocations_subscriber_id_idx;
CREATE INDEX allocations_subscriber_id_idx ON allocations (subscriber_id, id);
-- What is allocated of each document: a subscriber's account sums its allocations per credit
-- and per debit (get_account, read by the ledger, by every payment listed and by every money
-- write); without these each sum scanned the whole table.
CREATE INDEX allocations_credit_idx ON allocations (credit_kind, credit_id);
CREATE INDEX allocations_debit_idx ON allocations (debit_kind, debit_id);
DROP INDEX discounts_subscriber_id_idx;
CREATE INDEX discounts_subscriber_id_idx ON discounts (subscriber_id, id);

-- Subscriber search (`list_subscribers` with `q`): a case-insensitive substring of name,
-- number, e-mail or phone, or of a service's login, MAC or static address, written as
-- `lower(col) LIKE lower($q)`. pg_trgm's GIN operator class answers such a LIKE from the
-- index when the pattern has 3 or more characters; one multi-column index per table (each
-- column's condition is a bitmap scan of it, OR-ed). SQLite has FTS5 trigram tables instead
-- (subscribers_fts, services_fts); these two indexes exist only here (the migrations test
-- pairs them). pg_trgm is a trusted extension (PostgreSQL 13+): the database owner may
-- create it; it ships with PostgreSQL (contrib).
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE INDEX subscribers_search_idx ON subscribers USING gin (
    lower(name) gin_trgm_ops, lower(number) gin_trgm_ops, lower(email) gin_trgm_ops,
    lower(phone) gin_trgm_ops
);
CREATE INDEX services_search_idx ON services USING gin (
    lower(username) gin_trgm_ops, lower(mac_address) gin_trgm_ops, lower(static_ip) gin_trgm_ops
);
-- Statistics for the new expression indexes (lower(name), …), which the planner needs to
-- weigh a LIKE against walking the primary key; ANALYZE otherwise waits for enough writes.
ANALYZE subscribers;
ANALYZE services;
