//! Plans: create (terms validation, duplicate codes), read and list, rename, versioning (services
//! keep the version they were sold), retiring, the role table and unknown ids.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_domain::auth::Role;
use serde_json::{json, Value};

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

fn path(id: &str) -> String {
    format!("/api/v1/plans/{id}")
}

/// Minimal valid terms at a price.
fn terms(price_minor: i64) -> Value {
    json!({"download_kbps": 100000, "upload_kbps": 20000,
           "price_minor": price_minor, "currency": "EUR"})
}

fn with(mut v: Value, extra: Value) -> Value {
    for (k, x) in extra.as_object().unwrap() {
        v[k] = x.clone();
    }
    v
}

async fn create_plan_returns_version_one(t: TestApp) {
    let r = t
        .admin(
            "POST",
            "/api/v1/plans",
            Some(json!({
                "code": "FIBER-500",
                "name": "Fiber 500",
                "terms": {
                    "download_kbps": 500000, "upload_kbps": 100000,
                    "burst": {"download_kbps": 600000, "upload_kbps": 120000,
                              "threshold_download_kbps": 400000,
                              "threshold_upload_kbps": 80000, "time_secs": 16},
                    "price_minor": 5990, "currency": "EUR",
                    "billing_interval": "quarterly",
                    "setup_fee_minor": 4900,
                    "data_cap_bytes": 500000000000i64,
                    "cap_policy": {"kind": "throttle", "download_kbps": 2000, "upload_kbps": 1000},
                    "free_window": {"start": "22:00", "end": "06:00"},
                    "contract_months": 24,
                    "early_termination_fee_minor": 9900,
                    "tax_class": "telecom"
                }
            })),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = &r.body;
    let id = b["id"].as_str().unwrap();
    assert_eq!(b["code"], "FIBER-500");
    assert_eq!(b["name"], "Fiber 500");
    assert_eq!(b["status"], "active");
    assert_eq!(b["revision"], 1);
    assert_eq!(b["created_at"], NOW);
    let v = &b["current_version"];
    assert_eq!(v["version"], 1);
    assert_eq!(v["plan_id"], id);
    assert_eq!(v["created_at"], NOW);
    assert!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).is_ok());
    assert_ne!(v["id"], b["id"]);
    assert_eq!(
        v["terms"],
        json!({
            "download_kbps": 500000, "upload_kbps": 100000,
            "burst": {"download_kbps": 600000, "upload_kbps": 120000,
                      "threshold_download_kbps": 400000,
                      "threshold_upload_kbps": 80000, "time_secs": 16},
            "price_minor": 5990, "currency": "EUR",
            "billing_interval": "quarterly",
            "setup_fee_minor": 4900,
            "data_cap_bytes": 500000000000i64,
            "cap_policy": {"kind": "throttle", "download_kbps": 2000, "upload_kbps": 1000},
            "free_window": {"start": "22:00", "end": "06:00"},
            "contract_months": 24,
            "early_termination_fee_minor": 9900,
            "tax_class": "telecom"
        })
    );

    // Minimal terms: the defaults.
    let r = t
        .admin(
            "POST",
            "/api/v1/plans",
            Some(json!({"code": " DSL-16 ", "name": "DSL 16", "terms": terms(1999)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["code"], "DSL-16", "codes are trimmed");
    assert_eq!(
        r.body["current_version"]["terms"],
        json!({
            "download_kbps": 100000, "upload_kbps": 20000, "burst": null,
            "price_minor": 1999, "currency": "EUR", "billing_interval": "monthly",
            "setup_fee_minor": 0, "data_cap_bytes": null, "cap_policy": {"kind": "none"},
            "free_window": null, "contract_months": 0, "early_termination_fee_minor": 0,
            "tax_class": "standard"
        })
    );

    // The other cap policies with a cap.
    for policy in [
        json!({"kind": "block"}),
        json!({"kind": "overage", "price_per_gb_minor": 150}),
        json!({"kind": "none"}),
    ] {
        let kind = policy["kind"].as_str().unwrap().to_uppercase();
        let r = t
            .admin(
                "POST",
                "/api/v1/plans",
                Some(json!({"code": format!("CAP-{kind}"), "name": "Capped",
                            "terms": with(terms(1000), json!({
                                "data_cap_bytes": 1000000000, "cap_policy": policy}))})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{policy}: {:?}", r.body);
        assert_eq!(r.body["current_version"]["terms"]["cap_policy"], policy);
    }

    // What was created is what is read.
    let got = t.admin("GET", &path(id), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(&got.body, b);
}

async fn create_plan_rejects_bad_input(t: TestApp) {
    let post = |body: Value| {
        let t = &t;
        async move { t.admin("POST", "/api/v1/plans", Some(body)).await }
    };

    // Cap policies that need a cap.
    for policy in [
        json!({"kind": "throttle", "download_kbps": 1000, "upload_kbps": 500}),
        json!({"kind": "block"}),
        json!({"kind": "overage", "price_per_gb_minor": 100}),
    ] {
        let r = post(json!({"code": "CAPLESS", "name": "No cap",
                            "terms": with(terms(1000), json!({"cap_policy": policy}))}))
        .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["terms.cap_policy"], "{policy}");
    }
    // A throttle that is not slower than the plan.
    let r = post(json!({"code": "FASTTHROTTLE", "name": "x",
        "terms": with(terms(1000), json!({"data_cap_bytes": 1000,
            "cap_policy": {"kind": "throttle", "download_kbps": 100000, "upload_kbps": 500}}))}))
    .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["terms.cap_policy.download_kbps"]);

    // Codes.
    for code in ["fiber", "", "FIBER 100", "FIBER+", &"X".repeat(41)] {
        let r = post(json!({"code": code, "name": "n", "terms": terms(1000)})).await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["code"], "{code:?}");
    }

    // Several faults at once, each named.
    let r = post(json!({"code": "bad", "name": " ",
        "terms": with(terms(-1), json!({"download_kbps": 0, "setup_fee_minor": -5}))}))
    .await;
    assert_problem(&r, 422, "validation");
    let mut f = fields(&r);
    f.sort();
    assert_eq!(
        f,
        [
            "code",
            "name",
            "terms.download_kbps",
            "terms.price_minor",
            "terms.setup_fee_minor"
        ]
    );
    for (extra, field) in [
        (json!({"currency": "eur"}), "terms.currency"),
        (json!({"upload_kbps": 100000001}), "terms.upload_kbps"),
        (json!({"data_cap_bytes": 0}), "terms.data_cap_bytes"),
        (
            json!({"free_window": {"start": "25:00", "end": "06:00"}}),
            "terms.free_window.start",
        ),
        (
            json!({"early_termination_fee_minor": 100}),
            "terms.early_termination_fee_minor",
        ),
        (json!({"contract_months": 121}), "terms.contract_months"),
        // Issue 8.3: amounts beyond the documented maximum (10^12 minor units); a plan at
        // i64::MAX in a 19 % exclusive zone used to bill a negative total.
        (json!({"price_minor": i64::MAX}), "terms.price_minor"),
        (
            json!({"price_minor": 1_000_000_000_001i64}),
            "terms.price_minor",
        ),
        (
            json!({"setup_fee_minor": i64::MAX}),
            "terms.setup_fee_minor",
        ),
        (
            json!({"data_cap_bytes": 1000,
                   "cap_policy": {"kind": "overage", "price_per_gb_minor": i64::MAX}}),
            "terms.cap_policy.price_per_gb_minor",
        ),
    ] {
        let r = post(json!({"code": "BAD", "name": "Bad",
                            "terms": with(terms(1000), extra.clone())}))
        .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), [field], "{extra}");
    }
    // Shape errors: missing terms, unknown policy kind.
    let r = post(json!({"code": "NOTERMS", "name": "x"})).await;
    assert_problem(&r, 422, "validation");
    let r = post(json!({"code": "ODD", "name": "x",
        "terms": with(terms(1000), json!({"data_cap_bytes": 1000,
                                          "cap_policy": {"kind": "pray"}}))}))
    .await;
    assert_problem(&r, 422, "validation");

    // Duplicate code.
    let first = t.plan("FIBER-100", 2990).await;
    let r = post(json!({"code": "FIBER-100", "name": "Another", "terms": terms(1)})).await;
    assert_problem(&r, 409, "duplicate");
    assert_eq!(fields(&r), ["code"]);

    // Nothing but the first plan exists.
    let list = t.admin("GET", "/api/v1/plans", None).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], first.as_str());
    assert_eq!(items[0]["name"], "FIBER-100");
}

