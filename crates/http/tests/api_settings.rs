//! Billing settings as data: the start-up defaults until saved, then what every run, issue,
//! credit note and invoice document uses.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_domain::auth::Role;
use serde_json::{json, Value};

fn settings(prefix: &str, terms: i64, issuer: &str) -> Value {
    json!({
        "payment_terms_days": terms,
        "invoice_prefix": prefix,
        "credit_note_prefix": "GS-",
        "issue_invoices": true,
        "downgrades": "next_period",
        "issuer": {"name": issuer, "address_lines": ["1 Fibre Way", "Town"],
                   "tax_id": "DE123456789", "email": null, "phone": null}
    })
}

async fn settings_are_data(t: TestApp) {
    // Defaults from the start-up configuration, nothing stored yet.
    let r = t.admin("GET", "/api/v1/settings/billing", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["revision"], 0);
    assert_eq!(r.body["invoice_prefix"], "INV-");
    assert_eq!(r.body["time_zone"], "UTC");

    // Bad input names every field at fault and stores nothing.
    let mut bad = settings("F V", 400, " ");
    bad["credit_note_prefix"] = json!("");
    let r = t.admin("PUT", "/api/v1/settings/billing", Some(bad)).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(
        fields(&r),
        [
            "payment_terms_days",
            "invoice_prefix",
            "credit_note_prefix",
            "issuer.name"
        ]
    );
    let r = t
        .call(
            "PUT",
            "/api/v1/settings/billing",
            Some(Role::Support),
            Some(settings("F-", 30, "Fibre Town")),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = t.admin("GET", "/api/v1/settings/billing", None).await;
    assert_eq!(r.body["revision"], 0);

    let r = t
        .call(
            "PUT",
            "/api/v1/settings/billing",
            Some(Role::Billing),
            Some(settings("F-", 30, "Fibre Town")),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["revision"], 1);
    let r = t.admin("GET", "/api/v1/settings/billing", None).await;
    assert_eq!(r.body["invoice_prefix"], "F-");
    assert_eq!(r.body["issuer"]["tax_id"], "DE123456789");
    assert_eq!(r.body["revision"], 1);

    // A run numbers and dates invoices with the stored settings.
    let sub = t.subscriber("Settings Sam").await;
    let plan = t.plan("SET-60", 6000).await;
    let svc = t.service(&sub, &plan, "sam").await;
    t.act(&svc, "activate", None).await;
    bill_over_http(&t, "2026-03-15", Some(&sub)).await;
    let r = t
        .admin(
            "GET",
            &format!("/api/v1/invoices?subscriber_id={sub}"),
            None,
        )
        .await;
    let inv = r.body["items"][0].clone();
    assert!(inv["number"].as_str().unwrap().starts_with("F-"), "{inv:?}");
    assert_eq!(inv["due_date"], "2026-04-14");
    let inv_id = inv["id"].as_str().unwrap().to_string();

    // Credit notes take their prefix from the settings too.
    let r = t
        .admin(
            "POST",
            "/api/v1/credit-notes",
            Some(json!({"invoice_id": inv_id, "amount_minor": 100, "reason": "goodwill"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert!(r.body["number"].as_str().unwrap().starts_with("GS-"));

    // The document shows the issuer from the settings.
    let r = t
        .raw(
            "GET",
            &format!("/api/v1/invoices/{inv_id}"),
            &[
                (
                    "authorization".to_string(),
                    format!("Bearer {}", t.tokens[&Role::Support]),
                ),
                ("accept".to_string(), "text/html".to_string()),
            ],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.content_type.starts_with("text/html"),
        "{}",
        r.content_type
    );
    let html = r.body.as_str().unwrap().to_string();
    assert!(html.contains("Fibre Town"));
    assert!(html.contains("DE123456789"));
    assert!(html.contains("1 Fibre Way"));
}

on_both_backends!(settings_are_data);
