//! Billing queries (PostgreSQL). Same behaviour as the SQLite backend's `billing.rs`, written
//! for throughput, with a fixed number of statements per batch whatever its size:
//!
//! - `billing_inputs` reads a batch's subscribers and then their history by id range (index
//!   range scans, never a list of ids), in one REPEATABLE READ snapshot.
//! - `commit_billing_batch` locks the invoice counter, finds the (subscriber, period) pairs that
//!   already have an invoice with one statement (arrays bound once, unpacked by `UNNEST`),
//!   checks the references of the rest with another (the billing tables have no foreign keys
//!   here, see migrations/0002_billing.sql), and streams invoices and lines in with binary
//!   `COPY`.

use crate::row::{db_err, Row};
use crate::{collect, paginate, PgStore};
use jiff::civil::Date;
use jiff::Timestamp;
use lastmile_domain::billing::invoice::{
    status_at_issue, BillingRun, BillingRunStatus, Invoice, InvoiceStatus, NewInvoice,
};
use lastmile_domain::ids::*;
use lastmile_domain::plan::PlanVersion;
use lastmile_store::rows::{self, micros, to_json, RowGet};
use lastmile_store::*;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use std::collections::{BTreeSet, HashSet};
use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;
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
    as_of: Option<Date>,
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
        Some(a) => sqlx::query(
            "SELECT id, currency, billing_day, tax_zone, dunning_policy FROM subscribers
             WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(a.0)
        .bind(i64::from(limit)),
        None => sqlx::query(
            "SELECT id, currency, billing_day, tax_zone, dunning_policy FROM subscribers
             ORDER BY id LIMIT $1",
        )
        .bind(i64::from(limit)),
    }
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let subscribers = collect(subscribers, rows::billing_subscriber)?;
    let inputs = histories(&mut tx, subscribers, as_of).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(inputs)
}

pub async fn billing_input(s: &PgStore, sub: SubscriberId) -> Result<Option<BillingInput>> {
    let mut tx = s
        .pool
        .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(db_err)?;
    let subscribers = sqlx::query(
        "SELECT id, currency, billing_day, tax_zone, dunning_policy FROM subscribers
         WHERE id = $1",
    )
    .bind(sub.0)
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let subscribers = collect(subscribers, rows::billing_subscriber)?;
    let inputs = histories(&mut tx, subscribers, None).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(inputs.into_iter().next())
}

/// Which subscribers' rows a history query reads.
enum Scope {
    /// Every subscriber id in [first, last]: the batch is exactly the subscribers with ids in
    /// that range in this snapshot, so history is read by index range scans.
    Range(Uuid, Uuid),
    /// These ids: index lookups, for batches where few subscribers have anything to bill.
    Ids(Vec<Uuid>),
}

impl Scope {
    /// Appends `AND <col> …` restricting `col` to the scope.
    fn push(&self, q: &mut QueryBuilder<Postgres>, col: &str) {
        match self {
            Scope::Range(first, last) => {
                q.push(format_args!(" AND {col} >= "))
                    .push_bind(*first)
                    .push(format_args!(" AND {col} <= "))
                    .push_bind(*last);
            }
            Scope::Ids(ids) => {
                q.push(format_args!(" AND {col} = ANY("))
                    .push_bind(ids.clone())
                    .push(")");
            }
        }
    }
}

