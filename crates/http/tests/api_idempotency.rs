//! `Idempotency-Key` across crashes and authentication.
//!
//! The crash states are built the way a crash leaves them: the dead request's reservation is
//! taken with the store's `begin_idempotency` under the scope and request hash the middleware
//! computes (SHA-256 of the `Authorization` header; of method, path and body), and "committed
//! but the response was lost" is the request run through the router inside the
//! `IDEMPOTENT_REQUEST` scope of that reservation without its key header (so the business
//! transaction marks the key) and its response thrown away. Time moves past the lease on the
//! test clock.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::*;
use http_body_util::BodyExt;
use lastmile_domain::auth::Role;
use lastmile_store::{IdempotencyBegin, IdempotentRequest, IDEMPOTENCY_LEASE, IDEMPOTENT_REQUEST};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tower::ServiceExt;

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The middleware's scope for an `Authorization` header value ("" when there is none).
fn scope_of(authorization: &str) -> String {
    hex(Sha256::digest(authorization.as_bytes()))
}

/// The middleware's request hash.
fn request_hash(path: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update("POST");
    h.update([0]);
    h.update(path);
    h.update([0]);
    h.update(body);
    hex(h.finalize())
}

struct Raw {
    status: StatusCode,
    replayed: bool,
    content_type: String,
    bytes: Vec<u8>,
}

impl Raw {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).expect("a JSON body")
    }
}

