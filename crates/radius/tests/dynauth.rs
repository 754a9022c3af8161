//! The dynauth executors end to end: jobs written by service actions, sessions recorded by
//! accounting, run by the job runner against a NAS stand-in on a loopback UDP socket.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use lastmile_api_types::{CreateNas, CreatePlan, CreateService, CreateSubscriber, PlanTermsBody};
use lastmile_app::services::ServiceAction;
use lastmile_app::{App, AppConfig, ManualClock, SecretBox};
use lastmile_domain::audit::Actor;
use lastmile_domain::ids::{JobId, PlanId, ServiceId};
use lastmile_domain::job::{JobStatus, ProvisioningJob};
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::radius::{AccountingEvent, AcctStatus};
use lastmile_domain::service::SuspensionCause;
use lastmile_jobs::Runner;
use lastmile_radius::dynauth::{self, DynAuthConfig};
use lastmile_radius::{CoaClient, Directory, NasEntry};
use lastmile_radius_codec::dict::mikrotik;
use lastmile_radius_codec::{auth, AttrType, Code, PacketBuilder, PacketRef};
use lastmile_store::radius::SessionFilter;
use lastmile_store::{Page, Store};
use md5::{Digest, Md5};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const SECRET: &str = "dynauth-secret";

/// What the stand-in answers; the test may change it between jobs.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ack,
    Nak(u32),
    Silent,
}

/// A request as the stand-in saw it.
#[derive(Debug)]
struct Seen {
    code: Code,
    rate_limit: Option<String>,
    user_name: Option<String>,
    session_id: Option<String>,
    framed_ip: Option<std::net::Ipv4Addr>,
}

/// RFC 5176 §3.5: MD5(Code + Identifier + Length + 16 zero octets + Attributes + Secret).
fn request_authenticator_ok(bytes: &[u8], secret: &[u8]) -> bool {
    if bytes.len() < 20 {
        return false;
    }
    let mut h = Md5::new();
    h.update(&bytes[..4]);
    h.update([0u8; 16]);
    h.update(&bytes[20..]);
    h.update(secret);
    h.finalize().as_slice() == &bytes[4..20]
}

async fn stand_in(answer: Arc<Mutex<Answer>>) -> (u16, mpsc::UnboundedReceiver<Seen>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::new();
        loop {
            let Ok((n, src)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let bytes = &buf[..n];
            assert!(
                request_authenticator_ok(bytes, SECRET.as_bytes()),
                "request authenticator"
            );
            let p = PacketRef::decode(bytes).unwrap();
            auth::verify_message_authenticator(&p, SECRET.as_bytes())
                .expect("Message-Authenticator");
            let _ = tx.send(Seen {
                code: p.code(),
                rate_limit: p
                    .vendor_text(mikrotik::RATE_LIMIT)
                    .unwrap()
                    .map(String::from),
                user_name: p.text(AttrType::USER_NAME).unwrap().map(String::from),
                session_id: p.text(AttrType::ACCT_SESSION_ID).unwrap().map(String::from),
                framed_ip: p.ipv4(AttrType::FRAMED_IP_ADDRESS).unwrap(),
            });
            let (ack, nak) = match p.code() {
                Code::CoaRequest => (Code::CoaAck, Code::CoaNak),
                _ => (Code::DisconnectAck, Code::DisconnectNak),
            };
            let a = *answer.lock().unwrap();
            let reply = match a {
                Answer::Silent => continue,
                Answer::Ack => PacketBuilder::new(&mut out, ack, p.identifier())
                    .finish_reply(&p, SECRET.as_bytes())
                    .to_vec(),
                Answer::Nak(cause) => {
                    let mut b = PacketBuilder::new(&mut out, nak, p.identifier());
                    b.add_u32(AttrType::ERROR_CAUSE, cause).unwrap();
                    b.finish_reply(&p, SECRET.as_bytes()).to_vec()
                }
            };
            socket.send_to(&reply, src).await.unwrap();
        }
    });
    (port, rx)
}

