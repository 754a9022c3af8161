//! Billing configuration (tax zones, dunning policies, discounts, settings) and money: accounts, payments, credit notes, refunds, allocations, the ledger, dunning.

use crate::prelude::*;
use lastmile_domain::validate::Currency;
use std::collections::HashMap;

/// Most ids in one `IN` list, and most rows in one multi-row insert: well under both
/// backends' limits on bound parameters (SQLite 32766, PostgreSQL 65535).
const CHUNK: usize = 500;

// Tax zones -------------------------------------------------------------------------------

const INSERT_TAX_ZONE: &str = "INSERT INTO tax_zones (id, code, name, prices_include_tax, taxes,
         created_at, updated_at, revision)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const UPDATE_TAX_ZONE: &str = "UPDATE tax_zones SET code = $2, name = $3, prices_include_tax = $4,
         taxes = $5, updated_at = $6, revision = $7
     WHERE id = $1 AND revision = $8";

pub async fn insert_tax_zone<C: Conn>(c: &mut C, zone: &TaxZone, audit: &AuditEvent) -> Result<()> {
    c.execute(
        INSERT_TAX_ZONE,
        &[
            zone.id.0.into(),
            zone.code.as_str().into(),
            zone.name.as_str().into(),
            zone.prices_include_tax.into(),
            Param::json(to_json(&zone.taxes)?),
            Param::at(zone.created_at),
            Param::at(zone.updated_at),
            zone.revision.into(),
        ],
    )
    .await?;
    insert_audit(c, audit).await
}

pub async fn update_tax_zone<C: Conn>(
    c: &mut C,
    zone: &TaxZone,
    expected_revision: i64,
    audit: &AuditEvent,
) -> Result<()> {
    let done = c
        .execute(
            UPDATE_TAX_ZONE,
            &[
                zone.id.0.into(),
                zone.code.as_str().into(),
                zone.name.as_str().into(),
                zone.prices_include_tax.into(),
                Param::json(to_json(&zone.taxes)?),
                Param::at(zone.updated_at),
                zone.revision.into(),
                expected_revision.into(),
            ],
        )
        .await?;
    expect_one(done, "tax zone")?;
    insert_audit(c, audit).await
}

pub async fn get_tax_zone<C: Conn>(c: &mut C, id: TaxZoneId) -> Result<Option<TaxZone>> {
    fetch_opt(
        c,
        "SELECT * FROM tax_zones WHERE id = $1",
        &[id.0.into()],
        rows::tax_zone,
    )
    .await
}

pub async fn list_tax_zones<C: Conn>(c: &mut C) -> Result<Vec<TaxZone>> {
    fetch_all(
        c,
        "SELECT * FROM tax_zones ORDER BY code",
        &[],
        rows::tax_zone,
    )
    .await
}

// Dunning policies ------------------------------------------------------------------------

const INSERT_DUNNING_POLICY: &str = "INSERT INTO dunning_policies (id, code, name, steps,
         bill_suspended_days, is_default, created_at, updated_at, revision)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const UPDATE_DUNNING_POLICY: &str = "UPDATE dunning_policies SET code = $2, name = $3, steps = $4,
         bill_suspended_days = $5, is_default = $6, updated_at = $7, revision = $8
     WHERE id = $1 AND revision = $9";

/// The boolean literals are accepted by both (SQLite reads them as 1 and 0, which its partial
/// index `WHERE is_default = 1` matches).
const CLEAR_DEFAULT_POLICY: &str =
    "UPDATE dunning_policies SET is_default = FALSE, revision = revision + 1
     WHERE is_default = TRUE AND id <> $1";

/// Another policy stops being the default (one default at most, by a unique index too).
async fn clear_default<C: Conn>(c: &mut C, except: DunningPolicyId) -> Result<()> {
    c.execute(CLEAR_DEFAULT_POLICY, &[except.0.into()]).await?;
    Ok(())
}