/// POSTs `body` to `path` as admin, with `key` as the Idempotency-Key (if any); the raw
/// response.
async fn post(t: &TestApp, path: &str, key: Option<&str>, body: &[u8]) -> Raw {
    let mut req = Request::post(path)
        .header("authorization", bearer(t))
        .header("content-type", "application/json");
    if let Some(k) = key {
        req = req.header("idempotency-key", k);
    }
    let resp = t
        .router
        .clone()
        .oneshot(req.body(Body::from(body.to_vec())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true");
    let content_type = resp
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Raw {
        status,
        replayed,
        content_type,
        bytes,
    }
}

fn bearer(t: &TestApp) -> String {
    format!("Bearer {}", t.tokens[&Role::Admin])
}

/// The reservation a request that then died took for `key`; returns its owner.
async fn dead_reservation(t: &TestApp, path: &str, key: &str, body: &[u8]) -> String {
    let now = t.app.clock.now();
    match t
        .app
        .store
        .begin_idempotency(
            &scope_of(&bearer(t)),
            key,
            &request_hash(path, body),
            now,
            now + IDEMPOTENCY_LEASE,
        )
        .await
        .unwrap()
    {
        IdempotencyBegin::Reserved { owner } => owner,
        other => panic!("expected a fresh reservation, got {other:?}"),
    }
}

/// Runs the request as the owner of the reservation would have, up to its commit, and loses
/// the response (as a crash between the commit and storing the response does). Returns the
/// response that was lost.
async fn committed_then_lost(t: &TestApp, path: &str, key: &str, body: &[u8], entity: &str) -> Raw {
    let owner = dead_reservation(t, path, key, body).await;
    let current = IdempotentRequest {
        scope: scope_of(&bearer(t)),
        key: key.to_string(),
        owner,
        entity_type: Some(entity.to_string()),
    };
    let lost = IDEMPOTENT_REQUEST
        .scope(current, post(t, path, None, body))
        .await;
    assert!(
        lost.status.is_success(),
        "{}",
        String::from_utf8_lossy(&lost.bytes)
    );
    lost
}

fn past_the_lease(t: &TestApp) {
    t.clock
        .advance(IDEMPOTENCY_LEASE + jiff::SignedDuration::from_secs(1));
}

async fn subscribers_named(t: &TestApp, name: &str) -> usize {
    let q = name.replace(' ', "%20");
    list_items(t, &format!("/api/v1/subscribers?q={q}"))
        .await
        .len()
}

fn assert_in_progress(r: &Raw) {
    assert_eq!(r.status, StatusCode::CONFLICT);
    let body = r.json();
    assert_eq!(
        body["type"], "urn:lastmile:problem:idempotency-in-progress",
        "{body}"
    );
}

async fn idempotency_key_without_a_valid_token_reserves_nothing(t: TestApp) {
    let path = "/api/v1/subscribers";
    let body = serde_json::to_vec(&json!({"name": "No Token", "currency": "EUR"})).unwrap();
    let hash = request_hash(path, &body);
    for authorization in [None, Some("Bearer lm_not-a-real-token"), Some("Basic abc")] {
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("idempotency-key".to_string(), "k-unauth".to_string()),
        ];
        if let Some(a) = authorization {
            headers.push(("authorization".to_string(), a.to_string()));
        }
        for _ in 0..2 {
            let r = t.raw("POST", path, &headers, Some(body.clone())).await;
            assert_problem(&r, 401, "unauthorized");
            assert!(r.headers.get("idempotent-replayed").is_none());
        }
        // Nothing was reserved under the key: the store hands out a fresh reservation (it
        // would replay the 401, or say in progress, had the request reserved it).
        let now = t.app.clock.now();
        let b = t
            .app
            .store
            .begin_idempotency(
                &scope_of(authorization.unwrap_or("")),
                "k-unauth",
                &hash,
                now,
                now + IDEMPOTENCY_LEASE,
            )
            .await
            .unwrap();
        assert!(
            matches!(b, IdempotencyBegin::Reserved { .. }),
            "{authorization:?}: the key was reserved by an unauthenticated request: {b:?}"
        );
    }
    assert_eq!(subscribers_named(&t, "No Token").await, 0);
}

/// (a) The request reserved its key and died before its business transaction committed: a
/// retry within the lease is told it is in progress; after the lease it runs, once.
async fn crashed_before_commit_runs_once_after_the_lease(t: TestApp) {
    let path = "/api/v1/subscribers";
    let body = serde_json::to_vec(&json!({"name": "Crashed Early", "currency": "EUR"})).unwrap();
    dead_reservation(&t, path, "early", &body).await;
    assert_in_progress(&post(&t, path, Some("early"), &body).await);
    assert_eq!(subscribers_named(&t, "Crashed Early").await, 0);

    past_the_lease(&t);
    let r = post(&t, path, Some("early"), &body).await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert!(!r.replayed, "the retry ran the request");
    assert_eq!(r.json()["name"], "Crashed Early");
    assert_eq!(
        subscribers_named(&t, "Crashed Early").await,
        1,
        "created once"
    );

    // From now on it is an ordinary finished key.
    let again = post(&t, path, Some("early"), &body).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert!(again.replayed);
    assert_eq!(again.bytes, r.bytes);
    assert_eq!(subscribers_named(&t, "Crashed Early").await, 1);
}

/// (b) The business transaction committed and the process died before the response was
/// stored: a retry after the lease runs nothing and answers the route's success status and
/// body, rebuilt from what committed; every later retry gets the same bytes.
async fn crashed_after_commit_recovers_the_response(t: TestApp) {
    // A creation.
    let path = "/api/v1/subscribers";
    let body = serde_json::to_vec(&json!({"name": "Crashed Late", "currency": "EUR"})).unwrap();
    let lost = committed_then_lost(&t, path, "late", &body, "subscriber").await;
    assert_eq!(lost.status, StatusCode::CREATED);
    assert_in_progress(&post(&t, path, Some("late"), &body).await);

    past_the_lease(&t);
    let r1 = post(&t, path, Some("late"), &body).await;
    assert_eq!(
        r1.status,
        StatusCode::CREATED,
        "{}",
        String::from_utf8_lossy(&r1.bytes)
    );
    assert!(r1.replayed, "a recovered response is a replay");
    assert_eq!(r1.content_type, "application/json");
    assert_eq!(
        r1.json(),
        lost.json(),
        "the response that was lost, rebuilt"
    );
    assert_eq!(
        subscribers_named(&t, "Crashed Late").await,
        1,
        "nothing created again"
    );
    let r2 = post(&t, path, Some("late"), &body).await;
    assert_eq!(r2.status, StatusCode::CREATED);
    assert!(r2.replayed);
    assert_eq!(
        r2.bytes, r1.bytes,
        "later retries get exactly the same bytes"
    );
    assert_eq!(subscribers_named(&t, "Crashed Late").await, 1);

    // A service action: `{service, event, jobs}`.
    let sub = t.subscriber("Crash Service").await;
    let plan = t.plan("CRASH-1", 1000).await;
    let svc = t.service(&sub, &plan, "crash-svc").await;
    t.act(&svc, "activate", None).await;
    let path = format!("/api/v1/services/{svc}/suspend");
    let body = serde_json::to_vec(&json!({"reason": "abuse"})).unwrap();
    let lost = committed_then_lost(&t, &path, "susp", &body, "service").await;
    let lost = lost.json();
    assert_eq!(lost["service"]["status"], "suspended");
    assert!(!lost["jobs"].as_array().unwrap().is_empty(), "{lost}");
    past_the_lease(&t);
    let r1 = post(&t, &path, Some("susp"), &body).await;
    assert_eq!(
        r1.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&r1.bytes)
    );
    assert!(r1.replayed);
    assert_eq!(
        r1.json(),
        lost,
        "service, event and jobs as the lost response had them"
    );
    let r2 = post(&t, &path, Some("susp"), &body).await;
    assert_eq!(r2.bytes, r1.bytes);
    let timeline = list_items(&t, &format!("/api/v1/services/{svc}/timeline")).await;
    let suspensions = timeline.iter().filter(|e| e["kind"] == "suspended").count();
    assert_eq!(suspensions, 1, "suspended once: {timeline:?}");
    // Without the key, the same request now fails: the service is suspended already.
    let r = post(&t, &path, None, &body).await;
    assert_eq!(r.status, StatusCode::CONFLICT);

    // A creation whose response lists the entity's nested parts: a plan.
    let path = "/api/v1/plans";
    let body = serde_json::to_vec(&json!({"code": "CRASH-2", "name": "Crash two", "terms": {
        "download_kbps": 100000, "upload_kbps": 20000, "price_minor": 1500, "currency": "EUR"}}))
    .unwrap();
    let lost = committed_then_lost(&t, path, "plan", &body, "plan").await;
    past_the_lease(&t);
    let r = post(&t, path, Some("plan"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert!(r.replayed);
    assert_eq!(r.json(), lost.json());
    let plans = list_items(&t, "/api/v1/plans").await;
    assert_eq!(plans.iter().filter(|p| p["code"] == "CRASH-2").count(), 1);
}

/// A request that outlives its lease loses its key to the retry that took it over: it cannot
/// commit a second time.
async fn a_request_that_lost_its_key_commits_nothing(t: TestApp) {
    let path = "/api/v1/subscribers";
    let body = serde_json::to_vec(&json!({"name": "Slow Poke", "currency": "EUR"})).unwrap();
    let slow = dead_reservation(&t, path, "slow", &body).await;
    past_the_lease(&t);
    let r = post(&t, path, Some("slow"), &body).await;
    assert_eq!(r.status, StatusCode::CREATED);
    // The first request was not dead after all; it reaches its commit now.
    let current = IdempotentRequest {
        scope: scope_of(&bearer(&t)),
        key: "slow".to_string(),
        owner: slow,
        entity_type: Some("subscriber".to_string()),
    };
    let late = IDEMPOTENT_REQUEST
        .scope(current, post(&t, path, None, &body))
        .await;
    assert_eq!(
        late.status,
        StatusCode::CONFLICT,
        "{}",
        String::from_utf8_lossy(&late.bytes)
    );
    assert_eq!(subscribers_named(&t, "Slow Poke").await, 1, "created once");
    let again = post(&t, path, Some("slow"), &body).await;
    assert_eq!(again.bytes, r.bytes);
}

on_both_backends!(
    idempotency_key_without_a_valid_token_reserves_nothing,
    crashed_before_commit_runs_once_after_the_lease,
    crashed_after_commit_recovers_the_response,
    a_request_that_lost_its_key_commits_nothing,
);