/// The billing history of `subscribers` (in id order). The invoiced periods come first: with
/// `as_of`, subscribers already invoiced for their current period need nothing else, and when
/// few remain their history is read by id rather than by range.
async fn histories(
    tx: &mut PgConnection,
    subscribers: Vec<BillingSubscriber>,
    as_of: Option<Date>,
) -> Result<Vec<BillingInput>> {
    let (Some(first), Some(last)) = (subscribers.first(), subscribers.last()) else {
        return Ok(Vec::new());
    };
    let (first, last) = (first.id.0, last.id.0);
    let periods = sqlx::query(
        "SELECT subscriber_id, period_start FROM invoices
         WHERE subscriber_id >= $1 AND subscriber_id <= $2 AND status <> 'void'",
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
    let skipped = rows::already_billed(&subscribers, &periods, as_of);
    let todo: Vec<Uuid> = subscribers
        .iter()
        .filter(|s| !skipped.contains(&s.id))
        .map(|s| s.id.0)
        .collect();
    if todo.is_empty() {
        return Ok(rows::assemble_billing_inputs(
            subscribers,
            Vec::new(),
            Vec::new(),
            Vec::new(),
            periods,
            Vec::new(),
            &skipped,
        ));
    }
    let scope = if todo.len() * 4 < subscribers.len() {
        Scope::Ids(todo)
    } else {
        Scope::Range(first, last)
    };
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT subscriber_id, id, initial_plan_id, initial_plan_version_id FROM services
         WHERE true",
    );
    scope.push(&mut q, "subscriber_id");
    let services = q
        .build()
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
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT id, service_id, subscriber_id, seq, kind, effective_at, recorded_at, plan_id,
                plan_version_id, suspension_cause
         FROM service_events WHERE true",
    );
    scope.push(&mut q, "subscriber_id");
    let events = collect(
        q.build().fetch_all(&mut *tx).await.map_err(db_err)?,
        rows::billing_event,
    )?;
    // Pre-summed per charge key: rating compares sums, and a subscriber with years of
    // invoices has far fewer keys than lines. Lines are found through their invoices (a
    // line's subscriber is its invoice's: `commit_billing_batch` writes them from one
    // `NewInvoice`): a subscriber range of invoices, then each one's lines by invoice id.
    let mut q = QueryBuilder::<Postgres>::new(
        "SELECT l.subscriber_id, l.service_id, l.charge_kind, l.charge_period_start,
                l.plan_version_id, CAST(SUM(l.amount_minor) AS BIGINT) AS amount_minor
         FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
         WHERE i.status <> 'void'",
    );
    scope.push(&mut q, "i.subscriber_id");
    q.push(
        " GROUP BY l.subscriber_id, l.service_id, l.charge_kind, l.charge_period_start,
                   l.plan_version_id",
    );
    let invoiced = q
        .build()
        .fetch_all(&mut *tx)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|r| {
            let r = Row(r);
            Ok((SubscriberId(r.uuid("subscriber_id")?), rows::invoiced(&r)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut q = QueryBuilder::<Postgres>::new("SELECT * FROM discounts WHERE true");
    scope.push(&mut q, "subscriber_id");
    let discounts = collect(
        q.build().fetch_all(&mut *tx).await.map_err(db_err)?,
        rows::discount,
    )?;
    Ok(rows::assemble_billing_inputs(
        subscribers,
        services,
        events,
        invoiced,
        periods,
        discounts,
        &skipped,
    ))
}

pub async fn insert_billing_run(s: &PgStore, run: &BillingRun) -> Result<()> {
    sqlx::query(
        "INSERT INTO billing_runs (id, as_of, status, started_at, finished_at, cursor,
             subscribers_processed, invoices_created, errors, subscriber_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(run.id.0)
    .bind(run.as_of.to_string())
    .bind(run.status.as_str())
    .bind(micros(run.started_at))
    .bind(run.finished_at.map(micros))
    .bind(run.cursor.map(|c| c.0))
    .bind(run.subscribers_processed)
    .bind(run.invoices_created)
    .bind(to_json(&run.errors)?)
    .bind(run.subscriber_id.map(|s| s.0))
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
    sqlx::query(
        "SELECT * FROM billing_runs
         WHERE as_of = $1 AND status = 'running' AND subscriber_id IS NULL",
    )
    .bind(as_of.to_string())
    .fetch_optional(&s.pool)
    .await
    .map_err(db_err)?
    .map(|r| rows::billing_run(&Row(r)))
    .transpose()
}

pub async fn commit_billing_batch(s: &PgStore, b: &BillingBatch) -> Result<u64> {
    // The references of the batch are checked on a second connection, when one is idle right
    // now, while this one writes: the check (a few thousand index probes) then costs a
    // PostgreSQL backend on the other core instead of time in the transaction that holds the
    // invoice counter. It is conservative (a line's invoice counts as present only if it is
    // the line's own); anything it cannot confirm is checked exactly, in the transaction,
    // before commit. Only an idle connection is taken, never waited for, so concurrent
    // batches cannot starve the pool.
    let spare = s.pool.try_acquire();
    let early = async move {
        match spare {
            Some(mut conn) => {
                let refs = References::of(b.invoices.iter(), |inv, id| id == inv.id.0);
                references_exist(&mut conn, refs).await.map(Some)
            }
            None => Ok(None),
        }
    };
    let (early, written) = join(early, write_batch(s, b)).await;
    let (mut tx, fresh, run_found) = written?;
    if !fresh.is_empty() && !matches!(early, Ok(Some(true))) {
        let ids: HashSet<Uuid> = fresh.iter().map(|i| i.id.0).collect();
        let refs = References::of(fresh.iter().copied(), |_, id| ids.contains(&id));
        if !references_exist(&mut tx, refs).await? {
            // What `db_err` makes of a foreign key violation (SQLite's error for this, which
            // it reports before finding the run missing).
            return Err(StoreError::InUse {
                entity: "record",
                by: "other records",
            });
        }
    }
    if !run_found {
        return Err(StoreError::NotFound {
            entity: "billing run",
        });
    }
    tx.commit().await.map_err(db_err)?;
    Ok(fresh.len() as u64)
}

/// Everything `commit_billing_batch` writes, in a transaction left open for the caller to
/// commit or drop; the invoices it inserted; whether the run exists (its progress recorded).
async fn write_batch<'a>(
    s: &PgStore,
    b: &'a BillingBatch,
) -> Result<(
    sqlx::Transaction<'static, Postgres>,
    Vec<&'a NewInvoice>,
    bool,
)> {
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
    // Drafts get their number when issued.
    let issued = fresh.iter().filter(|i| i.issue.is_some()).count() as i64;
    if issued > 0 {
        sqlx::query("UPDATE counters SET value = $2 WHERE name = $1")
            .bind(INVOICE_COUNTER)
            .bind(base + issued)
            .execute(&mut *tx)
            .await
            .map_err(db_err)?;
    }
    if count > 0 {
        insert_invoices(&mut tx, &fresh, base + 1, &b.number_prefix).await?;
        insert_lines(&mut tx, &fresh).await?;
    }
    // Progress. Another executor of the same run may have committed this batch already:
    // then its invoices were filtered out above, and its subscribers and errors are counted
    // once, not twice: only a batch that moves the cursor forward records them. (All right-
    // hand sides see the row as it was; `||` appends to the stored array.)
    let done = sqlx::query(
        "UPDATE billing_runs SET
             cursor = CASE WHEN cursor IS NULL OR cursor < $2 THEN $2 ELSE cursor END,
             subscribers_processed = subscribers_processed
                 + CASE WHEN cursor IS NULL OR cursor < $2 THEN $3 ELSE 0 END,
             invoices_created = invoices_created + $4,
             errors = CASE WHEN cursor IS NULL OR cursor < $2 THEN errors || $5 ELSE errors END
         WHERE id = $1",
    )
    .bind(b.run.0)
    .bind(b.cursor.0)
    .bind(b.subscribers)
    .bind(count)
    .bind(to_json(&b.errors)?)
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    let run_found = done.rows_affected() == 1;
    Ok((tx, fresh, run_found))
}

/// Polls both futures on the current task until both are done (`tokio::join!` for two, without
/// depending on tokio here).
async fn join<A: Future, B: Future>(a: A, b: B) -> (A::Output, B::Output) {
    let (mut a, mut b) = (pin!(a), pin!(b));
    let (mut ra, mut rb) = (None, None);
    poll_fn(move |cx| {
        if ra.is_none() {
            if let Poll::Ready(v) = a.as_mut().poll(cx) {
                ra = Some(v);
            }
        }
        if rb.is_none() {
            if let Poll::Ready(v) = b.as_mut().poll(cx) {
                rb = Some(v);
            }
        }
        match (ra.take(), rb.take()) {
            (Some(x), Some(y)) => Poll::Ready((x, y)),
            (x, y) => {
                (ra, rb) = (x, y);
                Poll::Pending
            }
        }
    })
    .await
}

/// The invoices of `all` whose subscriber has no invoice for that period yet: one statement
/// probes the unique index once per (subscriber, period) pair of the batch. (`LATERAL …
/// LIMIT 1` keeps it a probe per pair: as a plain join, the planner, knowing the array's
/// length, prefers hashing all of `invoices`, which grows with every run.)
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
        "SELECT b.subscriber_id, b.period_start
         FROM UNNEST($1::uuid[], $2::text[]) AS b (subscriber_id, period_start),
         LATERAL (SELECT 1 FROM invoices i
                  WHERE i.subscriber_id = b.subscriber_id AND i.period_start = b.period_start
                    AND i.status <> 'void'
                  LIMIT 1) AS found",
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

/// The distinct ids a set of invoices refers to, by table: what SQLite's foreign keys on
/// invoices and lines check (see migrations/0002_billing.sql). `inserted_with(invoice, id)`
/// tells whether a line's invoice `id` is inserted together with the line (so needs no
/// lookup).
struct References {
    subscribers: BTreeSet<Uuid>,
    runs: BTreeSet<Uuid>,
    services: BTreeSet<Uuid>,
    versions: BTreeSet<Uuid>,
    invoices: BTreeSet<Uuid>,
}

impl References {
    fn of<'a>(
        invs: impl Iterator<Item = &'a NewInvoice>,
        inserted_with: impl Fn(&NewInvoice, Uuid) -> bool,
    ) -> Self {
        let mut r = Self {
            subscribers: BTreeSet::new(),
            runs: BTreeSet::new(),
            services: BTreeSet::new(),
            versions: BTreeSet::new(),
            invoices: BTreeSet::new(),
        };
        for inv in invs {
            r.subscribers.insert(inv.subscriber_id.0);
            r.runs.extend(inv.billing_run_id.map(|id| id.0));
            for l in &inv.lines {
                r.services.insert(l.service_id.0);
                r.versions.insert(l.plan_version_id.0);
                if !inserted_with(inv, l.invoice_id.0) {
                    r.invoices.insert(l.invoice_id.0);
                }
            }
        }
        r
    }
}

/// Whether every id of `refs` exists, in one statement that probes each distinct id once
/// through its table's primary key (`LATERAL … LIMIT 1`, as in `without_existing`).
async fn references_exist(conn: &mut PgConnection, refs: References) -> Result<bool> {
    let sets = [
        refs.subscribers,
        refs.runs,
        refs.services,
        refs.versions,
        refs.invoices,
    ];
    let expected = sets.each_ref().map(|s| s.len() as i64);
    let [subscribers, runs, services, versions, invoices] =
        sets.map(|s| s.into_iter().collect::<Vec<Uuid>>());
    let found: (i64, i64, i64, i64, i64) = sqlx::query_as(
        "SELECT
             (SELECT count(*) FROM UNNEST($1::uuid[]) AS r (id),
                 LATERAL (SELECT 1 FROM subscribers t WHERE t.id = r.id LIMIT 1) AS f),
             (SELECT count(*) FROM UNNEST($2::uuid[]) AS r (id),
                 LATERAL (SELECT 1 FROM billing_runs t WHERE t.id = r.id LIMIT 1) AS f),
             (SELECT count(*) FROM UNNEST($3::uuid[]) AS r (id),
                 LATERAL (SELECT 1 FROM services t WHERE t.id = r.id LIMIT 1) AS f),
             (SELECT count(*) FROM UNNEST($4::uuid[]) AS r (id),
                 LATERAL (SELECT 1 FROM plan_versions t WHERE t.id = r.id LIMIT 1) AS f),
             (SELECT count(*) FROM UNNEST($5::uuid[]) AS r (id),
                 LATERAL (SELECT 1 FROM invoices t WHERE t.id = r.id LIMIT 1) AS f)",
    )
    .bind(subscribers)
    .bind(runs)
    .bind(services)
    .bind(versions)
    .bind(invoices)
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    Ok([found.0, found.1, found.2, found.3, found.4] == expected)
}

/// Inserts `invs`, numbering the issued ones `prefix` + `first`, `first + 1`, … in batch
/// order.
async fn insert_invoices(
    tx: &mut PgConnection,
    invs: &[&NewInvoice],
    first: i64,
    prefix: &str,
) -> Result<()> {
    let mut rows = CopyRows::new(invs.len() * 200);
    let mut next = first;
    for inv in invs {
        rows.row(15);
        rows.uuid(inv.id.0);
        rows.uuid(inv.subscriber_id.0);
        match inv.issue {
            Some(_) => {
                rows.text(&rows::invoice_number(prefix, next))?;
                next += 1;
                // A zero invoice is settled as it is issued (`status_at_issue`).
                rows.text(status_at_issue(inv.total_minor()).as_str())?;
            }
            None => {
                rows.null();
                rows.text(InvoiceStatus::Draft.as_str())?;
            }
        }
        rows.text(inv.currency.as_str())?;
        rows.text(&inv.period_start.to_string())?;
        rows.text(&inv.period_end.to_string())?;
        rows.i64(micros(inv.created_at));
        match inv.issue {
            Some(due) => {
                rows.i64(micros(inv.created_at));
                rows.text(&due.to_string())?;
            }
            None => {
                rows.null();
                rows.null();
            }
        }
        rows.i64(inv.subtotal_minor());
        rows.i64(inv.tax_minor());
        rows.i64(inv.total_minor());
        rows.bool(inv.prices_include_tax);
        rows.opt_uuid(inv.billing_run_id.map(|r| r.0));
    }
    copy_in(
        tx,
        "COPY invoices (id, subscriber_id, number, status, currency, period_start, period_end,
             created_at, issued_at, due_date, subtotal_minor, tax_minor, total_minor,
             prices_include_tax, billing_run_id)
         FROM STDIN (FORMAT binary)",
        rows,
    )
    .await
}

