//! The test app: the real router over a real store (a fresh SQLite file or a fresh database of
//! the throwaway PostgreSQL cluster), a manual clock, and one API token per role.
#![allow(dead_code)]

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use jiff::{SignedDuration, Timestamp};
use lastmile_app::{App, AppConfig, ManualClock, SecretBox};
use lastmile_domain::audit::Actor;
use lastmile_domain::auth::Role;
use lastmile_http::{metrics::Metrics, AppState};
use lastmile_store::Store;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tower::ServiceExt;

/// "Now" in every HTTP test: fixed, so back-dating and timestamps are deterministic.
pub const NOW: &str = "2026-03-15T12:00:00Z";

pub fn now() -> Timestamp {
    NOW.parse().unwrap()
}

pub struct TestApp {
    /// The router's state: lets a test wait for a background billing run.
    pub state: AppState,
    pub router: Router,
    pub app: App,
    pub clock: Arc<ManualClock>,
    pub tokens: HashMap<Role, String>,
    /// The database the store runs on, for tests that reach under the API.
    pub db_url: String,
    _guard: Option<lastmile_testing::TempDir>,
}

pub struct Resp {
    pub status: StatusCode,
    pub content_type: String,
    pub body: Value,
    pub headers: axum::http::HeaderMap,
}

impl TestApp {
    pub async fn sqlite() -> Self {
        let (url, guard) = lastmile_testing::sqlite_url().await;
        Self::on_sqlite(url, Some(guard)).await
    }

    /// The app on the SQLite database at `url`, which the caller keeps and removes.
    pub async fn sqlite_at(url: &str) -> Self {
        Self::on_sqlite(url.to_string(), None).await
    }

    async fn on_sqlite(url: String, guard: Option<lastmile_testing::TempDir>) -> Self {
        let store = lastmile_store_sqlite::SqliteStore::connect(&url)
            .await
            .unwrap();
        Self::with_store(Arc::new(store), url, guard).await
    }

    pub async fn postgres() -> Option<Self> {
        let url = lastmile_testing::pg::database_url().await?;
        let store = lastmile_store_postgres::PgStore::connect(&url)
            .await
            .unwrap();
        Some(Self::with_store(Arc::new(store), url, None).await)
    }

    async fn with_store(
        store: Arc<dyn Store>,
        db_url: String,
        guard: Option<lastmile_testing::TempDir>,
    ) -> Self {
        let clock = Arc::new(ManualClock::new(now()));
        let secrets = SecretBox::from_hex(&SecretBox::generate_key().unwrap()).unwrap();
        let config = AppConfig {
            backdate_window: SignedDuration::from_hours(24 * 30),
            executor_kinds: vec![],
            billing: Default::default(),
        };
        let app = App::new(store, clock.clone(), secrets, config);
        let mut tokens = HashMap::new();
        for role in Role::ALL {
            let (_, token) = app
                .create_operator(&Actor::system("test"), &format!("{role} operator"), role)
                .await
                .unwrap();
            tokens.insert(role, token);
        }
        let state = AppState::new(app.clone(), Metrics::new());
        let router = lastmile_http::router(state.clone());
        Self {
            router,
            state,
            app,
            clock,
            tokens,
            db_url,
            _guard: guard,
        }
    }

