//! A throwaway PostgreSQL cluster for the tests of one process, and a fresh database per test.
//!
//! The cluster starts on first use: `initdb` into a temp dir, `pg_ctl start` listening only on
//! a unix socket in that dir, then a `lastmile_template` database migrated once by
//! [`PgStore::connect`](lastmile_store_postgres::PgStore). Each [`database_url`] call
//! copies the template (`CREATE DATABASE … TEMPLATE`, a few milliseconds). A watchdog stops the
//! cluster (`pg_ctl -m immediate stop`) and removes its dir when the test process exits.
//!
//! The cluster's dir is under `/dev/shm` when that tmpfs has room (fast `CREATE DATABASE`),
//! else under the system temp dir; `LASTMILE_PG_TMPDIR` overrides.
//!
//! Binaries come from `$LASTMILE_PG_BIN`, else `/usr/lib/postgresql/15/bin`. Without them the
//! PostgreSQL tests are skipped ([`database_url`] returns `None`), unless
//! `LASTMILE_REQUIRE_POSTGRES=1`, in which case they fail.
//!
//! As root (as in CI containers) `initdb` refuses to run, so the cluster dir is handed to the
//! `postgres` user and the server tools run through `runuser -u postgres --`.

use crate::scratch::{run_at_exit, unique_name};
use lastmile_store_postgres::PgStore;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, OnceCell};

const DEFAULT_BIN: &str = "/usr/lib/postgresql/15/bin";
const TEMPLATE: &str = "lastmile_template";
/// The OS user that owns the cluster when tests run as root.
const OS_USER: &str = "postgres";

struct Cluster {
    /// The unix socket directory (also the root of the cluster's temp dir).
    socket_dir: PathBuf,
    port: u16,
    next_db: AtomicU64,
}

enum State {
    Running(Cluster),
    /// No PostgreSQL binaries and not required.
    Skipped,
    /// Setting up failed; every caller fails with this message.
    Failed(String),
}

static CLUSTER: OnceCell<State> = OnceCell::const_new();
/// Serialises `CREATE DATABASE`: copying a template needs it to have no other sessions.
static CREATE_LOCK: Mutex<()> = Mutex::const_new(());

impl Cluster {
    fn url(&self, db: &str) -> String {
        // The socket dir goes in the query string: escape anything beyond a plain path.
        let host: String = self
            .socket_dir
            .to_string_lossy()
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!(
            "postgres://{OS_USER}@localhost/{db}?host={host}&port={}",
            self.port
        )
    }
}

/// Is `LASTMILE_REQUIRE_POSTGRES` set (to anything but empty or `0`)?
fn required() -> bool {
    std::env::var("LASTMILE_REQUIRE_POSTGRES").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The URL of a fresh, migrated, empty database of its own for the caller, or `None` when
/// PostgreSQL is not installed (see the module docs). Safe to call from many tests at once,
/// each on its own runtime.
pub async fn database_url() -> Option<String> {
    let state = CLUSTER.get_or_init(start).await;
    let cluster = match state {
        State::Running(c) => c,
        State::Skipped => return None,
        State::Failed(msg) => panic!("{msg}"),
    };
    let n = cluster.next_db.fetch_add(1, Ordering::Relaxed);
    let name = format!("test_{n}");
    let _guard = CREATE_LOCK.lock().await;
    if let Err(e) = create_database(cluster, &name, Some(TEMPLATE)).await {
        panic!("test PostgreSQL: cannot create database {name}: {e}");
    }
    Some(cluster.url(&name))
}

/// Where the server binaries are, if they are installed.
fn find_bin() -> Option<PathBuf> {
    let dir = std::env::var_os("LASTMILE_PG_BIN")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_BIN));
    ["initdb", "pg_ctl", "postgres"]
        .iter()
        .all(|b| dir.join(b).is_file())
        .then_some(dir)
}

