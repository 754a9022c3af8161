//! `lastmile billing run` end to end under failure, on SQLite and on PostgreSQL:
//!
//! - a run killed (SIGKILL) after its first committed batch is resumed by the next run and
//!   ends with exactly the invoices of an uninterrupted run on an identical database;
//! - two runs started at the same time on one database invoice every subscriber once, with
//!   gap-free invoice numbers.
//!
//! One database per backend is seeded in-process through the application's use cases (plans,
//! subscribers, services and back-dated service events, and an earlier billing run so the
//! runs under test also issue corrections), under a manual clock set to the billing date; each
//! test works on copies of it (a file copy, `CREATE DATABASE … TEMPLATE`), identical down to
//! the ids.

use jiff::civil::Date;
use jiff::{SignedDuration, Timestamp};
use lastmile_api_types::{
    CreatePlan, CreateService, CreateSubscriber, PlanTermsBody, ServiceActionBody,
};
use lastmile_app::services::ServiceAction;
use lastmile_app::{App, AppConfig, ManualClock, SecretBox};
use lastmile_domain::audit::Actor;
use lastmile_domain::billing::invoice::{BillingRunStatus, Invoice};
use lastmile_domain::ids::{PlanId, SubscriberId};
use lastmile_domain::service::SuspensionCause;
use lastmile_store::{InvoiceFilter, Page, Store, SubscriberFilter};
use lastmile_store_postgres::PgStore;
use lastmile_store_sqlite::SqliteStore;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::{AsyncBufReadExt, BufReader};

/// The billing date of the runs under test.
const AS_OF: &str = "2026-04-10";
/// "Now" while seeding: the morning of the billing date.
const NOW: &str = "2026-04-10T08:00:00Z";
/// An earlier billing run, made while seeding; service events dated before it are recorded
/// before it, the others after it (some of them back-dated before it: corrections).
const EARLIER_RUN: &str = "2026-03-10";
const SUBSCRIBERS: usize = 1500;
/// Concurrent seeding tasks.
const SEED_TASKS: usize = 8;
/// Subscribers per billing batch in the runs under test: many batches, so a run is killed
/// well before its end.
const BATCH: &str = "10";

fn as_of() -> Date {
    AS_OF.parse().unwrap()
}

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

// Seeding -----------------------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Plans {
    basic: PlanId,
    fibre: PlanId,
}

/// Subscriber `i`'s life: its billing day, its first plan and its dated service actions in
/// time order. A pure function of `i`: every seeding is the same.
fn life(i: usize, plans: Plans) -> (i64, PlanId, Vec<(Timestamp, ServiceAction)>) {
    let billing_day = [1, 1, 1, 1, 1, 1, 1, 5, 15, 28][i % 10];
    let fibre = i.is_multiple_of(3);
    let (plan, other) = if fibre {
        (plans.fibre, plans.basic)
    } else {
        (plans.basic, plans.fibre)
    };
    if i % 50 == 49 {
        return (billing_day, plan, Vec::new()); // never activated
    }
    let day = SignedDuration::from_hours(24);
    let days = |n: usize| day * n as i32;
    // Activated 2 to 59 days ago, at various hours.
    let act = now() - days(2 + (i * 7) % 58) - SignedDuration::from_hours((i % 9) as i64);
    let mut events = vec![(act, ServiceAction::Activate)];
    match i % 12 {
        3 | 9 => events.push((
            act + days(3 + i % 17),
            ServiceAction::ChangePlan { plan_id: other },
        )),
        5 => events.push((
            act + days(2 + i % 5),
            ServiceAction::Suspend {
                cause: SuspensionCause::Dunning,
            },
        )),
        6 => {
            events.push((
                act + days(2),
                ServiceAction::Suspend {
                    cause: SuspensionCause::Operator,
                },
            ));
            events.push((act + days(4 + i % 6), ServiceAction::Resume));
        }
        8 => events.push((act + days(1 + i % 13), ServiceAction::Terminate)),
        _ => {}
    }
    // Nothing in the future; a later action needs the earlier ones.
    let limit = now() - SignedDuration::from_mins(1);
    let events = events
        .into_iter()
        .take_while(|(t, _)| *t <= limit)
        .collect();
    (billing_day, plan, events)
}

