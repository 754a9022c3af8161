//! Cross-cutting API behaviour: auth, errors, idempotency, OpenAPI, health, metrics, and the
//! atomicity of a business event.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_domain::auth::Role;
use serde_json::json;

async fn auth_is_required(t: TestApp) {
    let r = t.call("GET", "/api/v1/subscribers", None, None).await;
    assert_problem(&r, 401, "unauthorized");
    let headers = vec![(
        "authorization".to_string(),
        "Bearer lm_not-a-real-token".to_string(),
    )];
    let r = t.raw("GET", "/api/v1/subscribers", &headers, None).await;
    assert_problem(&r, 401, "unauthorized");
    let headers = vec![("authorization".to_string(), "Basic abc".to_string())];
    let r = t.raw("GET", "/api/v1/subscribers", &headers, None).await;
    assert_problem(&r, 401, "unauthorized");
    for role in Role::ALL {
        let r = t.call("GET", "/api/v1/subscribers", Some(role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role} may read");
    }
}

async fn health_metrics_and_openapi_need_no_token(t: TestApp) {
    let r = t.call("GET", "/healthz", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["status"], "ok");
    assert_eq!(r.body["database"], t.app.store.backend());

    t.call("GET", "/api/v1/plans", Some(Role::Admin), None)
        .await;
    let r = t.call("GET", "/metrics", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let text = r.body.as_str().unwrap();
    assert!(
        text.contains(
            r#"lastmile_http_requests_total{method="GET",route="/api/v1/plans",status="200"} 1"#
        ),
        "{text}"
    );

    let r = t.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = r.body["paths"].as_object().unwrap();
    for p in [
        "/api/v1/subscribers",
        "/api/v1/subscribers/{id}",
        "/api/v1/subscribers/{id}/close",
        "/api/v1/plans",
        "/api/v1/plans/{id}",
        "/api/v1/plans/{id}/versions",
        "/api/v1/plans/{id}/retire",
        "/api/v1/nas",
        "/api/v1/nas/{id}",
        "/api/v1/services",
        "/api/v1/services/{id}",
        "/api/v1/services/{id}/timeline",
        "/api/v1/services/{id}/activate",
        "/api/v1/services/{id}/change-plan",
        "/api/v1/services/{id}/suspend",
        "/api/v1/services/{id}/resume",
        "/api/v1/services/{id}/terminate",
        "/api/v1/provisioning-jobs",
        "/api/v1/provisioning-jobs/{id}",
        "/api/v1/provisioning-jobs/{id}/retry",
        "/api/v1/audit-events",
    ] {
        assert!(paths.contains_key(p), "OpenAPI lacks {p}");
    }
    assert!(r.body["components"]["securitySchemes"]["bearer"].is_object());
}

async fn unknown_endpoint_and_malformed_bodies(t: TestApp) {
    let r = t.admin("GET", "/api/v1/nothing-here", None).await;
    assert_problem(&r, 404, "not-found");

    // Not JSON at all.
    let headers = vec![
        (
            "authorization".to_string(),
            format!("Bearer {}", t.tokens[&Role::Admin]),
        ),
        ("content-type".to_string(), "application/json".to_string()),
    ];
    let r = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &headers,
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_problem(&r, 400, "bad-request");
    // Wrong content type.
    let headers2 = vec![
        (
            "authorization".to_string(),
            format!("Bearer {}", t.tokens[&Role::Admin]),
        ),
        ("content-type".to_string(), "text/plain".to_string()),
    ];
    let r = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &headers2,
            Some(b"{}".to_vec()),
        )
        .await;
    assert_problem(&r, 415, "unsupported-media-type");
    // Unknown field, wrong type, missing field: 422 naming the field.
    let r = t
        .admin(
            "POST",
            "/api/v1/subscribers",
            Some(json!({"name": "A", "currency": "EUR", "colour": "red"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert!(
        r.body["detail"].as_str().unwrap().contains("colour"),
        "{:?}",
        r.body
    );
    let r = t
        .admin(
            "POST",
            "/api/v1/subscribers",
            Some(json!({"name": "A", "currency": "EUR", "billing_day": "first"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["billing_day"]);
    let r = t
        .admin("POST", "/api/v1/subscribers", Some(json!({"name": "A"})))
        .await;
    assert_problem(&r, 422, "validation");
    // Bad query parameters.
    let r = t.admin("GET", "/api/v1/subscribers?limit=0", None).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["limit"]);
    let r = t.admin("GET", "/api/v1/subscribers?limit=abc", None).await;
    assert_eq!(fields(&r), ["limit"]);
    let r = t
        .admin("GET", "/api/v1/subscribers?stauts=active", None)
        .await;
    assert_problem(&r, 422, "validation");
    let r = t.admin("GET", "/api/v1/subscribers?cursor=%%%", None).await;
    assert_problem(&r, 422, "validation");
}

async fn idempotency_keys_replay_and_refuse_mismatches(t: TestApp) {
    let mk = |key: &str, token: &str| {
        vec![
            ("authorization".to_string(), format!("Bearer {token}")),
            ("content-type".to_string(), "application/json".to_string()),
            ("idempotency-key".to_string(), key.to_string()),
        ]
    };
    let admin = t.tokens[&Role::Admin].clone();
    let body = serde_json::to_vec(&json!({"name": "Ida Idem", "currency": "EUR"})).unwrap();
    let first = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &mk("k-1", &admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let again = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &mk("k-1", &admin),
            Some(body.clone()),
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body, "the first response is replayed");
    assert_eq!(again.headers["idempotent-replayed"], "true");
    let list = t
        .admin("GET", "/api/v1/subscribers?q=Ida%20Idem", None)
        .await;
    assert_eq!(
        list.body["items"].as_array().unwrap().len(),
        1,
        "created once"
    );

    let other = serde_json::to_vec(&json!({"name": "Someone Else", "currency": "EUR"})).unwrap();
    let r = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &mk("k-1", &admin),
            Some(other.clone()),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["Idempotency-Key"]);

    // Keys are per caller: another operator's same key is a different request.
    let billing = t.tokens[&Role::Billing].clone();
    let r = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &mk("k-1", &billing),
            Some(other),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Errors are replayed too (the request did nothing, and does nothing again).
    let bad = serde_json::to_vec(&json!({"name": "", "currency": "EUR"})).unwrap();
    let r1 = t
        .raw(
            "POST",
            "/api/v1/subscribers",
            &mk("k-2", &admin),
            Some(bad.clone()),
        )
        .await;
    let r2 = t
        .raw("POST", "/api/v1/subscribers", &mk("k-2", &admin), Some(bad))
        .await;
    assert_problem(&r1, 422, "validation");
    assert_eq!(r2.body, r1.body);
    assert_eq!(r2.content_type, "application/problem+json");

    // Service actions: a retried suspend does not suspend twice (which would be a 409).
    let sub = t.subscriber("Retry Rita").await;
    let plan = t.plan("RETRY-1", 1000).await;
    let svc = t.service(&sub, &plan, "rita").await;
    t.act(&svc, "activate", None).await;
    let path = format!("/api/v1/services/{svc}/suspend");
    let s1 = t.raw("POST", &path, &mk("susp-1", &admin), None).await;
    let s2 = t.raw("POST", &path, &mk("susp-1", &admin), None).await;
    assert_eq!(s1.status, StatusCode::OK);
    assert_eq!(s2.status, StatusCode::OK);
    assert_eq!(s1.body, s2.body);
    let tl = t
        .admin("GET", &format!("/api/v1/services/{svc}/timeline"), None)
        .await;
    assert_eq!(
        tl.body.as_array().unwrap().len(),
        2,
        "activated + suspended once"
    );
}

/// Rule 1: a service event writes its row, timeline event, audit event and jobs atomically.
/// A database trigger makes the last write (the provisioning job) fail; nothing may remain.
async fn a_failing_write_leaves_nothing_behind(t: TestApp) {
    let sub = t.subscriber("Atomic Anna").await;
    let plan = t.plan("ATOM-1", 1000).await;
    let svc = t.service(&sub, &plan, "anna").await;
    // Suspension writes a job (activation of a fresh service needs none).
    let r = t
        .admin("POST", &format!("/api/v1/services/{svc}/activate"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let audit_before = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?entity_id={svc}"),
            None,
        )
        .await;
    let audit_count = audit_before.body["items"].as_array().unwrap().len();

    t.exec_sql(
        "CREATE TRIGGER fail_jobs BEFORE INSERT ON provisioning_jobs
         BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        "CREATE FUNCTION fail_jobs() RETURNS trigger LANGUAGE plpgsql AS
           $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;
         CREATE TRIGGER fail_jobs BEFORE INSERT ON provisioning_jobs
           FOR EACH ROW EXECUTE FUNCTION fail_jobs();",
    )
    .await;

    let r = t
        .admin("POST", &format!("/api/v1/services/{svc}/suspend"), None)
        .await;
    assert!(r.status.is_server_error(), "{:?}", r.body);
    assert_eq!(r.content_type, "application/problem+json");

    let s = t
        .admin("GET", &format!("/api/v1/services/{svc}"), None)
        .await;
    assert_eq!(s.body["status"], "active");
    assert_eq!(s.body["revision"], 2);
    let tl = t
        .admin("GET", &format!("/api/v1/services/{svc}/timeline"), None)
        .await;
    assert_eq!(tl.body.as_array().unwrap().len(), 1, "the activation only");
    let jobs = t
        .admin(
            "GET",
            &format!("/api/v1/provisioning-jobs?service_id={svc}"),
            None,
        )
        .await;
    assert_eq!(jobs.body["items"], json!([]));
    let audit = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?entity_id={svc}"),
            None,
        )
        .await;
    assert_eq!(audit.body["items"].as_array().unwrap().len(), audit_count);
}

on_both_backends!(
    auth_is_required,
    health_metrics_and_openapi_need_no_token,
    unknown_endpoint_and_malformed_bodies,
    idempotency_keys_replay_and_refuse_mismatches,
    a_failing_write_leaves_nothing_behind,
);
