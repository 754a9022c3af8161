//! `Idempotency-Key` on POST: the first response is stored and replayed for retries with the
//! same key and body; the same key with another body is `422`; a retry while the first request
//! is still running is `409`. Keys are scoped by the caller's token (hashed), kept for 24 hours.

use crate::error::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use lastmile_store::{IdempotencyBegin, StoredResponse};
use sha2::{Digest, Sha256};

const MAX_BODY: usize = 1024 * 1024;
pub const HEADER: &str = "idempotency-key";

fn hex(d: impl AsRef<[u8]>) -> String {
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
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
    // Scope: the caller's credential, so two clients cannot collide or read each other's
    // responses.
    let scope = hex(Sha256::digest(
        req.headers()
            .get(header::AUTHORIZATION)
            .map(|v| v.as_bytes())
            .unwrap_or_default(),
    ));
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Payload too large",
                "bodies are limited to 1 MiB",
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
    let store = &state.app.store;
    let now = state.app.clock.now();
    match store
        .begin_idempotency(&scope, &key, &request_hash, now)
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
        Ok(IdempotencyBegin::Reserved) => {}
    }
    let resp = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    let status = resp.status();
    if status.is_server_error() {
        // Nothing was done (or we cannot know): let a retry run again.
        if let Err(e) = store.abandon_idempotency(&scope, &key).await {
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
    if let Err(e) = store.finish_idempotency(&scope, &key, &stored).await {
        tracing::error!(error = %e, "could not store an idempotent response");
    }
    Response::from_parts(rparts, Body::from(body))
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
