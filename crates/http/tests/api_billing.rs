//! Billing over HTTP: runs, invoices, corrections, roles; a subscriber whose data cannot be
//! rated is reported and skipped while the others are invoiced.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_app::Clock;
use lastmile_domain::auth::Role;
use lastmile_domain::billing::invoice::BillingRunStatus;
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
        "BILL-A, 2026-03-01 to 2026-03-31: 31 of 31 days"
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

/// Issue 8.1: a run dated before what is invoiced bills nothing for those periods. It used to
/// issue INV-000002 for March with an April line of −30.00 (and mark INV-000001 paid with it).
async fn a_run_dated_in_the_past_never_reverses_what_was_billed(t: TestApp) {
    set_clock(&t, "2026-04-05T12:00:00Z");
    let early = t.subscriber("Early Erna").await;
    let late = t.subscriber("Late Lars").await;
    let plan = t.plan("PAST-30", 3000).await;
    let svc = t.service(&early, &plan, "erna").await;
    t.act(
        &svc,
        "activate",
        Some(json!({"effective_at": "2026-03-10T08:00:00Z"})),
    )
    .await;
    let first = bill_over_http(&t, "2026-04-01", None).await;
    assert_eq!(first["invoices_created"], 1);
    // Lars joins later: his first invoice is April's.
    let svc2 = t.service(&late, &plan, "lars").await;
    t.act(
        &svc2,
        "activate",
        Some(json!({"effective_at": "2026-04-05T08:00:00Z"})),
    )
    .await;
    bill_over_http(&t, "2026-04-05", None).await;
    let before: Vec<Value> = [invoices_of(&t, &early).await, invoices_of(&t, &late).await].concat();
    assert_eq!(before.len(), 2);
    let erna = &invoices_of(&t, &early).await[0];
    assert_eq!(amounts(erna), [2129, 3000]);

    for as_of in ["2026-03-20", "2026-01-01", "2000-01-01"] {
        let run = bill_over_http(&t, as_of, None).await;
        assert_eq!(run["invoices_created"], 0, "as of {as_of}");
        // Scoped to one subscriber, the run is refused and says what is invoiced.
        let r = t
            .call(
                "POST",
                "/api/v1/billing-runs",
                Some(Role::Billing),
                Some(json!({"as_of": as_of, "subscriber_id": early})),
            )
            .await;
        assert_problem(&r, 409, "already-invoiced");
        assert_eq!(r.body["current_state"], "2026-04-01", "{:?}", r.body);
    }
    let after: Vec<Value> = [invoices_of(&t, &early).await, invoices_of(&t, &late).await].concat();
    assert_eq!(after, before, "nothing billed, nothing paid");
    assert_eq!(after[0]["status"], "issued");
}

/// Issue 8.2: billing dates are bounded (a run as of 9999-12-31 never ended).
async fn billing_dates_outside_the_window_are_refused(t: TestApp) {
    for as_of in [
        "9999-12-31",
        "9999-12-01",
        "0000-01-01",
        "1999-12-31",
        "2027-03-17",
    ] {
        let r = t
            .call(
                "POST",
                "/api/v1/billing-runs",
                Some(Role::Billing),
                Some(json!({"as_of": as_of})),
            )
            .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["as_of"], "{as_of}: {:?}", r.body);
    }
    // Today (2026-03-15) + 366 days is the last date accepted.
    let run = bill_over_http(&t, "2027-03-16", None).await;
    assert_eq!(run["status"], "completed");
    assert_eq!(
        t.admin("GET", "/api/v1/billing-runs", None).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "no run was recorded for a refused date"
    );
}

