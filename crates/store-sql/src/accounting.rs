//! Accounting into sessions and hourly usage.
//!
//! The fast path records a batch's events in memory first: the batch's open sessions are
//! read at once (one statement on PostgreSQL), each event is applied by the domain rule in
//! order, and what changed is written at the end: each session once however many of its
//! updates the batch held, the usage summed per hourly bucket. On PostgreSQL the counters
//! and the usage are one statement each over arrays, so a batch costs a handful of round
//! trips rather than three per record; SQLite runs the same plan with a statement per row,
//! which costs no round trip there. The slow path, after a batch failed, records event by
//! event on savepoints: each event as a batch of one, through the same code.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::i64_array;
use crate::prelude::*;
use lastmile_domain::radius::{
    apply_accounting, split_by_hour, AccountingEvent, AcctStatus, Octets, RadiusSession,
    SessionChange, SessionEnd,
};
use lastmile_store::radius::{self as r, octets_param};

/// Records every event, or fails as a whole at the first that fails (the caller's transaction
/// is then rolled back): the fast path, without a savepoint per event. The events between two
/// Accounting-On/-Off are one run ([`record_run`]); its effect is exactly that of recording
/// its events one after the other, in fewer statements.
pub async fn record_accounting_all<C: Conn>(c: &mut C, events: &[AccountingEvent]) -> Result<()> {
    let mut from = 0;
    for (i, e) in events.iter().enumerate() {
        if nas_wide(e) {
            record_run(c, &events[from..i]).await?;
            close_nas_sessions(c, e).await?;
            from = i + 1;
        }
    }
    record_run(c, &events[from..]).await
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
        let result = record_accounting_all(c, std::slice::from_ref(e)).await;
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
             ORDER BY started_at DESC, updated_at DESC LIMIT 1"
        }
        (Dialect::Postgres, false) => {
            "SELECT * FROM radius_sessions WHERE nas_id = $1 AND acct_session_id = $2
             ORDER BY started_at DESC, updated_at DESC LIMIT 1 FOR UPDATE"
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

fn nas_wide(e: &AccountingEvent) -> bool {
    matches!(
        e.status,
        AcctStatus::AccountingOn | AcctStatus::AccountingOff
    )
}

async fn close_nas_sessions<C: Conn>(c: &mut C, e: &AccountingEvent) -> Result<()> {
    c.execute(
        CLOSE_NAS_SESSIONS,
        &[e.nas_id.0.into(), Param::at(e.event_time)],
    )
    .await?;
    Ok(())
}

/// A session the run changed: its row as it is now, and as the store holds it (`None`: the
/// run created it).
struct Touched {
    row: RadiusSession,
    stored: Option<RadiusSession>,
}

/// What a run has applied and not yet written.
#[derive(Default)]
struct Pending {
    touched: Vec<Touched>,
    by_id: HashMap<SessionId, usize>,
    /// Usage per (subscriber, hour, service), summed; ordered, so concurrent transactions
    /// on PostgreSQL lock buckets in one order.
    usage: BTreeMap<(SubscriberId, i64, ServiceId), Octets>,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.touched.is_empty() && self.usage.is_empty()
    }

    fn record(
        &mut self,
        stored: Option<&RadiusSession>,
        change: SessionChange,
    ) -> Option<RadiusSession> {
        let (row, stored) = match change {
            SessionChange::Insert(s) => (s, None),
            SessionChange::Update(s) => (s, stored.cloned()),
            SessionChange::Ignore => return None,
        };
        match self.by_id.get(&row.id) {
            Some(&i) => self.touched[i].row = row.clone(),
            None => {
                self.by_id.insert(row.id, self.touched.len());
                self.touched.push(Touched {
                    row: row.clone(),
                    stored,
                });
            }
        }
        Some(row)
    }

    fn add_usage(&mut self, u: &lastmile_domain::radius::UsageDelta) {
        for b in split_by_hour(u) {
            let key = (
                b.subscriber_id,
                lastmile_store::rows::micros(b.hour_start),
                b.service_id,
            );
            let sum = self.usage.entry(key).or_default();
            sum.download = sum.download.saturating_add(b.octets.download);
            sum.upload = sum.upload.saturating_add(b.octets.upload);
        }
    }
}