pub async fn insert_dunning_policy<C: Conn>(
    c: &mut C,
    policy: &DunningPolicy,
    audit: &AuditEvent,
) -> Result<()> {
    let p = policy;
    if p.is_default {
        clear_default(c, p.id).await?;
    }
    c.execute(
        INSERT_DUNNING_POLICY,
        &[
            p.id.0.into(),
            p.code.as_str().into(),
            p.name.as_str().into(),
            Param::json(to_json(&p.steps)?),
            p.bill_suspended_days.into(),
            p.is_default.into(),
            Param::at(p.created_at),
            Param::at(p.updated_at),
            p.revision.into(),
        ],
    )
    .await?;
    insert_audit(c, audit).await
}

pub async fn update_dunning_policy<C: Conn>(
    c: &mut C,
    policy: &DunningPolicy,
    expected_revision: i64,
    audit: &AuditEvent,
) -> Result<()> {
    let p = policy;
    if p.is_default {
        clear_default(c, p.id).await?;
    }
    let done = c
        .execute(
            UPDATE_DUNNING_POLICY,
            &[
                p.id.0.into(),
                p.code.as_str().into(),
                p.name.as_str().into(),
                Param::json(to_json(&p.steps)?),
                p.bill_suspended_days.into(),
                p.is_default.into(),
                Param::at(p.updated_at),
                p.revision.into(),
                expected_revision.into(),
            ],
        )
        .await?;
    expect_one(done, "dunning policy")?;
    insert_audit(c, audit).await
}

pub async fn get_dunning_policy<C: Conn>(
    c: &mut C,
    id: DunningPolicyId,
) -> Result<Option<DunningPolicy>> {
    fetch_opt(
        c,
        "SELECT * FROM dunning_policies WHERE id = $1",
        &[id.0.into()],
        rows::dunning_policy,
    )
    .await
}

pub async fn list_dunning_policies<C: Conn>(c: &mut C) -> Result<Vec<DunningPolicy>> {
    fetch_all(
        c,
        "SELECT * FROM dunning_policies ORDER BY code",
        &[],
        rows::dunning_policy,
    )
    .await
}

// Discounts -------------------------------------------------------------------------------

/// Dates are stored as their ISO text on both backends.
const INSERT_DISCOUNT: &str = "INSERT INTO discounts (id, subscriber_id, service_id, value,
         starts_on, ends_on, description, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

pub async fn insert_discount<C: Conn>(
    c: &mut C,
    discount: &Discount,
    audit: &AuditEvent,
) -> Result<()> {
    let d = discount;
    c.execute(
        INSERT_DISCOUNT,
        &[
            d.id.0.into(),
            d.subscriber_id.0.into(),
            d.service_id.map(|s| s.0).into(),
            Param::json(to_json(&d.value)?),
            d.starts_on.to_string().into(),
            d.ends_on.map(|e| e.to_string()).into(),
            d.description.as_str().into(),
            Param::at(d.created_at),
        ],
    )
    .await?;
    insert_audit(c, audit).await
}

pub async fn end_discount<C: Conn>(
    c: &mut C,
    id: DiscountId,
    ends_on: jiff::civil::Date,
    audit: &AuditEvent,
) -> Result<()> {
    let done = c
        .execute(
            "UPDATE discounts SET ends_on = $2 WHERE id = $1",
            &[id.0.into(), ends_on.to_string().into()],
        )
        .await?;
    if done != 1 {
        return Err(StoreError::NotFound { entity: "discount" });
    }
    insert_audit(c, audit).await
}

pub async fn get_discount<C: Conn>(c: &mut C, id: DiscountId) -> Result<Option<Discount>> {
    fetch_opt(
        c,
        "SELECT * FROM discounts WHERE id = $1",
        &[id.0.into()],
        rows::discount,
    )
    .await
}

