//! `lastmile demo`: seeds a realistic small ISP with a few months of history, written through
//! the same use cases as the API (so every record has its timeline, audit trail and jobs).
//! History is made by running those use cases under a manual clock that walks forward in time.

use anyhow::{anyhow, Result};
use jiff::{SignedDuration, Timestamp};
use lastmile_api_types::{
    CreateNas, CreatePayment, CreatePlan, CreateService, CreateSubscriber, DunningPolicyBody,
    PlanTermsBody, ServiceActionBody, TaxZoneBody,
};
use lastmile_app::services::ServiceAction;
use lastmile_app::{App, AppConfig, ManualClock};
use lastmile_domain::audit::Actor;
use lastmile_domain::billing::account::PaymentMethod;
use lastmile_domain::billing::dunning::{DunningActionKind, DunningStep};
use lastmile_domain::billing::tax::{Rate, Tax};
use lastmile_domain::ids::{PlanId, ServiceId, SubscriberId};
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::plan::CapPolicy;
use lastmile_domain::service::SuspensionCause;
use lastmile_domain::subscriber::Address;
use lastmile_store::{Page, PlanFilter};
use std::sync::Arc;

const FIRST: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Karla",
    "Leon", "Mia", "Noah", "Olga", "Paul", "Rosa", "Sam", "Tina", "Umar", "Vera", "Wim", "Yara",
    "Zoe",
];
const LAST: &[&str] = &[
    "Adler", "Becker", "Costa", "Dietrich", "Engel", "Fischer", "García", "Hoffmann", "Ivanova",
    "Jansen", "Keller", "Lang", "Meyer", "Nowak", "Okafor", "Petersen", "Quinn", "Richter",
    "Schmidt", "Tanaka", "Ulrich", "Vogel", "Weber", "Young",
];
const STREETS: &[&str] = &[
    "Lindenweg",
    "Hauptstraße",
    "Am Markt",
    "Bahnhofstraße",
    "Schulweg",
    "Mühlenweg",
    "Bergstraße",
    "Gartenstraße",
];
const TOWNS: &[(&str, &str)] = &[
    ("Altdorf", "91000"),
    ("Birkenau", "69488"),
    ("Eichstätt", "85072"),
    ("Waldkirch", "79183"),
];

/// A small deterministic generator: the demo is the same every time.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

struct PlanSpec {
    code: &'static str,
    name: &'static str,
    down: u32,
    up: u32,
    price: i64,
    cap_gb: Option<i64>,
    policy: CapPolicy,
}

fn plans() -> Vec<PlanSpec> {
    vec![
        PlanSpec {
            code: "HOME-25",
            name: "Home 25",
            down: 25_000,
            up: 5_000,
            price: 2_500,
            cap_gb: None,
            policy: CapPolicy::None,
        },
        PlanSpec {
            code: "HOME-50",
            name: "Home 50",
            down: 50_000,
            up: 10_000,
            price: 3_500,
            cap_gb: None,
            policy: CapPolicy::None,
        },
        PlanSpec {
            code: "HOME-100-CAP",
            name: "Home 100 (500 GB)",
            down: 100_000,
            up: 20_000,
            price: 3_900,
            cap_gb: Some(500),
            policy: CapPolicy::Throttle {
                download_kbps: 10_000,
                upload_kbps: 2_000,
            },
        },
        PlanSpec {
            code: "FIBER-300",
            name: "Fibre 300",
            down: 300_000,
            up: 50_000,
            price: 5_500,
            cap_gb: None,
            policy: CapPolicy::None,
        },
        PlanSpec {
            code: "FIBER-500-OVG",
            name: "Fibre 500 (1 TB + overage)",
            down: 500_000,
            up: 100_000,
            price: 6_500,
            cap_gb: Some(1_000),
            policy: CapPolicy::Overage {
                price_per_gb_minor: 50,
            },
        },
        PlanSpec {
            code: "FIBER-1000",
            name: "Fibre 1000",
            down: 1_000_000,
            up: 500_000,
            price: 8_900,
            cap_gb: None,
            policy: CapPolicy::None,
        },
    ]
}

