//! Many parallel plan changes, suspensions and resumptions on the same services: every request
//! either lands whole or is refused, and each service ends with a timeline that replays
//! legally to exactly the state its row shows.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_domain::ids::ServiceId;
use lastmile_domain::timeline::{self, ServiceState};
use serde_json::json;
use std::sync::Arc;

const SERVICES: usize = 3;
const REQUESTS_PER_SERVICE: usize = 24;

async fn parallel_changes_end_in_a_consistent_timeline(t: TestApp) {
    let t = Arc::new(t);
    let plans = [
        t.plan("CONC-A", 3000).await,
        t.plan("CONC-B", 5000).await,
        t.plan("CONC-C", 7000).await,
    ];
    let mut services = Vec::new();
    for i in 0..SERVICES {
        let sub = t.subscriber(&format!("Concurrent {i}")).await;
        let svc = t.service(&sub, &plans[0], &format!("conc-{i}")).await;
        t.act(&svc, "activate", None).await;
        services.push(svc);
    }

    let mut tasks = Vec::new();
    for (s, svc) in services.iter().enumerate() {
        for r in 0..REQUESTS_PER_SERVICE {
            let t = t.clone();
            let svc = svc.clone();
            let plan = plans[(r + s) % plans.len()].clone();
            tasks.push(tokio::spawn(async move {
                let (action, body) = match r % 4 {
                    0 | 1 => ("change-plan", Some(json!({"plan_id": plan}))),
                    2 => ("suspend", None),
                    _ => ("resume", None),
                };
                let resp = t
                    .admin("POST", &format!("/api/v1/services/{svc}/{action}"), body)
                    .await;
                (svc, resp.status, resp.body)
            }));
        }
    }
    let mut accepted = std::collections::HashMap::<String, usize>::new();
    for task in tasks {
        let (svc, status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => *accepted.entry(svc).or_default() += 1,
            // The only acceptable refusal: the action was illegal in the state the service
            // was in when its turn came (e.g. resume while active, same plan again).
            StatusCode::CONFLICT => assert_eq!(
                body["type"], "urn:lastmile:problem:invalid-state",
                "{body:?}"
            ),
            other => panic!("unexpected {other}: {body:?}"),
        }
    }

    for svc in &services {
        let id = ServiceId(svc.parse().unwrap());
        let row = t.app.store.get_service(id).await.unwrap().unwrap();
        let events = t.app.store.service_timeline(id).await.unwrap();
        let ok = accepted.get(svc).copied().unwrap_or(0);
        assert_eq!(
            events.len(),
            ok + 1,
            "one event per accepted request, plus the activation"
        );
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        assert_eq!(
            seqs,
            (1..=events.len() as i64).collect::<Vec<_>>(),
            "gap-free sequence"
        );
        assert_eq!(
            row.revision,
            events.len() as i64 + 1,
            "one revision per write"
        );
        let (plan, version) = t.app.store.service_initial_plan(id).await.unwrap().unwrap();
        let state = timeline::replay(ServiceState::pending(plan, version), &events).unwrap();
        assert_eq!(state.status, row.status);
        assert_eq!(state.plan_version_id, row.plan_version_id);
        assert_eq!(state.suspension_cause, row.suspension_cause);

        let audit = t
            .admin(
                "GET",
                &format!("/api/v1/audit-events?entity_id={svc}&limit=500"),
                None,
            )
            .await;
        assert_eq!(
            audit.body["items"].as_array().unwrap().len(),
            events.len() + 1,
            "create + one per event"
        );
    }
    assert!(
        accepted.values().sum::<usize>() >= SERVICES,
        "some requests must land"
    );
}

on_both_backends!(parallel_changes_end_in_a_consistent_timeline);