type Key = (NasId, String);

fn key_of(e: &AccountingEvent) -> Key {
    (e.nas_id, e.acct_session_id.clone())
}

/// Session events (no Accounting-On/-Off) applied in order against the open sessions read
/// up front, written at the end. An event whose session is not open (a Start, a late Stop)
/// looks its session up as the slow path does; if the run itself closed that session, what
/// it applied so far is written first, so the lookup sees it.
async fn record_run<C: Conn>(c: &mut C, events: &[AccountingEvent]) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut keys: Vec<Key> = events.iter().map(key_of).collect();
    keys.sort();
    keys.dedup();
    let mut open = open_sessions(c, &keys).await?;
    let mut closed_here: HashSet<Key> = HashSet::new();
    let mut pending = Pending::default();
    for e in events {
        let key = key_of(e);
        let current = match open.get(&key) {
            Some(s) => Some(s.clone()),
            None => {
                if closed_here.contains(&key) {
                    write_pending(c, std::mem::take(&mut pending)).await?;
                    closed_here.clear();
                }
                latest_session(c, e).await?
            }
        };
        let stored = current
            .as_ref()
            .and_then(|s| {
                pending
                    .by_id
                    .get(&s.id)
                    .map(|&i| pending.touched[i].stored.clone())
            })
            .unwrap_or_else(|| current.clone());
        let (change, usage) = apply_accounting(current.as_ref(), e, SessionId::generate);
        if let Some(u) = &usage {
            pending.add_usage(u);
        }
        if let Some(row) = pending.record(stored.as_ref(), change) {
            if row.stopped_at.is_none() {
                open.insert(key, row);
            } else {
                open.remove(&key);
                closed_here.insert(key);
            }
        }
    }
    write_pending(c, pending).await
}

/// The open sessions of `keys` (sorted), by key; locked on PostgreSQL, in key order, so
/// concurrent batches (sorted the same way) cannot deadlock on them.
async fn open_sessions<C: Conn>(c: &mut C, keys: &[Key]) -> Result<HashMap<Key, RadiusSession>> {
    let mut open = HashMap::with_capacity(keys.len());
    match C::DIALECT {
        Dialect::Sqlite => {
            for k in keys {
                let found = fetch_opt(
                    c,
                    session_lookup_sql(C::DIALECT, true),
                    &[k.0 .0.into(), k.1.as_str().into()],
                    r::radius_session,
                )
                .await?;
                if let Some(s) = found {
                    open.insert(k.clone(), s);
                }
            }
        }
        Dialect::Postgres => {
            let rows = fetch_all(
                c,
                "SELECT s.* FROM radius_sessions s
                 JOIN unnest(CAST($1 AS uuid[]), CAST($2 AS text[])) AS k(nas_id, acct_session_id)
                   ON s.nas_id = k.nas_id AND s.acct_session_id = k.acct_session_id
                 WHERE s.stopped_at IS NULL
                 ORDER BY s.nas_id, s.acct_session_id
                 FOR UPDATE OF s",
                &[
                    uuid_array(keys.iter().map(|k| k.0 .0)),
                    text_array(keys.iter().map(|k| k.1.as_str())),
                ],
                r::radius_session,
            )
            .await?;
            for s in rows {
                open.insert((s.nas_id, s.acct_session_id.clone()), s);
            }
        }
    }
    Ok(open)
}

/// Writes what a run applied: existing sessions first (a session the run closed must be
/// closed before a new one with its Acct-Session-Id is inserted: the open key is unique),
/// then new ones, then the usage.
async fn write_pending<C: Conn>(c: &mut C, pending: Pending) -> Result<()> {
    if pending.is_empty() {
        return Ok(());
    }
    let mut counters = Vec::new();
    let mut inserts = Vec::new();
    for t in pending.touched {
        match &t.stored {
            None => inserts.push(t.row),
            Some(old) if counters_only(old, &t.row) => counters.push(t.row),
            Some(_) => {
                c.execute(UPDATE_SESSION, &session_params(&t.row)).await?;
            }
        }
    }
    write_counters(c, &counters).await?;
    for s in &inserts {
        c.execute(INSERT_SESSION, &session_params(s)).await?;
    }
    add_usage(c, &pending.usage).await
}