async fn insert_lines(tx: &mut PgConnection, invs: &[&NewInvoice]) -> Result<()> {
    let n: usize = invs.iter().map(|i| i.lines.len()).sum();
    if n == 0 {
        return Ok(());
    }
    let mut rows = CopyRows::new(n * 250);
    for l in invs.iter().flat_map(|i| i.lines.iter()) {
        rows.row(15);
        rows.uuid(l.id.0);
        rows.uuid(l.invoice_id.0);
        rows.uuid(l.subscriber_id.0);
        rows.i64(i64::from(l.position));
        rows.text(&l.description)?;
        rows.uuid(l.service_id.0);
        rows.text(l.charge_kind.as_str())?;
        rows.text(&l.charge_period_start.to_string())?;
        rows.uuid(l.plan_version_id.0);
        rows.i64(i64::from(l.correction));
        rows.i64(l.days);
        rows.i64(l.period_days);
        rows.i64(l.amount_minor);
        rows.i64(l.tax_minor);
        if l.taxes.is_empty() {
            rows.null();
        } else {
            rows.jsonb(&to_json(&l.taxes)?.to_string())?;
        }
    }
    copy_in(
        tx,
        "COPY invoice_lines (id, invoice_id, subscriber_id, position, description, service_id,
             charge_kind, charge_period_start, plan_version_id, correction, days, period_days,
             amount_minor, tax_minor, taxes)
         FROM STDIN (FORMAT binary)",
        rows,
    )
    .await
}

