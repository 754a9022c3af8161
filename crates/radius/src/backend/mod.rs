//! The RADIUS server over Lastmile's store: what `lastmile serve` runs.
//!
//! - [`DirectoryFeed`] loads the directory at start and follows the store's change feed, so
//!   an API change reaches Access-Request answers within a poll interval, on every node;
//! - [`AccountingWriter`] is the accounting sink: batched, answered after commit;
//! - a sweeper closes sessions silent for too long (a lost Stop must not keep a session
//!   open, nor lock its subscriber out);
//! - the simultaneous-use counter is seeded from the store's open sessions.
//!
//! [`RadiusNode::start`] wires them together.

mod accounting_writer;
mod directory_feed;

pub use accounting_writer::{to_event, AccountingWriter, Conversion, WriterConfig};
pub use directory_feed::{auth_record, nas_entry, DirectoryFeed};

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lastmile_app::SecretBox;
use lastmile_store::radius::SessionFilter;
use lastmile_store::{Page, Store, StoreError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::directory::Directory;
use crate::metrics::RadiusMetrics;
use crate::server::{RadiusServer, ServerConfig, ServerParts};
use crate::sessions::InMemorySessions;

/// How a node runs.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// Sockets and caches.
    pub server: ServerConfig,
    /// How often the change feed is read.
    pub poll_interval: Duration,
    /// Accounting batches.
    pub writer: WriterConfig,
    /// How often stale sessions are looked for.
    pub sweep_interval: Duration,
    /// The simultaneous-use count forgets a session silent for its NAS's stale-session window
    /// (as the store's sweep does); this many default interim intervals is the window of a
    /// NAS sending no interim updates, and of sessions loaded at start until their NAS speaks.
    pub stale_multiplier: u32,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            server: ServerConfig::default(),
            poll_interval: Duration::from_millis(250),
            writer: WriterConfig::default(),
            sweep_interval: Duration::from_secs(60),
            stale_multiplier: 3,
        }
    }
}

/// Why the node did not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The directory or the sessions could not be loaded.
    #[error("loading the RADIUS directory: {0}")]
    Store(#[from] StoreError),
    /// A port could not be bound.
    #[error("binding the RADIUS ports: {0}")]
    Bind(#[from] io::Error),
}

/// A running RADIUS node.
#[derive(Debug)]
pub struct RadiusNode {
    /// The directory it answers from (the CoA executors share it).
    pub directory: Arc<Directory>,
    /// Its counters and reject log.
    pub metrics: Arc<RadiusMetrics>,
    /// The bound authentication address.
    pub auth_addr: Option<SocketAddr>,
    /// The bound accounting address.
    pub acct_addr: Option<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
}

/// Open sessions per service, for simultaneous use, as the store has them.
async fn seed_sessions(store: &dyn Store, counter: &InMemorySessions) -> Result<usize, StoreError> {
    let filter = SessionFilter {
        active: Some(true),
        ..SessionFilter::default()
    };
    let mut after = None;
    let mut n = 0;
    loop {
        let page = store
            .list_sessions(
                &filter,
                Page {
                    after,
                    limit: 5_000,
                },
            )
            .await?;
        let Some(last) = page.last() else {
            return Ok(n);
        };
        after = Some(last.id.0);
        n += page.len();
        counter.seed(
            page.into_iter()
                .filter_map(|s| Some((s.service_id?, s.nas_id, s.acct_session_id))),
        );
    }
}

/// Closes, per NAS, the sessions silent for the NAS's `stale_session_multiplier` interim
/// intervals.
async fn sweep_stale(store: &dyn Store, directory: &Directory) {
    let now = Timestamp::now();
    for nas in directory.nas_entries() {
        if nas.interim_interval == 0 {
            continue; // no interim updates: silence means nothing
        }
        let multiplier = nas.stale_session_multiplier.max(1);
        let idle =
            SignedDuration::from_secs(i64::from(nas.interim_interval) * i64::from(multiplier));
        let Ok(since) = now.checked_sub(idle) else {
            continue;
        };
        match store.close_stale_sessions(nas.id, since).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(nas = %nas.name, closed = n, "stale RADIUS sessions closed"),
            Err(e) => tracing::warn!(nas = %nas.name, error = %e, "stale session sweep failed"),
        }
    }
}

impl RadiusNode {
    /// Loads the directory and the open sessions, binds the ports and starts serving until
    /// `shutdown` turns true.
    pub async fn start(
        store: Arc<dyn Store>,
        secrets: SecretBox,
        config: NodeConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Self, StartError> {
        let directory = Arc::new(Directory::new());
        let feed = DirectoryFeed::load(store.clone(), secrets, directory.clone()).await?;
        let stale_after = Duration::from_secs(
            u64::from(crate::directory::DEFAULT_INTERIM_INTERVAL)
                * u64::from(config.stale_multiplier.max(1)),
        );
        let sessions = Arc::new(InMemorySessions::new(stale_after));
        let open = seed_sessions(store.as_ref(), &sessions).await?;
        tracing::info!(open, "RADIUS open sessions loaded");
        let metrics = Arc::new(RadiusMetrics::new());
        let (writer, writer_task) = AccountingWriter::spawn(store.clone(), config.writer);
        let server = RadiusServer::bind(
            config.server.clone(),
            ServerParts {
                directory: directory.clone(),
                sink: writer,
                sessions: sessions.clone(),
                metrics: metrics.clone(),
            },
        )?;
        let (auth_addr, acct_addr) = (server.auth_local_addr(), server.acct_local_addr());
        let mut tasks = Vec::new();
        let stop = shutdown.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = server.run(stop).await {
                tracing::error!(error = %e, "RADIUS server failed");
            }
            // The server (and with it the last writer handle) is gone: let the writer drain.
            if let Err(e) = writer_task.await {
                tracing::error!(error = %e, "RADIUS accounting writer failed");
            }
        }));
        tasks.push(tokio::spawn(
            feed.follow(config.poll_interval, shutdown.clone()),
        ));
        let (dir, mut stop) = (directory.clone(), shutdown);
        let sweep_every = config.sweep_interval;
        tasks.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = stop.changed() => {}
                    _ = tick.tick() => {}
                }
                if *stop.borrow() {
                    return;
                }
                sweep_stale(store.as_ref(), &dir).await;
                sessions.prune(std::time::Instant::now());
            }
        }));
        Ok(RadiusNode {
            directory,
            metrics,
            auth_addr,
            acct_addr,
            tasks,
        })
    }

    /// Waits for every part to stop (after shutdown): the accounting in flight is committed
    /// and answered first.
    pub async fn wait(self) {
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "RADIUS task failed");
            }
        }
    }
}
