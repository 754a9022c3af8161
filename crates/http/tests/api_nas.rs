//! NAS: create (write-only secrets, validation, unique addresses), read and list, partial update,
//! delete (refused while services use it), the role table and unknown ids.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_domain::auth::Role;
use serde_json::{json, Value};

const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";
const SECRET: &str = "radius-Secr3t";
const API_PASSWORD: &str = "api-Passw0rd";

fn path(id: &str) -> String {
    format!("/api/v1/nas/{id}")
}

fn nas_body(name: &str, ip: &str) -> Value {
    json!({"name": name, "ip": ip, "secret": SECRET, "vendor": "mikrotik"})
}

/// Creates a NAS as admin, returns its id.
async fn nas(t: &TestApp, name: &str, ip: &str) -> String {
    let r = t
        .admin("POST", "/api/v1/nas", Some(nas_body(name, ip)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// No secret in any form: neither a field nor the value anywhere in the body.
fn assert_no_secrets(body: &Value) {
    let obj = body.as_object().expect("an object");
    for key in [
        "secret",
        "secret_ciphertext",
        "api_password",
        "api_password_ciphertext",
    ] {
        assert!(!obj.contains_key(key), "`{key}` leaked: {body}");
    }
    let text = body.to_string();
    assert!(!text.contains(SECRET), "secret leaked: {text}");
    assert!(!text.contains(API_PASSWORD), "API password leaked: {text}");
}

async fn create_nas_hides_secrets(t: TestApp) {
    let r = t
        .admin(
            "POST",
            "/api/v1/nas",
            Some(
                json!({"name": "  core-1 ", "ip": " 10.0.0.1 ", "secret": SECRET,
                        "vendor": "mikrotik"}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = &r.body;
    assert_no_secrets(b);
    assert_eq!(b["name"], "core-1");
    assert_eq!(b["ip"], "10.0.0.1");
    assert_eq!(b["vendor"], "mikrotik");
    assert_eq!(b["coa_port"], 3799, "RFC 5176 default");
    assert_eq!(b["api_url"], Value::Null);
    assert_eq!(b["api_username"], Value::Null);
    assert_eq!(b["has_api_password"], false);
    assert_eq!(b["revision"], 1);
    assert_eq!(b["created_at"], NOW);
    assert_eq!(b["updated_at"], NOW);
    let mut keys: Vec<&str> = b.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "api_url",
            "api_username",
            "coa_port",
            "created_at",
            "has_api_password",
            "id",
            "interim_interval_secs",
            "ip",
            "name",
            "require_message_authenticator",
            "revision",
            "session_timeout_secs",
            "stale_session_multiplier",
            "suspended_action",
            "updated_at",
            "vendor"
        ]
    );
    // The RADIUS defaults: BlastRADIUS hardening on, interim updates every 5 minutes.
    assert_eq!(b["require_message_authenticator"], true);
    assert_eq!(b["interim_interval_secs"], 300);
    assert_eq!(b["session_timeout_secs"], Value::Null);
    assert_eq!(
        b["suspended_action"],
        json!({"kind": "reject", "reply_message": null})
    );
    assert_eq!(b["stale_session_multiplier"], 3);

    // Everything given; IPv6 in canonical form.
    let r = t
        .call(
            "POST",
            "/api/v1/nas",
            Some(Role::Noc),
            Some(
                json!({"name": "edge-6", "ip": "2001:DB8:0:0::1", "secret": SECRET,
                        "vendor": "juniper", "coa_port": 1700,
                        "api_url": "https://10.0.0.6/rest", "api_username": "lastmile",
                        "api_password": API_PASSWORD}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_no_secrets(&r.body);
    assert_eq!(r.body["ip"], "2001:db8::1");
    assert_eq!(r.body["vendor"], "juniper");
    assert_eq!(r.body["coa_port"], 1700);
    assert_eq!(r.body["api_url"], "https://10.0.0.6/rest");
    assert_eq!(r.body["api_username"], "lastmile");
    assert_eq!(r.body["has_api_password"], true);
    let id6 = r.body["id"].as_str().unwrap().to_string();
    let got = t.admin("GET", &path(&id6), None).await;
    assert_eq!(got.body, r.body);

    // Duplicate addresses, however spelled.
    for ip in [
        "10.0.0.1",
        " 10.0.0.1",
        "2001:db8::1",
        "2001:0db8:0000::0001",
    ] {
        let r = t
            .admin("POST", "/api/v1/nas", Some(nas_body("dup", ip)))
            .await;
        assert_problem(&r, 409, "duplicate");
        assert_eq!(fields(&r), ["ip"], "{ip}");
    }

    // The audit trail keeps no plaintext secret either.
    let audit = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?entity_id={id6}"),
            None,
        )
        .await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["action"], "nas.create");
    let text = audit.body.to_string();
    assert!(!text.contains(SECRET), "secret in the audit trail: {text}");
    assert!(
        !text.contains(API_PASSWORD),
        "API password in the audit trail: {text}"
    );

    let list = t.admin("GET", "/api/v1/nas", None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);
}

async fn create_nas_rejects_bad_input(t: TestApp) {
    for (body, field) in [
        (nas_body("n", "10.0.0.300"), "ip"),
        (nas_body("n", "core-1.example"), "ip"),
        (nas_body("n", ""), "ip"),
        (nas_body("", "10.0.0.1"), "name"),
        (
            json!({"name": "n", "ip": "10.0.0.1", "secret": "short", "vendor": "cisco"}),
            "secret",
        ),
        (
            json!({"name": "n", "ip": "10.0.0.1", "secret": "has a space", "vendor": "cisco"}),
            "secret",
        ),
        (
            json!({"name": "n", "ip": "10.0.0.1", "secret": "x".repeat(129), "vendor": "cisco"}),
            "secret",
        ),
        (
            json!({"name": "n", "ip": "10.0.0.1", "secret": SECRET, "vendor": "cisco",
                   "coa_port": 0}),
            "coa_port",
        ),
        (
            json!({"name": "n", "ip": "10.0.0.1", "secret": SECRET, "vendor": "cisco",
                   "coa_port": 70000}),
            "coa_port",
        ),
        (
            json!({"name": "n", "ip": "10.0.0.1", "secret": SECRET, "vendor": "cisco",
                   "api_url": "ftp://10.0.0.1/"}),
            "api_url",
        ),
        (
            json!({"name": "n", "ip": "10.0.0.1", "secret": SECRET, "vendor": "cisco",
                   "api_password": ""}),
            "api_password",
        ),
        (
            json!({"name": "n", "ip": "10.0.0.1", "secret": SECRET, "vendor": "netgear"}),
            "vendor",
        ),
    ] {
        let r = t.admin("POST", "/api/v1/nas", Some(body.clone())).await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), [field], "{body}");
    }

    // Every fault at once.
    let r = t
        .admin(
            "POST",
            "/api/v1/nas",
            Some(
                json!({"name": " ", "ip": "999.1.1.1", "secret": "short", "vendor": "huawei",
                        "coa_port": 0, "api_url": "10.0.0.1/rest"}),
            ),
        )
        .await;
    assert_problem(&r, 422, "validation");
    let mut f = fields(&r);
    f.sort();
    assert_eq!(f, ["api_url", "coa_port", "ip", "name", "secret"]);
    // A missing secret.
    let r = t
        .admin(
            "POST",
            "/api/v1/nas",
            Some(json!({"name": "n", "ip": "10.0.0.1", "vendor": "cisco"})),
        )
        .await;
    assert_problem(&r, 422, "validation");

    let list = t.admin("GET", "/api/v1/nas", None).await;
    assert_eq!(list.body["items"], json!([]), "nothing was created");
}

async fn get_and_list_nas(t: TestApp) {
    let created = t
        .admin("POST", "/api/v1/nas", Some(nas_body("core-1", "10.0.0.1")))
        .await;
    let id = created.body["id"].as_str().unwrap().to_string();
    for role in Role::ALL {
        let r = t.call("GET", &path(&id), Some(role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role} may read");
        assert_eq!(r.body, created.body);
        assert_no_secrets(&r.body);
    }

    for i in 2..=5 {
        nas(&t, &format!("core-{i}"), &format!("10.0.0.{i}")).await;
    }
    for role in Role::ALL {
        let r = t.call("GET", "/api/v1/nas", Some(role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role} may list");
        let items = r.body["items"].as_array().unwrap();
        assert_eq!(items.len(), 5);
        for n in items {
            assert_no_secrets(n);
        }
        assert!(items.contains(&created.body));
    }

    // Paging: pages of 2, each NAS once.
    let mut seen = vec![];
    let mut url = "/api/v1/nas?limit=2".to_string();
    let mut pages = 0;
    loop {
        let r = t.admin("GET", &url, None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        let items = r.body["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|n| n["ip"].as_str().unwrap().to_string()));
        pages += 1;
        match r.body["next_cursor"].as_str() {
            Some(c) => url = format!("/api/v1/nas?limit=2&cursor={c}"),
            None => break,
        }
        assert!(pages < 10);
    }
    assert_eq!(pages, 3);
    seen.sort();
    assert_eq!(
        seen,
        ["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5"]
    );
    let r = t.admin("GET", "/api/v1/nas?vendor=mikrotik", None).await;
    assert_problem(&r, 422, "validation");
    let r = t.admin("GET", "/api/v1/nas?limit=0", None).await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["limit"]);
}

async fn patch_nas(t: TestApp) {
    let r = t
        .admin(
            "POST",
            "/api/v1/nas",
            Some(json!({"name": "core-1", "ip": "10.0.0.1", "secret": SECRET,
                        "vendor": "mikrotik", "api_url": "https://10.0.0.1/rest",
                        "api_username": "admin", "api_password": API_PASSWORD})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let other = nas(&t, "core-2", "10.0.0.2").await;

    t.clock.advance(jiff::SignedDuration::from_mins(3));
    let r = patch(
        &t,
        &id,
        json!({"name": "core-1-renamed", "ip": "10.0.1.1",
                        "secret": "a-new-Secret-99"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_no_secrets(&r.body);
    assert!(!r.body.to_string().contains("a-new-Secret-99"));
    assert_eq!(r.body["name"], "core-1-renamed");
    assert_eq!(r.body["ip"], "10.0.1.1");
    assert_eq!(r.body["vendor"], "mikrotik", "absent fields stay");
    assert_eq!(r.body["coa_port"], 3799);
    assert_eq!(r.body["api_url"], "https://10.0.0.1/rest");
    assert_eq!(r.body["api_username"], "admin");
    assert_eq!(r.body["has_api_password"], true);
    assert_eq!(r.body["revision"], 2);
    assert_eq!(r.body["updated_at"], "2026-03-15T12:03:00Z");
    assert_eq!(t.admin("GET", &path(&id), None).await.body, r.body);

    // The old address is free again.
    nas(&t, "core-1-successor", "10.0.0.1").await;

    // A new secret alone is a change.
    let r = patch(&t, &id, json!({"secret": "third-Secret-77"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["revision"], 3);

    // `null` clears optional fields.
    let r = patch(
        &t,
        &id,
        json!({"api_url": null, "api_username": null, "api_password": null,
                        "vendor": "cisco", "coa_port": 3800}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["api_url"], Value::Null);
    assert_eq!(r.body["api_username"], Value::Null);
    assert_eq!(r.body["has_api_password"], false);
    assert_eq!(r.body["vendor"], "cisco");
    assert_eq!(r.body["coa_port"], 3800);
    assert_eq!(r.body["name"], "core-1-renamed");
    assert_eq!(r.body["revision"], 4);
    let current = r.body.clone();
    assert_eq!(t.admin("GET", &path(&id), None).await.body, current);

    // No-op patches leave the revision.
    for body in [
        json!({}),
        json!({"name": "core-1-renamed", "ip": "10.0.1.1"}),
        json!({"api_url": null}),
    ] {
        let r = patch(&t, &id, body.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {:?}", r.body);
        assert_eq!(r.body, current, "{body}");
    }

    // Bad values: named, nothing stored.
    for (body, field) in [
        (json!({"api_url": "not a url"}), "api_url"),
        (json!({"api_url": "ftp://x"}), "api_url"),
        (json!({"ip": "10.0.1"}), "ip"),
        (json!({"secret": "short"}), "secret"),
        (json!({"name": ""}), "name"),
        (json!({"coa_port": 0}), "coa_port"),
        (json!({"vendor": "acme"}), "vendor"),
        (json!({"api_password": ""}), "api_password"),
    ] {
        let r = patch(&t, &id, body.clone()).await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), [field], "{body}");
    }
    let r = patch(
        &t,
        &id,
        json!({"api_url": "gopher://x", "ip": "x", "secret": "s"}),
    )
    .await;
    assert_problem(&r, 422, "validation");
    let mut f = fields(&r);
    f.sort();
    assert_eq!(f, ["api_url", "ip", "secret"]);
    assert_eq!(t.admin("GET", &path(&id), None).await.body, current);

    // Another NAS's address.
    let r = patch(&t, &other, json!({"ip": "10.0.1.1"})).await;
    assert_problem(&r, 409, "duplicate");
    assert_eq!(fields(&r), ["ip"]);
    assert_eq!(
        t.admin("GET", &path(&other), None).await.body["ip"],
        "10.0.0.2"
    );

    // Set an API URL again.
    let r = patch(&t, &id, json!({"api_url": "http://10.0.1.1:8728"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["api_url"], "http://10.0.1.1:8728");

    let audit = t
        .admin("GET", &format!("/api/v1/audit-events?entity_id={id}"), None)
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "nas.create",
            "nas.update",
            "nas.update",
            "nas.update",
            "nas.update"
        ]
    );
    let text = audit.body.to_string();
    for s in [SECRET, API_PASSWORD, "a-new-Secret-99", "third-Secret-77"] {
        assert!(!text.contains(s), "{s} in the audit trail");
    }
}

async fn delete_nas(t: TestApp) {
    let id = nas(&t, "doomed", "10.0.0.9").await;
    let keep = nas(&t, "keeper", "10.0.0.10").await;

    let r = t.admin("DELETE", &path(&id), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(r.body, Value::Null, "no body");
    let r = t.admin("GET", &path(&id), None).await;
    assert_problem(&r, 404, "not-found");
    let r = t.admin("DELETE", &path(&id), None).await;
    assert_problem(&r, 404, "not-found");
    let r = patch(&t, &id, json!({"name": "zombie"})).await;
    assert_problem(&r, 404, "not-found");
    let list = t.admin("GET", "/api/v1/nas", None).await;
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["id"], keep.as_str());
    // Its address may be used again.
    nas(&t, "reborn", "10.0.0.9").await;

    let audit = t
        .admin("GET", &format!("/api/v1/audit-events?entity_id={id}"), None)
        .await;
    let items = audit.body["items"].as_array().unwrap();
    let last = items.last().unwrap();
    assert_eq!(last["action"], "nas.delete");
    assert_eq!(last["after"], Value::Null);
    assert_eq!(last["before"]["name"], "doomed");

    // A NAS a service lives on stays.
    let sub = t.subscriber("Nas User").await;
    let plan = t.plan("NAS-1", 1000).await;
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(
                json!({"subscriber_id": sub, "plan_id": plan, "username": "nasuser",
                        "password": "s3cret!", "nas_id": keep}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["nas_id"], keep.as_str());
    let svc = r.body["id"].as_str().unwrap().to_string();
    let before = t.admin("GET", &path(&keep), None).await.body;
    let r = t.admin("DELETE", &path(&keep), None).await;
    assert_problem(&r, 409, "in-use");
    let r = t.call("DELETE", &path(&keep), Some(Role::Noc), None).await;
    assert_problem(&r, 409, "in-use");
    let got = t.admin("GET", &path(&keep), None).await;
    assert_eq!(got.status, StatusCode::OK);
    assert_eq!(got.body, before);
    let s = t
        .admin("GET", &format!("/api/v1/services/{svc}"), None)
        .await;
    assert_eq!(s.body["nas_id"], keep.as_str());
    let audit = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?entity_id={keep}"),
            None,
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["nas.create"], "a refused delete is not audited");

    // A service naming an unknown NAS is a field error.
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(
                json!({"subscriber_id": sub, "plan_id": plan, "username": "nasuser2",
                        "password": "s3cret!", "nas_id": id}),
            ),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["nas_id"]);
}

async fn nas_roles(t: TestApp) {
    let id = nas(&t, "role-nas", "10.1.0.1").await;
    let before = t.admin("GET", &path(&id), None).await.body;

    for role in [Role::Billing, Role::Support, Role::Readonly] {
        let r = t
            .call(
                "POST",
                "/api/v1/nas",
                Some(role),
                Some(nas_body("intruder", "10.1.0.99")),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
        let r = t
            .call(
                "PATCH",
                &path(&id),
                Some(role),
                Some(json!({"secret": "attacker-secret"})),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
        let r = t.call("DELETE", &path(&id), Some(role), None).await;
        assert_problem(&r, 403, "forbidden");
        let r = t.call("DELETE", &path(NIL_UUID), Some(role), None).await;
        assert_problem(&r, 403, "forbidden");
    }
    assert_eq!(t.admin("GET", &path(&id), None).await.body, before);
    let list = t.admin("GET", "/api/v1/nas", None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);

    // NOC runs the network: full write access, like admin.
    let r = t
        .call(
            "POST",
            "/api/v1/nas",
            Some(Role::Noc),
            Some(nas_body("noc-nas", "10.1.0.2")),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let noc_id = r.body["id"].as_str().unwrap().to_string();
    let r = t
        .call(
            "PATCH",
            &path(&noc_id),
            Some(Role::Noc),
            Some(json!({"name": "noc-nas-2", "coa_port": 1700})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["name"], "noc-nas-2");
    let r = t
        .call(
            "PATCH",
            &path(&id),
            Some(Role::Noc),
            Some(json!({"name": "by-noc"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let r = t
        .call("DELETE", &path(&noc_id), Some(Role::Noc), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = t.admin("GET", &path(&noc_id), None).await;
    assert_problem(&r, 404, "not-found");

    for role in Role::ALL {
        let r = t.call("GET", &path(&id), Some(role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role} may read");
        assert_eq!(r.body["name"], "by-noc");
        let r = t.call("GET", "/api/v1/nas", Some(role), None).await;
        assert_eq!(r.status, StatusCode::OK, "{role} may list");
    }
    let r = t.call("GET", "/api/v1/nas", None, None).await;
    assert_problem(&r, 401, "unauthorized");
    let r = t.call("DELETE", &path(&id), None, None).await;
    assert_problem(&r, 401, "unauthorized");
}

async fn unknown_nas_ids_are_404(t: TestApp) {
    nas(&t, "known", "10.2.0.1").await;
    let fresh = uuid::Uuid::now_v7().to_string();
    for id in [NIL_UUID, fresh.as_str(), "not-a-uuid", "10.2.0.1"] {
        let r = t.admin("GET", &path(id), None).await;
        assert_problem(&r, 404, "not-found");
        let r = patch(&t, id, json!({"name": "ghost"})).await;
        assert_problem(&r, 404, "not-found");
        let r = t.admin("DELETE", &path(id), None).await;
        assert_problem(&r, 404, "not-found");
    }
    let list = t.admin("GET", "/api/v1/nas", None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
}

/// `PATCH /nas/{id}` with `body`, as an admin.
async fn patch(t: &TestApp, id: &str, body: Value) -> Resp {
    t.admin("PATCH", &path(id), Some(body)).await
}

/// `POST /nas` with `extra` merged into a valid body.
async fn post_with(t: &TestApp, ip: &str, extra: Value) -> Resp {
    let mut body = nas_body("r", ip);
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    t.admin("POST", "/api/v1/nas", Some(body)).await
}

async fn nas_radius_settings(t: TestApp) {
    // Everything set on create, and read back by get and list.
    let r = post_with(
        &t,
        "10.3.0.1",
        json!({"require_message_authenticator": false, "interim_interval_secs": 0,
               "session_timeout_secs": 86400, "stale_session_multiplier": 5,
               "suspended_action": {"kind": "walled_garden", "address_list": " unpaid ",
                                    "pool": "garden"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let b = &r.body;
    assert_eq!(b["require_message_authenticator"], false);
    assert_eq!(b["interim_interval_secs"], 0);
    assert_eq!(b["session_timeout_secs"], 86400);
    assert_eq!(b["stale_session_multiplier"], 5);
    assert_eq!(
        b["suspended_action"],
        json!({"kind": "walled_garden", "address_list": "unpaid", "pool": "garden"})
    );
    let id = b["id"].as_str().unwrap().to_string();
    assert_eq!(t.admin("GET", &path(&id), None).await.body, *b);
    let list = t.admin("GET", "/api/v1/nas", None).await;
    assert_eq!(list.body["items"][0], *b);

    // Update: each setting alone; null removes the Session-Timeout.
    let r = patch(
        &t,
        &id,
        json!({"session_timeout_secs": null, "interim_interval_secs": 600,
                        "require_message_authenticator": true,
                        "suspended_action": {"kind": "reject", "reply_message": "Please pay"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["session_timeout_secs"], Value::Null);
    assert_eq!(r.body["interim_interval_secs"], 600);
    assert_eq!(r.body["require_message_authenticator"], true);
    assert_eq!(r.body["stale_session_multiplier"], 5, "left alone");
    assert_eq!(
        r.body["suspended_action"],
        json!({"kind": "reject", "reply_message": "Please pay"})
    );
    assert_eq!(r.body["revision"], 2);
    let got = t.admin("GET", &path(&id), None).await;
    assert_eq!(got.body, r.body);

    // Audited like every NAS change: the update keeps what changed.
    let audit = t
        .admin("GET", &format!("/api/v1/audit-events?entity_id={id}"), None)
        .await;
    let items = audit.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{items:?}");
    let update = items.iter().find(|i| i["action"] == "nas.update").unwrap();
    let text = update.to_string();
    assert!(text.contains("interim_interval_secs"), "{text}");
    assert!(text.contains("Please pay"), "{text}");

    // null is as if absent for a setting that cannot be removed: left alone.
    let r = patch(&t, &id, json!({"interim_interval_secs": null})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["interim_interval_secs"], 600);

    // A blank walled-garden name means none, as a blank Reply-Message does.
    let r = patch(
        &t,
        &id,
        json!({"suspended_action": {"kind": "walled_garden",
                                             "address_list": "unpaid", "pool": "  "}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body["suspended_action"],
        json!({"kind": "walled_garden", "address_list": "unpaid", "pool": null})
    );

    // Bad values, on create and update, name the field.
    let long = "é".repeat(127); // 254 bytes
    for (extra, field) in [
        (
            json!({"interim_interval_secs": 59}),
            "interim_interval_secs",
        ),
        (
            json!({"interim_interval_secs": 86401}),
            "interim_interval_secs",
        ),
        (
            json!({"interim_interval_secs": -1}),
            "interim_interval_secs",
        ),
        (json!({"session_timeout_secs": 59}), "session_timeout_secs"),
        (
            json!({"session_timeout_secs": 2592001}),
            "session_timeout_secs",
        ),
        (
            json!({"stale_session_multiplier": 1}),
            "stale_session_multiplier",
        ),
        (
            json!({"stale_session_multiplier": 101}),
            "stale_session_multiplier",
        ),
        (
            json!({"require_message_authenticator": "yes"}),
            "require_message_authenticator",
        ),
        (
            json!({"suspended_action": {"kind": "walled_garden", "pool": "a b"}}),
            "suspended_action.pool",
        ),
        (
            json!({"suspended_action": {"kind": "walled_garden", "address_list": "x".repeat(65)}}),
            "suspended_action.address_list",
        ),
        (
            json!({"suspended_action": {"kind": "reject", "reply_message": long}}),
            "suspended_action.reply_message",
        ),
        (
            json!({"suspended_action": {"kind": "redirect"}}),
            "suspended_action.kind",
        ),
        (
            json!({"suspended_action": {"kind": "reject", "pool": "p"}}),
            "suspended_action.pool",
        ),
        (json!({"suspended_action": "reject"}), "suspended_action"),
    ] {
        let r = post_with(&t, "10.3.0.2", extra.clone()).await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), [field], "create {extra}");
        let r = patch(&t, &id, extra.clone()).await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), [field], "update {extra}");
    }
    // The edges are accepted.
    let r = post_with(
        &t,
        "10.3.0.3",
        json!({"interim_interval_secs": 60, "session_timeout_secs": 60,
               "stale_session_multiplier": 2,
               "suspended_action": {"kind": "reject", "reply_message": "é".repeat(126)}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = post_with(
        &t,
        "10.3.0.4",
        json!({"interim_interval_secs": 86400, "session_timeout_secs": 2592000,
               "stale_session_multiplier": 100,
               "suspended_action": {"kind": "walled_garden", "address_list": "x".repeat(64)}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["suspended_action"]["pool"], Value::Null);
    let unchanged = t.admin("GET", &path(&id), None).await;
    assert_eq!(unchanged.body["revision"], 3, "no refused update wrote");
}

on_both_backends!(
    nas_radius_settings,
    create_nas_hides_secrets,
    create_nas_rejects_bad_input,
    get_and_list_nas,
    patch_nas,
    delete_nas,
    nas_roles,
    unknown_nas_ids_are_404,
);
