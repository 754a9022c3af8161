//! The write path alone, measured: accounting-shaped small writes through [`Db::write`] (on
//! SQLite, the writer thread's group commit), many in flight, each answered after its commit.
//! `lastmile bench store` prints what this returns.
//!
//! Each request is what a RADIUS Accounting-Request will cost: an upsert of a 9-column session
//! row and an upsert of the service's hourly usage bucket. The tables are scratch tables
//! (`bench_*`), created for the run and dropped after it.

use crate::{Conn, Db, Param};
use lastmile_store::Result;
use std::time::{Duration, Instant};
use uuid::Uuid;

const CREATE: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS bench_sessions (
         id BIGINT PRIMARY KEY, subscriber_id BIGINT NOT NULL, service_id BIGINT NOT NULL,
         nas_ip TEXT NOT NULL, acct_session_id TEXT NOT NULL, started_at BIGINT NOT NULL,
         updated_at BIGINT NOT NULL, input_octets BIGINT NOT NULL, output_octets BIGINT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS bench_usage (
         subscriber_id BIGINT NOT NULL, service_id BIGINT NOT NULL, hour BIGINT NOT NULL,
         bytes_down BIGINT NOT NULL, bytes_up BIGINT NOT NULL,
         PRIMARY KEY (subscriber_id, service_id, hour))",
];
const DROP: [&str; 2] = [
    "DROP TABLE IF EXISTS bench_sessions",
    "DROP TABLE IF EXISTS bench_usage",
];
const UPSERT_SESSION: &str = "INSERT INTO bench_sessions (id, subscriber_id, service_id, nas_ip,
         acct_session_id, started_at, updated_at, input_octets, output_octets)
     VALUES ($1, $2, $3, $4, $5, $6, $6, $7, $8)
     ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at,
         input_octets = excluded.input_octets, output_octets = excluded.output_octets";
const UPSERT_USAGE: &str = "INSERT INTO bench_usage (subscriber_id, service_id, hour, bytes_down,
         bytes_up) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (subscriber_id, service_id, hour) DO UPDATE SET
         bytes_down = bench_usage.bytes_down + excluded.bytes_down,
         bytes_up = bench_usage.bytes_up + excluded.bytes_up";

/// What one run measured.
pub struct WriteBench {
    pub requests: usize,
    pub elapsed: Duration,
    /// Submit-to-commit latency of every request, sorted.
    pub latencies: Vec<Duration>,
}

impl WriteBench {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
    /// The `p`-th percentile latency (0–100).
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((p / 100.0) * (self.latencies.len() - 1) as f64).round() as usize;
        self.latencies[i.min(self.latencies.len() - 1)]
    }
}

async fn ddl<D: Db>(db: &D, statements: [&'static str; 2]) -> Result<()> {
    db.write(move |c| {
        Box::pin(async move {
            for s in statements {
                c.execute(s, &[]).await?;
            }
            Ok(())
        })
    })
    .await
}

/// Sends `requests` accounting-shaped writes from `in_flight` concurrent tasks over `sessions`
/// live sessions, and measures them.
pub async fn accounting_writes<D: Db>(
    db: &D,
    requests: usize,
    in_flight: usize,
    sessions: usize,
) -> Result<WriteBench> {
    ddl(db, DROP).await?;
    ddl(db, CREATE).await?;
    let in_flight = in_flight.max(1);
    let sessions = sessions.max(1) as i64;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(in_flight);
    for worker in 0..in_flight {
        let db = db.clone();
        let share = requests / in_flight + usize::from(worker < requests % in_flight);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for n in 0..share {
                let seq = (n * in_flight + worker) as i64;
                let session = seq % sessions;
                let t = Instant::now();
                db.write(move |c| Box::pin(async move { one_request(c, seq, session).await }))
                    .await?;
                latencies.push(t.elapsed());
            }
            Ok::<_, lastmile_store::StoreError>(latencies)
        }));
    }
    let mut latencies = Vec::with_capacity(requests);
    for t in tasks {
        let mine = t.await.map_err(|e| {
            lastmile_store::StoreError::Backend(format!("a bench task failed: {e}").into())
        })??;
        latencies.extend(mine);
    }
    let elapsed = started.elapsed();
    ddl(db, DROP).await?;
    latencies.sort_unstable();
    Ok(WriteBench {
        requests: latencies.len(),
        elapsed,
        latencies,
    })
}

async fn one_request<C: Conn>(c: &mut C, seq: i64, session: i64) -> Result<()> {
    let now = 1_780_000_000_000_000 + seq * 1_000;
    let service = session;
    c.execute(
        UPSERT_SESSION,
        &[
            session.into(),
            (service / 2).into(),
            service.into(),
            "192.0.2.1".into(),
            Param::Text(Uuid::from_u128(session as u128).simple().to_string()),
            now.into(),
            (seq * 1_500).into(),
            (seq * 9_000).into(),
        ],
    )
    .await?;
    c.execute(
        UPSERT_USAGE,
        &[
            (service / 2).into(),
            service.into(),
            (now / 3_600_000_000).into(),
            9_000i64.into(),
            1_500i64.into(),
        ],
    )
    .await?;
    Ok(())
}