/// Where the cluster lives: `$LASTMILE_PG_TMPDIR`, else `/dev/shm` when it is roomy (a tmpfs:
/// `CREATE DATABASE` writes some 300 small files, several times faster in memory than on a
/// disk), else the system temp dir. Each test database takes about 8 MB until the process
/// exits.
fn base_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LASTMILE_PG_TMPDIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    const MIN_SHM_KIB: u64 = 2 * 1024 * 1024;
    let shm = Path::new("/dev/shm");
    let shm_free_kib = Command::new("df")
        .arg("-Pk")
        .arg(shm)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| {
            let out = String::from_utf8_lossy(&o.stdout).into_owned();
            out.lines()
                .nth(1)?
                .split_whitespace()
                .nth(3)?
                .parse::<u64>()
                .ok()
        });
    match shm_free_kib {
        Some(kib) if kib >= MIN_SHM_KIB => shm.to_path_buf(),
        _ => std::env::temp_dir(),
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

async fn start() -> State {
    let Some(bin) = find_bin() else {
        let msg =
            format!("PostgreSQL binaries not found (set LASTMILE_PG_BIN, default {DEFAULT_BIN})");
        if required() {
            return State::Failed(format!("{msg}, and LASTMILE_REQUIRE_POSTGRES is set"));
        }
        // Straight to stderr, past the test harness's output capture, so it is seen once.
        let _ = writeln!(
            std::io::stderr(),
            "note: {msg}; PostgreSQL tests are skipped"
        );
        return State::Skipped;
    };
    match start_cluster(&bin).await {
        Ok(c) => State::Running(c),
        Err(e) => State::Failed(format!("test PostgreSQL cluster failed to start: {e}")),
    }
}

/// Runs a server tool in the cluster dir, as the `postgres` user when we are root.
fn tool(bin: &Path, name: &str, root: bool, cwd: &Path) -> Command {
    let mut cmd = if root {
        let mut c = Command::new("runuser");
        c.args(["-u", OS_USER, "--"]).arg(bin.join(name));
        c
    } else {
        Command::new(bin.join(name))
    };
    cmd.stdin(Stdio::null()).current_dir(cwd);
    cmd
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = cmd
        .output()
        .map_err(|e| format!("{what}: cannot run {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// A single-quoted postgresql.conf string.
fn conf_str(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

async fn start_cluster(bin: &Path) -> Result<Cluster, String> {
    let root = is_root();
    let dir = base_dir().join(unique_name("lastmile-pg"));
    let data = dir.join("data");
    let log = dir.join("server.log");
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    if root {
        let mut chown = Command::new("chown");
        chown.arg(format!("{OS_USER}:")).arg(&dir);
        run(chown, "chown of the cluster dir")?;
    }
    // Stop the server and remove everything once this process is gone; armed before initdb
    // so a failed start is cleaned up too.
    let runas: &Path = Path::new(if root { OS_USER } else { "" });
    run_at_exit(
        "read _\n\
         if [ -f \"$2/postmaster.pid\" ]; then\n\
           if [ -n \"$4\" ]; then runuser -u \"$4\" -- \"$1\" -D \"$2\" -m immediate -w stop\n\
           else \"$1\" -D \"$2\" -m immediate -w stop; fi\n\
         fi\n\
         rm -rf \"$3\"",
        &[&bin.join("pg_ctl"), &data, &dir, runas],
    )
    .map_err(|e| format!("cannot start the clean-up watchdog: {e}"))?;

    // C.UTF-8 makes lower() fold non-ASCII letters as a production locale would; fall back to
    // the plain C locale where it does not exist.
    let initdb = |locale: &[&str]| {
        let mut c = tool(bin, "initdb", root, &dir);
        c.arg("-D")
            .arg(&data)
            .args(["-A", "trust", "-U", OS_USER, "-E", "UTF8", "--no-sync"])
            .args(locale);
        run(c, "initdb")
    };
    if let Err(first) = initdb(&["--locale=C.UTF-8"]) {
        let _ = std::fs::remove_dir_all(&data);
        initdb(&["--no-locale"]).map_err(|e| format!("{first}\n{e}"))?;
    }

    // The port only names the socket file (no TCP listener), but keep it plausible and varied.
    let port = 20_000 + (std::process::id() % 40_000) as u16;
    let socket_dir = dir
        .to_str()
        .ok_or_else(|| format!("temp dir {} is not UTF-8", dir.display()))?;
    let conf = format!(
        "\n# lastmile test cluster\n\
         listen_addresses = ''\n\
         unix_socket_directories = {}\n\
         port = {port}\n\
         max_connections = 300\n\
         shared_buffers = 32MB\n\
         fsync = off\n\
         synchronous_commit = off\n\
         full_page_writes = off\n\
         logging_collector = off\n",
        conf_str(socket_dir)
    );
    std::fs::OpenOptions::new()
        .append(true)
        .open(data.join("postgresql.conf"))
        .and_then(|mut f| f.write_all(conf.as_bytes()))
        .map_err(|e| format!("cannot write postgresql.conf: {e}"))?;

    // The server keeps no pipe of ours open: its output goes to the log file.
    let mut pg_ctl = tool(bin, "pg_ctl", root, &dir);
    pg_ctl
        .arg("-D")
        .arg(&data)
        .arg("-l")
        .arg(&log)
        .args(["-w", "-t", "60", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let status = pg_ctl
        .status()
        .map_err(|e| format!("cannot run pg_ctl: {e}"))?;
    if !status.success() {
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        return Err(format!(
            "pg_ctl start failed ({status}); server log:\n{log}"
        ));
    }

    let cluster = Cluster {
        socket_dir: dir.clone(),
        port,
        next_db: AtomicU64::new(1),
    };
    create_database(&cluster, TEMPLATE, None)
        .await
        .map_err(|e| format!("cannot create {TEMPLATE}: {e}"))?;
    let store = PgStore::connect(&cluster.url(TEMPLATE))
        .await
        .map_err(|e| format!("cannot migrate {TEMPLATE}: {e}"))?;
    // Copies need the template to have no sessions: close the pool before the first copy.
    lastmile_store::Store::close(&store).await;
    Ok(cluster)
}

/// `CREATE DATABASE name [TEMPLATE template]`, over a connection of its own (a pool would be
/// tied to the runtime of the test that happened to create it).
async fn create_database(
    cluster: &Cluster,
    name: &str,
    template: Option<&str>,
) -> Result<(), sqlx::Error> {
    let mut sql = format!("CREATE DATABASE \"{name}\"");
    if let Some(t) = template {
        sql.push_str(&format!(" TEMPLATE \"{t}\""));
    }
    let mut conn = PgConnection::connect(&cluster.url("postgres")).await?;
    let mut attempt = 0;
    let result = loop {
        attempt += 1;
        match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
        {
            // 55006 object_in_use: a closed template session has not quite ended yet.
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("55006") && attempt < 50 =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            other => break other.map(|_| ()),
        }
    };
    let _ = conn.close().await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use lastmile_store::Store as _;

    /// Many tests, each on its own runtime and thread, ask at once: one cluster starts, and
    /// each gets a database of its own, already migrated.
    #[test]
    fn concurrent_callers_get_distinct_migrated_databases() {
        let threads: Vec<_> = (0..4)
            .map(|_| {
                std::thread::spawn(|| {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("runtime");
                    rt.block_on(async {
                        let url = database_url().await?;
                        let store = PgStore::connect(&url).await.expect("connect");
                        // A fresh database: every counter starts at 1.
                        let first = store.next_counter("c").await.expect("counter");
                        store.close().await;
                        Some((url, first))
                    })
                })
            })
            .collect();
        let results: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("thread"))
            .collect();
        let Some(results) = results.into_iter().collect::<Option<Vec<_>>>() else {
            return; // PostgreSQL not installed: skipped.
        };
        let mut urls: Vec<_> = results.iter().map(|(u, _)| u.clone()).collect();
        urls.sort();
        urls.dedup();
        assert_eq!(
            urls.len(),
            results.len(),
            "databases are not distinct: {urls:?}"
        );
        assert!(results.iter().all(|(_, first)| *first == 1), "{results:?}");
    }

    #[tokio::test]
    async fn database_has_the_schema_and_no_rows() {
        let Some(url) = database_url().await else {
            return;
        };
        let mut conn = PgConnection::connect(&url).await.expect("connect");
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM schema_migrations ORDER BY version")
                .fetch_all(&mut conn)
                .await
                .expect("schema_migrations");
        let expected: Vec<i64> = lastmile_store_postgres::MIGRATIONS
            .iter()
            .map(|(v, _, _)| *v)
            .collect();
        assert_eq!(versions, expected);
        let subscribers: i64 = sqlx::query_scalar("SELECT count(*) FROM subscribers")
            .fetch_one(&mut conn)
            .await
            .expect("count");
        assert_eq!(subscribers, 0);
        conn.close().await.expect("close");
        let store = PgStore::connect(&url).await.expect("store");
        store.ping().await.expect("ping");
    }
}
