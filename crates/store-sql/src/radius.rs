//! RADIUS: sessions and hourly usage as read back, the stale sweep, and the directory's loads
//! and change feed (accounting writes are in `accounting`).

use crate::prelude::*;
use crate::services::equal_filters;
use lastmile_domain::radius::{HourlyUsage, RadiusSession};
use lastmile_store::radius::{
    self as r, ChangeBatch, ChangeCursor, DirectoryService, SessionFilter,
};

pub async fn close_stale_sessions<C: Conn>(
    c: &mut C,
    nas_id: NasId,
    idle_since: Timestamp,
) -> Result<u64> {
    c.execute(
        "UPDATE radius_sessions SET stopped_at = updated_at, end_reason = 'stale'
         WHERE nas_id = $1 AND stopped_at IS NULL AND updated_at < $2",
        &[nas_id.0.into(), Param::at(idle_since)],
    )
    .await
}

pub async fn get_session<C: Conn>(c: &mut C, id: SessionId) -> Result<Option<RadiusSession>> {
    fetch_opt(
        c,
        "SELECT * FROM radius_sessions WHERE id = $1",
        &[id.0.into()],
        r::radius_session,
    )
    .await
}

pub async fn list_sessions<C: Conn>(
    c: &mut C,
    filter: &SessionFilter,
    page: Page,
) -> Result<Vec<RadiusSession>> {
    let mut q = Sql::new("SELECT * FROM radius_sessions WHERE 1 = 1");
    equal_filters::<C>(
        &mut q,
        [
            ("service_id", filter.service_id.map(|s| s.0.into())),
            ("username", filter.username.as_deref().map(Param::from)),
            ("framed_ip", filter.framed_ip.as_deref().map(Param::from)),
            ("subscriber_id", filter.subscriber_id.map(|s| s.0.into())),
            ("nas_id", filter.nas_id.map(|n| n.0.into())),
        ],
    );
    match filter.active {
        Some(true) => q.push(" AND stopped_at IS NULL"),
        Some(false) => q.push(" AND stopped_at IS NOT NULL"),
        None => &mut q,
    };
    q.paginate("id", page);
    collect(q.fetch(c).await?, r::radius_session)
}

pub async fn set_session_policy<C: Conn>(
    c: &mut C,
    id: SessionId,
    policy: &str,
    at: Timestamp,
) -> Result<()> {
    let n = c
        .execute(
            "UPDATE radius_sessions SET accepted_policy = $2, policy_updated_at = $3
             WHERE id = $1",
            &[id.0.into(), policy.into(), Param::at(at)],
        )
        .await?;
    if n == 1 {
        Ok(())
    } else {
        Err(StoreError::NotFound { entity: "session" })
    }
}

