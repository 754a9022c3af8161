use crate::error::ApiResult;
use crate::extract::{perm, Caller, IdPath, Json, OptionalJson, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use lastmile_api_types::{
    CreateSubscriber, Page, Problem, ReasonBody, SubscriberResponse, UpdateSubscriber,
};
use lastmile_domain::ids::SubscriberId;
use lastmile_domain::subscriber::SubscriberStatus;
use lastmile_store::SubscriberFilter;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update))
        .routes(routes!(close))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Case-insensitive search in name, number, e-mail and phone, and the services' username,
    /// MAC and static IP: at least 3 characters once trimmed (a shorter needle is refused; to
    /// list everyone, leave `q` out).
    #[param(
        min_length = 3,
        pattern = r"^[ \xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^\x00-\x1F\x7F-\x9F]+[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][ \xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "example"
    )]
    q: Option<String>,
    status: Option<SubscriberStatus>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// List subscribers.
#[utoipa::path(get, operation_id = "list_subscribers", path = "/subscribers", tag = "subscribers", params(ListQuery),
    responses((status = 200, body = Page<SubscriberResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<SubscriberResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = SubscriberFilter {
        q: q.q,
        status: q.status,
        number: None,
    };
    let items = st.app.list_subscribers(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |s| s.id.0,
        Into::into,
    )))
}

/// Create a subscriber.
#[utoipa::path(post, operation_id = "create_subscriber", path = "/subscribers", tag = "subscribers", request_body = CreateSubscriber,
    responses((status = 201, body = SubscriberResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(st): State<AppState>,
    caller: Caller<perm::WriteSubscribers>,
    Json(body): Json<CreateSubscriber>,
) -> ApiResult<(StatusCode, axum::Json<SubscriberResponse>)> {
    let s = st.app.create_subscriber(&caller.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(s.into())))
}

/// Get a subscriber.
#[utoipa::path(get, operation_id = "get_subscriber", path = "/subscribers/{id}", tag = "subscribers",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = SubscriberResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<SubscriberResponse>> {
    Ok(axum::Json(
        st.app.get_subscriber(SubscriberId(id)).await?.into(),
    ))
}

/// Update a subscriber (partial).
#[utoipa::path(patch, operation_id = "update_subscriber", path = "/subscribers/{id}", tag = "subscribers",
    params(("id" = uuid::Uuid, Path)), request_body = UpdateSubscriber,
    responses((status = 200, body = SubscriberResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update(
    State(st): State<AppState>,
    caller: Caller<perm::WriteSubscribers>,
    IdPath(id): IdPath,
    Json(body): Json<UpdateSubscriber>,
) -> ApiResult<axum::Json<SubscriberResponse>> {
    let s = st
        .app
        .update_subscriber(&caller.actor, SubscriberId(id), body)
        .await?;
    Ok(axum::Json(s.into()))
}

/// Close a subscriber account (all services must be terminated).
#[utoipa::path(post, path = "/subscribers/{id}/close", tag = "subscribers",
    params(("id" = uuid::Uuid, Path)), request_body(content = Option<ReasonBody>),
    responses((status = 200, body = SubscriberResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn close(
    State(st): State<AppState>,
    caller: Caller<perm::WriteSubscribers>,
    IdPath(id): IdPath,
    body: OptionalJson<ReasonBody>,
) -> ApiResult<axum::Json<SubscriberResponse>> {
    let s = st
        .app
        .close_subscriber(&caller.actor, SubscriberId(id), body.0.reason)
        .await?;
    Ok(axum::Json(s.into()))
}