    /// Sends a request as `role` (None: no Authorization header) with an optional JSON body.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        role: Option<Role>,
        body: Option<Value>,
    ) -> Resp {
        let mut headers = vec![];
        if let Some(r) = role {
            headers.push((
                "authorization".to_string(),
                format!("Bearer {}", self.tokens[&r]),
            ));
        }
        let bytes = body.map(|b| {
            headers.push(("content-type".into(), "application/json".into()));
            serde_json::to_vec(&b).unwrap()
        });
        self.raw(method, path, &headers, bytes).await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<Vec<u8>>,
    ) -> Resp {
        let mut req = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap())
            .uri(path);
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(body.map(Body::from).unwrap_or_else(Body::empty))
            .unwrap();
        let resp = self.router.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            content_type,
            body,
            headers,
        }
    }

    /// Runs SQL under the API, in the backend's dialect (e.g. a trigger that injects a
    /// failure).
    pub async fn exec_sql(&self, sqlite: &'static str, postgres: &'static str) {
        if self.db_url.starts_with("sqlite") {
            let path = lastmile_store_sqlite::db::database_path(&self.db_url).unwrap();
            tokio::task::spawn_blocking(move || {
                let c = rusqlite::Connection::open(path).unwrap();
                c.execute_batch(sqlite).unwrap();
            })
            .await
            .unwrap();
        } else {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(&self.db_url).await.unwrap();
            sqlx::raw_sql(postgres).execute(&mut c).await.unwrap();
        }
    }

    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Resp {
        self.call(method, path, Some(Role::Admin), body).await
    }

    /// Creates a subscriber, returns its id.
    pub async fn subscriber(&self, name: &str) -> String {
        let r = self
            .admin(
                "POST",
                "/api/v1/subscribers",
                Some(json!({"name": name, "currency": "EUR"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Creates a plan with the given code and monthly price, returns its id.
    pub async fn plan(&self, code: &str, price_minor: i64) -> String {
        let r = self
            .admin(
                "POST",
                "/api/v1/plans",
                Some(json!({"code": code, "name": code, "terms": {
                    "download_kbps": 100000, "upload_kbps": 20000,
                    "price_minor": price_minor, "currency": "EUR"}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Creates a pending PPPoE service, returns its id.
    pub async fn service(&self, subscriber: &str, plan: &str, username: &str) -> String {
        let r = self
            .admin(
                "POST",
                "/api/v1/services",
                Some(json!({"subscriber_id": subscriber, "plan_id": plan,
                            "username": username, "password": "s3cret!"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["id"].as_str().unwrap().to_string()
    }

    /// Runs a service action as admin and asserts it succeeded.
    pub async fn act(&self, service: &str, action: &str, body: Option<Value>) -> Value {
        let r = self
            .admin(
                "POST",
                &format!("/api/v1/services/{service}/{action}"),
                body,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{action}: {:?}", r.body);
        r.body
    }
}

/// Asserts a problem+json response with the given status and problem type slug.
pub fn assert_problem(r: &Resp, status: u16, slug: &str) {
    assert_eq!(r.status.as_u16(), status, "body: {:?}", r.body);
    assert_eq!(
        r.content_type, "application/problem+json",
        "body: {:?}",
        r.body
    );
    assert_eq!(
        r.body["type"],
        format!("urn:lastmile:problem:{slug}"),
        "body: {:?}",
        r.body
    );
    assert_eq!(r.body["status"], status);
}

/// The fields named in a 422 problem.
pub fn fields(r: &Resp) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Generates one test per backend for each named `async fn(TestApp)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::common::TestApp::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::common::TestApp::postgres().await {
                        super::$name(app).await
                    }
                }
            )*
        }
    };
}

/// Starts a billing run over HTTP (as the billing role) and waits for the background executor
/// the endpoint started; returns the completed run, which must have no errors.
pub async fn bill_over_http(t: &TestApp, as_of: &str, subscriber: Option<&str>) -> Value {
    let mut body = json!({ "as_of": as_of });
    if let Some(s) = subscriber {
        body["subscriber_id"] = json!(s);
    }
    let r = t
        .call(
            "POST",
            "/api/v1/billing-runs",
            Some(Role::Billing),
            Some(body),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{:?}", r.body);
    assert_eq!(r.body["as_of"], as_of);
    let id = r.body["id"].as_str().unwrap().to_string();
    wait_for_run(t, &id).await
}

/// Waits until the background executor of run `id` stops; returns the run, which must have
/// completed without errors.
pub async fn wait_for_run(t: &TestApp, id: &str) -> Value {
    t.state
        .billing_run_idle(lastmile_domain::ids::BillingRunId(id.parse().unwrap()))
        .await;
    let g = t
        .call(
            "GET",
            &format!("/api/v1/billing-runs/{id}"),
            Some(Role::Support),
            None,
        )
        .await;
    assert_eq!(g.status, StatusCode::OK, "{:?}", g.body);
    assert_eq!(g.body["status"], "completed", "{:?}", g.body);
    assert_eq!(g.body["errors"], json!([]), "{:?}", g.body);
    g.body
}

pub fn set_clock(t: &TestApp, at: &str) {
    t.clock.set(at.parse().unwrap());
}

/// An active service on `plan`, activated on 2026-03-01 (within the back-dating window of
/// the test clock's start).
pub async fn active_service(t: &TestApp, sub: &str, plan: &str, username: &str) -> String {
    let svc = t.service(sub, plan, username).await;
    t.act(
        &svc,
        "activate",
        Some(json!({"effective_at": "2026-03-01T08:00:00Z"})),
    )
    .await;
    svc
}

/// The items of a list endpoint (paged `{"items": …}` or a plain array).
pub async fn list_items(t: &TestApp, path: &str) -> Vec<Value> {
    let r = t.admin("GET", path, None).await;
    assert_eq!(r.status, StatusCode::OK, "{path}: {:?}", r.body);
    match r.body.get("items") {
        Some(items) => items.as_array().unwrap().clone(),
        None => r.body.as_array().unwrap().clone(),
    }
}
