//! `Idempotency-Key` on POST: the first response is stored and replayed for retries with the
//! same key and body; the same key with another body is `422`; a retry while the first request
//! is still running is `409`. Keys are scoped by the caller's token (hashed), kept for 24 hours.
//! Only an authenticated request reserves a key: a missing or unknown token is `401` before
//! anything is stored.
//!
//! # Crashes
//!
//! A reservation belongs to the request that took it for a lease ([`IDEMPOTENCY_LEASE`], 60 s;
//! `LASTMILE_IDEMPOTENCY_LEASE_SECS` overrides it, for tests). The request runs inside
//! [`IDEMPOTENT_REQUEST`], and the store, in the very transaction of the business write (where
//! it inserts the audit event about the entity the route's response is about), records on the
//! key what committed: the audit event, entity type and id, and for a service action its
//! timeline event and jobs. If the process dies before the response is stored, a retry after
//! the lease:
//!
//! - finds nothing committed: takes the reservation over and runs the request, once (a
//!   conditional update on the old owner and lease lets exactly one retry win; should the dead
//!   request still be alive after all, its business transaction fails on the lost key instead
//!   of committing a second time);
//! - finds the commit: runs nothing and answers with a **recovered response**, marked
//!   `Idempotent-Replayed: true` and stored, so every later retry gets exactly the same bytes.
//!
//! A recovered response has the status the route answers on success (`201` for a creation,
//! `200` for an action) and the same body schema, built from what committed as it is *when
//! the retry recovers it*: the route's own `GET` of the recorded entity, run through the API
//! as the same caller (`GET /subscribers/{id}`, `/payments/{id}`, …; the item of
//! `/subscribers/{id}/refunds` or `/discounts` for refunds and discounts), or for a service
//! action `{service, event, jobs}` from `GET /services/{id}`, the recorded event of its
//! timeline and `GET /provisioning-jobs/{id}` of each recorded job. So fields that changed in
//! between (a later update, a job that ran since) show their current value, not the one the
//! lost response would have had. If the recorded entity no longer exists (a NAS deleted
//! since), the recovered response is `410 idempotency-recovered-gone`: the request was carried
//! out, there is nothing left to show.
//!
//! `POST /billing-runs`, `/dunning-runs` and `/payments/import` mark nothing: running them
//! again is harmless by construction (a billing run joins the unfinished run of its date and
//! invoices a subscriber and period once, a unique key; dunning steps are taken once per
//! invoice, a unique key; an imported row is keyed by the bank's transaction id), so a retry
//! after a crash runs them again and answers what that run did.

