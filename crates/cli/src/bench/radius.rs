//! `lastmile bench radius`: the RADIUS server of this process over loopback, on the store
//! `--database-url` names, with N services: Access-Requests (PAP with Message-Authenticator,
//! random services) and accounting (Start, then Interim-Updates with growing counters, each
//! answered after its commit); requests/s, p50 and p99. And the load tool's own ceiling
//! against a responder that answers without looking, which must be far above both.
//!
//! The load: `sockets` client sockets, each keeping `depth` requests in flight (one per
//! Identifier), a new request as soon as one is answered. Every request is fresh (its own
//! authenticator), so nothing is answered from the retransmission cache.

use super::*;
use anyhow::{bail, Context, Result};
use lastmile_api_types::{
    CreateNas, CreatePlan, CreateService, CreateSubscriber, PlanTermsBody, ServiceActionBody,
};
use lastmile_app::services::ServiceAction;
use lastmile_app::App;
use lastmile_domain::audit::Actor;
use lastmile_domain::nas::VendorProfile;
use lastmile_radius::backend::{NodeConfig, RadiusNode};
use lastmile_radius::client::{self, AccessRequest, AccountingRequest};
use lastmile_radius::ServerConfig;
use lastmile_radius_codec::acct::AcctStatusType;
use lastmile_radius_codec::{Authenticator, Code};
use lastmile_store::Page;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::watch;

const SECRET: &str = "bench-radius-secret";
const NAS_NAME: &str = "bench-loopback";

/// How hard to push.
#[derive(Clone, Debug)]
pub struct Load {
    pub sockets: usize,
    pub depth: usize,
    pub seconds: u64,
    pub phases: Vec<Phase>,
}

/// What to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Phase {
    /// The load tool against a responder that answers without looking.
    Ceiling,
    /// Access-Requests.
    Access,
    /// Accounting.
    Accounting,
}

fn login(i: usize) -> (String, String) {
    (format!("rb{i:07}"), format!("pw-{i:07}"))
}

/// `seed`: seed an empty database first; `measure`: then run the load.
pub async fn radius(
    app: &App,
    services: usize,
    workers: usize,
    load: Load,
    seed: bool,
    measure: bool,
) -> Result<()> {
    if seed {
        seed_radius(app, services, workers).await?;
    }
    if measure {
        measure_radius(app, services, load).await?;
    }
    Ok(())
}