async fn get_and_list_plans(t: TestApp) {
    let a = t.plan("LIST-A", 1000).await;
    let b = t.plan("LIST-B", 2000).await;
    let c = t.plan("LIST-C", 3000).await;
    let r = t.admin("POST", &format!("{}/retire", path(&b)), None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let one = t.call("GET", &path(&a), Some(Role::Readonly), None).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.body["code"], "LIST-A");
    assert_eq!(one.body["current_version"]["terms"]["price_minor"], 1000);

    let codes = |r: &Resp| -> Vec<String> {
        let mut v: Vec<String> = r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["code"].as_str().unwrap().to_string())
            .collect();
        v.sort();
        v
    };
    let all = t.admin("GET", "/api/v1/plans", None).await;
    assert_eq!(codes(&all), ["LIST-A", "LIST-B", "LIST-C"]);
    assert_eq!(all.body["next_cursor"], Value::Null);
    let listed_a = all.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == a.as_str())
        .unwrap()
        .clone();
    assert_eq!(listed_a, one.body, "list items are the full plan");
    let active = t.admin("GET", "/api/v1/plans?status=active", None).await;
    assert_eq!(codes(&active), ["LIST-A", "LIST-C"]);
    let retired = t.admin("GET", "/api/v1/plans?status=retired", None).await;
    assert_eq!(codes(&retired), ["LIST-B"]);
    assert_eq!(retired.body["items"][0]["status"], "retired");
    let r = t.admin("GET", "/api/v1/plans?status=sold", None).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["status"]);
    let r = t.admin("GET", "/api/v1/plans?code=LIST-A", None).await;
    assert_problem(&r, 422, "validation");

    // Paging: each plan once.
    let p1 = t.admin("GET", "/api/v1/plans?limit=2", None).await;
    assert_eq!(p1.body["items"].as_array().unwrap().len(), 2);
    let cursor = p1.body["next_cursor"].as_str().unwrap();
    let p2 = t
        .admin(
            "GET",
            &format!("/api/v1/plans?limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(p2.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2.body["next_cursor"], Value::Null);
    let mut ids: Vec<String> = p1.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(p2.body["items"].as_array().unwrap())
        .map(|p| p["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want = vec![a, b, c];
    want.sort();
    assert_eq!(ids, want);
}

async fn rename_does_not_version(t: TestApp) {
    let id = t.plan("RENAME-1", 1500).await;
    let before = t.admin("GET", &path(&id), None).await.body;

    t.clock.advance(jiff::SignedDuration::from_mins(10));
    let r = t
        .admin("PATCH", &path(&id), Some(json!({"name": "  Fiber Plus  "})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "Fiber Plus");
    assert_eq!(r.body["code"], "RENAME-1");
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["updated_at"], "2026-03-15T12:10:00Z");
    assert_eq!(
        r.body["current_version"], before["current_version"],
        "a new name is no new version"
    );
    assert_eq!(t.admin("GET", &path(&id), None).await.body, r.body);
    let versions = t
        .admin("GET", &format!("{}/versions", path(&id)), None)
        .await;
    assert_eq!(versions.body.as_array().unwrap().len(), 1);
    let renamed = r.body.clone();

    // The same name again: nothing happens.
    let r = t
        .admin("PATCH", &path(&id), Some(json!({"name": "Fiber Plus"})))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, renamed);

    // Bad input.
    let r = t
        .admin("PATCH", &path(&id), Some(json!({"name": "  "})))
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["name"]);
    let r = t
        .admin("PATCH", &path(&id), Some(json!({"name": "x".repeat(101)})))
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["name"]);
    let r = t.admin("PATCH", &path(&id), Some(json!({}))).await;
    assert_problem(&r, 422, "validation");
    let r = t
        .admin(
            "PATCH",
            &path(&id),
            Some(json!({"name": "X", "code": "NEW"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(t.admin("GET", &path(&id), None).await.body, renamed);

    // Audit.
    let audit = t
        .admin("GET", &format!("/api/v1/audit-events?entity_id={id}"), None)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["plan.create", "plan.update"]);
}

async fn new_version_becomes_current_and_services_keep_theirs(t: TestApp) {
    let plan = t.plan("VERS-1", 2000).await;
    let v1 = t.admin("GET", &path(&plan), None).await.body["current_version"].clone();
    let sub = t.subscriber("Vera Version").await;
    let old_svc = t.service(&sub, &plan, "vera").await;
    t.act(&old_svc, "activate", None).await;

    t.clock.advance(jiff::SignedDuration::from_hours(2));
    let new_terms = with(terms(2500), json!({"download_kbps": 200000}));
    let r = t
        .admin(
            "POST",
            &format!("{}/versions", path(&plan)),
            Some(json!({"terms": new_terms})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let v2 = r.body["current_version"].clone();
    assert_eq!(v2["version"], 2);
    assert_eq!(v2["plan_id"], plan.as_str());
    assert_ne!(v2["id"], v1["id"]);
    assert_eq!(v2["terms"]["price_minor"], 2500);
    assert_eq!(v2["terms"]["download_kbps"], 200000);
    assert_eq!(v2["created_at"], "2026-03-15T14:00:00Z");
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["code"], "VERS-1");
    assert_eq!(r.body["status"], "active");
    assert_eq!(t.admin("GET", &path(&plan), None).await.body, r.body);

    // Both versions, oldest first, unchanged.
    let versions = t
        .call(
            "GET",
            &format!("{}/versions", path(&plan)),
            Some(Role::Readonly),
            None,
        )
        .await;
    assert_eq!(versions.status, StatusCode::OK);
    assert_eq!(versions.body, json!([v1.clone(), v2.clone()]));

    // The existing service keeps version 1; a new one gets version 2.
    let s = t
        .admin("GET", &format!("/api/v1/services/{old_svc}"), None)
        .await;
    assert_eq!(s.status, StatusCode::OK);
    assert_eq!(s.body["plan_id"], plan.as_str());
    assert_eq!(s.body["plan_version_id"], v1["id"]);
    let sub2 = t.subscriber("Nina New").await;
    let new_svc = t.service(&sub2, &plan, "nina").await;
    let s = t
        .admin("GET", &format!("/api/v1/services/{new_svc}"), None)
        .await;
    assert_eq!(s.body["plan_version_id"], v2["id"]);

    // Identical terms are no new version (defaults spelled out count as identical).
    let r = t
        .admin(
            "POST",
            &format!("{}/versions", path(&plan)),
            Some(json!({"terms": with(terms(2500), json!({
                "download_kbps": 200000, "billing_interval": "monthly",
                "cap_policy": {"kind": "none"}, "tax_class": "standard"}))})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["terms"]);
    // Invalid terms.
    let r = t
        .admin(
            "POST",
            &format!("{}/versions", path(&plan)),
            Some(json!({"terms": with(terms(-100), json!({"cap_policy": {"kind": "block"}}))})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    let mut f = fields(&r);
    f.sort();
    assert_eq!(f, ["terms.cap_policy", "terms.price_minor"]);
    let r = t
        .admin(
            "POST",
            &format!("{}/versions", path(&plan)),
            Some(json!({})),
        )
        .await;
    assert_problem(&r, 422, "validation");

    // A third version.
    let r = t
        .admin(
            "POST",
            &format!("{}/versions", path(&plan)),
            Some(json!({"terms": terms(1800)})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["current_version"]["version"], 3);
    let versions = t
        .admin("GET", &format!("{}/versions", path(&plan)), None)
        .await;
    let nums: Vec<i64> = versions
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(nums, [1, 2, 3]);
    let s = t
        .admin("GET", &format!("/api/v1/services/{old_svc}"), None)
        .await;
    assert_eq!(s.body["plan_version_id"], v1["id"], "still version 1");

    let audit = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?entity_id={plan}"),
            None,
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["plan.create", "plan.version", "plan.version"]);
}

async fn retire_plan(t: TestApp) {
    let plan = t.plan("RETIRE-1", 900).await;
    let sub = t.subscriber("Rita Retire").await;
    let svc = t.service(&sub, &plan, "rita").await;
    let before = t.admin("GET", &path(&plan), None).await.body;

    let r = t
        .admin(
            "POST",
            &format!("{}/retire", path(&plan)),
            Some(json!({"reason": "replaced by FIBER"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "retired");
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["current_version"], before["current_version"]);
    let retired = r.body.clone();
    assert_eq!(t.admin("GET", &path(&plan), None).await.body, retired);

    let r = t
        .admin("POST", &format!("{}/retire", path(&plan)), None)
        .await;
    assert_problem(&r, 409, "invalid-state");
    assert_eq!(r.body["current_state"], "retired");
    let r = t
        .admin(
            "POST",
            &format!("{}/versions", path(&plan)),
            Some(json!({"terms": terms(1200)})),
        )
        .await;
    assert_problem(&r, 409, "invalid-state");
    assert_eq!(r.body["current_state"], "retired");
    assert_eq!(t.admin("GET", &path(&plan), None).await.body, retired);
    let versions = t
        .admin("GET", &format!("{}/versions", path(&plan)), None)
        .await;
    assert_eq!(versions.body.as_array().unwrap().len(), 1);

    // No new sales; the existing service keeps the plan.
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(json!({"subscriber_id": sub, "plan_id": plan,
                        "username": "rita2", "password": "s3cret!"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["plan_id"]);
    let s = t
        .admin("GET", &format!("/api/v1/services/{svc}"), None)
        .await;
    assert_eq!(s.body["plan_id"], plan.as_str());
    assert_eq!(s.body["plan_version_id"], before["current_version"]["id"]);
    t.act(&svc, "activate", None).await;

    let audit = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?entity_id={plan}"),
            None,
        )
        .await;
    let last = audit.body["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "plan.retire");
    assert_eq!(last["reason"], "replaced by FIBER");
    assert_eq!(last["before"]["status"], "active");
    assert_eq!(last["after"]["status"], "retired");
}

async fn only_admin_writes_plans(t: TestApp) {
    let plan = t.plan("ROLE-1", 1000).await;
    let before = t.admin("GET", &path(&plan), None).await.body;
    for role in [Role::Billing, Role::Support, Role::Noc, Role::Readonly] {
        let r = t
            .call(
                "POST",
                "/api/v1/plans",
                Some(role),
                Some(
                    json!({"code": format!("BY-{}", role.as_str().to_uppercase()),
                            "name": "x", "terms": terms(1)}),
                ),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
        let r = t
            .call(
                "PATCH",
                &path(&plan),
                Some(role),
                Some(json!({"name": "x"})),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
        let r = t
            .call(
                "POST",
                &format!("{}/versions", path(&plan)),
                Some(role),
                Some(json!({"terms": terms(5)})),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
        let r = t
            .call("POST", &format!("{}/retire", path(&plan)), Some(role), None)
            .await;
        assert_problem(&r, 403, "forbidden");
    }
    assert_eq!(t.admin("GET", &path(&plan), None).await.body, before);

    for role in Role::ALL {
        let r = t.call("GET", "/api/v1/plans", Some(role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role} may list");
        assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{role}");
        let r = t.call("GET", &path(&plan), Some(role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role} may read");
        assert_eq!(r.body, before);
        let r = t
            .call(
                "GET",
                &format!("{}/versions", path(&plan)),
                Some(role),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{role} may read versions");
        assert_eq!(r.body, json!([before["current_version"]]));
    }
    for (method, p) in [
        ("GET", "/api/v1/plans".to_string()),
        ("GET", path(&plan)),
        ("GET", format!("{}/versions", path(&plan))),
    ] {
        let r = t.call(method, &p, None, None).await;
        assert_problem(&r, 401, "unauthorized");
    }
}

async fn unknown_plan_ids_are_404(t: TestApp) {
    t.plan("KNOWN-1", 1000).await;
    let fresh = uuid::Uuid::now_v7().to_string();
    for id in [NIL_UUID, fresh.as_str(), "not-a-uuid", "KNOWN-1"] {
        let p = path(id);
        for (method, url, body) in [
            ("GET", p.clone(), None),
            ("PATCH", p.clone(), Some(json!({"name": "Ghost"}))),
            ("GET", format!("{p}/versions"), None),
            (
                "POST",
                format!("{p}/versions"),
                Some(json!({"terms": terms(100)})),
            ),
            ("POST", format!("{p}/retire"), None),
        ] {
            let r = t.admin(method, &url, body).await;
            assert_problem(&r, 404, "not-found");
        }
    }
    // An unknown plan in a service body is a field error, not a 404.
    let sub = t.subscriber("Nobody's plan").await;
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(json!({"subscriber_id": sub, "plan_id": NIL_UUID,
                        "username": "ghost", "password": "s3cret!"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["plan_id"]);
}

on_both_backends!(
    create_plan_returns_version_one,
    create_plan_rejects_bad_input,
    get_and_list_plans,
    rename_does_not_version,
    new_version_becomes_current_and_services_keep_theirs,
    retire_plan,
    only_admin_writes_plans,
    unknown_plan_ids_are_404,
);
