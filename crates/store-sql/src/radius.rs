//! RADIUS: accounting into sessions and hourly usage; the directory's loads and change feed.

use crate::prelude::*;
use crate::services::equal_filters;
use lastmile_domain::radius::{
    apply_accounting, split_by_hour, AccountingEvent, AcctStatus, HourlyUsage, RadiusSession,
    SessionChange, SessionEnd,
};
use lastmile_store::radius::{
    self as r, octets_param, ChangeBatch, ChangeCursor, DirectoryService, SessionFilter,
};

/// Records every event, or fails as a whole at the first that fails (the caller's transaction
/// is then rolled back): the fast path, without a savepoint per event.
pub async fn record_accounting_all<C: Conn>(c: &mut C, events: &[AccountingEvent]) -> Result<()> {
    for e in events {
        record_one(c, e).await?;
    }
    Ok(())
}

/// Each event on its own savepoint: one that fails (a constraint, a concurrent insert of the
/// same session on PostgreSQL) is rolled back alone and reported; the NAS retransmits it.
/// The slow path, after [`record_accounting_all`] failed.
pub async fn record_accounting_isolated<C: Conn>(
    c: &mut C,
    events: &[AccountingEvent],
) -> Result<Vec<Result<()>>> {
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        c.execute("SAVEPOINT accounting", &[]).await?;
        let result = record_one(c, e).await;
        if result.is_err() {
            c.execute("ROLLBACK TO SAVEPOINT accounting", &[]).await?;
        }
        c.execute("RELEASE SAVEPOINT accounting", &[]).await?;
        out.push(result);
    }
    Ok(out)
}

/// The session an event belongs to: the open one (one probe of the partial unique index,
/// what nearly every Interim-Update and Stop finds), else the latest closed one (a late
/// Stop, or a new session reusing an Acct-Session-Id: a NAS may restart its counter). On
/// PostgreSQL the row is locked, so two transactions updating one session run one after the
/// other, the second reading what the first wrote (otherwise both would add the same delta
/// to the usage).
fn session_lookup_sql(dialect: Dialect, open: bool) -> &'static str {
    match (dialect, open) {
        (Dialect::Sqlite, true) => {
            "SELECT * FROM radius_sessions
             WHERE nas_id = $1 AND acct_session_id = $2 AND stopped_at IS NULL"
        }
        (Dialect::Postgres, true) => {
            "SELECT * FROM radius_sessions
             WHERE nas_id = $1 AND acct_session_id = $2 AND stopped_at IS NULL FOR UPDATE"
        }
        (Dialect::Sqlite, false) => {
            "SELECT * FROM radius_sessions WHERE nas_id = $1 AND acct_session_id = $2
             ORDER BY started_at DESC LIMIT 1"
        }
        (Dialect::Postgres, false) => {
            "SELECT * FROM radius_sessions WHERE nas_id = $1 AND acct_session_id = $2
             ORDER BY started_at DESC LIMIT 1 FOR UPDATE"
        }
    }
}

async fn latest_session<C: Conn>(c: &mut C, e: &AccountingEvent) -> Result<Option<RadiusSession>> {
    let key = [e.nas_id.0.into(), e.acct_session_id.as_str().into()];
    if let Some(open) = fetch_opt(
        c,
        session_lookup_sql(C::DIALECT, true),
        &key,
        r::radius_session,
    )
    .await?
    {
        return Ok(Some(open));
    }
    fetch_opt(
        c,
        session_lookup_sql(C::DIALECT, false),
        &key,
        r::radius_session,
    )
    .await
}

const CLOSE_NAS_SESSIONS: &str = "UPDATE radius_sessions
     SET stopped_at = CASE WHEN updated_at > $2 THEN updated_at ELSE $2 END,
         end_reason = 'nas_restart'
     WHERE nas_id = $1 AND stopped_at IS NULL";

const INSERT_SESSION: &str = "INSERT INTO radius_sessions (id, nas_id, acct_session_id,
         service_id, subscriber_id, username, framed_ip, calling_station_id, nas_port_id,
         started_at, updated_at, stopped_at, end_reason, terminate_cause, session_time,
         download_bytes, upload_bytes, base_download, base_upload, accepted_policy,
         policy_updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
         $19, $20, $21)";