fn terms(price_minor: i64, setup: i64, contract_months: u32, etf: i64) -> PlanTermsBody {
    PlanTermsBody {
        download_kbps: 100_000,
        upload_kbps: 20_000,
        burst: None,
        price_minor,
        currency: "EUR".into(),
        billing_interval: None,
        setup_fee_minor: Some(setup),
        data_cap_bytes: None,
        cap_policy: None,
        free_window: None,
        contract_months: Some(contract_months),
        early_termination_fee_minor: Some(etf),
        tax_class: None,
    }
}

fn ok<T>(r: lastmile_app::AppResult<T>, what: &str) -> T {
    r.unwrap_or_else(|e| panic!("seeding: {what}: {e}"))
}

/// Seeds `store` with two EUR plans and [`SUBSCRIBERS`] subscribers with a service each, their
/// back-dated histories, and a completed billing run for [`EARLIER_RUN`].
async fn seed(store: Arc<dyn Store>) {
    let clock = Arc::new(ManualClock::new(now()));
    let secrets = SecretBox::from_hex(&SecretBox::generate_key().unwrap()).unwrap();
    let app = App::new(store, clock, secrets, AppConfig::default());
    let actor = Actor::system("seed");

    let basic = ok(
        app.create_plan(
            &actor,
            CreatePlan {
                code: "BASIC-30".into(),
                name: "Basic 30".into(),
                terms: terms(2_990, 0, 0, 0),
            },
        )
        .await,
        "plan",
    );
    let fibre = ok(
        app.create_plan(
            &actor,
            CreatePlan {
                code: "FIBRE-300".into(),
                name: "Fibre 300".into(),
                terms: terms(5_490, 4_900, 12, 9_900),
            },
        )
        .await,
        "plan",
    );
    let plans = Plans {
        basic: basic.id,
        fibre: fibre.id,
    };

    let cut: Timestamp = format!("{EARLIER_RUN}T00:00:00Z").parse().unwrap();
    // Subscribers, services and the events dated before the earlier run.
    let services = in_parallel(&app, move |app, i| async move {
        let actor = Actor::system("seed");
        let (billing_day, plan, events) = life(i, plans);
        let sub = ok(
            app.create_subscriber(
                &actor,
                CreateSubscriber {
                    number: Some(number(i)),
                    name: format!("Subscriber {i}"),
                    email: None,
                    phone: None,
                    billing_address: None,
                    currency: "EUR".into(),
                    tax_zone: None,
                    dunning_policy: None,
                    billing_day: Some(billing_day),
                    custom_fields: None,
                },
            )
            .await,
            "subscriber",
        );
        let svc = ok(
            app.create_service(
                &actor,
                CreateService {
                    subscriber_id: sub.id.0,
                    plan_id: plan.0,
                    access_kind: None,
                    username: Some(format!("user{i}@isp")),
                    password: Some("s3cret!".into()),
                    mac_address: None,
                    circuit_id: None,
                    static_ip: None,
                    ip_pool: None,
                    nas_id: None,
                    service_address: None,
                    simultaneous_use: None,
                },
            )
            .await,
            "service",
        );
        for (at, action) in events.into_iter().filter(|(t, _)| *t < cut) {
            act(&app, svc.id, at, action).await;
        }
        svc.id
    })
    .await;

    let run = ok(
        app.start_billing_run(EARLIER_RUN.parse().unwrap(), None)
            .await,
        "earlier run",
    );
    let run = ok(app.execute_billing_run(run, &|_| {}).await, "earlier run");
    assert!(run.invoices_created > 0 && run.errors.is_empty(), "{run:?}");

    // The rest, some of it back-dated before the earlier run.
    let services = Arc::new(services);
    in_parallel(&app, move |app, i| {
        let services = services.clone();
        async move {
            let (_, _, events) = life(i, plans);
            for (at, action) in events.into_iter().filter(|(t, _)| *t >= cut) {
                act(&app, services[i], at, action).await;
            }
        }
    })
    .await;
}

fn number(i: usize) -> String {
    format!("C-{i:05}")
}

async fn act(app: &App, id: lastmile_domain::ids::ServiceId, at: Timestamp, a: ServiceAction) {
    let what = format!("{a:?} at {at}");
    ok(
        app.service_action(
            &Actor::system("seed"),
            id,
            a,
            ServiceActionBody {
                effective_at: Some(at),
                reason: None,
            },
        )
        .await,
        &what,
    );
}

