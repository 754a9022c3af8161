use crate::error::ApiResult;
use crate::extract::{perm, Caller, IdPath, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use lastmile_api_types::{Page, Problem, ProvisioningJobResponse};
use lastmile_domain::ids::{JobId, ServiceId, SubscriberId};
use lastmile_domain::job::{JobKind, JobStatus};
use lastmile_store::JobFilter;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(retry))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    status: Option<JobStatus>,
    kind: Option<JobKind>,
    service_id: Option<uuid::Uuid>,
    subscriber_id: Option<uuid::Uuid>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// The provisioning queue.
#[utoipa::path(get, operation_id = "list_provisioning_jobs", path = "/provisioning-jobs", tag = "provisioning-jobs", params(ListQuery),
    responses((status = 200, body = Page<ProvisioningJobResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<ProvisioningJobResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = JobFilter {
        status: q.status,
        kind: q.kind,
        service_id: q.service_id.map(ServiceId),
        subscriber_id: q.subscriber_id.map(SubscriberId),
    };
    let items = st.app.list_jobs(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |j| j.id.0,
        |j| {
            let has = st.app.has_executor(j.kind);
            ProvisioningJobResponse::new(j, has)
        },
    )))
}

/// Get a provisioning job.
#[utoipa::path(get, operation_id = "get_provisioning_job", path = "/provisioning-jobs/{id}", tag = "provisioning-jobs",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProvisioningJobResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<ProvisioningJobResponse>> {
    let j = st.app.get_job(JobId(id)).await?;
    let has = st.app.has_executor(j.kind);
    Ok(axum::Json(ProvisioningJobResponse::new(j, has)))
}

/// Put a failed job back in the queue.
#[utoipa::path(post, path = "/provisioning-jobs/{id}/retry", tag = "provisioning-jobs",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = ProvisioningJobResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn retry(
    State(st): State<AppState>,
    caller: Caller<perm::RetryJobs>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<ProvisioningJobResponse>> {
    let j = st.app.retry_job(&caller.actor, JobId(id)).await?;
    let has = st.app.has_executor(j.kind);
    Ok(axum::Json(ProvisioningJobResponse::new(j, has)))
}