pub async fn list_discounts<C: Conn>(c: &mut C, subscriber: SubscriberId) -> Result<Vec<Discount>> {
    fetch_all(
        c,
        "SELECT * FROM discounts WHERE subscriber_id = $1 ORDER BY id",
        &[subscriber.0.into()],
        rows::discount,
    )
    .await
}

// Settings --------------------------------------------------------------------------------

pub async fn get_setting<C: Conn>(
    c: &mut C,
    name: &str,
) -> Result<Option<(serde_json::Value, i64)>> {
    c.fetch(
        "SELECT value, revision FROM settings WHERE name = $1",
        &[name.into()],
    )
    .await?
    .first()
    .map(|r| Ok((r.json("value")?, r.i64("revision")?)))
    .transpose()
}

const INSERT_SETTING: &str = "INSERT INTO settings (name, value, revision, updated_at)
     VALUES ($1, $2, 1, $3)
     ON CONFLICT (name) DO NOTHING";

const UPDATE_SETTING: &str =
    "UPDATE settings SET value = $2, revision = revision + 1, updated_at = $3
     WHERE name = $1 AND revision = $4";

pub async fn put_setting<C: Conn>(
    c: &mut C,
    name: &str,
    value: &serde_json::Value,
    expected_revision: i64,
    now: Timestamp,
    audit: &AuditEvent,
) -> Result<()> {
    let done = if expected_revision == 0 {
        // Revision 0 means "not stored yet": a row already there is a lost race, so `Stale`.
        c.execute(
            INSERT_SETTING,
            &[name.into(), Param::json(value.clone()), Param::at(now)],
        )
        .await?
    } else {
        c.execute(
            UPDATE_SETTING,
            &[
                name.into(),
                Param::json(value.clone()),
                Param::at(now),
                expected_revision.into(),
            ],
        )
        .await?
    };
    expect_one(done, "settings")?;
    insert_audit(c, audit).await
}

// Accounts --------------------------------------------------------------------------------

/// Payments as account credits, with what is allocated of each: one text for the account
/// (its payment branch) and for `payments_unallocated`, so both read the same amounts. A
/// macro, for `concat!`; the caller appends the `WHERE`.
macro_rules! payment_credits {
    () => {
        "SELECT 'credit' AS side, 'payment' AS kind, p.id, p.reference AS label, NULL AS due,
           p.received_at AS at, p.amount_minor,
           CAST(COALESCE((SELECT SUM(a.amount_minor) FROM allocations a
                     WHERE a.credit_kind = 'payment' AND a.credit_id = p.id), 0) AS BIGINT)
               AS allocated_minor
    FROM payments p"
    };
}

/// Debits and credits of one subscriber with what is allocated of each. The sums are cast
/// to BIGINT because PostgreSQL's `SUM(bigint)` is `numeric`.
const ACCOUNT_DOCUMENTS: &str = concat!(
    "
    SELECT 'debit' AS side, 'invoice' AS kind, i.id, i.number AS label, i.due_date AS due,
           i.issued_at AS at, i.total_minor AS amount_minor,
           CAST(COALESCE((SELECT SUM(a.amount_minor) FROM allocations a
                     WHERE a.debit_kind = 'invoice' AND a.debit_id = i.id), 0) AS BIGINT)
               AS allocated_minor
    FROM invoices i
    WHERE i.subscriber_id = $1 AND i.status IN ('issued', 'paid') AND i.total_minor > 0
    UNION ALL
    SELECT 'credit', 'invoice', i.id, i.number, i.due_date, i.issued_at, -i.total_minor,
           CAST(COALESCE((SELECT SUM(a.amount_minor) FROM allocations a
                     WHERE a.credit_kind = 'invoice' AND a.credit_id = i.id), 0) AS BIGINT)
    FROM invoices i
    WHERE i.subscriber_id = $1 AND i.status IN ('issued', 'paid') AND i.total_minor < 0
    UNION ALL
    SELECT 'debit', 'refund', r.id, r.reference, NULL, r.refunded_at, r.amount_minor,
           CAST(COALESCE((SELECT SUM(a.amount_minor) FROM allocations a
                     WHERE a.debit_kind = 'refund' AND a.debit_id = r.id), 0) AS BIGINT)
    FROM refunds r WHERE r.subscriber_id = $1
    UNION ALL
    ",
    payment_credits!(),
    " WHERE p.subscriber_id = $1
    UNION ALL
    SELECT 'credit', 'credit_note', c.id, c.number, NULL, c.issued_at, c.total_minor,
           CAST(COALESCE((SELECT SUM(a.amount_minor) FROM allocations a
                     WHERE a.credit_kind = 'credit_note' AND a.credit_id = c.id), 0) AS BIGINT)
    FROM credit_notes c WHERE c.subscriber_id = $1"
);

