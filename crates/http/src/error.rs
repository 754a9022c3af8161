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