pub async fn usage_hourly<C: Conn>(
    c: &mut C,
    subscriber_id: SubscriberId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<HourlyUsage>> {
    fetch_all(
        c,
        "SELECT * FROM usage_hourly
         WHERE subscriber_id = $1 AND hour_start >= $2 AND hour_start < $3
         ORDER BY hour_start, service_id",
        &[subscriber_id.0.into(), Param::at(from), Param::at(to)],
        r::hourly_usage,
    )
    .await
}

/// A service with its plan version (columns prefixed `v_`) and plan code (`rows`
/// `directory_service`).
const DIRECTORY_SERVICE_SELECT: &str =
    "SELECT s.*, v.id AS v_id, v.plan_id AS v_plan_id, v.version AS v_version,
         v.download_kbps AS v_download_kbps, v.upload_kbps AS v_upload_kbps, v.burst AS v_burst,
         v.price_minor AS v_price_minor, v.currency AS v_currency,
         v.billing_interval AS v_billing_interval, v.setup_fee_minor AS v_setup_fee_minor,
         v.data_cap_bytes AS v_data_cap_bytes, v.cap_policy AS v_cap_policy,
         v.free_window AS v_free_window, v.contract_months AS v_contract_months,
         v.early_termination_fee_minor AS v_early_termination_fee_minor,
         v.tax_class AS v_tax_class, v.created_at AS v_created_at, p.code AS plan_code
     FROM services s
     JOIN plan_versions v ON v.id = s.plan_version_id
     JOIN plans p ON p.id = s.plan_id";

pub async fn directory_services<C: Conn>(
    c: &mut C,
    after: Option<ServiceId>,
    limit: u32,
) -> Result<Vec<DirectoryService>> {
    let mut q = Sql::new(DIRECTORY_SERVICE_SELECT);
    q.push(" WHERE s.status <> 'terminated'");
    q.paginate(
        "s.id",
        Page {
            after: after.map(|a| a.0),
            limit,
        },
    );
    collect(q.fetch(c).await?, r::directory_service)
}

pub async fn directory_services_by_id<C: Conn>(
    c: &mut C,
    ids: &[ServiceId],
) -> Result<Vec<DirectoryService>> {
    let mut q = Sql::new(DIRECTORY_SERVICE_SELECT);
    q.push(" WHERE s.id")
        .in_ids(C::DIALECT, ids.iter().map(|i| i.0));
    collect(q.fetch(c).await?, r::directory_service)
}

/// Where the feed is safe to resume from. SQLite: changes become visible in sequence order
/// (one writer), so the last sequence number. PostgreSQL: the snapshot's xmin, below which
/// every transaction has finished (committed rows all visible to the read that follows).
fn safe_point_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "SELECT 0 AS tx, COALESCE(MAX(seq), 0) AS seq FROM directory_changes",
        Dialect::Postgres => {
            "SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx, 0::bigint AS seq"
        }
    }
}

/// The changes past a cursor. SQLite's `tx` is always 0, and its planner seeks a row-value
/// comparison on the first column only: `(tx, seq) > (0, n)` would walk every change ever
/// recorded at each poll, so there it is the equivalent `tx = 0 AND seq > n`.
fn changes_after_sql(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "SELECT seq, tx, entity, entity_id FROM directory_changes
             WHERE tx = $1 AND seq > $2
             ORDER BY tx, seq LIMIT $3"
        }
        Dialect::Postgres => {
            "SELECT seq, tx, entity, entity_id FROM directory_changes
             WHERE (tx, seq) > ($1, $2)
             ORDER BY tx, seq LIMIT $3"
        }
    }
}

async fn safe_point<C: Conn>(c: &mut C) -> Result<ChangeCursor> {
    fetch_opt(c, safe_point_sql(C::DIALECT), &[], |row| {
        Ok(ChangeCursor {
            tx: row.i64("tx")?,
            seq: row.i64("seq")?,
        })
    })
    .await?
    .ok_or_else(|| StoreError::corrupt("the change feed's position query returned no row"))
}

pub async fn directory_cursor<C: Conn>(c: &mut C) -> Result<ChangeCursor> {
    safe_point(c).await
}

/// Reads every visible change past `after` (the safe point is taken first, so every change
/// before it is among them), and resumes next time from the safe point, or from the last
/// change read when `limit` cut the read short, whichever is earlier. Changes past the safe
/// point are read again next time: reloading an entity twice is harmless, skipping one is not.
pub async fn directory_changes<C: Conn>(
    c: &mut C,
    after: ChangeCursor,
    limit: u32,
) -> Result<ChangeBatch> {
    let safe = safe_point(c).await?;
    let rows = c
        .fetch(
            changes_after_sql(C::DIALECT),
            &[after.tx.into(), after.seq.into(), i64::from(limit).into()],
        )
        .await?;
    let more = rows.len() >= limit as usize;
    let mut changes = Vec::with_capacity(rows.len());
    let mut last = after;
    for row in &rows {
        changes.push(r::directory_change(row)?);
        last = ChangeCursor {
            tx: row.i64("tx")?,
            seq: row.i64("seq")?,
        };
    }
    let next = if more { last.min(safe) } else { safe };
    // Never move backwards (a cursor from an older safe point may be ahead of this one's
    // rows on PostgreSQL only through changes already read).
    Ok(ChangeBatch {
        changes,
        next: next.max(after),
        more,
    })
}