/// Runs `f(app, i)` for every subscriber index on [`SEED_TASKS`] tasks; results by index.
async fn in_parallel<T, F, Fut>(app: &App, f: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(App, usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = T> + Send,
{
    let f = Arc::new(f);
    let tasks: Vec<_> = (0..SEED_TASKS)
        .map(|t| {
            let (app, f) = (app.clone(), f.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                for i in (t..SUBSCRIBERS).step_by(SEED_TASKS) {
                    out.push((i, f(app.clone(), i).await));
                }
                out
            })
        })
        .collect();
    let mut all = Vec::with_capacity(SUBSCRIBERS);
    for t in tasks {
        all.extend(t.await.expect("seeding task"));
    }
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, v)| v).collect()
}

// Stores --------------------------------------------------------------------------------

async fn open(url: &str) -> Arc<dyn Store> {
    if url.starts_with("postgres") {
        Arc::new(PgStore::connect(url).await.expect("connect PostgreSQL"))
    } else {
        Arc::new(SqliteStore::connect(url).await.expect("open SQLite"))
    }
}

/// A copy of the SQLite database seeded once per test process, as `dir/name`. Copies share
/// the ids: they are identical databases.
async fn sqlite_copy(dir: &Path, name: &str) -> String {
    static SEEDED: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    let seeded = SEEDED
        .get_or_init(|| async {
            let dir = lastmile_testing::TempDir::new("billing-seeded");
            let path = dir.path().join("seeded.db");
            dir.keep_until_exit();
            let store = Arc::new(
                SqliteStore::connect(&format!("sqlite://{}", path.display()))
                    .await
                    .expect("open SQLite"),
            );
            let started = Instant::now();
            seed(store.clone()).await;
            eprintln!("seeded SQLite in {:.1}s", started.elapsed().as_secs_f64());
            // Closing the last connection checkpoints the WAL into the main file.
            store.close().await;
            path
        })
        .await;
    let copy = dir.join(name);
    std::fs::copy(seeded, &copy).unwrap();
    // A WAL left over all the same goes with it (the -shm index is rebuilt on open).
    let wal = PathBuf::from(format!("{}-wal", seeded.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", copy.display())).unwrap();
    }
    format!("sqlite://{}", copy.display())
}

/// A copy (`CREATE DATABASE … TEMPLATE`) of the PostgreSQL database seeded once per test
/// process, or `None` when PostgreSQL tests are skipped. Copies share the ids: they are
/// identical databases.
async fn pg_copy() -> Option<String> {
    use sqlx::{AssertSqlSafe, Connection as _};
    static SEEDED: tokio::sync::OnceCell<Option<String>> = tokio::sync::OnceCell::const_new();
    static COPIES: AtomicUsize = AtomicUsize::new(0);
    let seeded = SEEDED
        .get_or_init(|| async {
            let url = lastmile_testing::pg::database_url().await?;
            let store = Arc::new(PgStore::connect(&url).await.expect("connect PostgreSQL"));
            let started = Instant::now();
            seed(store.clone()).await;
            eprintln!(
                "seeded PostgreSQL in {:.1}s",
                started.elapsed().as_secs_f64()
            );
            // A template must have no sessions.
            store.close().await;
            Some(url)
        })
        .await
        .as_deref()?;
    // postgres://user@host/DB?params: copies are DB_copyN, made from the `postgres` database.
    let (base, params) = seeded.split_once('?').unwrap_or((seeded, ""));
    let (server, db) = base.rsplit_once('/').expect("a database name in the URL");
    let copy = format!("{db}_copy{}", COPIES.fetch_add(1, Ordering::Relaxed));
    let mut conn = sqlx::PgConnection::connect(&format!("{server}/postgres?{params}"))
        .await
        .expect("connect to the postgres database");
    let sql = format!("CREATE DATABASE \"{copy}\" TEMPLATE \"{db}\"");
    let mut attempt = 0;
    loop {
        attempt += 1;
        match sqlx::raw_sql(AssertSqlSafe(sql.clone()))
            .execute(&mut conn)
            .await
        {
            Ok(_) => break,
            // 55006 object_in_use: the template is being copied by another test, or a closed
            // session of it has not quite ended yet.
            Err(sqlx::Error::Database(e))
                if e.code().as_deref() == Some("55006") && attempt < 100 =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
    conn.close().await.unwrap();
    Some(format!("{server}/{copy}?{params}"))
}

// The binary ----------------------------------------------------------------------------

fn billing_run(db: &str, dir: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_lastmile"));
    c.current_dir(dir)
        .args(["--database-url", db, "--billing-batch-size", BATCH])
        .args(["billing", "run", "--as-of", AS_OF])
        .env("NO_COLOR", "1")
        .env("RUST_LOG", "warn")
        .env_remove("LASTMILE_DATABASE_URL")
        .env_remove("LASTMILE_SECRET_KEY")
        .env_remove("LASTMILE_TIME_ZONE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

struct Ran {
    stdout: String,
    stderr: String,
}

impl Ran {
    /// The line's counts: `N subscribers, M invoices, K errors`.
    fn summary(&self) -> &str {
        let line = self
            .stdout
            .lines()
            .find(|l| l.starts_with("billing run "))
            .unwrap_or_else(|| panic!("no summary in stdout:\n{}", self.stdout));
        let (_, counts) = line
            .split_once(&format!(" for {AS_OF}: "))
            .unwrap_or_else(|| panic!("unexpected summary {line:?}"));
        counts
    }

    /// The run the summary is about.
    fn run_id(&self) -> &str {
        let line = self.stdout.lines().find(|l| l.starts_with("billing run "));
        line.and_then(|l| l["billing run ".len()..].split_whitespace().next())
            .unwrap_or_else(|| panic!("no summary in stdout:\n{}", self.stdout))
    }

    fn progress_lines(&self) -> usize {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("progress: "))
            .count()
    }
}

fn succeeded(what: &str, out: Output) -> Ran {
    let ran = Ran {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        out.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        out.status,
        ran.stdout,
        ran.stderr
    );
    ran
}

async fn run_to_completion(what: &str, db: &str, dir: &Path) -> Ran {
    let started = Instant::now();
    let out = billing_run(db, dir).output().await.unwrap();
    let ran = succeeded(what, out);
    eprintln!(
        "{what}: {} ({} progress lines, {:.1}s)",
        ran.summary(),
        ran.progress_lines(),
        started.elapsed().as_secs_f64()
    );
    ran
}

// What was invoiced ---------------------------------------------------------------------

/// An invoice as comparable across databases: subscriber by number, no ids or timestamps.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct InvoiceView {
    subscriber: String,
    period_start: Date,
    number: Option<String>,
    period_end: Date,
    due_date: Option<Date>,
    status: &'static str,
    currency: String,
    total_minor: i64,
    /// From the earlier run (seeding) or from a run for [`AS_OF`].
    as_of_run: bool,
    lines: Vec<LineView>,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct LineView {
    position: i32,
    description: String,
    kind: &'static str,
    charge_period_start: Date,
    correction: bool,
    days: i64,
    period_days: i64,
    amount_minor: i64,
}

/// Every invoice of the database by subscriber number and period; with its lines if `lines`.
async fn invoices(store: &Arc<dyn Store>, lines: bool) -> Vec<InvoiceView> {
    let mut numbers: HashMap<SubscriberId, String> = HashMap::new();
    let mut after = None;
    loop {
        let page = store
            .list_subscribers(&SubscriberFilter::default(), Page { after, limit: 500 })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.0);
        numbers.extend(page.into_iter().map(|s| (s.id, s.number.to_string())));
    }
    let runs: HashMap<_, _> = store
        .list_billing_runs(Page {
            after: None,
            limit: 100,
        })
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.id, r.as_of))
        .collect();
    let mut heads: Vec<Invoice> = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_invoices(&InvoiceFilter::default(), Page { after, limit: 500 })
            .await
            .unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id.0);
        heads.extend(page);
    }
    let heads = if lines {
        // `get_invoice` one by one, on a few connections at once.
        const TASKS: usize = 4;
        let heads = Arc::new(heads);
        let tasks: Vec<_> = (0..TASKS)
            .map(|t| {
                let (store, heads) = (store.clone(), heads.clone());
                tokio::spawn(async move {
                    let mut out = Vec::new();
                    for h in heads.iter().skip(t).step_by(TASKS) {
                        out.push(store.get_invoice(h.id).await.unwrap().unwrap());
                    }
                    out
                })
            })
            .collect();
        let mut full = Vec::new();
        for t in tasks {
            full.extend(t.await.unwrap());
        }
        full
    } else {
        heads
    };
    let mut out: Vec<InvoiceView> = heads
        .into_iter()
        .map(|inv| InvoiceView {
            subscriber: numbers[&inv.subscriber_id].clone(),
            period_start: inv.period_start,
            number: inv.number,
            period_end: inv.period_end,
            due_date: inv.due_date,
            status: inv.status.as_str(),
            currency: inv.currency.as_str().to_string(),
            total_minor: inv.total_minor,
            as_of_run: inv.billing_run_id.and_then(|r| runs.get(&r).copied()) == Some(as_of()),
            lines: inv
                .lines
                .into_iter()
                .map(|l| LineView {
                    position: l.position,
                    description: l.description,
                    kind: l.charge_kind.as_str(),
                    charge_period_start: l.charge_period_start,
                    correction: l.correction,
                    days: l.days,
                    period_days: l.period_days,
                    amount_minor: l.amount_minor,
                })
                .collect(),
        })
        .collect();
    if lines {
        for i in &out {
            assert!(!i.lines.is_empty(), "an invoice without lines: {i:?}");
        }
    }
    out.sort();
    out
}