fn counter_params(s: &RadiusSession) -> [Param; 7] {
    [
        s.id.0.into(),
        Param::at(s.updated_at),
        s.session_time.into(),
        octets_param(s.total.download).into(),
        octets_param(s.total.upload).into(),
        octets_param(s.base.download).into(),
        octets_param(s.base.upload).into(),
    ]
}

async fn write_counters<C: Conn>(c: &mut C, rows: &[RadiusSession]) -> Result<()> {
    match (C::DIALECT, rows) {
        (_, []) => {}
        (Dialect::Sqlite, _) => {
            for s in rows {
                c.execute(UPDATE_SESSION_COUNTERS, &counter_params(s))
                    .await?;
            }
        }
        (Dialect::Postgres, _) => {
            let col = |f: fn(&RadiusSession) -> i64| i64_array(rows.iter().map(f));
            c.execute(
                "UPDATE radius_sessions s SET updated_at = v.updated_at,
                     session_time = v.session_time, download_bytes = v.download_bytes,
                     upload_bytes = v.upload_bytes, base_download = v.base_download,
                     base_upload = v.base_upload
                 FROM unnest(CAST($1 AS uuid[]), CAST($2 AS bigint[]), CAST($3 AS bigint[]),
                         CAST($4 AS bigint[]), CAST($5 AS bigint[]), CAST($6 AS bigint[]),
                         CAST($7 AS bigint[]))
                     AS v(id, updated_at, session_time, download_bytes, upload_bytes,
                         base_download, base_upload)
                 WHERE s.id = v.id",
                &[
                    uuid_array(rows.iter().map(|s| s.id.0)),
                    col(|s| lastmile_store::rows::micros(s.updated_at)),
                    col(|s| i64::from(s.session_time)),
                    col(|s| octets_param(s.total.download)),
                    col(|s| octets_param(s.total.upload)),
                    col(|s| octets_param(s.base.download)),
                    col(|s| octets_param(s.base.upload)),
                ],
            )
            .await?;
        }
    }
    Ok(())
}

async fn add_usage<C: Conn>(
    c: &mut C,
    usage: &BTreeMap<(SubscriberId, i64, ServiceId), Octets>,
) -> Result<()> {
    if usage.is_empty() {
        return Ok(());
    }
    match C::DIALECT {
        Dialect::Sqlite => {
            for (&(subscriber, hour, service), o) in usage {
                c.execute(
                    ADD_HOURLY_USAGE,
                    &[
                        subscriber.0.into(),
                        hour.into(),
                        service.0.into(),
                        octets_param(o.download).into(),
                        octets_param(o.upload).into(),
                    ],
                )
                .await?;
            }
        }
        Dialect::Postgres => {
            c.execute(
                "INSERT INTO usage_hourly (subscriber_id, hour_start, service_id,
                     download_bytes, upload_bytes)
                 SELECT * FROM unnest(CAST($1 AS uuid[]), CAST($2 AS bigint[]),
                     CAST($3 AS uuid[]), CAST($4 AS bigint[]), CAST($5 AS bigint[]))
                 ON CONFLICT (subscriber_id, hour_start, service_id) DO UPDATE SET
                     download_bytes = usage_hourly.download_bytes + excluded.download_bytes,
                     upload_bytes = usage_hourly.upload_bytes + excluded.upload_bytes",
                &[
                    uuid_array(usage.keys().map(|k| k.0 .0)),
                    i64_array(usage.keys().map(|k| k.1)),
                    uuid_array(usage.keys().map(|k| k.2 .0)),
                    i64_array(usage.values().map(|o| octets_param(o.download))),
                    i64_array(usage.values().map(|o| octets_param(o.upload))),
                ],
            )
            .await?;
        }
    }
    Ok(())
}
