//! Billing queries (SQLite).

use crate::row::{db_err, Row};
use crate::{collect, id, SqliteStore};
use jiff::civil::Date;
use jiff::Timestamp;
use lastmile_domain::billing::invoice::{
    status_at_issue, BillingRun, BillingRunStatus, Invoice, InvoiceStatus, NewInvoice,
};
use lastmile_domain::ids::*;
use lastmile_domain::plan::PlanVersion;
use lastmile_store::rows::{self, micros, RowGet};
use lastmile_store::*;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

/// Rows per multi-row INSERT (SQLite allows 32766 bound variables; 13 per line).
const CHUNK: usize = 500;

pub async fn plan_catalog(s: &SqliteStore) -> Result<Vec<(String, PlanVersion)>> {
    sqlx::query(
        "SELECT v.*, p.name AS plan_name FROM plan_versions v JOIN plans p ON p.id = v.plan_id",
    )
    .fetch_all(&s.read)
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
    s: &SqliteStore,
    after: Option<SubscriberId>,
    limit: u32,
    as_of: Option<Date>,
) -> Result<Vec<BillingInput>> {
    let after = after.map(|a| id(a.0)).unwrap_or_default();
    // One read transaction: the batch sees one consistent snapshot.
    let mut tx = s.read.begin().await.map_err(db_err)?;
    let subscribers = sqlx::query(
        "SELECT id, currency, billing_day, tax_zone, dunning_policy FROM subscribers
         WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(&after)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await
    .map_err(db_err)?;
    let subscribers = collect(subscribers, rows::billing_subscriber)?;
    let inputs = histories(&mut tx, subscribers, as_of).await?;
    tx.commit().await.map_err(db_err)?;
    Ok(inputs)
}

pub async fn billing_input(s: &SqliteStore, sub: SubscriberId) -> Result<Option<BillingInput>> {
    let mut tx = s.read.begin().await.map_err(db_err)?;
    let subscribers = sqlx::query(
        "SELECT id, currency, billing_day, tax_zone, dunning_policy FROM subscribers
         WHERE id = $1",
    )
    .bind(id(sub.0))
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
    /// Every subscriber id in [first, last]: range scans, for batches billing most of theirs.
    Range(String, String),
    /// These ids: index lookups, for batches where few subscribers have anything to bill.
    Ids(Vec<String>),
}

impl Scope {
    /// Appends `AND <col> …` restricting `col` to the scope.
    fn push(&self, q: &mut QueryBuilder<Sqlite>, col: &str) {
        match self {
            Scope::Range(first, last) => {
                q.push(format_args!(" AND {col} >= "))
                    .push_bind(first.clone())
                    .push(format_args!(" AND {col} <= "))
                    .push_bind(last.clone());
            }
            Scope::Ids(ids) => {
                q.push(format_args!(" AND {col} IN ("));
                let mut sep = q.separated(", ");
                for i in ids {
                    sep.push_bind(i.clone());
                }
                q.push(")");
            }
        }
    }
}

/// The billing history of `subscribers` (in id order). The invoiced periods come first: with
/// `as_of`, subscribers already invoiced for their current period need nothing else, and when
/// few remain their history is read by id rather than by range.
async fn histories(
    tx: &mut SqliteConnection,
    subscribers: Vec<BillingSubscriber>,
    as_of: Option<Date>,
) -> Result<Vec<BillingInput>> {
    let (Some(first), Some(last)) = (
        subscribers.first().map(|s| id(s.id.0)),
        subscribers.last().map(|s| id(s.id.0)),
    ) else {
        return Ok(Vec::new());
    };
    let periods = sqlx::query(
        "SELECT subscriber_id, period_start FROM invoices
         WHERE subscriber_id >= $1 AND subscriber_id <= $2 AND status <> 'void'",
    )
    .bind(&first)
    .bind(&last)
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
    let todo: Vec<String> = subscribers
        .iter()
        .filter(|s| !skipped.contains(&s.id))
        .map(|s| id(s.id.0))
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
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT subscriber_id, id, initial_plan_id, initial_plan_version_id FROM services
         WHERE 1 = 1",
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
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT id, service_id, subscriber_id, seq, kind, effective_at, recorded_at, plan_id,
                plan_version_id, suspension_cause
         FROM service_events WHERE 1 = 1",
    );
    scope.push(&mut q, "subscriber_id");
    let events = collect(
        q.build().fetch_all(&mut *tx).await.map_err(db_err)?,
        rows::billing_event,
    )?;
    // Pre-summed per charge key: rating compares sums, and a subscriber with years of
    // invoices has far fewer keys than lines.
    let mut q = QueryBuilder::<Sqlite>::new(
        "SELECT l.subscriber_id, l.service_id, l.charge_kind, l.charge_period_start,
                l.plan_version_id, SUM(l.amount_minor) AS amount_minor
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
    let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM discounts WHERE 1 = 1");
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

pub async fn insert_billing_run(s: &SqliteStore, run: &BillingRun) -> Result<()> {
    let mut tx = s.begin().await?;
    sqlx::query(
        "INSERT INTO billing_runs (id, as_of, status, started_at, finished_at, cursor,
             subscribers_processed, invoices_created, errors, subscriber_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(id(run.id.0))
    .bind(run.as_of.to_string())
    .bind(run.status.as_str())
    .bind(micros(run.started_at))
    .bind(run.finished_at.map(micros))
    .bind(run.cursor.map(|c| id(c.0)))
    .bind(run.subscribers_processed)
    .bind(run.invoices_created)
    .bind(rows::to_json(&run.errors)?.to_string())
    .bind(run.subscriber_id.map(|s| id(s.0)))
    .execute(&mut *tx)
    .await
    .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

pub async fn get_billing_run(s: &SqliteStore, rid: BillingRunId) -> Result<Option<BillingRun>> {
    sqlx::query("SELECT * FROM billing_runs WHERE id = $1")
        .bind(id(rid.0))
        .fetch_optional(&s.read)
        .await
        .map_err(db_err)?
        .map(|r| rows::billing_run(&Row(r)))
        .transpose()
}

pub async fn list_billing_runs(s: &SqliteStore, page: Page) -> Result<Vec<BillingRun>> {
    let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM billing_runs WHERE 1 = 1");
    crate::paginate(&mut q, "id", page);
    q.build()
        .fetch_all(&s.read)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|r| rows::billing_run(&Row(r)))
        .collect()
}

pub async fn unfinished_billing_run(s: &SqliteStore, as_of: Date) -> Result<Option<BillingRun>> {
    sqlx::query(
        "SELECT * FROM billing_runs
         WHERE as_of = $1 AND status = 'running' AND subscriber_id IS NULL",
    )
    .bind(as_of.to_string())
    .fetch_optional(&s.read)
    .await
    .map_err(db_err)?
    .map(|r| rows::billing_run(&Row(r)))
    .transpose()
}

pub async fn commit_billing_batch(s: &SqliteStore, b: &BillingBatch) -> Result<u64> {
    // The single writer connection serialises batches of concurrent runs.
    let mut tx = s.begin().await?;
    let fresh = without_existing(&mut tx, &b.invoices).await?;
    // Numbers come from a counter updated in this transaction: a batch that rolls back
    // gives its numbers back, so the sequence has no gaps. Drafts get theirs when issued.
    let issued = fresh.iter().filter(|i| i.issue.is_some()).count() as i64;
    let mut next = if issued > 0 {
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO counters (name, value) VALUES ('invoice_number', $1)
             ON CONFLICT (name) DO UPDATE SET value = value + $1
             RETURNING value",
        )
        .bind(issued)
        .fetch_one(&mut *tx)
        .await
        .map_err(db_err)?;
        last - issued + 1
    } else {
        0
    };
    let numbered: Vec<(&NewInvoice, Option<String>)> = fresh
        .iter()
        .map(|inv| {
            let number = inv.issue.map(|_| {
                next += 1;
                lastmile_store::rows::invoice_number(&b.number_prefix, next - 1)
            });
            (*inv, number)
        })
        .collect();
    for chunk in numbered.chunks(CHUNK) {
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO invoices (id, subscriber_id, number, status, currency, period_start,
                 period_end, created_at, issued_at, due_date, subtotal_minor, tax_minor,
                 total_minor, prices_include_tax, billing_run_id) ",
        );
        q.push_values(chunk, |mut v, (inv, number)| {
            v.push_bind(id(inv.id.0))
                .push_bind(id(inv.subscriber_id.0))
                .push_bind(number.clone())
                // A zero invoice is settled as it is issued (`status_at_issue`).
                .push_bind(match inv.issue {
                    Some(_) => status_at_issue(inv.total_minor()).as_str(),
                    None => InvoiceStatus::Draft.as_str(),
                })
                .push_bind(inv.currency.as_str().to_string())
                .push_bind(inv.period_start.to_string())
                .push_bind(inv.period_end.to_string())
                .push_bind(micros(inv.created_at))
                .push_bind(inv.issue.map(|_| micros(inv.created_at)))
                .push_bind(inv.issue.map(|d| d.to_string()))
                .push_bind(inv.subtotal_minor())
                .push_bind(inv.tax_minor())
                .push_bind(inv.total_minor())
                .push_bind(i64::from(inv.prices_include_tax))
                .push_bind(inv.billing_run_id.map(|r| id(r.0)));
        });
        q.build().execute(&mut *tx).await.map_err(db_err)?;
    }
    let lines: Vec<_> = fresh.iter().flat_map(|i| i.lines.iter()).collect();
    for chunk in lines.chunks(CHUNK) {
        let taxes = chunk
            .iter()
            .map(|l| {
                (!l.taxes.is_empty())
                    .then(|| rows::to_json(&l.taxes).map(|t| t.to_string()))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        let mut q = QueryBuilder::<Sqlite>::new(
            "INSERT INTO invoice_lines (id, invoice_id, subscriber_id, position, description,
                 service_id, charge_kind, charge_period_start, plan_version_id, correction, days,
                 period_days, amount_minor, tax_minor, taxes) ",
        );
        q.push_values(chunk.iter().zip(taxes), |mut v, (l, taxes)| {
            v.push_bind(id(l.id.0))
                .push_bind(id(l.invoice_id.0))
                .push_bind(id(l.subscriber_id.0))
                .push_bind(i64::from(l.position))
                .push_bind(l.description.clone())
                .push_bind(id(l.service_id.0))
                .push_bind(l.charge_kind.as_str())
                .push_bind(l.charge_period_start.to_string())
                .push_bind(id(l.plan_version_id.0))
                .push_bind(i64::from(l.correction))
                .push_bind(l.days)
                .push_bind(l.period_days)
                .push_bind(l.amount_minor)
                .push_bind(l.tax_minor)
                .push_bind(taxes);
        });
        q.build().execute(&mut *tx).await.map_err(db_err)?;
    }
    let stored = sqlx::query("SELECT cursor, errors FROM billing_runs WHERE id = $1")
        .bind(id(b.run.0))
        .fetch_optional(&mut *tx)
        .await
        .map_err(db_err)?;
    let Some(stored) = stored.map(Row) else {
        return Err(StoreError::NotFound {
            entity: "billing run",
        });
    };
    // Another executor of the same run may have committed this batch already: then its
    // invoices were filtered out above and its progress is counted once, not twice.
    let advances = stored.opt_uuid("cursor")?.is_none_or(|c| c < b.cursor.0);
    if advances {
        let mut errors: Vec<lastmile_domain::billing::invoice::BillingRunError> =
            stored.decoded("errors")?;
        errors.extend(b.errors.iter().cloned());
        sqlx::query(
            "UPDATE billing_runs SET cursor = $2,
                 subscribers_processed = subscribers_processed + $3,
                 invoices_created = invoices_created + $4, errors = $5
             WHERE id = $1",
        )
        .bind(id(b.run.0))
        .bind(id(b.cursor.0))
        .bind(b.subscribers)
        .bind(fresh.len() as i64)
        .bind(rows::to_json(&errors)?.to_string())
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    } else {
        sqlx::query(
            "UPDATE billing_runs SET invoices_created = invoices_created + $2 WHERE id = $1",
        )
        .bind(id(b.run.0))
        .bind(fresh.len() as i64)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    }
    tx.commit().await.map_err(db_err)?;
    Ok(fresh.len() as u64)
}

/// The invoices of `all` whose subscriber has no invoice for that period yet.
async fn without_existing<'a>(
    tx: &mut SqliteConnection,
    all: &'a [NewInvoice],
) -> Result<Vec<&'a NewInvoice>> {
    let mut fresh = Vec::with_capacity(all.len());
    for chunk in all.chunks(CHUNK) {
        // By subscriber (an index search), then the periods in Rust: SQLite cannot search
        // an index for a row-value IN list and would scan every invoice for each batch.
        let mut q = QueryBuilder::<Sqlite>::new(
            "SELECT subscriber_id, period_start FROM invoices
             WHERE status <> 'void' AND subscriber_id IN (",
        );
        let mut sep = q.separated(", ");
        for inv in chunk {
            sep.push_bind(id(inv.subscriber_id.0));
        }
        q.push(")");
        let existing: std::collections::HashSet<(String, String)> = q
            .build()
            .fetch_all(&mut *tx)
            .await
            .map_err(db_err)?
            .into_iter()
            .map(|r| {
                let r = Row(r);
                Ok((r.text("subscriber_id")?, r.text("period_start")?))
            })
            .collect::<Result<_>>()?;
        fresh.extend(
            chunk.iter().filter(|i| {
                !existing.contains(&(id(i.subscriber_id.0), i.period_start.to_string()))
            }),
        );
    }
    Ok(fresh)
}

pub async fn complete_billing_run(
    s: &SqliteStore,
    rid: BillingRunId,
    now: Timestamp,
    failure: Option<&str>,
) -> Result<()> {
    let mut tx = s.begin().await?;
    sqlx::query(rows::FINISH_BILLING_RUN)
        .bind(id(rid.0))
        .bind(BillingRunStatus::Completed.as_str())
        .bind(micros(now))
        .bind(failure)
        .execute(&mut *tx)
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)
}

