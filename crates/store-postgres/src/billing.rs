//! Billing queries (PostgreSQL). Same behaviour as the SQLite backend's `billing.rs`, written
//! for throughput: a billing run reads its subscribers by id range and writes each batch with
//! a handful of set-based statements (arrays bound once, unpacked by `UNNEST`), whatever the
//! batch size.

use crate::row::{db_err, Row};
use crate::{collect, paginate, PgStore};
use jiff::civil::Date;
use jiff::Timestamp;
use lastmile_domain::billing::invoice::{BillingRun, BillingRunStatus, Invoice, NewInvoice};
use lastmile_domain::ids::*;
use lastmile_domain::plan::PlanVersion;
use lastmile_store::rows::{self, micros, to_json, RowGet};
use lastmile_store::*;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::HashSet;
use uuid::Uuid;

/// The counter that numbers invoices (shared with `next_counter`'s namespace).
const INVOICE_COUNTER: &str = "invoice_number";

pub async fn plan_catalog(s: &PgStore) -> Result<Vec<(String, PlanVersion)>> {
    sqlx::query(
        "SELECT v.*, p.name AS plan_name FROM plan_versions v JOIN plans p ON p.id = v.plan_id",
    )
    .fetch_all(&s.pool)
    .await
    .map_err(db_err)?
    .into_iter()
    .map(|r| {
        let r = Row(r);
        Ok((r.text("plan_name")?, rows::plan_version(&r, "")?))
    })
    .collect()
}

