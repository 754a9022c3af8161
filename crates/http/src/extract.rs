//! Extractors with our error shapes: JSON bodies and query strings that fail to parse name the
//! field at fault; unknown ids in paths are 404; callers authenticate with a bearer token.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use lastmile_domain::audit::Actor;
use lastmile_domain::auth::Operator;
use serde::de::DeserializeOwned;

/// A JSON body. Not JSON / wrong content type → 400; wrong shape, type or unknown field → 422
/// naming the field.
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !is_json(&req) {
            return Err(unsupported_media_type());
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(crate::error::body_rejection)?;
        parse_json(&bytes).map(Json)
    }
}

/// A JSON body that may be omitted entirely (then `T::default()`), for action endpoints whose
/// parameters are all optional.
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let json = is_json(&req);
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(crate::error::body_rejection)?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !json {
            return Err(unsupported_media_type());
        }
        parse_json(&bytes).map(OptionalJson)
    }
}

/// A CSV upload (`text/csv`; `text/plain` and `application/octet-stream` are accepted too, as
/// banks' exports and tools send them).
pub struct CsvBody(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ok = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim();
                matches!(mime, "text/csv" | "text/plain" | "application/octet-stream")
            })
            .unwrap_or(false);
        if !ok {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the statement as text/csv",
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(crate::error::body_rejection)?;
        Ok(CsvBody(bytes))
    }
}

fn is_json(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let mime = ct.split(';').next().unwrap_or("").trim();
            mime == "application/json" || mime.ends_with("+json")
        })
        .unwrap_or(false)
}

fn unsupported_media_type() -> ApiError {
    ApiError::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
        "Unsupported media type",
        "send the body as application/json",
    )
}

/// Parses a JSON body: it must be exactly one JSON object (anything after it, or an array or
/// scalar where the object belongs, is refused rather than guessed at). Syntax errors are 400,
/// shape errors 422 with the field's path.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // serde's derived structs also accept a JSON array of their fields in order; our bodies
    // are objects, and the OpenAPI document says so.
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => {}
        Some(_) => return Err(ApiError::field("body", "the body must be a JSON object")),
        None => {
            return Err(ApiError::bad_request(
                "the body is empty; send a JSON object",
            ))
        }
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut *de) {
        Ok(v) => v,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                Err(ApiError::bad_request(format!(
                    "the body is not valid JSON: {inner}"
                )))
            } else {
                let message = strip_position(&inner.to_string());
                Err(ApiError::field(
                    &field_at_fault(&path, &message, "body"),
                    message,
                ))
            };
        }
    };
    de.end().map_err(|e| {
        ApiError::bad_request(format!("the body holds more than one JSON value: {e}"))
    })?;
    Ok(value)
}

/// The dotted path of the field a serde error is about. For missing and unknown fields serde
/// reports the enclosing object's path and names the field in the message.
/// `whole` names the input itself when no field is to blame.
fn field_at_fault(path: &str, message: &str, whole: &str) -> String {
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    match (path, named) {
        (".", Some(name)) => name.to_string(),
        (".", None) => whole.to_string(),
        // Unknown fields already carry their name in the path.
        (p, Some(name)) if p == name || p.ends_with(&format!(".{name}")) => p.to_string(),
        (p, Some(name)) => format!("{p}.{name}"),
        (p, None) => p.to_string(),
    }
}

/// serde_json appends " at line 1 column 23"; the field path already says where.
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// A query string; unknown or malformed parameters → 422 naming the parameter.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or("");
        // No parameter of ours holds a control character; one (e.g. `q=%00`) is a client bug
        // or a probe, and must not reach a search as a wildcard.
        if let Some((name, _)) = form_parse(q).find(|(_, v)| v.chars().any(char::is_control)) {
            return Err(ApiError::field(
                &name,
                "must not contain control characters",
            ));
        }
        let de = serde_urlencoded::Deserializer::new(form_parse(q));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|err| {
                let path = err.path().to_string();
                let message = err.into_inner().to_string();
                let field = field_at_fault(&path, &message, "query");
                ApiError::field(&field, message)
            })
    }
}

fn form_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}

/// A path id; anything that is not a UUID cannot name a record: 404.
pub struct IdPath(pub uuid::Uuid);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|_| ApiError::not_found("no such resource"))?;
        uuid::Uuid::parse_str(&raw)
            .map(IdPath)
            .map_err(|_| ApiError::not_found(format!("no resource with id {raw:?}")))
    }
}

/// The authenticated operator behind a request, whose role grants `P`. Route handlers name
/// the permission in their signature, so authentication (401) and the role check (403) run
/// while the request's head is extracted: before its path, query or body is parsed, a caller
/// without the permission learns nothing about what the endpoint accepts.
pub struct Caller<P: perm::Perm> {
    pub operator: Operator,
    pub actor: Actor,
    granted: std::marker::PhantomData<P>,
}

/// One marker type per [`Permission`], for [`Caller`].
pub mod perm {
    use lastmile_domain::auth::Permission;

    pub trait Perm: Send + Sync + 'static {
        const PERMISSION: Permission;
    }

    macro_rules! markers {
        ($($name:ident),* $(,)?) => {$(
            #[doc = concat!("`Permission::", stringify!($name), "`.")]
            pub struct $name;
            impl Perm for $name {
                const PERMISSION: Permission = Permission::$name;
            }
        )*};
    }

    markers!(
        Read,
        WriteSubscribers,
        WritePlans,
        WriteNas,
        WriteServices,
        SuspendServices,
        RetryJobs,
        ReadAudit,
        ReadBilling,
        RunBilling,
        WriteBilling,
    );
}

impl<P: perm::Perm> FromRequestParts<AppState> for Caller<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let operator = operator_of(state, &parts.headers).await?;
        if !operator.role.allows(P::PERMISSION) {
            return Err(ApiError::forbidden(format!(
                "the {} role may not do this ({:?})",
                operator.role,
                P::PERMISSION
            )));
        }
        Ok(Caller {
            actor: lastmile_app::actor(&operator),
            operator,
            granted: std::marker::PhantomData,
        })
    }
}

/// The operator the bearer token in `headers` belongs to; 401 without one or for an unknown
/// or revoked token.
pub(crate) async fn operator_of(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<Operator, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthorized("send Authorization: Bearer <token>"))?;
    state
        .app
        .authenticate(token)
        .await?
        .ok_or_else(|| ApiError::unauthorized("the token is unknown or revoked"))
}
