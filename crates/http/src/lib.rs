//! The HTTP API (`/api/v1`, JSON, OpenAPI at `/api/v1/openapi.json`), `/healthz` and
//! `/metrics`. Handlers are thin: authenticate, check the role, call one use case, map the
//! result to API types.

pub mod error;
pub mod extract;
mod idempotency;
pub mod invoice_html;
pub mod metrics;
mod pagination;
mod routes;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use lastmile_app::App;
use lastmile_domain::ids::BillingRunId;
use lastmile_radius::RadiusMetrics;
use metrics::Metrics;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

#[derive(Clone)]
pub struct AppState {
    pub app: App,
    pub metrics: Arc<Metrics>,
    /// Billing runs this process is executing, so a second POST does not start a second
    /// executor of the same run.
    pub billing_runs: Arc<Mutex<HashSet<BillingRunId>>>,
    /// Notified whenever a background billing run of this process stops.
    pub billing_run_stopped: Arc<tokio::sync::Notify>,
    /// The RADIUS server of this process, if it runs one: its reject log answers
    /// `GET /services/{id}/radius-rejects`.
    pub radius: Option<Arc<RadiusMetrics>>,
}

impl AppState {
    pub fn new(app: App, metrics: Arc<Metrics>) -> Self {
        Self {
            app,
            metrics,
            billing_runs: Arc::default(),
            billing_run_stopped: Arc::default(),
            radius: None,
        }
    }

    /// Serves the last rejects of the RADIUS server running in this process and adds its
    /// counters to `/metrics` (`lastmile_radius_requests_total`, `…_dropped_total`).
    pub fn with_radius(mut self, metrics: Arc<RadiusMetrics>) -> Self {
        self.metrics.register_radius(&metrics);
        self.radius = Some(metrics);
        self
    }

    /// Waits until this process no longer executes billing run `id` in the background
    /// (returns at once if it never did).
    pub async fn billing_run_idle(&self, id: BillingRunId) {
        loop {
            let stopped = self.billing_run_stopped.notified();
            let running = self
                .billing_runs
                .lock()
                .map(|r| r.contains(&id))
                .unwrap_or(false);
            if !running {
                return;
            }
            stopped.await;
        }
    }

    /// Waits until this process executes no billing run in the background: at shutdown, runs
    /// stop at their next batch boundary (see `App::is_stopping`) and this returns.
    pub async fn billing_runs_idle(&self) {
        loop {
            let stopped = self.billing_run_stopped.notified();
            let running = self
                .billing_runs
                .lock()
                .map(|r| !r.is_empty())
                .unwrap_or(false);
            if !running {
                return;
            }
            stopped.await;
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Lastmile API",
        description = "Operations platform for Internet service providers: subscribers, plans, \
                       services and their timeline, NAS, provisioning jobs and the audit trail. \
                       Authenticate with `Authorization: Bearer <token>`. Errors are \
                       `application/problem+json` (RFC 9457). POST requests accept an \
                       `Idempotency-Key` header."
    ),
    // Only a query parameter refers to it, and utoipa collects schemas from bodies alone.
    components(schemas(lastmile_domain::job::JobKind)),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "subscribers"), (name = "plans"), (name = "nas"), (name = "services"),
        (name = "sessions"), (name = "provisioning-jobs"), (name = "audit-events"), (name = "billing")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API routes and their OpenAPI document, generated from the handlers' annotations.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", routes::router())
        .split_for_parts();
    // An omitted optional body is "no body", never `null` (the server refuses `null`).
    lastmile_api_types::openapi::optional_bodies_are_objects(&mut doc);
    (router, doc)
}

/// The whole HTTP application.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api();
    let doc = Arc::new(doc);
    let metrics = state.metrics.clone();
    api.route(
        "/api/v1/openapi.json",
        get(move || {
            let doc = doc.clone();
            async move { axum::Json(doc.as_ref().clone()) }
        }),
    )
    .route("/healthz", get(healthz))
    .route("/metrics", get(metrics_text))
    .fallback(|| async { error::ApiError::not_found("no such endpoint") })
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        idempotency::layer,
    ))
    .route_layer(axum::middleware::from_fn_with_state(
        metrics,
        metrics::track,
    ))
    .layer(axum::extract::DefaultBodyLimit::max(error::MAX_BODY_BYTES))
    .layer(axum::middleware::from_fn(error::problem_json_errors))
    .with_state(state)
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.app.store.ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(serde_json::json!({
                "status": "ok",
                "database": state.app.store.backend(),
            })),
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            error::ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database-unavailable",
                "Database unavailable",
                "the database does not answer",
            )
            .into_response()
        }
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
}