struct Fixture {
    app: App,
    clock: Arc<ManualClock>,
    runner: Runner,
    answer: Arc<Mutex<Answer>>,
    seen: mpsc::UnboundedReceiver<Seen>,
    directory: Arc<Directory>,
    /// The Accounting Start that opened the session.
    start: AccountingEvent,
    service: ServiceId,
    fast: PlanId,
    fast_code: String,
}

fn unique() -> String {
    JobId::generate().0.simple().to_string()[20..].to_uppercase()
}

fn terms(down: u32, up: u32) -> PlanTermsBody {
    PlanTermsBody {
        download_kbps: down,
        upload_kbps: up,
        burst: None,
        price_minor: 1_000,
        currency: "EUR".into(),
        billing_interval: None,
        setup_fee_minor: None,
        data_cap_bytes: None,
        cap_policy: None,
        free_window: None,
        contract_months: None,
        early_termination_fee_minor: None,
        tax_class: None,
    }
}

impl Fixture {
    /// An active MikroTik service with one live session (from an Accounting Start).
    async fn new(store: Arc<dyn Store>) -> Self {
        let clock = Arc::new(ManualClock::new(
            Timestamp::from_second(1_773_576_000).unwrap(),
        ));
        let secrets = SecretBox::from_hex(&SecretBox::generate_key().unwrap()).unwrap();
        let app = App::new(store.clone(), clock.clone(), secrets, AppConfig::default());
        let actor = Actor::system("test");
        let tag = unique();
        let id = JobId::generate().0;
        let b = id.as_bytes();
        let nas = app
            .create_nas(
                &actor,
                CreateNas {
                    name: format!("core-{tag}"),
                    ip: format!("10.{}.{}.{}", b[13], b[14], b[15]),
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
            .unwrap();
        let sub = app
            .create_subscriber(
                &actor,
                CreateSubscriber {
                    number: None,
                    name: format!("Dyn {tag}"),
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
            .unwrap();
        let plan = |code: String, down, up| CreatePlan {
            code,
            name: "Dyn plan".into(),
            terms: terms(down, up),
        };
        let slow = app
            .create_plan(&actor, plan(format!("SLOW-{tag}"), 10_000, 2_000))
            .await
            .unwrap();
        let fast_code = format!("FAST-{tag}");
        let fast = app
            .create_plan(&actor, plan(fast_code.clone(), 50_000, 10_000))
            .await
            .unwrap();
        let login = format!("dyn-{tag}");
        let svc = app
            .create_service(
                &actor,
                CreateService {
                    subscriber_id: sub.id.0,
                    plan_id: slow.id.0,
                    access_kind: None,
                    username: Some(login.clone()),
                    password: Some("pw".into()),
                    mac_address: None,
                    circuit_id: None,
                    static_ip: None,
                    ip_pool: None,
                    nas_id: Some(nas.id.0),
                    service_address: None,
                    simultaneous_use: None,
                },
            )
            .await
            .unwrap();
        app.service_action(&actor, svc.id, ServiceAction::Activate, Default::default())
            .await
            .unwrap();
        let start = AccountingEvent {
            nas_id: nas.id,
            status: AcctStatus::Start,
            acct_session_id: format!("sess-{tag}"),
            service_id: Some(svc.id),
            subscriber_id: Some(sub.id),
            username: Some(login),
            framed_ip: Some(IpAddr::from([100, 64, 0, 7])),
            calling_station_id: None,
            nas_port_id: None,
            session_time: Some(0),
            octets: None,
            terminate_cause: None,
            event_time: clock.now(),
        };
        let out = store.record_accounting(vec![start.clone()]).await.unwrap();
        assert!(out.iter().all(|r| r.is_ok()));

        let answer = Arc::new(Mutex::new(Answer::Ack));
        let (port, seen) = stand_in(answer.clone()).await;
        let mut entry = NasEntry::new(
            nas.id,
            "core-1",
            IpAddr::from([127, 0, 0, 1]),
            SECRET.as_bytes().to_vec(),
            VendorProfile::Mikrotik,
        );
        entry.coa_port = port;
        let directory = Arc::new(Directory::new());
        directory.replace_all([entry], []);
        let runner = dynauth::register(
            Runner::new(store.clone(), clock.clone()),
            store,
            clock.clone(),
            directory.clone(),
            CoaClient::new(),
            // Short, so a silent NAS costs the test little; nothing asserts on time.
            DynAuthConfig {
                timeout: Duration::from_millis(100),
                retries: 0,
            },
        );
        Fixture {
            app,
            clock,
            runner,
            answer,
            seen,
            directory,
            start,
            service: svc.id,
            fast: fast.id,
            fast_code,
        }
    }

    async fn act(&self, action: ServiceAction) -> ProvisioningJob {
        let mut jobs = self
            .app
            .service_action(
                &Actor::system("test"),
                self.service,
                action,
                Default::default(),
            )
            .await
            .unwrap()
            .jobs;
        assert_eq!(jobs.len(), 1);
        jobs.remove(0)
    }

    async fn job(&self, id: JobId) -> ProvisioningJob {
        self.app.store.get_job(id).await.unwrap().unwrap()
    }

    fn answer(&self, a: Answer) {
        *self.answer.lock().unwrap() = a;
    }
}

use lastmile_app::Clock;

async fn plan_change_sends_a_coa_with_the_new_rate(store: Arc<dyn Store>) {
    let mut f = Fixture::new(store).await;
    let job = f.act(ServiceAction::ChangePlan { plan_id: f.fast }).await;
    assert_eq!(f.runner.run_once().await.unwrap(), 1);
    let seen = f.seen.recv().await.unwrap();
    assert_eq!(seen.code, Code::CoaRequest);
    // MikroTik: upload/download of the new plan (the old one was 2000k/10000k).
    assert_eq!(seen.rate_limit.as_deref(), Some("10000k/50000k"));
    assert!(seen.user_name.unwrap().starts_with("dyn-"));
    assert!(seen.session_id.unwrap().starts_with("sess-"));
    assert_eq!(seen.framed_ip, Some([100, 64, 0, 7].into()));
    let j = f.job(job.id).await;
    assert_eq!(j.status, JobStatus::Succeeded);
    assert_eq!(
        j.last_result.as_deref(),
        Some("CoA-ACK from core-1 for 1 session")
    );
    let sessions = f
        .app
        .store
        .list_sessions(
            &SessionFilter {
                service_id: Some(f.service),
                ..Default::default()
            },
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(
        sessions[0].accepted_policy.as_deref(),
        Some(f.fast_code.as_str())
    );
}

async fn suspension_sends_a_disconnect(store: Arc<dyn Store>) {
    let mut f = Fixture::new(store).await;
    let job = f
        .act(ServiceAction::Suspend {
            cause: SuspensionCause::Operator,
        })
        .await;
    assert_eq!(f.runner.run_once().await.unwrap(), 1);
    assert_eq!(f.seen.recv().await.unwrap().code, Code::DisconnectRequest);
    let j = f.job(job.id).await;
    assert_eq!(j.status, JobStatus::Succeeded);
    assert_eq!(
        j.last_result.as_deref(),
        Some("Disconnect-ACK from core-1 for 1 session")
    );
}

async fn a_nak_is_retried_with_its_error_cause(store: Arc<dyn Store>) {
    let mut f = Fixture::new(store).await;
    f.answer(Answer::Nak(506));
    let job = f.act(ServiceAction::ChangePlan { plan_id: f.fast }).await;
    assert_eq!(f.runner.run_once().await.unwrap(), 1);
    assert_eq!(f.seen.recv().await.unwrap().code, Code::CoaRequest);
    let j = f.job(job.id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 1));
    let err = j.last_error.unwrap_or_default();
    assert!(err.contains("CoA-NAK from core-1"), "{err}");
    assert!(err.contains("Error-Cause 506"), "{err}");
}

async fn no_reply_is_retried(store: Arc<dyn Store>) {
    let mut f = Fixture::new(store).await;
    f.answer(Answer::Silent);
    let job = f
        .act(ServiceAction::Suspend {
            cause: SuspensionCause::Operator,
        })
        .await;
    assert_eq!(f.runner.run_once().await.unwrap(), 1);
    assert_eq!(f.seen.recv().await.unwrap().code, Code::DisconnectRequest);
    let j = f.job(job.id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 1));
    let err = j.last_error.unwrap_or_default();
    assert!(err.contains("no reply"), "{err}");
    // Answered the next time: done.
    f.answer(Answer::Ack);
    f.clock.advance(jiff::SignedDuration::from_secs(5));
    assert_eq!(f.runner.run_once().await.unwrap(), 1);
    assert_eq!(f.job(job.id).await.status, JobStatus::Succeeded);
}

async fn nak_503_means_already_gone(store: Arc<dyn Store>) {
    let mut f = Fixture::new(store).await;
    f.answer(Answer::Nak(503));
    let job = f
        .act(ServiceAction::Suspend {
            cause: SuspensionCause::Operator,
        })
        .await;
    assert_eq!(f.runner.run_once().await.unwrap(), 1);
    assert_eq!(f.seen.recv().await.unwrap().code, Code::DisconnectRequest);
    let j = f.job(job.id).await;
    assert_eq!(j.status, JobStatus::Succeeded);
    assert_eq!(j.last_result.as_deref(), Some("1 already gone"));
}

async fn an_unknown_nas_is_retried(store: Arc<dyn Store>) {
    let f = Fixture::new(store).await;
    // The NAS was removed from the directory (or it has not caught up with the feed yet).
    f.directory.replace_all([], []);
    let job = f
        .act(ServiceAction::Suspend {
            cause: SuspensionCause::Operator,
        })
        .await;
    assert_eq!(f.runner.run_once().await.unwrap(), 1);
    let j = f.job(job.id).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 1));
    let err = j.last_error.unwrap_or_default();
    assert!(err.contains("is not in the directory"), "{err}");
}

async fn no_live_session_is_nothing_to_do(store: Arc<dyn Store>) {
    let mut f = Fixture::new(store).await;
    let stop = AccountingEvent {
        status: AcctStatus::Stop,
        session_time: Some(60),
        terminate_cause: Some(1),
        event_time: f.clock.now() + jiff::SignedDuration::from_secs(60),
        ..f.start.clone()
    };
    let out = f.app.store.record_accounting(vec![stop]).await.unwrap();
    assert!(out.iter().all(|r| r.is_ok()));
    let job = f
        .act(ServiceAction::Suspend {
            cause: SuspensionCause::Operator,
        })
        .await;
    assert_eq!(f.runner.run_once().await.unwrap(), 1);
    let j = f.job(job.id).await;
    assert_eq!(j.status, JobStatus::Succeeded);
    assert_eq!(j.last_result.as_deref(), Some("no live session"));
    // A request would have been recorded before any reply, so before run_once returned.
    assert!(f.seen.try_recv().is_err(), "nothing was sent");
}

macro_rules! both {
    ($($name:ident),*) => {
        mod sqlite { $(
            #[tokio::test]
            async fn $name() { super::$name(lastmile_testing::sqlite_store().await).await }
        )* }
        mod postgres { $(
            #[tokio::test]
            async fn $name() {
                if let Some(s) = lastmile_testing::pg_store().await { super::$name(s).await }
            }
        )* }
    };
}

both!(
    plan_change_sends_a_coa_with_the_new_rate,
    suspension_sends_a_disconnect,
    a_nak_is_retried_with_its_error_cause,
    no_reply_is_retried,
    nak_503_means_already_gone,
    an_unknown_nas_is_retried,
    no_live_session_is_nothing_to_do
);
