//! `lastmile bench billing`.

use super::*;
use anyhow::{bail, Result};
use jiff::civil::Date;
use jiff::SignedDuration;
use lastmile_api_types::{
    CreatePlan, CreateService, CreateSubscriber, PlanTermsBody, ServiceActionBody,
};
use lastmile_app::services::ServiceAction;
use lastmile_app::{App, AppConfig, ManualClock};
use lastmile_domain::audit::Actor;
use lastmile_domain::ids::PlanId;
use lastmile_domain::service::SuspensionCause;
use lastmile_store::{Page, SubscriberFilter};
use std::sync::Arc;
use std::time::Instant;

/// `seed`: seed first (the database must be empty); else measure the runs on a database an
/// earlier `--seed-only` seeded (copy it, or use it as a PostgreSQL template, to measure
/// repeatedly). `run`: measure the runs (false with `--seed-only`).
pub async fn billing(
    app: &App,
    subscribers: usize,
    as_of: Date,
    workers: usize,
    seed: bool,
    run: bool,
) -> Result<()> {
    if seed {
        seed_billing(app, subscribers, as_of, workers).await?;
    }
    if run {
        measure_runs(app, as_of).await?;
    }
    Ok(())
}

async fn seed_billing(app: &App, subscribers: usize, as_of: Date, workers: usize) -> Result<()> {
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
        bail!("bench billing needs an empty database (pass --database-url to a fresh one)");
    }
    let tz = app.config.billing.time_zone.clone();
    let start = as_of
        .checked_sub(jiff::ToSpan::days(60))?
        .to_zoned(tz)?
        .timestamp();
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
                    code: format!("BENCH-{i}"),
                    name: format!("Bench {i}"),
                    terms: PlanTermsBody {
                        download_kbps: 50_000 * (i as u32 + 1),
                        upload_kbps: 10_000,
                        burst: None,
                        price_minor: price,
                        currency: "EUR".into(),
                        billing_interval: None,
                        setup_fee_minor: Some(if i == 3 { 4_900 } else { 0 }),
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
    let seeded = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (seeder, actor, plans) = (seeder.clone(), actor.clone(), plans.clone());
        tasks.push(tokio::spawn(async move {
            let mut events = 0usize;
            let mut services = 0usize;
            for i in (w..subscribers).step_by(workers) {
                let sub = seeder
                    .create_subscriber(
                        &actor,
                        CreateSubscriber {
                            number: None,
                            name: format!("Bench Subscriber {i}"),
                            email: None,
                            phone: None,
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
                    let svc = seeder
                        .create_service(
                            &actor,
                            CreateService {
                                subscriber_id: sub.id.0,
                                plan_id: plans[(i + s) % plans.len()].0,
                                access_kind: None,
                                username: Some(format!("bench-{i}-{s}")),
                                password: Some("bench-password".into()),
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
                    services += 1;
                    let day = |d: i64| Some(start + SignedDuration::from_hours(24 * d + 10));
                    let body = |at| ServiceActionBody {
                        effective_at: at,
                        reason: None,
                    };
                    seeder
                        .service_action(
                            &actor,
                            svc.id,
                            ServiceAction::Activate,
                            body(day((i % 40) as i64)),
                        )
                        .await
                        .map_err(err)?;
                    events += 1;
                    if i % 5 == 1 {
                        let to = plans[(i + s + 1) % plans.len()];
                        seeder
                            .service_action(
                                &actor,
                                svc.id,
                                ServiceAction::ChangePlan { plan_id: to },
                                body(day(45)),
                            )
                            .await
                            .map_err(err)?;
                        events += 1;
                    }
                    if i % 10 == 2 {
                        seeder
                            .service_action(
                                &actor,
                                svc.id,
                                ServiceAction::Suspend {
                                    cause: SuspensionCause::Dunning,
                                },
                                body(day(50)),
                            )
                            .await
                            .map_err(err)?;
                        events += 1;
                    }
                }
            }
            Ok::<_, anyhow::Error>((services, events))
        }));
    }
    let (mut services, mut events) = (0, 0);
    for t in tasks {
        let (s, e) = t.await??;
        services += s;
        events += e;
    }
    println!(
        "seeded {subscribers} subscribers, {services} services, {events} timeline events in {:.1}s ({})",
        seeded.elapsed().as_secs_f64(),
        app.store.backend()
    );
    Ok(())
}

async fn measure_runs(app: &App, as_of: Date) -> Result<()> {
    let rss_before = peak_rss_mib();
    reset_peak_rss();
    let t0 = Instant::now();
    let run = app.start_billing_run(as_of, None).await.map_err(err)?;
    let run = app.execute_billing_run(run, &|_| {}).await.map_err(err)?;
    let secs = t0.elapsed().as_secs_f64();
    let peak = peak_rss_mib();
    println!(
        "billing run: {} subscribers, {} invoices, {} errors in {secs:.2}s = {:.0} invoices/s; peak RSS during the run {} (before: {})",
        run.subscribers_processed,
        run.invoices_created,
        run.errors.len(),
        run.invoices_created as f64 / secs,
        peak.map(|m| format!("{m:.0} MiB")).unwrap_or_else(|| "n/a".into()),
        rss_before.map(|m| format!("{m:.0} MiB")).unwrap_or_else(|| "n/a".into()),
    );
    let t1 = Instant::now();
    let again = app.start_billing_run(as_of, None).await.map_err(err)?;
    let again = app.execute_billing_run(again, &|_| {}).await.map_err(err)?;
    let secs = t1.elapsed().as_secs_f64();
    println!(
        "no-op rerun: {} subscribers, {} invoices in {secs:.2}s = {:.0} subscribers/s",
        again.subscribers_processed,
        again.invoices_created,
        again.subscribers_processed as f64 / secs,
    );
    Ok(())
}
