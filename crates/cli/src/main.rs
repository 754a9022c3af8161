//! `lastmile`: the one binary. `serve` runs the HTTP API and the job workers in one process;
//! `migrate`, `token create` and `demo` are the operator's tools.

mod bench;
mod demo;
mod radius;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use lastmile_app::{App, AppConfig, Clock, SecretBox, SystemClock};
use lastmile_domain::audit::Actor;
use lastmile_domain::auth::Role;
use lastmile_domain::billing::invoice::BillingRunStatus;
use lastmile_domain::ids::SubscriberId;
use lastmile_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

#[derive(Parser)]
#[command(
    name = "lastmile",
    version,
    about = "Operations platform for Internet service providers"
)]
struct Cli {
    /// Storage: `sqlite://PATH` (embedded, created on first use) or `postgres://…`.
    #[arg(
        long,
        global = true,
        env = "LASTMILE_DATABASE_URL",
        default_value = "sqlite://lastmile.db"
    )]
    database_url: String,
    /// File holding the 256-bit key (hex) that encrypts service passwords and NAS secrets;
    /// created on first start. `LASTMILE_SECRET_KEY` (hex) takes precedence.
    #[arg(long, global = true, default_value = "lastmile.key")]
    secret_key_file: PathBuf,
    /// The operator's time zone (IANA name): billing periods and days are counted there.
    #[arg(long, global = true, env = "LASTMILE_TIME_ZONE", default_value = "UTC")]
    time_zone: String,
    /// Invoice numbers: this prefix and a gap-free sequence. This and the other billing
    /// settings below are defaults until saved with `PUT /api/v1/settings/billing`.
    #[arg(long, global = true, default_value = "INV-")]
    invoice_prefix: String,
    /// Days from the billing date to the due date.
    #[arg(long, global = true, default_value_t = 14)]
    payment_terms_days: i64,
    /// Subscribers per atomic billing batch; default 1000 on SQLite, 5000 on PostgreSQL
    /// (whose batch writes cost a fixed number of statements, so bigger batches go faster).
    #[arg(long, global = true)]
    billing_batch_size: Option<u32>,
    /// Billing runs leave drafts for review (`POST /invoices/{id}/issue`) instead of issuing.
    #[arg(long, global = true, env = "LASTMILE_INVOICE_DRAFTS")]
    invoice_drafts: bool,
    /// When a cheaper plan starts to be billed.
    #[arg(long, global = true, env = "LASTMILE_DOWNGRADES", value_enum,
          default_value_t = Downgrades::NextPeriod)]
    downgrades: Downgrades,
    /// Credit note numbers: this prefix and their own gap-free sequence.
    #[arg(long, global = true, default_value = "CN-")]
    credit_note_prefix: String,
    /// The ISP's name, printed on invoices.
    #[arg(
        long,
        global = true,
        env = "LASTMILE_ISP_NAME",
        default_value = "Lastmile ISP"
    )]
    isp_name: String,
    /// The ISP's postal address on invoices; lines separated by `;` or newlines.
    #[arg(long, global = true, env = "LASTMILE_ISP_ADDRESS", default_value = "")]
    isp_address: String,
    /// The ISP's tax (VAT) id on invoices.
    #[arg(long, global = true, env = "LASTMILE_ISP_TAX_ID")]
    isp_tax_id: Option<String>,
    /// Contact e-mail on invoices.
    #[arg(long, global = true, env = "LASTMILE_ISP_EMAIL")]
    isp_email: Option<String>,
    /// Contact phone on invoices.
    #[arg(long, global = true, env = "LASTMILE_ISP_PHONE")]
    isp_phone: Option<String>,
    #[command(subcommand)]
    command: Command,
}

/// `--downgrades`: when a cheaper plan starts to be billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Downgrades {
    /// From the next period: the current one was paid in advance at the higher price.
    NextPeriod,
    /// From the day of the change, like an upgrade.
    Immediate,
}

