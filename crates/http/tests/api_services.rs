//! Services and their timeline, provisioning jobs and the audit trail over HTTP.

mod common;

use axum::http::StatusCode;
use common::*;
use lastmile_app::Clock;
use lastmile_domain::auth::Role;
use serde_json::{json, Value};

fn kinds(jobs: &Value) -> Vec<String> {
    jobs.as_array()
        .unwrap()
        .iter()
        .map(|j| j["kind"].as_str().unwrap().to_string())
        .collect()
}

async fn create_get_and_list(t: TestApp) {
    let sub = t.subscriber("Paula Pending").await;
    let other = t.subscriber("Otto Other").await;
    let plan = t.plan("SVC-A", 6000).await;
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(json!({"subscriber_id": sub, "plan_id": plan, "username": "paula@isp",
                        "password": "pw-1", "static_ip": "198.51.100.7",
                        "service_address": {"line1": "Lindenweg 3", "city": "Altdorf", "country": "DE"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["access_kind"], "pppoe");
    assert_eq!(r.body["has_password"], true);
    assert!(r.body.get("password").is_none() && r.body.get("password_ciphertext").is_none());
    assert_eq!(r.body["static_ip"], "198.51.100.7");
    let id = r.body["id"].as_str().unwrap().to_string();

    // The stored password is encrypted, and decrypts with the installation key (CHAP later).
    let stored = t
        .app
        .get_service(lastmile_domain::ids::ServiceId(id.parse().unwrap()))
        .await
        .unwrap();
    let ct = stored.password_ciphertext.unwrap();
    assert!(!ct.windows(4).any(|w| w == b"pw-1"));
    assert_eq!(t.app.secrets.decrypt(&ct).unwrap(), "pw-1");

    let g = t
        .call(
            "GET",
            &format!("/api/v1/services/{id}"),
            Some(Role::Readonly),
            None,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body, r.body);

    let ipoe = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(
                json!({"subscriber_id": other, "plan_id": plan, "access_kind": "ipoe",
                        "mac_address": "AA-BB-CC-00-11-22"}),
            ),
        )
        .await;
    assert_eq!(ipoe.status, StatusCode::CREATED, "{:?}", ipoe.body);
    assert_eq!(ipoe.body["mac_address"], "aa:bb:cc:00:11:22");
    t.act(ipoe.body["id"].as_str().unwrap(), "activate", None)
        .await;

    let by_sub = t
        .admin(
            "GET",
            &format!("/api/v1/services?subscriber_id={sub}"),
            None,
        )
        .await;
    assert_eq!(by_sub.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_sub.body["items"][0]["id"], id.as_str());
    let active = t.admin("GET", "/api/v1/services?status=active", None).await;
    assert_eq!(active.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(active.body["items"][0]["subscriber_id"], other.as_str());
    let by_plan = t
        .admin(
            "GET",
            &format!("/api/v1/services?plan_id={plan}&limit=1"),
            None,
        )
        .await;
    assert_eq!(by_plan.body["items"].as_array().unwrap().len(), 1);
    let cursor = by_plan.body["next_cursor"].as_str().unwrap();
    let page2 = t
        .admin(
            "GET",
            &format!("/api/v1/services?plan_id={plan}&limit=1&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(page2.body["items"].as_array().unwrap().len(), 1);
    assert!(page2.body["next_cursor"].is_null());
    assert_ne!(page2.body["items"][0]["id"], by_plan.body["items"][0]["id"]);
}

async fn create_rejects_bad_input(t: TestApp) {
    let sub = t.subscriber("Vic Validation").await;
    let plan = t.plan("SVC-V", 6000).await;
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(json!({"subscriber_id": sub, "plan_id": plan})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["username", "password"]);
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(json!({"subscriber_id": sub, "plan_id": plan, "access_kind": "ipoe", "password": "x"})),
        )
        .await;
    assert_eq!(fields(&r), ["mac_address", "password"]);
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(
                json!({"subscriber_id": sub, "plan_id": plan, "username": "has space",
                        "password": "pw", "static_ip": "300.1.1.1", "mac_address": "nope"}),
            ),
        )
        .await;
    assert_eq!(fields(&r), ["username", "mac_address", "static_ip"]);
    let unknown = "01900000-0000-7000-8000-000000000000";
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(
                json!({"subscriber_id": unknown, "plan_id": unknown, "nas_id": unknown,
                        "username": "u1", "password": "pw"}),
            ),
        )
        .await;
    assert_eq!(fields(&r), ["subscriber_id", "plan_id", "nas_id"]);
    // A plan in another currency cannot be sold to this subscriber.
    let usd = t
        .admin(
            "POST",
            "/api/v1/plans",
            Some(
                json!({"code": "USD-1", "name": "USD", "terms": {"download_kbps": 1000,
                "upload_kbps": 1000, "price_minor": 100, "currency": "USD"}}),
            ),
        )
        .await;
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(json!({"subscriber_id": sub, "plan_id": usd.body["id"], "username": "u2", "password": "pw"})),
        )
        .await;
    assert_eq!(fields(&r), ["plan_id"]);
    let r = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(json!({"subscriber_id": "not-a-uuid", "plan_id": plan})),
        )
        .await;
    assert_eq!(fields(&r), ["subscriber_id"]);
}

