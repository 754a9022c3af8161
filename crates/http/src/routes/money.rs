//! Payments, credit notes, refunds, the ledger, billing configuration (tax zones, dunning
//! policies, discounts) and dunning runs.

use crate::error::ApiResult;
use crate::extract::{perm, Caller, CsvBody, IdPath, Json, OptionalJson, Query};
use crate::pagination;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use lastmile_api_types::*;
use lastmile_app::payment_import::RowOutcome;
use lastmile_domain::ids::*;
use lastmile_store::{CreditNoteFilter, PaymentFilter};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_payments, create_payment))
        .routes(routes!(get_payment))
        .routes(routes!(import_payments))
        .routes(routes!(list_credit_notes, create_credit_note))
        .routes(routes!(get_credit_note))
        .routes(routes!(ledger))
        .routes(routes!(list_refunds, create_refund))
        .routes(routes!(list_discounts, create_discount))
        .routes(routes!(end_discount))
        .routes(routes!(list_tax_zones, create_tax_zone))
        .routes(routes!(get_tax_zone, update_tax_zone))
        .routes(routes!(list_dunning_policies, create_dunning_policy))
        .routes(routes!(get_dunning_policy, update_dunning_policy))
        .routes(routes!(run_dunning))
        .routes(routes!(get_billing_settings, put_billing_settings))
}

fn settings_response(
    st: &AppState,
    s: lastmile_app::billing::BillingSettings,
) -> BillingSettingsResponse {
    let tz = st
        .app
        .config
        .billing
        .time_zone
        .iana_name()
        .unwrap_or("UTC")
        .to_string();
    BillingSettingsResponse::new(s, tz)
}

