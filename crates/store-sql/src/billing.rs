//! Billing runs, invoices and the inputs rating reads.
//!
//! The hot path is a run's batch: `billing_inputs` reads a batch of subscribers and their
//! history with a fixed number of statements whatever its size, and `commit_billing_batch`
//! writes its invoices and lines with the backend's bulk insert (`Conn::copy_in`: PostgreSQL's
//! `COPY`) or else multi-row inserts. Multi-row statements come in a few fixed sizes
//! (`chunks`), so each is prepared once per connection and then reused; on PostgreSQL, lists
//! of ids are bound as one array (`Sql::in_ids`), so their statements have one text too.

use crate::prelude::*;
use lastmile_domain::billing::invoice::{
    status_at_issue, BillingRunError, BillingRunStatus, InvoiceStatus, NewInvoice,
};
use std::collections::{HashMap, HashSet};

/// The counter that numbers invoices (shared with issuing drafts, and `next_counter`'s names).
const INVOICE_COUNTER: &str = "invoice_number";

/// Most rows of one multi-row statement: × 15 columns, 15,360 binds, under SQLite's 32,766
/// and PostgreSQL's 65,535. A power of two (see `chunk_sizes`).
const MAX_ROWS: usize = 1024;

/// Most ids of one `IN` list (under both binds limits).
const MAX_IN_LIST: usize = 16_384;

/// Row counts that split `n` rows into statements: full `MAX_ROWS` chunks, then the rest in
/// descending powers of two. Every batch size is served by the same eleven statement texts
/// per table, all of which stay prepared, instead of one new (and cached) text per size.
fn chunk_sizes(n: usize) -> impl Iterator<Item = usize> {
    let rest = n % MAX_ROWS;
    std::iter::repeat_n(MAX_ROWS, n / MAX_ROWS).chain(
        (0..MAX_ROWS.trailing_zeros())
            .rev()
            .map(|bit| 1usize << bit)
            .filter(move |size| rest & size != 0),
    )
}

