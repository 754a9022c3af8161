//! The UDP server: sockets, one task per socket, graceful shutdown.
//!
//! Each port gets `sockets_per_port` sockets bound with `SO_REUSEPORT`, so the kernel spreads
//! NASes over them by address and port (one NAS's packets always reach the same socket).
//! Each socket has one task with its own receive and reply buffers, reused for every packet.
//! Access-Requests are decided and answered inside that task, without awaiting anything but
//! the send. Accounting-Requests are handed to a task of their own, at most
//! `max_in_flight_accounting` at a time, which awaits the sink and only then answers.
//!
//! Shutdown (the watch turning `true`): every socket task stops receiving, then `run` waits
//! for the accounting writes in flight and returns. Requests that arrive meanwhile go
//! unanswered; the NAS retransmits them to whichever server is up.

mod access;
mod accounting;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lastmile_radius_codec::MAX_PACKET_LEN;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

use crate::accounting::AccountingSink;
use crate::directory::Directory;
use crate::metrics::{DropReason, RadiusMetrics};
use crate::ratelog::LogLimiter;
use crate::retransmit::RetransmitCache;
use crate::sessions::SessionCounter;

/// Where and how to listen.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Authentication port (1812); `None` serves no authentication.
    pub auth_addr: Option<SocketAddr>,
    /// Accounting port (1813); `None` serves no accounting.
    pub acct_addr: Option<SocketAddr>,
    /// Sockets per port, bound with `SO_REUSEPORT` (at least 1). One per core is plenty.
    pub sockets_per_port: usize,
    /// Accounting requests awaiting the sink at once; past that, receiving pauses (the
    /// kernel buffer absorbs the burst, then drops, and the NASes retransmit).
    pub max_in_flight_accounting: usize,
    /// Retransmission cache entries per port.
    pub retransmit_capacity: usize,
    /// How long a reply stays in the retransmission cache.
    pub retransmit_ttl: Duration,
    /// `SO_RCVBUF` to ask for (the kernel may cap it at `net.core.rmem_max`).
    pub recv_buffer_bytes: Option<usize>,
}

impl Default for ServerConfig {
    /// Ports 1812 and 1813 on every IPv4 address, one socket per core.
    fn default() -> Self {
        ServerConfig {
            auth_addr: Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1812))),
            acct_addr: Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 1813))),
            sockets_per_port: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_in_flight_accounting: 1024,
            retransmit_capacity: RetransmitCache::DEFAULT_CAPACITY,
            retransmit_ttl: RetransmitCache::DEFAULT_TTL,
            recv_buffer_bytes: Some(4 << 20),
        }
    }
}

/// What the server works with besides sockets.
#[derive(Debug)]
pub struct ServerParts<A, S> {
    /// NASes and services.
    pub directory: Arc<Directory>,
    /// Where accounting records go.
    pub sink: A,
    /// Live sessions per service.
    pub sessions: S,
    /// Counters and the reject log.
    pub metrics: Arc<RadiusMetrics>,
}

/// State every socket task shares.
struct Shared<A, S> {
    directory: Arc<Directory>,
    sink: A,
    sessions: S,
    metrics: Arc<RadiusMetrics>,
    log: LogLimiter,
    auth_cache: RetransmitCache,
    acct_cache: RetransmitCache,
    acct_permits: Arc<Semaphore>,
}

impl<A, S> Shared<A, S> {
    /// Counts a drop and logs it, at most once per (address, reason) per 10 s.
    /// `detail` is formatted only when logged: a flood of bad packets costs no allocation.
    fn drop_packet(
        &self,
        src: SocketAddr,
        nas: Option<&str>,
        reason: DropReason,
        detail: &dyn core::fmt::Display,
    ) {
        self.metrics.count_drop(nas, reason);
        if self.log.allow(src.ip(), reason.as_str(), Instant::now()) {
            let hint = match reason {
                DropReason::BadAuthenticator => "check the shared secret on both sides",
                DropReason::UnknownNas => "add the NAS, or check its source address",
                _ => "",
            };
            tracing::warn!(
                source = %src,
                nas = nas.unwrap_or(crate::metrics::UNKNOWN_NAS),
                reason = reason.as_str(),
                detail = %detail,
                hint,
                "RADIUS datagram dropped (further drops like it are counted, not logged, for 10 s)"
            );
        }
    }
}