/// Invoice numbers are exactly INV-000001..INV-n, and no subscriber has two invoices for one
/// period.
fn assert_consistent(what: &str, invs: &[InvoiceView]) {
    let mut numbers: Vec<&str> = invs
        .iter()
        .map(|i| i.number.as_deref().unwrap_or("(draft)"))
        .collect();
    numbers.sort();
    let expected: Vec<String> = (1..=invs.len()).map(|n| format!("INV-{n:06}")).collect();
    if numbers != expected {
        let have: HashSet<&str> = numbers.iter().copied().collect();
        let missing: Vec<_> = expected
            .iter()
            .filter(|n| !have.contains(n.as_str()))
            .collect();
        let mut dup = numbers.clone();
        dup.dedup();
        panic!(
            "{what}: invoice numbers are not INV-000001..INV-{:06}: {} numbers, {} distinct, \
             missing {missing:?}",
            invs.len(),
            numbers.len(),
            dup.len()
        );
    }
    let mut seen = HashSet::new();
    for i in invs {
        assert!(
            seen.insert((&i.subscriber, i.period_start)),
            "{what}: subscriber {} has two invoices for the period from {}",
            i.subscriber,
            i.period_start
        );
        if !i.lines.is_empty() {
            assert_eq!(
                i.total_minor,
                i.lines.iter().map(|l| l.amount_minor).sum::<i64>(),
                "{what}: {i:?}"
            );
        }
    }
}