/// `items` in consecutive slices of `chunk_sizes`.
fn chunks<T>(items: &[T]) -> impl Iterator<Item = &[T]> {
    let mut rest = items;
    chunk_sizes(items.len()).map(move |n| {
        // The sizes add up to the length, so `n` never exceeds what is left.
        let (head, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        head
    })
}

// Catalogue and inputs ----------------------------------------------------------------------

const PLAN_CATALOG: &str =
    "SELECT v.*, p.name AS plan_name FROM plan_versions v JOIN plans p ON p.id = v.plan_id";

pub async fn plan_catalog<C: Conn>(c: &mut C) -> Result<Vec<(String, PlanVersion)>> {
    fetch_all(c, PLAN_CATALOG, &[], |r: &C::Row| {
        Ok((r.text("plan_name")?, rows::plan_version(r, "")?))
    })
    .await
}

// Two statements rather than `$1 IS NULL OR id > $1`, so that each is an index range scan
// (a PostgreSQL generic plan would not be).
const BILLING_SUBSCRIBERS_AFTER: &str =
    "SELECT id, currency, billing_day, tax_zone, dunning_policy FROM subscribers
     WHERE id > $1 ORDER BY id LIMIT $2";
const BILLING_SUBSCRIBERS_FIRST: &str =
    "SELECT id, currency, billing_day, tax_zone, dunning_policy FROM subscribers
     ORDER BY id LIMIT $1";
const BILLING_SUBSCRIBER: &str =
    "SELECT id, currency, billing_day, tax_zone, dunning_policy FROM subscribers WHERE id = $1";

const INVOICED_PERIODS: &str = "SELECT subscriber_id, period_start FROM invoices
     WHERE subscriber_id >= $1 AND subscriber_id <= $2 AND status <> 'void'";

/// Six statements at most, whatever `limit`. They describe one instant only if the backend's
/// `Db::read` runs them in one read transaction (a snapshot).
pub async fn billing_inputs<C: Conn>(
    c: &mut C,
    after: Option<SubscriberId>,
    limit: u32,
    as_of: Option<jiff::civil::Date>,
) -> Result<Vec<BillingInput>> {
    let limit = i64::from(limit);
    let subscribers = match after {
        Some(a) => {
            fetch_all(
                c,
                BILLING_SUBSCRIBERS_AFTER,
                &[a.0.into(), limit.into()],
                rows::billing_subscriber,
            )
            .await?
        }
        None => {
            fetch_all(
                c,
                BILLING_SUBSCRIBERS_FIRST,
                &[limit.into()],
                rows::billing_subscriber,
            )
            .await?
        }
    };
    histories(c, subscribers, as_of).await
}

pub async fn billing_input<C: Conn>(
    c: &mut C,
    subscriber: SubscriberId,
) -> Result<Option<BillingInput>> {
    let subscribers = fetch_all(
        c,
        BILLING_SUBSCRIBER,
        &[subscriber.0.into()],
        rows::billing_subscriber,
    )
    .await?;
    Ok(histories(c, subscribers, None).await?.into_iter().next())
}

/// Which subscribers' rows a history query reads.
enum Scope {
    /// Every subscriber id in [first, last]: the batch is exactly the subscribers with ids in
    /// that range, so history is read by index range scans.
    Range(Uuid, Uuid),
    /// These ids: index lookups, for batches where few subscribers have anything to bill.
    Ids(Vec<Uuid>),
}

impl Scope {
    /// Appends `AND <col> …` restricting `col` to the scope.
    fn push(&self, q: &mut Sql, col: &str, dialect: Dialect) {
        match self {
            Scope::Range(first, last) => {
                q.push(" AND ")
                    .push(col)
                    .push(" >= ")
                    .bind(*first)
                    .push(" AND ")
                    .push(col)
                    .push(" <= ")
                    .bind(*last);
            }
            Scope::Ids(ids) => {
                q.push(" AND ")
                    .push(col)
                    .in_ids(dialect, ids.iter().copied());
            }
        }
    }
}

const HISTORY_SERVICES: &str =
    "SELECT subscriber_id, id, initial_plan_id, initial_plan_version_id FROM services
     WHERE 1 = 1";
const HISTORY_EVENTS: &str =
    "SELECT id, service_id, subscriber_id, seq, kind, effective_at, recorded_at, plan_id,
            plan_version_id, suspension_cause
     FROM service_events WHERE 1 = 1";
// Pre-summed per charge key: rating compares sums, and a subscriber with years of invoices
// has far fewer keys than lines. (`SUM` of a bigint is numeric on PostgreSQL: cast back.)
const HISTORY_INVOICED: &str =
    "SELECT l.subscriber_id, l.service_id, l.charge_kind, l.charge_period_start,
            l.plan_version_id, CAST(SUM(l.amount_minor) AS BIGINT) AS amount_minor
     FROM invoice_lines l JOIN invoices i ON i.id = l.invoice_id
     WHERE i.status <> 'void'";
const HISTORY_INVOICED_GROUP: &str =
    " GROUP BY l.subscriber_id, l.service_id, l.charge_kind, l.charge_period_start,
               l.plan_version_id";
const HISTORY_DISCOUNTS: &str = "SELECT * FROM discounts WHERE 1 = 1";

/// The billing history of `subscribers` (in id order). The invoiced periods come first: with
/// `as_of`, subscribers already invoiced for their current period need nothing else, and when
/// few remain their history is read by id rather than by range.
async fn histories<C: Conn>(
    c: &mut C,
    subscribers: Vec<BillingSubscriber>,
    as_of: Option<Date>,
) -> Result<Vec<BillingInput>> {
    let (Some(first), Some(last)) = (
        subscribers.first().map(|s| s.id.0),
        subscribers.last().map(|s| s.id.0),
    ) else {
        return Ok(Vec::new());
    };
    let periods = fetch_all(
        c,
        INVOICED_PERIODS,
        &[first.into(), last.into()],
        |r: &C::Row| {
            Ok((
                SubscriberId(r.uuid("subscriber_id")?),
                r.parsed::<Date>("period_start")?,
            ))
        },
    )
    .await?;
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
    let scope = if todo.len() * 4 < subscribers.len() && todo.len() <= MAX_IN_LIST {
        Scope::Ids(todo)
    } else {
        Scope::Range(first, last)
    };
    let mut q = Sql::new(HISTORY_SERVICES);
    scope.push(&mut q, "subscriber_id", C::DIALECT);
    let services = collect(q.fetch(c).await?, |r: &C::Row| {
        Ok((
            SubscriberId(r.uuid("subscriber_id")?),
            ServiceId(r.uuid("id")?),
            PlanId(r.uuid("initial_plan_id")?),
            PlanVersionId(r.uuid("initial_plan_version_id")?),
        ))
    })?;
    let mut q = Sql::new(HISTORY_EVENTS);
    scope.push(&mut q, "subscriber_id", C::DIALECT);
    let events = collect(q.fetch(c).await?, rows::billing_event)?;
    let mut q = Sql::new(HISTORY_INVOICED);
    scope.push(&mut q, "i.subscriber_id", C::DIALECT);
    q.push(HISTORY_INVOICED_GROUP);
    let invoiced = collect(q.fetch(c).await?, |r: &C::Row| {
        Ok((SubscriberId(r.uuid("subscriber_id")?), rows::invoiced(r)?))
    })?;
    let mut q = Sql::new(HISTORY_DISCOUNTS);
    scope.push(&mut q, "subscriber_id", C::DIALECT);
    let discounts = collect(q.fetch(c).await?, rows::discount)?;
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

// Runs --------------------------------------------------------------------------------------

const INSERT_BILLING_RUN: &str =
    "INSERT INTO billing_runs (id, as_of, status, started_at, finished_at, cursor,
         subscribers_processed, invoices_created, errors, subscriber_id)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

pub async fn insert_billing_run<C: Conn>(c: &mut C, run: &BillingRun) -> Result<()> {
    c.execute(
        INSERT_BILLING_RUN,
        &[
            run.id.0.into(),
            run.as_of.to_string().into(),
            run.status.as_str().into(),
            Param::at(run.started_at),
            Param::opt_at(run.finished_at),
            run.cursor.map(|s| s.0).into(),
            run.subscribers_processed.into(),
            run.invoices_created.into(),
            Param::json(to_json(&run.errors)?),
            run.subscriber_id.map(|s| s.0).into(),
        ],
    )
    .await?;
    Ok(())
}

const GET_BILLING_RUN: &str = "SELECT * FROM billing_runs WHERE id = $1";

pub async fn get_billing_run<C: Conn>(c: &mut C, id: BillingRunId) -> Result<Option<BillingRun>> {
    fetch_opt(c, GET_BILLING_RUN, &[id.0.into()], rows::billing_run).await
}

pub async fn list_billing_runs<C: Conn>(c: &mut C, page: Page) -> Result<Vec<BillingRun>> {
    let mut q = Sql::new("SELECT * FROM billing_runs WHERE 1 = 1");
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::billing_run)
}

