//! The SQLite database: one writer thread owning the only write connection, with group commit,
//! and a small pool of read-only connections used from blocking threads.
//!
//! # Writes
//!
//! A write is a job sent over a bounded channel to the writer thread (a full queue makes the
//! sender wait: back-pressure, never unbounded memory). The writer takes the first waiting job
//! and up to [`MAX_GROUP`] − 1 more that are already queued, and runs them in one transaction,
//! each inside its own savepoint: a job that fails is rolled back to its savepoint and answered
//! with its error, its neighbours are not affected. Every job is answered only after the
//! transaction that holds it has committed (or with the commit's error). One `fsync` of the WAL
//! thus covers many small writes: this is the store's primitive for high-rate small writes
//! ([`SqliteDb::write`]).
//!
//! # Durability
//!
//! An answered write survives a crash of the process and of the machine: a syncer thread
//! `fdatasync`s the WAL after each commit and only then answers the jobs the commit held.
//! The connection itself runs `synchronous=NORMAL` (its commit does not sync), so the writer
//! goes on with the next transaction while the disk syncs the previous one: the sync is off
//! the writer's critical path (with `synchronous=FULL` the writer sat idle in every commit's
//! `fsync`). One sync covers every commit before it. Other connections may read a commit a
//! fraction of a millisecond before it is on disk; its writer has not been answered then, so
//! what a power loss could take back is only what nobody was told is stored. A failed sync
//! stops the writer: the kernel may have dropped the pages it could not write, so no later
//! commit could be trusted (an operator restarts, and SQLite recovers from the WAL).
//!
//! # Checkpoints
//!
//! A checkpointer thread with a connection of its own copies committed WAL frames into the
//! database file (PASSIVE: it never blocks the writer or readers), at most every
//! [`CHECKPOINT_SPACING`] while commits keep coming, so no commit pays for syncing the
//! database file.
//!
//! # Reads
//!
//! Reads run on tokio's blocking threads (never on the async workers), each on a read-only
//! connection taken from a pool of at most [`READERS`], inside one read transaction, so all
//! statements of a read see the same snapshot. In WAL mode readers see the last commit and
//! never wait for the writer.

use crate::conn::{db_err, run_now, SqliteConn};
use lastmile_store::{Pending, Result, StoreError};
use lastmile_store_sql::{ConnFuture, Db};
use rusqlite::{Connection, OpenFlags};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// Most write jobs in one transaction.
pub const MAX_GROUP: usize = 4096;
/// Write jobs that may wait for the writer before senders wait too.
pub const QUEUE: usize = 4096;
/// Read connections.
pub const READERS: usize = 4;

/// Called with the outcome of the commit of the transaction that held the job.
type Finish = Box<dyn FnOnce(std::result::Result<(), String>) + Send>;
/// A write job: runs on the writer's connection; says whether it succeeded (so the writer
/// keeps or rolls back its savepoint) and how to answer once the transaction ends.
type Job = Box<dyn FnOnce(&mut SqliteConn) -> (bool, Finish) + Send>;

/// A committed (or failed) transaction's answers, handed to the syncer.
struct Committed {
    finishes: Vec<Finish>,
    commit: std::result::Result<(), String>,
}

/// What the writer thread is asked to do.
enum Msg {
    Write(Job),
    /// Copy the WAL into the database file and truncate it (outside any transaction), e.g.
    /// before the file is copied.
    Checkpoint(oneshot::Sender<Result<()>>),
}

#[derive(Clone)]
pub struct SqliteDb {
    jobs: mpsc::Sender<Msg>,
    readers: Arc<Readers>,
    /// Why the writer last dropped a job without answering it (a transaction that could not
    /// begin, a panic): what that job's caller is told.
    last_error: Arc<Mutex<Option<String>>>,
}

struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<SqliteConn>>,
    permits: Arc<Semaphore>,
}

