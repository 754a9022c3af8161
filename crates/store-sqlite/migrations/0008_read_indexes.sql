-- Reads that stay fast at scale (SQLite). Kept in step with store-postgres: the same index
-- names. Every list is keyset-paginated in id order (`... AND id > $after ORDER BY id LIMIT n`),
-- so each filter gets an index whose leading column is the filter and whose next column is id:
-- the index then yields the page in order and stops after n rows, however many match.
-- (Tables here are rowid tables with a TEXT primary key, so an index on (x) alone is ordered
-- by rowid, not id; invoices is WITHOUT ROWID, where (x) would do, but is written the same.)

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
-- number, e-mail or phone, or of a service's login, MAC or static address. Two FTS5 tables
-- with the trigram tokenizer index every 3-character substring (case folded); the store asks
-- them for candidates and re-checks each with the LIKE it always used, so the answer is the
-- same as a scan's. PostgreSQL has pg_trgm GIN indexes instead (subscribers_search_idx,
-- services_search_idx); these tables exist only here (the migrations test pairs them).
--
-- External content: the text stays in subscribers and services; the FTS tables hold only
-- the index, keyed by the row's rowid. SQLite's VACUUM keeps the rowids of a table that has
-- an index (each of these has its primary key's), so the keys stay valid. Triggers keep the
-- index in the writing transaction; an update that leaves the searched columns alone does
-- not touch it.
CREATE VIRTUAL TABLE subscribers_fts USING fts5(
    name, number, email, phone,
    content = 'subscribers', content_rowid = 'rowid', tokenize = 'trigram'
);
INSERT INTO subscribers_fts (subscribers_fts) VALUES ('rebuild');

CREATE TRIGGER subscribers_fts_insert AFTER INSERT ON subscribers BEGIN
    INSERT INTO subscribers_fts (rowid, name, number, email, phone)
        VALUES (new.rowid, new.name, new.number, new.email, new.phone);
END;
CREATE TRIGGER subscribers_fts_delete AFTER DELETE ON subscribers BEGIN
    INSERT INTO subscribers_fts (subscribers_fts, rowid, name, number, email, phone)
        VALUES ('delete', old.rowid, old.name, old.number, old.email, old.phone);
END;
CREATE TRIGGER subscribers_fts_update AFTER UPDATE OF name, number, email, phone ON subscribers
    WHEN old.name IS NOT new.name OR old.number IS NOT new.number
        OR old.email IS NOT new.email OR old.phone IS NOT new.phone
BEGIN
    INSERT INTO subscribers_fts (subscribers_fts, rowid, name, number, email, phone)
        VALUES ('delete', old.rowid, old.name, old.number, old.email, old.phone);
    INSERT INTO subscribers_fts (rowid, name, number, email, phone)
        VALUES (new.rowid, new.name, new.number, new.email, new.phone);
END;

CREATE VIRTUAL TABLE services_fts USING fts5(
    username, mac_address, static_ip,
    content = 'services', content_rowid = 'rowid', tokenize = 'trigram'
);
INSERT INTO services_fts (services_fts) VALUES ('rebuild');

CREATE TRIGGER services_fts_insert AFTER INSERT ON services BEGIN
    INSERT INTO services_fts (rowid, username, mac_address, static_ip)
        VALUES (new.rowid, new.username, new.mac_address, new.static_ip);
END;
CREATE TRIGGER services_fts_delete AFTER DELETE ON services BEGIN
    INSERT INTO services_fts (services_fts, rowid, username, mac_address, static_ip)
        VALUES ('delete', old.rowid, old.username, old.mac_address, old.static_ip);
END;
CREATE TRIGGER services_fts_update AFTER UPDATE OF username, mac_address, static_ip ON services
    WHEN old.username IS NOT new.username OR old.mac_address IS NOT new.mac_address
        OR old.static_ip IS NOT new.static_ip
BEGIN
    INSERT INTO services_fts (services_fts, rowid, username, mac_address, static_ip)
        VALUES ('delete', old.rowid, old.username, old.mac_address, old.static_ip);
    INSERT INTO services_fts (rowid, username, mac_address, static_ip)
        VALUES (new.rowid, new.username, new.mac_address, new.static_ip);
END;