enum Step {
    Create(usize),
    Act(usize, ServiceAction),
    /// The daily billing run, as `serve` would have done it.
    Bill,
}

/// Keeps the error's chain of causes (the store's database error under the use case's).
fn err(e: lastmile_app::AppError) -> anyhow::Error {
    anyhow::Error::from(e)
}

/// The demo's own NAS: this machine, so `radtest` works against `lastmile demo` at once.
pub const LOOPBACK_NAS_SECRET: &str = "demo-loopback-secret";
/// A subscriber whose service logs in through the loopback NAS.
pub const RADIUS_LOGIN: (&str, &str) = ("radtest@demo-isp", "radtest-password");

/// Registers the loopback NAS and an active service for [`RADIUS_LOGIN`], dated now.
async fn seed_radius_login(app: &App, actor: &Actor, plan: PlanId) -> Result<()> {
    app.create_nas(
        actor,
        CreateNas {
            name: "demo-loopback".into(),
            ip: "127.0.0.1".into(),
            secret: LOOPBACK_NAS_SECRET.into(),
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
    let sub = app
        .create_subscriber(
            actor,
            CreateSubscriber {
                number: None,
                name: "Rita Radtest".into(),
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
    let svc = app
        .create_service(
            actor,
            CreateService {
                subscriber_id: sub.id.0,
                plan_id: plan.0,
                access_kind: None,
                username: Some(RADIUS_LOGIN.0.into()),
                password: Some(RADIUS_LOGIN.1.into()),
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
        actor,
        svc.id,
        ServiceAction::Activate,
        ServiceActionBody::default(),
    )
    .await
    .map_err(err)?;
    Ok(())
}

pub async fn seed(app: &App, subscribers: usize) -> Result<()> {
    let existing = app
        .store
        .list_plans(
            &PlanFilter::default(),
            Page {
                after: None,
                limit: 100,
            },
        )
        .await?;
    if existing.iter().any(|p| p.code == "HOME-25") {
        println!("demo data already present; not seeding again");
        return Ok(());
    }
    let now = app.clock.now();
    let start = now - SignedDuration::from_hours(24 * 150);
    let clock = Arc::new(ManualClock::new(start));
    let history = App::new(
        app.store.clone(),
        clock.clone(),
        app.secrets.clone(),
        AppConfig {
            backdate_window: SignedDuration::from_hours(24 * 365),
            ..(*app.config).clone()
        },
    );
    let actor = Actor::system("demo");
    let mut rng = Lcg(0x1a57_311e);

    // German consumer pricing: plan prices include 19 % VAT.
    history
        .create_tax_zone(
            &actor,
            TaxZoneBody {
                code: "DE".into(),
                name: "Germany".into(),
                prices_include_tax: true,
                taxes: vec![Tax {
                    name: "VAT".into(),
                    tax_class: "standard".into(),
                    rate: Rate::parse_percent("19").map_err(|e| anyhow!(e))?,
                    valid_from: None,
                }],
            },
        )
        .await
        .map_err(err)?;
    history
        .create_dunning_policy(
            &actor,
            DunningPolicyBody {
                code: "standard".into(),
                name: "Remind at 3 days, suspend at 14, terminate at 60".into(),
                steps: vec![
                    DunningStep {
                        days_overdue: 3,
                        action: DunningActionKind::Remind,
                    },
                    DunningStep {
                        days_overdue: 14,
                        action: DunningActionKind::Suspend,
                    },
                    DunningStep {
                        days_overdue: 60,
                        action: DunningActionKind::Terminate,
                    },
                ],
                bill_suspended_days: false,
                is_default: true,
            },
        )
        .await
        .map_err(err)?;
    let mut subscriber_ids: Vec<Option<SubscriberId>> = vec![None; subscribers];

    let mut plan_ids: Vec<PlanId> = Vec::new();
    for p in plans() {
        let plan = history
            .create_plan(
                &actor,
                CreatePlan {
                    code: p.code.into(),
                    name: p.name.into(),
                    terms: PlanTermsBody {
                        download_kbps: p.down,
                        upload_kbps: p.up,
                        burst: None,
                        price_minor: p.price,
                        currency: "EUR".into(),
                        billing_interval: None,
                        setup_fee_minor: Some(if p.down >= 300_000 { 4_900 } else { 0 }),
                        data_cap_bytes: p.cap_gb.map(|gb| gb * 1_000_000_000),
                        cap_policy: Some(p.policy),
                        free_window: None,
                        contract_months: Some(if p.down >= 300_000 { 12 } else { 0 }),
                        early_termination_fee_minor: Some(if p.down >= 300_000 {
                            9_900
                        } else {
                            0
                        }),
                        tax_class: None,
                    },
                },
            )
            .await
            .map_err(err)?;
        plan_ids.push(plan.id);
    }
    let mut nas_ids = Vec::new();
    for (name, ip, vendor) in [
        ("core-mikrotik-1", "10.0.0.1", VendorProfile::Mikrotik),
        ("bng-cisco-1", "10.0.0.2", VendorProfile::Cisco),
    ] {
        let n = history
            .create_nas(
                &actor,
                CreateNas {
                    name: name.into(),
                    ip: ip.into(),
                    secret: format!("demo-secret-{name}"),
                    vendor,
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
        nas_ids.push(n.id.0);
    }

    // Plan every subscriber's life as dated steps, then replay them in time order.
    let day = SignedDuration::from_hours(24);
    let mut steps: Vec<(Timestamp, Step)> = Vec::new();
    for i in 0..subscribers {
        let created = start
            + day * (i as i32 * 110 / subscribers.max(1) as i32)
            + SignedDuration::from_mins(rng.below(600) as i64);
        steps.push((created, Step::Create(i)));
        if rng.chance(6) {
            continue; // stays pending: installation not done yet
        }
        let active = created + day * (1 + rng.below(5) as i32);
        steps.push((active, Step::Act(i, ServiceAction::Activate)));
        if rng.chance(25) {
            let plan_id = plan_ids[rng.below(plan_ids.len() as u64) as usize];
            steps.push((
                active + day * (20 + rng.below(30) as i32),
                Step::Act(i, ServiceAction::ChangePlan { plan_id }),
            ));
        }
        if rng.chance(15) {
            let suspended = active + day * (25 + rng.below(20) as i32);
            let cause = if rng.chance(60) {
                SuspensionCause::Dunning
            } else {
                SuspensionCause::Operator
            };
            steps.push((suspended, Step::Act(i, ServiceAction::Suspend { cause })));
            if rng.chance(60) {
                steps.push((
                    suspended + day * (3 + rng.below(10) as i32),
                    Step::Act(i, ServiceAction::Resume),
                ));
            }
        }
        if rng.chance(8) {
            steps.push((
                active + day * (60 + rng.below(20) as i32),
                Step::Act(i, ServiceAction::Terminate),
            ));
        }
    }
    let mut day_start = start;
    while day_start < now {
        steps.push((day_start + SignedDuration::from_mins(5), Step::Bill));
        day_start += day;
    }
    steps.retain(|(t, _)| *t < now);
    steps.sort_by_key(|(t, _)| *t);

    let mut services: Vec<Option<ServiceId>> = vec![None; subscribers];
    for (at, step) in steps {
        clock.set(at);
        match step {
            Step::Create(i) => {
                let first = FIRST[rng.below(FIRST.len() as u64) as usize];
                let last = LAST[rng.below(LAST.len() as u64) as usize];
                let (town, zip) = TOWNS[rng.below(TOWNS.len() as u64) as usize];
                let address = Address {
                    line1: Some(format!(
                        "{} {}",
                        STREETS[rng.below(STREETS.len() as u64) as usize],
                        1 + rng.below(120)
                    )),
                    line2: None,
                    city: Some(town.into()),
                    postal_code: Some(zip.into()),
                    region: None,
                    country: Some("DE".into()),
                };
                let sub = history
                    .create_subscriber(
                        &actor,
                        CreateSubscriber {
                            number: None,
                            name: format!("{first} {last}"),
                            email: Some(format!(
                                "{}.{}{}@example.net",
                                first.to_lowercase(),
                                last.to_lowercase(),
                                i
                            )),
                            phone: Some(format!("+49 151 {:07}", rng.below(10_000_000))),
                            billing_address: Some(address.clone()),
                            currency: "EUR".into(),
                            tax_zone: Some("DE".into()),
                            dunning_policy: None,
                            billing_day: Some(if rng.chance(80) {
                                1
                            } else {
                                1 + rng.below(28) as i64
                            }),
                            custom_fields: None,
                        },
                    )
                    .await
                    .map_err(err)?;
                subscriber_ids[i] = Some(sub.id);
                let weights = [20u64, 25, 15, 20, 10, 10];
                let mut pick = rng.below(100);
                let mut plan = 0;
                for (k, w) in weights.iter().enumerate() {
                    if pick < *w {
                        plan = k;
                        break;
                    }
                    pick -= w;
                }
                let svc = history
                    .create_service(
                        &actor,
                        CreateService {
                            subscriber_id: sub.id.0,
                            plan_id: plan_ids[plan].0,
                            access_kind: None,
                            username: Some(format!("{}{}@demo-isp", first.to_lowercase(), i)),
                            password: Some(format!("pw-{:08x}", rng.next())),
                            mac_address: None,
                            circuit_id: None,
                            static_ip: (i % 10 == 0).then(|| format!("198.51.100.{}", 1 + i / 10)),
                            ip_pool: (i % 10 != 0).then(|| "residential".to_string()),
                            nas_id: Some(nas_ids[i % nas_ids.len()]),
                            service_address: Some(address),
                            simultaneous_use: None,
                        },
                    )
                    .await
                    .map_err(err)?;
                services[i] = Some(svc.id);
            }
            Step::Bill => {
                let run = history
                    .start_billing_run(history.billing_today(), None)
                    .await
                    .map_err(err)?;
                history
                    .execute_billing_run(run, &|_| {})
                    .await
                    .map_err(err)?;
                // Most subscribers pay what they owe within a week or two, a few late or not
                // at all; dunning takes care of those.
                let today = history.billing_today();
                for (i, sub) in subscriber_ids.iter().enumerate() {
                    let Some(sub) = *sub else { continue };
                    if (i as i64 + today.day() as i64) % 7 != 0 || !rng.chance(85) {
                        continue;
                    }
                    let owed = history
                        .get_account(sub)
                        .await
                        .map_err(err)?
                        .balance_minor()
                        .map_err(|e| err(e.into()))?;
                    if owed > 0 {
                        history
                            .record_payment(
                                &actor,
                                CreatePayment {
                                    subscriber_id: sub.0,
                                    amount_minor: owed,
                                    currency: None,
                                    method: PaymentMethod::BankTransfer,
                                    reference: None,
                                    external_id: None,
                                    received_at: None,
                                    allocations: Vec::new(),
                                },
                            )
                            .await
                            .map_err(err)?;
                    }
                }
                history.run_dunning(today).await.map_err(err)?;
            }
            Step::Act(i, action) => {
                let Some(id) = services[i] else { continue };
                // Steps drawn at random may not apply (e.g. a plan change to the same plan);
                // the state machine refuses them and the demo moves on.
                if let Err(e) = history
                    .service_action(&actor, id, action, ServiceActionBody::default())
                    .await
                {
                    tracing::debug!(error = %e, "demo step skipped");
                }
            }
        }
    }
    seed_radius_login(app, &actor, plan_ids[0]).await?;
    println!(
        "seeded {} plans, {} NAS and {subscribers} subscribers with {} days of history and daily billing runs",
        plan_ids.len(),
        nas_ids.len(),
        150
    );
    Ok(())
}
