//! Invoices and billing runs.

use super::rating::{ChargeKind, DraftLine};
use super::tax::AppliedTax;
use crate::ids::{BillingRunId, InvoiceId, InvoiceLineId, PlanVersionId, ServiceId, SubscriberId};
use crate::validate::Currency;
use jiff::civil::Date;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum InvoiceStatus {
    Draft,
    /// Numbered and immutable; corrected only by credit notes. Something is still open on
    /// it: owed (positive total) or, for a negative total, credit not used yet.
    Issued,
    /// Settled: fully paid (positive total), its credit used up by other invoices or
    /// refunds (negative total), or nothing to pay at all (zero total, paid when issued).
    Paid,
    Void,
}

/// The status an invoice takes when it is issued: a zero invoice has nothing to settle, so it
/// is paid at once; any other stays issued until allocations settle it (a negative one is a
/// credit that pays the subscriber's other invoices, oldest first, like a credit note).
pub fn status_at_issue(total_minor: i64) -> InvoiceStatus {
    if total_minor == 0 {
        InvoiceStatus::Paid
    } else {
        InvoiceStatus::Issued
    }
}

impl InvoiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Draft => "draft",
            Self::Issued => "issued",
            Self::Paid => "paid",
            Self::Void => "void",
        }
    }
}

impl FromStr for InvoiceStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "draft" => Ok(Self::Draft),
            "issued" => Ok(Self::Issued),
            "paid" => Ok(Self::Paid),
            "void" => Ok(Self::Void),
            o => Err(format!("unknown invoice status `{o}`")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub id: InvoiceLineId,
    pub invoice_id: InvoiceId,
    pub subscriber_id: SubscriberId,
    /// 1, 2, 3… within the invoice.
    pub position: i32,
    pub description: String,
    /// What the line is for; rating compares invoiced and expected amounts by these.
    pub service_id: ServiceId,
    pub charge_kind: ChargeKind,
    pub charge_period_start: Date,
    pub plan_version_id: PlanVersionId,
    /// True for a line that corrects an earlier invoice.
    pub correction: bool,
    /// Days charged (recurring) out of `period_days`.
    pub days: i64,
    pub period_days: i64,
    /// The rated amount, in the plan's price terms (tax included when the invoice's prices
    /// include tax). Rating compares these.
    pub amount_minor: i64,
    /// Tax of this line, rounded once per tax (see `tax::tax_line`).
    pub tax_minor: i64,
    pub taxes: Vec<AppliedTax>,
}

impl InvoiceLine {
    /// The line without tax.
    pub fn net_minor(&self, prices_include_tax: bool) -> i64 {
        if prices_include_tax {
            self.amount_minor - self.tax_minor
        } else {
            self.amount_minor
        }
    }

    /// The line with tax.
    pub fn gross_minor(&self, prices_include_tax: bool) -> i64 {
        self.net_minor(prices_include_tax) + self.tax_minor
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub id: InvoiceId,
    pub subscriber_id: SubscriberId,
    /// Gap-free per issuer, assigned when issued (`INV-000123`); `None` while a draft.
    pub number: Option<String>,
    pub status: InvoiceStatus,
    pub currency: Currency,
    /// The billing period it was issued for (recurring charges in advance).
    pub period_start: Date,
    pub period_end: Date,
    pub created_at: Timestamp,
    pub issued_at: Option<Timestamp>,
    pub due_date: Option<Date>,
    /// Σ lines without tax.
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    /// What the subscriber owes for it: subtotal + tax.
    pub total_minor: i64,
    pub prices_include_tax: bool,
    pub billing_run_id: Option<BillingRunId>,
    pub voided_at: Option<Timestamp>,
    pub void_reason: Option<String>,
    pub lines: Vec<InvoiceLine>,
}

/// An invoice to create: when `issue` is set the store numbers it in the same transaction,
/// else it is a draft.
#[derive(Clone, Debug)]
pub struct NewInvoice {
    pub id: InvoiceId,
    pub subscriber_id: SubscriberId,
    pub currency: Currency,
    pub period_start: Date,
    pub period_end: Date,
    pub created_at: Timestamp,
    /// Issue at once with this due date, or `None` for a draft.
    pub issue: Option<Date>,
    pub prices_include_tax: bool,
    pub billing_run_id: Option<BillingRunId>,
    pub lines: Vec<InvoiceLine>,
}

impl NewInvoice {
    pub fn subtotal_minor(&self) -> i64 {
        self.totals().map_or(0, |t| t.0)
    }

