//! The RADIUS server over a real store (SQLite, and PostgreSQL when available): the
//! directory loads from the catalogue and follows its change feed; accounting over UDP lands
//! in sessions and hourly usage before the Accounting-Response leaves.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use lastmile_api_types::{CreateNas, CreatePlan, CreateService, CreateSubscriber};
use lastmile_app::services::ServiceAction;
use lastmile_app::{App, AppConfig, SecretBox, SystemClock};
use lastmile_domain::audit::Actor;
use lastmile_domain::ids::{NasId, ServiceId, SubscriberId};
use lastmile_domain::service::{ServiceStatus, SuspensionCause};
use lastmile_radius::backend::{DirectoryFeed, NodeConfig, RadiusNode};
use lastmile_radius::client::{self, AccessRequest, AccountingRequest, Client};
use lastmile_radius::{Directory, ServerConfig};
use lastmile_radius_codec::acct::AcctStatusType;
use lastmile_radius_codec::{Authenticator, Code};
use lastmile_store::radius::SessionFilter;
use lastmile_store::{Page, Store};
use serde_json::json;
use tokio::sync::watch;

const SECRET: &str = "node-test-secret";
const WAIT: Duration = Duration::from_secs(5);

struct World {
    app: App,
    secrets: SecretBox,
    nas: NasId,
    service: ServiceId,
    subscriber: SubscriberId,
}

fn body<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("a valid request body")
}

async fn world(store: Arc<dyn Store>) -> World {
    let key = SecretBox::generate_key().expect("key");
    let secrets = SecretBox::from_hex(&key).expect("secret box");
    let app = App::new(
        store,
        Arc::new(SystemClock),
        SecretBox::from_hex(&key).expect("secret box"),
        AppConfig::default(),
    );
    let actor = Actor::system("test");
    let nas = app
        .create_nas(
            &actor,
            body::<CreateNas>(json!({
                "name": "loopback", "ip": "127.0.0.1", "secret": SECRET, "vendor": "mikrotik"
            })),
        )
        .await
        .expect("create NAS");
    let sub = app
        .create_subscriber(
            &actor,
            body::<CreateSubscriber>(json!({"name": "Alice", "currency": "EUR"})),
        )
        .await
        .expect("create subscriber");
    let plan = app
        .create_plan(
            &actor,
            body::<CreatePlan>(json!({
                "code": "HOME-50", "name": "Home 50",
                "terms": {"download_kbps": 50_000, "upload_kbps": 10_000,
                          "price_minor": 2_500, "currency": "EUR"}
            })),
        )
        .await
        .expect("create plan");
    let svc = app
        .create_service(
            &actor,
            body::<CreateService>(json!({
                "subscriber_id": sub.id.0, "plan_id": plan.id.0,
                "username": "alice", "password": "alice-pw"
            })),
        )
        .await
        .expect("create service");
    app.service_action(&actor, svc.id, ServiceAction::Activate, body(json!({})))
        .await
        .expect("activate");
    World {
        app,
        secrets,
        nas: nas.id,
        service: svc.id,
        subscriber: sub.id,
    }
}

fn authenticator(n: u8) -> Authenticator {
    [n; 16]
}

async fn access(server: SocketAddr, id: u8, user: &str, password: &str) -> Code {
    let mut c = Client::connect(server).await.expect("client");
    let mut buf = Vec::new();
    let req = AccessRequest::pap(id, authenticator(id), user, password)
        .encode(&mut buf, SECRET.as_bytes())
        .expect("encode")
        .to_vec();
    let reply = c.exchange(&req, WAIT).await.expect("a reply");
    client::verify_reply(&reply, &req, SECRET.as_bytes(), true)
        .expect("a valid reply")
        .code()
}

async fn follows_the_catalogue(store: Arc<dyn Store>) {
    let w = world(store.clone()).await;
    let directory = Arc::new(Directory::new());
    let mut feed = DirectoryFeed::load(store.clone(), w.secrets.clone(), directory.clone())
        .await
        .expect("load");
    let alice = directory.by_username("alice").expect("alice loaded");
    assert_eq!(alice.status, ServiceStatus::Active);
    assert_eq!(alice.password.as_deref(), Some("alice-pw"), "decrypted");
    assert_eq!(alice.tier.download_kbps, 50_000);
    let nas = directory
        .nas("127.0.0.1".parse().expect("ip"))
        .expect("NAS loaded");
    assert_eq!(nas.secret, SECRET.as_bytes());

    let actor = Actor::system("test");
    w.app
        .service_action(
            &actor,
            w.service,
            ServiceAction::Suspend {
                cause: SuspensionCause::Operator,
            },
            body(json!({})),
        )
        .await
        .expect("suspend");
    assert!(feed.poll().await.expect("poll") >= 1);
    assert_eq!(
        directory.by_username("alice").expect("alice").status,
        ServiceStatus::Suspended
    );
    w.app
        .update_nas(&actor, w.nas, body(json!({"secret": "a-new-secret"})))
        .await
        .expect("update NAS");
    feed.poll().await.expect("poll");
    assert_eq!(
        directory.nas_by_id(w.nas).expect("NAS").secret,
        b"a-new-secret"
    );
    w.app
        .service_action(&actor, w.service, ServiceAction::Terminate, body(json!({})))
        .await
        .expect("terminate");
    feed.poll().await.expect("poll");
    assert_eq!(
        directory.by_username("alice").expect("kept").status,
        ServiceStatus::Terminated,
        "a terminated service stays, to be rejected as terminated"
    );
    w.app.delete_nas(&actor, w.nas).await.expect("delete NAS");
    feed.poll().await.expect("poll");
    assert!(
        directory.nas_by_id(w.nas).is_none(),
        "a deleted NAS is gone"
    );
    let again = feed.poll().await.expect("poll");
    if store.backend() == "sqlite" {
        assert_eq!(again, 0, "the feed comes to rest");
    }
    // On PostgreSQL the feed may report a change again while any transaction in the cluster
    // (another test's) holds the snapshot horizon back: reloading it changes nothing.
    assert!(directory.nas_by_id(w.nas).is_none(), "still gone");
    assert_eq!(
        directory.by_username("alice").expect("kept").status,
        ServiceStatus::Terminated
    );
}