async fn uniqueness_is_enforced_and_freed_by_termination(t: TestApp) {
    let a = t.subscriber("Uma Unique").await;
    let b = t.subscriber("Ulf Unique").await;
    let plan = t.plan("SVC-U", 6000).await;
    let first = t.service(&a, &plan, "shared-login").await;
    let dup = t
        .admin(
            "POST",
            "/api/v1/services",
            Some(json!({"subscriber_id": b, "plan_id": plan, "username": "shared-login", "password": "pw"})),
        )
        .await;
    assert_problem(&dup, 409, "duplicate");
    assert_eq!(fields(&dup), ["username"]);
    let ip = |user: &str| json!({"subscriber_id": b, "plan_id": plan, "username": user, "password": "pw", "static_ip": "203.0.113.9"});
    let r = t.admin("POST", "/api/v1/services", Some(ip("ip-a"))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = t.admin("POST", "/api/v1/services", Some(ip("ip-b"))).await;
    assert_problem(&r, 409, "duplicate");
    assert_eq!(fields(&r), ["static_ip"]);

    t.act(&first, "terminate", None).await;
    let again = t.service(&b, &plan, "shared-login").await;
    assert_ne!(again, first);
}

async fn lifecycle_writes_timeline_jobs_and_audit(t: TestApp) {
    let sub = t.subscriber("Lara Lifecycle").await;
    let a = t.plan("LIFE-A", 6000).await;
    let b = t.plan("LIFE-B", 9000).await;
    let svc = t.service(&sub, &a, "lara").await;

    let r = t
        .act(&svc, "activate", Some(json!({"reason": "installed"})))
        .await;
    assert_eq!(r["service"]["status"], "active");
    assert_eq!(r["event"]["kind"], "activated");
    assert_eq!(r["event"]["effective_at"], NOW);
    // Nothing is online before activation, and the RADIUS directory follows the change
    // feed: no job.
    assert_eq!(kinds(&r["jobs"]), Vec::<String>::new());

    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let r = t
        .act(&svc, "change-plan", Some(json!({"plan_id": b})))
        .await;
    assert_eq!(r["service"]["plan_id"], b.as_str());
    assert_eq!(r["event"]["plan_id"], b.as_str());
    assert_eq!(kinds(&r["jobs"]), ["nas.coa"]);
    assert_eq!(r["jobs"][0]["status"], "pending");
    assert_eq!(r["jobs"][0]["executor_available"], false);
    assert_eq!(r["jobs"][0]["last_result"], Value::Null);
    assert_eq!(r["jobs"][0]["payload"]["reason"], "plan_changed");
    assert_eq!(r["jobs"][0]["payload"]["event_id"], r["event"]["id"]);

    t.clock.advance(jiff::SignedDuration::from_hours(1));
    let r = t.act(&svc, "suspend", None).await;
    assert_eq!(r["service"]["status"], "suspended");
    assert_eq!(r["service"]["suspension_cause"], "operator");
    assert_eq!(kinds(&r["jobs"]), ["nas.disconnect"]);
    assert_eq!(r["jobs"][0]["payload"]["reason"], "suspended");

    // A plan change while suspended: the tier changes, nothing to CoA.
    let r = t
        .act(&svc, "change-plan", Some(json!({"plan_id": a})))
        .await;
    assert_eq!(r["service"]["status"], "suspended");
    assert_eq!(kinds(&r["jobs"]), Vec::<String>::new());

    // Resume: the walled-garden session is dropped so it re-authenticates into its tier.
    let r = t.act(&svc, "resume", None).await;
    assert_eq!(r["service"]["status"], "active");
    assert!(r["service"]["suspension_cause"].is_null());
    assert_eq!(kinds(&r["jobs"]), ["nas.disconnect"]);
    assert_eq!(r["jobs"][0]["payload"]["reason"], "resumed");

    let r = t
        .act(&svc, "terminate", Some(json!({"reason": "moved away"})))
        .await;
    assert_eq!(r["service"]["status"], "terminated");
    assert_eq!(kinds(&r["jobs"]), ["nas.disconnect"]);
    assert_eq!(r["jobs"][0]["payload"]["reason"], "terminated");
    assert_eq!(r["service"]["revision"], 7);

    let tl = t
        .call(
            "GET",
            &format!("/api/v1/services/{svc}/timeline"),
            Some(Role::Readonly),
            None,
        )
        .await;
    let kinds_seen: Vec<&str> = tl
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds_seen,
        [
            "activated",
            "plan_changed",
            "suspended",
            "plan_changed",
            "resumed",
            "terminated"
        ]
    );
    let seqs: Vec<i64> = tl
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, [1, 2, 3, 4, 5, 6]);
    assert_eq!(tl.body[5]["reason"], "moved away");
    assert_eq!(tl.body[0]["actor"], "admin operator");

    let jobs = t
        .admin(
            "GET",
            &format!("/api/v1/provisioning-jobs?service_id={svc}&limit=100"),
            None,
        )
        .await;
    assert_eq!(jobs.body["items"].as_array().unwrap().len(), 4);
    let coa = t
        .admin(
            "GET",
            &format!("/api/v1/provisioning-jobs?service_id={svc}&kind=nas.coa"),
            None,
        )
        .await;
    assert_eq!(coa.body["items"].as_array().unwrap().len(), 1);
    let pending = t
        .admin(
            "GET",
            "/api/v1/provisioning-jobs?status=pending&limit=100",
            None,
        )
        .await;
    assert_eq!(pending.body["items"].as_array().unwrap().len(), 4);

    let audit = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?entity_type=service&entity_id={svc}"),
            None,
        )
        .await;
    let actions: Vec<&str> = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "service.create",
            "service.activate",
            "service.change-plan",
            "service.suspend",
            "service.change-plan",
            "service.resume",
            "service.terminate"
        ]
    );
    let last = &audit.body["items"][6];
    assert_eq!(last["before"]["status"], "active");
    assert_eq!(last["after"]["status"], "terminated");
    assert_eq!(last["reason"], "moved away");
    assert_eq!(last["subscriber_id"], sub.as_str());
    // An update keeps only what changed: the password did not.
    assert!(last["after"].get("password_ciphertext").is_none());
    assert!(last["after"].get("username").is_none());
    // The creation holds the whole service, its secret redacted.
    let created = &audit.body["items"][0];
    assert_eq!(created["action"], "service.create");
    assert_eq!(created["after"]["password_ciphertext"], "[redacted]");
}

