//! Money: billing configuration (tax zones, dunning policies, discounts), account changes
//! (payments, refunds, credit notes, issuing and voiding invoices, allocations, dunning
//! steps) and the ledger. Same behaviour as the SQLite backend's `money.rs`.

use crate::row::{db_err, Row};
use crate::{collect, expect_one, insert_audit, insert_job, write_service_change, PgStore};
use jiff::civil::Date;
use lastmile_domain::audit::AuditEvent;
use lastmile_domain::billing::account::{
    Account, Allocation, CreditNote, LedgerEntry, Payment, Refund,
};
use lastmile_domain::billing::discount::Discount;
use lastmile_domain::billing::dunning::{DunningActionKind, DunningPolicy};
use lastmile_domain::billing::tax::TaxZone;
use lastmile_domain::ids::*;
use lastmile_domain::validate::Currency;
use lastmile_store::rows::{self, micros, to_json, RowGet};
use lastmile_store::*;
use sqlx::{PgConnection, Postgres, QueryBuilder};

/// The row with this id, decoded.
async fn by_id<T>(
    s: &PgStore,
    sql: &'static str,
    key: uuid::Uuid,
    decode: fn(&Row<sqlx::postgres::PgRow>) -> Result<T>,
) -> Result<Option<T>> {
    sqlx::query(sql)
        .bind(key)
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
        .map(|r| decode(&Row(r)))
        .transpose()
}

// Tax zones -------------------------------------------------------------------------------

