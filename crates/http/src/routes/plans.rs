use crate::error::ApiResult;
use crate::extract::{perm, Caller, IdPath, Json, OptionalJson, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use lastmile_api_types::{
    CreatePlan, CreatePlanVersion, Page, PlanResponse, PlanVersionResponse, Problem, ReasonBody,
    UpdatePlan,
};
use lastmile_domain::ids::PlanId;
use lastmile_domain::plan::PlanStatus;
use lastmile_store::PlanFilter;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, rename))
        .routes(routes!(list_versions, create_version))
        .routes(routes!(retire))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status: Option<PlanStatus>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// List plans with their current version.
#[utoipa::path(get, operation_id = "list_plans", path = "/plans", tag = "plans", params(ListQuery),
    responses((status = 200, body = Page<PlanResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<PlanResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let items = st
        .app
        .list_plans(&PlanFilter { status: q.status }, page)
        .await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |p| p.id.0,
        Into::into,
    )))
}

/// Create a plan (version 1).
#[utoipa::path(post, operation_id = "create_plan", path = "/plans", tag = "plans", request_body = CreatePlan,
    responses((status = 201, body = PlanResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(st): State<AppState>,
    caller: Caller<perm::WritePlans>,
    Json(body): Json<CreatePlan>,
) -> ApiResult<(StatusCode, axum::Json<PlanResponse>)> {
    let p = st.app.create_plan(&caller.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(p.into())))
}

/// Get a plan with its current version.
#[utoipa::path(get, operation_id = "get_plan", path = "/plans/{id}", tag = "plans", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PlanResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<PlanResponse>> {
    Ok(axum::Json(st.app.get_plan(PlanId(id)).await?.into()))
}

/// Rename a plan (no new version: names are not terms).
#[utoipa::path(patch, path = "/plans/{id}", tag = "plans", params(("id" = uuid::Uuid, Path)),
    request_body = UpdatePlan,
    responses((status = 200, body = PlanResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn rename(
    State(st): State<AppState>,
    caller: Caller<perm::WritePlans>,
    IdPath(id): IdPath,
    Json(body): Json<UpdatePlan>,
) -> ApiResult<axum::Json<PlanResponse>> {
    Ok(axum::Json(
        st.app
            .rename_plan(&caller.actor, PlanId(id), body)
            .await?
            .into(),
    ))
}

/// All versions of a plan, oldest first.
#[utoipa::path(get, path = "/plans/{id}/versions", tag = "plans",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<PlanVersionResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_versions(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<Vec<PlanVersionResponse>>> {
    let v = st.app.list_plan_versions(PlanId(id)).await?;
    Ok(axum::Json(v.into_iter().map(Into::into).collect()))
}

/// New terms (price, tier, cap …) as a new version; existing services keep theirs.
#[utoipa::path(post, path = "/plans/{id}/versions", tag = "plans",
    params(("id" = uuid::Uuid, Path)), request_body = CreatePlanVersion,
    responses((status = 201, body = PlanResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_version(
    State(st): State<AppState>,
    caller: Caller<perm::WritePlans>,
    IdPath(id): IdPath,
    Json(body): Json<CreatePlanVersion>,
) -> ApiResult<(StatusCode, axum::Json<PlanResponse>)> {
    let p = st
        .app
        .create_plan_version(&caller.actor, PlanId(id), body)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(p.into())))
}

/// Stop selling a plan; services on it keep it.
#[utoipa::path(post, path = "/plans/{id}/retire", tag = "plans",
    params(("id" = uuid::Uuid, Path)), request_body(content = Option<ReasonBody>),
    responses((status = 200, body = PlanResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn retire(
    State(st): State<AppState>,
    caller: Caller<perm::WritePlans>,
    IdPath(id): IdPath,
    body: OptionalJson<ReasonBody>,
) -> ApiResult<axum::Json<PlanResponse>> {
    Ok(axum::Json(
        st.app
            .retire_plan(&caller.actor, PlanId(id), body.0.reason)
            .await?
            .into(),
    ))
}
