//! Strict input and honest errors: a body is exactly one JSON object, every error the server
//! sends is a problem document, search terms hold no control characters, and the role check
//! comes before anything about the request is parsed.

mod common;

use common::*;
use lastmile_domain::auth::Role;
use serde_json::json;

fn json_headers(t: &TestApp, role: Role) -> Vec<(String, String)> {
    vec![
        (
            "authorization".to_string(),
            format!("Bearer {}", t.tokens[&role]),
        ),
        ("content-type".to_string(), "application/json".to_string()),
    ]
}

async fn a_body_is_exactly_one_json_object(t: TestApp) {
    let admin = json_headers(&t, Role::Admin);
    let r = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &admin,
            Some(br#"{"name":"x","currency":"EUR"} trailing garbage ["#.to_vec()),
        )
        .await;
    assert_problem(&r, 400, "bad-request");
    let r = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &admin,
            Some(br#"{"name":"x","currency":"EUR"} {}"#.to_vec()),
        )
        .await;
    assert_problem(&r, 400, "bad-request");
    // Trailing whitespace is not data.
    let r = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &admin,
            Some(b"{\"name\":\"x\",\"currency\":\"EUR\"} \n".to_vec()),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{:?}", r.body);

    // Arrays and scalars where an object belongs: 422 on the body, and nothing happens.
    let svc = uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    for path in [
        "/api/v1/billing-runs".to_string(),
        format!("/api/v1/services/{svc}/suspend"),
        format!("/api/v1/services/{svc}/terminate"),
        "/api/v1/subscribers".to_string(),
    ] {
        for body in [&b"[null,null]"[..], b"[]", b"null", b"42", b"\"x\""] {
            let r = t.raw("POST", &path, &admin, Some(body.to_vec())).await;
            assert_problem(&r, 422, "validation");
            assert_eq!(fields(&r), ["body"], "{path}");
        }
    }
    let runs = t.admin("GET", "/api/v1/billing-runs", None).await;
    assert_eq!(runs.body["items"], json!([]));
}

async fn every_error_is_a_problem_document(t: TestApp) {
    // 405 keeps its Allow header.
    let r = t.admin("DELETE", "/api/v1/subscribers", None).await;
    assert_problem(&r, 405, "method-not-allowed");
    let allow = r.headers["allow"].to_str().unwrap();
    assert!(allow.contains("GET") && allow.contains("POST"), "{allow}");
    let r = t.admin("PUT", "/healthz", None).await;
    assert_problem(&r, 405, "method-not-allowed");

    // An over-long request target.
    let long = format!("/api/v1/subscribers?q={}", "a".repeat(20_000));
    let r = t.admin("GET", &long, None).await;
    assert_problem(&r, 414, "uri-too-long");

    // An over-large body, before and after authentication.
    let big = format!(r#"{{"name":"{}","currency":"EUR"}}"#, "a".repeat(3 << 20));
    let r = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &json_headers(&t, Role::Admin),
            Some(big.into_bytes()),
        )
        .await;
    assert_problem(&r, 413, "payload-too-large");
}

async fn search_terms_hold_no_control_characters(t: TestApp) {
    t.subscriber("Alice Example").await;
    t.subscriber("Bob Example").await;
    for q in ["%00", "a%00", "%01", "Alice%0A", "%7F"] {
        let r = t
            .admin("GET", &format!("/api/v1/subscribers?q={q}"), None)
            .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["q"], "q={q}");
    }
    let r = t.admin("GET", "/api/v1/subscribers?q=Alice", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
}

async fn the_role_is_checked_before_the_request_is_parsed(t: TestApp) {
    let readonly = json_headers(&t, Role::Readonly);
    let svc = uuid::Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0001);
    for (path, body) in [
        ("/api/v1/subscribers".to_string(), &b"{not json"[..]),
        ("/api/v1/subscribers".to_string(), b"{\"colour\":1}"),
        ("/api/v1/plans".to_string(), b"[]"),
        ("/api/v1/billing-runs".to_string(), b"{\"as_of\":\"never\"}"),
        (format!("/api/v1/services/{svc}/suspend"), b"{\"x\":1}"),
        ("/api/v1/payments".to_string(), b"{"),
    ] {
        let r = t.raw("POST", &path, &readonly, Some(body.to_vec())).await;
        assert_problem(&r, 403, "forbidden");
    }
    // A query the role may not run is refused before its parameters are read.
    let r = t
        .call("GET", "/api/v1/invoices?limit=nope", Some(Role::Noc), None)
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = t
        .call(
            "GET",
            "/api/v1/invoices?limit=nope",
            Some(Role::Billing),
            None,
        )
        .await;
    assert_problem(&r, 422, "validation");
    // Without a token it is 401 whatever the body.
    let anon = vec![("content-type".to_string(), "application/json".to_string())];
    let r = t
        .raw("POST", "/api/v1/subscribers", &anon, Some(b"[".to_vec()))
        .await;
    assert_problem(&r, 401, "unauthorized");
}

/// Free text and dates are checked on every path, not only the common ones.
async fn free_text_and_dates_are_checked_everywhere(t: TestApp) {
    let sub = t.subscriber("Text Tester").await;
    let plan = t.plan("TEXT-1", 1000).await;
    for path in [
        format!("/api/v1/subscribers/{sub}/close"),
        format!("/api/v1/plans/{plan}/retire"),
    ] {
        let r = t
            .admin("POST", &path, Some(json!({"reason": "bad\u{84}reason"})))
            .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["reason"], "{path}");
    }
    let r = t
        .admin(
            "POST",
            "/api/v1/subscribers",
            Some(json!({"name": "Nul Mail", "currency": "EUR", "email": "a\u{0}b@example.net"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["email"]);
    let r = t
        .admin(
            "PUT",
            "/api/v1/settings/billing",
            Some(json!({
                "payment_terms_days": 14, "invoice_prefix": "INV-", "credit_note_prefix": "CN-",
                "issue_invoices": true, "downgrades": "next_period",
                "issuer": {"name": "ISP", "address_lines": ["1 Way", "\u{84}"],
                           "tax_id": null, "email": null, "phone": null}})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["issuer.address_lines[1]"]);
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/subscribers/{sub}/discounts"),
            Some(json!({"value": {"kind": "percent", "percent": "10"},
                        "starts_on": "2026-03-01", "description": "ten off"})),
        )
        .await;
    assert_eq!(r.status.as_u16(), 201, "{:?}", r.body);
    let discount = r.body["id"].as_str().unwrap().to_string();
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/discounts/{discount}/end"),
            Some(json!({"ends_on": "9999-12-31"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["ends_on"]);
    let r = t
        .admin("GET", "/api/v1/invoices?period_start=20261201", None)
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["period_start"]);
}

on_both_backends!(
    free_text_and_dates_are_checked_everywhere,
    a_body_is_exactly_one_json_object,
    every_error_is_a_problem_document,
    search_terms_hold_no_control_characters,
    the_role_is_checked_before_the_request_is_parsed,
);

/// The database holds personal data: its file, WAL and shared memory are the owner's only.
#[tokio::test]
async fn the_sqlite_database_is_created_private() {
    use std::os::unix::fs::PermissionsExt;
    let (url, dir) = lastmile_testing::sqlite_url().await;
    let t = TestApp::sqlite_at(&url).await;
    t.subscriber("Private Person").await;
    let db = dir.path().join("lastmile.db");
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.clone().into_os_string();
        p.push(suffix);
        let mode = std::fs::metadata(&p)
            .unwrap_or_else(|e| panic!("{p:?}: {e}"))
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{p:?} is {:o}", mode & 0o777);
    }
}
