//! A running server on 127.0.0.1 with a controllable accounting sink, for the integration
//! tests. Waits are bounded by [`WAIT`] as a failure guard only: every test synchronises on
//! replies and on the sink's channel, never on time.

#![allow(dead_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use lastmile_domain::ids::{NasId, ServiceId, SubscriberId};
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::service::{AccessKind, ServiceStatus};
use lastmile_radius::client::{self, Client};
use lastmile_radius::{
    AccountingRecord, AccountingSink, AuthRecord, Directory, InMemorySessions, NasEntry,
    RadiusMetrics, RadiusServer, ServerConfig, ServerParts, SinkError, Tier,
};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinHandle;

pub const SECRET: &[u8] = b"testing123";
/// A failure guard, not a synchronisation.
pub const WAIT: Duration = Duration::from_secs(5);

/// Passes every record to the test, optionally waits for the test's go, then succeeds or
/// fails as told.
pub struct TestSink {
    tx: mpsc::UnboundedSender<AccountingRecord>,
    /// When set, `record` waits for a permit per call.
    pub gate: Option<Arc<Semaphore>>,
    pub fail: AtomicBool,
    /// Calls that returned Ok.
    pub returned_ok: AtomicUsize,
}

impl AccountingSink for TestSink {
    async fn record(&self, record: AccountingRecord) -> Result<(), SinkError> {
        let _ = self.tx.send(record);
        if let Some(gate) = &self.gate {
            if let Ok(p) = gate.acquire().await {
                p.forget();
            }
        }
        if self.fail.load(Ordering::SeqCst) {
            return Err(SinkError::backend("disk on fire"));
        }
        self.returned_ok.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

pub struct Harness {
    pub auth: SocketAddr,
    pub acct: SocketAddr,
    pub directory: Arc<Directory>,
    pub metrics: Arc<RadiusMetrics>,
    pub sessions: Arc<InMemorySessions>,
    pub sink: Arc<TestSink>,
    pub records: mpsc::UnboundedReceiver<AccountingRecord>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<io::Result<()>>,
}

#[derive(Clone, Copy, Default)]
pub struct Options {
    pub gated: bool,
    pub failing: bool,
    pub sockets_per_port: usize,
}

impl Harness {
    pub async fn start(nas: Vec<NasEntry>, services: Vec<AuthRecord>) -> Harness {
        Harness::start_with(nas, services, Options::default()).await
    }

    pub async fn start_with(
        nas: Vec<NasEntry>,
        services: Vec<AuthRecord>,
        opts: Options,
    ) -> Harness {
        let directory = Arc::new(Directory::new());
        directory.replace_all(nas, services);
        let metrics = Arc::new(RadiusMetrics::new());
        let sessions = Arc::new(InMemorySessions::default());
        let (tx, records) = mpsc::unbounded_channel();
        let sink = Arc::new(TestSink {
            tx,
            gate: opts.gated.then(|| Arc::new(Semaphore::new(0))),
            fail: AtomicBool::new(opts.failing),
            returned_ok: AtomicUsize::new(0),
        });
        let config = ServerConfig {
            auth_addr: Some("127.0.0.1:0".parse().unwrap()),
            acct_addr: Some("127.0.0.1:0".parse().unwrap()),
            // One socket: datagrams from every client are then handled in arrival order,
            // which the tests use to know a dropped packet has been dealt with.
            sockets_per_port: opts.sockets_per_port.max(1),
            ..ServerConfig::default()
        };
        let server = RadiusServer::bind(
            config,
            ServerParts {
                directory: directory.clone(),
                sink: sink.clone(),
                sessions: sessions.clone(),
                metrics: metrics.clone(),
            },
        )
        .unwrap();
        let auth = server.auth_local_addr().unwrap();
        let acct = server.acct_local_addr().unwrap();
        let (shutdown, rx) = watch::channel(false);
        let task = tokio::spawn(server.run(rx));
        Harness {
            auth,
            acct,
            directory,
            metrics,
            sessions,
            sink,
            records,
            shutdown,
            task,
        }
    }

    /// Lets one gated sink call proceed.
    pub fn release(&self) {
        if let Some(g) = &self.sink.gate {
            g.add_permits(1);
        }
    }

    pub async fn next_record(&mut self) -> AccountingRecord {
        tokio::time::timeout(WAIT, self.records.recv())
            .await
            .expect("the sink was not called")
            .expect("sink channel closed")
    }

    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(true);
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("server did not stop")
            .unwrap()
            .unwrap();
    }
}

pub fn nas_at(ip: [u8; 4], name: &str, vendor: VendorProfile) -> NasEntry {
    NasEntry::new(
        NasId::generate(),
        name,
        IpAddr::from(ip),
        SECRET.to_vec(),
        vendor,
    )
}

pub fn service(username: &str, password: &str) -> AuthRecord {
    AuthRecord {
        service_id: ServiceId::generate(),
        subscriber_id: SubscriberId::generate(),
        status: ServiceStatus::Active,
        username: Some(username.into()),
        password: Some(password.into()),
        mac: None,
        circuit_id: None,
        access_kind: AccessKind::Pppoe,
        static_ip: None,
        ip_pool: None,
        nas_id: None,
        tier: Tier {
            download_kbps: 20_000,
            upload_kbps: 5_000,
            burst: None,
            policy_name: "home-20".into(),
        },
        simultaneous_use: 1,
    }
}

/// Sends a Status-Server and waits for its answer: every datagram this client (or any client
/// on the same single server socket) sent before has then been handled.
pub async fn sync(client: &mut Client, id: u8) {
    let mut buf = Vec::new();
    let req = client::status_server(&mut buf, id, [id; 16], SECRET).to_vec();
    let reply = client
        .exchange(&req, WAIT)
        .await
        .expect("Status-Server unanswered");
    let p = client::verify_reply(&reply, &req, SECRET, true).unwrap();
    assert_eq!(p.identifier(), id, "replies came out of order");
}