/// A bound RADIUS server, ready to [`run`](Self::run).
pub struct RadiusServer<A, S> {
    shared: Arc<Shared<A, S>>,
    auth: Vec<std::net::UdpSocket>,
    acct: Vec<std::net::UdpSocket>,
    auth_local: Option<SocketAddr>,
    acct_local: Option<SocketAddr>,
    max_in_flight: u32,
}

impl<A, S> core::fmt::Debug for RadiusServer<A, S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RadiusServer")
            .field("auth", &self.auth_local)
            .field("acct", &self.acct_local)
            .field("sockets_per_port", &self.auth.len().max(self.acct.len()))
            .finish()
    }
}

fn bind_one(addr: SocketAddr, reuse_port: bool, recv_buf: Option<usize>) -> io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    if let Some(bytes) = recv_buf {
        // Best effort: an unprivileged process gets at most net.core.rmem_max.
        if let Err(e) = socket.set_recv_buffer_size(bytes) {
            tracing::debug!(error = %e, "could not set SO_RCVBUF");
        }
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    Ok(socket)
}

/// Binds `count` sockets to `addr`; with port 0 the first one picks the port and the others
/// join it.
fn bind_port(
    addr: SocketAddr,
    count: usize,
    recv_buf: Option<usize>,
) -> io::Result<(SocketAddr, Vec<std::net::UdpSocket>)> {
    let count = count.max(1);
    let first = bind_one(addr, count > 1, recv_buf)?;
    let local = first
        .local_addr()?
        .as_socket()
        .ok_or_else(|| io::Error::other("bound socket has no IP address"))?;
    let mut sockets = vec![std::net::UdpSocket::from(first)];
    for _ in 1..count {
        sockets.push(bind_one(local, true, recv_buf)?.into());
    }
    Ok((local, sockets))
}

/// Resolves when `shutdown` is (or turns) true, or its sender is gone.
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        if shutdown.changed().await.is_err() {
            return;
        }
    }
}

/// Fresh random octets from the OS.
pub(crate) fn random<const N: usize>() -> Option<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::getrandom(&mut out).ok()?;
    Some(out)
}

impl<A: AccountingSink, S: SessionCounter> RadiusServer<A, S> {
    /// Binds the configured ports. Sockets are registered with the runtime only in
    /// [`run`](Self::run), so this may be called outside one.
    pub fn bind(config: ServerConfig, parts: ServerParts<A, S>) -> io::Result<Self> {
        let n = config.sockets_per_port.max(1);
        let (auth_local, auth) = match config.auth_addr {
            Some(a) => {
                let (l, s) = bind_port(a, n, config.recv_buffer_bytes)?;
                (Some(l), s)
            }
            None => (None, Vec::new()),
        };
        let (acct_local, acct) = match config.acct_addr {
            Some(a) => {
                let (l, s) = bind_port(a, n, config.recv_buffer_bytes)?;
                (Some(l), s)
            }
            None => (None, Vec::new()),
        };
        let max_in_flight = u32::try_from(config.max_in_flight_accounting.max(1))
            .unwrap_or(u32::MAX)
            .min(Semaphore::MAX_PERMITS as u32);
        let shared = Shared {
            directory: parts.directory,
            sink: parts.sink,
            sessions: parts.sessions,
            metrics: parts.metrics,
            log: LogLimiter::default(),
            auth_cache: RetransmitCache::new(config.retransmit_capacity, config.retransmit_ttl),
            acct_cache: RetransmitCache::new(config.retransmit_capacity, config.retransmit_ttl),
            acct_permits: Arc::new(Semaphore::new(max_in_flight as usize)),
        };
        Ok(RadiusServer {
            shared: Arc::new(shared),
            auth,
            acct,
            auth_local,
            acct_local,
            max_in_flight,
        })
    }

    /// The authentication address actually bound (the port, when 0 was asked for).
    pub fn auth_local_addr(&self) -> Option<SocketAddr> {
        self.auth_local
    }

    /// The accounting address actually bound.
    pub fn acct_local_addr(&self) -> Option<SocketAddr> {
        self.acct_local
    }

