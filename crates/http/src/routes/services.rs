use crate::error::ApiResult;
use crate::extract::{perm, Caller, IdPath, Json, OptionalJson, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use lastmile_api_types::{
    ChangePlanBody, CreateService, Page, Problem, ProvisioningJobResponse, ServiceActionBody,
    ServiceChangeResponse, ServiceResponse, TimelineEventResponse, UpdateService,
};
use lastmile_app::services::{ServiceAction, ServiceChangeOutcome};
use lastmile_domain::ids::{NasId, PlanId, ServiceId, SubscriberId};
use lastmile_domain::service::{ServiceStatus, SuspensionCause};
use lastmile_store::ServiceFilter;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, update))
        .routes(routes!(timeline))
        .routes(routes!(activate))
        .routes(routes!(change_plan))
        .routes(routes!(suspend))
        .routes(routes!(resume))
        .routes(routes!(terminate))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    subscriber_id: Option<uuid::Uuid>,
    status: Option<ServiceStatus>,
    plan_id: Option<uuid::Uuid>,
    nas_id: Option<uuid::Uuid>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// List services.
#[utoipa::path(get, operation_id = "list_services", path = "/services", tag = "services", params(ListQuery),
    responses((status = 200, body = Page<ServiceResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<ServiceResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = ServiceFilter {
        subscriber_id: q.subscriber_id.map(SubscriberId),
        status: q.status,
        plan_id: q.plan_id.map(PlanId),
        nas_id: q.nas_id.map(NasId),
    };
    let items = st.app.list_services(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |s| s.id.0,
        Into::into,
    )))
}

/// Create a service in `pending`.
#[utoipa::path(post, operation_id = "create_service", path = "/services", tag = "services", request_body = CreateService,
    responses((status = 201, body = ServiceResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(st): State<AppState>,
    caller: Caller<perm::WriteServices>,
    Json(body): Json<CreateService>,
) -> ApiResult<(StatusCode, axum::Json<ServiceResponse>)> {
    let s = st.app.create_service(&caller.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(s.into())))
}

/// Get a service.
#[utoipa::path(get, operation_id = "get_service", path = "/services/{id}", tag = "services", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ServiceResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<ServiceResponse>> {
    Ok(axum::Json(st.app.get_service(ServiceId(id)).await?.into()))
}

/// Change a service's settings outside its timeline (partial): `simultaneous_use`. Status
/// and plan change through the actions below.
#[utoipa::path(patch, operation_id = "update_service", path = "/services/{id}", tag = "services", params(("id" = uuid::Uuid, Path)),
    request_body = UpdateService,
    responses((status = 200, body = ServiceResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update(
    State(st): State<AppState>,
    caller: Caller<perm::WriteServices>,
    IdPath(id): IdPath,
    Json(body): Json<UpdateService>,
) -> ApiResult<axum::Json<ServiceResponse>> {
    Ok(axum::Json(
        st.app
            .update_service(&caller.actor, ServiceId(id), body)
            .await?
            .into(),
    ))
}

/// The service's timeline, in recording order.
#[utoipa::path(get, path = "/services/{id}/timeline", tag = "services",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<TimelineEventResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn timeline(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<Vec<TimelineEventResponse>>> {
    let events = st.app.service_timeline(ServiceId(id)).await?;
    Ok(axum::Json(events.into_iter().map(Into::into).collect()))
}

async fn act(
    st: &AppState,
    actor: &lastmile_domain::audit::Actor,
    id: uuid::Uuid,
    action: ServiceAction,
    body: ServiceActionBody,
) -> ApiResult<axum::Json<ServiceChangeResponse>> {
    let ServiceChangeOutcome {
        service,
        event,
        jobs,
    } = st
        .app
        .service_action(actor, ServiceId(id), action, body)
        .await?;
    Ok(axum::Json(ServiceChangeResponse {
        service: service.into(),
        event: event.into(),
        jobs: jobs
            .into_iter()
            .map(|j| {
                let has = st.app.has_executor(j.kind);
                ProvisioningJobResponse::new(j, has)
            })
            .collect(),
    }))
}

/// Activate a pending service.
#[utoipa::path(post, path = "/services/{id}/activate", tag = "services",
    params(("id" = uuid::Uuid, Path)), request_body(content = Option<ServiceActionBody>),
    responses((status = 200, body = ServiceChangeResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn activate(
    State(st): State<AppState>,
    caller: Caller<perm::WriteServices>,
    IdPath(id): IdPath,
    OptionalJson(body): OptionalJson<ServiceActionBody>,
) -> ApiResult<axum::Json<ServiceChangeResponse>> {
    act(&st, &caller.actor, id, ServiceAction::Activate, body).await
}

/// Move a service to another plan's current version.
#[utoipa::path(post, path = "/services/{id}/change-plan", tag = "services",
    params(("id" = uuid::Uuid, Path)), request_body = ChangePlanBody,
    responses((status = 200, body = ServiceChangeResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn change_plan(
    State(st): State<AppState>,
    caller: Caller<perm::WriteServices>,
    IdPath(id): IdPath,
    Json(body): Json<ChangePlanBody>,
) -> ApiResult<axum::Json<ServiceChangeResponse>> {
    let action = ServiceAction::ChangePlan {
        plan_id: PlanId(body.plan_id),
    };
    let body = ServiceActionBody {
        effective_at: body.effective_at,
        reason: body.reason,
    };
    act(&st, &caller.actor, id, action, body).await
}

/// Suspend an active service (an operator suspension).
#[utoipa::path(post, path = "/services/{id}/suspend", tag = "services",
    params(("id" = uuid::Uuid, Path)), request_body(content = Option<ServiceActionBody>),
    responses((status = 200, body = ServiceChangeResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn suspend(
    State(st): State<AppState>,
    caller: Caller<perm::SuspendServices>,
    IdPath(id): IdPath,
    OptionalJson(body): OptionalJson<ServiceActionBody>,
) -> ApiResult<axum::Json<ServiceChangeResponse>> {
    let action = ServiceAction::Suspend {
        cause: SuspensionCause::Operator,
    };
    act(&st, &caller.actor, id, action, body).await
}

/// Resume a suspended service.
#[utoipa::path(post, path = "/services/{id}/resume", tag = "services",
    params(("id" = uuid::Uuid, Path)), request_body(content = Option<ServiceActionBody>),
    responses((status = 200, body = ServiceChangeResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn resume(
    State(st): State<AppState>,
    caller: Caller<perm::SuspendServices>,
    IdPath(id): IdPath,
    OptionalJson(body): OptionalJson<ServiceActionBody>,
) -> ApiResult<axum::Json<ServiceChangeResponse>> {
    act(&st, &caller.actor, id, ServiceAction::Resume, body).await
}

/// Terminate a service (final).
#[utoipa::path(post, path = "/services/{id}/terminate", tag = "services",
    params(("id" = uuid::Uuid, Path)), request_body(content = Option<ServiceActionBody>),
    responses((status = 200, body = ServiceChangeResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn terminate(
    State(st): State<AppState>,
    caller: Caller<perm::WriteServices>,
    IdPath(id): IdPath,
    OptionalJson(body): OptionalJson<ServiceActionBody>,
) -> ApiResult<axum::Json<ServiceChangeResponse>> {
    act(&st, &caller.actor, id, ServiceAction::Terminate, body).await
}