pub async fn get_account<C: Conn>(c: &mut C, subscriber: SubscriberId) -> Result<Option<Account>> {
    // The revision is read before the documents, so that without a snapshot across the two
    // statements (SQLite readers run in autocommit) the documents can only be newer than the
    // revision, never older: a change computed from them then fails the revision guard
    // (`Stale`) instead of committing on a state it did not see.
    let head = c
        .fetch(
            "SELECT currency, account_revision FROM subscribers WHERE id = $1",
            &[subscriber.0.into()],
        )
        .await?;
    let Some(head) = head.first() else {
        return Ok(None);
    };
    let mut account = Account {
        subscriber_id: subscriber,
        currency: Currency::parse(&head.text("currency")?).map_err(StoreError::corrupt)?,
        revision: head.i64("account_revision")?,
        debits: Vec::new(),
        credits: Vec::new(),
    };
    for r in c.fetch(ACCOUNT_DOCUMENTS, &[subscriber.0.into()]).await? {
        match rows::account_document(&r)? {
            Ok(d) => account.debits.push(d),
            Err(cr) => account.credits.push(cr),
        }
    }
    Ok(Some(account))
}

/// `counters.value` (not a bare `value`): PostgreSQL needs the qualified name in the
/// conflict update, and SQLite accepts it.
const NEXT_NUMBER: &str = "INSERT INTO counters (name, value) VALUES ($1, 1)
     ON CONFLICT (name) DO UPDATE SET value = counters.value + 1
     RETURNING value";

/// The next value of a gap-free counter, in the caller's transaction.
async fn next_number<C: Conn>(c: &mut C, counter: &str) -> Result<i64> {
    c.fetch(NEXT_NUMBER, &[counter.into()])
        .await?
        .first()
        .ok_or_else(|| StoreError::corrupt(format!("counter {counter} returned no row")))?
        .i64("value")
}

const BUMP_ACCOUNT_REVISION: &str = "UPDATE subscribers SET account_revision = account_revision + 1
     WHERE id = $1 AND account_revision = $2";

const INSERT_PAYMENT: &str = "INSERT INTO payments (id, subscriber_id, currency, amount_minor,
         method, reference, external_id, received_at, recorded_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

const INSERT_REFUND: &str = "INSERT INTO refunds (id, subscriber_id, currency, amount_minor,
         method, reference, reason, refunded_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

const VOID_INVOICE: &str = "UPDATE invoices SET status = 'void', voided_at = $3, void_reason = $4
     WHERE id = $1 AND subscriber_id = $2 AND status IN ('draft', 'issued')";

const ISSUE_INVOICE: &str =
    "UPDATE invoices SET status = 'issued', number = $3, issued_at = $4, due_date = $5
     WHERE id = $1 AND subscriber_id = $2 AND status = 'draft'";

const INSERT_CREDIT_NOTE: &str = "INSERT INTO credit_notes (id, number, subscriber_id,
         invoice_id, currency, reason, subtotal_minor, tax_minor, total_minor, issued_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Head of the multi-row insert of allocations (8 values a row).
