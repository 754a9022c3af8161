//! Dunning over HTTP: reminders, suspension and termination as invoices age past due,
//! resumption by payment, subscribers who owe nothing, per-subscriber policies, billing the
//! suspended days, and policy validation.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_domain::auth::Role;
use serde_json::{json, Value};

const REMINDER: &str = "notification.dunning-reminder";

// Helpers ---------------------------------------------------------------------------------

/// Runs dunning for `as_of` with the clock at 06:00 that day (dunning's service actions and
/// the overdue test of payments use the clock).
async fn dun(t: &TestApp, as_of: &str) -> Value {
    set_clock(t, &format!("{as_of}T06:00:00Z"));
    let r = t
        .call(
            "POST",
            "/api/v1/dunning-runs",
            Some(Role::Billing),
            Some(json!({ "as_of": as_of })),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["as_of"], as_of);
    assert_eq!(r.body["errors"], json!([]), "{:?}", r.body);
    r.body
}

/// (subscribers_checked, reminders, suspensions, terminations)
fn report(r: &Value) -> (u64, u64, u64, u64) {
    (
        r["subscribers_checked"].as_u64().unwrap(),
        r["reminders"].as_u64().unwrap(),
        r["suspensions"].as_u64().unwrap(),
        r["terminations"].as_u64().unwrap(),
    )
}

fn steps(s: &[(i64, &str)]) -> Value {
    Value::Array(
        s.iter()
            .map(|(d, a)| json!({"days_overdue": d, "action": a}))
            .collect(),
    )
}