fn assert_same(what: &str, expected: &[InvoiceView], actual: &[InvoiceView]) {
    if expected == actual {
        return;
    }
    let e: HashSet<_> = expected.iter().collect();
    let a: HashSet<_> = actual.iter().collect();
    let only_e: Vec<_> = expected.iter().filter(|i| !a.contains(i)).take(3).collect();
    let only_a: Vec<_> = actual.iter().filter(|i| !e.contains(i)).take(3).collect();
    panic!(
        "{what}: {} invoices expected, {} found\nexpected but missing (first 3): {only_e:#?}\n\
         found but not expected (first 3): {only_a:#?}",
        expected.len(),
        actual.len()
    );
}

fn run_invoices(invs: &[InvoiceView]) -> usize {
    invs.iter().filter(|i| i.as_of_run).count()
}

// The scenarios -------------------------------------------------------------------------

/// `a` and `b` are identical seeded databases: `a` is billed in one go; the run on `b` is
/// killed after its first batch, then resumed; both end the same.
async fn killed_run_resumes(a: &str, b: &str) {
    let dir = lastmile_testing::TempDir::new("billing-crash");
    // The same invoices from seeding (headers only: cheap).
    let before = invoices(&open(a).await, false).await;
    assert_same(
        "the two seeded databases",
        &before,
        &invoices(&open(b).await, false).await,
    );
    assert!(!before.is_empty(), "the earlier run invoiced");

    // A: uninterrupted.
    let ran_a = run_to_completion("uninterrupted run on A", a, dir.path()).await;
    assert!(ran_a.summary().ends_with(" 0 errors"), "{}", ran_a.stdout);
    assert!(ran_a.progress_lines() > 10, "{}", ran_a.stderr);
    let store_a = open(a).await;
    let invoices_a = invoices(&store_a, true).await;
    assert_consistent("A", &invoices_a);
    let created_a = run_invoices(&invoices_a);
    assert!(created_a > SUBSCRIBERS / 2, "A invoiced only {created_a}");
    assert!(
        invoices_a
            .iter()
            .any(|i| i.as_of_run && i.lines.iter().any(|l| l.correction)),
        "the run issues corrections too"
    );
    assert!(store_a
        .unfinished_billing_run(as_of())
        .await
        .unwrap()
        .is_none());

    // B: killed as soon as its first batch is committed.
    let mut child = billing_run(b, dir.path()).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let progress = loop {
        let line = lines.next_line().await.unwrap().unwrap_or_else(|| {
            panic!("billing run on B ended before reporting progress: {seen:#?}")
        });
        if line.starts_with("progress: ") {
            break line;
        }
        seen.push(line);
    };
    child.kill().await.unwrap(); // SIGKILL, then wait
    let status = child.wait().await.unwrap();
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(9), "killed by SIGKILL: {status}");
    }
    let started_run = seen
        .iter()
        .find_map(|l| l.strip_prefix("billing run "))
        .and_then(|l| l.strip_suffix(&format!(" for {AS_OF}")))
        .unwrap_or_else(|| panic!("a new run, not a resumed one: {seen:#?}"))
        .to_string();
    eprintln!("killed the run on B after {progress:?}");

    let store_b = open(b).await;
    let killed = store_b
        .unfinished_billing_run(as_of())
        .await
        .unwrap()
        .expect("the killed run is still unfinished");
    assert_eq!(killed.id.to_string(), started_run);
    assert_eq!(killed.status, BillingRunStatus::Running);
    assert!(killed.cursor.is_some(), "a batch was committed: {killed:?}");
    assert!(
        killed.subscribers_processed > 0 && (killed.subscribers_processed as usize) < SUBSCRIBERS,
        "killed mid-run: {killed:?}"
    );
    assert!(
        (killed.invoices_created as usize) < created_a,
        "killed mid-run: {killed:?}"
    );
    let partial = invoices(&store_b, false).await;
    assert_consistent("B after the kill", &partial);
    assert_eq!(run_invoices(&partial), killed.invoices_created as usize);
    assert!(partial.len() < invoices_a.len());
    eprintln!(
        "B after the kill: {} subscribers processed, {} invoices created (A: {created_a})",
        killed.subscribers_processed, killed.invoices_created
    );

    // B again: resumes the killed run and finishes it.
    let ran_b = run_to_completion("resumed run on B", b, dir.path()).await;
    assert!(
        ran_b
            .stderr
            .contains(&format!("resuming billing run {} for {AS_OF}", killed.id)),
        "the second run resumes the killed one:\n{}",
        ran_b.stderr
    );
    assert!(
        ran_b
            .stdout
            .starts_with(&format!("billing run {} for {AS_OF}: ", killed.id)),
        "{}",
        ran_b.stdout
    );
    // The killed run's counts plus the resumed part: the same as an uninterrupted run.
    assert_eq!(ran_b.summary(), ran_a.summary());
    let finished = store_b.get_billing_run(killed.id).await.unwrap().unwrap();
    assert_eq!(finished.status, BillingRunStatus::Completed);
    assert!(store_b
        .unfinished_billing_run(as_of())
        .await
        .unwrap()
        .is_none());
    let invoices_b = invoices(&store_b, true).await;
    assert_consistent("B", &invoices_b);
    assert_same("B (killed and resumed) against A", &invoices_a, &invoices_b);

    // B a third time: a new run that finds nothing left to invoice.
    let ran_c = run_to_completion("third run on B", b, dir.path()).await;
    assert!(
        !ran_c.stderr.contains("resuming"),
        "nothing to resume:\n{}",
        ran_c.stderr
    );
    assert_eq!(
        ran_c.summary(),
        format!("{SUBSCRIBERS} subscribers, 0 invoices, 0 errors")
    );
    assert_same(
        "B after a third run",
        &invoices_b,
        &invoices(&store_b, true).await,
    );
}