const UNFINISHED_BILLING_RUN: &str = "SELECT * FROM billing_runs
     WHERE as_of = $1 AND status = 'running' AND subscriber_id IS NULL";

pub async fn unfinished_billing_run<C: Conn>(
    c: &mut C,
    as_of: jiff::civil::Date,
) -> Result<Option<BillingRun>> {
    fetch_opt(
        c,
        UNFINISHED_BILLING_RUN,
        &[as_of.to_string().into()],
        rows::billing_run,
    )
    .await
}

/// Both backends store a failed run the same way (migrations 0006): status `completed` with
/// a `failure`, which `rows::billing_run` reads back as failed.
pub async fn complete_billing_run<C: Conn>(
    c: &mut C,
    id: BillingRunId,
    now: Timestamp,
    failure: Option<&str>,
) -> Result<()> {
    c.execute(
        rows::FINISH_BILLING_RUN,
        &[
            id.0.into(),
            BillingRunStatus::Completed.as_str().into(),
            Param::at(now),
            failure.into(),
        ],
    )
    .await?;
    Ok(())
}

// Committing a batch ------------------------------------------------------------------------

/// Takes the invoice counter's row (creating it at 0), returning its value. On PostgreSQL the
/// row lock queues concurrent batches here until the holder commits.
const TAKE_INVOICE_COUNTER: &str = "INSERT INTO counters (name, value) VALUES ($1, 0)
     ON CONFLICT (name) DO UPDATE SET value = counters.value
     RETURNING value";
const SET_COUNTER: &str = "UPDATE counters SET value = $2 WHERE name = $1";

const INVOICE_COLUMNS: [&str; 15] = [
    "id",
    "subscriber_id",
    "number",
    "status",
    "currency",
    "period_start",
    "period_end",
    "created_at",
    "issued_at",
    "due_date",
    "subtotal_minor",
    "tax_minor",
    "total_minor",
    "prices_include_tax",
    "billing_run_id",
];
const LINE_COLUMNS: [&str; 15] = [
    "id",
    "invoice_id",
    "subscriber_id",
    "position",
    "description",
    "service_id",
    "charge_kind",
    "charge_period_start",
    "plan_version_id",
    "correction",
    "days",
    "period_days",
    "amount_minor",
    "tax_minor",
    "taxes",
];

const RUN_PROGRESS: &str = "SELECT cursor, errors FROM billing_runs WHERE id = $1";
const ADVANCE_RUN: &str = "UPDATE billing_runs SET cursor = $2,
         subscribers_processed = subscribers_processed + $3,
         invoices_created = invoices_created + $4, errors = $5
     WHERE id = $1";
const COUNT_RUN_INVOICES: &str =
    "UPDATE billing_runs SET invoices_created = invoices_created + $2 WHERE id = $1";

/// A billing batch with its inserts made ready before the write transaction, off the
/// backend's writer: on SQLite, whose one writer thread is a billing run's critical path, the
/// multi-row `INSERT`s with every value bound (a fifth of that thread's time when it built
/// them itself). The invoice numbers are left for the transaction, which holds the counter.
/// PostgreSQL `COPY`s the rows as they are made instead (`Conn::copy_in`), so nothing is
/// prepared there.
pub struct PreparedBatch {
    pub batch: BillingBatch,
    inserts: Option<PreparedInserts>,
}

struct PreparedInserts {
    /// The invoices' statements, each with `rows` rows of `INVOICE_COLUMNS`.
    invoices: Vec<(usize, Insert)>,
    lines: Vec<Insert>,
}

/// The position of `number` in `INVOICE_COLUMNS`.
const NUMBER_COLUMN: usize = 2;