const INSERT_ALLOCATIONS: &str = "INSERT INTO allocations (id, subscriber_id, credit_kind,
         credit_id, debit_kind, debit_id, amount_minor, created_at) VALUES ";

/// Head of the multi-row insert of dunning steps (7 values a row).
const INSERT_DUNNING_ACTIONS: &str = "INSERT INTO dunning_actions (id, subscriber_id, invoice_id,
         days_overdue, action, performed_at, passed) VALUES ";

/// Followed by the `IN` list of the invoices (from `$2` on: `$1` is the subscriber).
const MARK_PAID: &str = "UPDATE invoices SET status = 'paid'
     WHERE subscriber_id = $1 AND status = 'issued' AND id IN ";

pub async fn record_account_change<C: Conn>(c: &mut C, change: &AccountChange) -> Result<()> {
    let ch = change;
    let sub: Param = ch.subscriber_id.0.into();
    let done = c
        .execute(
            BUMP_ACCOUNT_REVISION,
            &[sub.clone(), ch.expected_revision.into()],
        )
        .await?;
    expect_one(done, "account")?;
    if let Some(p) = &ch.payment {
        c.execute(
            INSERT_PAYMENT,
            &[
                p.id.0.into(),
                p.subscriber_id.0.into(),
                p.currency.as_str().into(),
                p.amount_minor.into(),
                p.method.as_str().into(),
                p.reference.as_deref().into(),
                p.external_id.as_deref().into(),
                Param::at(p.received_at),
                Param::at(p.recorded_at),
            ],
        )
        .await?;
    }
    if let Some(r) = &ch.refund {
        c.execute(
            INSERT_REFUND,
            &[
                r.id.0.into(),
                r.subscriber_id.0.into(),
                r.currency.as_str().into(),
                r.amount_minor.into(),
                r.method.as_str().into(),
                r.reference.as_deref().into(),
                r.reason.as_str().into(),
                Param::at(r.refunded_at),
            ],
        )
        .await?;
    }
    if let Some(v) = &ch.void_invoice {
        let done = c
            .execute(
                VOID_INVOICE,
                &[
                    v.invoice_id.0.into(),
                    sub.clone(),
                    Param::at(v.voided_at),
                    v.reason.as_str().into(),
                ],
            )
            .await?;
        expect_one(done, "invoice")?;
    }
    if let Some(i) = &ch.issue_invoice {
        let n = next_number(c, "invoice_number").await?;
        let done = c
            .execute(
                ISSUE_INVOICE,
                &[
                    i.invoice_id.0.into(),
                    sub.clone(),
                    rows::invoice_number(&i.number_prefix, n).into(),
                    Param::at(i.issued_at),
                    i.due_date.to_string().into(),
                ],
            )
            .await?;
        expect_one(done, "invoice")?;
    }
    if let Some(cn) = &ch.credit_note {
        let n = next_number(c, "credit_note_number").await?;
        let note = &cn.note;
        c.execute(
            INSERT_CREDIT_NOTE,
            &[
                note.id.0.into(),
                rows::invoice_number(&cn.number_prefix, n).into(),
                note.subscriber_id.0.into(),
                note.invoice_id.0.into(),
                note.currency.as_str().into(),
                note.reason.as_str().into(),
                note.subtotal_minor.into(),
                note.tax_minor.into(),
                note.total_minor.into(),
                Param::at(note.issued_at),
            ],
        )
        .await?;
    }
    // After the inserts above, so documents this change creates count as the subscriber's.
    check_documents_owned(c, ch).await?;
    for chunk in ch.allocations.chunks(CHUNK) {
        let rows = chunk.iter().map(|a| {
            [
                a.id.0.into(),
                a.subscriber_id.0.into(),
                a.credit.kind.as_str().into(),
                a.credit.id.into(),
                a.debit.kind.as_str().into(),
                a.debit.id.into(),
                a.amount_minor.into(),
                Param::at(a.created_at),
            ]
        });
        insert_rows(INSERT_ALLOCATIONS, rows).execute(c).await?;
    }
    for chunk in ch.paid_invoices.chunks(CHUNK) {
        let mut q = Sql::new(MARK_PAID);
        q.params.push(sub.clone());
        q.bind_list(chunk.iter().map(|i| i.0)).execute(c).await?;
    }
    for chunk in ch.dunning_actions.chunks(CHUNK) {
        let rows = chunk.iter().map(|d| {
            [
                d.id.0.into(),
                d.subscriber_id.0.into(),
                d.invoice_id.0.into(),
                d.days_overdue.into(),
                d.action.as_str().into(),
                Param::at(d.performed_at),
                d.passed.into(),
            ]
        });
        insert_rows(INSERT_DUNNING_ACTIONS, rows).execute(c).await?;
    }
    for sc in &ch.service_changes {
        write_service_change(c, sc).await?;
    }
    for j in &ch.jobs {
        insert_job(c, j).await?;
    }
    for a in &ch.audit {
        insert_audit(c, a).await?;
    }
    Ok(())
}