/// Two runs started at once on one seeded database: each subscriber invoiced once, numbers
/// 1..n without gaps or duplicates.
async fn concurrent_runs(db: &str) {
    let before = invoices(&open(db).await, false).await;
    // Two "nodes", each with its own working directory (and secret key file).
    let (dir1, dir2) = (
        lastmile_testing::TempDir::new("billing-node1"),
        lastmile_testing::TempDir::new("billing-node2"),
    );
    let started = Instant::now();
    let first = billing_run(db, dir1.path()).spawn().unwrap();
    let second = billing_run(db, dir2.path()).spawn().unwrap();
    let (out1, out2) = tokio::join!(first.wait_with_output(), second.wait_with_output());
    let (ran1, ran2) = (
        succeeded("first concurrent run", out1.unwrap()),
        succeeded("second concurrent run", out2.unwrap()),
    );
    eprintln!(
        "concurrent runs: {:?} ({} progress lines) and {:?} ({} progress lines), {:.1}s",
        ran1.summary(),
        ran1.progress_lines(),
        ran2.summary(),
        ran2.progress_lines(),
        started.elapsed().as_secs_f64()
    );
    for r in [&ran1, &ran2] {
        assert!(r.summary().ends_with(" 0 errors"), "{}", r.stdout);
    }

    // They ran at the same time: one started the run, the other joined it.
    assert_eq!(
        ran1.run_id(),
        ran2.run_id(),
        "not one run:\n{}\n{}",
        ran1.stderr,
        ran2.stderr
    );
    let store = open(db).await;
    let runs: Vec<_> = store
        .list_billing_runs(Page {
            after: None,
            limit: 100,
        })
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.as_of == as_of())
        .collect();
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let run = &runs[0];
    assert_eq!(run.id.to_string(), ran1.run_id());
    assert_eq!(run.status, BillingRunStatus::Completed);
    let after = invoices(&store, true).await;
    assert_consistent("after two concurrent runs", &after);
    let created = run_invoices(&after);
    assert!(created > SUBSCRIBERS / 2, "invoiced only {created}");
    // What was there before is untouched.
    let kept: Vec<_> = after
        .iter()
        .filter(|i| !i.as_of_run)
        .map(|i| InvoiceView {
            lines: Vec::new(),
            ..i.clone()
        })
        .collect();
    assert_same("invoices before the runs", &before, &kept);
    // One invoice per subscriber from the runs.
    let subscribers: HashSet<_> = after
        .iter()
        .filter(|i| i.as_of_run)
        .map(|i| &i.subscriber)
        .collect();
    assert_eq!(subscribers.len(), created, "a subscriber invoiced twice");
    // The run counts each subscriber and invoice once, whichever process handled it.
    assert_eq!(
        (run.subscribers_processed, run.invoices_created),
        (SUBSCRIBERS as i64, created as i64),
        "{run:#?}"
    );

    // Nothing was missed: another run finds nothing to invoice.
    let dir = lastmile_testing::TempDir::new("billing-node3");
    let ran = run_to_completion("run after the concurrent runs", db, dir.path()).await;
    assert_eq!(
        ran.summary(),
        format!("{SUBSCRIBERS} subscribers, 0 invoices, 0 errors")
    );
    assert_same(
        "after a further run",
        &after,
        &invoices(&open(db).await, true).await,
    );
}

