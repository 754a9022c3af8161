//! RADIUS sessions (from accounting) and a service's last Access-Rejects.

use crate::error::ApiResult;
use crate::extract::{perm, Caller, IdPath, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use lastmile_api_types::{Page, Problem, RadiusRejectResponse, RadiusSessionResponse};
use lastmile_domain::ids::{NasId, ServiceId, SessionId, SubscriberId};
use lastmile_store::radius::SessionFilter;
use serde::Deserialize;
use std::net::IpAddr;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(service_sessions))
        .routes(routes!(service_rejects))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `true`: only open sessions; `false`: only ended ones; absent: both.
    active: Option<bool>,
    service_id: Option<uuid::Uuid>,
    subscriber_id: Option<uuid::Uuid>,
    nas_id: Option<uuid::Uuid>,
    /// Framed-IP-Address, IPv4 or IPv6 (any spelling; compared in canonical form).
    #[param(value_type = Option<String>, schema_with = lastmile_api_types::inputs::ip_address, example = "100.64.0.10")]
    framed_ip: Option<IpAddr>,
    /// User-Name, exactly as the NAS sent it (no control characters).
    #[param(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    username: Option<String>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// List RADIUS sessions, oldest first.
#[utoipa::path(get, operation_id = "list_sessions", path = "/sessions", tag = "sessions", params(ListQuery),
    responses((status = 200, body = Page<RadiusSessionResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<RadiusSessionResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = SessionFilter {
        active: q.active,
        service_id: q.service_id.map(ServiceId),
        subscriber_id: q.subscriber_id.map(SubscriberId),
        nas_id: q.nas_id.map(NasId),
        framed_ip: q.framed_ip.map(|ip| ip.to_string()),
        username: q.username,
    };
    let items = st.app.list_sessions(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |s| s.id.0,
        Into::into,
    )))
}

/// Get a RADIUS session.
#[utoipa::path(get, operation_id = "get_session", path = "/sessions/{id}", tag = "sessions", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = RadiusSessionResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<RadiusSessionResponse>> {
    Ok(axum::Json(st.app.get_session(SessionId(id)).await?.into()))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ServiceSessionsQuery {
    /// `true`: only open sessions; `false`: only ended ones; absent: both.
    active: Option<bool>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// The RADIUS sessions of a service, oldest first.
#[utoipa::path(get, operation_id = "list_service_sessions", path = "/services/{id}/sessions", tag = "sessions",
    params(("id" = uuid::Uuid, Path), ServiceSessionsQuery),
    responses((status = 200, body = Page<RadiusSessionResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn service_sessions(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
    Query(q): Query<ServiceSessionsQuery>,
) -> ApiResult<axum::Json<Page<RadiusSessionResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = SessionFilter {
        active: q.active,
        ..SessionFilter::default()
    };
    let items = st.app.service_sessions(ServiceId(id), filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |s| s.id.0,
        Into::into,
    )))
}

/// The last Access-Rejects of a service (at most 10, oldest first): "why can't this
/// subscriber connect?". Kept in memory by the RADIUS server of the node that answers, so
/// another node (or a restart) shows others; empty when this process runs no RADIUS server.
#[utoipa::path(get, operation_id = "list_service_radius_rejects", path = "/services/{id}/radius-rejects", tag = "sessions",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<RadiusRejectResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn service_rejects(
    State(st): State<AppState>,
    _: Caller<perm::Read>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<Vec<RadiusRejectResponse>>> {
    let id = ServiceId(id);
    // 404 for a service that does not exist, as every other service route.
    st.app.get_service(id).await?;
    let rejects = st
        .radius
        .as_ref()
        .map(|m| m.last_rejects(id))
        .unwrap_or_default();
    Ok(axum::Json(
        rejects
            .into_iter()
            .map(|r| RadiusRejectResponse {
                at: r.at,
                nas_id: r.nas_id.0,
                nas_name: r.nas_name,
                reason: r.reason.as_str().to_string(),
                username: r.username,
            })
            .collect(),
    ))
}
