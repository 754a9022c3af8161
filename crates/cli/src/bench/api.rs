//! `lastmile bench api`.

use super::http_client::{query_value, HttpClient};
use super::*;
use anyhow::{bail, Result};
use jiff::SignedDuration;
use lastmile_api_types::{
    CreatePlan, CreateService, CreateSubscriber, PlanTermsBody, ServiceActionBody,
};
use lastmile_app::services::ServiceAction;
use lastmile_app::{App, AppConfig, ManualClock};
use lastmile_domain::audit::Actor;
use lastmile_domain::ids::PlanId;
use lastmile_domain::service::SuspensionCause;
use lastmile_domain::validate::MIN_SEARCH_CHARS;
use lastmile_store::{Page, SubscriberFilter};
use std::sync::Arc;
use std::time::Instant;

const FIRST_NAMES: &[&str] = &[
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Greta", "Hugo", "Ida", "Jonas", "Karla",
    "Leon", "Mia", "Noah", "Olga", "Paul", "Quinn", "Rosa", "Samuel", "Tara", "Uwe", "Vera", "Wim",
    "Xenia", "Yusuf", "Zoe", "Jürgen", "Åsa", "Chloé", "Łukasz",
];
const LAST_NAMES: &[&str] = &[
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Schulz",
    "Hoffmann",
    "Koch",
    "Richter",
    "Klein",
    "Wolf",
    "Schröder",
    "Neumann",
    "Schwarz",
    "Braun",
    "Zimmermann",
    "Krüger",
    "Hartmann",
    "Lange",
    "Werner",
    "Krause",
    "Lehmann",
    "Köhler",
    "Maier",
    "Walter",
    "König",
    "Mayer",
    "Peters",
    "Jung",
    "Hahn",
    "Vogel",
    "Friedrich",
    "Keller",
    "Günther",
    "Frank",
    "Berger",
    "Winkler",
    "Roth",
    "Beck",
    "Lorenz",
    "Baumann",
    "Franke",
    "Albrecht",
    "Schuster",
    "Simon",
    "Ludwig",
    "Böhm",
];
const MAIL_DOMAINS: &[&str] = &[
    "example.net",
    "example.org",
    "mail.example",
    "post.example",
    "isp.example",
];

/// What the API bench seeds for subscriber `i`: every searchable field filled, so a search
/// for any of them has something to find.
struct SeedSubscriber {
    name: String,
    email: String,
    phone: String,
}

fn seed_subscriber(i: usize) -> SeedSubscriber {
    let first = FIRST_NAMES[i % FIRST_NAMES.len()];
    let last = LAST_NAMES[(i / FIRST_NAMES.len()) % LAST_NAMES.len()];
    let ascii = |s: &str| -> String {
        s.chars()
            .filter(char::is_ascii_alphabetic)
            .collect::<String>()
            .to_ascii_lowercase()
    };
    SeedSubscriber {
        name: format!("{first} {last}"),
        email: format!(
            "{}.{}{i}@{}",
            ascii(first),
            ascii(last),
            MAIL_DOMAINS[i % MAIL_DOMAINS.len()]
        ),
        phone: format!("+49 30 {:07}", 1_000_000 + i),
    }
}

/// Login, MAC and (every fourth subscriber's first service) static address of service `s` of
/// subscriber `i`; unique for `i` below 2^22.
fn seed_service_ids(i: usize, s: usize) -> (String, String, Option<String>) {
    let username = format!("pppoe{i:07}{s}");
    let mac = format!(
        "02:4c:{s:02x}:{:02x}:{:02x}:{:02x}",
        (i >> 16) & 0xff,
        (i >> 8) & 0xff,
        i & 0xff
    );
    let ip = (s == 0 && matches!(i % 4, 0)).then(|| {
        format!(
            "10.{}.{}.{}",
            64 + ((i >> 16) & 63),
            (i >> 8) & 0xff,
            i & 0xff
        )
    });
    (username, mac, ip)
}

/// `seed`: seed an empty database first; `measure`: then time the read endpoints.
pub async fn api(
    app: &App,
    subscribers: usize,
    workers: usize,
    requests: usize,
    seed: bool,
    measure: bool,
) -> Result<()> {
    if seed {
        seed_api(app, subscribers, workers).await?;
    }
    if measure {
        measure_api(app, requests.max(1)).await?;
    }
    Ok(())
}