mod sqlite {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_run_resumes_to_the_same_result() {
        let started = Instant::now();
        let dir = lastmile_testing::TempDir::new("billing-crash");
        let a = sqlite_copy(dir.path(), "a.db").await;
        let b = sqlite_copy(dir.path(), "b.db").await;
        killed_run_resumes(&a, &b).await;
        eprintln!("total {:.1}s", started.elapsed().as_secs_f64());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_runs_invoice_once() {
        let started = Instant::now();
        let dir = lastmile_testing::TempDir::new("billing-concurrent");
        concurrent_runs(&sqlite_copy(dir.path(), "isp.db").await).await;
        eprintln!("total {:.1}s", started.elapsed().as_secs_f64());
    }
}

mod postgres {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_run_resumes_to_the_same_result() {
        let started = Instant::now();
        let (Some(a), Some(b)) = (pg_copy().await, pg_copy().await) else {
            eprintln!("PostgreSQL not available: skipped");
            return;
        };
        killed_run_resumes(&a, &b).await;
        eprintln!("total {:.1}s", started.elapsed().as_secs_f64());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_runs_invoice_once() {
        let started = Instant::now();
        let Some(url) = pg_copy().await else {
            eprintln!("PostgreSQL not available: skipped");
            return;
        };
        concurrent_runs(&url).await;
        eprintln!("total {:.1}s", started.elapsed().as_secs_f64());
    }
}