impl PreparedBatch {
    /// Prepares `batch`'s inserts for a backend of `dialect`, as if every invoice in it were
    /// new (the usual case; the transaction falls back to building them itself otherwise).
    pub fn new(batch: BillingBatch, dialect: Dialect) -> Result<Self> {
        let inserts = match dialect {
            Dialect::Postgres => None,
            Dialect::Sqlite => {
                let all: Vec<&NewInvoice> = batch.invoices.iter().collect();
                let mut invoices = Vec::new();
                let mut rows = invoice_rows(&all, None, "");
                for n in chunk_sizes(all.len()) {
                    invoices.push((
                        n,
                        insert_statement("invoices", &INVOICE_COLUMNS, n, &mut rows)?,
                    ));
                }
                let count = all.iter().map(|i| i.lines.len()).sum();
                let mut rows = line_rows(&all);
                let mut lines = Vec::new();
                for n in chunk_sizes(count) {
                    lines.push(insert_statement(
                        "invoice_lines",
                        &LINE_COLUMNS,
                        n,
                        &mut rows,
                    )?);
                }
                Some(PreparedInserts { invoices, lines })
            }
        };
        Ok(Self { batch, inserts })
    }
}

/// A batch's place in the queue at the invoice counter, for a backend that writes queued
/// batches at once (PostgreSQL): it takes the counter only after the batch queued before it
/// (`before`) has, and then says so (`mine`). The counter's row lock then makes them commit
/// in that order too, so a run's cursor only moves forward. What a batch does before the
/// counter (copying its lines) overlaps the commit of the one before.
pub struct Turn {
    pub before: Option<tokio::sync::oneshot::Receiver<()>>,
    pub mine: tokio::sync::oneshot::Sender<()>,
}

pub async fn commit_billing_batch<C: Conn>(
    c: &mut C,
    prepared: &mut PreparedBatch,
    turn: Option<Turn>,
) -> Result<u64> {
    let b = &prepared.batch;
    // The billing tables declare no foreign keys on either backend (migrations 0002 and
    // 0012): the batch's references are checked here, per table one `IN` list, far cheaper
    // than a foreign key's probe per row. When the backend has a connection idle right now
    // (`Conn::spare`: PostgreSQL's pool), on that one while this one writes: the check (index
    // probes for a few thousand ids) then runs on another core, not in the transaction that
    // holds the invoice counter. It is conservative (a line's invoice
    // counts as present only if it is the line's own) and sees what committed; whatever it
    // does not confirm is checked exactly, in the transaction, after the inserts and before
    // the run's progress (a failure rolls all of it back). Subscribers, services, plan
    // versions and runs are never deleted, so what it confirmed stays true until the commit.
    let (confirmed, fresh) = match c.spare() {
        Some(mut spare) => {
            let all: Vec<&NewInvoice> = b.invoices.iter().collect();
            // The batch's own statements first: each goes out before the check's work.
            let (fresh, early) = tokio::join!(
                biased;
                write_invoices(c, b, None, turn),
                check_references(&mut spare, &all)
            );
            (early.is_ok(), fresh?)
        }
        None => (
            false,
            write_invoices(c, b, prepared.inserts.as_mut(), turn).await?,
        ),
    };
    if !confirmed {
        check_references(c, &fresh).await?;
    }
    record_progress(c, b, fresh.len() as i64).await?;
    Ok(fresh.len() as u64)
}