async fn illegal_transitions_are_409_naming_the_state(t: TestApp) {
    let sub = t.subscriber("Ivo Illegal").await;
    let a = t.plan("ILL-A", 6000).await;
    let svc = t.service(&sub, &a, "ivo").await;
    for action in ["suspend", "resume"] {
        let r = t
            .admin("POST", &format!("/api/v1/services/{svc}/{action}"), None)
            .await;
        assert_problem(&r, 409, "invalid-state");
        assert_eq!(r.body["current_state"], "pending");
        assert!(r.body["detail"]
            .as_str()
            .unwrap()
            .contains(&format!("cannot {action} a service that is pending")));
    }
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/services/{svc}/change-plan"),
            Some(json!({"plan_id": a})),
        )
        .await;
    assert_problem(&r, 409, "invalid-state");
    t.act(&svc, "activate", None).await;
    let r = t
        .admin("POST", &format!("/api/v1/services/{svc}/activate"), None)
        .await;
    assert_eq!(r.body["current_state"], "active");
    let r = t
        .admin("POST", &format!("/api/v1/services/{svc}/resume"), None)
        .await;
    assert_eq!(r.body["current_state"], "active");
    t.act(&svc, "terminate", None).await;
    for action in ["activate", "suspend", "resume", "terminate"] {
        let r = t
            .admin("POST", &format!("/api/v1/services/{svc}/{action}"), None)
            .await;
        assert_problem(&r, 409, "invalid-state");
        assert_eq!(r.body["current_state"], "terminated");
    }
    let tl = t
        .admin("GET", &format!("/api/v1/services/{svc}/timeline"), None)
        .await;
    assert_eq!(
        tl.body.as_array().unwrap().len(),
        2,
        "refused actions record nothing"
    );
}