impl SqliteDb {
    /// Opens the database at `path` (created if missing), lets `prepare` run on the write
    /// connection first (migrations), then starts the writer thread.
    pub async fn open(
        path: PathBuf,
        prepare: impl FnOnce(&mut Connection) -> Result<()> + Send + 'static,
    ) -> Result<Self> {
        let open_path = path.clone();
        let conn = tokio::task::spawn_blocking(move || -> Result<Connection> {
            let mut conn = open_writer(&open_path)?;
            prepare(&mut conn)?;
            Ok(conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("opening the database failed: {e}").into()))??;
        let (tx, rx) = mpsc::channel(QUEUE);
        let last_error = Arc::new(Mutex::new(None));
        let writer_error = last_error.clone();
        let checkpoints = start_checkpointer(&path)?;
        let failed = Arc::new(AtomicBool::new(false));
        let syncer = start_syncer(&path, last_error.clone(), failed.clone())?;
        let state = WriterState {
            last_error: writer_error,
            failed,
            checkpoints,
            syncer,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(SqliteConn::new(conn), rx, state))
            .map_err(|e| StoreError::Backend(format!("cannot start the writer: {e}").into()))?;
        Ok(Self {
            jobs: tx,
            last_error,
            readers: Arc::new(Readers {
                path,
                idle: Mutex::new(Vec::new()),
                permits: Arc::new(Semaphore::new(READERS)),
            }),
        })
    }
}

fn open_writer(path: &Path) -> Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    // The writer keeps 32 MiB of pages (SQLite's default is 2 MiB): a billing batch inserts
    // into many indexes, whose pages then stay in memory between batches. The checkpointer
    // thread copies the WAL into the database file; the writer's own checkpoint (which would
    // stall every write behind a sync of the database file) is only a safety net, at ~400 MB.
    // Savepoint journals (one per grouped request, one per accounting record) stay in memory:
    // on disk each would be a temporary file created, written and deleted per transaction.
    // `synchronous = NORMAL`: the syncer thread syncs the WAL before any job is answered
    // (module docs, Durability).
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 10000;
         PRAGMA cache_size = -32768;
         PRAGMA wal_autocheckpoint = 100000;",
    )
    .map_err(db_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(
            format!("the database cannot use WAL (journal mode is {mode})").into(),
        ));
    }
    conn.set_prepared_statement_cache_capacity(256);
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<SqliteConn> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.execute_batch("PRAGMA busy_timeout = 10000; PRAGMA query_only = ON;")
        .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(256);
    Ok(SqliteConn::new(conn))
}

/// Least time between two checkpoints: each one syncs the database file, so under a steady
/// stream of commits they are spaced, and each copies what accumulated meanwhile. Busy pages
/// (an index's last leaf, rewritten by every commit) are then copied once per checkpoint, not
/// once per commit: at 250 ms the checkpointer took a quarter of a core of a billing run's
/// two, at 1 s it is a few per cent, and the run went from ~33k to ~46k invoices/s (the WAL
/// grows by at most a second of writes in between; accounting at 35k/s is unchanged).
const CHECKPOINT_SPACING: Duration = Duration::from_millis(1000);

/// Starts the checkpointer thread; the writer nudges it after each commit (it runs until the
/// writer drops the returned sender). A PASSIVE checkpoint on a connection of its own copies
/// committed WAL frames into the database file while the writer goes on committing, so no
/// write waits for the database file to be synced; without it the writer would do that
/// copy itself inside a commit every few thousand pages.
fn start_checkpointer(path: &Path) -> Result<std::sync::mpsc::SyncSender<()>> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000;")
        .map_err(db_err)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<()>(1);
    std::thread::Builder::new()
        .name("sqlite-checkpointer".into())
        .spawn(move || {
            let mut last: Option<Instant> = None;
            'nudges: while rx.recv().is_ok() {
                // Waits out the spacing: nudges arriving meanwhile are covered by the
                // checkpoint that follows (one after every commit would copy every frame,
                // where a spaced one copies each page once), unless the writer stops.
                if let Some(until) = last.map(|l| l + CHECKPOINT_SPACING) {
                    while let Some(wait) = until.checked_duration_since(Instant::now()) {
                        match rx.recv_timeout(wait) {
                            Ok(()) => {}
                            Err(RecvTimeoutError::Timeout) => break,
                            Err(RecvTimeoutError::Disconnected) => break 'nudges,
                        }
                    }
                }
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(error = %db_err(e), "a WAL checkpoint failed; the next commit retries it");
                }
                last = Some(Instant::now());
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the checkpointer: {e}").into()))?;
    Ok(tx)
}

