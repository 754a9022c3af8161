//! `lastmile`: the one binary. `serve` runs the HTTP API and the job workers in one process;
//! `migrate`, `token create` and `demo` are the operator's tools.

mod demo;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use lastmile_app::{App, AppConfig, Clock, SecretBox, SystemClock};
use lastmile_domain::audit::Actor;
use lastmile_domain::auth::Role;
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
    #[command(subcommand)]
    command: Command,
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
    match &cli.command {
        Command::Migrate => {
            let store = open_store(&cli.database_url).await?;
            println!("migrated ({})", store.backend());
            Ok(())
        }
        Command::Token {
            command: TokenCommand::Create { role, name },
        } => {
            let app = build_app(&cli, 90).await?;
            let (op, token) = app
                .create_operator(&Actor::system("cli"), name, *role)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            eprintln!(
                "created operator {} ({}) with role {}",
                op.name, op.id, op.role
            );
            println!("{token}");
            Ok(())
        }
        Command::Serve(args) => {
            let app = build_app(&cli, args.backdate_days).await?;
            serve(app, args).await
        }
        Command::Demo {
            serve: args,
            subscribers,
        } => {
            let app = build_app(&cli, args.backdate_days).await?;
            demo::seed(&app, *subscribers).await?;
            let (_, token) = app
                .create_operator(&Actor::system("demo"), "demo admin", Role::Admin)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("\nLastmile demo is ready at http://{}", args.http);
            println!("Admin token: {token}\n");
            println!(
                "  curl -H 'Authorization: Bearer {token}' http://{}/api/v1/subscribers?limit=5\n",
                args.http
            );
            serve(app, args).await
        }
    }
}

async fn open_store(url: &str) -> Result<Arc<dyn Store>> {
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
        let key = SecretBox::generate_key()?;
        write_private(path, &key).with_context(|| format!("creating {}", path.display()))?;
        tracing::warn!(path = %path.display(), "created a new secret key; back it up with the database");
    }
    let hex =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    SecretBox::from_hex(&hex).with_context(|| format!("secret key in {}", path.display()))
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
    let config = AppConfig {
        backdate_window: jiff::SignedDuration::from_hours(24 * backdate_days),
        executor_kinds: Vec::new(),
    };
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    Ok(App::new(store, clock, secrets, config))
}

async fn serve(app: App, args: &ServeArgs) -> Result<()> {
    let metrics = lastmile_http::metrics::Metrics::new();
    let job_metrics = metrics.clone();
    let runner = lastmile_jobs::Runner::new(app.store.clone(), app.clock.clone()).on_attempt(
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
    let waker = runner.waker();
    let mut config = (*app.config).clone();
    config.executor_kinds = runner.kinds();
    let app = App {
        config: Arc::new(config),
        ..app
    }
    .with_jobs_queued(Arc::new(move || waker.notify_one()));

    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests and jobs");
        let _ = stop_tx.send(true);
    });
    let workers = tokio::spawn(runner.run(stop_rx.clone()));
    let state = lastmile_http::AppState {
        app: app.clone(),
        metrics,
    };
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
    workers.await.context("job runner")?;
    Ok(())
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
