use crate::error::ApiResult;
use crate::extract::{perm, Caller, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use jiff::Timestamp;
use lastmile_api_types::{AuditEventResponse, Page, Problem};
use lastmile_domain::ids::SubscriberId;
use lastmile_store::AuditFilter;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `subscriber`, `plan`, `service`, `nas`, `provisioning_job`, `operator`.
    #[param(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    entity_type: Option<String>,
    /// No control characters.
    #[param(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    entity_id: Option<String>,
    /// `operator:<id>` or `system:<component>`.
    #[param(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    actor_id: Option<String>,
    subscriber_id: Option<uuid::Uuid>,
    /// Inclusive, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    from: Option<Timestamp>,
    /// Exclusive, RFC 3339.
    #[param(value_type = Option<String>, format = DateTime)]
    to: Option<Timestamp>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// The audit trail: who did what to which record, when, with before/after.
#[utoipa::path(get, operation_id = "list_audit_events", path = "/audit-events", tag = "audit-events", params(ListQuery),
    responses((status = 200, body = Page<AuditEventResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(st): State<AppState>,
    _: Caller<perm::ReadAudit>,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<Page<AuditEventResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = AuditFilter {
        entity_type: q.entity_type,
        entity_id: q.entity_id,
        actor_id: q.actor_id,
        subscriber_id: q.subscriber_id.map(SubscriberId),
        from: q.from,
        to: q.to,
    };
    let items = st.app.list_audit_events(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |a| a.id.0,
        Into::into,
    )))
}