/// Numbers and inserts the invoices of the batch that are not there yet, and returns them.
async fn write_invoices<'a, C: Conn>(
    c: &mut C,
    b: &'a BillingBatch,
    prepared: Option<&mut PreparedInserts>,
    turn: Option<Turn>,
) -> Result<Vec<&'a NewInvoice>> {
    // Without prepared statements (PostgreSQL's `COPY`), the lines, four fifths of the rows,
    // go in before the counter is taken: they carry no number, and nobody sees them before
    // the commit. The lines of an invoice found to exist are deleted again below.
    let mut lines_first = prepared.is_none();
    if lines_first {
        let all: Vec<&NewInvoice> = b.invoices.iter().collect();
        c.execute("SAVEPOINT lines", &[]).await?;
        match insert_lines(c, &all).await {
            Ok(()) => {}
            // The very batch committed before (a replay, its lines' ids stored already):
            // its lines wait for the counter and the existence check like SQLite's.
            Err(StoreError::Duplicate { .. }) => {
                c.execute("ROLLBACK TO SAVEPOINT lines", &[]).await?;
                lines_first = false;
            }
            Err(e) => return Err(e),
        }
    }
    let mine = match turn {
        Some(Turn { before, mine }) => {
            if let Some(before) = before {
                // An error means the batch before failed or was dropped: it holds nothing.
                let _ = before.await;
            }
            Some(mine)
        }
        None => None,
    };
    // The counter row is taken first: concurrent batches (of any run) then run one at a time
    // from here to their commit (SQLite's single writer does so anyway). So the existence
    // check below sees every invoice committed before it (PostgreSQL's READ COMMITTED takes a
    // snapshot per statement), no two batches insert an invoice for one subscriber and
    // period, and numbers are handed out in commit order. They are taken in this
    // transaction: a batch that rolls back gives them back, so the sequence has no gaps.
    let base = fetch_opt(
        c,
        TAKE_INVOICE_COUNTER,
        &[INVOICE_COUNTER.into()],
        |r: &C::Row| r.i64("value"),
    )
    .await?
    .ok_or_else(|| StoreError::corrupt("the invoice counter's upsert returned no row"))?;
    if let Some(mine) = mine {
        // Nobody waiting (the next batch not queued yet) is no error.
        let _ = mine.send(());
    }
    let fresh = without_existing(c, &b.invoices).await?;
    if lines_first && fresh.len() < b.invoices.len() {
        let kept: HashSet<InvoiceId> = fresh.iter().map(|i| i.id).collect();
        let skipped: Vec<Uuid> = b
            .invoices
            .iter()
            .filter(|i| !kept.contains(&i.id))
            .map(|i| i.id.0)
            .collect();
        for chunk in skipped.chunks(MAX_IN_LIST) {
            let mut q = Sql::new("DELETE FROM invoice_lines WHERE invoice_id");
            q.in_ids(C::DIALECT, chunk.iter().copied());
            q.execute(c).await?;
        }
    }
    // Drafts get their number when issued.
    let issued = fresh.iter().filter(|i| i.issue.is_some()).count() as i64;
    if issued > 0 {
        let last = base
            .checked_add(issued)
            .ok_or_else(|| StoreError::corrupt("the invoice counter overflows"))?;
        c.execute(SET_COUNTER, &[INVOICE_COUNTER.into(), last.into()])
            .await?;
    }
    match prepared {
        // Every invoice is new, as the statements were prepared: number them and run them.
        Some(p) if fresh.len() == b.invoices.len() => {
            let mut next = base + 1;
            let mut invoices = fresh.iter();
            for (rows, q) in &mut p.invoices {
                for (row, inv) in (&mut invoices).take(*rows).enumerate() {
                    if inv.issue.is_some() {
                        q.params[row * INVOICE_COLUMNS.len() + NUMBER_COLUMN] =
                            rows::invoice_number(&b.number_prefix, next).into();
                        next += 1;
                    }
                }
                q.execute(c).await?;
            }
            for q in &p.lines {
                q.execute(c).await?;
            }
        }
        _ => {
            insert_invoices(c, &fresh, base + 1, &b.number_prefix).await?;
            if !lines_first {
                insert_lines(c, &fresh).await?;
            }
        }
    }
    Ok(fresh)
}

/// Finds which (subscriber, period) pairs already have a live invoice: one probe of the
/// unique index per pair. The probe is a scalar subquery with `LIMIT 1` so that PostgreSQL
/// keeps it a probe per pair (it would turn `EXISTS` or a join into a hash of all of
/// `invoices`); SQLite runs it per row, and cannot search an index for a row-value `IN`.
/// The pairs are a `VALUES` list on SQLite, and on PostgreSQL two arrays bound once and
/// unpacked by `UNNEST` (one statement for the whole batch; the arrays read by sub-selects,
/// as in `Sql::in_ids`, so the planner does not parse them).
const EXISTING_HEAD: &str =
    "SELECT b.column1 AS subscriber_id, b.column2 AS period_start FROM (VALUES ";
const EXISTING_HEAD_PG: &str = "SELECT b.column1 AS subscriber_id, b.column2 AS period_start
     FROM (SELECT * FROM UNNEST((SELECT CAST($1 AS uuid[]))::uuid[],
                                (SELECT CAST($2 AS text[]))::text[]) AS u (column1, column2)";
const EXISTING_TAIL: &str = ") AS b
     WHERE (SELECT 1 FROM invoices i
            WHERE i.subscriber_id = b.column1 AND i.period_start = b.column2
              AND i.status <> 'void'
            LIMIT 1) IS NOT NULL";

/// The invoices of `all` whose subscriber has no invoice for that period yet.
async fn without_existing<'a, C: Conn>(
    c: &mut C,
    all: &'a [NewInvoice],
) -> Result<Vec<&'a NewInvoice>> {
    let mut existing: HashSet<(SubscriberId, Date)> = HashSet::new();
    let mut found = |rows: Vec<C::Row>| -> Result<()> {
        for r in rows {
            existing.insert((
                SubscriberId(r.uuid("subscriber_id")?),
                r.parsed::<Date>("period_start")?,
            ));
        }
        Ok(())
    };
    if C::DIALECT == Dialect::Postgres {
        if !all.is_empty() {
            let q = Sql {
                text: format!("{EXISTING_HEAD_PG}{EXISTING_TAIL}"),
                params: vec![
                    uuid_array(all.iter().map(|i| i.subscriber_id.0)),
                    text_array(all.iter().map(|i| i.period_start.to_string())),
                ],
            };
            found(q.fetch(c).await?)?;
        }
    } else {
        for chunk in chunks(all) {
            let mut q = Sql::new(EXISTING_HEAD);
            q.params.reserve(chunk.len() * 2);
            for (k, inv) in chunk.iter().enumerate() {
                if k > 0 {
                    q.push(", ");
                }
                q.bind_list([
                    Param::from(inv.subscriber_id.0),
                    inv.period_start.to_string().into(),
                ]);
            }
            q.push(EXISTING_TAIL);
            found(q.fetch(c).await?)?;
        }
    }
    Ok(all
        .iter()
        .filter(|i| !existing.contains(&(i.subscriber_id, i.period_start)))
        .collect())
}