use crate::error::ApiError;
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use lastmile_store::{
    IdempotencyBegin, IdempotencyCommit, IdempotentRequest, StoredResponse, IDEMPOTENCY_LEASE,
    IDEMPOTENT_REQUEST,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;
use tower::ServiceExt;

pub const HEADER: &str = "idempotency-key";
/// Overrides [`IDEMPOTENCY_LEASE`] (whole seconds, at least 1): crash tests use a short lease
/// instead of waiting a minute. Read once per process.
pub const LEASE_ENV: &str = "LASTMILE_IDEMPOTENCY_LEASE_SECS";

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn lease() -> jiff::SignedDuration {
    static LEASE: OnceLock<jiff::SignedDuration> = OnceLock::new();
    *LEASE.get_or_init(|| match std::env::var(LEASE_ENV) {
        Err(_) => IDEMPOTENCY_LEASE,
        Ok(v) => match v.trim().parse::<i64>() {
            Ok(secs) if secs >= 1 => jiff::SignedDuration::from_secs(secs),
            _ => {
                tracing::warn!(value = %v, "{LEASE_ENV} is not a whole number of seconds ≥ 1; using the default");
                IDEMPOTENCY_LEASE
            }
        },
    })
}

/// How the body of a route's success response is rebuilt from what committed.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Rebuild {
    /// `GET {prefix}/{entity id}`.
    ById(&'static str),
    /// The item with the entity's id in `GET /subscribers/{subscriber}/{list}`.
    InSubscriberList(&'static str),
    /// `{service, event, jobs}` of a service action.
    ServiceChange,
}

/// What an idempotent POST route commits and how a lost response is rebuilt.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Effect {
    /// The response is about the entity of the request's first audit event of `entity_type`.
    Marked {
        entity_type: &'static str,
        status: StatusCode,
        rebuild: Rebuild,
    },
    /// Harmless to run again (see the module documentation): nothing is marked.
    Rerun,
}

fn marked(entity_type: &'static str, status: StatusCode, rebuild: Rebuild) -> Option<Effect> {
    Some(Effect::Marked {
        entity_type,
        status,
        rebuild,
    })
}

/// The effect of `POST path`; `None` for a path the API does not have (it writes nothing).
fn effect(path: &str) -> Option<Effect> {
    use Rebuild::*;
    use StatusCode as S;
    let rest = path.strip_prefix("/api/v1/")?;
    let seg: Vec<&str> = rest.split('/').collect();
    match seg.as_slice() {
        ["subscribers"] => marked("subscriber", S::CREATED, ById("/subscribers")),
        ["subscribers", _, "close"] => marked("subscriber", S::OK, ById("/subscribers")),
        ["subscribers", _, "refunds"] => marked("refund", S::CREATED, InSubscriberList("refunds")),
        ["subscribers", _, "discounts"] => {
            marked("discount", S::CREATED, InSubscriberList("discounts"))
        }
        ["discounts", _, "end"] => marked("discount", S::OK, InSubscriberList("discounts")),
        ["plans"] | ["plans", _, "versions"] => marked("plan", S::CREATED, ById("/plans")),
        ["plans", _, "retire"] => marked("plan", S::OK, ById("/plans")),
        ["nas"] => marked("nas", S::CREATED, ById("/nas")),
        ["services"] => marked("service", S::CREATED, ById("/services")),
        ["services", _, "activate" | "change-plan" | "suspend" | "resume" | "terminate"] => {
            marked("service", S::OK, ServiceChange)
        }
        ["provisioning-jobs", _, "retry"] => {
            marked("provisioning_job", S::OK, ById("/provisioning-jobs"))
        }
        ["invoices", _, "issue" | "void"] => marked("invoice", S::OK, ById("/invoices")),
        ["payments"] => marked("payment", S::CREATED, ById("/payments")),
        ["credit-notes"] => marked("credit_note", S::CREATED, ById("/credit-notes")),
        ["tax-zones"] => marked("tax_zone", S::CREATED, ById("/tax-zones")),
        ["dunning-policies"] => marked("dunning_policy", S::CREATED, ById("/dunning-policies")),
        ["billing-runs"] | ["dunning-runs"] | ["payments", "import"] => Some(Effect::Rerun),
        _ => None,
    }
}

pub async fn layer(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if req.method() != Method::POST {
        return next.run(req).await;
    }
    let Some(key) = req.headers().get(HEADER).cloned() else {
        return next.run(req).await;
    };
    let key = match key.to_str() {
        Ok(k) if !k.is_empty() && k.len() <= 255 => k.to_string(),
        _ => {
            return ApiError::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            )
            .into_response()
        }
    };
    let (parts, body) = req.into_parts();
    // Authenticate before reserving: an unknown caller stores nothing. (The handler's
    // `Caller` authenticates again and checks what the route needs.)
    if let Err(rejection) = authenticate(&state, &parts).await {
        return rejection.into_response();
    }
    let authorization = parts.headers.get(header::AUTHORIZATION).cloned();
    // Scope: the caller's credential, so two clients cannot collide or read each other's
    // responses.
    let scope = hex(Sha256::digest(
        authorization
            .as_ref()
            .map(|v| v.as_bytes())
            .unwrap_or_default(),
    ));
    let bytes = match axum::body::to_bytes(body, crate::error::MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                format!(
                    "the body is larger than {} bytes",
                    crate::error::MAX_BODY_BYTES
                ),
            )
            .into_response()
        }
    };
    let mut h = Sha256::new();
    h.update(parts.method.as_str());
    h.update([0]);
    h.update(parts.uri.path());
    h.update([0]);
    h.update(&bytes);
    let request_hash = hex(h.finalize());
    let effect = effect(parts.uri.path());
    let store = &state.app.store;
    let now = state.app.clock.now();
    let owner = match store
        .begin_idempotency(&scope, &key, &request_hash, now, now + lease())
        .await
    {
        Err(e) => return ApiError::from(lastmile_app::AppError::from(e)).into_response(),
        Ok(IdempotencyBegin::Replay(stored)) => return replay(stored),
        Ok(IdempotencyBegin::Mismatch) => {
            return ApiError::field(
                "Idempotency-Key",
                "this key was used for a different request",
            )
            .into_response()
        }
        Ok(IdempotencyBegin::InProgress) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "idempotency-in-progress",
                "Request in progress",
                "a request with this Idempotency-Key is still being processed; retry later",
            )
            .into_response()
        }
        Ok(IdempotencyBegin::Recover { owner, commit }) => {
            let key = Key {
                scope: &scope,
                key: &key,
                owner: &owner,
            };
            return recover(&state, key, effect, &commit, authorization).await;
        }
        Ok(IdempotencyBegin::Reserved { owner }) => owner,
    };
    let req = Request::from_parts(parts, Body::from(bytes));
    let resp = match &effect {
        Some(Effect::Marked { entity_type, .. }) => {
            let current = IdempotentRequest {
                scope: scope.clone(),
                key: key.clone(),
                owner: owner.clone(),
                entity_type: Some((*entity_type).to_string()),
            };
            IDEMPOTENT_REQUEST.scope(current, next.run(req)).await
        }
        Some(Effect::Rerun) | None => next.run(req).await,
    };
    let status = resp.status();
    if status.is_server_error() {
        // Nothing was done, or it committed and a retry recovers the response at once.
        if let Err(e) = store
            .abandon_idempotency(&scope, &key, &owner, state.app.clock.now())
            .await
        {
            tracing::error!(error = %e, "could not release an idempotency key");
        }
        return resp;
    }
    let (rparts, rbody) = resp.into_parts();
    let body = match axum::body::to_bytes(rbody, usize::MAX).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, "could not buffer a response");
            return ApiError::bad_request("response could not be buffered").into_response();
        }
    };
    let stored = StoredResponse {
        status: status.as_u16(),
        body: body.to_vec(),
    };
    match store
        .finish_idempotency(&scope, &key, &owner, &stored)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!("an idempotent request outlived its lease; a retry took its key over")
        }
        Err(e) => tracing::error!(error = %e, "could not store an idempotent response"),
    }
    Response::from_parts(rparts, Body::from(body))
}

