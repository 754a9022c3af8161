//! Money over HTTP: payments, allocations, credit notes, refunds and the ledger; taxes,
//! discounts, the invoice document, voiding, bank-statement import and runs for one subscriber.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_domain::auth::Role;
use serde_json::{json, Value};

// Helpers ---------------------------------------------------------------------------------

/// Creates a subscriber with extra fields; returns (id, number).
async fn subscriber_with(t: &TestApp, name: &str, extra: Value) -> (String, String) {
    let mut body = json!({ "name": name, "currency": "EUR" });
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = t.admin("POST", "/api/v1/subscribers", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["number"].as_str().unwrap().to_string(),
    )
}

/// All invoices of a subscriber, oldest first, with lines.
async fn invoices_of(t: &TestApp, sub: &str) -> Vec<Value> {
    let list = t
        .admin(
            "GET",
            &format!("/api/v1/invoices?subscriber_id={sub}&limit=500"),
            None,
        )
        .await;
    assert_eq!(list.status, StatusCode::OK, "{:?}", list.body);
    let mut out = Vec::new();
    for i in list.body["items"].as_array().unwrap() {
        out.push(invoice(t, i["id"].as_str().unwrap()).await);
    }
    out
}

async fn invoice(t: &TestApp, id: &str) -> Value {
    let r = t
        .admin("GET", &format!("/api/v1/invoices/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

/// The invoice of `sub` for the period starting on `period_start` that is not void.
async fn live_invoice(t: &TestApp, sub: &str, period_start: &str) -> Value {
    let all = invoices_of(t, sub).await;
    let mut live: Vec<Value> = all
        .into_iter()
        .filter(|i| i["period_start"] == period_start && i["status"] != "void")
        .collect();
    assert_eq!(
        live.len(),
        1,
        "one live invoice for {period_start}: {live:?}"
    );
    live.remove(0)
}

async fn status_of(t: &TestApp, invoice_id: &str) -> String {
    invoice(t, invoice_id).await["status"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn pay(t: &TestApp, body: Value) -> Value {
    let r = t
        .call("POST", "/api/v1/payments", Some(Role::Billing), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body
}

async fn payments_of(t: &TestApp, sub: &str) -> Vec<Value> {
    list_items(
        t,
        &format!("/api/v1/payments?subscriber_id={sub}&limit=500"),
    )
    .await
}

fn sum(items: &[Value], field: &str) -> i64 {
    items.iter().map(|i| i[field].as_i64().unwrap()).sum()
}

fn amounts(inv: &Value) -> Vec<i64> {
    inv["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["amount_minor"].as_i64().unwrap())
        .collect()
}

/// The ledger of `sub`, after checking it against the documents listed by the other
/// endpoints: balance = Σ issued invoices − Σ credit notes − Σ payments + Σ refunds (an
/// invoice voided after issue appears twice and cancels out), the running balance ends at the
/// balance, balance = open − credit, and the account is settled (no open invoice while credit
/// is available).
async fn checked_ledger(t: &TestApp, sub: &str) -> Value {
    let l = t
        .call(
            "GET",
            &format!("/api/v1/subscribers/{sub}/ledger"),
            Some(Role::Support),
            None,
        )
        .await;
    assert_eq!(l.status, StatusCode::OK, "{:?}", l.body);
    let l = l.body;
    let invoices = list_items(
        t,
        &format!("/api/v1/invoices?subscriber_id={sub}&limit=500"),
    )
    .await;
    let notes = list_items(
        t,
        &format!("/api/v1/credit-notes?subscriber_id={sub}&limit=500"),
    )
    .await;
    let payments = list_items(
        t,
        &format!("/api/v1/payments?subscriber_id={sub}&limit=500"),
    )
    .await;
    let refunds = list_items(t, &format!("/api/v1/subscribers/{sub}/refunds")).await;

    let mut invoiced = 0i64;
    let mut expected_entries = 0usize;
    let mut any_issued_positive = false;
    for i in &invoices {
        match i["status"].as_str().unwrap() {
            "issued" | "paid" => {
                invoiced += i["total_minor"].as_i64().unwrap();
                expected_entries += 1;
                if i["status"] == "issued" && i["total_minor"].as_i64().unwrap() > 0 {
                    any_issued_positive = true;
                }
            }
            // Issued, then voided: the invoice and its reversal.
            "void" if !i["number"].is_null() => expected_entries += 2,
            _ => {}
        }
    }
    expected_entries += notes.len() + payments.len() + refunds.len();
    let balance = l["balance_minor"].as_i64().unwrap();
    let expected = invoiced - sum(&notes, "total_minor") - sum(&payments, "amount_minor")
        + sum(&refunds, "amount_minor");
    assert_eq!(balance, expected, "balance vs documents; ledger {l:#}");
    // The list reads what is unallocated of all its payments at once: each as its own GET.
    for p in &payments {
        let one = t
            .call(
                "GET",
                &format!("/api/v1/payments/{}", p["id"].as_str().unwrap()),
                Some(Role::Support),
                None,
            )
            .await;
        assert_eq!(one.status, StatusCode::OK, "{:?}", one.body);
        assert_eq!(
            one.body["unallocated_minor"], p["unallocated_minor"],
            "{p:#}"
        );
    }
    let entries = l["entries"].as_array().unwrap();
    assert_eq!(entries.len(), expected_entries, "ledger entries: {l:#}");
    let mut running = 0i64;
    for e in entries {
        running += e["amount_minor"].as_i64().unwrap();
        assert_eq!(e["balance_minor"], running, "running balance: {l:#}");
    }
    assert_eq!(
        entries
            .last()
            .map_or(0, |e| e["balance_minor"].as_i64().unwrap()),
        balance,
        "last running balance: {l:#}"
    );
    let open = l["open_minor"].as_i64().unwrap();
    let credit = l["credit_minor"].as_i64().unwrap();
    assert_eq!(balance, open - credit, "{l:#}");
    assert!(open >= 0 && credit >= 0, "{l:#}");
    assert!(open == 0 || credit == 0, "unsettled account: {l:#}");
    // Some invoice is open exactly when an issued (not paid) one exists.
    assert_eq!(open > 0, any_issued_positive, "open vs statuses: {l:#}");
    // Every invoice entry carries the invoice's total, every void entry its opposite.
    for e in entries {
        let kind = e["kind"].as_str().unwrap();
        if kind == "invoice" || kind == "invoice_void" {
            let inv = invoices
                .iter()
                .find(|i| i["id"] == e["document_id"])
                .expect("ledger entry of a listed invoice");
            let total = inv["total_minor"].as_i64().unwrap();
            let sign = if kind == "invoice" { 1 } else { -1 };
            assert_eq!(e["amount_minor"], sign * total);
            assert_eq!(e["label"], inv["number"]);
        }
    }
    assert_eq!(l["currency"], "EUR");
    l
}

fn money(l: &Value) -> (i64, i64, i64) {
    (
        l["balance_minor"].as_i64().unwrap(),
        l["open_minor"].as_i64().unwrap(),
        l["credit_minor"].as_i64().unwrap(),
    )
}

fn allocations(p: &Value) -> Vec<(String, i64)> {
    p["allocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            assert_eq!(a["credit_id"], p["id"]);
            assert_eq!(a["credit_kind"], "payment");
            assert_eq!(a["debit_kind"], "invoice");
            (
                a["debit_id"].as_str().unwrap().to_string(),
                a["amount_minor"].as_i64().unwrap(),
            )
        })
        .collect()
}

// 1. The ledger over months ---------------------------------------------------------------

async fn ledger_stays_consistent_over_months_of_money(t: TestApp) {
    let (sub, _) = subscriber_with(&t, "Lena Ledger", json!({})).await;
    let plan = t.plan("LEDGER-60", 6000).await;
    active_service(&t, &sub, &plan, "lena").await;
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (0, 0, 0));
    assert_eq!(l["entries"], json!([]));

    // March is invoiced.
    let run = bill_over_http(&t, "2026-03-15", None).await;
    assert_eq!(run["invoices_created"], 1);
    let inv1 = live_invoice(&t, &sub, "2026-03-01").await;
    assert_eq!(inv1["number"], "INV-000001");
    assert_eq!(inv1["status"], "issued");
    assert_eq!(inv1["total_minor"], 6000);
    assert_eq!(inv1["tax_minor"], 0);
    assert_eq!(inv1["due_date"], "2026-03-29");
    let inv1 = id_of(&inv1);
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (6000, 6000, 0));
    assert_eq!(l["overdue_minor"], 0);

    // A partial payment.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let p = pay(
        &t,
        json!({"subscriber_id": sub, "amount_minor": 2000, "method": "cash",
               "reference": "partial one"}),
    )
    .await;
    assert_eq!(p["currency"], "EUR");
    assert_eq!(p["unallocated_minor"], 0);
    assert_eq!(allocations(&p), [(inv1.clone(), 2000)]);
    assert_eq!(p["resumed_services"], json!([]));
    assert_eq!(status_of(&t, &inv1).await, "issued");
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (4000, 4000, 0));
    let last = l["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "payment");
    assert_eq!(last["amount_minor"], -2000);
    assert_eq!(last["label"], "partial one");
    let got = t
        .call(
            "GET",
            &format!("/api/v1/payments/{}", id_of(&p)),
            Some(Role::Readonly),
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["amount_minor"], 2000);
    assert_eq!(got.body["method"], "cash");
    assert!(got.body.get("allocations").is_none());

    // April is invoiced; March is overdue now.
    set_clock(&t, "2026-04-01T09:00:00Z");
    let run = bill_over_http(&t, "2026-04-01", None).await;
    assert_eq!(run["invoices_created"], 1);
    let inv2 = live_invoice(&t, &sub, "2026-04-01").await;
    assert_eq!(inv2["number"], "INV-000002");
    assert_eq!(inv2["due_date"], "2026-04-15");
    let inv2 = id_of(&inv2);
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (10000, 10000, 0));
    assert_eq!(l["overdue_minor"], 4000);

    // An unnamed payment goes to the oldest invoice.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let p = pay(
        &t,
        json!({"subscriber_id": sub, "amount_minor": 1500, "method": "bank_transfer"}),
    )
    .await;
    assert_eq!(allocations(&p), [(inv1.clone(), 1500)]);
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (8500, 8500, 0));
    assert_eq!(l["overdue_minor"], 2500);

    // April's invoice, untouched by payments, is voided and billed again.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let v = t
        .call(
            "POST",
            &format!("/api/v1/invoices/{inv2}/void"),
            Some(Role::Billing),
            Some(json!({"reason": "wrong address"})),
        )
        .await;
    assert_eq!(v.status, StatusCode::OK, "{:?}", v.body);
    assert_eq!(v.body["status"], "void");
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (2500, 2500, 0));
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let run = bill_over_http(&t, "2026-04-01", None).await;
    assert_eq!(run["invoices_created"], 1);
    let inv3 = live_invoice(&t, &sub, "2026-04-01").await;
    assert_eq!(inv3["number"], "INV-000003");
    assert_eq!(inv3["total_minor"], 6000);
    let inv3 = id_of(&inv3);
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (8500, 8500, 0));

    // A payment naming the newer invoice pays it first; the rest goes to the oldest.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let p = pay(
        &t,
        json!({"subscriber_id": sub, "amount_minor": 7000, "method": "card",
               "allocations": [{"invoice_id": inv3, "amount_minor": 6000}]}),
    )
    .await;
    assert_eq!(
        allocations(&p),
        [(inv3.clone(), 6000), (inv1.clone(), 1000)]
    );
    assert_eq!(p["unallocated_minor"], 0);
    assert_eq!(status_of(&t, &inv3).await, "paid");
    assert_eq!(status_of(&t, &inv1).await, "issued");
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (1500, 1500, 0));

    // Paying more than is owed leaves credit.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let over = pay(
        &t,
        json!({"subscriber_id": sub, "amount_minor": 9000, "method": "bank_transfer",
               "external_id": "BANK-OVER-1"}),
    )
    .await;
    assert_eq!(allocations(&over), [(inv1.clone(), 1500)]);
    assert_eq!(over["unallocated_minor"], 7500);
    assert_eq!(status_of(&t, &inv1).await, "paid");
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (-7500, 0, 7500));
    assert_eq!(l["overdue_minor"], 0);

    // The credit pays May's invoice as it is issued.
    set_clock(&t, "2026-05-01T09:00:00Z");
    let run = bill_over_http(&t, "2026-05-01", None).await;
    assert_eq!(run["invoices_created"], 1);
    let inv4 = live_invoice(&t, &sub, "2026-05-01").await;
    assert_eq!(inv4["number"], "INV-000004");
    assert_eq!(inv4["status"], "paid", "paid at issue by the credit");
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (-1500, 0, 1500));
    let got = t
        .admin("GET", &format!("/api/v1/payments/{}", id_of(&over)), None)
        .await;
    assert_eq!(got.body["unallocated_minor"], 1500);
    assert_eq!(got.body["external_id"], "BANK-OVER-1");

    // June's invoice takes the rest of the credit and stays open for 4500.
    set_clock(&t, "2026-06-01T09:00:00Z");
    let run = bill_over_http(&t, "2026-06-01", None).await;
    assert_eq!(run["invoices_created"], 1);
    let inv5 = live_invoice(&t, &sub, "2026-06-01").await;
    assert_eq!(inv5["number"], "INV-000005");
    assert_eq!(inv5["status"], "issued");
    let inv5 = id_of(&inv5);
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (4500, 4500, 0));

    // A partial credit note reduces what is open on its invoice.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let cn = t
        .call(
            "POST",
            "/api/v1/credit-notes",
            Some(Role::Billing),
            Some(json!({"invoice_id": inv5, "amount_minor": 1000, "reason": "outage"})),
        )
        .await;
    assert_eq!(cn.status, StatusCode::CREATED, "{:?}", cn.body);
    assert_eq!(cn.body["number"], "CN-000001");
    assert_eq!(cn.body["total_minor"], 1000);
    assert_eq!(cn.body["subtotal_minor"], 1000);
    assert_eq!(cn.body["tax_minor"], 0);
    assert_eq!(cn.body["invoice_id"], inv5.as_str());
    assert_eq!(cn.body["subscriber_id"], sub.as_str());
    assert_eq!(cn.body["reason"], "outage");
    assert_eq!(status_of(&t, &inv5).await, "issued");
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (3500, 3500, 0));
    let got = t
        .call(
            "GET",
            &format!("/api/v1/credit-notes/{}", id_of(&cn.body)),
            Some(Role::Readonly),
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["number"], "CN-000001");

    // A full credit note credits what is left (5000): the invoice is settled, 1500 is credit.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let cn2 = t
        .call(
            "POST",
            "/api/v1/credit-notes",
            Some(Role::Billing),
            Some(json!({"invoice_id": inv5, "reason": "goodwill"})),
        )
        .await;
    assert_eq!(cn2.status, StatusCode::CREATED, "{:?}", cn2.body);
    assert_eq!(cn2.body["number"], "CN-000002");
    assert_eq!(cn2.body["total_minor"], 5000);
    assert_eq!(status_of(&t, &inv5).await, "paid");
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (-1500, 0, 1500));
    let by_invoice = list_items(&t, &format!("/api/v1/credit-notes?invoice_id={inv5}")).await;
    assert_eq!(by_invoice.len(), 2);
    // Nothing is left to credit on it.
    let r = t
        .admin(
            "POST",
            "/api/v1/credit-notes",
            Some(json!({"invoice_id": inv5, "reason": "again"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);

    // Refunds pay the credit back out.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let r = t
        .call(
            "POST",
            &format!("/api/v1/subscribers/{sub}/refunds"),
            Some(Role::Billing),
            Some(json!({"amount_minor": 1000, "method": "bank_transfer",
                        "reference": "RF-1", "reason": "customer asked"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["amount_minor"], 1000);
    assert_eq!(r.body["reason"], "customer asked");
    assert_eq!(r.body["currency"], "EUR");
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (-500, 0, 500));
    let last = l["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["kind"], "refund");
    assert_eq!(last["amount_minor"], 1000);
    assert_eq!(last["balance_minor"], -500);

    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/subscribers/{sub}/refunds"),
            Some(json!({"amount_minor": 500, "method": "cash", "reason": "the rest"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (0, 0, 0));
    let refunds = list_items(&t, &format!("/api/v1/subscribers/{sub}/refunds")).await;
    assert_eq!(refunds.len(), 2);

    // The whole story, in order.
    let kinds: Vec<&str> = l["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "invoice",
            "payment",
            "invoice",
            "payment",
            "invoice_void",
            "invoice",
            "payment",
            "payment",
            "invoice",
            "invoice",
            "credit_note",
            "credit_note",
            "refund",
            "refund"
        ]
    );
    // Every issued invoice ends up paid; the voided one stays void.
    let statuses: Vec<String> = invoices_of(&t, &sub)
        .await
        .iter()
        .map(|i| i["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["paid", "void", "paid", "paid", "paid"]);
}

// 2. Validation and errors ----------------------------------------------------------------

/// An App over the same store and clock that leaves drafts (issue_invoices = false).
fn drafts_app(t: &TestApp) -> lastmile_app::App {
    let secrets =
        lastmile_app::SecretBox::from_hex(&lastmile_app::SecretBox::generate_key().unwrap())
            .unwrap();
    let config = lastmile_app::AppConfig {
        backdate_window: jiff::SignedDuration::from_hours(24 * 30),
        executor_kinds: vec![],
        billing: lastmile_app::billing::BillingConfig {
            issue_invoices: false,
            ..Default::default()
        },
    };
    lastmile_app::App::new(t.app.store.clone(), t.clock.clone(), secrets, config)
}

async fn money_validation_and_errors(t: TestApp) {
    let (a, _) = subscriber_with(&t, "Val A", json!({})).await;
    let (b, _) = subscriber_with(&t, "Val B", json!({})).await;
    let plan = t.plan("VAL-60", 6000).await;
    active_service(&t, &a, &plan, "val-a").await;
    active_service(&t, &b, &plan, "val-b").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv_a = id_of(&live_invoice(&t, &a, "2026-03-01").await);
    let inv_b = id_of(&live_invoice(&t, &b, "2026-03-01").await);
    let base = |extra: Value| {
        let mut body = json!({"subscriber_id": a, "amount_minor": 1000, "method": "cash"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let post = |body: Value| t.admin("POST", "/api/v1/payments", Some(body));

    let r = post(base(json!({"amount_minor": 0}))).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);
    let r = post(base(json!({"currency": "USD"}))).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["currency"]);
    let r = post(base(json!({"currency": "euro"}))).await;
    assert_eq!(fields(&r), ["currency"]);
    // The subscriber's own currency is fine.
    let unknown = "01900000-0000-7000-8000-000000000000";
    let r = post(base(json!({"subscriber_id": unknown}))).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["subscriber_id"]);
    let r = post(base(
        json!({"allocations": [{"invoice_id": inv_b, "amount_minor": 500}]}),
    ))
    .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["allocations[0].invoice_id"]);
    let r = post(base(
        json!({"allocations": [{"invoice_id": unknown, "amount_minor": 500}]}),
    ))
    .await;
    assert_eq!(fields(&r), ["allocations[0].invoice_id"]);
    let r = post(base(
        json!({"amount_minor": 7000, "allocations": [{"invoice_id": inv_a, "amount_minor": 6500}]}),
    ))
    .await;
    assert_eq!(fields(&r), ["allocations[0].amount_minor"]);
    let r = post(base(
        json!({"allocations": [{"invoice_id": inv_a, "amount_minor": 1500}]}),
    ))
    .await;
    assert_eq!(fields(&r), ["allocations"]);
    let r = post(base(json!({"received_at": "2026-04-15T00:00:00Z"}))).await;
    assert_eq!(fields(&r), ["received_at"]);
    let r = post(base(json!({"method": "bitcoin"}))).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["method"]);
    let r = post(base(json!({"tip": 1}))).await;
    assert_eq!(fields(&r), ["tip"]);
    let r = post(json!({"subscriber_id": a, "method": "cash"})).await;
    assert_eq!(fields(&r), ["amount_minor"]);
    // Nothing was recorded by any of them.
    assert!(
        list_items(&t, &format!("/api/v1/payments?subscriber_id={a}"))
            .await
            .is_empty()
    );
    assert_eq!(money(&checked_ledger(&t, &a).await), (6000, 6000, 0));

    // The same bank transaction twice: recorded once.
    let p = post(base(json!({"external_id": "BANK-77"}))).await;
    assert_eq!(p.status, StatusCode::CREATED, "{:?}", p.body);
    for body in [
        base(json!({"external_id": "BANK-77"})),
        base(json!({"external_id": "BANK-77", "amount_minor": 2500})),
        base(json!({"external_id": "BANK-77", "subscriber_id": b})),
    ] {
        let r = post(body).await;
        assert_problem(&r, 409, "duplicate");
        assert_eq!(fields(&r), ["external_id"]);
    }
    assert_eq!(
        list_items(&t, &format!("/api/v1/payments?subscriber_id={a}"))
            .await
            .len(),
        1
    );
    assert!(
        list_items(&t, &format!("/api/v1/payments?subscriber_id={b}"))
            .await
            .is_empty()
    );
    assert_eq!(money(&checked_ledger(&t, &a).await), (5000, 5000, 0));
    assert_eq!(money(&checked_ledger(&t, &b).await), (6000, 6000, 0));

    // An invoice something was paid against cannot be voided.
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/invoices/{inv_a}/void"),
            Some(json!({"reason": "oops"})),
        )
        .await;
    assert_problem(&r, 409, "invalid-state");

    // Refunds: at most the credit.
    let refund_path = format!("/api/v1/subscribers/{a}/refunds");
    let refund = |body: Value| t.admin("POST", &refund_path, Some(body));
    let r = refund(json!({"amount_minor": 1, "method": "cash", "reason": "x"})).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);
    let r = refund(json!({"amount_minor": 0, "method": "cash", "reason": "x"})).await;
    assert_eq!(fields(&r), ["amount_minor"]);
    let r = refund(json!({"amount_minor": 100, "method": "cash", "reason": " "})).await;
    assert_eq!(fields(&r), ["reason"]);
    // 10000 more: 5000 pays the invoice, 5000 is credit.
    let p = post(base(json!({"amount_minor": 10000}))).await;
    assert_eq!(p.status, StatusCode::CREATED);
    assert_eq!(p.body["unallocated_minor"], 5000);
    assert_eq!(status_of(&t, &inv_a).await, "paid");
    let r = refund(json!({"amount_minor": 5001, "method": "cash", "reason": "too much"})).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);
    assert!(list_items(&t, &format!("/api/v1/subscribers/{a}/refunds"))
        .await
        .is_empty());
    assert_eq!(money(&checked_ledger(&t, &a).await), (-5000, 0, 5000));
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/subscribers/{unknown}/refunds"),
            Some(json!({"amount_minor": 1, "method": "cash", "reason": "x"})),
        )
        .await;
    assert_problem(&r, 404, "not-found");

    // A paid invoice cannot be voided either.
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/invoices/{inv_a}/void"),
            Some(json!({"reason": "oops"})),
        )
        .await;
    assert_problem(&r, 409, "invalid-state");
    assert_eq!(r.body["current_state"], "paid");
    assert_eq!(status_of(&t, &inv_a).await, "paid");

    // Credit notes: at most what is not credited yet.
    let credit = |body: Value| t.admin("POST", "/api/v1/credit-notes", Some(body));
    let r = credit(json!({"invoice_id": inv_b, "amount_minor": 6001, "reason": "x"})).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);
    let r = credit(json!({"invoice_id": inv_b, "amount_minor": 0, "reason": "x"})).await;
    assert_eq!(fields(&r), ["amount_minor"]);
    let r = credit(json!({"invoice_id": inv_b, "amount_minor": 10, "reason": ""})).await;
    assert_eq!(fields(&r), ["reason"]);
    let r = credit(json!({"invoice_id": unknown, "reason": "x"})).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["invoice_id"]);
    let r = credit(json!({"invoice_id": inv_b, "amount_minor": 2000, "reason": "part"})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = credit(json!({"invoice_id": inv_b, "amount_minor": 4001, "reason": "x"})).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);
    assert_eq!(
        list_items(&t, &format!("/api/v1/credit-notes?subscriber_id={b}"))
            .await
            .len(),
        1
    );
    assert_eq!(money(&checked_ledger(&t, &b).await), (4000, 4000, 0));
    // Credited, so it cannot be voided.
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/invoices/{inv_b}/void"),
            Some(json!({"reason": "oops"})),
        )
        .await;
    assert_problem(&r, 409, "invalid-state");

    // Drafts and void invoices cannot be credited.
    let (c, _) = subscriber_with(&t, "Val C", json!({})).await;
    active_service(&t, &c, &plan, "val-c").await;
    let drafts = drafts_app(&t);
    let run = drafts
        .start_billing_run(
            "2026-03-15".parse().unwrap(),
            Some(lastmile_domain::ids::SubscriberId(c.parse().unwrap())),
        )
        .await
        .unwrap();
    let run = drafts.execute_billing_run(run, &|_| {}).await.unwrap();
    assert_eq!(run.invoices_created, 1);
    let draft = live_invoice(&t, &c, "2026-03-01").await;
    assert_eq!(draft["status"], "draft");
    assert!(draft["number"].is_null());
    assert!(draft["due_date"].is_null());
    let draft = id_of(&draft);
    let r = credit(json!({"invoice_id": draft, "reason": "x"})).await;
    assert_problem(&r, 409, "invalid-state");
    assert_eq!(r.body["current_state"], "draft");
    // A draft is not in the ledger.
    assert_eq!(money(&checked_ledger(&t, &c).await), (0, 0, 0));
    // Voiding a draft leaves nothing in the ledger either.
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/invoices/{draft}/void"),
            Some(json!({"reason": "not needed"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "void");
    let r = credit(json!({"invoice_id": draft, "reason": "x"})).await;
    assert_problem(&r, 409, "invalid-state");
    assert_eq!(r.body["current_state"], "void");
    let r = t
        .admin("POST", &format!("/api/v1/invoices/{draft}/issue"), None)
        .await;
    assert_problem(&r, 409, "invalid-state");
    let l = checked_ledger(&t, &c).await;
    assert_eq!(money(&l), (0, 0, 0));
    assert_eq!(l["entries"], json!([]));
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/invoices/{draft}/void"),
            Some(json!({"reason": "again"})),
        )
        .await;
    assert_problem(&r, 409, "invalid-state");

    // Malformed requests.
    let token = format!("Bearer {}", t.tokens[&Role::Admin]);
    let r = t
        .raw(
            "POST",
            "/api/v1/payments",
            &[
                ("authorization".into(), token.clone()),
                ("content-type".into(), "application/json".into()),
            ],
            Some(b"{\"subscriber_id\": ".to_vec()),
        )
        .await;
    assert_problem(&r, 400, "bad-request");
    let r = t
        .raw(
            "POST",
            "/api/v1/payments",
            &[
                ("authorization".into(), token.clone()),
                ("content-type".into(), "text/plain".into()),
            ],
            Some(serde_json::to_vec(&base(json!({}))).unwrap()),
        )
        .await;
    assert_problem(&r, 415, "unsupported-media-type");
    let r = t
        .raw(
            "POST",
            "/api/v1/payments/import",
            &[
                ("authorization".into(), token.clone()),
                ("content-type".into(), "application/json".into()),
            ],
            Some(b"date,amount,reference\n2026-03-15,10.00,x\n".to_vec()),
        )
        .await;
    assert_problem(&r, 415, "unsupported-media-type");

    // Roles.
    let ledger_path = format!("/api/v1/subscribers/{a}/ledger");
    for path in [
        "/api/v1/payments".to_string(),
        format!("/api/v1/payments/{}", id_of(&p.body)),
        "/api/v1/credit-notes".to_string(),
        ledger_path.clone(),
        format!("/api/v1/subscribers/{a}/refunds"),
        format!("/api/v1/subscribers/{a}/discounts"),
        "/api/v1/tax-zones".to_string(),
    ] {
        let r = t.call("GET", &path, Some(Role::Noc), None).await;
        assert_problem(&r, 403, "forbidden");
        for role in [Role::Support, Role::Readonly, Role::Billing] {
            let r = t.call("GET", &path, Some(role), None).await;
            assert_eq!(r.status, StatusCode::OK, "{role} {path}: {:?}", r.body);
        }
    }
    assert_problem(
        &t.call("GET", &ledger_path, None, None).await,
        401,
        "unauthorized",
    );
    for role in [Role::Support, Role::Readonly, Role::Noc] {
        let r = t
            .call(
                "POST",
                "/api/v1/payments",
                Some(role),
                Some(base(json!({}))),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
        let r = t
            .call(
                "POST",
                "/api/v1/credit-notes",
                Some(role),
                Some(json!({"invoice_id": inv_b, "amount_minor": 1, "reason": "x"})),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
        let r = t
            .call(
                "POST",
                &format!("/api/v1/subscribers/{a}/refunds"),
                Some(role),
                Some(json!({"amount_minor": 1, "method": "cash", "reason": "x"})),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
    }
    // None of the refused requests changed anything.
    assert_eq!(
        list_items(&t, &format!("/api/v1/payments?subscriber_id={a}"))
            .await
            .len(),
        2
    );
    assert_eq!(money(&checked_ledger(&t, &a).await), (-5000, 0, 5000));
    assert_eq!(money(&checked_ledger(&t, &b).await), (4000, 4000, 0));

    // Unknown documents.
    for path in [
        format!("/api/v1/payments/{unknown}"),
        format!("/api/v1/credit-notes/{unknown}"),
        format!("/api/v1/subscribers/{unknown}/ledger"),
        format!("/api/v1/subscribers/{unknown}/refunds"),
    ] {
        assert_problem(&t.admin("GET", &path, None).await, 404, "not-found");
    }

    // A negative amount is the amount's fault alone: the payment names no allocations, so
    // there is nothing "allocated beyond the payment" to report.
    let r = post(base(json!({"amount_minor": -100}))).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);
}

/// Drafts mode (a second App over the same store with issue_invoices = false): drafts have
/// no number and are not in the ledger; issuing numbers them gap-free in issue order, makes
/// them due after the payment terms from the day of issue, and credit waiting pays them.
async fn drafts_are_numbered_when_issued_and_paid_by_waiting_credit(t: TestApp) {
    let (d1, _) = subscriber_with(&t, "Draft One", json!({})).await;
    let (d2, _) = subscriber_with(&t, "Draft Two", json!({})).await;
    let (d3, _) = subscriber_with(&t, "Draft Three", json!({})).await;
    let plan = t.plan("DRAFT-60", 6000).await;
    for (s, u) in [(&d1, "draft1"), (&d2, "draft2"), (&d3, "draft3")] {
        active_service(&t, s, &plan, u).await;
    }
    pay(
        &t,
        json!({"subscriber_id": d1, "amount_minor": 10000, "method": "cash"}),
    )
    .await;
    let drafts = drafts_app(&t);
    let as_of: jiff::civil::Date = "2026-03-15".parse().unwrap();
    let run = drafts.start_billing_run(as_of, None).await.unwrap();
    let run = drafts.execute_billing_run(run, &|_| {}).await.unwrap();
    assert_eq!(run.invoices_created, 3);
    let mut ids = Vec::new();
    for s in [&d1, &d2, &d3] {
        let inv = live_invoice(&t, s, "2026-03-01").await;
        assert_eq!(inv["status"], "draft");
        assert!(inv["number"].is_null() && inv["issued_at"].is_null());
        ids.push(id_of(&inv));
    }
    // Drafts are not in the ledger; the credit waits.
    assert_eq!(money(&checked_ledger(&t, &d1).await), (-10000, 0, 10000));
    assert_eq!(money(&checked_ledger(&t, &d2).await), (0, 0, 0));
    // Billing the same date again leaves the drafts alone.
    let run = drafts.start_billing_run(as_of, None).await.unwrap();
    let run = drafts.execute_billing_run(run, &|_| {}).await.unwrap();
    assert_eq!(run.invoices_created, 0);
    // The document says it is a draft.
    let html = get_html(&t, &ids[1], Role::Readonly).await;
    assert_eq!(html.status, StatusCode::OK);
    assert!(html.body.as_str().unwrap().contains("DRAFT"));

    let tr = &t;
    let issue = |id: &str, role: Role| {
        let path = format!("/api/v1/invoices/{id}/issue");
        async move { tr.call("POST", &path, Some(role), None).await }
    };
    assert_problem(&issue(&ids[1], Role::Support).await, 403, "forbidden");
    // A voided draft takes no number.
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/invoices/{}/void", ids[2]),
            Some(json!({"reason": "not this one"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body["number"].is_null());

    set_clock(&t, "2026-03-16T10:00:00Z");
    let r = issue(&ids[1], Role::Billing).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["number"], "INV-000001");
    assert_eq!(r.body["status"], "issued");
    assert_eq!(r.body["issued_at"], "2026-03-16T10:00:00Z");
    assert_eq!(r.body["due_date"], "2026-03-30");
    assert_eq!(r.body["lines"][0]["amount_minor"], 6000);
    assert_eq!(money(&checked_ledger(&t, &d2).await), (6000, 6000, 0));
    let r = issue(&ids[0], Role::Billing).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["number"], "INV-000002");
    assert_eq!(
        r.body["status"], "paid",
        "the waiting credit pays it at once"
    );
    assert_eq!(money(&checked_ledger(&t, &d1).await), (-4000, 0, 4000));
    let r = issue(&ids[0], Role::Billing).await;
    assert_problem(&r, 409, "invalid-state");
    let r = issue(&ids[2], Role::Billing).await;
    assert_problem(&r, 409, "invalid-state");
    assert_eq!(money(&checked_ledger(&t, &d3).await), (0, 0, 0));
}

// 3. Taxes --------------------------------------------------------------------------------

async fn tax_zones_tax_invoice_lines(t: TestApp) {
    let zone = |code: &str, inclusive: bool, taxes: Value| {
        json!({"code": code, "name": format!("Zone {code}"),
               "prices_include_tax": inclusive, "taxes": taxes})
    };
    let r = t
        .call(
            "POST",
            "/api/v1/tax-zones",
            Some(Role::Billing),
            Some(zone(
                "at",
                false,
                json!([{"name": "VAT", "tax_class": "standard", "rate": "20"}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["code"], "at");
    assert_eq!(r.body["prices_include_tax"], false);
    assert_eq!(r.body["taxes"][0]["rate"], "20");
    assert_eq!(r.body["revision"], 1);
    let at_id = id_of(&r.body);
    let r = t
        .admin(
            "POST",
            "/api/v1/tax-zones",
            Some(zone(
                "de-incl",
                true,
                json!([{"name": "VAT", "tax_class": "standard", "rate": "20"}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = t
        .admin(
            "POST",
            "/api/v1/tax-zones",
            Some(zone(
                "ca-qc",
                false,
                json!([{"name": "GST", "tax_class": "standard", "rate": "5"},
                       {"name": "QST", "tax_class": "standard", "rate": "9.975"},
                       {"name": "Luxury", "tax_class": "luxury", "rate": "50"}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["taxes"][1]["rate"], "9.975");

    let zones = t
        .call("GET", "/api/v1/tax-zones", Some(Role::Readonly), None)
        .await;
    assert_eq!(zones.status, StatusCode::OK);
    let codes: Vec<&str> = zones
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes, ["at", "ca-qc", "de-incl"]);
    let got = t
        .call(
            "GET",
            &format!("/api/v1/tax-zones/{at_id}"),
            Some(Role::Support),
            None,
        )
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body["name"], "Zone at");

    // Validation names the fields.
    let post = |body: Value| t.admin("POST", "/api/v1/tax-zones", Some(body));
    let r = post(zone(
        "bad",
        false,
        json!([{"name": "VAT", "tax_class": "standard", "rate": "120"}]),
    ))
    .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["taxes[0].rate"]);
    let r = post(zone(
        "bad",
        false,
        json!([{"name": "VAT", "tax_class": "standard", "rate": "20"},
               {"name": "VAT", "tax_class": "standard", "rate": "-1"}]),
    ))
    .await;
    assert_eq!(fields(&r), ["taxes[1].rate"]);
    let r = post(zone(
        "bad",
        false,
        json!([{"name": "VAT", "tax_class": "standard", "rate": 20}]),
    ))
    .await;
    assert_eq!(fields(&r), ["taxes[0].rate"]);
    let r = post(zone(
        "bad",
        false,
        json!([{"name": " ", "tax_class": "standard", "rate": "20"},
               {"name": "GST", "tax_class": "", "rate": "5"}]),
    ))
    .await;
    assert_eq!(fields(&r), ["taxes[0].name", "taxes[1].tax_class"]);
    let r = post(zone(
        "bad",
        false,
        json!([{"name": "VAT", "tax_class": "standard", "rate": "20"},
               {"name": "VAT", "tax_class": "standard", "rate": "10"}]),
    ))
    .await;
    assert_eq!(fields(&r), ["taxes[1]"]);
    let r = post(zone("bad", false, json!([]))).await;
    assert_eq!(fields(&r), ["taxes"]);
    let r = post(zone(
        "no spaces",
        false,
        json!([{"name": "VAT", "tax_class": "standard", "rate": "20"}]),
    ))
    .await;
    assert_eq!(fields(&r), ["code"]);
    let r = post(zone(
        "at",
        false,
        json!([{"name": "VAT", "tax_class": "standard", "rate": "20"}]),
    ))
    .await;
    assert_problem(&r, 409, "duplicate");
    assert_eq!(fields(&r), ["code"]);
    let r = t
        .call(
            "POST",
            "/api/v1/tax-zones",
            Some(Role::Support),
            Some(zone(
                "sup",
                false,
                json!([{"name": "VAT", "tax_class": "standard", "rate": "20"}]),
            )),
        )
        .await;
    assert_problem(&r, 403, "forbidden");

    // Subscribers refer to zones by code.
    let r = t
        .admin(
            "POST",
            "/api/v1/subscribers",
            Some(json!({"name": "Nowhere Ned", "currency": "EUR", "tax_zone": "atlantis"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["tax_zone"]);

    let plan = t.plan("TAX-60", 6000).await;
    let (excl, _) = subscriber_with(&t, "Exclusive Eva", json!({"tax_zone": "at"})).await;
    let (incl, _) = subscriber_with(&t, "Inclusive Ida", json!({"tax_zone": "de-incl"})).await;
    let (qc, _) = subscriber_with(&t, "Quebec Quinn", json!({"tax_zone": "ca-qc"})).await;
    let (none, _) = subscriber_with(&t, "Untaxed Uma", json!({})).await;
    for (s, u) in [
        (&excl, "eva"),
        (&incl, "ida"),
        (&qc, "quinn"),
        (&none, "uma"),
    ] {
        active_service(&t, s, &plan, u).await;
    }
    let run = bill_over_http(&t, "2026-03-15", None).await;
    assert_eq!(run["invoices_created"], 4);

    // Exclusive: 20 % on top.
    let inv = live_invoice(&t, &excl, "2026-03-01").await;
    assert_eq!(inv["prices_include_tax"], false);
    let line = &inv["lines"][0];
    assert_eq!(line["amount_minor"], 6000);
    assert_eq!(line["net_minor"], 6000);
    assert_eq!(line["tax_minor"], 1200);
    assert_eq!(line["gross_minor"], 7200);
    assert_eq!(
        line["taxes"],
        json!([{"name": "VAT", "rate": "20", "amount_minor": 1200}])
    );
    assert_eq!(inv["subtotal_minor"], 6000);
    assert_eq!(inv["tax_minor"], 1200);
    assert_eq!(inv["total_minor"], 7200);
    assert_totals_consistent(&inv);
    assert_eq!(money(&checked_ledger(&t, &excl).await), (7200, 7200, 0));

    // Inclusive: the price is the total, the tax is extracted: 6000 / 1.2 = 5000 net.
    let inv = live_invoice(&t, &incl, "2026-03-01").await;
    assert_eq!(inv["prices_include_tax"], true);
    let line = &inv["lines"][0];
    assert_eq!(line["amount_minor"], 6000);
    assert_eq!(line["net_minor"], 5000);
    assert_eq!(line["tax_minor"], 1000);
    assert_eq!(line["gross_minor"], 6000);
    assert_eq!(
        line["taxes"],
        json!([{"name": "VAT", "rate": "20", "amount_minor": 1000}])
    );
    assert_eq!(inv["subtotal_minor"], 5000);
    assert_eq!(inv["tax_minor"], 1000);
    assert_eq!(inv["total_minor"], 6000);
    assert_totals_consistent(&inv);
    assert_eq!(money(&checked_ledger(&t, &incl).await), (6000, 6000, 0));

    // Two taxes of the class, each rounded once, half to even (598.5 → 598); the other
    // class's tax does not apply.
    let inv = live_invoice(&t, &qc, "2026-03-01").await;
    let line = &inv["lines"][0];
    assert_eq!(
        line["taxes"],
        json!([{"name": "GST", "rate": "5", "amount_minor": 300},
               {"name": "QST", "rate": "9.975", "amount_minor": 598}])
    );
    assert_eq!(line["tax_minor"], 898);
    assert_eq!(inv["total_minor"], 6898);
    assert_totals_consistent(&inv);

    // No zone: no tax.
    let inv = live_invoice(&t, &none, "2026-03-01").await;
    assert_eq!(inv["lines"][0]["tax_minor"], 0);
    assert_eq!(inv["lines"][0]["taxes"], json!([]));
    assert_eq!(inv["total_minor"], 6000);
    assert_totals_consistent(&inv);

    // A partial credit note carries the invoice's share of tax; the full rest carries the rest.
    let excl_inv = id_of(&live_invoice(&t, &excl, "2026-03-01").await);
    let cn = t
        .admin(
            "POST",
            "/api/v1/credit-notes",
            Some(json!({"invoice_id": excl_inv, "amount_minor": 3600, "reason": "half"})),
        )
        .await;
    assert_eq!(cn.status, StatusCode::CREATED, "{:?}", cn.body);
    assert_eq!(
        (
            &cn.body["subtotal_minor"],
            &cn.body["tax_minor"],
            &cn.body["total_minor"]
        ),
        (&json!(3000), &json!(600), &json!(3600))
    );
    let cn = t
        .admin(
            "POST",
            "/api/v1/credit-notes",
            Some(json!({"invoice_id": excl_inv, "reason": "rest"})),
        )
        .await;
    assert_eq!(cn.status, StatusCode::CREATED, "{:?}", cn.body);
    assert_eq!(cn.body["total_minor"], 3600);
    assert_eq!(cn.body["tax_minor"], 600);
    assert_eq!(status_of(&t, &excl_inv).await, "paid");
    assert_eq!(money(&checked_ledger(&t, &excl).await), (0, 0, 0));

    // A new rate applies to new periods only; issued invoices keep theirs.
    set_clock(&t, "2026-04-01T09:00:00Z");
    let r = t
        .admin(
            "PUT",
            &format!("/api/v1/tax-zones/{at_id}"),
            Some(zone(
                "at",
                false,
                json!([{"name": "VAT", "tax_class": "standard", "rate": "10"}]),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["taxes"][0]["rate"], "10");
    let r = t
        .admin(
            "PUT",
            &format!("/api/v1/tax-zones/{at_id}"),
            Some(zone(
                "at",
                false,
                json!([{"name": "VAT", "tax_class": "standard", "rate": "abc"}]),
            )),
        )
        .await;
    assert_eq!(fields(&r), ["taxes[0].rate"]);
    bill_over_http(&t, "2026-04-01", Some(&excl)).await;
    let april = live_invoice(&t, &excl, "2026-04-01").await;
    assert_eq!(april["tax_minor"], 600);
    assert_eq!(april["total_minor"], 6600);
    let march = live_invoice(&t, &excl, "2026-03-01").await;
    assert_eq!(march["tax_minor"], 1200);
    assert_eq!(march["total_minor"], 7200);
}

/// Subscribers refer to a zone by its code, and PUT may change the code: the subscribers of
/// the zone must stay billable (the change refused while the zone is in use, or followed).
async fn renaming_a_tax_zone_keeps_its_subscribers_billable(t: TestApp) {
    let body = |code: &str| {
        json!({"code": code, "name": "Austria", "taxes":
               [{"name": "VAT", "tax_class": "standard", "rate": "20"}]})
    };
    let r = t.admin("POST", "/api/v1/tax-zones", Some(body("at"))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let zone = id_of(&r.body);
    let (sub, _) = subscriber_with(&t, "Renamed Rosa", json!({"tax_zone": "at"})).await;
    let plan = t.plan("RENAME-60", 6000).await;
    active_service(&t, &sub, &plan, "rosa").await;
    let r = t
        .admin(
            "PUT",
            &format!("/api/v1/tax-zones/{zone}"),
            Some(body("at-new")),
        )
        .await;
    // Subscribers refer to the zone by code: it cannot change under them.
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["code"]);
    let r = t
        .call(
            "POST",
            "/api/v1/billing-runs",
            Some(Role::Billing),
            Some(json!({"as_of": "2026-03-15"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let id = r.body["id"].as_str().unwrap().to_string();
    t.state
        .billing_run_idle(lastmile_domain::ids::BillingRunId(id.parse().unwrap()))
        .await;
    let run = t
        .admin("GET", &format!("/api/v1/billing-runs/{id}"), None)
        .await
        .body;
    assert_eq!(run["status"], "completed");
    assert_eq!(
        run["errors"],
        json!([]),
        "the subscriber could not be billed"
    );
    let inv = live_invoice(&t, &sub, "2026-03-01").await;
    assert_eq!(inv["total_minor"], 7200);
    let code = t
        .admin("GET", &format!("/api/v1/subscribers/{sub}"), None)
        .await
        .body["tax_zone"]
        .clone();
    let zones: Vec<Value> = list_items(&t, "/api/v1/tax-zones").await;
    assert!(
        zones.iter().any(|z| z["code"] == code),
        "the subscriber's tax_zone {code} names no zone any more; zones: {zones:?}"
    );
}

fn assert_totals_consistent(inv: &Value) {
    let lines = inv["lines"].as_array().unwrap();
    let net: i64 = lines.iter().map(|l| l["net_minor"].as_i64().unwrap()).sum();
    let tax: i64 = lines.iter().map(|l| l["tax_minor"].as_i64().unwrap()).sum();
    for l in lines {
        assert_eq!(
            l["gross_minor"].as_i64().unwrap(),
            l["net_minor"].as_i64().unwrap() + l["tax_minor"].as_i64().unwrap()
        );
        let applied: i64 = l["taxes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["amount_minor"].as_i64().unwrap())
            .sum();
        assert_eq!(applied, l["tax_minor"].as_i64().unwrap());
    }
    assert_eq!(inv["subtotal_minor"], net, "{inv:#}");
    assert_eq!(inv["tax_minor"], tax, "{inv:#}");
    assert_eq!(
        inv["total_minor"].as_i64().unwrap(),
        net + tax,
        "total = subtotal + tax: {inv:#}"
    );
}

// 4. Discounts ----------------------------------------------------------------------------

async fn discounts_reduce_invoices_and_ending_them_corrects(t: TestApp) {
    let (sub, _) = subscriber_with(&t, "Dora Discount", json!({})).await;
    let plan = t.plan("DISC-60", 6000).await;
    let svc = active_service(&t, &sub, &plan, "dora").await;
    let path = format!("/api/v1/subscribers/{sub}/discounts");

    // Validation.
    let post = |body: Value| t.admin("POST", &path, Some(body));
    let r = post(json!({"value": {"kind": "percent", "percent": "0"},
                        "starts_on": "2026-03-01", "description": "none"}))
    .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["value.percent"]);
    let r = post(json!({"value": {"kind": "percent", "percent": "10"},
                        "starts_on": "2026-03-01", "ends_on": "2026-03-01",
                        "description": "empty window"}))
    .await;
    assert_eq!(fields(&r), ["ends_on"]);
    let r = post(json!({"value": {"kind": "percent", "percent": "10"},
                        "starts_on": "2026-03-01", "description": ""}))
    .await;
    assert_eq!(fields(&r), ["description"]);
    let r = post(json!({"value": {"kind": "fixed", "amount_minor": -5},
                        "starts_on": "2026-03-01", "description": "negative"}))
    .await;
    assert_eq!(fields(&r), ["value.amount_minor"]);
    let unknown = "01900000-0000-7000-8000-000000000000";
    let r = post(
        json!({"value": {"kind": "percent", "percent": "10"}, "service_id": unknown,
                        "starts_on": "2026-03-01", "description": "x"}),
    )
    .await;
    assert_eq!(fields(&r), ["service_id"]);
    let r = t
        .call(
            "POST",
            &path,
            Some(Role::Support),
            Some(json!({"value": {"kind": "percent", "percent": "10"},
                        "starts_on": "2026-03-01", "description": "x"})),
        )
        .await;
    assert_problem(&r, 403, "forbidden");

    let d = post(json!({"value": {"kind": "percent", "percent": "10"},
                        "starts_on": "2026-03-01", "description": "Loyalty"}))
    .await;
    assert_eq!(d.status, StatusCode::CREATED, "{:?}", d.body);
    assert_eq!(d.body["value"], json!({"kind": "percent", "percent": "10"}));
    assert!(d.body["ends_on"].is_null());
    assert!(d.body["service_id"].is_null());
    let discount = id_of(&d.body);
    let list = t.call("GET", &path, Some(Role::Readonly), None).await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body.as_array().unwrap().len(), 1);

    // March: 6000 − 10 %.
    bill_over_http(&t, "2026-03-15", None).await;
    let march = live_invoice(&t, &sub, "2026-03-01").await;
    let disc: Vec<&Value> = march["lines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["charge_kind"] == "discount")
        .collect();
    assert_eq!(disc.len(), 1, "{march:#}");
    assert_eq!(disc[0]["amount_minor"], -600);
    assert_eq!(disc[0]["correction"], false);
    assert_eq!(disc[0]["service_id"], svc.as_str());
    let mut a = amounts(&march);
    a.sort();
    assert_eq!(a, [-600, 6000]);
    assert_eq!(march["total_minor"], 5400);

    // April, too.
    set_clock(&t, "2026-04-02T09:00:00Z");
    bill_over_http(&t, "2026-04-02", None).await;
    let april = live_invoice(&t, &sub, "2026-04-01").await;
    let mut a = amounts(&april);
    a.sort();
    assert_eq!(a, [-600, 6000]);
    assert_eq!(april["total_minor"], 5400);

    // Ended (back-dated) from April 16: April 16..30 was over-discounted by 6000 × 10 % ×
    // 15/30 = 300, added back on May's invoice, which has no discount of its own.
    set_clock(&t, "2026-04-20T09:00:00Z");
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/discounts/{discount}/end"),
            Some(json!({"ends_on": "2026-03-01"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["ends_on"]);
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/discounts/{unknown}/end"),
            Some(json!({"ends_on": "2026-04-16"})),
        )
        .await;
    assert_problem(&r, 404, "not-found");
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/discounts/{discount}/end"),
            Some(json!({"ends_on": "2026-04-16"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["ends_on"], "2026-04-16");
    let list = t.admin("GET", &path, None).await;
    assert_eq!(list.body[0]["ends_on"], "2026-04-16");

    set_clock(&t, "2026-05-01T09:00:00Z");
    bill_over_http(&t, "2026-05-01", None).await;
    let may = live_invoice(&t, &sub, "2026-05-01").await;
    let lines = may["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{may:#}");
    let fix = lines
        .iter()
        .find(|l| l["charge_kind"] == "discount")
        .expect("a discount correction line");
    assert_eq!(fix["amount_minor"], 300);
    assert_eq!(fix["correction"], true);
    assert_eq!(fix["charge_period_start"], "2026-04-01");
    let rec = lines
        .iter()
        .find(|l| l["charge_kind"] == "recurring")
        .unwrap();
    assert_eq!(rec["amount_minor"], 6000);
    assert_eq!(rec["charge_period_start"], "2026-05-01");
    assert_eq!(may["total_minor"], 6300);
    // Earlier invoices are untouched.
    assert_eq!(
        live_invoice(&t, &sub, "2026-04-01").await["total_minor"],
        5400
    );
    assert_eq!(money(&checked_ledger(&t, &sub).await).0, 5400 + 5400 + 6300);
}

// 5. The invoice document -----------------------------------------------------------------

async fn invoice_html_is_escaped_and_complete(t: TestApp) {
    let (sub, number) = subscriber_with(&t, "<b>Tom & Jerry</b>", json!({})).await;
    let plan = t.plan("HTML-60", 6000).await;
    active_service(&t, &sub, &plan, "tom").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv = live_invoice(&t, &sub, "2026-03-01").await;
    let id = id_of(&inv);
    let r = get_html(&t, &id, Role::Support).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type.starts_with("text/html"),
        "{}",
        r.content_type
    );
    let html = r.body.as_str().expect("an HTML document, not JSON");
    assert!(html.to_lowercase().starts_with("<!doctype html"), "{html}");
    assert!(html.contains("INV-000001"), "{html}");
    assert!(html.contains("Lastmile ISP"), "{html}");
    assert!(html.contains(&number), "{html}");
    assert!(
        html.contains("&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"),
        "the subscriber's name, escaped: {html}"
    );
    assert!(!html.contains("<b>Tom"), "raw markup leaked: {html}");
    assert!(
        !html.contains("Tom & Jerry"),
        "raw ampersand leaked: {html}"
    );
    assert!(html.contains("60.00"), "{html}");
    assert!(html.contains("2026-03-29"), "due date: {html}");
    assert!(!html.contains("<script"), "{html}");

    // Without asking for HTML it is JSON; noc may not read it either way.
    let r = t
        .admin("GET", &format!("/api/v1/invoices/{id}"), None)
        .await;
    assert_eq!(r.content_type, "application/json");
    assert_eq!(r.body["number"], "INV-000001");
    let r = get_html(&t, &id, Role::Noc).await;
    assert_problem(&r, 403, "forbidden");
}

async fn get_html(t: &TestApp, id: &str, role: Role) -> Resp {
    let headers = vec![
        (
            "authorization".to_string(),
            format!("Bearer {}", t.tokens[&role]),
        ),
        (
            "accept".to_string(),
            "text/html,application/xhtml+xml;q=0.9".to_string(),
        ),
    ];
    t.raw("GET", &format!("/api/v1/invoices/{id}"), &headers, None)
        .await
}

// 6. Void and re-bill ---------------------------------------------------------------------

async fn voided_invoice_is_reversed_and_billed_again(t: TestApp) {
    let (sub, _) = subscriber_with(&t, "Vic Void", json!({})).await;
    let plan = t.plan("VOID-60", 6000).await;
    active_service(&t, &sub, &plan, "vic").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let first = live_invoice(&t, &sub, "2026-03-01").await;
    assert_eq!(first["status"], "issued");
    let first = id_of(&first);
    assert_eq!(money(&checked_ledger(&t, &sub).await), (6000, 6000, 0));

    let void_path = format!("/api/v1/invoices/{first}/void");
    let void = |body: Value, role: Role| t.call("POST", &void_path, Some(role), Some(body));
    let r = void(json!({"reason": ""}), Role::Billing).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["reason"]);
    let r = void(json!({}), Role::Billing).await;
    assert_eq!(fields(&r), ["reason"]);
    let r = void(json!({"reason": "x"}), Role::Support).await;
    assert_problem(&r, 403, "forbidden");
    assert_eq!(status_of(&t, &first).await, "issued");

    t.clock.advance(jiff::SignedDuration::from_hours(2));
    let r = void(json!({"reason": "billed the wrong plan"}), Role::Billing).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "void");
    assert_eq!(r.body["void_reason"], "billed the wrong plan");
    assert_eq!(r.body["voided_at"], "2026-03-15T14:00:00Z");
    assert_eq!(
        r.body["number"], "INV-000001",
        "a void invoice keeps its number"
    );
    let r = void(json!({"reason": "again"}), Role::Billing).await;
    assert_problem(&r, 409, "invalid-state");
    assert_eq!(r.body["current_state"], "void");

    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (0, 0, 0));
    let entries = l["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["kind"], "invoice");
    assert_eq!(entries[0]["amount_minor"], 6000);
    assert_eq!(entries[1]["kind"], "invoice_void");
    assert_eq!(entries[1]["amount_minor"], -6000);
    assert_eq!(entries[1]["document_id"], first.as_str());
    assert_eq!(entries[1]["at"], "2026-03-15T14:00:00Z");
    assert_eq!(entries[1]["balance_minor"], 0);

    // The period is billed again by the next run for the same date.
    let run = bill_over_http(&t, "2026-03-15", None).await;
    assert_eq!(run["invoices_created"], 1);
    let all = invoices_of(&t, &sub).await;
    assert_eq!(all.len(), 2);
    let second = live_invoice(&t, &sub, "2026-03-01").await;
    assert_ne!(id_of(&second), first);
    assert_eq!(second["status"], "issued");
    assert_eq!(second["number"], "INV-000002");
    assert_eq!(second["period_end"], "2026-04-01");
    assert_eq!(second["total_minor"], 6000);
    assert_eq!(amounts(&second), [6000]);
    let voided = list_items(
        &t,
        &format!("/api/v1/invoices?subscriber_id={sub}&status=void"),
    )
    .await;
    assert_eq!(voided.len(), 1);
    assert_eq!(voided[0]["id"], first.as_str());
    let l = checked_ledger(&t, &sub).await;
    assert_eq!(money(&l), (6000, 6000, 0));
    assert_eq!(l["entries"].as_array().unwrap().len(), 3);
    // Once more: nothing new.
    let run = bill_over_http(&t, "2026-03-15", None).await;
    assert_eq!(run["invoices_created"], 0);
    assert_eq!(invoices_of(&t, &sub).await.len(), 2);
}

// 7. Bank-statement import ----------------------------------------------------------------

async fn import(t: &TestApp, csv: &str) -> Value {
    let r = t
        .raw(
            "POST",
            "/api/v1/payments/import",
            &[
                (
                    "authorization".into(),
                    format!("Bearer {}", t.tokens[&Role::Billing]),
                ),
                ("content-type".into(), "text/csv; charset=utf-8".into()),
            ],
            Some(csv.as_bytes().to_vec()),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    r.body
}

fn outcomes(r: &Value) -> Vec<(u64, String)> {
    r["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            (
                row["line"].as_u64().unwrap(),
                row["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn counts(r: &Value) -> [u64; 4] {
    [
        r["matched"].as_u64().unwrap(),
        r["unmatched"].as_u64().unwrap(),
        r["duplicate"].as_u64().unwrap(),
        r["invalid"].as_u64().unwrap(),
    ]
}

async fn bank_statement_import_matches_and_never_records_twice(t: TestApp) {
    let (a, a_num) = subscriber_with(&t, "Anna Import", json!({})).await;
    let (b, b_num) = subscriber_with(&t, "Bert Import", json!({})).await;
    let plan = t.plan("IMP-60", 6000).await;
    active_service(&t, &a, &plan, "anna").await;
    active_service(&t, &b, &plan, "bert").await;
    bill_over_http(&t, "2026-03-15", None).await;
    set_clock(&t, "2026-04-01T09:00:00Z");
    bill_over_http(&t, "2026-04-01", None).await;
    let a_mar = live_invoice(&t, &a, "2026-03-01").await;
    let a_apr = live_invoice(&t, &a, "2026-04-01").await;
    let b_mar = live_invoice(&t, &b, "2026-03-01").await;
    let b_apr = live_invoice(&t, &b, "2026-04-01").await;
    let a_apr_no = a_apr["number"].as_str().unwrap().to_string();
    let b_mar_no = b_mar["number"].as_str().unwrap().to_string();
    let (a_mar, a_apr, b_mar, b_apr) = (id_of(&a_mar), id_of(&a_apr), id_of(&b_mar), id_of(&b_apr));
    set_clock(&t, "2026-04-05T09:00:00Z");

    let a_apr_lower = a_apr_no.to_lowercase();
    let csv = format!(
        "date,amount,reference,transaction_id,subscriber_number\n\
         2026-04-02,60.00,Payment {a_apr_lower} thanks,,\n\
         2026-04-02,30.00,monthly fee,,{b_num}\n\
         2026-04-02,10.00,no idea who this is,,\n\
         2026-04-02,abc,{a_num},,\n\
         2026-04-02,-5.00,chargeback {b_num},,\n\
         2026-04-03,12.50,cash deposit {b_num},,\n\
         2026-04-03,12.50,cash deposit {b_num},,\n\
         2026-04-03,7.00,transfer,TX-42,{a_num}\n"
    );
    let r = import(&t, &csv).await;
    assert_eq!(
        outcomes(&r),
        [
            (2, "matched".into()),
            (3, "matched".into()),
            (4, "unmatched".into()),
            (5, "invalid".into()),
            (6, "invalid".into()),
            (7, "matched".into()),
            (8, "matched".into()),
            (9, "matched".into()),
        ]
    );
    assert_eq!(counts(&r), [5, 1, 0, 2]);
    let rows = r["rows"].as_array().unwrap().clone();
    assert_eq!(rows[0]["subscriber_id"], a.as_str());
    assert_eq!(rows[0]["amount_minor"], 6000);
    assert_eq!(rows[1]["subscriber_id"], b.as_str());
    assert_eq!(rows[1]["amount_minor"], 3000);
    assert_eq!(rows[2]["field"], "reference");
    assert!(rows[2]["payment_id"].is_null());
    assert_eq!(rows[3]["field"], "amount");
    assert!(rows[3]["payment_id"].is_null());
    assert_eq!(rows[4]["field"], "amount");
    assert!(rows[4]["payment_id"].is_null());
    assert_eq!(rows[5]["amount_minor"], 1250);
    assert_eq!(rows[6]["amount_minor"], 1250);
    assert_ne!(
        rows[5]["payment_id"], rows[6]["payment_id"],
        "two identical rows are two payments"
    );
    assert_eq!(rows[7]["subscriber_id"], a.as_str());
    assert_eq!(rows[7]["amount_minor"], 700);
    for i in [0, 1, 5, 6, 7] {
        assert!(rows[i]["payment_id"].is_string(), "{:?}", rows[i]);
    }

    // The row naming A's April invoice paid that one, not the older March one.
    assert_eq!(status_of(&t, &a_apr).await, "paid");
    assert_eq!(status_of(&t, &a_mar).await, "issued");
    assert_eq!(status_of(&t, &b_mar).await, "issued");
    assert_eq!(status_of(&t, &b_apr).await, "issued");
    let p = t
        .admin(
            "GET",
            &format!(
                "/api/v1/payments/{}",
                rows[0]["payment_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(p.body["received_at"], "2026-04-02T00:00:00Z");
    assert_eq!(p.body["method"], "bank_transfer");
    assert_eq!(p.body["unallocated_minor"], 0);
    assert!(p.body["external_id"].as_str().unwrap().starts_with("csv:"));
    let p = t
        .admin(
            "GET",
            &format!(
                "/api/v1/payments/{}",
                rows[7]["payment_id"].as_str().unwrap()
            ),
            None,
        )
        .await;
    assert_eq!(p.body["external_id"], "bank:TX-42");
    let la = checked_ledger(&t, &a).await;
    assert_eq!(money(&la), (12000 - 6700, 5300, 0));
    let lb = checked_ledger(&t, &b).await;
    assert_eq!(money(&lb), (12000 - 5500, 6500, 0));
    assert_eq!(payments_of(&t, &a).await.len(), 2);
    assert_eq!(payments_of(&t, &b).await.len(), 3);

    // The same file again: every row matched before is a duplicate of that payment.
    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let again = import(&t, &csv).await;
    assert_eq!(counts(&again), [0, 1, 4 + 1, 2]);
    let again_rows = again["rows"].as_array().unwrap();
    for i in [0, 1, 5, 6, 7] {
        assert_eq!(again_rows[i]["outcome"], "duplicate");
        assert_eq!(again_rows[i]["payment_id"], rows[i]["payment_id"]);
        assert_eq!(again_rows[i]["amount_minor"], rows[i]["amount_minor"]);
    }
    assert_eq!(again_rows[2]["outcome"], "unmatched");
    assert_eq!(again_rows[3]["outcome"], "invalid");
    assert_eq!(again_rows[4]["outcome"], "invalid");
    assert_eq!(money(&checked_ledger(&t, &a).await), money(&la));
    assert_eq!(money(&checked_ledger(&t, &b).await), money(&lb));
    assert_eq!(payments_of(&t, &a).await.len(), 2);
    assert_eq!(payments_of(&t, &b).await.len(), 3);

    // A European export: semicolons, DD.MM.YYYY, decimal commas and thousands points.
    let csv = format!(
        "Value Date;Amount;Purpose;Name\n\
         03.04.2026;5,00;Rechnung {b_mar_no};Bert\n\
         04.04.2026;1.234,56;Kunde {a_num};Anna\n"
    );
    let r = import(&t, &csv).await;
    assert_eq!(counts(&r), [2, 0, 0, 0], "{r:#}");
    assert_eq!(r["rows"][0]["amount_minor"], 500);
    assert_eq!(r["rows"][0]["subscriber_id"], b.as_str());
    assert_eq!(r["rows"][1]["amount_minor"], 123456);
    assert_eq!(r["rows"][1]["subscriber_id"], a.as_str());
    assert_eq!(status_of(&t, &b_mar).await, "paid");
    assert_eq!(status_of(&t, &b_apr).await, "issued");
    assert_eq!(status_of(&t, &a_mar).await, "paid");
    assert_eq!(
        money(&checked_ledger(&t, &a).await),
        (12000 - 6700 - 123456, 0, 123456 + 6700 - 12000)
    );
    assert_eq!(money(&checked_ledger(&t, &b).await), (6000, 6000, 0));
    let again = import(&t, &csv).await;
    assert_eq!(counts(&again), [0, 0, 2, 0]);

    // A file that cannot be read at all, and callers who may not import.
    let bad = t
        .raw(
            "POST",
            "/api/v1/payments/import",
            &[
                (
                    "authorization".into(),
                    format!("Bearer {}", t.tokens[&Role::Admin]),
                ),
                ("content-type".into(), "text/csv".into()),
            ],
            Some(b"when,how much\n2026-04-01,5\n".to_vec()),
        )
        .await;
    assert_problem(&bad, 422, "validation");
    assert_eq!(fields(&bad), ["file"]);
    let r = t
        .raw(
            "POST",
            "/api/v1/payments/import",
            &[
                (
                    "authorization".into(),
                    format!("Bearer {}", t.tokens[&Role::Support]),
                ),
                ("content-type".into(), "text/csv".into()),
            ],
            Some(csv.as_bytes().to_vec()),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
}

/// Two imports of one file at the same time (an operator double-clicking): every row is
/// recorded once, and the import that lost the race reports it as a duplicate.
async fn concurrent_imports_of_one_file_record_each_row_once(t: TestApp) {
    let (sub, num) = subscriber_with(&t, "Rita Race", json!({})).await;
    let plan = t.plan("RACE-60", 6000).await;
    active_service(&t, &sub, &plan, "rita").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let mut csv = String::from("date,amount,reference\n");
    for i in 1..=20 {
        csv.push_str(&format!("2026-03-1{},{i}.00,payment {i} {num}\n", i % 5));
    }
    let (x, y) = tokio::join!(import(&t, &csv), import(&t, &csv));
    // Nothing was recorded twice.
    assert_eq!(payments_of(&t, &sub).await.len(), 20);
    // 1 + 2 + … + 20 = 210.00
    assert_eq!(
        money(&checked_ledger(&t, &sub).await),
        (6000 - 21000, 0, 15000)
    );
    // Every row has exactly one payment, and both results name it.
    for (i, (rx, ry)) in x["rows"]
        .as_array()
        .unwrap()
        .iter()
        .zip(y["rows"].as_array().unwrap())
        .enumerate()
    {
        let mut pair = [
            rx["outcome"].as_str().unwrap(),
            ry["outcome"].as_str().unwrap(),
        ];
        pair.sort();
        assert_eq!(pair, ["duplicate", "matched"], "row {i}: {rx:?} / {ry:?}");
        assert_eq!(
            rx["payment_id"], ry["payment_id"],
            "row {i}: {rx:?} / {ry:?}"
        );
    }
    assert_eq!(
        x["matched"].as_u64().unwrap() + y["matched"].as_u64().unwrap(),
        20
    );
    assert_eq!(
        x["duplicate"].as_u64().unwrap() + y["duplicate"].as_u64().unwrap(),
        20
    );
}

/// Many payments for one account at once: each is recorded once and allocated once.
async fn concurrent_payments_on_one_account_all_count(t: TestApp) {
    let (sub, _) = subscriber_with(&t, "Busy Bo", json!({})).await;
    let plan = t.plan("BUSY-60", 6000).await;
    active_service(&t, &sub, &plan, "bo").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv = id_of(&live_invoice(&t, &sub, "2026-03-01").await);
    let one = |i: i64| {
        let t = &t;
        let sub = sub.clone();
        async move {
            t.call(
                "POST",
                "/api/v1/payments",
                Some(Role::Billing),
                Some(
                    json!({"subscriber_id": sub, "amount_minor": 1000, "method": "card",
                            "external_id": format!("CARD-{i}")}),
                ),
            )
            .await
        }
    };
    let results = futures_join_all((0..8).map(one).collect()).await;
    for r in &results {
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let allocated: i64 = results
        .iter()
        .flat_map(|r| r.body["allocations"].as_array().unwrap().clone())
        .map(|a| a["amount_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(allocated, 6000, "the invoice is paid exactly once");
    let unallocated: i64 = results
        .iter()
        .map(|r| r.body["unallocated_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(unallocated, 2000);
    assert_eq!(payments_of(&t, &sub).await.len(), 8);
    assert_eq!(status_of(&t, &inv).await, "paid");
    assert_eq!(money(&checked_ledger(&t, &sub).await), (-2000, 0, 2000));
}

/// Polls all futures concurrently on this task (no extra dependency).
async fn futures_join_all<F: std::future::Future>(futs: Vec<F>) -> Vec<F::Output> {
    let mut futs: Vec<std::pin::Pin<Box<F>>> = futs.into_iter().map(Box::pin).collect();
    let mut out: Vec<Option<F::Output>> = futs.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, o) in futs.iter_mut().zip(out.iter_mut()) {
            if o.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *o = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    out.into_iter().map(Option::unwrap).collect()
}

// 8. A run for one subscriber -------------------------------------------------------------

async fn billing_run_for_one_subscriber(t: TestApp) {
    let (one, _) = subscriber_with(&t, "Olga Only", json!({})).await;
    let (other, _) = subscriber_with(&t, "Otto Other", json!({})).await;
    let plan = t.plan("ONE-60", 6000).await;
    active_service(&t, &one, &plan, "olga").await;
    active_service(&t, &other, &plan, "otto").await;

    let r = t
        .call(
            "POST",
            "/api/v1/billing-runs",
            Some(Role::Billing),
            Some(json!({"as_of": "2026-03-15", "subscriber_id": one})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["subscriber_id"], one.as_str());
    let run = wait_for_run(&t, r.body["id"].as_str().unwrap()).await;
    assert_eq!(run["subscriber_id"], one.as_str());
    assert_eq!(run["invoices_created"], 1);
    assert_eq!(run["subscribers_processed"], 1);
    let invs = invoices_of(&t, &one).await;
    assert_eq!(invs.len(), 1);
    assert_eq!(invs[0]["billing_run_id"], run["id"]);
    assert!(invoices_of(&t, &other).await.is_empty());

    // Again for the same subscriber: nothing new.
    let again = bill_over_http(&t, "2026-03-15", Some(&one)).await;
    assert_ne!(again["id"], run["id"]);
    assert_eq!(again["invoices_created"], 0);

    // A full run bills the others.
    let full = bill_over_http(&t, "2026-03-15", None).await;
    assert!(full["subscriber_id"].is_null());
    assert_eq!(full["invoices_created"], 1);
    assert_eq!(full["subscribers_processed"], 2);
    assert_eq!(invoices_of(&t, &one).await.len(), 1);
    assert_eq!(invoices_of(&t, &other).await.len(), 1);

    let runs = list_items(&t, "/api/v1/billing-runs?limit=100").await;
    assert_eq!(runs.len(), 3);
    let scoped = runs
        .iter()
        .filter(|r| r["subscriber_id"] == one.as_str())
        .count();
    assert_eq!(scoped, 2);

    // An unknown subscriber is a field of the body at fault, like everywhere else.
    let unknown = "01900000-0000-7000-8000-000000000000";
    let r = t
        .admin(
            "POST",
            "/api/v1/billing-runs",
            Some(json!({"as_of": "2026-03-15", "subscriber_id": unknown})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["subscriber_id"]);
    let r = t
        .admin(
            "POST",
            "/api/v1/billing-runs",
            Some(json!({"as_of": "2026-03-15", "subscriber_id": "nope"})),
        )
        .await;
    assert_eq!(fields(&r), ["subscriber_id"]);
}

// Issue 8: bounds, references, zero and negative invoices -----------------------------------

/// Every money amount is bounded at input (|amount| ≤ 10^12 minor units) with a 422 naming
/// the field; the sums of what is accepted never wrap. Before: two payments of i64::MAX were
/// accepted and the ledger showed balance 2, credit −2.
async fn money_amounts_are_bounded_at_input(t: TestApp) {
    const MAX: i64 = lastmile_domain::billing::money::MAX_AMOUNT_MINOR;
    let (a, a_num) = subscriber_with(&t, "Bound Bo", json!({})).await;
    let plan = t.plan("BOUND-60", 6000).await;
    active_service(&t, &a, &plan, "bound-bo").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let inv = id_of(&live_invoice(&t, &a, "2026-03-01").await);
    let post = |path: &str, body: Value| {
        let path = path.to_string();
        let t = &t;
        async move { t.admin("POST", &path, Some(body)).await }
    };
    for amount in [i64::MAX, MAX + 1, -i64::MAX] {
        let r = post(
            "/api/v1/payments",
            json!({"subscriber_id": a, "amount_minor": amount, "method": "cash"}),
        )
        .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["amount_minor"], "{amount}");
    }
    let r = post(
        "/api/v1/payments",
        json!({"subscriber_id": a, "amount_minor": 1000, "method": "cash",
               "allocations": [{"invoice_id": inv, "amount_minor": i64::MAX}]}),
    )
    .await;
    assert_problem(&r, 422, "validation");
    assert!(
        fields(&r).contains(&"allocations[0].amount_minor".to_string()),
        "{:?}",
        r.body
    );
    let r = post(
        &format!("/api/v1/subscribers/{a}/refunds"),
        json!({"amount_minor": i64::MAX, "method": "cash", "reason": "x"}),
    )
    .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);
    let r = post(
        "/api/v1/credit-notes",
        json!({"invoice_id": inv, "amount_minor": i64::MAX, "reason": "x"}),
    )
    .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["amount_minor"]);
    let r = post(
        &format!("/api/v1/subscribers/{a}/discounts"),
        json!({"value": {"kind": "fixed", "amount_minor": MAX + 1},
               "starts_on": "2026-04-01", "description": "Too kind"}),
    )
    .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["value.amount_minor"]);
    // The bound itself is accepted, twice: the ledger adds up exactly.
    for _ in 0..2 {
        pay(
            &t,
            json!({"subscriber_id": a, "amount_minor": MAX, "method": "cash"}),
        )
        .await;
    }
    let l = checked_ledger(&t, &a).await;
    assert_eq!(money(&l), (6000 - 2 * MAX, 0, 2 * MAX - 6000));
    // A bank statement row beyond the bound is an invalid row naming the amount.
    let r = import(
        &t,
        &format!(
            "date,amount,reference\n2026-03-20,92233720368547758.00,{a_num}\n\
             2026-03-20,10000000000.01,{a_num}\n2026-03-20,10000000000.00,{a_num}\n"
        ),
    )
    .await;
    assert_eq!(
        outcomes(&r),
        [
            (2, "invalid".to_string()),
            (3, "invalid".to_string()),
            (4, "matched".to_string())
        ]
    );
    for row in &r["rows"].as_array().unwrap()[..2] {
        assert_eq!(row["field"], "amount", "{row:?}");
        assert!(
            row["message"].as_str().unwrap().contains("at most"),
            "{row:?}"
        );
    }
    assert_eq!(payments_of(&t, &a).await.len(), 3);
}

/// `POST /payments` with a reference naming an invoice of the payment's subscriber pays that
/// invoice first (the same matcher as the bank import); a reference naming no invoice of the
/// subscriber is only a reference.
async fn a_payment_reference_naming_an_invoice_pays_it_first(t: TestApp) {
    let (a, _) = subscriber_with(&t, "Ref Rita", json!({})).await;
    let (b, _) = subscriber_with(&t, "Ref Ben", json!({})).await;
    let plan = t.plan("REF-60", 6000).await;
    active_service(&t, &a, &plan, "ref-rita").await;
    active_service(&t, &b, &plan, "ref-ben").await;
    bill_over_http(&t, "2026-03-15", None).await;
    set_clock(&t, "2026-04-01T09:00:00Z");
    bill_over_http(&t, "2026-04-01", None).await;
    let a_mar = id_of(&live_invoice(&t, &a, "2026-03-01").await);
    let a_apr = live_invoice(&t, &a, "2026-04-01").await;
    let a_apr_no = a_apr["number"].as_str().unwrap().to_string();
    let a_apr = id_of(&a_apr);
    let b_mar = live_invoice(&t, &b, "2026-03-01").await;
    let b_mar_no = b_mar["number"].as_str().unwrap().to_string();
    let b_apr = id_of(&live_invoice(&t, &b, "2026-04-01").await);
    let b_mar = id_of(&b_mar);

    // The README's example: the reference names the invoice paid, then the oldest.
    let p = pay(
        &t,
        json!({"subscriber_id": a, "amount_minor": 7000, "method": "bank_transfer",
               "reference": a_apr_no}),
    )
    .await;
    assert_eq!(
        allocations(&p),
        [(a_apr.clone(), 6000), (a_mar.clone(), 1000)]
    );
    assert_eq!(status_of(&t, &a_apr).await, "paid");
    assert_eq!(status_of(&t, &a_mar).await, "issued");
    // Written as people write it in a transfer, lower case inside other text.
    let r = pay(
        &t,
        json!({"subscriber_id": a, "amount_minor": 100, "method": "bank_transfer",
               "reference": format!("thanks for {}", a_apr_no.to_lowercase())}),
    )
    .await;
    assert_eq!(
        allocations(&r),
        [(a_mar.clone(), 100)],
        "paid, so oldest first"
    );

    // Another subscriber's invoice number, or none, is only a reference: oldest first.
    let p = pay(
        &t,
        json!({"subscriber_id": b, "amount_minor": 500, "method": "bank_transfer",
               "reference": a_apr_no}),
    )
    .await;
    assert_eq!(allocations(&p), [(b_mar.clone(), 500)]);
    assert_eq!(p["reference"], json!(a_apr_no));
    assert_eq!(status_of(&t, &a_apr).await, "paid");
    let p = pay(
        &t,
        json!({"subscriber_id": b, "amount_minor": 500, "method": "bank_transfer",
               "reference": "INV-999999 June"}),
    )
    .await;
    assert_eq!(allocations(&p), [(b_mar.clone(), 500)]);
    // Explicit allocations come first, then the referenced invoice, then the oldest.
    let p = pay(
        &t,
        json!({"subscriber_id": b, "amount_minor": 6000, "method": "bank_transfer",
               "reference": b_mar_no,
               "allocations": [{"invoice_id": b_apr, "amount_minor": 1000}]}),
    )
    .await;
    assert_eq!(
        allocations(&p),
        [(b_apr.clone(), 1000), (b_mar.clone(), 5000)]
    );
    assert_eq!(status_of(&t, &b_mar).await, "paid");
    checked_ledger(&t, &a).await;
    checked_ledger(&t, &b).await;
}

/// A zero invoice is paid as it is issued (by a run or `POST /invoices/{id}/issue`); a negative
/// one is a credit: it pays other invoices or a refund like any credit, and is paid once its
/// credit is used up. Before: both stayed `issued` forever.
async fn zero_and_negative_invoices_are_settled(t: TestApp) {
    let plan = t.plan("ZERO-60", 6000).await;
    // Zero from the start: a 100 % discount.
    let (free, _) = subscriber_with(&t, "Free Fred", json!({})).await;
    active_service(&t, &free, &plan, "free-fred").await;
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/subscribers/{free}/discounts"),
            Some(json!({"value": {"kind": "percent", "percent": "100"},
                        "starts_on": "2026-03-01", "description": "Staff"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Negative later: March paid, then the service ends back-dated to March 16.
    let (gone, _) = subscriber_with(&t, "Gone Gus", json!({})).await;
    let gone_svc = active_service(&t, &gone, &plan, "gone-gus").await;
    bill_over_http(&t, "2026-03-15", None).await;
    let zero = live_invoice(&t, &free, "2026-03-01").await;
    assert_eq!(zero["total_minor"], 0);
    assert_eq!(
        zero["status"], "paid",
        "nothing to pay: settled when issued"
    );
    assert!(zero["number"].is_string());
    assert_eq!(money(&checked_ledger(&t, &free).await), (0, 0, 0));
    pay(
        &t,
        json!({"subscriber_id": gone, "amount_minor": 6000, "method": "cash"}),
    )
    .await;
    set_clock(&t, "2026-03-20T09:00:00Z");
    t.act(
        &gone_svc,
        "terminate",
        Some(json!({"effective_at": "2026-03-16T00:00:00Z"})),
    )
    .await;
    set_clock(&t, "2026-04-01T09:00:00Z");
    bill_over_http(&t, "2026-04-01", None).await;
    let neg = live_invoice(&t, &gone, "2026-04-01").await;
    let credit = -neg["total_minor"].as_i64().unwrap();
    assert!(credit > 0, "{neg:?}");
    assert_eq!(neg["status"], "issued", "its credit is not used yet");
    assert_eq!(
        money(&checked_ledger(&t, &gone).await),
        (-credit, 0, credit)
    );
    // Paid back: the credit is used up, the invoice settled.
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/subscribers/{gone}/refunds"),
            Some(json!({"amount_minor": credit, "method": "bank_transfer",
                        "reason": "service ended"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(status_of(&t, &id_of(&neg)).await, "paid");
    assert_eq!(money(&checked_ledger(&t, &gone).await), (0, 0, 0));

    // A zero draft is paid when issued.
    let (later, _) = subscriber_with(&t, "Draft Dora", json!({})).await;
    let svc = t.service(&later, &plan, "draft-dora").await;
    t.act(&svc, "activate", None).await;
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/subscribers/{later}/discounts"),
            Some(json!({"value": {"kind": "percent", "percent": "100"},
                        "starts_on": "2026-04-01", "description": "Trial"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let drafts = drafts_app(&t);
    let as_of: jiff::civil::Date = "2026-04-01".parse().unwrap();
    let run = drafts
        .start_billing_run(
            as_of,
            Some(lastmile_domain::ids::SubscriberId(later.parse().unwrap())),
        )
        .await
        .unwrap();
    drafts.execute_billing_run(run, &|_| {}).await.unwrap();
    let draft = invoices_of(&t, &later).await;
    let draft = draft
        .iter()
        .find(|i| i["status"] == "draft")
        .expect("a draft");
    assert_eq!(draft["total_minor"], 0);
    let r = t
        .call(
            "POST",
            &format!("/api/v1/invoices/{}/issue", id_of(draft)),
            Some(Role::Billing),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "paid");
    assert!(r.body["number"].is_string());
}

on_both_backends!(
    ledger_stays_consistent_over_months_of_money,
    money_validation_and_errors,
    drafts_are_numbered_when_issued_and_paid_by_waiting_credit,
    tax_zones_tax_invoice_lines,
    renaming_a_tax_zone_keeps_its_subscribers_billable,
    discounts_reduce_invoices_and_ending_them_corrects,
    invoice_html_is_escaped_and_complete,
    voided_invoice_is_reversed_and_billed_again,
    bank_statement_import_matches_and_never_records_twice,
    concurrent_imports_of_one_file_record_each_row_once,
    concurrent_payments_on_one_account_all_count,
    billing_run_for_one_subscriber,
    money_amounts_are_bounded_at_input,
    a_payment_reference_naming_an_invoice_pays_it_first,
    zero_and_negative_invoices_are_settled,
);