/// Fails with what a foreign key violation maps to (`InUse`, as SQLite reports it) unless
/// every subscriber, run, service, plan version and (other than the batch's own) invoice the
/// batch refers to exists: per table one count of an `IN` list of distinct ids (an array on
/// PostgreSQL, see `Sql::in_ids`), all in one statement (per `MAX_IN_LIST` ids).
async fn check_references<C: Conn>(c: &mut C, fresh: &[&NewInvoice]) -> Result<()> {
    let ours: HashSet<InvoiceId> = fresh.iter().map(|i| i.id).collect();
    // Per table, its ids sorted and without repeats (cheaper than one set of all of them:
    // this runs while the batch's transaction waits).
    let (mut subscribers, mut runs, mut services, mut versions, mut invoices) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for inv in fresh {
        subscribers.push(inv.subscriber_id.0);
        runs.extend(inv.billing_run_id.map(|r| r.0));
        for l in &inv.lines {
            services.push(l.service_id.0);
            versions.push(l.plan_version_id.0);
            if !ours.contains(&l.invoice_id) {
                invoices.push(l.invoice_id.0);
            }
        }
    }
    let mut refs: Vec<(&'static str, Uuid)> = Vec::new();
    for (table, mut ids) in [
        ("billing_runs", runs),
        ("invoices", invoices),
        ("plan_versions", versions),
        ("services", services),
        ("subscribers", subscribers),
    ] {
        ids.sort_unstable();
        ids.dedup();
        refs.extend(ids.into_iter().map(|id| (table, id)));
    }
    for chunk in refs.chunks(MAX_IN_LIST) {
        let mut q = Sql::default();
        for group in chunk.chunk_by(|a, b| a.0 == b.0) {
            let Some(&(table, _)) = group.first() else {
                continue;
            };
            if !q.text.is_empty() {
                q.push(" UNION ALL ");
            }
            q.push("SELECT count(*) AS n FROM ")
                .push(table)
                .push(" WHERE id")
                .in_ids(C::DIALECT, group.iter().map(|&(_, id)| id));
        }
        // Ids are distinct per table, so the counts add up to the chunk's length exactly
        // when every one exists.
        let found = q
            .fetch(c)
            .await?
            .iter()
            .map(|r| r.i64("n"))
            .sum::<Result<i64>>()?;
        if found != chunk.len() as i64 {
            return Err(StoreError::InUse {
                entity: "record",
                by: "other records",
            });
        }
    }
    Ok(())
}

/// Inserts `invs`, numbering the issued ones `prefix` + `first`, `first + 1`, … in batch
/// order.
async fn insert_invoices<C: Conn>(
    c: &mut C,
    invs: &[&NewInvoice],
    first: i64,
    prefix: &str,
) -> Result<()> {
    let mut rows = invoice_rows(invs, Some(first), prefix);
    bulk_insert(c, "invoices", &INVOICE_COLUMNS, invs.len(), &mut rows).await
}

/// The rows of `invs`, the issued ones numbered `prefix` + `first`, `first + 1`, … in order;
/// without `first`, unnumbered (a NULL the caller replaces).
fn invoice_rows<'a>(
    invs: &'a [&NewInvoice],
    first: Option<i64>,
    prefix: &'a str,
) -> impl Iterator<Item = Result<[Param; INVOICE_COLUMNS.len()]>> + Send + 'a {
    let mut next = first;
    invs.iter().map(move |inv| {
        // Rating checks the totals fit before it writes an invoice (`NewInvoice::totals`).
        let (subtotal, tax, total) = inv.totals().unwrap_or((0, 0, 0));
        let (number, status) = match inv.issue {
            Some(_) => {
                let n = next.map(|n| rows::invoice_number(prefix, n));
                next = next.map(|n| n + 1);
                // A zero invoice is settled as it is issued.
                (n, status_at_issue(total))
            }
            None => (None, InvoiceStatus::Draft),
        };
        Ok([
            inv.id.0.into(),
            inv.subscriber_id.0.into(),
            number.into(),
            status.as_str().into(),
            inv.currency.as_str().into(),
            inv.period_start.to_string().into(),
            inv.period_end.to_string().into(),
            Param::at(inv.created_at),
            Param::opt_at(inv.issue.map(|_| inv.created_at)),
            inv.issue.map(|d| d.to_string()).into(),
            subtotal.into(),
            tax.into(),
            total.into(),
            Param::Bool(inv.prices_include_tax),
            inv.billing_run_id.map(|r| r.0).into(),
        ])
    })
}

async fn insert_lines<C: Conn>(c: &mut C, invs: &[&NewInvoice]) -> Result<()> {
    let count = invs.iter().map(|i| i.lines.len()).sum();
    bulk_insert(
        c,
        "invoice_lines",
        &LINE_COLUMNS,
        count,
        &mut line_rows(invs),
    )
    .await
}