async fn seed_radius(app: &App, services: usize, workers: usize) -> Result<()> {
    let nas = app
        .store
        .list_nas(Page {
            after: None,
            limit: 1000,
        })
        .await?;
    if nas.iter().any(|n| n.name == NAS_NAME) {
        bail!("this database is seeded already: pass --no-seed, or a fresh --database-url");
    }
    let actor = Actor::system("bench");
    app.create_nas(
        &actor,
        CreateNas {
            name: NAS_NAME.into(),
            ip: "127.0.0.1".into(),
            secret: SECRET.into(),
            vendor: VendorProfile::Mikrotik,
            coa_port: None,
            api_url: None,
            api_username: None,
            api_password: None,
            require_message_authenticator: None,
            interim_interval_secs: None,
            session_timeout_secs: None,
            suspended_action: None,
            stale_session_multiplier: None,
        },
    )
    .await
    .map_err(err)?;
    let mut plans = Vec::new();
    for (i, rate) in [25_000u32, 50_000, 100_000, 250_000]
        .into_iter()
        .enumerate()
    {
        let p = app
            .create_plan(
                &actor,
                CreatePlan {
                    code: format!("RB-{i}"),
                    name: format!("Radius bench {i}"),
                    terms: PlanTermsBody {
                        download_kbps: rate,
                        upload_kbps: rate / 5,
                        burst: None,
                        price_minor: 2_000 + 1_000 * i as i64,
                        currency: "EUR".into(),
                        billing_interval: None,
                        setup_fee_minor: None,
                        data_cap_bytes: None,
                        cap_policy: None,
                        free_window: None,
                        contract_months: None,
                        early_termination_fee_minor: None,
                        tax_class: None,
                    },
                },
            )
            .await
            .map_err(err)?;
        plans.push(p.id);
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers.max(1) {
        let (app, actor, plans) = (app.clone(), actor.clone(), plans.clone());
        tasks.push(tokio::spawn(async move {
            for i in (w..services).step_by(workers.max(1)) {
                let sub = app
                    .create_subscriber(
                        &actor,
                        CreateSubscriber {
                            number: None,
                            name: format!("Radius Bench {i}"),
                            email: None,
                            phone: None,
                            billing_address: None,
                            currency: "EUR".into(),
                            tax_zone: None,
                            dunning_policy: None,
                            billing_day: None,
                            custom_fields: None,
                        },
                    )
                    .await
                    .map_err(err)?;
                let (username, password) = login(i);
                let svc = app
                    .create_service(
                        &actor,
                        CreateService {
                            subscriber_id: sub.id.0,
                            plan_id: plans[i % plans.len()].0,
                            access_kind: None,
                            username: Some(username),
                            password: Some(password),
                            mac_address: None,
                            circuit_id: None,
                            static_ip: None,
                            ip_pool: None,
                            nas_id: None,
                            service_address: None,
                            simultaneous_use: None,
                        },
                    )
                    .await
                    .map_err(err)?;
                app.service_action(
                    &actor,
                    svc.id,
                    ServiceAction::Activate,
                    ServiceActionBody::default(),
                )
                .await
                .map_err(err)?;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await.context("seeding task")??;
    }
    println!(
        "seeded {services} active services in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// What the load sends.
#[derive(Clone, Copy)]
enum Traffic {
    /// Anything; replies are counted, not checked (the responder does not sign).
    Ceiling,
    /// PAP Access-Requests with Message-Authenticator for random services; Accept expected.
    Access,
    /// Accounting: each slot walks its sessions, a Start first, then Interim-Updates.
    Accounting,
}

#[derive(Default)]
struct Stats {
    answered: u64,
    unexpected: u64,
    lost: u64,
    micros: Vec<u32>,
}

/// A session a slot reports on.
struct Session {
    id: String,
    user: usize,
    started: bool,
    octets: u64,
}

struct Slot {
    sent_at: Option<Instant>,
    request: Vec<u8>,
    sessions: Vec<Session>,
    next_session: usize,
}

/// A xorshift generator: the load must not spend its time in a syscall per request.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

fn authenticator(rng: &mut Rng) -> Authenticator {
    let mut a = [0u8; 16];
    a[..8].copy_from_slice(&rng.next().to_le_bytes());
    a[8..].copy_from_slice(&rng.next().to_le_bytes());
    a
}

fn build(traffic: Traffic, id: u8, slot: &mut Slot, rng: &mut Rng, services: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    let secret = SECRET.as_bytes();
    let encoded = match traffic {
        Traffic::Ceiling | Traffic::Access => {
            let (user, password) = login((rng.next() % services.max(1) as u64) as usize);
            AccessRequest::pap(id, authenticator(rng), &user, &password)
                .encode(&mut buf, secret)
                .map(<[u8]>::to_vec)
        }
        Traffic::Accounting => {
            let n = slot.sessions.len().max(1);
            let k = slot.next_session % n;
            slot.next_session = slot.next_session.wrapping_add(1);
            let Some(s) = slot.sessions.get_mut(k) else {
                return Vec::new();
            };
            let (user, _) = login(s.user);
            let status = if s.started {
                AcctStatusType::InterimUpdate
            } else {
                AcctStatusType::Start
            };
            s.started = true;
            s.octets += 1_000_000 + (rng.next() % 1_000_000);
            let mut r = AccountingRequest::new(id, status);
            r.session_id = Some(&s.id);
            r.user_name = Some(&user);
            if status == AcctStatusType::InterimUpdate {
                r.output_octets = Some(s.octets);
                r.input_octets = Some(s.octets / 8);
            }
            r.encode(&mut buf, secret).map(<[u8]>::to_vec)
        }
    };
    encoded.unwrap_or_default()
}

/// One client socket's share of the load.
#[derive(Clone, Copy)]
struct Share {
    target: SocketAddr,
    traffic: Traffic,
    /// Which socket of the load this is.
    index: usize,
    depth: usize,
    services: usize,
    /// Makes this run's Acct-Session-Ids its own: a run reusing an earlier run's ids would
    /// find their closed sessions, which no real NAS load does at this rate.
    run: u64,
    measure_from: Instant,
    stop_at: Instant,
}

async fn drive(share: Share) -> Result<Stats> {
    let Share {
        target,
        traffic,
        index,
        depth,
        services,
        run,
        measure_from,
        stop_at,
    } = share;
    let sock = UdpSocket::bind("127.0.0.1:0").await?;
    sock.connect(target).await?;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ ((index as u64 + 1) << 20));
    let depth = depth.clamp(1, 256);
    let mut slots: Vec<Slot> = (0..depth)
        .map(|k| Slot {
            sent_at: None,
            request: Vec::new(),
            sessions: (0..16)
                .map(|m| {
                    let n = (index * depth + k) * 16 + m;
                    Session {
                        id: format!("bench-{run:x}-{n:08x}"),
                        user: n % services.max(1),
                        started: false,
                        octets: 0,
                    }
                })
                .collect(),
            next_session: 0,
        })
        .collect();
    for (k, slot) in slots.iter_mut().enumerate() {
        slot.request = build(traffic, k as u8, slot, &mut rng, services);
        sock.send(&slot.request).await?;
        slot.sent_at = Some(Instant::now());
    }
    let mut stats = Stats::default();
    let mut buf = vec![0u8; 4096];
    loop {
        let now = Instant::now();
        if now >= stop_at {
            break;
        }
        let got = tokio::time::timeout(Duration::from_millis(100), sock.recv(&mut buf)).await;
        let now = Instant::now();
        let Ok(got) = got else {
            // Nothing for 100 ms: requests older than a second are lost; send fresh ones.
            for (k, slot) in slots.iter_mut().enumerate() {
                if slot
                    .sent_at
                    .is_some_and(|t| now.duration_since(t) > Duration::from_secs(1))
                {
                    stats.lost += 1;
                    slot.request = build(traffic, k as u8, slot, &mut rng, services);
                    sock.send(&slot.request).await?;
                    slot.sent_at = Some(Instant::now());
                }
            }
            continue;
        };
        let n = got?;
        let Some(reply) = buf.get(..n) else { continue };
        let Some(&id) = reply.get(1) else { continue };
        let k = usize::from(id);
        let Some(slot) = slots.get_mut(k) else {
            continue;
        };
        let Some(sent) = slot.sent_at else { continue };
        let ok = match traffic {
            Traffic::Ceiling => true,
            Traffic::Access => client::verify_reply(reply, &slot.request, SECRET.as_bytes(), true)
                .is_ok_and(|p| p.code() == Code::AccessAccept),
            Traffic::Accounting => {
                client::verify_reply(reply, &slot.request, SECRET.as_bytes(), false)
                    .is_ok_and(|p| p.code() == Code::AccountingResponse)
            }
        };
        if sent >= measure_from {
            stats.answered += 1;
            if !ok {
                stats.unexpected += 1;
            }
            stats
                .micros
                .push(u32::try_from(now.duration_since(sent).as_micros()).unwrap_or(u32::MAX));
        }
        slot.request = build(traffic, id, slot, &mut rng, services);
        sock.send(&slot.request).await?;
        slot.sent_at = Some(Instant::now());
    }
    Ok(stats)
}

async fn run_load(
    name: &str,
    target: SocketAddr,
    traffic: Traffic,
    services: usize,
    load: &Load,
) -> Result<f64> {
    let measure_from = Instant::now() + Duration::from_secs(1);
    let stop_at = measure_from + Duration::from_secs(load.seconds.max(1));
    let run = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut tasks = Vec::new();
    for index in 0..load.sockets.max(1) {
        tasks.push(tokio::spawn(drive(Share {
            target,
            traffic,
            index,
            depth: load.depth,
            services,
            run,
            measure_from,
            stop_at,
        })));
    }
    let mut all = Stats::default();
    for t in tasks {
        let s = t.await.context("load task")??;
        all.answered += s.answered;
        all.unexpected += s.unexpected;
        all.lost += s.lost;
        all.micros.extend(s.micros);
    }
    all.micros.sort_unstable();
    let pct = |p: f64| -> f64 {
        if all.micros.is_empty() {
            return 0.0;
        }
        let i = ((all.micros.len() as f64 - 1.0) * p).round() as usize;
        f64::from(all.micros[i.min(all.micros.len() - 1)]) / 1000.0
    };
    let rate = all.answered as f64 / load.seconds.max(1) as f64;
    println!(
        "{name:<34} {rate:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   unexpected {}   lost {}",
        pct(0.50),
        pct(0.99),
        all.unexpected,
        all.lost
    );
    Ok(rate)
}

/// Answers every datagram with a fixed 20-octet Access-Accept echoing its Identifier.
async fn trivial_responder(stop: watch::Receiver<bool>) -> Result<SocketAddr> {
    let sock = Arc::new(UdpSocket::bind("127.0.0.1:0").await?);
    let addr = sock.local_addr()?;
    for _ in 0..2 {
        let (sock, mut stop) = (sock.clone(), stop.clone());
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let mut reply = [0u8; 20];
            reply[0] = Code::AccessAccept.as_u8();
            reply[3] = 20;
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    r = sock.recv_from(&mut buf) => {
                        let Ok((n, src)) = r else { continue };
                        if n >= 2 {
                            reply[1] = buf[1];
                            let _ = sock.send_to(&reply, src).await;
                        }
                    }
                }
            }
        });
    }
    Ok(addr)
}

/// Sends an Accounting-On for the loopback NAS and waits for its response.
async fn accounting_on(acct: SocketAddr) -> Result<()> {
    let mut c = client::Client::connect(acct).await?;
    let mut buf = Vec::new();
    let req = AccountingRequest::new(0, AcctStatusType::AccountingOn)
        .encode(&mut buf, SECRET.as_bytes())?
        .to_vec();
    c.exchange(&req, Duration::from_secs(10))
        .await
        .context("Accounting-On unanswered")?;
    Ok(())
}

async fn measure_radius(app: &App, services: usize, load: Load) -> Result<()> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "bench radius: {} backend, {services} services, {} sockets x {} in flight, {} s per phase, {cores} cores",
        app.store.backend(),
        load.sockets,
        load.depth,
        load.seconds
    );
    let (stop_tx, stop) = watch::channel(false);
    if load.phases.contains(&Phase::Ceiling) {
        let responder = trivial_responder(stop.clone()).await?;
        run_load(
            "ceiling (trivial responder)",
            responder,
            Traffic::Ceiling,
            services,
            &load,
        )
        .await?;
    }

    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let loaded = Instant::now();
    let node = RadiusNode::start(
        app.store.clone(),
        app.secrets.clone(),
        NodeConfig {
            server: ServerConfig {
                auth_addr: Some(loopback),
                acct_addr: Some(loopback),
                sockets_per_port: cores,
                ..ServerConfig::default()
            },
            ..NodeConfig::default()
        },
        stop.clone(),
    )
    .await?;
    println!(
        "directory of {} services loaded in {:.2} s",
        node.directory.service_count(),
        loaded.elapsed().as_secs_f64()
    );
    let (Some(auth), Some(acct)) = (node.auth_addr, node.acct_addr) else {
        bail!("RADIUS ports not bound");
    };
    // The NAS "restarts": sessions an earlier run left open would count against the
    // services' simultaneous-use limit and turn Accepts into Rejects.
    accounting_on(acct).await?;
    if load.phases.contains(&Phase::Access) {
        run_load(
            "Access-Request (PAP + Msg-Auth)",
            auth,
            Traffic::Access,
            services,
            &load,
        )
        .await?;
    }
    if load.phases.contains(&Phase::Accounting) {
        run_load(
            "Accounting (committed)",
            acct,
            Traffic::Accounting,
            services,
            &load,
        )
        .await?;
    }
    let _ = stop_tx.send(true);
    node.wait().await;
    Ok(())
}