pub async fn insert_tax_zone(s: &PgStore, z: &TaxZone, audit: &AuditEvent) -> Result<()> {
    let mut tx = s.begin().await?;
    sqlx::query(
        "INSERT INTO tax_zones (id, code, name, prices_include_tax, taxes, created_at, updated_at,
             revision)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(z.id.0)
    .bind(&z.code)
    .bind(&z.name)
    .bind(z.prices_include_tax)
    .bind(to_json(&z.taxes)?)
    .bind(micros(z.created_at))
    .bind(micros(z.updated_at))
    .bind(z.revision)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub async fn update_tax_zone(
    s: &PgStore,
    z: &TaxZone,
    expected_revision: i64,
    audit: &AuditEvent,
) -> Result<()> {
    let mut tx = s.begin().await?;
    let done = sqlx::query(
        "UPDATE tax_zones SET code = $2, name = $3, prices_include_tax = $4, taxes = $5,
             updated_at = $6, revision = $7
         WHERE id = $1 AND revision = $8",
    )
    .bind(z.id.0)
    .bind(&z.code)
    .bind(&z.name)
    .bind(z.prices_include_tax)
    .bind(to_json(&z.taxes)?)
    .bind(micros(z.updated_at))
    .bind(z.revision)
    .bind(expected_revision)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    expect_one(done.rows_affected(), "tax zone")?;
    insert_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub async fn get_tax_zone(s: &PgStore, zid: TaxZoneId) -> Result<Option<TaxZone>> {
    by_id(
        s,
        "SELECT * FROM tax_zones WHERE id = $1",
        zid.0,
        rows::tax_zone,
    )
    .await
}

pub async fn list_tax_zones(s: &PgStore) -> Result<Vec<TaxZone>> {
    let rows = sqlx::query("SELECT * FROM tax_zones ORDER BY code")
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?;
    collect(rows, rows::tax_zone)
}

// Dunning policies ------------------------------------------------------------------------

pub async fn insert_dunning_policy(
    s: &PgStore,
    p: &DunningPolicy,
    audit: &AuditEvent,
) -> Result<()> {
    let mut tx = s.begin().await?;
    if p.is_default {
        clear_default(&mut tx, p.id).await?;
    }
    sqlx::query(
        "INSERT INTO dunning_policies (id, code, name, steps, bill_suspended_days, is_default,
             created_at, updated_at, revision)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(p.id.0)
    .bind(&p.code)
    .bind(&p.name)
    .bind(to_json(&p.steps)?)
    .bind(p.bill_suspended_days)
    .bind(p.is_default)
    .bind(micros(p.created_at))
    .bind(micros(p.updated_at))
    .bind(p.revision)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

/// Another policy stops being the default (one default at most, by a unique index too).
async fn clear_default(tx: &mut PgConnection, except: DunningPolicyId) -> Result<()> {
    sqlx::query(
        "UPDATE dunning_policies SET is_default = false, revision = revision + 1
         WHERE is_default AND id <> $1",
    )
    .bind(except.0)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn update_dunning_policy(
    s: &PgStore,
    p: &DunningPolicy,
    expected_revision: i64,
    audit: &AuditEvent,
) -> Result<()> {
    let mut tx = s.begin().await?;
    if p.is_default {
        clear_default(&mut tx, p.id).await?;
    }
    let done = sqlx::query(
        "UPDATE dunning_policies SET code = $2, name = $3, steps = $4, bill_suspended_days = $5,
             is_default = $6, updated_at = $7, revision = $8
         WHERE id = $1 AND revision = $9",
    )
    .bind(p.id.0)
    .bind(&p.code)
    .bind(&p.name)
    .bind(to_json(&p.steps)?)
    .bind(p.bill_suspended_days)
    .bind(p.is_default)
    .bind(micros(p.updated_at))
    .bind(p.revision)
    .bind(expected_revision)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    expect_one(done.rows_affected(), "dunning policy")?;
    insert_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub async fn get_dunning_policy(
    s: &PgStore,
    pid: DunningPolicyId,
) -> Result<Option<DunningPolicy>> {
    by_id(
        s,
        "SELECT * FROM dunning_policies WHERE id = $1",
        pid.0,
        rows::dunning_policy,
    )
    .await
}

pub async fn list_dunning_policies(s: &PgStore) -> Result<Vec<DunningPolicy>> {
    let rows = sqlx::query("SELECT * FROM dunning_policies ORDER BY code")
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?;
    collect(rows, rows::dunning_policy)
}

// Discounts -------------------------------------------------------------------------------

pub async fn insert_discount(s: &PgStore, d: &Discount, audit: &AuditEvent) -> Result<()> {
    let mut tx = s.begin().await?;
    sqlx::query(
        "INSERT INTO discounts (id, subscriber_id, service_id, value, starts_on, ends_on,
             description, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(d.id.0)
    .bind(d.subscriber_id.0)
    .bind(d.service_id.map(|v| v.0))
    .bind(to_json(&d.value)?)
    .bind(d.starts_on.to_string())
    .bind(d.ends_on.map(|e| e.to_string()))
    .bind(&d.description)
    .bind(micros(d.created_at))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    insert_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub async fn end_discount(
    s: &PgStore,
    did: DiscountId,
    ends_on: Date,
    audit: &AuditEvent,
) -> Result<()> {
    let mut tx = s.begin().await?;
    let done = sqlx::query("UPDATE discounts SET ends_on = $2 WHERE id = $1")
        .bind(did.0)
        .bind(ends_on.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    if done.rows_affected() != 1 {
        return Err(StoreError::NotFound { entity: "discount" });
    }
    insert_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}

pub async fn get_discount(s: &PgStore, did: DiscountId) -> Result<Option<Discount>> {
    by_id(
        s,
        "SELECT * FROM discounts WHERE id = $1",
        did.0,
        rows::discount,
    )
    .await
}

pub async fn list_discounts(s: &PgStore, sub: SubscriberId) -> Result<Vec<Discount>> {
    let rows = sqlx::query("SELECT * FROM discounts WHERE subscriber_id = $1 ORDER BY id")
        .bind(sub.0)
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?;
    collect(rows, rows::discount)
}

// Accounts --------------------------------------------------------------------------------

/// Debits and credits of one subscriber with what is allocated of each.
const ACCOUNT_DOCUMENTS: &str = "
    SELECT 'debit' AS side, 'invoice' AS kind, i.id, i.number AS label, i.due_date AS due,
           i.issued_at AS at, i.total_minor AS amount_minor,
           CAST(COALESCE((SELECT SUM(a.amount_minor) FROM allocations a
                     WHERE a.debit_kind = 'invoice' AND a.debit_id = i.id), 0) AS BIGINT) AS allocated_minor
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
    SELECT 'credit', 'payment', p.id, p.reference, NULL, p.received_at, p.amount_minor,
           CAST(COALESCE((SELECT SUM(a.amount_minor) FROM allocations a
                     WHERE a.credit_kind = 'payment' AND a.credit_id = p.id), 0) AS BIGINT)
    FROM payments p WHERE p.subscriber_id = $1
    UNION ALL
    SELECT 'credit', 'credit_note', c.id, c.number, NULL, c.issued_at, c.total_minor,
           CAST(COALESCE((SELECT SUM(a.amount_minor) FROM allocations a
                     WHERE a.credit_kind = 'credit_note' AND a.credit_id = c.id), 0) AS BIGINT)
    FROM credit_notes c WHERE c.subscriber_id = $1";

pub async fn get_account(s: &PgStore, sub: SubscriberId) -> Result<Option<Account>> {
    let mut tx = s.pool.begin().await.map_err(db_err)?;
    let Some(head) =
        sqlx::query("SELECT currency, account_revision FROM subscribers WHERE id = $1")
            .bind(sub.0)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db_err)?
            .map(Row)
    else {
        return Ok(None);
    };
    let mut account = Account {
        subscriber_id: sub,
        currency: Currency::parse(&head.text("currency")?).map_err(StoreError::corrupt)?,
        revision: head.i64("account_revision")?,
        debits: Vec::new(),
        credits: Vec::new(),
    };
    for r in sqlx::query(ACCOUNT_DOCUMENTS)
        .bind(sub.0)
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
    {
        match rows::account_document(&Row(r))? {
            Ok(d) => account.debits.push(d),
            Err(c) => account.credits.push(c),
        }
    }
    tx.commit().await.map_err(db_err)?;
    Ok(Some(account))
}

async fn next_number(tx: &mut PgConnection, counter: &str) -> Result<i64> {
    sqlx::query_scalar(
        "INSERT INTO counters (name, value) VALUES ($1, 1)
         ON CONFLICT (name) DO UPDATE SET value = counters.value + 1
         RETURNING value",
    )
    .bind(counter)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)
}

pub async fn record_account_change(s: &PgStore, c: &AccountChange) -> Result<()> {
    let mut tx = s.begin().await?;
    let done = sqlx::query(
        "UPDATE subscribers SET account_revision = account_revision + 1
         WHERE id = $1 AND account_revision = $2",
    )
    .bind(c.subscriber_id.0)
    .bind(c.expected_revision)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    expect_one(done.rows_affected(), "account")?;
    if let Some(p) = &c.payment {
        sqlx::query(
            "INSERT INTO payments (id, subscriber_id, currency, amount_minor, method, reference,
                 external_id, received_at, recorded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(p.id.0)
        .bind(p.subscriber_id.0)
        .bind(p.currency.as_str())
        .bind(p.amount_minor)
        .bind(p.method.as_str())
        .bind(&p.reference)
        .bind(&p.external_id)
        .bind(micros(p.received_at))
        .bind(micros(p.recorded_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    if let Some(r) = &c.refund {
        sqlx::query(
            "INSERT INTO refunds (id, subscriber_id, currency, amount_minor, method, reference,
                 reason, refunded_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(r.id.0)
        .bind(r.subscriber_id.0)
        .bind(r.currency.as_str())
        .bind(r.amount_minor)
        .bind(r.method.as_str())
        .bind(&r.reference)
        .bind(&r.reason)
        .bind(micros(r.refunded_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    if let Some(v) = &c.void_invoice {
        let done = sqlx::query(
            "UPDATE invoices SET status = 'void', voided_at = $3, void_reason = $4
             WHERE id = $1 AND subscriber_id = $2 AND status IN ('draft', 'issued')",
        )
        .bind(v.invoice_id.0)
        .bind(c.subscriber_id.0)
        .bind(micros(v.voided_at))
        .bind(&v.reason)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        expect_one(done.rows_affected(), "invoice")?;
    }
    if let Some(i) = &c.issue_invoice {
        let n = next_number(&mut tx, "invoice_number").await?;
        let done = sqlx::query(
            "UPDATE invoices SET status = 'issued', number = $3, issued_at = $4, due_date = $5
             WHERE id = $1 AND subscriber_id = $2 AND status = 'draft'",
        )
        .bind(i.invoice_id.0)
        .bind(c.subscriber_id.0)
        .bind(rows::invoice_number(&i.number_prefix, n))
        .bind(micros(i.issued_at))
        .bind(i.due_date.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
        expect_one(done.rows_affected(), "invoice")?;
    }
    if let Some(cn) = &c.credit_note {
        let n = next_number(&mut tx, "credit_note_number").await?;
        let note = &cn.note;
        sqlx::query(
            "INSERT INTO credit_notes (id, number, subscriber_id, invoice_id, currency, reason,
                 subtotal_minor, tax_minor, total_minor, issued_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(note.id.0)
        .bind(rows::invoice_number(&cn.number_prefix, n))
        .bind(note.subscriber_id.0)
        .bind(note.invoice_id.0)
        .bind(note.currency.as_str())
        .bind(&note.reason)
        .bind(note.subtotal_minor)
        .bind(note.tax_minor)
        .bind(note.total_minor)
        .bind(micros(note.issued_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    check_documents_owned(&mut tx, c).await?;
    for a in &c.allocations {
        sqlx::query(
            "INSERT INTO allocations (id, subscriber_id, credit_kind, credit_id, debit_kind,
                 debit_id, amount_minor, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(a.id.0)
        .bind(a.subscriber_id.0)
        .bind(a.credit.kind.as_str())
        .bind(a.credit.id)
        .bind(a.debit.kind.as_str())
        .bind(a.debit.id)
        .bind(a.amount_minor)
        .bind(micros(a.created_at))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    for inv in &c.paid_invoices {
        sqlx::query(
            "UPDATE invoices SET status = 'paid'
             WHERE id = $1 AND subscriber_id = $2 AND status = 'issued'",
        )
        .bind(inv.0)
        .bind(c.subscriber_id.0)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    for d in &c.dunning_actions {
        sqlx::query(
            "INSERT INTO dunning_actions (id, subscriber_id, invoice_id, days_overdue, action,
                 performed_at, passed)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(d.id.0)
        .bind(d.subscriber_id.0)
        .bind(d.invoice_id.0)
        .bind(d.days_overdue)
        .bind(d.action.as_str())
        .bind(micros(d.performed_at))
        .bind(d.passed)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    for sc in &c.service_changes {
        write_service_change(&mut tx, sc).await?;
    }
    for j in &c.jobs {
        insert_job(&mut tx, j).await?;
    }
    for a in &c.audit {
        insert_audit(&mut tx, a).await?;
    }
    tx.commit().await.map_err(db_err)
}

/// Every document the change allocates, and every invoice its dunning steps name, must be
/// the subscriber's (documents the change itself inserts included): else nothing is written.
async fn check_documents_owned(tx: &mut PgConnection, c: &AccountChange) -> Result<()> {
    for (_, table, ids) in c.named_documents()? {
        let mut q = QueryBuilder::<Postgres>::new(format!(
            "SELECT COUNT(*) FROM {table} WHERE subscriber_id = "
        ));
        q.push_bind(c.subscriber_id.0)
            .push(" AND id = ANY(")
            .push_bind(&ids)
            .push(")");
        let found: i64 = q
            .build_query_scalar()
            .fetch_one(&mut *tx)
            .await
            .map_err(db_err)?;
        if usize::try_from(found).ok() != Some(ids.len()) {
            return Err(StoreError::NotFound {
                entity: "document of this subscriber",
            });
        }
    }
    Ok(())
}

pub async fn ledger(s: &PgStore, sub: SubscriberId) -> Result<Vec<LedgerEntry>> {
    let rows = sqlx::query(
        "SELECT * FROM ledger_entries WHERE subscriber_id = $1 ORDER BY at, kind, document_id",
    )
    .bind(sub.0)
    .fetch_all(&s.pool)
    .await
    .map_err(db_err)?;
    collect(rows, rows::ledger_entry)
}

pub async fn get_payment(s: &PgStore, pid: PaymentId) -> Result<Option<Payment>> {
    by_id(
        s,
        "SELECT * FROM payments WHERE id = $1",
        pid.0,
        rows::payment,
    )
    .await
}

pub async fn find_payment_by_external_id(s: &PgStore, ext: &str) -> Result<Option<Payment>> {
    sqlx::query("SELECT * FROM payments WHERE external_id = $1")
        .bind(ext)
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
        .map(|r| rows::payment(&Row(r)))
        .transpose()
}

pub async fn list_payments(s: &PgStore, f: &PaymentFilter, page: Page) -> Result<Vec<Payment>> {
    let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM payments WHERE 1 = 1");
    if let Some(sub) = f.subscriber_id {
        q.push(" AND subscriber_id = ").push_bind(sub.0);
    }
    crate::paginate(&mut q, "id", page);
    let rows = q.build().fetch_all(&s.pool).await.map_err(db_err)?;
    collect(rows, rows::payment)
}

pub async fn get_credit_note(s: &PgStore, cid: CreditNoteId) -> Result<Option<CreditNote>> {
    by_id(
        s,
        "SELECT * FROM credit_notes WHERE id = $1",
        cid.0,
        rows::credit_note,
    )
    .await
}

pub async fn list_credit_notes(
    s: &PgStore,
    f: &CreditNoteFilter,
    page: Page,
) -> Result<Vec<CreditNote>> {
    let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM credit_notes WHERE 1 = 1");
    if let Some(sub) = f.subscriber_id {
        q.push(" AND subscriber_id = ").push_bind(sub.0);
    }
    if let Some(inv) = f.invoice_id {
        q.push(" AND invoice_id = ").push_bind(inv.0);
    }
    crate::paginate(&mut q, "id", page);
    let rows = q.build().fetch_all(&s.pool).await.map_err(db_err)?;
    collect(rows, rows::credit_note)
}

pub async fn list_refunds(s: &PgStore, sub: SubscriberId) -> Result<Vec<Refund>> {
    let rows = sqlx::query("SELECT * FROM refunds WHERE subscriber_id = $1 ORDER BY id")
        .bind(sub.0)
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?;
    collect(rows, rows::refund)
}

pub async fn list_allocations(s: &PgStore, sub: SubscriberId) -> Result<Vec<Allocation>> {
    let rows = sqlx::query("SELECT * FROM allocations WHERE subscriber_id = $1 ORDER BY id")
        .bind(sub.0)
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?;
    collect(rows, rows::allocation)
}

pub async fn overdue_subscribers(
    s: &PgStore,
    today: Date,
    after: Option<SubscriberId>,
    limit: u32,
) -> Result<Vec<SubscriberId>> {
    sqlx::query(
        "SELECT DISTINCT subscriber_id FROM invoices
         WHERE status = 'issued' AND due_date < $1 AND total_minor > 0 AND subscriber_id > $2
         ORDER BY subscriber_id LIMIT $3",
    )
    .bind(today.to_string())
    .bind(after.map(|a| a.0).unwrap_or(uuid::Uuid::nil()))
    .bind(i64::from(limit))
    .fetch_all(&s.pool)
    .await
    .map_err(db_err)?
    .into_iter()
    .map(|r| Ok(SubscriberId(Row(r).uuid("subscriber_id")?)))
    .collect()
}

pub async fn dunning_actions(s: &PgStore, inv: InvoiceId) -> Result<Vec<(i64, DunningActionKind)>> {
    sqlx::query("SELECT days_overdue, action FROM dunning_actions WHERE invoice_id = $1")
        .bind(inv.0)
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|r| {
            let r = Row(r);
            Ok((r.i64("days_overdue")?, r.parsed("action")?))
        })
        .collect()
}

pub async fn subscribers_with_credit(
    s: &PgStore,
    ids: &[SubscriberId],
) -> Result<Vec<SubscriberId>> {
    let ids: Vec<uuid::Uuid> = ids.iter().map(|i| i.0).collect();
    // Each branch filters by subscriber first, so every one is an index lookup.
    sqlx::query(
        "SELECT subscriber_id FROM (
             SELECT subscriber_id, amount_minor AS v FROM payments
                 WHERE subscriber_id = ANY($1)
             UNION ALL SELECT subscriber_id, total_minor FROM credit_notes
                 WHERE subscriber_id = ANY($1)
             UNION ALL SELECT subscriber_id, -total_minor FROM invoices
                 WHERE subscriber_id = ANY($1) AND total_minor < 0
                   AND status IN ('issued', 'paid')
             UNION ALL SELECT subscriber_id, -amount_minor FROM allocations
                 WHERE subscriber_id = ANY($1)
         ) AS c GROUP BY subscriber_id HAVING SUM(v) > 0",
    )
    .bind(ids)
    .fetch_all(&s.pool)
    .await
    .map_err(db_err)?
    .into_iter()
    .map(|r| Ok(SubscriberId(Row(r).uuid("subscriber_id")?)))
    .collect()
}

// Settings --------------------------------------------------------------------------------

pub async fn get_setting(s: &PgStore, name: &str) -> Result<Option<(serde_json::Value, i64)>> {
    sqlx::query("SELECT value, revision FROM settings WHERE name = $1")
        .bind(name)
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
        .map(|r| {
            let r = Row(r);
            Ok((r.json("value")?, r.i64("revision")?))
        })
        .transpose()
}

pub async fn put_setting(
    s: &PgStore,
    name: &str,
    value: &serde_json::Value,
    expected_revision: i64,
    now: jiff::Timestamp,
    audit: &AuditEvent,
) -> Result<()> {
    let mut tx = s.begin().await?;
    let done = if expected_revision == 0 {
        sqlx::query(
            "INSERT INTO settings (name, value, revision, updated_at) VALUES ($1, $2, 1, $3)
             ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(value)
        .bind(micros(now))
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
    } else {
        sqlx::query(
            "UPDATE settings SET value = $2, revision = revision + 1, updated_at = $3
             WHERE name = $1 AND revision = $4",
        )
        .bind(name)
        .bind(value)
        .bind(micros(now))
        .bind(expected_revision)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?
    };
    expect_one(done.rows_affected(), "settings")?;
    insert_audit(&mut tx, audit).await?;
    tx.commit().await.map_err(db_err)
}