pub async fn billing_inputs(
    s: &PgStore,
    after: Option<SubscriberId>,
    limit: u32,
) -> Result<Vec<BillingInput>> {
    // One snapshot for the whole batch: the subscribers and their history as of one instant.
    let mut tx = s
        .pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(db_err)?;
    // Two statements rather than `$1 IS NULL OR id > $1`, so a cached generic plan is still
    // an index range scan.
    let subscribers = match after {
        Some(a) => sqlx::query("SELECT * FROM subscribers WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(a.0)
            .bind(i64::from(limit)),
        None => {
            sqlx::query("SELECT * FROM subscribers ORDER BY id LIMIT $1").bind(i64::from(limit))
        }
    }
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let subscribers = collect(subscribers, rows::subscriber)?;
    let (Some(first), Some(last)) = (subscribers.first(), subscribers.last()) else {
        return Ok(Vec::new());
    };
    // The batch is exactly the subscribers with ids in [first, last] in this snapshot, so the
    // history is read by id range (index range scans), never by a list of ids.
    let (first, last) = (first.id.0, last.id.0);
    let services = sqlx::query(
        "SELECT subscriber_id, id, initial_plan_id, initial_plan_version_id FROM services
         WHERE subscriber_id >= $1 AND subscriber_id <= $2",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?
    .into_iter()
    .map(|r| {
        let r = Row(r);
        Ok((
            SubscriberId(r.uuid("subscriber_id")?),
            ServiceId(r.uuid("id")?),
            PlanId(r.uuid("initial_plan_id")?),
            PlanVersionId(r.uuid("initial_plan_version_id")?),
        ))
    })
    .collect::<Result<Vec<_>>>()?;
    let events = sqlx::query(
        "SELECT * FROM service_events WHERE subscriber_id >= $1 AND subscriber_id <= $2
         ORDER BY service_id, seq",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let events = collect(events, rows::timeline_event)?;
    let invoiced = sqlx::query(
        "SELECT l.subscriber_id, l.service_id, l.charge_kind, l.charge_period_start,
                l.plan_version_id, l.amount_minor
         FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
         WHERE l.subscriber_id >= $1 AND l.subscriber_id <= $2 AND i.status <> 'void'",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?
    .into_iter()
    .map(|r| {
        let r = Row(r);
        Ok((SubscriberId(r.uuid("subscriber_id")?), rows::invoiced(&r)?))
    })
    .collect::<Result<Vec<_>>>()?;
    let periods = sqlx::query(
        "SELECT subscriber_id, period_start FROM invoices
         WHERE subscriber_id >= $1 AND subscriber_id <= $2",
    )
    .bind(first)
    .bind(last)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?
    .into_iter()
    .map(|r| {
        let r = Row(r);
        Ok((
            SubscriberId(r.uuid("subscriber_id")?),
            r.parsed::<Date>("period_start")?,
        ))
    })
    .collect::<Result<Vec<_>>>()?;
    tx.commit().await.map_err(db_err)?;
    Ok(rows::assemble_billing_inputs(
        subscribers,
        services,
        events,
        invoiced,
        periods,
    ))
}

pub async fn insert_billing_run(s: &PgStore, run: &BillingRun) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing_runs (id, as_of, status, started_at, finished_at, cursor,
             subscribers_processed, invoices_created, errors)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(run.id.0)
    .bind(run.as_of.to_string())
    .bind(run.status.as_str())
    .bind(micros(run.started_at))
    .bind(run.finished_at.map(micros))
    .bind(run.cursor.map(|c| c.0))
    .bind(run.subscribers_processed)
    .bind(run.invoices_created)
    .bind(to_json(&run.errors))
    .execute(&s.pool)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn get_billing_run(s: &PgStore, rid: BillingRunId) -> Result<Option<BillingRun>> {
    sqlx::query("SELECT * FROM billing_runs WHERE id = $1")
        .bind(rid.0)
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
        .map(|r| rows::billing_run(&Row(r)))
        .transpose()
}

pub async fn list_billing_runs(s: &PgStore, page: Page) -> Result<Vec<BillingRun>> {
    let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM billing_runs WHERE 1 = 1");
    paginate(&mut q, "id", page);
    let rows = q.build().fetch_all(&s.pool).await.map_err(db_err)?;
    collect(rows, rows::billing_run)
}

pub async fn unfinished_billing_run(s: &PgStore, as_of: Date) -> Result<Option<BillingRun>> {
    sqlx::query("SELECT * FROM billing_runs WHERE as_of = $1 AND status = 'running'")
        .bind(as_of.to_string())
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
        .map(|r| rows::billing_run(&Row(r)))
        .transpose()
}

pub async fn commit_billing_batch(s: &PgStore, b: &BillingBatch) -> Result<u64> {
    let mut tx = s.begin().await?;
    // The counter row is locked first: concurrent batches (of any run) queue here, one
    // transaction at a time from this point to its commit. So the existence check below sees
    // every invoice committed before (READ COMMITTED takes a fresh snapshot per statement),
    // no two batches insert an invoice for one subscriber and period, and numbers are handed
    // out in commit order. The numbers are taken in this transaction: a batch that rolls back
    // gives them back, so the sequence has no gaps.
    let base: i64 = sqlx::query_scalar(
        "INSERT INTO counters (name, value) VALUES ($1, 0)
         ON CONFLICT (name) DO UPDATE SET value = counters.value
         RETURNING value",
    )
    .bind(INVOICE_COUNTER)
    .fetch_one(&mut *tx)
    .await
    .map_err(db_err)?;
    let fresh = without_existing(&mut tx, &b.invoices).await?;
    let count = fresh.len() as i64;
    if count > 0 {
        sqlx::query("UPDATE counters SET value = $2 WHERE name = $1")
            .bind(INVOICE_COUNTER)
            .bind(base + count)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
        insert_invoices(&mut tx, &fresh, base + 1, &b.number_prefix).await?;
        insert_lines(&mut tx, &fresh).await?;
    }
    // `||` appends the batch's errors to the stored array.
    let done = sqlx::query(
        "UPDATE billing_runs SET cursor = $2,
             subscribers_processed = subscribers_processed + $3,
             invoices_created = invoices_created + $4, errors = errors || $5
         WHERE id = $1",
    )
    .bind(b.run.0)
    .bind(b.cursor.0)
    .bind(b.subscribers)
    .bind(count)
    .bind(to_json(&b.errors))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    if done.rows_affected() != 1 {
        return Err(StoreError::NotFound {
            entity: "billing run",
        });
    }
    tx.commit().await.map_err(db_err)?;
    Ok(count as u64)
}

/// The invoices of `all` whose subscriber has no invoice for that period yet: one lookup of
/// all the batch's (subscriber, period) pairs against the unique index.
async fn without_existing<'a>(
    tx: &mut PgConnection,
    all: &'a [NewInvoice],
) -> Result<Vec<&'a NewInvoice>> {
    if all.is_empty() {
        return Ok(Vec::new());
    }
    let subs: Vec<Uuid> = all.iter().map(|i| i.subscriber_id.0).collect();
    let periods: Vec<String> = all.iter().map(|i| i.period_start.to_string()).collect();
    let existing: HashSet<(Uuid, String)> = sqlx::query(
        "SELECT i.subscriber_id, i.period_start
         FROM UNNEST($1::uuid[], $2::text[]) AS b (subscriber_id, period_start)
         JOIN invoices i
           ON i.subscriber_id = b.subscriber_id AND i.period_start = b.period_start",
    )
    .bind(subs)
    .bind(periods)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?
    .into_iter()
    .map(|r| {
        let r = Row(r);
        Ok((r.uuid("subscriber_id")?, r.text("period_start")?))
    })
    .collect::<Result<_>>()?;
    if existing.is_empty() {
        return Ok(all.iter().collect());
    }
    Ok(all
        .iter()
        .filter(|i| !existing.contains(&(i.subscriber_id.0, i.period_start.to_string())))
        .collect())
}

/// Inserts `invs` numbered `prefix` + `first`, `first + 1`, … in batch order.
async fn insert_invoices(
    tx: &mut PgConnection,
    invs: &[&NewInvoice],
    first: i64,
    prefix: &str,
) -> Result<()> {
    let n = invs.len();
    let mut ids = Vec::with_capacity(n);
    let mut subs = Vec::with_capacity(n);
    let mut numbers = Vec::with_capacity(n);
    let mut currencies = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    let mut ends = Vec::with_capacity(n);
    let mut issued = Vec::with_capacity(n);
    let mut dues = Vec::with_capacity(n);
    let mut totals = Vec::with_capacity(n);
    let mut runs: Vec<Option<Uuid>> = Vec::with_capacity(n);
    for (i, inv) in invs.iter().enumerate() {
        ids.push(inv.id.0);
        subs.push(inv.subscriber_id.0);
        numbers.push(format!("{prefix}{:06}", first + i as i64));
        currencies.push(inv.currency.as_str().to_string());
        starts.push(inv.period_start.to_string());
        ends.push(inv.period_end.to_string());
        issued.push(micros(inv.issued_at));
        dues.push(inv.due_date.to_string());
        totals.push(inv.total_minor());
        runs.push(inv.billing_run_id.map(|r| r.0));
    }
    sqlx::query(
        "INSERT INTO invoices (id, subscriber_id, number, status, currency, period_start,
             period_end, issued_at, due_date, subtotal_minor, tax_minor, total_minor,
             billing_run_id)
         SELECT id, subscriber_id, number, 'issued', currency, period_start, period_end,
             issued_at, due_date, total, 0, total, billing_run_id
         FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[],
             $7::bigint[], $8::text[], $9::bigint[], $10::uuid[])
             AS t (id, subscriber_id, number, currency, period_start, period_end, issued_at,
                   due_date, total, billing_run_id)",
    )
    .bind(ids)
    .bind(subs)
    .bind(numbers)
    .bind(currencies)
    .bind(starts)
    .bind(ends)
    .bind(issued)
    .bind(dues)
    .bind(totals)
    .bind(runs)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

async fn insert_lines(tx: &mut PgConnection, invs: &[&NewInvoice]) -> Result<()> {
    let n: usize = invs.iter().map(|i| i.lines.len()).sum();
    if n == 0 {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(n);
    let mut invoice_ids = Vec::with_capacity(n);
    let mut subs = Vec::with_capacity(n);
    let mut positions = Vec::with_capacity(n);
    let mut descriptions = Vec::with_capacity(n);
    let mut services = Vec::with_capacity(n);
    let mut kinds = Vec::with_capacity(n);
    let mut starts = Vec::with_capacity(n);
    let mut versions = Vec::with_capacity(n);
    let mut corrections = Vec::with_capacity(n);
    let mut days = Vec::with_capacity(n);
    let mut period_days = Vec::with_capacity(n);
    let mut amounts = Vec::with_capacity(n);
    for l in invs.iter().flat_map(|i| i.lines.iter()) {
        ids.push(l.id.0);
        invoice_ids.push(l.invoice_id.0);
        subs.push(l.subscriber_id.0);
        positions.push(i64::from(l.position));
        descriptions.push(l.description.as_str());
        services.push(l.service_id.0);
        kinds.push(l.charge_kind.as_str());
        starts.push(l.charge_period_start.to_string());
        versions.push(l.plan_version_id.0);
        corrections.push(i64::from(l.correction));
        days.push(l.days);
        period_days.push(l.period_days);
        amounts.push(l.amount_minor);
    }
    sqlx::query(
        "INSERT INTO invoice_lines (id, invoice_id, subscriber_id, position, description,
             service_id, charge_kind, charge_period_start, plan_version_id, correction, days,
             period_days, amount_minor)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::bigint[], $5::text[],
             $6::uuid[], $7::text[], $8::text[], $9::uuid[], $10::bigint[], $11::bigint[],
             $12::bigint[], $13::bigint[])",
    )
    .bind(ids)
    .bind(invoice_ids)
    .bind(subs)
    .bind(positions)
    .bind(descriptions)
    .bind(services)
    .bind(kinds)
    .bind(starts)
    .bind(versions)
    .bind(corrections)
    .bind(days)
    .bind(period_days)
    .bind(amounts)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    Ok(())
}