impl From<Downgrades> for lastmile_domain::billing::rating::DowngradeBilling {
    fn from(d: Downgrades) -> Self {
        match d {
            Downgrades::NextPeriod => Self::NextPeriod,
            Downgrades::Immediate => Self::Immediate,
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API and run the job workers until SIGINT/SIGTERM.
    Serve(ServeArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Billing.
    Billing {
        #[command(subcommand)]
        command: BillingCommand,
    },
    /// Dunning.
    Dunning {
        #[command(subcommand)]
        command: DunningCommand,
    },
    /// Load tools that measure the system on this machine.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
    /// Seed a realistic small ISP (plans, NAS, ~200 subscribers with months of history),
    /// print an admin token, then serve.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// How many subscribers to seed.
        #[arg(long, default_value_t = 200)]
        subscribers: usize,
    },
}

#[derive(clap::Args, Clone)]
struct ServeArgs {
    /// Address the HTTP API listens on.
    #[arg(long = "http", default_value = "127.0.0.1:8080")]
    http: String,
    /// How many days in the past a service event may be dated.
    #[arg(long, default_value_t = 90)]
    backdate_days: i64,
    /// Run billing daily in this process (disable on all but one node if you like; runs are
    /// idempotent either way).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    billing_scheduler: bool,
    #[command(flatten)]
    radius: radius::RadiusArgs,
}

#[derive(Subcommand)]
enum BillingCommand {
    /// Invoice every subscriber whose billing period starts by the as-of date (idempotent;
    /// resumes an interrupted run for the same date).
    Run {
        /// Billing date (YYYY-MM-DD, operator time zone); default today.
        #[arg(long)]
        as_of: Option<jiff::civil::Date>,
        /// Bill only this subscriber (id), in a run of its own.
        #[arg(long)]
        subscriber: Option<uuid::Uuid>,
    },
}

#[derive(Subcommand)]
enum DunningCommand {
    /// Walk every subscriber with an overdue invoice through their dunning policy (remind,
    /// suspend, terminate). Idempotent: a step is taken once per invoice.
    Run {
        /// Date of the pass (YYYY-MM-DD, operator time zone); default today.
        #[arg(long)]
        as_of: Option<jiff::civil::Date>,
    },
}

#[derive(Subcommand)]
enum BenchCommand {
    /// Seed N subscribers (1–2 services, a few timeline events each) into an empty database,
    /// then time a full billing run and a no-op rerun.
    Billing {
        #[arg(long, default_value_t = 100_000)]
        subscribers: usize,
        /// Billing date of the measured run.
        #[arg(long, default_value = "2026-06-01")]
        as_of: jiff::civil::Date,
        /// Concurrent seeding tasks (many: the writer groups their commits, one sync for many).
        #[arg(long, default_value_t = 512)]
        workers: usize,
        /// Only seed (to copy the database and measure it repeatedly with `--no-seed`).
        #[arg(long, conflicts_with = "no_seed")]
        seed_only: bool,
        /// Measure on a database seeded earlier with `--seed-only` (and not billed since).
        #[arg(long)]
        no_seed: bool,
    },
    /// The store's write path alone: accounting-shaped writes (a session upsert and an hourly
    /// usage upsert each), many in flight, each answered after its commit. Scratch tables,
    /// dropped afterwards.
    Store {
        #[arg(long, default_value_t = 200_000)]
        requests: usize,
        /// Requests waiting for their commit at any time (concurrent RADIUS requests).
        #[arg(long, default_value_t = 1024)]
        in_flight: usize,
        /// Distinct live sessions the requests update.
        #[arg(long, default_value_t = 10_000)]
        sessions: usize,
    },
    /// Seed N subscribers with every searchable field (name, e-mail, phone, logins, MACs,
    /// static addresses), their services, jobs, audit trail, a billing run and payments into
    /// an empty database; then serve the HTTP API on a loopback port in this process and time
    /// sequential GETs of each read endpoint (p50/p99).
    Api {
        #[arg(long, default_value_t = 100_000)]
        subscribers: usize,
        /// Concurrent seeding tasks (many: the writer groups their commits, one sync for many).
        #[arg(long, default_value_t = 512)]
        workers: usize,
        /// Timed requests per endpoint.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Only seed (to copy the database and measure it repeatedly with `--no-seed`).
        #[arg(long, conflicts_with = "no_seed")]
        seed_only: bool,
        /// Measure a database seeded earlier with `--seed-only`.
        #[arg(long)]
        no_seed: bool,
    },
    /// Seed N active services and a NAS at 127.0.0.1 into an empty database; then start this
    /// process's RADIUS server on loopback ports and load it: Access-Requests (PAP with
    /// Message-Authenticator) and accounting (answered after commit), requests/s and p50/p99,
    /// after the load tool's own ceiling against a trivial responder.
    Radius {
        #[arg(long, default_value_t = 100_000)]
        services: usize,
        /// Concurrent seeding tasks.
        #[arg(long, default_value_t = 512)]
        workers: usize,
        /// Client sockets of the load.
        #[arg(long, default_value_t = 16)]
        sockets: usize,
        /// Requests in flight per client socket (1 to 256).
        #[arg(long, default_value_t = 8)]
        depth: usize,
        /// Measured seconds per phase (after one second of warm-up).
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// What to measure.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "ceiling,access,accounting"
        )]
        phases: Vec<bench::RadiusPhase>,
        /// Only seed (to reuse the database with `--no-seed`).
        #[arg(long, conflicts_with = "no_seed")]
        seed_only: bool,
        /// Measure a database seeded earlier with `--seed-only`.
        #[arg(long)]
        no_seed: bool,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create an operator with an API token and print the token (shown once).
    Create {
        /// admin, billing, support, noc or readonly.
        #[arg(long)]
        role: Role,
        #[arg(long, default_value = "api")]
        name: String,
    },
}

#[tokio::main]
async fn main() -> Result<()> {
    use std::io::IsTerminal;
    // Logs go to stderr: stdout carries only what a command prints (e.g. a new token).
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,sqlx=warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let outcome = run(&cli).await;
    // Whatever the command's outcome, the store it opened is closed (SQLite's WAL folded
    // into the file).
    if let Some(store) = OPENED.get() {
        store.close().await;
    }
    outcome
}

/// The store this process opened (`open_store`), to close when the command is done.
static OPENED: std::sync::OnceLock<Arc<dyn Store>> = std::sync::OnceLock::new();

async fn run(cli: &Cli) -> Result<()> {
    match &cli.command {
        Command::Migrate => {
            let store = open_store(&cli.database_url).await?;
            println!("migrated ({})", store.backend());
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { role, name },
        } => {
            let app = build_app(cli, 90).await?;
            let (op, token) = app
                .create_operator(&Actor::system("cli"), name, *role)
                .await
                .context("creating the operator")?;
            eprintln!(
                "created operator {} ({}) with role {}",
                op.name, op.id, op.role
            );
            println!("{token}");
            Ok(())
        }
        Command::Billing {
            command: BillingCommand::Run { as_of, subscriber },
        } => {
            let app = build_app(cli, 90).await?;
            billing_run(&app, *as_of, subscriber.map(SubscriberId)).await
        }
        Command::Dunning {
            command: DunningCommand::Run { as_of },
        } => {
            let app = build_app(cli, 90).await?;
            let as_of = as_of.unwrap_or_else(|| app.billing_today());
            let r = app
                .run_dunning(as_of)
                .await
                .with_context(|| format!("dunning run for {as_of}"))?;
            for e in &r.errors {
                eprintln!("not dunned: subscriber {}: {}", e.subscriber_id, e.message);
            }
            println!(
                "dunning for {as_of}: {} subscribers overdue, {} reminders, {} services suspended, {} terminated, {} errors",
                r.subscribers_checked,
                r.reminders,
                r.suspensions,
                r.terminations,
                r.errors.len()
            );
            Ok(())
        }
        Command::Bench {
            command:
                BenchCommand::Billing {
                    subscribers,
                    as_of,
                    workers,
                    seed_only,
                    no_seed,
                },
        } => {
            let app = build_app(cli, 90).await?;
            bench::billing(
                &app,
                *subscribers,
                *as_of,
                (*workers).max(1),
                !*no_seed,
                !*seed_only,
            )
            .await
        }
        Command::Bench {
            command:
                BenchCommand::Store {
                    requests,
                    in_flight,
                    sessions,
                },
        } => bench::store(&cli.database_url, *requests, *in_flight, *sessions).await,
        Command::Bench {
            command:
                BenchCommand::Api {
                    subscribers,
                    workers,
                    requests,
                    seed_only,
                    no_seed,
                },
        } => {
            let app = build_app(cli, 90).await?;
            bench::api(
                &app,
                *subscribers,
                (*workers).max(1),
                *requests,
                !*no_seed,
                !*seed_only,
            )
            .await
        }
        Command::Bench {
            command:
                BenchCommand::Radius {
                    services,
                    workers,
                    sockets,
                    depth,
                    seconds,
                    phases,
                    seed_only,
                    no_seed,
                },
        } => {
            let app = build_app(cli, 90).await?;
            let load = bench::RadiusLoad {
                sockets: *sockets,
                depth: *depth,
                seconds: *seconds,
                phases: phases.clone(),
            };
            bench::radius(
                &app,
                *services,
                (*workers).max(1),
                load,
                !*no_seed,
                !*seed_only,
            )
            .await
        }
        Command::Serve(args) => {
            let app = build_app(cli, args.backdate_days).await?;
            serve(app, args).await
        }
        Command::Demo {
            serve: args,
            subscribers,
        } => {
            let app = build_app(cli, args.backdate_days).await?;
            demo::seed(&app, *subscribers).await?;
            let (_, token) = app
                .create_operator(&Actor::system("demo"), "demo admin", Role::Admin)
                .await
                .context("creating the demo operator")?;
            println!("\nLastmile demo is ready at http://{}", args.http);
            println!("Admin token: {token}\n");
            println!(
                "  curl -H 'Authorization: Bearer {token}' http://{}/api/v1/subscribers?limit=5\n",
                args.http
            );
            if let radius::Listen::On(auth) = args.radius.auth {
                let (user, password) = demo::RADIUS_LOGIN;
                let secret = demo::LOOPBACK_NAS_SECRET;
                let port = auth.port();
                println!("RADIUS: NAS 127.0.0.1 (secret {secret}), test login {user} / {password}");
                println!("  radtest {user} {password} 127.0.0.1:{port} 0 {secret}\n");
            }
            serve(app, args).await
        }
    }
}

async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
    let store = connect_store(url).await?;
    let _ = OPENED.set(store.clone());
    Ok(store)
}