async fn accounting_lands_before_the_answer(store: Arc<dyn Store>) {
    let w = world(store.clone()).await;
    let (stop_tx, stop) = watch::channel(false);
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let node = RadiusNode::start(
        store.clone(),
        w.secrets.clone(),
        NodeConfig {
            server: ServerConfig {
                auth_addr: Some(loopback),
                acct_addr: Some(loopback),
                sockets_per_port: 1,
                ..ServerConfig::default()
            },
            ..NodeConfig::default()
        },
        stop,
    )
    .await
    .expect("start the node");
    let auth = node.auth_addr.expect("auth bound");
    let acct = node.acct_addr.expect("acct bound");
    assert_eq!(
        access(auth, 1, "alice", "alice-pw").await,
        Code::AccessAccept
    );
    assert_eq!(access(auth, 2, "alice", "wrong").await, Code::AccessReject);
    assert_eq!(access(auth, 3, "nobody", "x").await, Code::AccessReject);

    let mut c = Client::connect(acct).await.expect("client");
    let now = Timestamp::now().as_second() as u32;
    let send = |r: AccountingRequest<'static>| {
        let bytes = r
            .encode(&mut Vec::new(), SECRET.as_bytes())
            .expect("encode")
            .to_vec();
        bytes
    };
    let mut start = AccountingRequest::new(10, AcctStatusType::Start);
    start.session_id = Some("s-1");
    start.user_name = Some("alice");
    start.framed_ip = Some([100, 64, 0, 9].into());
    start.event_timestamp = Some(now - 600);
    let mut interim = AccountingRequest::new(11, AcctStatusType::InterimUpdate);
    interim.session_id = Some("s-1");
    interim.user_name = Some("alice");
    interim.output_octets = Some((2 << 32) + 500);
    interim.input_octets = Some(1_000);
    interim.event_timestamp = Some(now - 300);
    // A Stop without counters: it ends the session and must not zero its usage.
    let mut stop_req = AccountingRequest::new(12, AcctStatusType::Stop);
    stop_req.session_id = Some("s-1");
    stop_req.user_name = Some("alice");
    stop_req.terminate_cause = Some(1);
    stop_req.event_timestamp = Some(now);
    for (i, r) in [start, interim, stop_req].into_iter().enumerate() {
        let bytes = send(r);
        let reply = c.exchange(&bytes, WAIT).await.expect("a response");
        let p = client::verify_reply(&reply, &bytes, SECRET.as_bytes(), false).expect("valid");
        assert_eq!(p.code(), Code::AccountingResponse);
        // The response came after the commit: the store has the record now.
        let sessions = store
            .list_sessions(
                &SessionFilter {
                    service_id: Some(w.service),
                    ..SessionFilter::default()
                },
                Page {
                    after: None,
                    limit: 10,
                },
            )
            .await
            .expect("sessions");
        assert_eq!(sessions.len(), 1, "after request {i}");
        let s = &sessions[0];
        assert_eq!(s.subscriber_id, Some(w.subscriber));
        if i >= 1 {
            assert_eq!(s.total.download, (2 << 32) + 500);
            assert_eq!(s.total.upload, 1_000);
        }
        assert_eq!(s.stopped_at.is_some(), i == 2);
    }
    let usage = store
        .usage_hourly(
            w.subscriber,
            Timestamp::now() - SignedDuration::from_hours(3),
            Timestamp::now() + SignedDuration::from_hours(1),
        )
        .await
        .expect("usage");
    let down: u64 = usage.iter().map(|u| u.octets.download).sum();
    assert_eq!(down, (2 << 32) + 500, "every byte once, in hourly buckets");

    // Accounting-On: the NAS restarted; a new session then its restart.
    let mut start2 = AccountingRequest::new(13, AcctStatusType::Start);
    start2.session_id = Some("s-2");
    start2.user_name = Some("alice");
    c.exchange(&send(start2), WAIT).await.expect("response");
    c.exchange(
        &send(AccountingRequest::new(14, AcctStatusType::AccountingOn)),
        WAIT,
    )
    .await
    .expect("response");
    let open = store
        .list_sessions(
            &SessionFilter {
                active: Some(true),
                ..SessionFilter::default()
            },
            Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .expect("sessions");
    assert!(open.is_empty(), "Accounting-On closed {open:?}");

    stop_tx.send(true).expect("stop");
    node.wait().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_directory_follows_the_catalogue() {
    follows_the_catalogue(lastmile_testing::sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_directory_follows_the_catalogue() {
    if let Some(store) = lastmile_testing::pg_store().await {
        follows_the_catalogue(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_accounting_lands_before_the_answer() {
    accounting_lands_before_the_answer(lastmile_testing::sqlite_store().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_accounting_lands_before_the_answer() {
    if let Some(store) = lastmile_testing::pg_store().await {
        accounting_lands_before_the_answer(store).await;
    }
}