fn line_rows<'a>(
    invs: &'a [&NewInvoice],
) -> impl Iterator<Item = Result<[Param; LINE_COLUMNS.len()]>> + Send + 'a {
    invs.iter().flat_map(|i| i.lines.iter()).map(|l| {
        let taxes = if l.taxes.is_empty() {
            Param::Null
        } else {
            Param::json(to_json(&l.taxes)?)
        };
        Ok([
            l.id.0.into(),
            l.invoice_id.0.into(),
            l.subscriber_id.0.into(),
            l.position.into(),
            l.description.as_str().into(),
            l.service_id.0.into(),
            l.charge_kind.as_str().into(),
            l.charge_period_start.to_string().into(),
            l.plan_version_id.0.into(),
            // An integer column on both backends.
            i64::from(l.correction).into(),
            l.days.into(),
            l.period_days.into(),
            l.amount_minor.into(),
            l.tax_minor.into(),
            taxes,
        ])
    })
}

/// Inserts the `count` rows of `rows` into `table`: with the backend's bulk insert if it has
/// one (`Conn::copy_in`: PostgreSQL's `COPY`, which takes the rows as they are made), else
/// with multi-row `INSERT`s in `chunks`.
async fn bulk_insert<C: Conn, const N: usize>(
    c: &mut C,
    table: &'static str,
    columns: &'static [&'static str; N],
    count: usize,
    rows: &mut (dyn Iterator<Item = Result<[Param; N]>> + Send),
) -> Result<()> {
    if count == 0 || c.copy_in(table, columns, rows).await?.is_some() {
        return Ok(());
    }
    for n in chunk_sizes(count) {
        insert_statement(table, columns, n, rows)?
            .execute(c)
            .await?;
    }
    Ok(())
}

/// One multi-row `INSERT` into `table` of the next `n` rows of `rows` (`n` one of
/// `chunk_sizes`).
fn insert_statement<const N: usize>(
    table: &'static str,
    columns: &'static [&'static str; N],
    n: usize,
    rows: &mut (dyn Iterator<Item = Result<[Param; N]>> + Send),
) -> Result<Insert> {
    let mut params = Vec::with_capacity(n * N);
    for row in rows.take(n) {
        params.extend(row?);
    }
    Ok(Insert {
        text: insert_text(table, columns, n),
        params,
    })
}

/// A multi-row `INSERT` with its values.
struct Insert {
    /// One text per table and row count for the life of the process: the backend's
    /// statement caches then know it by its address, instead of rewriting and hashing a new
    /// 100 kB text per batch.
    text: &'static str,
    params: Vec<Param>,
}

impl Insert {
    async fn execute<C: Conn>(&self, c: &mut C) -> Result<u64> {
        c.execute(self.text, &self.params).await
    }
}

/// The text of a multi-row `INSERT` of `n` rows into `table`, `n` one of `chunk_sizes`.
fn insert_text<const N: usize>(
    table: &'static str,
    columns: &'static [&'static str; N],
    n: usize,
) -> &'static str {
    type Texts = std::sync::Mutex<HashMap<(&'static str, usize), &'static str>>;
    static TEXTS: std::sync::OnceLock<Texts> = std::sync::OnceLock::new();
    let texts = TEXTS.get_or_init(Default::default);
    // A poisoned lock only means another thread panicked while inserting: the map is whole.
    let mut texts = texts.lock().unwrap_or_else(|e| e.into_inner());
    texts.entry((table, n)).or_insert_with(|| {
        let mut text = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        for row in 0..n {
            text.push_str(if row == 0 { "(" } else { ", (" });
            for col in 0..N {
                if col > 0 {
                    text.push_str(", ");
                }
                text.push('$');
                text.push_str(&(row * N + col + 1).to_string());
            }
            text.push(')');
        }
        // Two tables × eleven sizes (`chunk_sizes`), made once each: a bounded set kept for
        // the process's life, as a constant would be.
        Box::leak(text.into_boxed_str())
    })
}

/// Records the batch's progress on its run; `NotFound` if there is no such run.
async fn record_progress<C: Conn>(c: &mut C, b: &BillingBatch, created: i64) -> Result<()> {
    // Another executor of the same run may have committed this batch already: then its
    // invoices were filtered out above, and its subscribers and errors are counted once, not
    // twice: only a batch that moves the cursor forward records them. (The stored errors, to
    // append to, are read only then; no row is held across the writes below.)
    let stored_errors: Option<Vec<BillingRunError>> = {
        let stored = c.fetch(RUN_PROGRESS, &[b.run.0.into()]).await?;
        let Some(run) = stored.first() else {
            return Err(StoreError::NotFound {
                entity: "billing run",
            });
        };
        if run.opt_uuid("cursor")?.is_none_or(|at| at < b.cursor.0) {
            Some(run.decoded("errors")?)
        } else {
            None
        }
    };
    if let Some(mut errors) = stored_errors {
        errors.extend(b.errors.iter().cloned());
        c.execute(
            ADVANCE_RUN,
            &[
                b.run.0.into(),
                b.cursor.0.into(),
                b.subscribers.into(),
                created.into(),
                Param::json(to_json(&errors)?),
            ],
        )
        .await?;
    } else {
        c.execute(COUNT_RUN_INVOICES, &[b.run.0.into(), created.into()])
            .await?;
    }
    Ok(())
}