async fn policy(t: &TestApp, code: &str, s: &[(i64, &str)], bill: bool, default: bool) -> Value {
    let r = t
        .call(
            "POST",
            "/api/v1/dunning-policies",
            Some(Role::Billing),
            Some(
                json!({"code": code, "name": format!("Policy {code}"), "steps": steps(s),
                        "bill_suspended_days": bill, "is_default": default}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

/// The usual one: remind after 3 days, suspend after 10, terminate after 45.
async fn standard_policy(t: &TestApp) -> Value {
    policy(
        t,
        "std",
        &[(3, "remind"), (10, "suspend"), (45, "terminate")],
        false,
        true,
    )
    .await
}

async fn subscriber_with(t: &TestApp, name: &str, extra: Value) -> String {
    let mut body = json!({ "name": name, "currency": "EUR" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = t.admin("POST", "/api/v1/subscribers", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// The live invoice of `sub` for the period starting on `period_start`, with lines.
async fn invoice_for(t: &TestApp, sub: &str, period_start: &str) -> Value {
    let list = list_items(
        t,
        &format!("/api/v1/invoices?subscriber_id={sub}&period_start={period_start}"),
    )
    .await;
    let live: Vec<&Value> = list.iter().filter(|i| i["status"] != "void").collect();
    assert_eq!(live.len(), 1, "{list:?}");
    let r = t
        .admin(
            "GET",
            &format!("/api/v1/invoices/{}", live[0]["id"].as_str().unwrap()),
            None,
        )
        .await;
    r.body
}

async fn invoice_status(t: &TestApp, id: &str) -> String {
    let r = t
        .admin("GET", &format!("/api/v1/invoices/{id}"), None)
        .await;
    r.body["status"].as_str().unwrap().to_string()
}

async fn pay(t: &TestApp, sub: &str, amount: i64) -> Value {
    let r = t
        .call(
            "POST",
            "/api/v1/payments",
            Some(Role::Billing),
            Some(json!({"subscriber_id": sub, "amount_minor": amount, "method": "bank_transfer"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn service(t: &TestApp, id: &str) -> Value {
    let r = t
        .admin("GET", &format!("/api/v1/services/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.body
}

/// (status, suspension_cause) of a service.
async fn state(t: &TestApp, id: &str) -> (String, Value) {
    let s = service(t, id).await;
    (
        s["status"].as_str().unwrap().to_string(),
        s["suspension_cause"].clone(),
    )
}

async fn timeline(t: &TestApp, id: &str) -> Vec<Value> {
    let r = t
        .call(
            "GET",
            &format!("/api/v1/services/{id}/timeline"),
            Some(Role::Readonly),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    r.body.as_array().unwrap().clone()
}

async fn jobs(t: &TestApp, query: &str) -> Vec<Value> {
    list_items(t, &format!("/api/v1/provisioning-jobs?limit=500&{query}")).await
}

async fn balance(t: &TestApp, sub: &str) -> (i64, i64) {
    let r = t
        .admin("GET", &format!("/api/v1/subscribers/{sub}/ledger"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    (
        r.body["balance_minor"].as_i64().unwrap(),
        r.body["overdue_minor"].as_i64().unwrap(),
    )
}

fn active() -> (String, Value) {
    ("active".into(), Value::Null)
}

fn suspended(cause: &str) -> (String, Value) {
    ("suspended".into(), json!(cause))
}

// 9. Remind, suspend, resume --------------------------------------------------------------

async fn overdue_invoice_is_reminded_suspended_and_resumed_by_payment(t: TestApp) {
    standard_policy(&t).await;
    let sub = subscriber_with(&t, "Dan Dunned", json!({})).await;
    let plan = t.plan("DUN-60", 6000).await;
    let svc1 = active_service(&t, &sub, &plan, "dan-1").await;
    let svc2 = active_service(&t, &sub, &plan, "dan-2").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv = invoice_for(&t, &sub, "2026-03-01").await;
    assert_eq!(inv["total_minor"], 12000);
    assert_eq!(inv["due_date"], "2026-03-29");
    let inv_id = inv["id"].as_str().unwrap().to_string();
    let number = inv["number"].as_str().unwrap().to_string();

    // Not overdue on its due date; overdue but before the first step two days later.
    assert_eq!(report(&dun(&t, "2026-03-29").await), (0, 0, 0, 0));
    assert_eq!(report(&dun(&t, "2026-03-31").await), (1, 0, 0, 0));
    assert!(jobs(&t, &format!("kind={REMINDER}")).await.is_empty());

    // Three days: a reminder, queued as a notification job.
    assert_eq!(report(&dun(&t, "2026-04-01").await), (1, 1, 0, 0));
    let reminders = jobs(&t, &format!("kind={REMINDER}")).await;
    assert_eq!(reminders.len(), 1);
    let job = &reminders[0];
    assert_eq!(job["subscriber_id"], sub.as_str());
    assert!(job["service_id"].is_null());
    assert_eq!(job["status"], "pending");
    assert_eq!(job["executor_available"], false);
    assert_eq!(job["payload"]["invoice_id"], inv_id.as_str());
    assert_eq!(job["payload"]["invoice_number"], number.as_str());
    assert_eq!(job["payload"]["days_overdue"], 3);
    assert_eq!(job["payload"]["amount_due_minor"], 12000);
    assert_eq!(job["payload"]["currency"], "EUR");
    // The same day again: nothing new.
    assert_eq!(report(&dun(&t, "2026-04-01").await), (1, 0, 0, 0));
    assert_eq!(jobs(&t, &format!("kind={REMINDER}")).await.len(), 1);
    assert_eq!((state(&t, &svc1).await), active());

    // An operator suspends the second service for reasons of their own.
    set_clock(&t, "2026-04-05T10:00:00Z");
    let r = t
        .act(&svc2, "suspend", Some(json!({"reason": "on holiday"})))
        .await;
    assert_eq!(r["service"]["suspension_cause"], "operator");

    // Ten days: the active service is suspended by dunning.
    let tl_before = timeline(&t, &svc1).await.len();
    let jobs_before = jobs(&t, &format!("service_id={svc1}")).await.len();
    assert_eq!(report(&dun(&t, "2026-04-08").await), (1, 0, 1, 0));
    assert_eq!(state(&t, &svc1).await, suspended("dunning"));
    assert_eq!(state(&t, &svc2).await, suspended("operator"));
    let tl = timeline(&t, &svc1).await;
    assert_eq!(tl.len(), tl_before + 1);
    let ev = tl.last().unwrap();
    assert_eq!(ev["kind"], "suspended");
    assert_eq!(ev["suspension_cause"], "dunning");
    assert_eq!(ev["effective_at"], "2026-04-08T06:00:00Z");
    assert_eq!(ev["actor"], "dunning");
    let reason = ev["reason"].as_str().unwrap();
    assert!(
        reason.contains("dunning policy std")
            && reason.contains(&number)
            && reason.contains("10 days overdue"),
        "{reason}"
    );
    let audit = list_items(
        &t,
        &format!("/api/v1/audit-events?entity_type=service&entity_id={svc1}&limit=500"),
    )
    .await;
    let last = audit.last().unwrap();
    assert_eq!(last["action"], "service.suspend");
    assert_eq!(last["actor_id"], "system:dunning");
    assert_eq!(last["after"]["suspension_cause"], "dunning");
    let svc_jobs = jobs(&t, &format!("service_id={svc1}")).await;
    assert!(
        svc_jobs.len() > jobs_before,
        "suspension queues provisioning"
    );
    let disconnects = jobs(&t, &format!("service_id={svc1}&kind=nas.disconnect")).await;
    assert_eq!(disconnects.len(), 1);
    let steps_taken = |a: &[Value]| a.iter().filter(|e| e["action"] == "dunning.step").count();
    let inv_audit = list_items(
        &t,
        &format!("/api/v1/audit-events?entity_type=invoice&entity_id={inv_id}&limit=500"),
    )
    .await;
    assert_eq!(steps_taken(&inv_audit), 2);

    // The same day again: nothing new anywhere.
    assert_eq!(report(&dun(&t, "2026-04-08").await), (1, 0, 0, 0));
    assert_eq!(timeline(&t, &svc1).await.len(), tl_before + 1);
    assert_eq!(
        jobs(&t, &format!("service_id={svc1}")).await.len(),
        svc_jobs.len()
    );
    assert_eq!(jobs(&t, &format!("kind={REMINDER}")).await.len(), 1);
    let inv_audit = list_items(
        &t,
        &format!("/api/v1/audit-events?entity_type=invoice&entity_id={inv_id}&limit=500"),
    )
    .await;
    assert_eq!(steps_taken(&inv_audit), 2);

    // A payment that leaves part of the overdue amount open resumes nothing.
    set_clock(&t, "2026-04-09T10:00:00Z");
    let p = pay(&t, &sub, 5000).await;
    assert_eq!(p["resumed_services"], json!([]));
    assert_eq!(state(&t, &svc1).await, suspended("dunning"));
    assert_eq!(balance(&t, &sub).await, (7000, 7000));

    // Paying the rest resumes the service dunning suspended, in the same response; the one
    // the operator suspended stays suspended.
    t.clock.advance(jiff::SignedDuration::from_mins(5));
    let p = pay(&t, &sub, 7000).await;
    assert_eq!(p["resumed_services"], json!([svc1]));
    assert_eq!(state(&t, &svc1).await, active());
    assert_eq!(state(&t, &svc2).await, suspended("operator"));
    assert_eq!(invoice_status(&t, &inv_id).await, "paid");
    assert_eq!(balance(&t, &sub).await, (0, 0));
    let tl = timeline(&t, &svc1).await;
    let ev = tl.last().unwrap();
    assert_eq!(ev["kind"], "resumed");
    assert_eq!(ev["effective_at"], "2026-04-09T10:05:00Z");
    assert_eq!(ev["reason"], "overdue balance cleared");
    let audit = list_items(
        &t,
        &format!("/api/v1/audit-events?subscriber_id={sub}&entity_type=service&limit=500"),
    )
    .await;
    let resumes: Vec<&Value> = audit
        .iter()
        .filter(|a| a["action"] == "service.resume")
        .collect();
    assert_eq!(resumes.len(), 1);
    assert_eq!(resumes[0]["entity_id"], svc1.as_str());
    assert!(
        jobs(&t, &format!("service_id={svc1}")).await.len() > svc_jobs.len(),
        "resumption queues provisioning"
    );
    // Nothing is overdue any more.
    assert_eq!(report(&dun(&t, "2026-04-10").await), (0, 0, 0, 0));
    assert_eq!(state(&t, &svc1).await, active());

    // Who may run it, and how.
    for role in [Role::Support, Role::Readonly, Role::Noc] {
        let r = t
            .call("POST", "/api/v1/dunning-runs", Some(role), None)
            .await;
        assert_problem(&r, 403, "forbidden");
    }
    let r = t
        .admin(
            "POST",
            "/api/v1/dunning-runs",
            Some(json!({"as_of": "10.04.2026"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["as_of"]);
    // A pass dated ahead would suspend services whose invoices are not overdue yet.
    for ahead in ["2026-04-11", "9999-12-31", "1999-01-01"] {
        let r = t
            .admin(
                "POST",
                "/api/v1/dunning-runs",
                Some(json!({"as_of": ahead})),
            )
            .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["as_of"], "{ahead}");
    }
    let r = t.admin("POST", "/api/v1/dunning-runs", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["as_of"], "2026-04-10", "default: today");
}

// 10. Owing nothing -----------------------------------------------------------------------

async fn subscribers_who_owe_nothing_are_never_dunned(t: TestApp) {
    standard_policy(&t).await;
    let plan = t.plan("NODUN-60", 6000).await;
    // Pays before the due date.
    let early = subscriber_with(&t, "Early Eve", json!({})).await;
    // Paid before the invoice existed.
    let ahead = subscriber_with(&t, "Ahead Al", json!({})).await;
    // Overpaid March; the credit pays April.
    let over = subscriber_with(&t, "Over Olly", json!({})).await;
    // Has credit that was never applied to the invoice (as after a crash between a billing
    // batch and settling it).
    let unsettled = subscriber_with(&t, "Unsettled Una", json!({})).await;
    // Owes: the control.
    let owes = subscriber_with(&t, "Owing Otto", json!({})).await;
    let mut services = Vec::new();
    for (s, u) in [
        (&early, "eve"),
        (&ahead, "al"),
        (&over, "olly"),
        (&unsettled, "una"),
        (&owes, "otto"),
    ] {
        services.push(active_service(&t, s, &plan, u).await);
    }
    pay(&t, &ahead, 6000).await;
    bill_over_http(&t, "2026-03-15", None).await;
    let ahead_inv = invoice_for(&t, &ahead, "2026-03-01").await;
    assert_eq!(ahead_inv["status"], "paid", "paid at issue by the credit");

    set_clock(&t, "2026-03-20T10:00:00Z");
    pay(&t, &early, 6000).await;
    let over_pay = pay(&t, &over, 15000).await;
    assert_eq!(over_pay["unallocated_minor"], 9000);
    // Una's payment is written under the API, without the allocation the API would make.
    {
        use lastmile_app::Clock;
        use lastmile_domain::billing::account::{Payment, PaymentMethod};
        use lastmile_domain::ids::{PaymentId, SubscriberId};
        let sid = SubscriberId(unsettled.parse().unwrap());
        let before = t.app.store.get_account(sid).await.unwrap().unwrap();
        let mut change = lastmile_store::AccountChange::new(&before);
        change.payment = Some(Payment {
            id: PaymentId::generate(),
            subscriber_id: sid,
            currency: before.currency.clone(),
            amount_minor: 6000,
            method: PaymentMethod::BankTransfer,
            reference: Some("unsettled".into()),
            external_id: None,
            received_at: t.clock.now(),
            recorded_at: t.clock.now(),
        });
        t.app.store.record_account_change(&change).await.unwrap();
    }
    let una_inv = invoice_for(&t, &unsettled, "2026-03-01").await;
    assert_eq!(una_inv["status"], "issued");
    assert_eq!(balance(&t, &unsettled).await.0, 0);

    // April for Olly alone: the credit pays it at issue.
    set_clock(&t, "2026-04-01T05:00:00Z");
    bill_over_http(&t, "2026-04-01", Some(&over)).await;
    assert_eq!(invoice_for(&t, &over, "2026-04-01").await["status"], "paid");
    assert_eq!(balance(&t, &over).await, (-3000, 0));

    // Three days after the due date only Otto is reminded; Una's credit is applied instead.
    let r = dun(&t, "2026-04-01").await;
    assert_eq!(report(&r).1, 1, "{r:?}");
    assert_eq!(report(&r).2, 0);
    let reminders = jobs(&t, &format!("kind={REMINDER}")).await;
    assert_eq!(reminders.len(), 1);
    assert_eq!(reminders[0]["subscriber_id"], owes.as_str());
    assert_eq!(
        invoice_status(&t, una_inv["id"].as_str().unwrap()).await,
        "paid"
    );
    assert_eq!(balance(&t, &unsettled).await, (0, 0));

    // Ten and twenty days: only Otto is suspended.
    let r = dun(&t, "2026-04-08").await;
    assert_eq!(report(&r), (1, 0, 1, 0));
    let r = dun(&t, "2026-04-18").await;
    assert_eq!(report(&r), (1, 0, 0, 0));
    for (i, svc) in services.iter().enumerate() {
        let expected = if i == 4 {
            suspended("dunning")
        } else {
            active()
        };
        assert_eq!(state(&t, svc).await, expected, "service {i}");
    }
    for s in [&early, &ahead, &over, &unsettled] {
        assert!(jobs(&t, &format!("subscriber_id={s}&kind={REMINDER}"))
            .await
            .is_empty());
        assert!(balance(&t, s).await.0 <= 0);
    }
    assert_eq!(jobs(&t, &format!("kind={REMINDER}")).await.len(), 1);
}

// 11. Termination, own policies, billing suspended days -----------------------------------

async fn dunning_terminates_at_45_days_and_own_policies_override_the_default(t: TestApp) {
    standard_policy(&t).await;
    policy(&t, "lenient", &[(20, "suspend")], false, false).await;
    let plan = t.plan("TERM-60", 6000).await;
    let strict = subscriber_with(&t, "Strict Stan", json!({})).await;
    let lenient = subscriber_with(&t, "Lenient Lou", json!({})).await;
    let r = t
        .admin(
            "PATCH",
            &format!("/api/v1/subscribers/{lenient}"),
            Some(json!({"dunning_policy": "nope"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["dunning_policy"]);
    let r = t
        .admin(
            "PATCH",
            &format!("/api/v1/subscribers/{lenient}"),
            Some(json!({"dunning_policy": "lenient"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["dunning_policy"], "lenient");
    let s_svc = active_service(&t, &strict, &plan, "stan").await;
    let l_svc = active_service(&t, &lenient, &plan, "lou").await;
    bill_over_http(&t, "2026-03-15", None).await;

    // Lou's policy has no reminder and suspends only after 20 days.
    assert_eq!(report(&dun(&t, "2026-04-01").await), (2, 1, 0, 0));
    assert!(
        jobs(&t, &format!("subscriber_id={lenient}&kind={REMINDER}"))
            .await
            .is_empty()
    );
    assert_eq!(report(&dun(&t, "2026-04-08").await), (2, 0, 1, 0));
    assert_eq!(state(&t, &s_svc).await, suspended("dunning"));
    assert_eq!(state(&t, &l_svc).await, active());
    assert_eq!(report(&dun(&t, "2026-04-18").await), (2, 0, 1, 0));
    assert_eq!(state(&t, &l_svc).await, suspended("dunning"));
    let reason = timeline(&t, &l_svc).await.last().unwrap()["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("dunning policy lenient"), "{reason}");

    // 44 days: nothing; 45: Stan's services are terminated; Lou's policy never terminates.
    assert_eq!(report(&dun(&t, "2026-05-12").await), (2, 0, 0, 0));
    assert_eq!(report(&dun(&t, "2026-05-13").await), (2, 0, 0, 1));
    assert_eq!(service(&t, &s_svc).await["status"], "terminated");
    assert_eq!(state(&t, &l_svc).await, suspended("dunning"));
    let ev = timeline(&t, &s_svc).await.last().unwrap().clone();
    assert_eq!(ev["kind"], "terminated");
    assert_eq!(ev["actor"], "dunning");
    assert!(
        ev["reason"].as_str().unwrap().contains("45 days overdue"),
        "{ev:?}"
    );
    assert_eq!(report(&dun(&t, "2026-05-13").await), (2, 0, 0, 0));

    // Paying afterwards brings back what was suspended, not what was terminated.
    set_clock(&t, "2026-05-14T10:00:00Z");
    let p = pay(&t, &strict, 6000).await;
    assert_eq!(p["resumed_services"], json!([]));
    assert_eq!(service(&t, &s_svc).await["status"], "terminated");
    let p = pay(&t, &lenient, 6000).await;
    assert_eq!(p["resumed_services"], json!([l_svc]));
    assert_eq!(state(&t, &l_svc).await, active());
}

async fn dunning_catches_up_on_missed_steps(t: TestApp) {
    standard_policy(&t).await;
    let plan = t.plan("LATE-60", 6000).await;
    let sub = subscriber_with(&t, "Late Lara", json!({})).await;
    let svc = active_service(&t, &sub, &plan, "lara-late").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv = invoice_for(&t, &sub, "2026-03-01").await;
    // The first pass in 45 days takes only the latest step, the termination: a reminder or a
    // suspension now is pointless. The earlier steps are recorded as passed over.
    assert_eq!(report(&dun(&t, "2026-05-13").await), (1, 0, 0, 1));
    assert_eq!(service(&t, &svc).await["status"], "terminated");
    let kinds: Vec<String> = timeline(&t, &svc)
        .await
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["activated", "terminated"]);
    assert!(jobs(&t, &format!("kind={REMINDER}")).await.is_empty());
    let audit = list_items(
        &t,
        &format!(
            "/api/v1/audit-events?entity_type=invoice&entity_id={}&limit=500",
            inv["id"].as_str().unwrap()
        ),
    )
    .await;
    let step = audit
        .iter()
        .find(|a| a["action"] == "dunning.step")
        .expect("the steps are audited");
    let passed: Vec<(i64, bool)> = step["after"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["days_overdue"].as_i64().unwrap(),
                s["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(passed, [(3, true), (10, true), (45, false)], "{step:?}");
    // Every step is recorded: nothing happens again.
    assert_eq!(report(&dun(&t, "2026-05-14").await), (1, 0, 0, 0));
    assert!(jobs(&t, &format!("kind={REMINDER}")).await.is_empty());
}

async fn dunning_suspended_days_are_billed_only_when_the_policy_says_so(t: TestApp) {
    policy(&t, "billdays", &[(10, "suspend")], true, false).await;
    policy(&t, "nobill", &[(10, "suspend")], false, false).await;
    let plan = t.plan("BILLSUSP-60", 6000).await;
    let billed = subscriber_with(&t, "Billed Bea", json!({"dunning_policy": "billdays"})).await;
    let spared = subscriber_with(&t, "Spared Sam", json!({"dunning_policy": "nobill"})).await;
    let b_svc = active_service(&t, &billed, &plan, "bea").await;
    let s_svc = active_service(&t, &spared, &plan, "sam").await;
    bill_over_http(&t, "2026-03-15", None).await;

    // Both are suspended by dunning on April 8 and April is invoiced that day.
    assert_eq!(report(&dun(&t, "2026-04-08").await), (2, 0, 2, 0));
    bill_over_http(&t, "2026-04-08", None).await;
    let b_apr = invoice_for(&t, &billed, "2026-04-01").await;
    let s_apr = invoice_for(&t, &spared, "2026-04-01").await;
    // Billed: the whole month, suspension or not.
    assert_eq!(b_apr["total_minor"], 6000, "{b_apr:#}");
    assert_eq!(b_apr["lines"][0]["days"], 30);
    // Spared: April 1–7 only, 6000 × 7/30.
    assert_eq!(s_apr["total_minor"], 1400, "{s_apr:#}");
    assert_eq!(s_apr["lines"][0]["days"], 7);

    // Both pay March the next day and are resumed.
    set_clock(&t, "2026-04-09T10:00:00Z");
    assert_eq!(
        pay(&t, &billed, 6000).await["resumed_services"],
        json!([b_svc])
    );
    assert_eq!(
        pay(&t, &spared, 6000).await["resumed_services"],
        json!([s_svc])
    );

    // May: the billed one owes May; the spared one also owes April 9–30 (29 of 30 April days
    // were active: 5800 − 1400 invoiced = 4400).
    set_clock(&t, "2026-05-01T09:00:00Z");
    bill_over_http(&t, "2026-05-01", None).await;
    let b_may = invoice_for(&t, &billed, "2026-05-01").await;
    assert_eq!(b_may["total_minor"], 6000, "{b_may:#}");
    assert_eq!(b_may["lines"].as_array().unwrap().len(), 1);
    let s_may = invoice_for(&t, &spared, "2026-05-01").await;
    let lines = s_may["lines"].as_array().unwrap();
    let fix = lines
        .iter()
        .find(|l| l["correction"] == true)
        .expect("a correction for April");
    assert_eq!(fix["charge_period_start"], "2026-04-01");
    assert_eq!(fix["amount_minor"], 4400);
    assert_eq!(fix["days"], 29);
    assert_eq!(s_may["total_minor"], 10400, "{s_may:#}");
}

// 12. Policies ----------------------------------------------------------------------------

async fn dunning_policy_validation_and_one_default(t: TestApp) {
    let post = |body: Value| t.admin("POST", "/api/v1/dunning-policies", Some(body));
    let body = |s: Value| json!({"code": "x", "name": "X", "steps": s});
    let r = post(body(steps(&[(10, "remind"), (5, "suspend")]))).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["steps[1].days_overdue"]);
    let r = post(body(steps(&[(3, "remind"), (3, "suspend")]))).await;
    assert_eq!(fields(&r), ["steps[1].days_overdue"]);
    let r = post(body(steps(&[(0, "remind")]))).await;
    assert_eq!(fields(&r), ["steps[0].days_overdue"]);
    let r = post(body(steps(&[(731, "remind")]))).await;
    assert_eq!(fields(&r), ["steps[0].days_overdue"]);
    let r = post(body(steps(&[(45, "terminate"), (50, "remind")]))).await;
    assert_eq!(fields(&r), ["steps[1].action"]);
    let r = post(body(steps(&[(3, "explode")]))).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["steps[0].action"]);
    let r = post(json!({"code": "bad code", "name": "", "steps": []})).await;
    assert_eq!(fields(&r), ["code", "name"]);
    let r = post(json!({"code": "x", "name": "X"})).await;
    assert_eq!(fields(&r), ["steps"]);
    assert!(list_items(&t, "/api/v1/dunning-policies").await.is_empty());

    let a = policy(&t, "a", &[(3, "remind")], false, true).await;
    assert_eq!(a["is_default"], true);
    assert_eq!(a["steps"], steps(&[(3, "remind")]));
    let a_id = a["id"].as_str().unwrap().to_string();
    let r = post(json!({"code": "a", "name": "Again", "steps": []})).await;
    assert_problem(&r, 409, "duplicate");
    assert_eq!(fields(&r), ["code"]);

    // A new default replaces the old one.
    let b = policy(&t, "b", &[(3, "suspend")], false, true).await;
    let b_id = b["id"].as_str().unwrap().to_string();
    let defaults = |list: &[Value]| -> Vec<String> {
        list.iter()
            .filter(|p| p["is_default"] == true)
            .map(|p| p["code"].as_str().unwrap().to_string())
            .collect()
    };
    let list = list_items(&t, "/api/v1/dunning-policies").await;
    assert_eq!(list.len(), 2);
    assert_eq!(defaults(&list), ["b"]);
    let got = t
        .call(
            "GET",
            &format!("/api/v1/dunning-policies/{a_id}"),
            Some(Role::Support),
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["is_default"], false);
    assert_eq!(got.body["revision"], 2);

    // So does making an existing one the default.
    let put = |id: &str, body: Value| {
        let path = format!("/api/v1/dunning-policies/{id}");
        let t = &t;
        async move { t.admin("PUT", &path, Some(body)).await }
    };
    let r = put(
        &a_id,
        json!({"code": "a", "name": "Policy a", "steps": steps(&[(3, "remind")]),
               "is_default": true}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["is_default"], true);
    let list = list_items(&t, "/api/v1/dunning-policies").await;
    assert_eq!(defaults(&list), ["a"]);
    let got = t
        .admin("GET", &format!("/api/v1/dunning-policies/{b_id}"), None)
        .await;
    assert_eq!(got.body["is_default"], false);
    // An invalid update changes nothing.
    let r = put(
        &a_id,
        json!({"code": "a", "name": "Policy a", "steps": steps(&[(9, "remind"), (2, "suspend")]),
               "is_default": true}),
    )
    .await;
    assert_eq!(fields(&r), ["steps[1].days_overdue"]);
    let got = t
        .admin("GET", &format!("/api/v1/dunning-policies/{a_id}"), None)
        .await;
    assert_eq!(got.body["steps"], steps(&[(3, "remind")]));
    assert_eq!(got.body["is_default"], true);

    // Roles and unknown ids.
    let r = t
        .call(
            "POST",
            "/api/v1/dunning-policies",
            Some(Role::Support),
            Some(json!({"code": "s", "name": "S", "steps": []})),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = t
        .call("GET", "/api/v1/dunning-policies", Some(Role::Noc), None)
        .await;
    assert_problem(&r, 403, "forbidden");
    let unknown = "01900000-0000-7000-8000-000000000000";
    assert_problem(
        &t.admin("GET", &format!("/api/v1/dunning-policies/{unknown}"), None)
            .await,
        404,
        "not-found",
    );

    // Dunning follows the one default there is: `a` reminds, `b` would suspend.
    let plan = t.plan("DEF-60", 6000).await;
    let sub = subscriber_with(&t, "Default Dee", json!({})).await;
    let svc = active_service(&t, &sub, &plan, "dee").await;
    bill_over_http(&t, "2026-03-15", None).await;
    assert_eq!(report(&dun(&t, "2026-04-01").await), (1, 1, 0, 0));
    assert_eq!(state(&t, &svc).await, active());
}

/// Two dunning passes at once (two schedulers, or an operator and the scheduler): every step
/// is taken once.
async fn concurrent_dunning_runs_take_each_step_once(t: TestApp) {
    const N: u64 = 20;
    standard_policy(&t).await;
    let plan = t.plan("CONC-60", 6000).await;
    let mut services = Vec::new();
    for i in 0..N {
        let sub = subscriber_with(&t, &format!("Concurrent {i}"), json!({})).await;
        services.push(active_service(&t, &sub, &plan, &format!("conc-{i}")).await);
    }
    bill_over_http(&t, "2026-03-15", None).await;
    let run = |as_of: &'static str| {
        let t = &t;
        async move {
            let r = t
                .call(
                    "POST",
                    "/api/v1/dunning-runs",
                    Some(Role::Billing),
                    Some(json!({ "as_of": as_of })),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
            r.body
        }
    };
    let mut errors = Vec::new();
    // Four passes at once, on the day of suspension (the reminder due too is passed over: only
    // the latest step is taken) and on the day of termination.
    set_clock(&t, "2026-04-08T06:00:00Z");
    let (a, b, c, d) = tokio::join!(
        run("2026-04-08"),
        run("2026-04-08"),
        run("2026-04-08"),
        run("2026-04-08")
    );
    let passes = [a, b, c, d];
    let total = |i: usize| -> u64 {
        passes
            .iter()
            .map(|p| match i {
                1 => report(p).1,
                2 => report(p).2,
                _ => report(p).3,
            })
            .sum()
    };
    assert_eq!((total(1), total(2), total(3)), (0, N, 0), "{passes:?}");
    errors.extend(
        passes
            .iter()
            .flat_map(|p| p["errors"].as_array().unwrap().clone()),
    );
    assert!(jobs(&t, &format!("kind={REMINDER}")).await.is_empty());
    for svc in &services {
        assert_eq!(state(&t, svc).await, suspended("dunning"));
        let suspensions = timeline(&t, svc)
            .await
            .iter()
            .filter(|e| e["kind"] == "suspended")
            .count();
        assert_eq!(suspensions, 1);
    }

    set_clock(&t, "2026-05-13T06:00:00Z");
    let (a, b, c, d) = tokio::join!(
        run("2026-05-13"),
        run("2026-05-13"),
        run("2026-05-13"),
        run("2026-05-13")
    );
    let passes = [a, b, c, d];
    let total = |i: usize| -> u64 {
        passes
            .iter()
            .map(|p| match i {
                1 => report(p).1,
                2 => report(p).2,
                _ => report(p).3,
            })
            .sum()
    };
    assert_eq!((total(1), total(2), total(3)), (0, 0, N), "{passes:?}");
    errors.extend(
        passes
            .iter()
            .flat_map(|p| p["errors"].as_array().unwrap().clone()),
    );
    for svc in &services {
        assert_eq!(service(&t, svc).await["status"], "terminated");
        let terminations = timeline(&t, svc)
            .await
            .iter()
            .filter(|e| e["kind"] == "terminated")
            .count();
        assert_eq!(terminations, 1);
    }
    // Losing the race for a step is not an error: another pass took it.
    assert_eq!(errors, Vec::<Value>::new());
}

/// A credit note that clears what is overdue resumes the services dunning suspended, like a
/// payment; one that leaves some of it open does not.
async fn a_credit_note_clearing_the_overdue_amount_resumes_too(t: TestApp) {
    standard_policy(&t).await;
    let plan = t.plan("CNRES-60", 6000).await;
    let sub = subscriber_with(&t, "Credited Cleo", json!({})).await;
    let svc = active_service(&t, &sub, &plan, "cleo").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv = invoice_for(&t, &sub, "2026-03-01").await;
    let inv_id = inv["id"].as_str().unwrap().to_string();
    // The first pass: the reminder due too is passed over for the suspension.
    assert_eq!(report(&dun(&t, "2026-04-08").await), (1, 0, 1, 0));
    assert_eq!(state(&t, &svc).await, suspended("dunning"));
    set_clock(&t, "2026-04-09T10:00:00Z");
    let r = t
        .admin(
            "POST",
            "/api/v1/credit-notes",
            Some(json!({"invoice_id": inv_id, "amount_minor": 2000, "reason": "outage"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(state(&t, &svc).await, suspended("dunning"));
    let r = t
        .admin(
            "POST",
            "/api/v1/credit-notes",
            Some(json!({"invoice_id": inv_id, "reason": "forgiven"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["total_minor"], 4000);
    assert_eq!(invoice_status(&t, &inv_id).await, "paid");
    assert_eq!(balance(&t, &sub).await, (0, 0));
    assert_eq!(state(&t, &svc).await, active());
    let ev = timeline(&t, &svc).await.last().unwrap().clone();
    assert_eq!(ev["kind"], "resumed");
}

/// Subscribers refer to a policy by its code, and PUT may change the code: the subscribers
/// of the policy must keep it (the change refused while it is in use, or followed).
async fn renaming_a_dunning_policy_keeps_its_subscribers_dunned(t: TestApp) {
    let p = policy(&t, "strict", &[(3, "suspend")], false, false).await;
    let plan = t.plan("PRENAME-60", 6000).await;
    let sub = subscriber_with(&t, "Policy Pia", json!({"dunning_policy": "strict"})).await;
    let svc = active_service(&t, &sub, &plan, "pia").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let r = t
        .admin(
            "PUT",
            &format!("/api/v1/dunning-policies/{}", p["id"].as_str().unwrap()),
            Some(json!({"code": "very-strict", "name": "Very strict",
                        "steps": steps(&[(3, "suspend")])})),
        )
        .await;
    // Subscribers refer to the policy by code: it cannot change under them.
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["code"]);
    assert_eq!(report(&dun(&t, "2026-04-01").await), (1, 0, 1, 0));
    assert_eq!(state(&t, &svc).await, suspended("dunning"));
    let code = t
        .admin("GET", &format!("/api/v1/subscribers/{sub}"), None)
        .await
        .body["dunning_policy"]
        .clone();
    let policies = list_items(&t, "/api/v1/dunning-policies").await;
    assert!(
        policies.iter().any(|p| p["code"] == code),
        "the subscriber's dunning_policy {code} names no policy any more: {policies:?}"
    );
}

// Issue 8: one reminder per pass; a correction credit lifts a suspension -----------------

/// Several reminder steps due in one pass queue one reminder (the latest); the others are
/// recorded as passed over and never taken later. Before: three identical reminders at once.
async fn several_due_reminders_queue_only_the_latest(t: TestApp) {
    policy(
        &t,
        "chatty",
        &[
            (3, "remind"),
            (7, "remind"),
            (14, "remind"),
            (20, "suspend"),
        ],
        false,
        true,
    )
    .await;
    let plan = t.plan("CHATTY-60", 6000).await;
    let sub = subscriber_with(&t, "Chatty Chad", json!({})).await;
    let svc = active_service(&t, &sub, &plan, "chad").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv = invoice_for(&t, &sub, "2026-03-01").await;
    // Due 2026-03-29: 16 days overdue on April 14, the first pass.
    assert_eq!(report(&dun(&t, "2026-04-14").await), (1, 1, 0, 0));
    let reminders = jobs(&t, &format!("kind={REMINDER}")).await;
    assert_eq!(reminders.len(), 1, "{reminders:?}");
    assert_eq!(reminders[0]["payload"]["days_overdue"], 16);
    let audit = list_items(
        &t,
        &format!(
            "/api/v1/audit-events?entity_type=invoice&entity_id={}&limit=500",
            inv["id"].as_str().unwrap()
        ),
    )
    .await;
    let step = audit
        .iter()
        .find(|a| a["action"] == "dunning.step")
        .expect("the steps are audited");
    let recorded: Vec<(i64, &str, bool)> = step["after"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["days_overdue"].as_i64().unwrap(),
                s["action"].as_str().unwrap(),
                s["passed"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            (3, "remind", true),
            (7, "remind", true),
            (14, "remind", false)
        ]
    );
    // The passed-over reminders are never sent later; the suspension still comes.
    assert_eq!(report(&dun(&t, "2026-04-15").await), (1, 0, 0, 0));
    assert_eq!(report(&dun(&t, "2026-04-18").await), (1, 0, 1, 0));
    assert_eq!(state(&t, &svc).await, suspended("dunning"));
    assert_eq!(jobs(&t, &format!("kind={REMINDER}")).await.len(), 1);
}

/// The rule for lifting a dunning suspension: once nothing is overdue, whatever cleared it.
/// Here a negative invoice of corrections (a back-dated discount and the suspended days)
/// pays the overdue March invoice: the suspension lifts although no payment was made, and
/// the April invoice, not due yet, stays open.
async fn a_correction_credit_clearing_the_overdue_amount_lifts_the_suspension(t: TestApp) {
    standard_policy(&t).await;
    let plan = t.plan("CORR-60", 6000).await;
    let sub = subscriber_with(&t, "Corrected Cora", json!({})).await;
    let svc = active_service(&t, &sub, &plan, "cora").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let mar = invoice_for(&t, &sub, "2026-03-01").await;
    set_clock(&t, "2026-04-01T09:00:00Z");
    bill_over_http(&t, "2026-04-01", None).await;
    let apr = invoice_for(&t, &sub, "2026-04-01").await;
    assert_eq!(apr["due_date"], "2026-04-15");
    assert_eq!(report(&dun(&t, "2026-04-08").await), (1, 0, 1, 0));
    assert_eq!(state(&t, &svc).await, suspended("dunning"));

    // March was not delivered after all: a back-dated full discount; May is billed early.
    set_clock(&t, "2026-04-09T09:00:00Z");
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/subscribers/{sub}/discounts"),
            Some(json!({"value": {"kind": "percent", "percent": "100"},
                        "starts_on": "2026-03-01", "ends_on": "2026-04-01",
                        "description": "March outage"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    bill_over_http(&t, "2026-05-01", None).await;
    let may = invoice_for(&t, &sub, "2026-05-01").await;
    assert!(may["total_minor"].as_i64().unwrap() < 0, "{may:?}");

    assert_eq!(
        invoice_status(&t, mar["id"].as_str().unwrap()).await,
        "paid"
    );
    assert_eq!(
        invoice_status(&t, apr["id"].as_str().unwrap()).await,
        "issued"
    );
    let (balance_minor, overdue) = balance(&t, &sub).await;
    assert!(balance_minor > 0, "April is still open: {balance_minor}");
    assert_eq!(overdue, 0);
    assert_eq!(state(&t, &svc).await, active());
    let ev = timeline(&t, &svc).await.last().unwrap().clone();
    assert_eq!(ev["kind"], "resumed");
    assert_eq!(ev["reason"], "overdue balance cleared");
    // Nothing overdue: the next pass does nothing.
    assert_eq!(report(&dun(&t, "2026-04-10").await), (0, 0, 0, 0));
}

/// Credit left unapplied (a crash between a payment's commit and its settling) is settled by
/// the dunning pass; when that clears what is overdue, the pass lifts the dunning suspension
/// like any other account change. Before: it settled the credit and left the services
/// suspended, with nothing overdue left to act on.
async fn credit_settled_by_the_dunning_pass_lifts_the_suspension(t: TestApp) {
    use lastmile_domain::billing::account::{Payment, PaymentMethod};
    standard_policy(&t).await;
    let plan = t.plan("LEFT-60", 6000).await;
    let sub = subscriber_with(&t, "Left Lena", json!({})).await;
    let svc = active_service(&t, &sub, &plan, "lena").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv = invoice_for(&t, &sub, "2026-03-01").await;
    assert_eq!(report(&dun(&t, "2026-04-08").await), (1, 0, 1, 0));
    assert_eq!(state(&t, &svc).await, suspended("dunning"));
    // A payment written without its allocations, as a crash would leave it.
    let sub_id = lastmile_domain::ids::SubscriberId(sub.parse().unwrap());
    let account = t.app.store.get_account(sub_id).await.unwrap().unwrap();
    let mut change = lastmile_store::AccountChange::new(&account);
    let at: jiff::Timestamp = "2026-04-08T12:00:00Z".parse().unwrap();
    change.payment = Some(Payment {
        id: lastmile_domain::ids::PaymentId::generate(),
        subscriber_id: sub_id,
        currency: account.currency.clone(),
        amount_minor: 6000,
        method: PaymentMethod::BankTransfer,
        reference: None,
        external_id: None,
        received_at: at,
        recorded_at: at,
    });
    t.app.store.record_account_change(&change).await.unwrap();
    assert_eq!(state(&t, &svc).await, suspended("dunning"));
    assert_eq!(report(&dun(&t, "2026-04-09").await), (1, 0, 0, 0));
    assert_eq!(
        invoice_status(&t, inv["id"].as_str().unwrap()).await,
        "paid"
    );
    assert_eq!(state(&t, &svc).await, active());
    let ev = timeline(&t, &svc).await.last().unwrap().clone();
    assert_eq!(
        (ev["kind"].as_str(), ev["actor"].as_str()),
        (Some("resumed"), Some("dunning"))
    );
}

on_both_backends!(
    overdue_invoice_is_reminded_suspended_and_resumed_by_payment,
    subscribers_who_owe_nothing_are_never_dunned,
    dunning_terminates_at_45_days_and_own_policies_override_the_default,
    dunning_catches_up_on_missed_steps,
    dunning_suspended_days_are_billed_only_when_the_policy_says_so,
    dunning_policy_validation_and_one_default,
    concurrent_dunning_runs_take_each_step_once,
    a_credit_note_clearing_the_overdue_amount_resumes_too,
    renaming_a_dunning_policy_keeps_its_subscribers_dunned,
    several_due_reminders_queue_only_the_latest,
    a_correction_credit_clearing_the_overdue_amount_lifts_the_suspension,
    credit_settled_by_the_dunning_pass_lifts_the_suspension,
);