async fn connect_store(url: &str) -> Result<Arc<dyn Store>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let s = lastmile_store_postgres::PgStore::connect(url)
            .await
            .with_context(|| "connecting to PostgreSQL")?;
        Ok(Arc::new(s))
    } else if url.starts_with("sqlite:") {
        let s = lastmile_store_sqlite::SqliteStore::connect(url)
            .await
            .with_context(|| format!("opening {url}"))?;
        Ok(Arc::new(s))
    } else {
        bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://…")
    }
}

fn secret_box(path: &PathBuf) -> Result<SecretBox> {
    if let Ok(hex) = std::env::var("LASTMILE_SECRET_KEY") {
        return SecretBox::from_hex(&hex).context("LASTMILE_SECRET_KEY");
    }
    if !path.exists() {
        create_key_file(path).with_context(|| format!("creating {}", path.display()))?;
    }
    let hex =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SecretBox::from_hex(&hex).with_context(|| format!("secret key in {}", path.display()))
}

/// Creates the key file atomically: written in full under a temporary name, then linked into
/// place. Two processes starting at once both succeed and end up with the same key.
fn create_key_file(path: &PathBuf) -> Result<()> {
    let key = SecretBox::generate_key()?;
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    write_private(&tmp, &key)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            tracing::warn!(path = %path.display(), "created a new secret key; back it up with the database");
            Ok(())
        }
        // Someone else created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