const UPDATE_SESSION: &str = "UPDATE radius_sessions SET nas_id = $2, acct_session_id = $3,
         service_id = $4, subscriber_id = $5, username = $6, framed_ip = $7,
         calling_station_id = $8, nas_port_id = $9, started_at = $10, updated_at = $11,
         stopped_at = $12, end_reason = $13, terminate_cause = $14, session_time = $15,
         download_bytes = $16, upload_bytes = $17, base_download = $18, base_upload = $19,
         accepted_policy = $20, policy_updated_at = $21
     WHERE id = $1";

const ADD_HOURLY_USAGE: &str = "INSERT INTO usage_hourly (subscriber_id, hour_start, service_id,
         download_bytes, upload_bytes)
     VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (subscriber_id, hour_start, service_id) DO UPDATE SET
         download_bytes = usage_hourly.download_bytes + excluded.download_bytes,
         upload_bytes = usage_hourly.upload_bytes + excluded.upload_bytes";

/// What an Interim-Update changes: no indexed column, so the row alone is rewritten.
const UPDATE_SESSION_COUNTERS: &str = "UPDATE radius_sessions SET updated_at = $2,
         session_time = $3, download_bytes = $4, upload_bytes = $5, base_download = $6,
         base_upload = $7
     WHERE id = $1";

/// `new` differs from `old` in its counters and times of update only.
fn counters_only(old: &RadiusSession, new: &RadiusSession) -> bool {
    let mut probe = new.clone();
    probe.updated_at = old.updated_at;
    probe.session_time = old.session_time;
    probe.total = old.total;
    probe.base = old.base;
    probe == *old
}

fn session_params(s: &RadiusSession) -> [Param; 21] {
    [
        s.id.0.into(),
        s.nas_id.0.into(),
        s.acct_session_id.as_str().into(),
        s.service_id.map(|x| x.0).into(),
        s.subscriber_id.map(|x| x.0).into(),
        s.username.as_deref().into(),
        s.framed_ip.map(|ip| ip.to_string()).into(),
        s.calling_station_id.as_deref().into(),
        s.nas_port_id.as_deref().into(),
        Param::at(s.started_at),
        Param::at(s.updated_at),
        Param::opt_at(s.stopped_at),
        s.end.map(SessionEnd::as_str).into(),
        s.terminate_cause.into(),
        s.session_time.into(),
        octets_param(s.total.download).into(),
        octets_param(s.total.upload).into(),
        octets_param(s.base.download).into(),
        octets_param(s.base.upload).into(),
        s.accepted_policy.as_deref().into(),
        Param::opt_at(s.policy_updated_at),
    ]
}

async fn record_one<C: Conn>(c: &mut C, e: &AccountingEvent) -> Result<()> {
    if matches!(
        e.status,
        AcctStatus::AccountingOn | AcctStatus::AccountingOff
    ) {
        c.execute(
            CLOSE_NAS_SESSIONS,
            &[e.nas_id.0.into(), Param::at(e.event_time)],
        )
        .await?;
        return Ok(());
    }
    let latest = latest_session(c, e).await?;
    let (change, usage) = apply_accounting(latest.as_ref(), e, SessionId::generate);
    match change {
        SessionChange::Insert(s) => c.execute(INSERT_SESSION, &session_params(&s)).await?,
        SessionChange::Update(s) if latest.as_ref().is_some_and(|old| counters_only(old, &s)) => {
            let params = [
                s.id.0.into(),
                Param::at(s.updated_at),
                s.session_time.into(),
                octets_param(s.total.download).into(),
                octets_param(s.total.upload).into(),
                octets_param(s.base.download).into(),
                octets_param(s.base.upload).into(),
            ];
            c.execute(UPDATE_SESSION_COUNTERS, &params).await?
        }
        SessionChange::Update(s) => c.execute(UPDATE_SESSION, &session_params(&s)).await?,
        SessionChange::Ignore => return Ok(()),
    };
    for b in usage.iter().flat_map(split_by_hour) {
        c.execute(
            ADD_HOURLY_USAGE,
            &[
                b.subscriber_id.0.into(),
                Param::at(b.hour_start),
                b.service_id.0.into(),
                octets_param(b.octets.download).into(),
                octets_param(b.octets.upload).into(),
            ],
        )
        .await?;
    }
    Ok(())
}

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
