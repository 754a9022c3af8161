//! `lastmile billing run --subscriber` and `lastmile dunning run`, end to end through the
//! binary on SQLite: a run for one subscriber bills only them; the dunning pass suspends an
//! overdue subscriber's services once, however often it runs.

mod common;

use jiff::Timestamp;
use lastmile_api_types::{
    CreatePlan, CreateService, CreateSubscriber, DunningPolicyBody, PlanTermsBody,
    ServiceActionBody,
};
use lastmile_app::services::ServiceAction;
use lastmile_app::{App, AppConfig, ManualClock, SecretBox};
use lastmile_domain::audit::Actor;
use lastmile_domain::billing::dunning::{DunningActionKind, DunningStep};
use lastmile_domain::ids::SubscriberId;
use lastmile_domain::service::{ServiceStatus, SuspensionCause};
use lastmile_store::{InvoiceFilter, Page, Store};
use std::process::Command;
use std::sync::Arc;

fn lastmile(db: &str, dir: &std::path::Path) -> Command {
    let mut c = common::lastmile(db, dir);
    c.env("RUST_LOG", "warn");
    c
}

fn run(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

async fn invoices_of(store: &dyn Store, sub: SubscriberId) -> usize {
    store
        .list_invoices(
            &InvoiceFilter {
                subscriber_id: Some(sub),
                ..InvoiceFilter::default()
            },
            Page {
                after: None,
                limit: 100,
            },
        )
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn one_subscriber_runs_and_dunning_through_the_binary() {
    let dir = lastmile_testing::TempDir::new("billing-cli");
    let db = format!("sqlite://{}", dir.path().join("lm.db").display());
    let store: Arc<dyn Store> = Arc::new(
        lastmile_store_sqlite::SqliteStore::connect(&db)
            .await
            .expect("open SQLite"),
    );
    let start: Timestamp = "2026-03-01T09:00:00Z".parse().unwrap();
    let clock = Arc::new(ManualClock::new(start));
    let secrets = SecretBox::from_hex(&SecretBox::generate_key().unwrap()).unwrap();
    let app = App::new(store.clone(), clock.clone(), secrets, AppConfig::default());
    let actor = Actor::system("test");
    app.create_dunning_policy(
        &actor,
        DunningPolicyBody {
            code: "std".into(),
            name: "Standard".into(),
            steps: vec![
                DunningStep {
                    days_overdue: 3,
                    action: DunningActionKind::Remind,
                },
                DunningStep {
                    days_overdue: 10,
                    action: DunningActionKind::Suspend,
                },
            ],
            bill_suspended_days: false,
            is_default: true,
        },
    )
    .await
    .unwrap();
    let plan = app
        .create_plan(
            &actor,
            CreatePlan {
                code: "HOME-60".into(),
                name: "Home 60".into(),
                terms: PlanTermsBody {
                    download_kbps: 60_000,
                    upload_kbps: 10_000,
                    burst: None,
                    price_minor: 6_000,
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
        .unwrap();
    let mut subs = Vec::new();
    let mut services = Vec::new();
    for i in 0..2 {
        let sub = app
            .create_subscriber(
                &actor,
                CreateSubscriber {
                    number: None,
                    name: format!("Subscriber {i}"),
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
        let svc = app
            .create_service(
                &actor,
                CreateService {
                    subscriber_id: sub.id.0,
                    plan_id: plan.id.0,
                    access_kind: None,
                    username: Some(format!("user{i}")),
                    password: Some("pw".into()),
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
            .unwrap();
        app.service_action(
            &actor,
            svc.id,
            ServiceAction::Activate,
            ServiceActionBody::default(),
        )
        .await
        .unwrap();
        subs.push(sub.id);
        services.push(svc.id);
    }

    // A run for the first subscriber bills only them, and says it is theirs.
    let out = run(lastmile(&db, dir.path()).args([
        "billing",
        "run",
        "--as-of",
        "2026-03-01",
        "--subscriber",
        &subs[0].to_string(),
    ]));
    assert!(out.contains("1 subscribers, 1 invoices, 0 errors"), "{out}");
    assert_eq!(invoices_of(&*store, subs[0]).await, 1);
    assert_eq!(invoices_of(&*store, subs[1]).await, 0);
    // An unknown subscriber is refused.
    let out = lastmile(&db, dir.path())
        .args([
            "billing",
            "run",
            "--subscriber",
            "01a00000-0000-7000-8000-000000000000",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such subscriber"));

    // Nobody pays: due 2026-03-15; on the 25th (10 days overdue) the pass suspends. The
    // reminder due too is passed over: one pass takes the latest step only.
    let out = run(lastmile(&db, dir.path()).args(["dunning", "run", "--as-of", "2026-03-25"]));
    assert!(
        out.contains("1 subscribers overdue, 0 reminders, 1 services suspended"),
        "{out}"
    );
    let svc = store.get_service(services[0]).await.unwrap().unwrap();
    assert_eq!(svc.status, ServiceStatus::Suspended);
    assert_eq!(svc.suspension_cause, Some(SuspensionCause::Dunning));
    let other = store.get_service(services[1]).await.unwrap().unwrap();
    assert_eq!(other.status, ServiceStatus::Active);
    // Again: nothing new.
    let out = run(lastmile(&db, dir.path()).args(["dunning", "run", "--as-of", "2026-03-25"]));
    assert!(
        out.contains("0 reminders, 0 services suspended, 0 terminated, 0 errors"),
        "{out}"
    );
}