/// The bearer token of the request must name a live token, as `Caller` requires.
async fn authenticate(
    state: &AppState,
    parts: &axum::http::request::Parts,
) -> Result<(), ApiError> {
    crate::extract::operator_of(state, &parts.headers)
        .await
        .map(drop)
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let ct = if status.is_success() {
        "application/json"
    } else {
        crate::error::PROBLEM_JSON
    };
    let mut resp = (status, stored.body).into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
    resp.headers_mut()
        .insert("idempotent-replayed", HeaderValue::from_static("true"));
    resp
}

struct Key<'a> {
    scope: &'a str,
    key: &'a str,
    owner: &'a str,
}

/// Why a response could not be rebuilt.
enum Lost {
    /// The recorded entity no longer exists.
    Gone,
    /// Reading it failed (the database, most likely): try again later.
    Failed(Box<Response>),
}

/// Answers a retry of a request that committed but whose response was never stored: rebuilds
/// the response from what committed, stores it and replays it.
async fn recover(
    state: &AppState,
    key: Key<'_>,
    effect: Option<Effect>,
    commit: &IdempotencyCommit,
    authorization: Option<HeaderValue>,
) -> Response {
    let store = &state.app.store;
    let rebuilt = match &effect {
        Some(Effect::Marked {
            status, rebuild, ..
        }) => rebuild_body(state, rebuild, commit, authorization.as_ref())
            .await
            .map(|body| (*status, body)),
        // Only marked routes record commits; a commit under another route is a bug.
        Some(Effect::Rerun) | None => {
            Err(failed("a commit recorded under a route that marks none"))
        }
    };
    let stored = match rebuilt {
        Ok((status, body)) => StoredResponse {
            status: status.as_u16(),
            body,
        },
        Err(Lost::Gone) => {
            let problem = ApiError::new(
                StatusCode::GONE,
                "idempotency-recovered-gone",
                "Carried out, since removed",
                format!(
                    "the request with this Idempotency-Key was carried out ({} {}), but its \
                     response was lost and the {} no longer exists",
                    commit.entity_type, commit.entity_id, commit.entity_type
                ),
            )
            .into_response();
            let body = axum::body::to_bytes(problem.into_body(), usize::MAX)
                .await
                .unwrap_or_default();
            StoredResponse {
                status: StatusCode::GONE.as_u16(),
                body: body.to_vec(),
            }
        }
        Err(Lost::Failed(resp)) => {
            let resp = *resp;
            // Release the lease so the next retry tries again at once.
            if let Err(e) = store
                .abandon_idempotency(key.scope, key.key, key.owner, state.app.clock.now())
                .await
            {
                tracing::error!(error = %e, "could not release an idempotency key");
            }
            return resp;
        }
    };
    match store
        .finish_idempotency(key.scope, key.key, key.owner, &stored)
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!("a recovery outlived its lease"),
        Err(e) => tracing::error!(error = %e, "could not store a recovered response"),
    }
    tracing::info!(
        entity_type = %commit.entity_type,
        entity_id = %commit.entity_id,
        "recovered the response of an idempotent request that committed before a crash"
    );
    replay(stored)
}