pub async fn complete_billing_run(s: &PgStore, rid: BillingRunId, now: Timestamp) -> Result<()> {
    sqlx::query("UPDATE billing_runs SET status = $2, finished_at = $3 WHERE id = $1")
        .bind(rid.0)
        .bind(BillingRunStatus::Completed.as_str())
        .bind(micros(now))
        .execute(&s.pool)
        .await
        .map_err(db_err)?;
    Ok(())
}

pub async fn get_invoice(s: &PgStore, iid: InvoiceId) -> Result<Option<Invoice>> {
    let Some(row) = sqlx::query("SELECT * FROM invoices WHERE id = $1")
        .bind(iid.0)
        .fetch_optional(&s.pool)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let mut inv = rows::invoice(&Row(row))?;
    let lines = sqlx::query("SELECT * FROM invoice_lines WHERE invoice_id = $1 ORDER BY position")
        .bind(iid.0)
        .fetch_all(&s.pool)
        .await
        .map_err(db_err)?;
    inv.lines = collect(lines, rows::invoice_line)?;
    Ok(Some(inv))
}

pub async fn list_invoices(s: &PgStore, f: &InvoiceFilter, page: Page) -> Result<Vec<Invoice>> {
    let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM invoices WHERE 1 = 1");
    if let Some(sub) = f.subscriber_id {
        q.push(" AND subscriber_id = ").push_bind(sub.0);
    }
    if let Some(st) = f.status {
        q.push(" AND status = ").push_bind(st.as_str());
    }
    if let Some(p) = f.period_start {
        q.push(" AND period_start = ").push_bind(p.to_string());
    }
    paginate(&mut q, "id", page);
    let rows = q.build().fetch_all(&s.pool).await.map_err(db_err)?;
    collect(rows, rows::invoice)
}
