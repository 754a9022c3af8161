use crate::error::ApiResult;
use crate::extract::{perm, Caller, IdPath, Json, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use lastmile_api_types::{CreateNas, NasResponse, Page, Problem, UpdateNas};
use lastmile_domain::ids::NasId;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update, delete))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// List NAS.
#[utoipa::path(get, operation_id = "list_nas", path = "/nas", tag = "nas", params(ListQuery),
    responses((status = 200, body = Page<NasResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<NasResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let items = st.app.list_nas(page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |n| n.id.0,
        Into::into,
    )))
}

/// Register a NAS. The shared secret is write-only.
#[utoipa::path(post, operation_id = "create_nas", path = "/nas", tag = "nas", request_body = CreateNas,
    responses((status = 201, body = NasResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(st): State<AppState>,
    caller: Caller<perm::WriteNas>,
    Json(body): Json<CreateNas>,
) -> ApiResult<(StatusCode, axum::Json<NasResponse>)> {
    let n = st.app.create_nas(&caller.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(n.into())))
}

/// Get a NAS.
#[utoipa::path(get, operation_id = "get_nas", path = "/nas/{id}", tag = "nas", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = NasResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<NasResponse>> {
    Ok(axum::Json(st.app.get_nas(NasId(id)).await?.into()))
}

/// Update a NAS (partial).
#[utoipa::path(patch, operation_id = "update_nas", path = "/nas/{id}", tag = "nas", params(("id" = uuid::Uuid, Path)),
    request_body = UpdateNas,
    responses((status = 200, body = NasResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update(
    State(st): State<AppState>,
    caller: Caller<perm::WriteNas>,
    IdPath(id): IdPath,
    Json(body): Json<UpdateNas>,
) -> ApiResult<axum::Json<NasResponse>> {
    Ok(axum::Json(
        st.app
            .update_nas(&caller.actor, NasId(id), body)
            .await?
            .into(),
    ))
}

/// Delete a NAS that no service lives on.
#[utoipa::path(delete, path = "/nas/{id}", tag = "nas", params(("id" = uuid::Uuid, Path)),
    responses((status = 204),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn delete(
    State(st): State<AppState>,
    caller: Caller<perm::WriteNas>,
    IdPath(id): IdPath,
) -> ApiResult<StatusCode> {
    st.app.delete_nas(&caller.actor, NasId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}