async fn back_dating_within_the_window(t: TestApp) {
    let sub = t.subscriber("Bert Backdate").await;
    let a = t.plan("BACK-A", 6000).await;
    let b = t.plan("BACK-B", 9000).await;
    let svc = t.service(&sub, &a, "bert").await;
    let r = t
        .act(
            &svc,
            "activate",
            Some(json!({"effective_at": "2026-03-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r["event"]["effective_at"], "2026-03-01T00:00:00Z");
    assert_eq!(r["event"]["recorded_at"], NOW);
    t.act(
        &svc,
        "suspend",
        Some(json!({"effective_at": "2026-03-10T00:00:00Z"})),
    )
    .await;
    // A plan change back-dated between activation and suspension is legal; the service, still
    // suspended now, moves to the new plan without a CoA.
    let r = t
        .act(
            &svc,
            "change-plan",
            Some(json!({"plan_id": b, "effective_at": "2026-03-05T00:00:00Z"})),
        )
        .await;
    assert_eq!(r["service"]["status"], "suspended");
    assert_eq!(r["service"]["plan_id"], b.as_str());
    assert_eq!(kinds(&r["jobs"]), Vec::<String>::new());
    // A suspension back-dated before the existing one would make it illegal: refused.
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/services/{svc}/suspend"),
            Some(json!({"effective_at": "2026-03-07T00:00:00Z"})),
        )
        .await;
    assert_problem(&r, 409, "invalid-state");
    // Outside the 30-day window, or in the future: 422 on effective_at.
    for at in ["2026-02-01T00:00:00Z", "2026-03-16T00:00:00Z"] {
        let r = t
            .admin(
                "POST",
                &format!("/api/v1/services/{svc}/resume"),
                Some(json!({"effective_at": at})),
            )
            .await;
        assert_problem(&r, 422, "validation");
        assert_eq!(fields(&r), ["effective_at"]);
    }
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/services/{svc}/resume"),
            Some(json!({"effective_at": "yesterday"})),
        )
        .await;
    assert_eq!(fields(&r), ["effective_at"]);
    let tl = t
        .admin("GET", &format!("/api/v1/services/{svc}/timeline"), None)
        .await;
    assert_eq!(tl.body.as_array().unwrap().len(), 3);
}

async fn change_plan_rejects_bad_targets(t: TestApp) {
    let sub = t.subscriber("Cleo Change").await;
    let a = t.plan("CHG-A", 6000).await;
    let b = t.plan("CHG-B", 9000).await;
    let svc = t.service(&sub, &a, "cleo").await;
    t.act(&svc, "activate", None).await;
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/services/{svc}/change-plan"),
            Some(json!({})),
        )
        .await;
    assert_eq!(fields(&r), ["plan_id"]);
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/services/{svc}/change-plan"),
            Some(json!({"plan_id": "01900000-0000-7000-8000-000000000000"})),
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["plan_id"]);
    t.admin("POST", &format!("/api/v1/plans/{b}/retire"), None)
        .await;
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/services/{svc}/change-plan"),
            Some(json!({"plan_id": b})),
        )
        .await;
    assert_eq!(fields(&r), ["plan_id"]);
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/services/{svc}/suspend"),
            Some(json!({"reason": "x", "extra": 1})),
        )
        .await;
    assert_problem(&r, 422, "validation");
}