/// The billing settings every node uses (stored ones, else the start-up defaults).
#[utoipa::path(get, path = "/settings/billing", tag = "billing",
    responses((status = 200, body = BillingSettingsResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_billing_settings(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
) -> ApiResult<axum::Json<BillingSettingsResponse>> {
    let s = st.app.billing_settings().await?;
    Ok(axum::Json(settings_response(&st, s)))
}

/// Replace the billing settings: payment terms, document prefixes, drafts or direct issue,
/// downgrade billing, and the issuer printed on invoices. Sequences go on where they were.
#[utoipa::path(put, path = "/settings/billing", tag = "billing", request_body = BillingSettingsBody,
    responses((status = 200, body = BillingSettingsResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn put_billing_settings(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    Json(body): Json<BillingSettingsBody>,
) -> ApiResult<axum::Json<BillingSettingsResponse>> {
    let new = lastmile_app::billing::BillingSettings {
        payment_terms_days: body.payment_terms_days,
        invoice_prefix: body.invoice_prefix,
        credit_note_prefix: body.credit_note_prefix,
        issue_invoices: body.issue_invoices,
        downgrades: body.downgrades,
        issuer: body.issuer,
        revision: 0,
        updated_at: None,
    };
    let s = st.app.update_billing_settings(&caller.actor, new).await?;
    Ok(axum::Json(settings_response(&st, s)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PaymentListQuery {
    subscriber_id: Option<uuid::Uuid>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

/// Payments, oldest recorded first.
#[utoipa::path(get, path = "/payments", tag = "billing", params(PaymentListQuery),
    responses((status = 200, body = Page<PaymentResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_payments(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    Query(q): Query<PaymentListQuery>,
) -> ApiResult<axum::Json<Page<PaymentResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = PaymentFilter {
        subscriber_id: q.subscriber_id.map(SubscriberId),
    };
    let items = st.app.list_payments(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |(p, _)| p.id.0,
        |(p, u)| PaymentResponse::new(p, u),
    )))
}

/// Record a payment. It pays the named invoices first, then the oldest open ones; what is
/// left is credit that pays the next invoices. If it clears everything overdue, services
/// suspended by dunning are resumed in the same transaction.
#[utoipa::path(post, path = "/payments", tag = "billing", request_body = CreatePayment,
    responses((status = 201, body = PaymentResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_payment(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    Json(body): Json<CreatePayment>,
) -> ApiResult<(StatusCode, axum::Json<PaymentResponse>)> {
    let o = st.app.record_payment(&caller.actor, body).await?;
    let mut r = PaymentResponse::new(o.payment, o.unallocated_minor);
    r.allocations = Some(o.allocations.into_iter().map(Into::into).collect());
    r.resumed_services = Some(o.resumed_services.into_iter().map(|s| s.0).collect());
    Ok((StatusCode::CREATED, axum::Json(r)))
}

#[utoipa::path(get, path = "/payments/{id}", tag = "billing", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = PaymentResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_payment(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<PaymentResponse>> {
    let p = st.app.get_payment(PaymentId(id)).await?;
    let unallocated = st.app.payment_unallocated(&p).await?;
    Ok(axum::Json(PaymentResponse::new(p, unallocated)))
}

/// Import a bank statement (CSV with a header row: date, amount, reference, and optionally
/// transaction_id, invoice_number, subscriber_number, payer, method; `,` or `;`). Each row is
/// matched by an invoice number, else a subscriber number, in its columns or reference text.
/// Every row gets a result; re-importing the same file records nothing twice.
#[utoipa::path(post, path = "/payments/import", tag = "billing",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn import_payments(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    CsvBody(data): CsvBody,
) -> ApiResult<axum::Json<ImportResponse>> {
    let rows = st.app.import_payments(&caller.actor, &data).await?;
    let mut r = ImportResponse {
        matched: 0,
        unmatched: 0,
        duplicate: 0,
        invalid: 0,
        rows: Vec::with_capacity(rows.len()),
    };
    for row in rows {
        let outcome = match row.outcome {
            RowOutcome::Matched => {
                r.matched += 1;
                ImportOutcome::Matched
            }
            RowOutcome::Unmatched => {
                r.unmatched += 1;
                ImportOutcome::Unmatched
            }
            RowOutcome::Duplicate => {
                r.duplicate += 1;
                ImportOutcome::Duplicate
            }
            RowOutcome::Invalid => {
                r.invalid += 1;
                ImportOutcome::Invalid
            }
        };
        r.rows.push(ImportRowResult {
            line: row.line,
            outcome,
            payment_id: row.payment_id,
            subscriber_id: row.subscriber_id,
            amount_minor: row.amount_minor,
            field: row.field,
            message: row.message,
        });
    }
    Ok(axum::Json(r))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CreditNoteListQuery {
    subscriber_id: Option<uuid::Uuid>,
    invoice_id: Option<uuid::Uuid>,
    /// Page size: 1 to 500, default 50.
    #[param(minimum = 1, maximum = 500, example = 50)]
    limit: Option<u32>,
    /// Where the previous page ended: its `next_cursor` (opaque); empty or absent: the first
    /// page.
    #[param(pattern = r"^(?:[A-Za-z0-9_-]{21}[AQgw])?$")]
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/credit-notes", tag = "billing", params(CreditNoteListQuery),
    responses((status = 200, body = Page<CreditNoteResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_credit_notes(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    Query(q): Query<CreditNoteListQuery>,
) -> ApiResult<axum::Json<Page<CreditNoteResponse>>> {
    let (page, limit) = pagination::page(q.limit, q.cursor.as_deref())?;
    let filter = CreditNoteFilter {
        subscriber_id: q.subscriber_id.map(SubscriberId),
        invoice_id: q.invoice_id.map(InvoiceId),
    };
    let items = st.app.list_credit_notes(&filter, page).await?;
    Ok(axum::Json(pagination::body(
        items,
        limit,
        |c| c.id.0,
        Into::into,
    )))
}

/// Credit an issued invoice, in full (no amount) or in part, with a reason: the only way to
/// correct an issued invoice. The credit pays what is open on that invoice first.
#[utoipa::path(post, path = "/credit-notes", tag = "billing", request_body = CreateCreditNote,
    responses((status = 201, body = CreditNoteResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_credit_note(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    Json(body): Json<CreateCreditNote>,
) -> ApiResult<(StatusCode, axum::Json<CreditNoteResponse>)> {
    let c = st.app.create_credit_note(&caller.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(c.into())))
}

#[utoipa::path(get, path = "/credit-notes/{id}", tag = "billing",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = CreditNoteResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_credit_note(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<CreditNoteResponse>> {
    Ok(axum::Json(
        st.app.get_credit_note(CreditNoteId(id)).await?.into(),
    ))
}

/// The subscriber's ledger: every invoice, credit note, payment and refund with the running
/// balance, and the balance (Σ invoices − Σ credit notes − Σ payments + Σ refunds).
#[utoipa::path(get, path = "/subscribers/{id}/ledger", tag = "billing",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = LedgerResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn ledger(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<LedgerResponse>> {
    // The app computes every sum (checked); the handler only shapes the response.
    let l = st.app.ledger(SubscriberId(id)).await?;
    let entries = l
        .entries
        .into_iter()
        .zip(l.balances)
        .map(|(e, balance_minor)| LedgerEntryResponse {
            kind: e.kind,
            document_id: e.document_id,
            label: e.label,
            at: e.at,
            amount_minor: e.amount_minor,
            balance_minor,
        })
        .collect();
    Ok(axum::Json(LedgerResponse {
        subscriber_id: id,
        currency: l.account.currency.to_string(),
        balance_minor: l.balance_minor,
        open_minor: l.open_minor,
        overdue_minor: l.overdue_minor,
        credit_minor: l.credit_minor,
        entries,
    }))
}

#[utoipa::path(get, path = "/subscribers/{id}/refunds", tag = "billing",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<RefundResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_refunds(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<Vec<RefundResponse>>> {
    let sub = SubscriberId(id);
    st.app.get_subscriber(sub).await?;
    Ok(axum::Json(
        st.app
            .list_refunds(sub)
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// Pay money back out of the subscriber's credit balance.
#[utoipa::path(post, path = "/subscribers/{id}/refunds", tag = "billing",
    params(("id" = uuid::Uuid, Path)), request_body = CreateRefund,
    responses((status = 201, body = RefundResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_refund(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    IdPath(id): IdPath,
    Json(body): Json<CreateRefund>,
) -> ApiResult<(StatusCode, axum::Json<RefundResponse>)> {
    let r = st
        .app
        .create_refund(&caller.actor, SubscriberId(id), body)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(r.into())))
}

#[utoipa::path(get, path = "/subscribers/{id}/discounts", tag = "billing",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = Vec<DiscountResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_discounts(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<Vec<DiscountResponse>>> {
    Ok(axum::Json(
        st.app
            .list_discounts(SubscriberId(id))
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// A percentage or fixed discount on one service or all of the subscriber's, from a date,
/// optionally until one. Applied by rating; back-dating it corrects issued periods.
#[utoipa::path(post, path = "/subscribers/{id}/discounts", tag = "billing",
    params(("id" = uuid::Uuid, Path)), request_body = CreateDiscount,
    responses((status = 201, body = DiscountResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_discount(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    IdPath(id): IdPath,
    Json(body): Json<CreateDiscount>,
) -> ApiResult<(StatusCode, axum::Json<DiscountResponse>)> {
    let d = st
        .app
        .create_discount(&caller.actor, SubscriberId(id), body)
        .await?;
    Ok((StatusCode::CREATED, axum::Json(d.into())))
}

/// End a discount on a date (exclusive).
#[utoipa::path(post, path = "/discounts/{id}/end", tag = "billing",
    params(("id" = uuid::Uuid, Path)), request_body = EndDiscount,
    responses((status = 200, body = DiscountResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn end_discount(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    IdPath(id): IdPath,
    Json(body): Json<EndDiscount>,
) -> ApiResult<axum::Json<DiscountResponse>> {
    let d = st
        .app
        .end_discount(&caller.actor, DiscountId(id), body)
        .await?;
    Ok(axum::Json(d.into()))
}

#[utoipa::path(get, path = "/tax-zones", tag = "billing",
    responses((status = 200, body = Vec<TaxZoneResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_tax_zones(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
) -> ApiResult<axum::Json<Vec<TaxZoneResponse>>> {
    Ok(axum::Json(
        st.app
            .list_tax_zones()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// A tax zone: the taxes (per tax class) of the subscribers whose `tax_zone` is its code.
#[utoipa::path(post, path = "/tax-zones", tag = "billing", request_body = TaxZoneBody,
    responses((status = 201, body = TaxZoneResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_tax_zone(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    Json(body): Json<TaxZoneBody>,
) -> ApiResult<(StatusCode, axum::Json<TaxZoneResponse>)> {
    let z = st.app.create_tax_zone(&caller.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(z.into())))
}

#[utoipa::path(get, path = "/tax-zones/{id}", tag = "billing", params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = TaxZoneResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_tax_zone(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<TaxZoneResponse>> {
    Ok(axum::Json(st.app.get_tax_zone(TaxZoneId(id)).await?.into()))
}

/// Replace a tax zone. Issued invoices keep their tax; new lines use the new rates.
#[utoipa::path(put, path = "/tax-zones/{id}", tag = "billing", params(("id" = uuid::Uuid, Path)),
    request_body = TaxZoneBody,
    responses((status = 200, body = TaxZoneResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update_tax_zone(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    IdPath(id): IdPath,
    Json(body): Json<TaxZoneBody>,
) -> ApiResult<axum::Json<TaxZoneResponse>> {
    let z = st
        .app
        .update_tax_zone(&caller.actor, TaxZoneId(id), body)
        .await?;
    Ok(axum::Json(z.into()))
}

#[utoipa::path(get, path = "/dunning-policies", tag = "billing",
    responses((status = 200, body = Vec<DunningPolicyResponse>),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_dunning_policies(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
) -> ApiResult<axum::Json<Vec<DunningPolicyResponse>>> {
    Ok(axum::Json(
        st.app
            .list_dunning_policies()
            .await?
            .into_iter()
            .map(Into::into)
            .collect(),
    ))
}

/// A dunning policy: what happens as an invoice ages past due (remind, suspend, terminate).
#[utoipa::path(post, path = "/dunning-policies", tag = "billing", request_body = DunningPolicyBody,
    responses((status = 201, body = DunningPolicyResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_dunning_policy(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    Json(body): Json<DunningPolicyBody>,
) -> ApiResult<(StatusCode, axum::Json<DunningPolicyResponse>)> {
    let p = st.app.create_dunning_policy(&caller.actor, body).await?;
    Ok((StatusCode::CREATED, axum::Json(p.into())))
}

#[utoipa::path(get, path = "/dunning-policies/{id}", tag = "billing",
    params(("id" = uuid::Uuid, Path)),
    responses((status = 200, body = DunningPolicyResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_dunning_policy(
    State(st): State<AppState>,
    _: Caller<perm::ReadBilling>,
    IdPath(id): IdPath,
) -> ApiResult<axum::Json<DunningPolicyResponse>> {
    Ok(axum::Json(
        st.app.get_dunning_policy(DunningPolicyId(id)).await?.into(),
    ))
}

#[utoipa::path(put, path = "/dunning-policies/{id}", tag = "billing",
    params(("id" = uuid::Uuid, Path)), request_body = DunningPolicyBody,
    responses((status = 200, body = DunningPolicyResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn update_dunning_policy(
    State(st): State<AppState>,
    caller: Caller<perm::WriteBilling>,
    IdPath(id): IdPath,
    Json(body): Json<DunningPolicyBody>,
) -> ApiResult<axum::Json<DunningPolicyResponse>> {
    let p = st
        .app
        .update_dunning_policy(&caller.actor, DunningPolicyId(id), body)
        .await?;
    Ok(axum::Json(p.into()))
}

/// Run the dunning pass now (the scheduler in `serve` runs it daily after billing).
#[utoipa::path(post, path = "/dunning-runs", tag = "billing",
    request_body(content = Option<CreateDunningRun>),
    responses((status = 200, body = DunningRunResponse),
              (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn run_dunning(
    State(st): State<AppState>,
    _: Caller<perm::RunBilling>,
    OptionalJson(body): OptionalJson<CreateDunningRun>,
) -> ApiResult<axum::Json<DunningRunResponse>> {
    let as_of = body.as_of.unwrap_or_else(|| st.app.billing_today());
    let r = st.app.run_dunning(as_of).await?;
    Ok(axum::Json(DunningRunResponse {
        as_of,
        subscribers_checked: r.subscribers_checked,
        reminders: r.reminders,
        suspensions: r.suspensions,
        terminations: r.terminations,
        errors: r.errors,
    }))
}
