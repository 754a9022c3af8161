//! Every error leaves as `application/problem+json` (RFC 9457) with a stable `type`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use lastmile_api_types::{FieldProblem, Problem};
use lastmile_app::AppError;
use lastmile_store::StoreError;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// Problem type URIs: `urn:lastmile:problem:<slug>`. Stable; clients may match on them.
pub fn problem_type(slug: &str) -> String {
    format!("urn:lastmile:problem:{slug}")
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: errors travel through every handler's `Result`; keep that small.
    pub problem: Box<Problem>,
}

impl ApiError {
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            status,
            problem: Box::new(Problem {
                problem_type: problem_type(slug),
                title: title.into(),
                status: status.as_u16(),
                detail: Some(detail.into()),
                errors: None,
                current_state: None,
            }),
        }
    }

    pub fn unauthorized(detail: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Authentication required",
            detail,
        )
    }

    pub fn forbidden(detail: String) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "Not allowed for this role",
            detail,
        )
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found", detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Malformed request",
            detail,
        )
    }

    /// A single field at fault (422).
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        let mut e = Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid input",
            format!("{field}: {message}"),
        );
        e.problem.errors = Some(vec![FieldProblem {
            field: field.into(),
            message,
        }]);
        e
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Validation(errs) => {
                let mut a = Self::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "validation",
                    "Invalid input",
                    errs.to_string(),
                );
                a.problem.errors = Some(
                    errs.0
                        .into_iter()
                        .map(|f| FieldProblem {
                            field: f.field,
                            message: f.message,
                        })
                        .collect(),
                );
                a
            }
            AppError::NotFound { entity, id } => {
                Self::not_found(format!("{entity} {id} not found").replace("  ", " "))
            }
            AppError::Conflict {
                kind,
                message,
                current_state,
                field,
            } => {
                let mut a = Self::new(StatusCode::CONFLICT, kind, "Conflict", message.clone());
                a.problem.current_state = current_state;
                if let Some(f) = field {
                    a.problem.errors = Some(vec![FieldProblem {
                        field: f.into(),
                        message,
                    }]);
                }
                a
            }
            AppError::Store(StoreError::Backend(err)) => {
                tracing::error!(error = %err, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "database-unavailable",
                    "Database unavailable",
                    "the database could not complete the request; retry later",
                )
            }
            AppError::Store(other) => {
                tracing::error!(error = %other, "store failure");
                Self::internal()
            }
            AppError::Internal(msg) => {
                tracing::error!(error = %msg, "internal error");
                Self::internal()
            }
        }
    }
}

impl ApiError {
    fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Internal error",
            "an internal error occurred; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        resp
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// The longest request target (path and query) the API reads. Far above any URL the API
/// documents; the HTTP parser itself refuses targets over 64 KiB before any of our code runs.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// The largest request body the API reads (JSON bodies and CSV statements).
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The outermost layer: refuses over-long request targets, and turns every error response
/// that does not already carry a problem document (405 from the router, 413 from the body
/// limit, a panic-free fallback of any layer) into one, keeping its status and headers such
/// as `Allow`.
pub async fn problem_json_errors(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let target = req
        .uri()
        .path_and_query()
        .map(|pq| pq.as_str().len())
        .unwrap_or(0);
    if target > MAX_URI_BYTES {
        return ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri-too-long",
            "URI too long",
            format!("the request target is {target} bytes; at most {MAX_URI_BYTES} are read"),
        )
        .into_response();
    }
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || is_problem(&resp) {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    let reason = status.canonical_reason().unwrap_or("Error");
    let slug = reason.to_ascii_lowercase().replace(' ', "-");
    let detail = match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allow = parts
                .headers
                .get(header::ALLOW)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            format!("this endpoint does not answer this method; it allows {allow}")
        }
        _ => reason.to_string(),
    };
    let problem = ApiError::new(status, &slug, reason, detail).into_response();
    let (problem_parts, body) = problem.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    drop(problem_parts);
    Response::from_parts(parts, body)
}

fn is_problem(resp: &Response) -> bool {
    resp.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with(PROBLEM_JSON))
}

/// A body that could not be read: too large (413) or cut off (400).
pub fn body_rejection(e: axum::extract::rejection::BytesRejection) -> ApiError {
    let status = e.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "payload-too-large",
            "Payload too large",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        )
    } else {
        ApiError::bad_request(e.body_text())
    }
}