async fn roles_and_unknown_ids(t: TestApp) {
    let sub = t.subscriber("Rolf Roles").await;
    let a = t.plan("ROLE-A", 6000).await;
    let b = t.plan("ROLE-B", 9000).await;
    let body = json!({"subscriber_id": sub, "plan_id": a, "username": "rolf", "password": "pw"});
    for role in [Role::Billing, Role::Noc, Role::Readonly] {
        let r = t
            .call("POST", "/api/v1/services", Some(role), Some(body.clone()))
            .await;
        assert_problem(&r, 403, "forbidden");
    }
    let r = t
        .call("POST", "/api/v1/services", Some(Role::Support), Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let svc = r.body["id"].as_str().unwrap().to_string();
    let path = |a: &str| format!("/api/v1/services/{svc}/{a}");

    // activate / change-plan / terminate: admin and support.
    for role in [Role::Billing, Role::Noc, Role::Readonly] {
        assert_problem(
            &t.call("POST", &path("activate"), Some(role), None).await,
            403,
            "forbidden",
        );
    }
    assert_eq!(
        t.call("POST", &path("activate"), Some(Role::Support), None)
            .await
            .status,
        StatusCode::OK
    );
    for role in [Role::Billing, Role::Noc, Role::Readonly] {
        let r = t
            .call(
                "POST",
                &path("change-plan"),
                Some(role),
                Some(json!({"plan_id": b})),
            )
            .await;
        assert_problem(&r, 403, "forbidden");
        assert_problem(
            &t.call("POST", &path("terminate"), Some(role), None).await,
            403,
            "forbidden",
        );
    }
    // suspend / resume: also billing (dunning by hand) and noc (abuse); never readonly.
    assert_problem(
        &t.call("POST", &path("suspend"), Some(Role::Readonly), None)
            .await,
        403,
        "forbidden",
    );
    assert_eq!(
        t.call("POST", &path("suspend"), Some(Role::Noc), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_problem(
        &t.call("POST", &path("resume"), Some(Role::Readonly), None)
            .await,
        403,
        "forbidden",
    );
    assert_eq!(
        t.call("POST", &path("resume"), Some(Role::Billing), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.call("POST", &path("suspend"), Some(Role::Billing), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.call("POST", &path("resume"), Some(Role::Noc), None)
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        t.call(
            "GET",
            &format!("/api/v1/services/{svc}/timeline"),
            Some(Role::Readonly),
            None
        )
        .await
        .status,
        StatusCode::OK
    );
    // No token at all.
    assert_problem(
        &t.call("POST", &path("suspend"), None, None).await,
        401,
        "unauthorized",
    );

    let unknown = "01900000-0000-7000-8000-000000000000";
    for p in ["", "/timeline"] {
        let r = t
            .admin("GET", &format!("/api/v1/services/{unknown}{p}"), None)
            .await;
        assert_problem(&r, 404, "not-found");
    }
    for a in ["activate", "suspend", "resume", "terminate"] {
        let r = t
            .admin("POST", &format!("/api/v1/services/{unknown}/{a}"), None)
            .await;
        assert_problem(&r, 404, "not-found");
    }
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/services/{unknown}/change-plan"),
            Some(json!({"plan_id": b})),
        )
        .await;
    assert_problem(&r, 404, "not-found");
    let r = t.admin("GET", "/api/v1/services/not-a-uuid", None).await;
    assert_problem(&r, 404, "not-found");
}

async fn provisioning_jobs_list_get_and_retry(t: TestApp) {
    let sub = t.subscriber("Jana Jobs").await;
    let a = t.plan("JOB-A", 6000).await;
    let svc = t.service(&sub, &a, "jana").await;
    t.act(&svc, "activate", None).await;
    let r = t.act(&svc, "suspend", None).await;
    let job = r["jobs"][0]["id"].as_str().unwrap().to_string();

    let g = t
        .call(
            "GET",
            &format!("/api/v1/provisioning-jobs/{job}"),
            Some(Role::Readonly),
            None,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.body["kind"], "nas.disconnect");
    assert_eq!(g.body["payload"]["service_id"], svc.as_str());
    assert_eq!(g.body["payload"]["subscriber_id"], sub.as_str());
    assert_eq!(g.body["payload"]["reason"], "suspended");
    let by_kind = t
        .admin("GET", "/api/v1/provisioning-jobs?kind=nas.disconnect", None)
        .await;
    assert_eq!(by_kind.body["items"].as_array().unwrap().len(), 1);
    // An unknown kind is the client's mistake, named as such (422, as every field error).
    let r = t
        .admin(
            "GET",
            "/api/v1/provisioning-jobs?kind=radius.update-policy",
            None,
        )
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["kind"]);
    let by_sub = t
        .admin(
            "GET",
            &format!("/api/v1/provisioning-jobs?subscriber_id={sub}"),
            None,
        )
        .await;
    assert_eq!(by_sub.body["items"].as_array().unwrap().len(), 1);

    // Only failed jobs can be retried.
    let r = t
        .admin(
            "POST",
            &format!("/api/v1/provisioning-jobs/{job}/retry"),
            None,
        )
        .await;
    assert_problem(&r, 409, "invalid-state");
    assert_eq!(r.body["current_state"], "pending");

    // Make it fail for good, as the runner does after its last attempt.
    let now = t.clock.now();
    let claimed = t
        .app
        .store
        .claim_jobs(
            &[lastmile_domain::job::JobKind::NasDisconnect],
            lastmile_store::JobScope::All,
            now,
            now + jiff::SignedDuration::from_secs(60),
            10,
        )
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    let outcome = lastmile_store::JobOutcome::Failed {
        error: "NAS unreachable".into(),
        retry_at: None,
    };
    assert!(t
        .app
        .store
        .finish_job(claimed[0].id, 1, &outcome, now)
        .await
        .unwrap());
    let failed = t
        .admin("GET", "/api/v1/provisioning-jobs?status=failed", None)
        .await;
    assert_eq!(failed.body["items"][0]["last_error"], "NAS unreachable");
    assert_eq!(failed.body["items"][0]["last_result"], "NAS unreachable");

    for role in [Role::Billing, Role::Support, Role::Readonly] {
        let r = t
            .call(
                "POST",
                &format!("/api/v1/provisioning-jobs/{job}/retry"),
                Some(role),
                None,
            )
            .await;
        assert_problem(&r, 403, "forbidden");
    }
    let r = t
        .call(
            "POST",
            &format!("/api/v1/provisioning-jobs/{job}/retry"),
            Some(Role::Noc),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"], "pending");
    assert_eq!(r.body["attempts"], 0);
    let audit = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?entity_type=provisioning_job&entity_id={job}"),
            None,
        )
        .await;
    assert_eq!(audit.body["items"][0]["action"], "provisioning_job.retry");
    assert_eq!(audit.body["items"][0]["actor_name"], "noc operator");

    let unknown = "01900000-0000-7000-8000-000000000000";
    assert_problem(
        &t.admin("GET", &format!("/api/v1/provisioning-jobs/{unknown}"), None)
            .await,
        404,
        "not-found",
    );
    assert_problem(
        &t.admin(
            "POST",
            &format!("/api/v1/provisioning-jobs/{unknown}/retry"),
            None,
        )
        .await,
        404,
        "not-found",
    );
    let r = t
        .admin("GET", "/api/v1/provisioning-jobs?status=exploded", None)
        .await;
    assert_eq!(fields(&r), ["status"]);
    assert_problem(
        &t.call("GET", "/api/v1/provisioning-jobs", None, None).await,
        401,
        "unauthorized",
    );
}

async fn audit_events_filter_by_entity_actor_and_time(t: TestApp) {
    let sub = t.subscriber("Alma Audit").await;
    t.clock.advance(jiff::SignedDuration::from_hours(2));
    let r = t
        .call(
            "PATCH",
            &format!("/api/v1/subscribers/{sub}"),
            Some(Role::Support),
            Some(json!({"phone": "+49 1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let all = t
        .call(
            "GET",
            &format!("/api/v1/audit-events?subscriber_id={sub}"),
            Some(Role::Readonly),
            None,
        )
        .await;
    assert_eq!(all.status, StatusCode::OK);
    let items = all.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["action"], "subscriber.create");
    assert_eq!(items[1]["action"], "subscriber.update");
    assert!(items[1]["before"]["phone"].is_null());
    assert_eq!(items[1]["after"]["phone"], "+49 1");

    let actor = items[1]["actor_id"].as_str().unwrap();
    let by_actor = t
        .admin(
            "GET",
            &format!("/api/v1/audit-events?actor_id={actor}"),
            None,
        )
        .await;
    assert_eq!(by_actor.body["items"].as_array().unwrap().len(), 1);
    let later = t
        .admin(
            "GET",
            "/api/v1/audit-events?entity_type=subscriber&from=2026-03-15T13:00:00Z",
            None,
        )
        .await;
    assert_eq!(later.body["items"].as_array().unwrap().len(), 1);
    let earlier = t
        .admin("GET", "/api/v1/audit-events?entity_type=subscriber&from=2026-03-15T11:00:00Z&to=2026-03-15T13:00:00Z", None)
        .await;
    assert_eq!(earlier.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(earlier.body["items"][0]["action"], "subscriber.create");
    let r = t
        .admin("GET", "/api/v1/audit-events?from=last-tuesday", None)
        .await;
    assert_problem(&r, 422, "validation");
    assert_eq!(fields(&r), ["from"]);
    assert_problem(
        &t.call("GET", "/api/v1/audit-events", None, None).await,
        401,
        "unauthorized",
    );
}

on_both_backends!(
    create_get_and_list,
    create_rejects_bad_input,
    uniqueness_is_enforced_and_freed_by_termination,
    lifecycle_writes_timeline_jobs_and_audit,
    illegal_transitions_are_409_naming_the_state,
    back_dating_within_the_window,
    change_plan_rejects_bad_targets,
    roles_and_unknown_ids,
    provisioning_jobs_list_get_and_retry,
    audit_events_filter_by_entity_actor_and_time,
);