/// Issue 8.3: a run that cannot finish is `failed` with its error, never `running` forever;
/// starting one for the date again invoices what is missing.
async fn a_run_that_cannot_finish_is_failed_with_its_error(t: TestApp) {
    let sub = t.subscriber("Failing Fred").await;
    let plan = t.plan("FAIL-1", 1000).await;
    active_service(&t, &sub, &plan, "fred").await;
    t.exec_sql(
        "CREATE TRIGGER fail_invoices BEFORE INSERT ON invoices
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        "CREATE FUNCTION fail_invoices() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
         CREATE TRIGGER fail_invoices BEFORE INSERT ON invoices
           FOR EACH ROW EXECUTE FUNCTION fail_invoices();",
    )
    .await;
    let r = t
        .call(
            "POST",
            "/api/v1/billing-runs",
            Some(Role::Billing),
            Some(json!({"as_of": "2026-03-15"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    t.state
        .billing_run_idle(BillingRunId(id.parse().unwrap()))
        .await;
    let run = t
        .admin("GET", &format!("/api/v1/billing-runs/{id}"), None)
        .await;
    assert_eq!(run.body["status"], "failed", "{:?}", run.body);
    assert!(
        run.body["failure"]
            .as_str()
            .unwrap()
            .contains("injected failure"),
        "{:?}",
        run.body
    );
    assert!(run.body["finished_at"].is_string());
    assert!(invoices_of(&t, &sub).await.is_empty());

    t.exec_sql(
        "DROP TRIGGER fail_invoices",
        "DROP TRIGGER fail_invoices ON invoices",
    )
    .await;
    let again = bill_over_http(&t, "2026-03-15", None).await;
    assert_ne!(
        again["id"],
        json!(id),
        "a failed run is not resumed: a new one starts"
    );
    assert_eq!(again["invoices_created"], 1);
}

/// Issue 8.2: at shutdown a run stops at its next batch boundary, still `running`, and a
/// second start resumes it where it stopped.
async fn shutdown_stops_a_run_at_a_batch_boundary_and_it_resumes(t: TestApp) {
    let plan = t.plan("STOP-1", 1000).await;
    for i in 0..5 {
        let sub = t.subscriber(&format!("Stopping Sam {i}")).await;
        active_service(&t, &sub, &plan, &format!("sam{i}")).await;
    }
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut config = (*t.app.config).clone();
    config.billing.batch_size = 1;
    let app = lastmile_app::App {
        config: std::sync::Arc::new(config),
        ..t.app.clone()
    }
    .with_stopping(stopping);
    let as_of = jiff::civil::date(2026, 3, 15);
    let run = app.start_billing_run(as_of, None).await.unwrap();
    // Shutdown begins as the first batch's write reports.
    let stopped = app
        .execute_billing_run(run.clone(), &|_| {
            let _ = stop.send(true);
        })
        .await
        .unwrap();
    // Two writes are kept in flight, so by then the second batch was queued and the third
    // rated: both are written, and the run stops before reading a fourth.
    assert_eq!(stopped.status, BillingRunStatus::Running);
    assert_eq!(stopped.subscribers_processed, 3);
    assert_eq!(stopped.invoices_created, 3);
    // Started again (a new process), it resumes the same run and finishes it.
    let resumed = t.app.start_billing_run(as_of, None).await.unwrap();
    assert_eq!(resumed.id, run.id);
    let done = t.app.execute_billing_run(resumed, &|_| {}).await.unwrap();
    assert_eq!(done.status, BillingRunStatus::Completed);
    assert_eq!(done.subscribers_processed, 5);
    assert_eq!(done.invoices_created, 5);
}

/// Issue 8.5: a correction of a period before a tax-rate change is taxed at the rate of the
/// period it corrects (it used to take the new rate).
async fn corrections_are_taxed_at_the_rate_of_the_period_they_correct(t: TestApp) {
    let zone = t
        .admin(
            "POST",
            "/api/v1/tax-zones",
            Some(
                json!({"code": "DT", "name": "Dated", "prices_include_tax": false,
                        "taxes": [{"name": "VAT", "tax_class": "standard", "rate": "15"}]}),
            ),
        )
        .await;
    assert_eq!(zone.status, StatusCode::CREATED, "{:?}", zone.body);
    let zid = zone.body["id"].as_str().unwrap().to_string();
    let sub = t
        .admin(
            "POST",
            "/api/v1/subscribers",
            Some(json!({"name": "Taxed Tina", "currency": "EUR", "tax_zone": "DT"})),
        )
        .await;
    let sub = sub.body["id"].as_str().unwrap().to_string();
    let a = t.plan("TAXD-A", 6000).await;
    let b = t.plan("TAXD-B", 9000).await;
    let svc = active_service(&t, &sub, &a, "tina").await;
    bill_over_http(&t, "2026-03-15", None).await;
    // From April the rate is 14.5 %; March keeps 15 %.
    let put = t
        .admin(
            "PUT",
            &format!("/api/v1/tax-zones/{zid}"),
            Some(
                json!({"code": "DT", "name": "Dated", "prices_include_tax": false,
                        "taxes": [{"name": "VAT", "tax_class": "standard", "rate": "15"},
                                  {"name": "VAT", "tax_class": "standard", "rate": "14.5",
                                   "valid_from": "2026-04-01"}]}),
            ),
        )
        .await;
    assert_eq!(put.status, StatusCode::OK, "{:?}", put.body);
    assert_eq!(put.body["taxes"][1]["valid_from"], "2026-04-01");
    // A back-dated upgrade in March, billed in April: the March lines at 15 %, April's at 14.5 %.
    set_clock(&t, "2026-04-02T09:00:00Z");
    t.act(
        &svc,
        "change-plan",
        Some(json!({"plan_id": b, "effective_at": "2026-03-22T10:00:00Z"})),
    )
    .await;
    bill_over_http(&t, "2026-04-02", None).await;
    let april = invoices_of(&t, &sub)
        .await
        .into_iter()
        .find(|i| i["period_start"] == "2026-04-01")
        .unwrap();
    let lines = april["lines"].as_array().unwrap();
    let taxed: Vec<(String, i64, i64, String)> = lines
        .iter()
        .map(|l| {
            (
                l["charge_period_start"].as_str().unwrap().to_string(),
                l["amount_minor"].as_i64().unwrap(),
                l["tax_minor"].as_i64().unwrap(),
                l["taxes"][0]["rate"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    // March 22..31: A −1935 and B +2903 at 15 % (−290.25 → −290, 435.45 → 435); April B 9000 at
    // 14.5 % = 1305.
    assert_eq!(
        taxed,
        [
            ("2026-03-01".into(), -1935, -290, "15".into()),
            ("2026-03-01".into(), 2903, 435, "15".into()),
            ("2026-04-01".into(), 9000, 1305, "14.5".into()),
        ]
    );
}

on_both_backends!(
    a_month_of_service_is_invoiced_once_and_corrected_later,
    unratable_subscribers_are_reported_and_skipped,
    billing_roles_filters_and_bad_input,
    a_run_dated_in_the_past_never_reverses_what_was_billed,
    billing_dates_outside_the_window_are_refused,
    a_run_that_cannot_finish_is_failed_with_its_error,
    shutdown_stops_a_run_at_a_batch_boundary_and_it_resumes,
    corrections_are_taxed_at_the_rate_of_the_period_they_correct,
);