/// Commits the syncer may be behind by before the writer waits for it.
const SYNC_BACKLOG: usize = 64;

/// Starts the syncer thread: it takes every commit waiting, syncs the WAL once for all of
/// them, then answers their jobs (module docs, Durability). `fdatasync` on a descriptor of
/// its own flushes the file's pages whoever wrote them. A WAL that is reset or truncated
/// after a checkpoint is the same file; SQLite deletes it only when the last connection
/// closes, and the writer's stays open while this runs.
fn start_syncer(
    db: &Path,
    last_error: Arc<Mutex<Option<String>>>,
    failed: Arc<AtomicBool>,
) -> Result<std::sync::mpsc::SyncSender<Committed>> {
    let mut wal_path = db.as_os_str().to_owned();
    wal_path.push("-wal");
    let wal_path = PathBuf::from(wal_path);
    // SQLite has created it by now (the migrations ran in WAL mode); should it not have, an
    // empty WAL is what it would create.
    let wal = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&wal_path)
    }
    .map_err(|e| {
        StoreError::Backend(format!("cannot open the WAL {}: {e}", wal_path.display()).into())
    })?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Committed>(SYNC_BACKLOG);
    std::thread::Builder::new()
        .name("sqlite-syncer".into())
        .spawn(move || {
            while let Ok(first) = rx.recv() {
                let mut batch = vec![first];
                batch.extend(rx.try_iter());
                let synced = if batch.iter().any(|c| c.commit.is_ok()) {
                    wal.sync_data().map_err(|e| {
                        let msg = format!(
                            "the disk could not sync the WAL ({e}); the last writes may not be \
                             stored, and the database takes no more until Lastmile restarts"
                        );
                        tracing::error!(error = %msg, "the database cannot sync");
                        failed.store(true, Ordering::SeqCst);
                        set_last_error(&last_error, msg.clone());
                        msg
                    })
                } else {
                    Ok(())
                };
                for c in batch {
                    let answer = c.commit.and(synced.clone());
                    for finish in c.finishes {
                        finish(answer.clone());
                    }
                }
            }
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the syncer: {e}").into()))?;
    Ok(tx)
}

/// What the writer thread holds besides its connection.
struct WriterState {
    last_error: Arc<Mutex<Option<String>>>,
    /// Set by the syncer when a sync failed: no more transactions.
    failed: Arc<AtomicBool>,
    checkpoints: std::sync::mpsc::SyncSender<()>,
    syncer: std::sync::mpsc::SyncSender<Committed>,
}

/// The writer thread: groups waiting jobs into transactions until every sender is gone.
fn writer(mut conn: SqliteConn, mut msgs: mpsc::Receiver<Msg>, state: WriterState) {
    let WriterState {
        last_error,
        failed,
        checkpoints,
        syncer,
    } = state;
    let mut group: Vec<Job> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = msgs.blocking_recv() {
        let mut checkpoint = None;
        match first {
            Msg::Write(j) => group.push(j),
            Msg::Checkpoint(reply) => checkpoint = Some(reply),
        }
        while checkpoint.is_none() && group.len() < MAX_GROUP {
            match msgs.try_recv() {
                Ok(Msg::Write(j)) => group.push(j),
                Ok(Msg::Checkpoint(reply)) => checkpoint = Some(reply),
                Err(_) => break,
            }
        }
        if failed.load(Ordering::SeqCst) {
            // Dropped jobs are answered with the sync failure (`last_error`).
            group.clear();
        } else if !group.is_empty() {
            if let Some(committed) = run_group(&mut conn, &mut group, &last_error) {
                if syncer.send(committed).is_err() {
                    // The syncer is gone (it never stops first): its jobs hear last_error.
                    set_last_error(&last_error, "the database syncer has stopped".into());
                }
            }
            // A nudge already waiting covers this commit too.
            let _ = checkpoints.try_send(());
        }
        if let Some(reply) = checkpoint {
            let _ = reply.send(checkpoint_truncate(&conn.conn));
        }
    }
}

/// Copies the whole WAL into the database file and truncates it. `busy` (the pragma's first
/// column) says another connection kept it from finishing: a reader (the busy timeout waits
/// for those) or the checkpointer thread's own pass, which SQLite does not wait for at all,
/// so that case is tried again (a pass takes milliseconds) for up to two seconds.
fn checkpoint_truncate(conn: &Connection) -> Result<()> {
    const TRIES: u32 = 200;
    let mut tries = 0;
    loop {
        let (busy, log, done): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(db_err)?;
        if busy == 0 {
            return Ok(());
        }
        tries += 1;
        if tries >= TRIES {
            return Err(StoreError::Backend(
                format!("the WAL checkpoint could not finish: {done} of {log} pages copied").into(),
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn set_last_error(last: &Mutex<Option<String>>, msg: String) {
    if let Ok(mut l) = last.lock() {
        *l = Some(msg);
    }
}

/// Runs `group` in one transaction; what to answer once the WAL is synced (`None` when
/// nothing was committed and every job is answered already).
fn run_group(
    conn: &mut SqliteConn,
    group: &mut Vec<Job>,
    last_error: &Mutex<Option<String>>,
) -> Option<Committed> {
    let mut finishes: Vec<Finish> = Vec::with_capacity(group.len());
    if let Err(e) = conn.conn.execute_batch("BEGIN IMMEDIATE") {
        // The jobs never run; dropping them answers each caller with the writer's last error.
        let msg = db_err(e).to_string();
        tracing::error!(error = %msg, "the writer cannot begin a transaction");
        set_last_error(last_error, msg);
        group.clear();
        return None;
    }
    let savepoints = group.len() > 1;
    for job in group.drain(..) {
        if savepoints {
            if let Err(e) = conn.execute_now("SAVEPOINT job", &[]) {
                // Without a savepoint the job cannot be isolated: drop it (its caller gets
                // this error) rather than risk its neighbours.
                set_last_error(last_error, e.to_string());
                continue;
            }
        }
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| job(conn)));
        let ok = matches!(outcome, Ok((true, _)));
        if savepoints {
            let undo = if ok {
                conn.execute_now("RELEASE job", &[])
            } else {
                conn.execute_now("ROLLBACK TO job", &[])
                    .and_then(|_| conn.execute_now("RELEASE job", &[]))
            };
            if let Err(e) = undo {
                tracing::error!(error = %e, "the writer cannot end a savepoint");
            }
        } else if !ok {
            // The only job failed: nothing of it may be committed.
            let _ = conn.conn.execute_batch("ROLLBACK");
            match outcome {
                Ok((_, finish)) => finish(Ok(())),
                Err(_) => set_last_error(
                    last_error,
                    "a store write panicked (a bug); it was rolled back".into(),
                ),
            }
            return None;
        }
        match outcome {
            Ok((_, finish)) => finishes.push(finish),
            Err(_) => {
                tracing::error!("a store write panicked; it was rolled back");
                set_last_error(
                    last_error,
                    "a store write panicked (a bug); it was rolled back".into(),
                );
            }
        }
    }
    let commit = conn.conn.execute_batch("COMMIT").map_err(|e| {
        let _ = conn.conn.execute_batch("ROLLBACK");
        let msg = db_err(e).to_string();
        tracing::error!(error = %msg, "a write transaction did not commit");
        msg
    });
    if let Err(msg) = &commit {
        set_last_error(last_error, msg.clone());
    }
    Some(Committed { finishes, commit })
}

fn writer_gone() -> StoreError {
    StoreError::Backend("the database writer has stopped".into())
}

/// The file a `sqlite://path`, `sqlite:path` or plain-path URL names (query parameters such
/// as `?mode=rwc` are ignored: the file is always created if missing).
pub fn database_path(url: &str) -> Result<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Err(StoreError::Backend(
            format!("{url:?} names no database file (an in-memory database is not supported)")
                .into(),
        ));
    }
    Ok(PathBuf::from(path))
}

/// Creates the database file readable by its owner only (it holds personal data) if it does
/// not exist yet. SQLite creates the WAL and shared-memory files with the database file's
/// mode, so they are private too. An existing file keeps the mode its operator gave it.
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StoreError::Backend(
            format!("cannot create the database file {}: {e}", path.display()).into(),
        )),
    }
}