    /// Serves until `shutdown` turns true, then finishes the accounting writes in flight and
    /// returns. Must run inside a tokio runtime with IO and time enabled.
    pub async fn run(self, shutdown: watch::Receiver<bool>) -> io::Result<()> {
        let mut tasks = JoinSet::new();
        for socket in self.auth {
            let socket = UdpSocket::from_std(socket)?;
            tasks.spawn(auth_loop(self.shared.clone(), socket, shutdown.clone()));
        }
        for socket in self.acct {
            let socket = Arc::new(UdpSocket::from_std(socket)?);
            tasks.spawn(acct_loop(self.shared.clone(), socket, shutdown.clone()));
        }
        tracing::info!(auth = ?self.auth_local, acct = ?self.acct_local, "RADIUS server listening");
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(error = %e, "RADIUS socket task failed");
            }
        }
        // Every receive loop has stopped; taking every permit waits for the writes in flight.
        let _all = self
            .shared
            .acct_permits
            .acquire_many(self.max_in_flight)
            .await;
        tracing::info!("RADIUS server stopped");
        Ok(())
    }
}

/// Receives one datagram, or `None` at shutdown. Receive errors are logged (rate-limited)
/// and skipped.
async fn receive<A, S>(
    shared: &Shared<A, S>,
    socket: &UdpSocket,
    buf: &mut [u8],
    shutdown: &mut watch::Receiver<bool>,
) -> Option<(usize, SocketAddr)> {
    loop {
        tokio::select! {
            biased;
            () = stopped(shutdown) => return None,
            r = socket.recv_from(buf) => match r {
                Ok(got) => return Some(got),
                Err(e) => {
                    let any = Ipv4Addr::UNSPECIFIED.into();
                    if shared.log.allow(any, "receive_error", Instant::now()) {
                        tracing::warn!(error = %e, "RADIUS receive failed");
                    }
                    tokio::task::yield_now().await;
                }
            },
        }
    }
}

/// Per-task buffers, allocated once.
pub(crate) struct Buffers {
    /// The reply being built (or copied out of the cache).
    pub reply: Vec<u8>,
    /// Scratch for MS-CHAP-Error values.
    pub scratch: Vec<u8>,
}

impl Buffers {
    fn new() -> Self {
        Buffers {
            reply: Vec::with_capacity(MAX_PACKET_LEN),
            scratch: Vec::with_capacity(256),
        }
    }
}

async fn auth_loop<A: AccountingSink, S: SessionCounter>(
    shared: Arc<Shared<A, S>>,
    socket: UdpSocket,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    let mut out = Buffers::new();
    while let Some((n, src)) = receive(&shared, &socket, &mut buf, &mut shutdown).await {
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        if let Some(nas) = shared.handle_access(datagram, src, &mut out) {
            if let Err(e) = socket.send_to(&out.reply, src).await {
                shared.drop_packet(src, Some(&nas.name), DropReason::SendFailed, &e);
            }
        }
    }
}

async fn acct_loop<A: AccountingSink, S: SessionCounter>(
    shared: Arc<Shared<A, S>>,
    socket: Arc<UdpSocket>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; MAX_PACKET_LEN];
    let mut out = Buffers::new();
    while let Some((n, src)) = receive(&shared, &socket, &mut buf, &mut shutdown).await {
        let Some(datagram) = buf.get(..n) else {
            continue;
        };
        match shared.prepare_accounting(datagram, src, &mut out) {
            accounting::Step::Done => {}
            accounting::Step::Send(nas) => {
                if let Err(e) = socket.send_to(&out.reply, src).await {
                    shared.drop_packet(src, Some(&nas.name), DropReason::SendFailed, &e);
                }
            }
            accounting::Step::Record(pending) => {
                let permit = tokio::select! {
                    biased;
                    () = stopped(&mut shutdown) => {
                        shared.acct_cache.abandon(&pending.key);
                        break;
                    }
                    p = shared.acct_permits.clone().acquire_owned() => p,
                };
                let Ok(permit) = permit else {
                    // The semaphore is never closed; should it be, stop like at shutdown.
                    shared.acct_cache.abandon(&pending.key);
                    break;
                };
                let shared = shared.clone();
                let socket = socket.clone();
                tokio::spawn(async move {
                    shared.finish_accounting(*pending, &socket).await;
                    drop(permit);
                });
            }
        }
    }
}
