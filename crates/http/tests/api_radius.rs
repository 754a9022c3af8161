//! RADIUS through the API: services' simultaneous_use, sessions from accounting with every
//! filter, and a service's last rejects from the in-process RADIUS server.

mod common;

use axum::http::StatusCode;
use common::*;
use jiff::Timestamp;
use lastmile_domain::auth::Role;
use lastmile_domain::ids::{NasId, ServiceId, SubscriberId};
use lastmile_domain::radius::{AccountingEvent, AcctStatus, Octets};
use lastmile_radius::decide::RejectReason;
use lastmile_radius::metrics::RejectEvent;
use lastmile_radius::RadiusMetrics;
use serde_json::{json, Value};
use std::sync::Arc;

fn uuid(v: &Value) -> uuid::Uuid {
    v.as_str().unwrap().parse().unwrap()
}

async fn nas(t: &TestApp, ip: &str) -> String {
    let r = t
        .admin(
            "POST",
            "/api/v1/nas",
            Some(json!({"name": ip, "ip": ip, "secret": "radius-Secr3t", "vendor": "mikrotik"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn services_simultaneous_use(t: TestApp) {
    let sub = t.subscriber("Jo").await;
    let plan = t.plan("P-1", 1000).await;
    let id = t.service(&sub, &plan, "jo@isp").await;
    let r = t
        .admin("GET", &format!("/api/v1/services/{id}"), None)
        .await;
    assert_eq!(r.body["simultaneous_use"], 1, "default");

    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(
                json!({"subscriber_id": sub, "plan_id": plan, "username": "jo2@isp",
                        "password": "pw", "simultaneous_use": 0}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["simultaneous_use"], 0, "0 = unlimited");

    let path = format!("/api/v1/services/{id}");
    let r = t
        .admin("PATCH", &path, Some(json!({"simultaneous_use": 1000})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["simultaneous_use"], 1000);
    assert_eq!(r.body["revision"], 2);
    assert_eq!(t.admin("GET", &path, None).await.body, r.body);

    for bad in [json!(1001), json!(-1), json!("two"), json!(1.5)] {
        let r = t
            .admin("PATCH", &path, Some(json!({"simultaneous_use": bad})))
            .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["simultaneous_use"], "{bad}");
        let r = t
            .admin(
                "POST",
                "/api/v1/services",
                Some(
                    json!({"subscriber_id": sub, "plan_id": plan, "username": "jo3@isp",
                            "password": "pw", "simultaneous_use": bad}),
                ),
            )
            .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["simultaneous_use"], "{bad}");
    }
    let r = t
        .call(
            "PATCH",
            &path,
            Some(Role::Readonly),
            Some(json!({"simultaneous_use": 2})),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let audit = t
        .admin("GET", &format!("/api/v1/audit-events?entity_id={id}"), None)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["action"].as_str().unwrap())
        .collect();
    assert!(actions.contains(&"service.update"), "{actions:?}");
}

struct Svc {
    id: ServiceId,
    subscriber: SubscriberId,
    username: String,
}

fn acct(
    nas: NasId,
    svc: &Svc,
    sid: &str,
    status: AcctStatus,
    at: i64,
    ip: &str,
) -> AccountingEvent {
    AccountingEvent {
        nas_id: nas,
        status,
        acct_session_id: sid.to_string(),
        service_id: Some(svc.id),
        subscriber_id: Some(svc.subscriber),
        username: Some(svc.username.clone()),
        framed_ip: Some(ip.parse().unwrap()),
        calling_station_id: Some("AA-BB-CC-00-11-22".into()),
        nas_port_id: Some("ether1".into()),
        session_time: u32::try_from(at).ok(),
        octets: Some(Octets {
            download: 1000 * at as u64,
            upload: 100 * at as u64,
        }),
        terminate_cause: (status == AcctStatus::Stop).then_some(1),
        event_time: Timestamp::from_second(1_770_000_000 + at).unwrap(),
    }
}

async fn ids(t: &TestApp, query: &str) -> Vec<String> {
    let r = t
        .call(
            "GET",
            &format!("/api/v1/sessions{query}"),
            Some(Role::Readonly),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{query}: {:?}", r.body);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["acct_session_id"].as_str().unwrap().to_string())
        .collect()
}

async fn sessions_api(t: TestApp) {
    let n1 = nas(&t, "10.9.0.1").await;
    let n2 = nas(&t, "10.9.0.2").await;
    let plan = t.plan("P-1", 1000).await;
    let mut svcs = vec![];
    for name in ["a", "b"] {
        let sub = t.subscriber(name).await;
        let username = format!("{name}@isp");
        let id = t.service(&sub, &plan, &username).await;
        svcs.push(Svc {
            id: ServiceId(id.parse().unwrap()),
            subscriber: SubscriberId(sub.parse().unwrap()),
            username,
        });
    }
    let (n1id, n2id) = (NasId(n1.parse().unwrap()), NasId(n2.parse().unwrap()));
    let (a, b) = (&svcs[0], &svcs[1]);
    let out = t
        .app
        .store
        .record_accounting(vec![
            acct(n1id, a, "s1", AcctStatus::Start, 0, "100.64.0.1"),
            acct(n1id, a, "s1", AcctStatus::InterimUpdate, 300, "100.64.0.1"),
            acct(n1id, a, "s1", AcctStatus::Stop, 600, "100.64.0.1"),
            acct(n2id, a, "s2", AcctStatus::Start, 700, "2001:db8::1"),
            acct(n2id, b, "s3", AcctStatus::Start, 10, "100.64.0.3"),
        ])
        .await
        .unwrap();
    assert!(out.iter().all(Result::is_ok), "{out:?}");

    let mut all = ids(&t, "").await;
    all.sort();
    assert_eq!(all, ["s1", "s2", "s3"]);
    assert_eq!(ids(&t, "?active=true").await.len(), 2);
    assert_eq!(ids(&t, "?active=false").await, ["s1"]);
    let mut of_a = ids(&t, &format!("?service_id={}", a.id.0)).await;
    of_a.sort();
    assert_eq!(of_a, ["s1", "s2"]);
    assert_eq!(
        ids(&t, &format!("?subscriber_id={}", b.subscriber.0)).await,
        ["s3"]
    );
    let mut on_n2 = ids(&t, &format!("?nas_id={n2}")).await;
    on_n2.sort();
    assert_eq!(on_n2, ["s2", "s3"]);
    assert_eq!(ids(&t, "?username=b@isp").await, ["s3"]);
    assert!(ids(&t, "?username=B@isp").await.is_empty(), "exact match");
    // Any spelling of an address finds its canonical form.
    assert_eq!(ids(&t, "?framed_ip=2001:0db8:0::0001").await, ["s2"]);
    assert_eq!(ids(&t, "?framed_ip=100.64.0.1&active=false").await, ["s1"]);
    assert!(ids(&t, "?framed_ip=100.64.0.1&active=true")
        .await
        .is_empty());

    // Pagination as on every list.
    let r = t.admin("GET", "/api/v1/sessions?limit=2", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let cursor = r.body["next_cursor"].as_str().unwrap().to_string();
    let r = t
        .admin(
            "GET",
            &format!("/api/v1/sessions?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["next_cursor"], Value::Null);

    // One session in full.
    let s1 = t
        .admin("GET", "/api/v1/sessions?active=false", None)
        .await
        .body["items"][0]
        .clone();
    let id = s1["id"].as_str().unwrap();
    let got = t
        .admin("GET", &format!("/api/v1/sessions/{id}"), None)
        .await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, s1);
    assert_eq!(s1["active"], false);
    assert_eq!(s1["end_reason"], "stop");
    assert_eq!(s1["terminate_cause"], 1);
    assert_eq!(s1["session_time"], 600);
    assert_eq!(s1["download_bytes"], 600_000);
    assert_eq!(s1["upload_bytes"], 60_000);
    assert_eq!(s1["framed_ip"], "100.64.0.1");
    assert_eq!(s1["nas_id"], n1.as_str());
    assert_eq!(uuid(&s1["service_id"]), a.id.0);
    assert_eq!(uuid(&s1["subscriber_id"]), a.subscriber.0);
    assert_eq!(s1["username"], "a@isp");
    assert_eq!(s1["calling_station_id"], "AA-BB-CC-00-11-22");
    assert_eq!(s1["nas_port_id"], "ether1");
    assert_eq!(s1["started_at"], "2026-02-02T02:40:00Z");
    assert_eq!(s1["stopped_at"], "2026-02-02T02:50:00Z");
    assert!(
        s1.get("base_download").is_none(),
        "internal counters stay inside"
    );

    // Per service.
    let r = t
        .admin(
            "GET",
            &format!("/api/v1/services/{}/sessions?active=true", a.id.0),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["acct_session_id"], "s2");
    assert_eq!(items[0]["active"], true);
    assert_eq!(items[0]["end_reason"], Value::Null);

    // Bad filters name the parameter; unknown ids are 404.
    for (q, field) in [
        ("?active=maybe", "active"),
        ("?service_id=nope", "service_id"),
        ("?subscriber_id=1", "subscriber_id"),
        ("?nas_id=x", "nas_id"),
        ("?framed_ip=100.64.0.300", "framed_ip"),
        ("?limit=0", "limit"),
        ("?colour=red", "colour"),
    ] {
        let r = t.admin("GET", &format!("/api/v1/sessions{q}"), None).await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), [field], "{q}");
    }
    let fresh = uuid::Uuid::now_v7();
    for p in [
        format!("/api/v1/sessions/{fresh}"),
        "/api/v1/sessions/not-a-uuid".to_string(),
        format!("/api/v1/services/{fresh}/sessions"),
    ] {
        let r = t.admin("GET", &p, None).await;
        assert_problem(&r, 404, "not-found");
    }
    let r = t.call("GET", "/api/v1/sessions", None, None).await;
    assert_problem(&r, 401, "unauthorized");
}

async fn radius_rejects(t: TestApp) {
    let sub = t.subscriber("Jo").await;
    let plan = t.plan("P-1", 1000).await;
    let id = t.service(&sub, &plan, "jo@isp").await;
    let path = format!("/api/v1/services/{id}/radius-rejects");

    // No RADIUS server in this process: nothing known, not an error.
    let r = t.call("GET", &path, Some(Role::Readonly), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, json!([]));

    let metrics = Arc::new(RadiusMetrics::new());
    let nas_id = NasId::generate();
    for (i, reason) in [RejectReason::WrongPassword, RejectReason::SimultaneousUse]
        .into_iter()
        .enumerate()
    {
        metrics.record_reject(
            ServiceId(id.parse().unwrap()),
            RejectEvent {
                at: Timestamp::from_second(1_770_000_000 + i as i64).unwrap(),
                reason,
                nas_id,
                nas_name: "core-1".into(),
                username: Some("jo@isp".into()),
            },
        );
    }
    let mut with = t;
    with.router = lastmile_http::router(with.state.clone().with_radius(metrics));
    let r = with.call("GET", &path, Some(Role::Support), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!([
            {"at": "2026-02-02T02:40:00Z", "nas_id": nas_id.0, "nas_name": "core-1",
             "reason": "wrong_password", "username": "jo@isp"},
            {"at": "2026-02-02T02:40:01Z", "nas_id": nas_id.0, "nas_name": "core-1",
             "reason": "simultaneous_use", "username": "jo@isp"},
        ])
    );
    // The RADIUS counters join /metrics.
    let m = with.call("GET", "/metrics", None, None).await;
    assert_eq!(m.status, StatusCode::OK);
    let fresh = uuid::Uuid::now_v7();
    let r = with
        .admin(
            "GET",
            &format!("/api/v1/services/{fresh}/radius-rejects"),
            None,
        )
        .await;
    assert_problem(&r, 404, "not-found");
}

on_both_backends!(services_simultaneous_use, sessions_api, radius_rejects);