async fn rebuild_body(
    state: &AppState,
    rebuild: &Rebuild,
    commit: &IdempotencyCommit,
    auth: Option<&HeaderValue>,
) -> Result<Vec<u8>, Lost> {
    let id = &commit.entity_id;
    match rebuild {
        Rebuild::ById(prefix) => get(state, auth, &format!("{prefix}/{id}"))
            .await
            .map(|b| b.to_vec()),
        Rebuild::InSubscriberList(list) => {
            let sub = commit
                .subscriber_id
                .ok_or_else(|| failed("the commit record names no subscriber"))?;
            let items = get_json(state, auth, &format!("/subscribers/{sub}/{list}")).await?;
            let item = by_id(items, id)?;
            serde_json::to_vec(&item).map_err(failed)
        }
        Rebuild::ServiceChange => {
            let service = get_json(state, auth, &format!("/services/{id}")).await?;
            let event = match commit.service_event_id {
                Some(event_id) => {
                    let timeline =
                        get_json(state, auth, &format!("/services/{id}/timeline")).await?;
                    by_id(timeline, &event_id.to_string())?
                }
                None => return Err(failed("the commit record names no event")),
            };
            let mut jobs = Vec::with_capacity(commit.job_ids.len());
            for job in &commit.job_ids {
                jobs.push(get_json(state, auth, &format!("/provisioning-jobs/{job}")).await?);
            }
            let body = serde_json::json!({ "service": service, "event": event, "jobs": jobs });
            serde_json::to_vec(&body).map_err(failed)
        }
    }
}

fn failed(detail: impl std::fmt::Display) -> Lost {
    Lost::Failed(Box::new(internal(detail)))
}

fn internal(detail: impl std::fmt::Display) -> Response {
    tracing::error!(%detail, "could not recover an idempotent response");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "Internal error",
        "the response of the committed request could not be rebuilt; retry later",
    )
    .into_response()
}

/// The element of a JSON array whose `id` is `id`.
fn by_id(list: Value, id: &str) -> Result<Value, Lost> {
    match list {
        Value::Array(items) => items
            .into_iter()
            .find(|i| i.get("id").and_then(Value::as_str) == Some(id))
            .ok_or(Lost::Gone),
        _ => Err(failed("a list endpoint did not answer a list")),
    }
}

/// The API routes without this middleware, to read what committed through the same handlers.
fn api_routes(state: &AppState) -> Router {
    static API: OnceLock<Router<AppState>> = OnceLock::new();
    API.get_or_init(|| crate::api().0)
        .clone()
        .with_state(state.clone())
}

/// `GET /api/v1{path}` as the caller (JSON): the body of a 2xx, `Gone` for a 404.
async fn get(state: &AppState, auth: Option<&HeaderValue>, path: &str) -> Result<Bytes, Lost> {
    let mut req = Request::builder()
        .method(Method::GET)
        .uri(format!("/api/v1{path}"))
        .header(header::ACCEPT, "application/json");
    if let Some(auth) = auth {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let req = req.body(Body::empty()).map_err(failed)?;
    let resp = match api_routes(state).oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let status = resp.status();
    if status == StatusCode::NOT_FOUND {
        return Err(Lost::Gone);
    }
    if !status.is_success() {
        return Err(Lost::Failed(Box::new(resp)));
    }
    axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .map_err(failed)
}

async fn get_json(state: &AppState, auth: Option<&HeaderValue>, path: &str) -> Result<Value, Lost> {
    let bytes = get(state, auth, path).await?;
    serde_json::from_slice(&bytes).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every POST route of the API is classified, so none runs unprotected after a crash.
    #[test]
    fn every_post_route_has_an_effect() {
        let (_, doc) = crate::api();
        let mut posts = 0;
        for (path, item) in &doc.paths.paths {
            if item.post.is_none() {
                continue;
            }
            posts += 1;
            let concrete = path.replace("{id}", "0190a7a2-0000-7000-8000-000000000000");
            assert!(
                effect(&concrete).is_some(),
                "POST {path} has no idempotency effect: add it to `effect`"
            );
        }
        assert!(posts >= 20, "found only {posts} POST routes");
    }

    #[test]
    fn effects_of_some_routes() {
        assert_eq!(
            effect("/api/v1/services/x/suspend"),
            marked("service", StatusCode::OK, Rebuild::ServiceChange)
        );
        assert_eq!(
            effect("/api/v1/subscribers"),
            marked(
                "subscriber",
                StatusCode::CREATED,
                Rebuild::ById("/subscribers")
            )
        );
        assert_eq!(effect("/api/v1/payments/import"), Some(Effect::Rerun));
        assert_eq!(effect("/api/v1/nope"), None);
        assert_eq!(effect("/elsewhere"), None);
    }
}
