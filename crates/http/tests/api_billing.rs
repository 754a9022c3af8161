//! Billing over HTTP: runs, invoices, corrections, roles; a subscriber whose data cannot be
//! rated is reported and skipped while the others are invoiced.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_app::Clock;
use lastmile_domain::auth::Role;
use lastmile_domain::ids::BillingRunId;
use serde_json::{json, Value};

/// Starts a run over HTTP and drives it to completion in the test (the background executor
/// started by the endpoint may race it; runs are idempotent, so the result is the same).
async fn run_billing(t: &TestApp, as_of: &str) -> Value {
    let r = t
        .call(
            "POST",
            "/api/v1/billing-runs",
            Some(Role::Billing),
            Some(json!({"as_of": as_of})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["as_of"], as_of);
    let id = BillingRunId(r.body["id"].as_str().unwrap().parse().unwrap());
    let run = t.app.get_billing_run(id).await.unwrap();
    t.app.execute_billing_run(run, &|_| {}).await.unwrap();
    let g = t
        .call(
            "GET",
            &format!("/api/v1/billing-runs/{id}"),
            Some(Role::Support),
            None,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body["status"], "completed");
    g.body
}

async fn invoices_of(t: &TestApp, sub: &str) -> Vec<Value> {
    let list = t
        .admin(
            "GET",
            &format!("/api/v1/invoices?subscriber_id={sub}"),
            None,
        )
        .await;
    let mut out = Vec::new();
    for i in list.body["items"].as_array().unwrap() {
        let full = t
            .admin(
                "GET",
                &format!("/api/v1/invoices/{}", i["id"].as_str().unwrap()),
                None,
            )
            .await;
        out.push(full.body);
    }
    out
}

fn amounts(inv: &Value) -> Vec<i64> {
    inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount_minor"].as_i64().unwrap())
        .collect()
}

async fn a_month_of_service_is_invoiced_once_and_corrected_later(t: TestApp) {
    let sub = t.subscriber("Billy Billing").await;
    let a = t.plan("BILL-A", 6000).await;
    let b = t.plan("BILL-B", 9000).await;
    let svc = t.service(&sub, &a, "billy").await;
    t.act(
        &svc,
        "activate",
        Some(json!({"effective_at": "2026-03-01T08:00:00Z"})),
    )
    .await;

    let run = run_billing(&t, "2026-03-15").await;
    assert_eq!(run["invoices_created"], 1);
    let invs = invoices_of(&t, &sub).await;
    assert_eq!(invs.len(), 1);
    let inv = &invs[0];
    assert_eq!(inv["number"], "INV-000001");
    assert_eq!(inv["status"], "issued");
    assert_eq!(inv["period_start"], "2026-03-01");
    assert_eq!(inv["period_end"], "2026-04-01");
    assert_eq!(inv["due_date"], "2026-03-29");
    assert_eq!(inv["total_minor"], 6000);
    assert_eq!(
        inv["lines"][0]["description"],
        "BILL-A, period from 2026-03-01: 31 of 31 days"
    );
    assert_eq!(inv["lines"][0]["charge_kind"], "recurring");

    // Running again for the same date changes nothing.
    let again = run_billing(&t, "2026-03-15").await;
    assert_eq!(again["invoices_created"], 0);
    assert_eq!(invoices_of(&t, &sub).await.len(), 1);

    // A back-dated upgrade (entered after March was invoiced) corrects on April's invoice.
    t.clock.set("2026-04-02T09:00:00Z".parse().unwrap());
    t.act(
        &svc,
        "change-plan",
        Some(json!({"plan_id": b, "effective_at": "2026-03-22T10:00:00Z"})),
    )
    .await;
    let run = run_billing(&t, "2026-04-02").await;
    assert_eq!(run["invoices_created"], 1);
    let invs = invoices_of(&t, &sub).await;
    let april = invs
        .iter()
        .find(|i| i["period_start"] == "2026-04-01")
        .unwrap();
    assert_eq!(april["number"], "INV-000002");
    // March 22..31 = 10 days: A credited 6000×10/31 = 1935.48 → -1935; B 9000×10/31 = 2903.
    assert_eq!(amounts(april), [-1935, 2903, 9000]);
    assert_eq!(april["lines"][0]["correction"], true);
    assert_eq!(april["lines"][2]["correction"], false);
    assert_eq!(april["total_minor"], -1935 + 2903 + 9000);
    // The March invoice is untouched.
    let march = invs
        .iter()
        .find(|i| i["period_start"] == "2026-03-01")
        .unwrap();
    assert_eq!(amounts(march), [6000]);
}

async fn unratable_subscribers_are_reported_and_skipped(t: TestApp) {
    let good = t.subscriber("Good Gina").await;
    let bad = t.subscriber("Bad Bert").await;
    let a = t.plan("SKIP-A", 6000).await;
    let g = t.service(&good, &a, "gina").await;
    let b = t.service(&bad, &a, "bert").await;
    t.act(&g, "activate", None).await;
    t.act(&b, "activate", None).await;
    // Corrupt Bert's plan behind the API's back: a new version priced in another currency,
    // written straight into his timeline through the store.
    let v2 = t
        .admin(
            "POST",
            &format!("/api/v1/plans/{a}/versions"),
            Some(json!({"terms": {
            "download_kbps": 1000, "upload_kbps": 1000, "price_minor": 100, "currency": "USD"}})),
        )
        .await;
    assert_eq!(v2.status, StatusCode::CREATED);
    let sid = lastmile_domain::ids::ServiceId(b.parse().unwrap());
    let before = t.app.store.get_service(sid).await.unwrap().unwrap();
    let mut after = before.clone();
    let version = lastmile_domain::ids::PlanVersionId(
        v2.body["current_version"]["id"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap(),
    );
    after.plan_version_id = version;
    after.revision += 1;
    let now = t.clock.now();
    let event = lastmile_domain::timeline::TimelineEvent {
        id: lastmile_domain::ids::ServiceEventId::generate(),
        service_id: sid,
        subscriber_id: before.subscriber_id,
        seq: 2,
        kind: lastmile_domain::timeline::EventKind::PlanChanged,
        effective_at: now,
        recorded_at: now,
        plan_id: Some(before.plan_id),
        plan_version_id: Some(version),
        suspension_cause: None,
        reason: None,
        actor: "test".into(),
    };
    let audit = lastmile_domain::audit::AuditEvent::new(
        now,
        &lastmile_domain::audit::Actor::system("test"),
        None,
        "service",
        sid,
        "test",
        Some(&before),
        Some(&after),
    );
    t.app
        .store
        .record_service_change(&lastmile_store::ServiceChange {
            service: after,
            expected_revision: before.revision,
            event,
            audit,
            jobs: vec![],
        })
        .await
        .unwrap();

    let run = run_billing(&t, "2026-03-15").await;
    assert_eq!(run["invoices_created"], 1);
    assert_eq!(run["subscribers_processed"], 2);
    let errors = run["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0]["subscriber_id"], bad.as_str());
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("priced in USD"),
        "{errors:?}"
    );
    assert_eq!(invoices_of(&t, &good).await.len(), 1);
    assert_eq!(invoices_of(&t, &bad).await.len(), 0);
}

async fn billing_roles_filters_and_bad_input(t: TestApp) {
    let sub = t.subscriber("Rita Roles").await;
    let a = t.plan("BROLE-A", 6000).await;
    let svc = t.service(&sub, &a, "rita-b").await;
    t.act(&svc, "activate", None).await;
    for role in [Role::Support, Role::Noc, Role::Readonly] {
        let r = t
            .call("POST", "/api/v1/billing-runs", Some(role), None)
            .await;
        assert_problem(&r, 403, "forbidden");
    }
    assert_problem(
        &t.call("POST", "/api/v1/billing-runs", None, None).await,
        401,
        "unauthorized",
    );
    let r = t
        .admin(
            "POST",
            "/api/v1/billing-runs",
            Some(json!({"as_of": "15/03/2026"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["as_of"]);
    let r = t
        .admin(
            "POST",
            "/api/v1/billing-runs",
            Some(json!({"when": "2026-03-15"})),
        )
        .await;
    assert_eq!(fields(&r), ["when"]);

    // Default as_of: today in the operator's time zone.
    let r = t.admin("POST", "/api/v1/billing-runs", None).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(r.body["as_of"], "2026-03-15");
    let run = t
        .app
        .get_billing_run(BillingRunId(
            r.body["id"].as_str().unwrap().parse().unwrap(),
        ))
        .await
        .unwrap();
    t.app.execute_billing_run(run, &|_| {}).await.unwrap();

    for role in [Role::Admin, Role::Billing, Role::Support, Role::Readonly] {
        let r = t.call("GET", "/api/v1/invoices", Some(role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role}");
        let r = t
            .call("GET", "/api/v1/billing-runs", Some(role), None)
            .await;
        assert_eq!(r.status, StatusCode::OK, "{role}");
    }
    assert_problem(
        &t.call("GET", "/api/v1/invoices", Some(Role::Noc), None)
            .await,
        403,
        "forbidden",
    );
    let list = t
        .admin(
            "GET",
            "/api/v1/invoices?status=issued&period_start=2026-03-01",
            None,
        )
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    assert!(
        list.body["items"][0].get("lines").is_none(),
        "lists omit lines"
    );
    let none = t.admin("GET", "/api/v1/invoices?status=paid", None).await;
    assert_eq!(none.body["items"], json!([]));
    assert_eq!(
        fields(&t.admin("GET", "/api/v1/invoices?status=lost", None).await),
        ["status"]
    );
    assert_eq!(
        fields(
            &t.admin("GET", "/api/v1/invoices?period_start=march", None)
                .await
        ),
        ["period_start"]
    );

    let unknown = "01900000-0000-7000-8000-000000000000";
    assert_problem(
        &t.admin("GET", &format!("/api/v1/invoices/{unknown}"), None)
            .await,
        404,
        "not-found",
    );
    assert_problem(
        &t.admin("GET", &format!("/api/v1/billing-runs/{unknown}"), None)
            .await,
        404,
        "not-found",
    );
    assert_problem(
        &t.admin("GET", "/api/v1/invoices/nope", None).await,
        404,
        "not-found",
    );
}

on_both_backends!(
    a_month_of_service_is_invoiced_once_and_corrected_later,
    unratable_subscribers_are_reported_and_skipped,
    billing_roles_filters_and_bad_input,
);