// Invoices ----------------------------------------------------------------------------------

const GET_INVOICE: &str = "SELECT * FROM invoices WHERE id = $1";
const INVOICE_LINES: &str = "SELECT * FROM invoice_lines WHERE invoice_id = $1 ORDER BY position";

pub async fn get_invoice<C: Conn>(c: &mut C, id: InvoiceId) -> Result<Option<Invoice>> {
    let Some(mut inv) = fetch_opt(c, GET_INVOICE, &[id.0.into()], rows::invoice).await? else {
        return Ok(None);
    };
    inv.lines = fetch_all(c, INVOICE_LINES, &[id.0.into()], rows::invoice_line).await?;
    Ok(Some(inv))
}

pub async fn list_invoices<C: Conn>(
    c: &mut C,
    filter: &InvoiceFilter,
    page: Page,
) -> Result<Vec<Invoice>> {
    let mut q = Sql::new("SELECT * FROM invoices WHERE 1 = 1");
    crate::services::equal_filters::<C>(
        &mut q,
        [
            ("number", filter.number.as_deref().map(Param::from)),
            ("subscriber_id", filter.subscriber_id.map(|s| s.0.into())),
            (
                "period_start",
                filter.period_start.map(|p| p.to_string().into()),
            ),
            ("status", filter.status.map(|st| st.as_str().into())),
        ],
    );
    q.paginate("id", page);
    collect(q.fetch(c).await?, rows::invoice)
}

/// Subscribers per `subscribers_with_credit` statement on SQLite (each id is bound once and
/// used by all four branches). PostgreSQL binds them all as one array.
const CREDIT_CHUNK: usize = 512;

pub async fn subscribers_with_credit<C: Conn>(
    c: &mut C,
    ids: &[SubscriberId],
) -> Result<Vec<SubscriberId>> {
    let mut out = Vec::new();
    let chunk_len = match C::DIALECT {
        Dialect::Sqlite => CREDIT_CHUNK,
        Dialect::Postgres => ids.len().max(1),
    };
    for chunk in ids.chunks(chunk_len) {
        let (list, params) = match C::DIALECT {
            Dialect::Sqlite => {
                let list = (1..=chunk.len())
                    .map(|n| format!("${n}"))
                    .collect::<Vec<_>>()
                    .join(", ");
                let params: Vec<Param> = chunk.iter().map(|s| s.0.into()).collect();
                (format!("IN ({list})"), params)
            }
            Dialect::Postgres => (
                // As `Sql::in_ids` writes it (one array, read by a sub-select).
                "= ANY((SELECT CAST($1 AS uuid[]))::uuid[])".to_string(),
                vec![uuid_array(chunk.iter().map(|s| s.0))],
            ),
        };
        // Each branch filters by subscriber first, so every one is an index lookup. The
        // invoices branch says `NOT IN ('draft', 'void')` (the same set as issued or paid)
        // because SQLite, without statistics, prefers an index on `status IN (…)` to the
        // subscriber list: a scan of every issued invoice per chunk, which made settling a
        // billing run quadratic.
        let sql = format!(
            "SELECT subscriber_id FROM (
                 SELECT subscriber_id, amount_minor AS v FROM payments
                     WHERE subscriber_id {list}
                 UNION ALL SELECT subscriber_id, total_minor FROM credit_notes
                     WHERE subscriber_id {list}
                 UNION ALL SELECT subscriber_id, -total_minor FROM invoices
                     WHERE subscriber_id {list} AND total_minor < 0
                       AND status NOT IN ('draft', 'void')
                 UNION ALL SELECT subscriber_id, -amount_minor FROM allocations
                     WHERE subscriber_id {list}
             ) AS c GROUP BY subscriber_id HAVING SUM(v) > 0"
        );
        for r in c.fetch(&sql, &params).await? {
            out.push(SubscriberId(r.uuid("subscriber_id")?));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn chunks_cover_every_row_in_few_sizes() {
        let mut sizes = BTreeSet::new();
        for n in [0, 1, 2, 3, 511, 512, 1000, 1023, 1024, 1025, 2048, 5000] {
            let items: Vec<usize> = (0..n).collect();
            let parts: Vec<&[usize]> = chunks(&items).collect();
            assert_eq!(parts.concat(), items, "{n} rows, in order, each once");
            for p in &parts {
                assert!(!p.is_empty() && p.len() <= MAX_ROWS && p.len().is_power_of_two());
                sizes.insert(p.len());
            }
        }
        assert!(sizes.len() <= MAX_ROWS.trailing_zeros() as usize + 1);
    }
}