/// `head` (ending in `VALUES `) followed by one `($n, …)` tuple per row.
fn insert_rows<const N: usize>(head: &str, rows: impl IntoIterator<Item = [Param; N]>) -> Sql {
    let mut q = Sql::new(head);
    for (i, row) in rows.into_iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" });
        for (j, p) in row.into_iter().enumerate() {
            if j > 0 {
                q.push(", ");
            }
            q.bind(p);
        }
        q.push(")");
    }
    q
}

/// Every document the change allocates, and every invoice its dunning steps name, must be
/// the subscriber's (documents the change itself inserts included): else nothing is written.
async fn check_documents_owned<C: Conn>(c: &mut C, ch: &AccountChange) -> Result<()> {
    for (_, table, ids) in ch.named_documents()? {
        for chunk in ids.chunks(CHUNK) {
            // `table` is one of the fixed table names `named_documents` returns.
            let mut q = Sql::new("SELECT COUNT(*) AS n FROM ");
            q.push(table)
                .push(" WHERE subscriber_id = ")
                .bind(ch.subscriber_id.0)
                .push(" AND id IN ")
                .bind_list(chunk.iter().copied());
            let found = q
                .fetch(c)
                .await?
                .first()
                .map(|r| r.i64("n"))
                .transpose()?
                .unwrap_or(0);
            if usize::try_from(found).ok() != Some(chunk.len()) {
                return Err(StoreError::NotFound {
                    entity: "document of this subscriber",
                });
            }
        }
    }
    Ok(())
}

pub async fn ledger<C: Conn>(c: &mut C, subscriber: SubscriberId) -> Result<Vec<LedgerEntry>> {
    fetch_all(
        c,
        "SELECT * FROM ledger_entries WHERE subscriber_id = $1 ORDER BY at, kind, document_id",
        &[subscriber.0.into()],
        rows::ledger_entry,
    )
    .await
}

pub async fn get_payment<C: Conn>(c: &mut C, id: PaymentId) -> Result<Option<Payment>> {
    fetch_opt(
        c,
        "SELECT * FROM payments WHERE id = $1",
        &[id.0.into()],
        rows::payment,
    )
    .await
}

pub async fn find_payment_by_external_id<C: Conn>(
    c: &mut C,
    external_id: &str,
) -> Result<Option<Payment>> {
    fetch_opt(
        c,
        "SELECT * FROM payments WHERE external_id = $1",
        &[external_id.into()],
        rows::payment,
    )
    .await
}

pub async fn list_payments<C: Conn>(
    c: &mut C,
    filter: &PaymentFilter,
    page: Page,
) -> Result<Vec<Payment>> {
    let mut q = Sql::new("SELECT * FROM payments WHERE 1 = 1");
    if let Some(sub) = filter.subscriber_id {
        q.push(" AND subscriber_id = ").bind(sub.0);
    }
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::payment)
}