pub async fn get_invoice(s: &SqliteStore, iid: InvoiceId) -> Result<Option<Invoice>> {
    let Some(row) = sqlx::query("SELECT * FROM invoices WHERE id = $1")
        .bind(id(iid.0))
        .fetch_optional(&s.read)
        .await
        .map_err(db_err)?
    else {
        return Ok(None);
    };
    let mut inv = rows::invoice(&Row(row))?;
    inv.lines = sqlx::query("SELECT * FROM invoice_lines WHERE invoice_id = $1 ORDER BY position")
        .bind(id(iid.0))
        .fetch_all(&s.read)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|r| rows::invoice_line(&Row(r)))
        .collect::<Result<_>>()?;
    Ok(Some(inv))
}

pub async fn list_invoices(s: &SqliteStore, f: &InvoiceFilter, page: Page) -> Result<Vec<Invoice>> {
    let mut q = QueryBuilder::<Sqlite>::new("SELECT * FROM invoices WHERE 1 = 1");
    if let Some(sub) = f.subscriber_id {
        q.push(" AND subscriber_id = ").push_bind(id(sub.0));
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
    crate::paginate(&mut q, "id", page);
    q.build()
        .fetch_all(&s.read)
        .await
        .map_err(db_err)?
        .into_iter()
        .map(|r| rows::invoice(&Row(r)))
        .collect()
}