#[cfg(unix)]
fn write_private(path: &PathBuf, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(content.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &PathBuf, content: &str) -> std::io::Result<()> {
    std::fs::write(path, content)
}

async fn build_app(cli: &Cli, backdate_days: i64) -> Result<App> {
    if !(0..=3650).contains(&backdate_days) {
        bail!("--backdate-days must be between 0 and 3650");
    }
    let store = open_store(&cli.database_url).await?;
    let secrets = secret_box(&cli.secret_key_file)?;
    let time_zone = jiff::tz::TimeZone::get(&cli.time_zone)
        .with_context(|| format!("--time-zone {:?} is not an IANA time zone", cli.time_zone))?;
    if !(0..=365).contains(&cli.payment_terms_days) {
        bail!("--payment-terms-days must be between 0 and 365");
    }
    let config = AppConfig {
        backdate_window: jiff::SignedDuration::from_hours(24 * backdate_days),
        executor_kinds: Vec::new(),
        billing: lastmile_app::billing::BillingConfig {
            time_zone,
            payment_terms_days: cli.payment_terms_days,
            invoice_prefix: cli.invoice_prefix.clone(),
            batch_size: cli
                .billing_batch_size
                .unwrap_or(if store.backend() == "postgres" {
                    5000
                } else {
                    1000
                })
                .clamp(1, 10_000),
            issue_invoices: !cli.invoice_drafts,
            policy: lastmile_domain::billing::rating::BillingPolicy {
                downgrades: cli.downgrades.into(),
                ..Default::default()
            },
            credit_note_prefix: cli.credit_note_prefix.clone(),
            issuer: lastmile_app::billing::Issuer {
                name: cli.isp_name.clone(),
                address_lines: cli
                    .isp_address
                    .split([';', '\n'])
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_string)
                    .collect(),
                tax_id: cli.isp_tax_id.clone(),
                email: cli.isp_email.clone(),
                phone: cli.isp_phone.clone(),
            },
        },
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ok(App::new(store, clock, secrets, config))
}

async fn billing_run(
    app: &App,
    as_of: Option<jiff::civil::Date>,
    subscriber: Option<SubscriberId>,
) -> Result<()> {
    use std::io::{IsTerminal, Write};
    let as_of = as_of.unwrap_or_else(|| app.billing_today());
    let run = app
        .start_billing_run(as_of, subscriber)
        .await
        .with_context(|| format!("starting the billing run for {as_of}"))?;
    if run.cursor.is_some() {
        eprintln!("resuming billing run {} for {as_of}", run.id);
    } else {
        eprintln!("billing run {} for {as_of}", run.id);
    }
    let tty = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let report = move |r: &lastmile_domain::billing::invoice::BillingRun| {
        let line = format!(
            "{} subscribers, {} invoices, {} errors, {:.1}s",
            r.subscribers_processed,
            r.invoices_created,
            r.errors.len(),
            started.elapsed().as_secs_f64()
        );
        if tty {
            eprint!("\r\x1b[2K{line}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("progress: {line}");
        }
    };
    let done = app
        .execute_billing_run(run, &report)
        .await
        .with_context(|| format!("billing run for {as_of}"))?;
    if tty {
        eprintln!();
    }
    for e in &done.errors {
        eprintln!("not billed: subscriber {}: {}", e.subscriber_id, e.message);
    }
    println!(
        "billing run {} for {}: {} subscribers, {} invoices, {} errors",
        done.id,
        done.as_of,
        done.subscribers_processed,
        done.invoices_created,
        done.errors.len()
    );
    Ok(())
}

async fn serve(app: App, args: &ServeArgs) -> Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests, jobs and billing batches");
        let _ = stop_tx.send(true);
    });
    let radius = radius::start(&app, &args.radius, stop_rx.clone()).await?;

    let metrics = lastmile_http::metrics::Metrics::new();
    let job_metrics = metrics.clone();
    let mut runner = lastmile_jobs::Runner::new(app.store.clone(), app.clock.clone()).on_attempt(
        Arc::new(move |kind, outcome| {
            job_metrics
                .job_attempts
                .get_or_create(&lastmile_http::metrics::JobLabels {
                    kind: kind.to_string(),
                    outcome: outcome.to_string(),
                })
                .inc();
        }),
    );
    // CoA and Disconnect need the NAS secrets of a running RADIUS node; a node without
    // RADIUS leaves those jobs to one that has it.
    if let Some(node) = &radius {
        runner = radius::register_dynauth(runner, &app, node, &args.radius);
    }
    let waker = runner.waker();
    let mut config = (*app.config).clone();
    config.executor_kinds = runner.kinds();
    let app = App {
        config: Arc::new(config),
        ..app
    }
    .with_jobs_queued(Arc::new(move || waker.notify_one()));

    // Billing runs stop at their next batch boundary once shutdown begins (they resume).
    let app = app.with_stopping(stop_rx.clone());
    let workers = tokio::spawn(runner.run(stop_rx.clone()));
    let scheduler = args
        .billing_scheduler
        .then(|| tokio::spawn(billing_scheduler(app.clone(), stop_rx.clone())));
    let mut state = lastmile_http::AppState::new(app.clone(), metrics);
    if let Some(node) = &radius {
        state = state.with_radius(node.metrics.clone());
    }
    let background = state.clone();
    let listener = tokio::net::TcpListener::bind(&args.http)
        .await
        .with_context(|| format!("listening on {}", args.http))?;
    let addr = listener.local_addr().context("listening address")?;
    tracing::info!(%addr, database = app.store.backend(), "serving");
    let mut http_stop = stop_rx;
    axum::serve(listener, lastmile_http::router(state))
        .with_graceful_shutdown(async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        })
        .await
        .context("HTTP server")?;
    background.billing_runs_idle().await;
    workers.await.context("job runner")?;
    if let Some(node) = radius {
        node.wait().await;
    }
    if let Some(s) = scheduler {
        s.await.context("billing scheduler")?;
    }
    Ok(())
}

