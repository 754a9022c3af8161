use crate::error::ApiResult;
use crate::extract::{Caller, IdPath, OptionalJson, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use lastmile_api_types::{BillingRunResponse, CreateBillingRun, InvoiceResponse, Page, Problem};
use lastmile_domain::auth::Permission;
use lastmile_domain::billing::invoice::InvoiceStatus;
use lastmile_domain::ids::{BillingRunId, InvoiceId, SubscriberId};
use lastmile_store::InvoiceFilter;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runs, start_run))
        .routes(routes!(get_run))
        .routes(routes!(list_invoices))
        .routes(routes!(get_invoice))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Billing runs, oldest first.
#[utoipa::path(get, path = "/billing-runs", tag = "billing", params(RunListQuery),
    responses((status = 200, body = Page<BillingRunResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_runs(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<RunListQuery>,
) -> ApiResult<axum::Json<Page<BillingRunResponse>>> {
    caller.require(Permission::ReadBilling)?;
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let items = st.app.list_billing_runs(page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |r| r.id.0,
        Into::into,
    )))
}

/// Start a billing run (or resume the unfinished one for that date). It runs in the
/// background; poll `GET /billing-runs/{id}` for progress.
#[utoipa::path(post, path = "/billing-runs", tag = "billing",
    request_body(content = Option<CreateBillingRun>),
    responses((status = 202, body = BillingRunResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn start_run(
    State(st): State<AppState>,
    caller: Caller,
    OptionalJson(body): OptionalJson<CreateBillingRun>,
) -> ApiResult<(StatusCode, axum::Json<BillingRunResponse>)> {
    caller.require(Permission::RunBilling)?;
    let as_of = body.as_of.unwrap_or_else(|| st.app.billing_today());
    let run = st.app.start_billing_run(as_of).await?;
    let fresh = st
        .billing_runs
        .lock()
        .map(|mut r| r.insert(run.id))
        .unwrap_or(false);
    if fresh {
        let (app, running, r) = (st.app.clone(), st.billing_runs.clone(), run.clone());
        tokio::spawn(async move {
            let id = r.id;
            if let Err(e) = app.execute_billing_run(r, &|_| {}).await {
                tracing::error!(run = %id, error = %e, "billing run stopped; start it again to resume");
            }
            if let Ok(mut set) = running.lock() {
                set.remove(&id);
            }
        });
    }
    Ok((StatusCode::ACCEPTED, axum::Json(run.into())))
}

/// A billing run with its progress and the subscribers it could not bill.
#[utoipa::path(get, path = "/billing-runs/{id}", tag = "billing",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = BillingRunResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_run(
    State(st): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<BillingRunResponse>> {
    caller.require(Permission::ReadBilling)?;
    Ok(axum::Json(
        st.app.get_billing_run(BillingRunId(id)).await?.into(),
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvoiceListQuery {
    subscriber_id: Option<uuid::Uuid>,
    status: Option<InvoiceStatus>,
    /// The billing period's first day (YYYY-MM-DD).
    #[param(value_type = Option<String>, format = Date)]
    period_start: Option<jiff::civil::Date>,
    limit: Option<u32>,
    cursor: Option<String>,
}

/// Invoices (without lines).
#[utoipa::path(get, path = "/invoices", tag = "billing", params(InvoiceListQuery),
    responses((status = 200, body = Page<InvoiceResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_invoices(
    State(st): State<AppState>,
    caller: Caller,
    Query(q): Query<InvoiceListQuery>,
) -> ApiResult<axum::Json<Page<InvoiceResponse>>> {
    caller.require(Permission::ReadBilling)?;
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = InvoiceFilter {
        subscriber_id: q.subscriber_id.map(SubscriberId),
        status: q.status,
        period_start: q.period_start,
    };
    let items = st.app.list_invoices(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |i| i.id.0,
        |i| InvoiceResponse::new(i, false),
    )))
}

/// An invoice with its lines.
#[utoipa::path(get, path = "/invoices/{id}", tag = "billing", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = InvoiceResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_invoice(
    State(st): State<AppState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<InvoiceResponse>> {
    caller.require(Permission::ReadBilling)?;
    Ok(axum::Json(InvoiceResponse::new(
        st.app.get_invoice(InvoiceId(id)).await?,
        true,
    )))
}