/// Streams `rows` into `COPY … FROM STDIN (FORMAT binary)`. A constraint violation fails it
/// like the same rows' INSERT would (PostgreSQL names the constraint).
async fn copy_in(tx: &mut PgConnection, statement: &'static str, rows: CopyRows) -> Result<()> {
    let mut copy = tx.copy_in_raw(statement).await.map_err(db_err)?;
    // On an error the dropped `copy` aborts the COPY; the transaction is rolled back anyway.
    copy.send(rows.finish()).await.map_err(db_err)?;
    copy.finish().await.map_err(db_err)?;
    Ok(())
}

/// Rows in PostgreSQL's binary COPY format: a header, then per row its field count and each
/// field as a length and its binary form (`uuid`: 16 bytes; `bigint`: 8 bytes, big-endian;
/// `text`: UTF-8; NULL: length -1), then a trailer. Bulk rows go in about twice as fast this
/// way as through `INSERT … SELECT FROM UNNEST(…)` (no arrays to build and unpack, no
/// executor per row, and the heap takes them in multi-row batches).
struct CopyRows {
    buf: Vec<u8>,
}

impl CopyRows {
    fn new(capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 21);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Self { buf }
    }

    fn row(&mut self, fields: i16) {
        self.buf.extend_from_slice(&fields.to_be_bytes());
    }

    fn uuid(&mut self, u: Uuid) {
        self.buf.extend_from_slice(&16i32.to_be_bytes());
        self.buf.extend_from_slice(u.as_bytes());
    }

    fn opt_uuid(&mut self, u: Option<Uuid>) {
        match u {
            Some(u) => self.uuid(u),
            None => self.buf.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    fn null(&mut self) {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
    }

    fn bool(&mut self, v: bool) {
        self.buf.extend_from_slice(&1i32.to_be_bytes());
        self.buf.push(u8::from(v));
    }

    /// `jsonb`'s binary form: a version byte (1) and the JSON text.
    fn jsonb(&mut self, json: &str) -> Result<()> {
        let len = i32::try_from(json.len() + 1).map_err(|_| {
            StoreError::Backend("a JSON value exceeds PostgreSQL's 1 GB limit".into())
        })?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.push(1);
        self.buf.extend_from_slice(json.as_bytes());
        Ok(())
    }

    fn i64(&mut self, v: i64) {
        self.buf.extend_from_slice(&8i32.to_be_bytes());
        self.buf.extend_from_slice(&v.to_be_bytes());
    }

    fn text(&mut self, s: &str) -> Result<()> {
        let len = i32::try_from(s.len()).map_err(|_| {
            StoreError::Backend("a text value exceeds PostgreSQL's 1 GB limit".into())
        })?;
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        Ok(())
    }

    fn finish(mut self) -> Vec<u8> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes());
        self.buf
    }
}

pub async fn complete_billing_run(
    s: &PgStore,
    rid: BillingRunId,
    now: Timestamp,
    failure: Option<&str>,
) -> Result<()> {
    sqlx::query(rows::FINISH_BILLING_RUN)
        .bind(rid.0)
        .bind(BillingRunStatus::Completed.as_str())
        .bind(micros(now))
        .bind(failure)
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
    if let Some(n) = &f.number {
        q.push(" AND number = ").push_bind(n.clone());
    }
    if let Some(p) = f.period_start {
        q.push(" AND period_start = ").push_bind(p.to_string());
    }
    paginate(&mut q, "id", page);
    let rows = q.build().fetch_all(&s.pool).await.map_err(db_err)?;
    collect(rows, rows::invoice)
}