/// Runs billing once a day (operator time zone), at start-up and then whenever the date
/// changes. Runs are idempotent, so several nodes doing this at once invoice nothing twice.
/// Stopping mid-run is safe: each batch is atomic and the next run resumes.
async fn billing_scheduler(app: App, mut stop: watch::Receiver<bool>) {
    let mut done: Option<jiff::civil::Date> = None;
    loop {
        let today = app.billing_today();
        if done != Some(today) {
            // Not raced against shutdown: the run itself stops at its next batch boundary.
            let work = async {
                let run = app.start_billing_run(today, None).await?;
                let run = app.execute_billing_run(run, &|_| {}).await?;
                if run.status != BillingRunStatus::Completed {
                    return Ok(None);
                }
                // Dunning after billing: today's invoices are issued, today's payments in.
                let dunning = app.run_dunning(today).await?;
                tracing::info!(as_of = %today, reminders = dunning.reminders, suspensions = dunning.suspensions, terminations = dunning.terminations, errors = dunning.errors.len(), "daily dunning done");
                Ok::<_, lastmile_app::AppError>(Some(run))
            };
            match work.await {
                Ok(Some(run)) => {
                    tracing::info!(as_of = %today, invoices = run.invoices_created, errors = run.errors.len(), "daily billing run done");
                    done = Some(today);
                }
                Ok(None) => break,
                Err(e) => tracing::error!(error = %e, "daily billing run failed; retrying later"),
            }
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => break,
            _ = tokio::time::sleep(std::time::Duration::from_secs(600)) => {}
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