    pub fn tax_minor(&self) -> i64 {
        self.totals().map_or(0, |t| t.1)
    }

    pub fn total_minor(&self) -> i64 {
        self.totals().map_or(0, |t| t.2)
    }

    /// Subtotal, tax and total, or `None` when a sum does not fit in `i64`. Rating checks this
    /// before an invoice is written, so a stored invoice always has exact totals.
    pub fn totals(&self) -> Option<(i64, i64, i64)> {
        let mut subtotal: i64 = 0;
        let mut tax: i64 = 0;
        for l in &self.lines {
            let net = if self.prices_include_tax {
                l.amount_minor.checked_sub(l.tax_minor)?
            } else {
                l.amount_minor
            };
            subtotal = subtotal.checked_add(net)?;
            tax = tax.checked_add(l.tax_minor)?;
        }
        Some((subtotal, tax, subtotal.checked_add(tax)?))
    }
}

/// The stored line for a draft line, with a human description.
pub fn line_from_draft(
    invoice_id: InvoiceId,
    subscriber_id: SubscriberId,
    position: i32,
    d: &DraftLine,
    plan_name: &str,
) -> InvoiceLine {
    // The period as people read it: first and last day.
    let last = d.period_end.yesterday().unwrap_or(d.period_end);
    let period = format!("{} to {last}", d.key.period_start);
    let what = match d.key.kind {
        ChargeKind::Recurring if d.correction => match d.previous_days {
            Some(before) if d.days == 0 => format!(
                "Correction {plan_name}, {period}: {before} of {} days no longer billed",
                d.period_days
            ),
            Some(before) => format!(
                "Correction {plan_name}, {period}: {before} → {} of {} days",
                d.days, d.period_days
            ),
            None if d.days == 0 => format!(
                "Correction {plan_name}, {period}: no longer billed (of {} days)",
                d.period_days
            ),
            None => format!(
                "Correction {plan_name}, {period}: now {} of {} days",
                d.days, d.period_days
            ),
        },
        ChargeKind::Recurring => format!(
            "{plan_name}, {period}: {} of {} days",
            d.days, d.period_days
        ),
        ChargeKind::SetupFee if d.correction => format!("Correction setup fee, {plan_name}"),
        ChargeKind::SetupFee => format!("Setup fee, {plan_name}"),
        ChargeKind::EarlyTermination if d.correction => {
            format!("Correction early termination fee, {plan_name}")
        }
        ChargeKind::EarlyTermination => format!("Early termination fee, {plan_name}"),
        ChargeKind::Discount if d.correction => {
            format!("Correction discount, {plan_name}, {period}")
        }
        ChargeKind::Discount => format!("Discount, {plan_name}, {period}"),
    };
    InvoiceLine {
        id: InvoiceLineId::generate(),
        invoice_id,
        subscriber_id,
        position,
        description: what,
        service_id: d.key.service_id,
        charge_kind: d.key.kind,
        charge_period_start: d.key.period_start,
        plan_version_id: d.key.plan_version_id,
        correction: d.correction,
        days: d.days,
        period_days: d.period_days,
        amount_minor: d.amount_minor,
        tax_minor: 0,
        taxes: Vec::new(),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BillingRunStatus {
    Running,
    Completed,
    /// Stopped by an error it cannot get past (the run's `failure` says which); what its
    /// committed batches invoiced stays. Starting a run for the same date again goes over
    /// every subscriber once more and invoices only what is still missing.
    Failed,
}

impl BillingRunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

impl FromStr for BillingRunStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "running" => Ok(Self::Running),
            "completed" => Ok(Self::Completed),
            "failed" => Ok(Self::Failed),
            o => Err(format!("unknown billing run status `{o}`")),
        }
    }
}

/// A subscriber a run could not invoice, and why; the run goes on with the others.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BillingRunError {
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub subscriber_id: SubscriberId,
    pub message: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingRun {
    pub id: BillingRunId,
    pub as_of: Date,
    pub status: BillingRunStatus,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    /// Subscribers are processed in id order; everything up to here is done.
    pub cursor: Option<SubscriberId>,
    pub subscribers_processed: i64,
    pub invoices_created: i64,
    pub errors: Vec<BillingRunError>,
    /// A run for one subscriber only; `None`: every subscriber.
    pub subscriber_id: Option<SubscriberId>,
    /// Why a failed run stopped.
    pub failure: Option<String>,
}