async fn seed_api(app: &App, subscribers: usize, workers: usize) -> Result<()> {
    use lastmile_api_types::{CreateNas, CreatePayment};
    use lastmile_domain::billing::account::PaymentMethod;
    use lastmile_domain::nas::VendorProfile;

    let existing = app
        .store
        .list_subscribers(
            &SubscriberFilter::default(),
            Page {
                after: None,
                limit: 1,
            },
        )
        .await?;
    if !existing.is_empty() {
        bail!("bench api seeds an empty database only (or pass --no-seed)");
    }
    let as_of = app.billing_today();
    let tz = app.config.billing.time_zone.clone();
    let start = as_of
        .checked_sub(jiff::ToSpan::days(60))?
        .to_zoned(tz)?
        .timestamp();
    // Services are created and activated on a clock 59 days back, so the billing run below
    // (today, real clock) invoices about two months of history.
    let clock = Arc::new(ManualClock::new(
        start + SignedDuration::from_hours(24 * 59),
    ));
    let seeder = App::new(
        app.store.clone(),
        clock.clone(),
        app.secrets.clone(),
        AppConfig {
            backdate_window: SignedDuration::from_hours(24 * 90),
            ..(*app.config).clone()
        },
    );
    let actor = Actor::system("bench");
    let mut plans: Vec<PlanId> = Vec::new();
    for (i, price) in [2_500i64, 3_900, 5_500, 8_900].into_iter().enumerate() {
        let p = seeder
            .create_plan(
                &actor,
                CreatePlan {
                    code: format!("API-{i}"),
                    name: format!("Fibre {}", 50 * (i + 1)),
                    terms: PlanTermsBody {
                        download_kbps: 50_000 * (i as u32 + 1),
                        upload_kbps: 10_000,
                        burst: None,
                        price_minor: price,
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
    let mut nas = Vec::new();
    for n in 0..3u8 {
        let created = seeder
            .create_nas(
                &actor,
                CreateNas {
                    name: format!("bras-{n}"),
                    ip: format!("192.0.2.{}", n + 1),
                    secret: "bench-secret".into(),
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
        nas.push(created.id);
    }
    let seeded = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (seeder, actor, plans, nas) =
            (seeder.clone(), actor.clone(), plans.clone(), nas.clone());
        tasks.push(tokio::spawn(async move {
            let mut services = 0usize;
            for i in (w..subscribers).step_by(workers) {
                let s = seed_subscriber(i);
                let sub = seeder
                    .create_subscriber(
                        &actor,
                        CreateSubscriber {
                            number: None,
                            name: s.name,
                            email: Some(s.email),
                            phone: Some(s.phone),
                            billing_address: None,
                            currency: "EUR".into(),
                            tax_zone: None,
                            dunning_policy: None,
                            billing_day: Some(if i % 5 == 0 { 1 + (i % 28) as i64 } else { 1 }),
                            custom_fields: None,
                        },
                    )
                    .await
                    .map_err(err)?;
                let count = if i % 3 == 0 { 2 } else { 1 };
                for s in 0..count {
                    let (username, mac, ip) = seed_service_ids(i, s);
                    let svc = seeder
                        .create_service(
                            &actor,
                            CreateService {
                                subscriber_id: sub.id.0,
                                plan_id: plans[(i + s) % plans.len()].0,
                                access_kind: None,
                                username: Some(username),
                                password: Some("bench-password".into()),
                                mac_address: Some(mac),
                                circuit_id: None,
                                static_ip: ip,
                                ip_pool: None,
                                nas_id: Some(nas[i % nas.len()].0),
                                service_address: None,
                                simultaneous_use: None,
                            },
                        )
                        .await
                        .map_err(err)?;
                    services += 1;
                    let day = |d: i64| Some(start + SignedDuration::from_hours(24 * d + 10));
                    let body = |at| ServiceActionBody {
                        effective_at: at,
                        reason: None,
                    };
                    // Every tenth service stays pending (its activation job waits).
                    if i % 10 == 7 {
                        continue;
                    }
                    seeder
                        .service_action(
                            &actor,
                            svc.id,
                            ServiceAction::Activate,
                            body(day((i % 40) as i64)),
                        )
                        .await
                        .map_err(err)?;
                    if i % 10 == 2 {
                        seeder
                            .service_action(
                                &actor,
                                svc.id,
                                ServiceAction::Suspend {
                                    cause: SuspensionCause::Operator,
                                },
                                body(day(50)),
                            )
                            .await
                            .map_err(err)?;
                    }
                }
            }
            Ok::<_, anyhow::Error>(services)
        }));
    }
    let mut services = 0;
    for t in tasks {
        services += t.await??;
    }
    println!(
        "seeded {subscribers} subscribers, {services} services in {:.1}s ({})",
        seeded.elapsed().as_secs_f64(),
        app.store.backend()
    );
    let billed = Instant::now();
    let run = app.start_billing_run(as_of, None).await.map_err(err)?;
    let run = app.execute_billing_run(run, &|_| {}).await.map_err(err)?;
    println!(
        "billing run for {as_of}: {} invoices in {:.1}s",
        run.invoices_created,
        billed.elapsed().as_secs_f64()
    );
    // A payment from every third subscriber, in parallel like the seeding.
    let paid = Instant::now();
    let ids = all_subscriber_ids(app).await?;
    let ids = Arc::new(ids);
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (app, actor, ids) = (app.clone(), actor.clone(), ids.clone());
        tasks.push(tokio::spawn(async move {
            let mut n = 0usize;
            for k in (w..ids.len()).step_by(workers).filter(|k| k % 3 == 0) {
                app.record_payment(
                    &actor,
                    CreatePayment {
                        subscriber_id: ids[k].0,
                        amount_minor: 2_500,
                        currency: None,
                        method: PaymentMethod::BankTransfer,
                        reference: None,
                        external_id: Some(format!("bench-{k}")),
                        received_at: None,
                        allocations: Vec::new(),
                    },
                )
                .await
                .map_err(err)?;
                n += 1;
            }
            Ok::<_, anyhow::Error>(n)
        }));
    }
    let mut payments = 0;
    for t in tasks {
        payments += t.await??;
    }
    println!(
        "recorded {payments} payments in {:.1}s",
        paid.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Every subscriber's id, in id order (through the store, untimed).
async fn all_subscriber_ids(app: &App) -> Result<Vec<lastmile_domain::ids::SubscriberId>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = app
            .store
            .list_subscribers(&SubscriberFilter::default(), Page { after, limit: 500 })
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.0);
        out.extend(page.iter().map(|s| s.id));
    }
    Ok(out)
}

/// A deterministic pseudo-random sequence (xorshift64*), so runs are comparable.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % below.max(1)
    }
}

/// One measured endpoint: its label and the request paths, one per request.
struct Endpoint {
    label: String,
    paths: Vec<String>,
    /// Follow each response's `next_cursor` (a walk through the pages) instead of `paths`
    /// after the first.
    walk: bool,
}

async fn measure_api(app: &App, requests: usize) -> Result<()> {
    use lastmile_domain::auth::Role;
    use lastmile_store::ServiceFilter;

    let (_, token) = app
        .create_operator(&Actor::system("bench"), "bench api", Role::Admin)
        .await
        .map_err(err)?;
    let state = lastmile_http::AppState::new(app.clone(), lastmile_http::metrics::Metrics::new());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server =
        tokio::spawn(async move { axum::serve(listener, lastmile_http::router(state)).await });

    // What to ask for, read through the store (untimed).
    let ids = all_subscriber_ids(app).await?;
    if ids.is_empty() {
        bail!("bench api needs a seeded database (run it with --seed-only first)");
    }
    let mut rng = Lcg(0x9e37_79b9_7f4a_7c15);
    let sample: Vec<_> = (0..requests).map(|_| ids[rng.next(ids.len())]).collect();
    let mut terms = Vec::new();
    let mut short_terms = Vec::new();
    let mut rare_short_terms = Vec::new();
    let mut service_ids = Vec::new();
    for (k, sub_id) in sample.iter().enumerate() {
        let Some(sub) = app.store.get_subscriber(*sub_id).await? else {
            continue;
        };
        let svcs = app
            .store
            .list_services(
                &ServiceFilter {
                    subscriber_id: Some(*sub_id),
                    ..Default::default()
                },
                Page {
                    after: None,
                    limit: 10,
                },
            )
            .await?;
        if let Some(s) = svcs.first() {
            service_ids.push(s.id);
        }
        let svc = svcs.first();
        let last_name = sub
            .name
            .split_whitespace()
            .last()
            .unwrap_or(&sub.name)
            .to_string();
        // Sparse terms (one subscriber), medium ones (a surname: 2 %) and dense ones (a mail
        // domain: 20 %; a first name: 3 %), in turn.
        let term = match k % 8 {
            0 => last_name.to_lowercase(),
            1 => sub.number.as_str().to_string(),
            2 => sub.email.clone().unwrap_or_default(),
            3 => sub
                .phone
                .as_deref()
                .map(|p| {
                    p.chars()
                        .rev()
                        .take(6)
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect()
                })
                .unwrap_or_default(),
            4 => svc.and_then(|s| s.username.clone()).unwrap_or_default(),
            5 => svc
                .and_then(|s| s.mac_address.as_deref())
                .and_then(|m| m.get(6..))
                .map(str::to_uppercase)
                .unwrap_or_default(),
            6 => MAIL_DOMAINS[k % MAIL_DOMAINS.len()].to_string(),
            _ => sub.name.split_whitespace().next().unwrap_or("").to_string(),
        };
        // The API refuses shorter needles (a phone or MAC part could be one).
        if term.trim().chars().count() >= MIN_SEARCH_CHARS {
            terms.push(term);
        }
        // The shortest needles the API takes: ones that match often (a surname's start,
        // three digits), whose trigram is in many rows, and ones whose trigram is in none.
        short_terms.push(if k % 2 == 0 {
            last_name.chars().take(MIN_SEARCH_CHARS).collect()
        } else {
            format!("{:03}", k % 1000)
        });
        rare_short_terms.push(["zqx", "qxj", "xjz", "yyq"][k % 4].to_string());
    }
    let plans = app
        .store
        .list_plans(
            &Default::default(),
            Page {
                after: None,
                limit: 10,
            },
        )
        .await?;
    let nas = app
        .store
        .list_nas(Page {
            after: None,
            limit: 10,
        })
        .await?;
    let pick = |n: usize| sample[n % sample.len()].0;
    let per = |f: &dyn Fn(usize) -> String| (0..requests).map(f).collect::<Vec<_>>();
    let api = "/api/v1";
    let mut endpoints = vec![
        Endpoint {
            label: "GET /subscribers/{id}".into(),
            paths: per(&|n| format!("{api}/subscribers/{}", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /subscribers?q= (3+ chars)".into(),
            paths: per(&|n| {
                format!(
                    "{api}/subscribers?q={}",
                    query_value(&terms[n % terms.len()])
                )
            }),
            walk: false,
        },
        Endpoint {
            label: "GET /subscribers?q= (3 chars, common)".into(),
            paths: per(&|n| {
                format!(
                    "{api}/subscribers?q={}",
                    query_value(&short_terms[n % short_terms.len()])
                )
            }),
            walk: false,
        },
        Endpoint {
            label: "GET /subscribers?q= (3 chars, no match)".into(),
            paths: per(&|n| {
                format!(
                    "{api}/subscribers?q={}",
                    query_value(&rare_short_terms[n % rare_short_terms.len()])
                )
            }),
            walk: false,
        },
        Endpoint {
            label: "GET /subscribers?status=suspended (pages)".into(),
            paths: vec![format!("{api}/subscribers?status=suspended")],
            walk: true,
        },
        Endpoint {
            label: "GET /subscribers (pages)".into(),
            paths: vec![format!("{api}/subscribers")],
            walk: true,
        },
        Endpoint {
            label: "GET /services?subscriber_id=".into(),
            paths: per(&|n| format!("{api}/services?subscriber_id={}", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /services?status=pending (pages)".into(),
            paths: vec![format!("{api}/services?status=pending")],
            walk: true,
        },
        Endpoint {
            label: "GET /invoices?subscriber_id=".into(),
            paths: per(&|n| format!("{api}/invoices?subscriber_id={}", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /invoices?status=issued (pages)".into(),
            paths: vec![format!("{api}/invoices?status=issued")],
            walk: true,
        },
        Endpoint {
            label: "GET /subscribers/{id}/ledger".into(),
            paths: per(&|n| format!("{api}/subscribers/{}/ledger", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /audit-events?entity_id=".into(),
            paths: per(&|n| format!("{api}/audit-events?entity_id={}", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /audit-events?subscriber_id=".into(),
            paths: per(&|n| format!("{api}/audit-events?subscriber_id={}", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /audit-events?entity_type=service (pages)".into(),
            paths: vec![format!("{api}/audit-events?entity_type=service")],
            walk: true,
        },
        Endpoint {
            label: "GET /provisioning-jobs?subscriber_id=".into(),
            paths: per(&|n| format!("{api}/provisioning-jobs?subscriber_id={}", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /provisioning-jobs?status=pending (pages)".into(),
            paths: vec![format!("{api}/provisioning-jobs?status=pending")],
            walk: true,
        },
        Endpoint {
            label: "GET /payments?subscriber_id=".into(),
            paths: per(&|n| format!("{api}/payments?subscriber_id={}", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /payments (pages)".into(),
            paths: vec![format!("{api}/payments")],
            walk: true,
        },
        Endpoint {
            label: "GET /credit-notes?subscriber_id=".into(),
            paths: per(&|n| format!("{api}/credit-notes?subscriber_id={}", pick(n))),
            walk: false,
        },
        Endpoint {
            label: "GET /plans".into(),
            paths: vec![format!("{api}/plans")],
            walk: false,
        },
        Endpoint {
            label: "GET /nas".into(),
            paths: vec![format!("{api}/nas")],
            walk: false,
        },
        Endpoint {
            label: "GET /billing-runs".into(),
            paths: vec![format!("{api}/billing-runs")],
            walk: false,
        },
    ];
    if !service_ids.is_empty() {
        let svc = |n: usize| service_ids[n % service_ids.len()].0;
        endpoints.push(Endpoint {
            label: "GET /services/{id}/timeline".into(),
            paths: per(&|n| format!("{api}/services/{}/timeline", svc(n))),
            walk: false,
        });
        endpoints.push(Endpoint {
            label: "GET /provisioning-jobs?service_id=".into(),
            paths: per(&|n| format!("{api}/provisioning-jobs?service_id={}", svc(n))),
            walk: false,
        });
    }
    if let Some(p) = plans.first() {
        endpoints.push(Endpoint {
            label: "GET /services?plan_id= (pages)".into(),
            paths: vec![format!("{api}/services?plan_id={}", p.id.0)],
            walk: true,
        });
    }
    if let Some(n) = nas.first() {
        endpoints.push(Endpoint {
            label: "GET /services?nas_id= (pages)".into(),
            paths: vec![format!("{api}/services?nas_id={}", n.id.0)],
            walk: true,
        });
    }

    let mut client = HttpClient::connect(addr, token).await?;
    println!(
        "{} subscribers ({}); {requests} sequential requests per endpoint after 20 untimed:",
        ids.len(),
        app.store.backend()
    );
    println!(
        "{:<48} {:>9} {:>9} {:>9}",
        "endpoint", "p50 ms", "p99 ms", "max ms"
    );
    for e in &endpoints {
        let mut times = Vec::with_capacity(requests);
        let mut cursor: Option<String> = None;
        for n in 0..requests + 20 {
            let base = &e.paths[n % e.paths.len()];
            let path = match (&cursor, e.walk) {
                (Some(c), true) => {
                    let sep = if base.contains('?') { '&' } else { '?' };
                    format!("{base}{sep}cursor={c}")
                }
                _ => base.clone(),
            };
            let t0 = Instant::now();
            let (status, body) = client.get(&path).await?;
            let took = t0.elapsed();
            if status != 200 {
                bail!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
            }
            if n >= 20 {
                times.push(took);
            }
            if e.walk {
                let v: serde_json::Value = serde_json::from_slice(&body)?;
                cursor = v
                    .get("next_cursor")
                    .and_then(|c| c.as_str())
                    .map(str::to_string);
            }
        }
        times.sort();
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        let at = |p: f64| {
            let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len()) - 1;
            ms(times[i])
        };
        println!(
            "{:<48} {:>9.2} {:>9.2} {:>9.2}",
            e.label,
            at(0.50),
            at(0.99),
            times.last().map_or(0.0, |d| ms(*d))
        );
    }
    server.abort();
    Ok(())
}
