use crate::error::ApiResult;
use crate::extract::{perm, Caller, IdPath, Json, OptionalJson, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use lastmile_api_types::{
    BillingRunResponse, CreateBillingRun, InvoiceResponse, Page, Problem, VoidInvoiceBody,
};
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
        .routes(routes!(issue_invoice))
        .routes(routes!(void_invoice))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct RunListQuery {
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// Billing runs, oldest first.
#[utoipa::path(get, path = "/billing-runs", tag = "billing", params(RunListQuery),
    responses((status = 200, body = Page<BillingRunResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_runs(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    Query(q): Query<RunListQuery>,
) -> ApiResult<axum::Json<Page<BillingRunResponse>>> {
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
    _: Caller<perm::RunBilling>,
    OptionalJson(body): OptionalJson<CreateBillingRun>,
) -> ApiResult<(StatusCode, axum::Json<BillingRunResponse>)> {
    let as_of = body.as_of.unwrap_or_else(|| st.app.billing_today());
    let run = st
        .app
        .start_billing_run(as_of, body.subscriber_id.map(SubscriberId))
        .await?;
    let fresh = st
        .billing_runs
        .lock()
        .map(|mut r| r.insert(run.id))
        .unwrap_or(false);
    if fresh {
        let (app, running, r) = (st.app.clone(), st.billing_runs.clone(), run.clone());
        let stopped = st.billing_run_stopped.clone();
        tokio::spawn(async move {
            let id = r.id;
            if let Err(e) = app.execute_billing_run(r, &|_| {}).await {
                tracing::error!(run = %id, error = %e, "billing run failed; starting a run for its date again invoices what is missing");
            }
            if let Ok(mut set) = running.lock() {
                set.remove(&id);
            }
            stopped.notify_waiters();
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
    _: Caller<perm::ReadBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<BillingRunResponse>> {
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
    #[serde(default, deserialize_with = "lastmile_api_types::dates::optional")]
    period_start: Option<jiff::civil::Date>,
    /// Exactly this invoice number.
    #[param(pattern = r"^[^\x00-\x1F\x7F-\x9F]*$")]
    number: Option<String>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// Invoices (without lines).
#[utoipa::path(get, path = "/invoices", tag = "billing", params(InvoiceListQuery),
    responses((status = 200, body = Page<InvoiceResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_invoices(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    Query(q): Query<InvoiceListQuery>,
) -> ApiResult<axum::Json<Page<InvoiceResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = InvoiceFilter {
        subscriber_id: q.subscriber_id.map(SubscriberId),
        status: q.status,
        period_start: q.period_start,
        number: q.number,
    };
    let items = st.app.list_invoices(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |i| i.id.0,
        |i| InvoiceResponse::new(i, false),
    )))
}

/// An invoice with its lines; with `Accept: text/html`, the document fit to print or mail.
#[utoipa::path(get, path = "/invoices/{id}", tag = "billing", params(("id" = uuid::Uuid, Path)),
    responses((status = 200,
               description = "The invoice with its lines (JSON, the default); with \
                              `Accept: text/html`, the document fit to print or mail",
               content((InvoiceResponse = "application/json"), (String = "text/html"))),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_invoice(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    headers: HeaderMap,
    IdPath(id): IdPath,
) -> ApiResult<Response> {
    let inv = st.app.get_invoice(InvoiceId(id)).await?;
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html {
        let html = crate::invoice_html::render_for(&st.app, &inv).await?;
        return Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response());
    }
    Ok(axum::Json(InvoiceResponse::new(inv, true)).into_response())
}

/// Issue a draft: it gets its number (gap-free) and due date now.
#[utoipa::path(post, path = "/invoices/{id}/issue", tag = "billing",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = InvoiceResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn issue_invoice(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<InvoiceResponse>> {
    let inv = st.app.issue_invoice(&caller.actor, InvoiceId(id)).await?;
    Ok(axum::Json(InvoiceResponse::new(inv, true)))
}

/// Void a draft, or an issued invoice nothing was paid or credited against. Its charges are
/// billed again by the next run; to forgive them, issue a credit note instead.
#[utoipa::path(post, path = "/invoices/{id}/void", tag = "billing",
    params(("id" = uuid::Uuid, Path)), request_body = VoidInvoiceBody,
    responses((status = 200, body = InvoiceResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn void_invoice(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    IdPath(id): IdPath,
    Json(body): Json<VoidInvoiceBody>,
) -> ApiResult<axum::Json<InvoiceResponse>> {
    let inv = st
        .app
        .void_invoice(&caller.actor, InvoiceId(id), &body.reason)
        .await?;
    Ok(axum::Json(InvoiceResponse::new(inv, true)))
}