impl SqliteDb {
    /// Checkpoints the WAL into the database file, so the file alone holds every commit.
    pub async fn checkpoint(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(Msg::Checkpoint(tx))
            .await
            .map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }
}

impl Db for SqliteDb {
    type Conn = SqliteConn;
    const BACKEND: &'static str = "sqlite";

    async fn connect(url: &str) -> Result<Self> {
        let path = database_path(url)?;
        create_private(&path)?;
        SqliteDb::open(path, crate::migrate::apply).await
    }

    async fn close(&self) {
        if let Err(e) = self.checkpoint().await {
            tracing::warn!(error = %e, "closing the database: the WAL checkpoint failed");
        }
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let permit = self
            .readers
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| writer_gone())?;
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let idle = readers.idle.lock().ok().and_then(|mut v| v.pop());
            let mut conn = match idle {
                Some(c) => c,
                None => open_reader(&readers.path)?,
            };
            // One read transaction: every statement of `f` sees the same snapshot.
            conn.execute_now("BEGIN", &[])?;
            let r = run_now(f(&mut conn));
            if let Err(e) = conn.execute_now("COMMIT", &[]) {
                // A connection whose transaction cannot end is not given back.
                tracing::warn!(error = %e, "a read transaction did not end; closing its connection");
                return r;
            }
            if let Ok(mut v) = readers.idle.lock() {
                v.push(conn);
            }
            r
        })
        .await
        .map_err(|e| StoreError::Backend(format!("a database read failed: {e}").into()))?
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConn) -> ConnFuture<'c, T> + Send + 'static,
    {
        self.queue_write(f).await?.await
    }

    /// The writer thread runs its queue in order, one transaction (or group) after another.
    async fn queue_write<T, F>(&self, f: F) -> Result<Pending<T>>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut SqliteConn) -> ConnFuture<'c, T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |conn: &mut SqliteConn| {
            let r = run_now(f(conn));
            let ok = r.is_ok();
            let finish: Finish = Box::new(move |commit| {
                let answer = match (r, commit) {
                    (Err(e), _) => Err(e),
                    (Ok(v), Ok(())) => Ok(v),
                    (Ok(_), Err(msg)) => Err(StoreError::Backend(msg.into())),
                };
                let _ = tx.send(answer);
            });
            (ok, finish)
        });
        self.jobs
            .send(Msg::Write(job))
            .await
            .map_err(|_| writer_gone())?;
        let last_error = self.last_error.clone();
        Ok(Box::pin(async move {
            rx.await.map_err(|_| {
                let why = last_error
                    .lock()
                    .ok()
                    .and_then(|l| l.clone())
                    .unwrap_or_else(|| "the writer failed".into());
                StoreError::Backend(format!("the write was not carried out: {why}").into())
            })?
        }))
    }
}