/// What is not allocated yet of each payment, as its account reads it (see
/// [`payment_credits`]), by primary key: one statement per [`CHUNK`] ids.
pub async fn payments_unallocated<C: Conn>(
    c: &mut C,
    ids: &[PaymentId],
) -> Result<HashMap<PaymentId, i64>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut q = Sql::new(concat!(payment_credits!(), " WHERE p.id"));
        q.in_ids(C::DIALECT, chunk.iter().map(|p| p.0));
        for r in q.fetch(c).await? {
            // Every row is a payment's credit (`side` is 'credit').
            if let Err(credit) = rows::account_document(&r)? {
                out.insert(PaymentId(credit.doc.id), credit.available_minor());
            }
        }
    }
    Ok(out)
}

pub async fn get_credit_note<C: Conn>(c: &mut C, id: CreditNoteId) -> Result<Option<CreditNote>> {
    fetch_opt(
        c,
        "SELECT * FROM credit_notes WHERE id = $1",
        &[id.0.into()],
        rows::credit_note,
    )
    .await
}

pub async fn list_credit_notes<C: Conn>(
    c: &mut C,
    filter: &CreditNoteFilter,
    page: Page,
) -> Result<Vec<CreditNote>> {
    let mut q = Sql::new("SELECT * FROM credit_notes WHERE 1 = 1");
    crate::services::equal_filters::<C>(
        &mut q,
        [
            ("invoice_id", filter.invoice_id.map(|i| i.0.into())),
            ("subscriber_id", filter.subscriber_id.map(|s| s.0.into())),
        ],
    );
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::credit_note)
}

pub async fn list_refunds<C: Conn>(c: &mut C, subscriber: SubscriberId) -> Result<Vec<Refund>> {
    fetch_all(
        c,
        "SELECT * FROM refunds WHERE subscriber_id = $1 ORDER BY id",
        &[subscriber.0.into()],
        rows::refund,
    )
    .await
}

pub async fn list_allocations<C: Conn>(
    c: &mut C,
    subscriber: SubscriberId,
) -> Result<Vec<Allocation>> {
    fetch_all(
        c,
        "SELECT * FROM allocations WHERE subscriber_id = $1 ORDER BY id",
        &[subscriber.0.into()],
        rows::allocation,
    )
    .await
}

/// `after` defaults to the nil UUID, below every id on both backends (native `uuid` order
/// on PostgreSQL, lowercase hyphenated text on SQLite), so one statement serves both.
const OVERDUE_SUBSCRIBERS: &str = "SELECT DISTINCT subscriber_id FROM invoices
     WHERE status = 'issued' AND due_date < $1 AND total_minor > 0 AND subscriber_id > $2
     ORDER BY subscriber_id LIMIT $3";

pub async fn overdue_subscribers<C: Conn>(
    c: &mut C,
    today: jiff::civil::Date,
    after: Option<SubscriberId>,
    limit: u32,
) -> Result<Vec<SubscriberId>> {
    c.fetch(
        OVERDUE_SUBSCRIBERS,
        &[
            today.to_string().into(),
            after.map_or(Uuid::nil(), |a| a.0).into(),
            i64::from(limit).into(),
        ],
    )
    .await?
    .iter()
    .map(|r| Ok(SubscriberId(r.uuid("subscriber_id")?)))
    .collect()
}

pub async fn dunning_actions<C: Conn>(
    c: &mut C,
    invoice: InvoiceId,
) -> Result<Vec<(i64, DunningActionKind)>> {
    c.fetch(
        "SELECT days_overdue, action FROM dunning_actions WHERE invoice_id = $1
         ORDER BY days_overdue, action",
        &[invoice.0.into()],
    )
    .await?
    .iter()
    .map(|r| Ok((r.i64("days_overdue")?, r.parsed("action")?)))
    .collect()
}
