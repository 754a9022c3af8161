use crate::requests::FreeWindowBody;
use crate::requests::SuspendedActionBody;
use jiff::Timestamp;
use lastmile_domain::audit::AuditEvent;
use lastmile_domain::job::{JobKind, JobStatus, ProvisioningJob};
use lastmile_domain::nas::{Nas, SuspendedAction, VendorProfile};
use lastmile_domain::plan::{
    BillingInterval, Burst, CapPolicy, FreeWindow, Plan, PlanStatus, PlanTerms, PlanVersion,
};
use lastmile_domain::radius::{RadiusSession, SessionEnd};
use lastmile_domain::service::{AccessKind, Service, ServiceStatus, SuspensionCause};
use lastmile_domain::subscriber::{Address, Subscriber, SubscriberStatus};
use lastmile_domain::timeline::{EventKind, TimelineEvent};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

/// One page of a list. Pass `next_cursor` as `cursor` to get the next page; absent on the last.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct SubscriberResponse {
    pub id: Uuid,
    pub number: String,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub billing_address: Address,
    pub currency: String,
    pub tax_zone: Option<String>,
    pub dunning_policy: Option<String>,
    pub billing_day: u8,
    pub status: SubscriberStatus,
    #[schema(value_type = Object)]
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub revision: i64,
}

impl From<Subscriber> for SubscriberResponse {
    fn from(s: Subscriber) -> Self {
        Self {
            id: s.id.0,
            number: s.number.to_string(),
            name: s.name,
            email: s.email,
            phone: s.phone,
            billing_address: s.billing_address,
            currency: s.currency.to_string(),
            tax_zone: s.tax_zone,
            dunning_policy: s.dunning_policy,
            billing_day: s.billing_day.get(),
            status: s.status,
            custom_fields: s.custom_fields,
            created_at: s.created_at,
            updated_at: s.updated_at,
            revision: s.revision,
        }
    }
}

/// `HH:MM` for a minute of the day.
pub fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanTermsResponse {
    pub download_kbps: u32,
    pub upload_kbps: u32,
    pub burst: Option<Burst>,
    pub price_minor: i64,
    pub currency: String,
    pub billing_interval: BillingInterval,
    pub setup_fee_minor: i64,
    pub data_cap_bytes: Option<i64>,
    pub cap_policy: CapPolicy,
    pub free_window: Option<FreeWindowBody>,
    pub contract_months: u32,
    pub early_termination_fee_minor: i64,
    pub tax_class: String,
}

impl From<PlanTerms> for PlanTermsResponse {
    fn from(t: PlanTerms) -> Self {
        Self {
            download_kbps: t.download_kbps,
            upload_kbps: t.upload_kbps,
            burst: t.burst,
            price_minor: t.price_minor,
            currency: t.currency.to_string(),
            billing_interval: t.billing_interval,
            setup_fee_minor: t.setup_fee_minor,
            data_cap_bytes: t.data_cap_bytes,
            cap_policy: t.cap_policy,
            free_window: t.free_window.map(
                |FreeWindow {
                     start_minute,
                     end_minute,
                 }| {
                    FreeWindowBody {
                        start: hhmm(start_minute),
                        end: hhmm(end_minute),
                    }
                },
            ),
            contract_months: t.contract_months,
            early_termination_fee_minor: t.early_termination_fee_minor,
            tax_class: t.tax_class,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanVersionResponse {
    pub id: Uuid,
    pub plan_id: Uuid,
    pub version: i32,
    pub terms: PlanTermsResponse,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<PlanVersion> for PlanVersionResponse {
    fn from(v: PlanVersion) -> Self {
        Self {
            id: v.id.0,
            plan_id: v.plan_id.0,
            version: v.version,
            terms: v.terms.into(),
            created_at: v.created_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PlanResponse {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub status: PlanStatus,
    /// The current version: what new services and plan changes get.
    pub current_version: PlanVersionResponse,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub revision: i64,
}

impl From<Plan> for PlanResponse {
    fn from(p: Plan) -> Self {
        Self {
            id: p.id.0,
            code: p.code,
            name: p.name,
            status: p.status,
            current_version: p.current.into(),
            created_at: p.created_at,
            updated_at: p.updated_at,
            revision: p.revision,
        }
    }
}

/// A NAS as the API shows it: secrets are write-only.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct NasResponse {
    pub id: Uuid,
    pub name: String,
    pub ip: String,
    pub vendor: VendorProfile,
    pub coa_port: u16,
    pub api_url: Option<String>,
    pub api_username: Option<String>,
    pub has_api_password: bool,
    pub require_message_authenticator: bool,
    /// Seconds; 0: none sent.
    pub interim_interval_secs: u32,
    pub session_timeout_secs: Option<u32>,
    pub suspended_action: SuspendedActionBody,
    pub stale_session_multiplier: u32,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub revision: i64,
}

impl From<Nas> for NasResponse {
    fn from(n: Nas) -> Self {
        Self {
            id: n.id.0,
            name: n.name,
            ip: n.ip.to_string(),
            vendor: n.vendor,
            coa_port: n.coa_port,
            api_url: n.api_url,
            api_username: n.api_username,
            has_api_password: n.api_password_ciphertext.is_some(),
            require_message_authenticator: n.require_message_authenticator,
            interim_interval_secs: n.interim_interval_secs,
            session_timeout_secs: n.session_timeout_secs,
            suspended_action: n.suspended_action.into(),
            stale_session_multiplier: n.stale_session_multiplier,
            created_at: n.created_at,
            updated_at: n.updated_at,
            revision: n.revision,
        }
    }
}

impl From<SuspendedAction> for SuspendedActionBody {
    fn from(a: SuspendedAction) -> Self {
        match a {
            SuspendedAction::Reject { reply_message } => Self::Reject { reply_message },
            SuspendedAction::WalledGarden { address_list, pool } => {
                Self::WalledGarden { address_list, pool }
            }
        }
    }
}

/// A service as the API shows it: the password is write-only.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceResponse {
    pub id: Uuid,
    pub subscriber_id: Uuid,
    pub plan_id: Uuid,
    pub plan_version_id: Uuid,
    pub status: ServiceStatus,
    pub suspension_cause: Option<SuspensionCause>,
    pub service_address: Address,
    pub access_kind: AccessKind,
    pub username: Option<String>,
    pub has_password: bool,
    pub mac_address: Option<String>,
    pub circuit_id: Option<String>,
    pub static_ip: Option<String>,
    pub ip_pool: Option<String>,
    pub nas_id: Option<Uuid>,
    /// Sessions allowed at once; 0: no limit.
    pub simultaneous_use: u32,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub revision: i64,
}

impl From<Service> for ServiceResponse {
    fn from(s: Service) -> Self {
        Self {
            id: s.id.0,
            subscriber_id: s.subscriber_id.0,
            plan_id: s.plan_id.0,
            plan_version_id: s.plan_version_id.0,
            status: s.status,
            suspension_cause: s.suspension_cause,
            service_address: s.service_address,
            access_kind: s.access_kind,
            username: s.username,
            has_password: s.password_ciphertext.is_some(),
            mac_address: s.mac_address,
            circuit_id: s.circuit_id,
            static_ip: s.static_ip.map(|ip| ip.to_string()),
            ip_pool: s.ip_pool,
            nas_id: s.nas_id.map(|n| n.0),
            simultaneous_use: s.simultaneous_use,
            created_at: s.created_at,
            updated_at: s.updated_at,
            revision: s.revision,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TimelineEventResponse {
    pub id: Uuid,
    pub service_id: Uuid,
    pub subscriber_id: Uuid,
    pub seq: i64,
    pub kind: EventKind,
    #[schema(value_type = String, format = DateTime)]
    pub effective_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
    /// For `plan_changed`: the plan moved to.
    pub plan_id: Option<Uuid>,
    pub plan_version_id: Option<Uuid>,
    pub suspension_cause: Option<SuspensionCause>,
    pub reason: Option<String>,
    pub actor: String,
}

impl From<TimelineEvent> for TimelineEventResponse {
    fn from(e: TimelineEvent) -> Self {
        Self {
            id: e.id.0,
            service_id: e.service_id.0,
            subscriber_id: e.subscriber_id.0,
            seq: e.seq,
            kind: e.kind,
            effective_at: e.effective_at,
            recorded_at: e.recorded_at,
            plan_id: e.plan_id.map(|p| p.0),
            plan_version_id: e.plan_version_id.map(|p| p.0),
            suspension_cause: e.suspension_cause,
            reason: e.reason,
            actor: e.actor,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ProvisioningJobResponse {
    pub id: Uuid,
    pub subscriber_id: Option<Uuid>,
    pub service_id: Option<Uuid>,
    pub kind: JobKind,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub status: JobStatus,
    pub attempts: i32,
    pub max_attempts: i32,
    #[schema(value_type = String, format = DateTime)]
    pub run_after: Timestamp,
    pub last_error: Option<String>,
    /// The last attempt's outcome as a person reads it, success or failure
    /// (e.g. "CoA-ACK from core-1 for 2 sessions").
    pub last_result: Option<String>,
    /// False while no executor for this kind is installed: the job waits, visibly.
    pub executor_available: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
}

impl ProvisioningJobResponse {
    pub fn new(j: ProvisioningJob, executor_available: bool) -> Self {
        Self {
            id: j.id.0,
            subscriber_id: j.subscriber_id.map(|s| s.0),
            service_id: j.service_id.map(|s| s.0),
            kind: j.kind,
            payload: j.payload,
            status: j.status,
            attempts: j.attempts,
            max_attempts: j.max_attempts,
            run_after: j.run_after,
            last_error: j.last_error,
            last_result: j.last_result,
            executor_available,
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

/// The result of a service action: the service as it now is, the timeline event recorded and
/// the provisioning jobs queued, all written in one transaction.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ServiceChangeResponse {
    pub service: ServiceResponse,
    pub event: TimelineEventResponse,
    pub jobs: Vec<ProvisioningJobResponse>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEventResponse {
    pub id: Uuid,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub actor_id: String,
    pub actor_name: String,
    pub subscriber_id: Option<Uuid>,
    pub entity_type: String,
    pub entity_id: String,
    pub action: String,
    /// The entity before the change: on an update only the fields that changed, on a
    /// deletion all of it; absent on a creation.
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    /// The entity after the change: on an update only the fields that changed, on a
    /// creation all of it; absent on a deletion.
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
    pub reason: Option<String>,
}

impl From<AuditEvent> for AuditEventResponse {
    fn from(a: AuditEvent) -> Self {
        Self {
            id: a.id.0,
            at: a.at,
            actor_id: a.actor.id,
            actor_name: a.actor.name,
            subscriber_id: a.subscriber_id.map(|s| s.0),
            entity_type: a.entity_type,
            entity_id: a.entity_id,
            action: a.action,
            before: a.before,
            after: a.after,
            reason: a.reason,
        }
    }
}

/// An RFC 9457 problem detail, as every error is returned (`application/problem+json`).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Problem {
    /// Stable, machine-readable problem type, e.g. `urn:lastmile:problem:validation`.
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: String,
    pub status: u16,
    pub detail: Option<String>,
    /// For validation problems: every field at fault.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldProblem>>,
    /// For state conflicts: the state the record is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub current_state: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct FieldProblem {
    pub field: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    pub operator_id: Uuid,
    pub name: String,
    pub role: lastmile_domain::auth::Role,
    /// Shown once; only its hash is stored.
    pub token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InvoiceLineResponse {
    pub position: i32,
    pub description: String,
    pub service_id: Uuid,
    /// `recurring`, `setup_fee`, `early_termination` or `discount`.
    pub charge_kind: String,
    /// The billing period the charge belongs to (an earlier one for corrections).
    #[schema(value_type = String, format = Date)]
    pub charge_period_start: jiff::civil::Date,
    pub plan_version_id: Uuid,
    pub correction: bool,
    pub days: i64,
    pub period_days: i64,
    /// As rated, in the plan's price terms (tax included when the invoice's prices do).
    pub amount_minor: i64,
    pub net_minor: i64,
    pub tax_minor: i64,
    pub gross_minor: i64,
    pub taxes: Vec<AppliedTaxResponse>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AppliedTaxResponse {
    pub name: String,
    /// Percent, exact decimal (`"20"`, `"8.875"`).
    pub rate: String,
    pub amount_minor: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct InvoiceResponse {
    pub id: Uuid,
    pub subscriber_id: Uuid,
    /// Assigned when issued; absent on drafts.
    pub number: Option<String>,
    pub status: lastmile_domain::billing::invoice::InvoiceStatus,
    pub currency: String,
    #[schema(value_type = String, format = Date)]
    pub period_start: jiff::civil::Date,
    #[schema(value_type = String, format = Date)]
    pub period_end: jiff::civil::Date,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub issued_at: Option<Timestamp>,
    #[schema(value_type = Option<String>, format = Date)]
    pub due_date: Option<jiff::civil::Date>,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    pub prices_include_tax: bool,
    pub billing_run_id: Option<Uuid>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub voided_at: Option<Timestamp>,
    pub void_reason: Option<String>,
    /// Present on `GET /invoices/{id}`; lists omit lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<InvoiceLineResponse>>,
}

impl InvoiceResponse {
    pub fn new(i: lastmile_domain::billing::invoice::Invoice, with_lines: bool) -> Self {
        Self {
            id: i.id.0,
            subscriber_id: i.subscriber_id.0,
            number: i.number,
            status: i.status,
            currency: i.currency.to_string(),
            period_start: i.period_start,
            period_end: i.period_end,
            created_at: i.created_at,
            issued_at: i.issued_at,
            due_date: i.due_date,
            subtotal_minor: i.subtotal_minor,
            tax_minor: i.tax_minor,
            total_minor: i.total_minor,
            prices_include_tax: i.prices_include_tax,
            billing_run_id: i.billing_run_id.map(|r| r.0),
            voided_at: i.voided_at,
            void_reason: i.void_reason,
            lines: with_lines.then(|| {
                i.lines
                    .into_iter()
                    .map(|l| InvoiceLineResponse {
                        net_minor: l.net_minor(i.prices_include_tax),
                        gross_minor: l.gross_minor(i.prices_include_tax),
                        tax_minor: l.tax_minor,
                        taxes: l
                            .taxes
                            .iter()
                            .map(|t| AppliedTaxResponse {
                                name: t.name.clone(),
                                rate: t.rate.to_percent_string(),
                                amount_minor: t.amount_minor,
                            })
                            .collect(),
                        position: l.position,
                        description: l.description,
                        service_id: l.service_id.0,
                        charge_kind: l.charge_kind.as_str().to_string(),
                        charge_period_start: l.charge_period_start,
                        plan_version_id: l.plan_version_id.0,
                        correction: l.correction,
                        days: l.days,
                        period_days: l.period_days,
                        amount_minor: l.amount_minor,
                    })
                    .collect()
            }),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BillingRunResponse {
    pub id: Uuid,
    #[schema(value_type = String, format = Date)]
    pub as_of: jiff::civil::Date,
    pub status: lastmile_domain::billing::invoice::BillingRunStatus,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub finished_at: Option<Timestamp>,
    pub subscribers_processed: i64,
    pub invoices_created: i64,
    pub errors: Vec<lastmile_domain::billing::invoice::BillingRunError>,
    /// A run for one subscriber only.
    pub subscriber_id: Option<Uuid>,
    /// Why a `failed` run stopped.
    pub failure: Option<String>,
}

impl From<lastmile_domain::billing::invoice::BillingRun> for BillingRunResponse {
    fn from(r: lastmile_domain::billing::invoice::BillingRun) -> Self {
        Self {
            id: r.id.0,
            as_of: r.as_of,
            status: r.status,
            started_at: r.started_at,
            finished_at: r.finished_at,
            subscribers_processed: r.subscribers_processed,
            invoices_created: r.invoices_created,
            errors: r.errors,
            subscriber_id: r.subscriber_id.map(|s| s.0),
            failure: r.failure,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct TaxZoneResponse {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub prices_include_tax: bool,
    pub taxes: Vec<lastmile_domain::billing::tax::Tax>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub revision: i64,
}

impl From<lastmile_domain::billing::tax::TaxZone> for TaxZoneResponse {
    fn from(z: lastmile_domain::billing::tax::TaxZone) -> Self {
        Self {
            id: z.id.0,
            code: z.code,
            name: z.name,
            prices_include_tax: z.prices_include_tax,
            taxes: z.taxes,
            created_at: z.created_at,
            updated_at: z.updated_at,
            revision: z.revision,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DunningPolicyResponse {
    pub id: Uuid,
    pub code: String,
    pub name: String,
    pub steps: Vec<lastmile_domain::billing::dunning::DunningStep>,
    pub bill_suspended_days: bool,
    pub is_default: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    pub revision: i64,
}

impl From<lastmile_domain::billing::dunning::DunningPolicy> for DunningPolicyResponse {
    fn from(p: lastmile_domain::billing::dunning::DunningPolicy) -> Self {
        Self {
            id: p.id.0,
            code: p.code,
            name: p.name,
            steps: p.steps,
            bill_suspended_days: p.bill_suspended_days,
            is_default: p.is_default,
            created_at: p.created_at,
            updated_at: p.updated_at,
            revision: p.revision,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DiscountResponse {
    pub id: Uuid,
    pub subscriber_id: Uuid,
    pub service_id: Option<Uuid>,
    pub value: lastmile_domain::billing::discount::DiscountValue,
    #[schema(value_type = String, format = Date)]
    pub starts_on: jiff::civil::Date,
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<jiff::civil::Date>,
    pub description: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<lastmile_domain::billing::discount::Discount> for DiscountResponse {
    fn from(d: lastmile_domain::billing::discount::Discount) -> Self {
        Self {
            id: d.id.0,
            subscriber_id: d.subscriber_id.0,
            service_id: d.service_id.map(|s| s.0),
            value: d.value,
            starts_on: d.starts_on,
            ends_on: d.ends_on,
            description: d.description,
            created_at: d.created_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct AllocationResponse {
    pub credit_kind: lastmile_domain::billing::account::DocumentKind,
    pub credit_id: Uuid,
    pub debit_kind: lastmile_domain::billing::account::DocumentKind,
    pub debit_id: Uuid,
    pub amount_minor: i64,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: Timestamp,
}

impl From<lastmile_domain::billing::account::Allocation> for AllocationResponse {
    fn from(a: lastmile_domain::billing::account::Allocation) -> Self {
        Self {
            credit_kind: a.credit.kind,
            credit_id: a.credit.id,
            debit_kind: a.debit.kind,
            debit_id: a.debit.id,
            amount_minor: a.amount_minor,
            created_at: a.created_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct PaymentResponse {
    pub id: Uuid,
    pub subscriber_id: Uuid,
    pub currency: String,
    pub amount_minor: i64,
    pub method: lastmile_domain::billing::account::PaymentMethod,
    pub reference: Option<String>,
    pub external_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub received_at: Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: Timestamp,
    /// Not allocated to any invoice: the subscriber's credit.
    pub unallocated_minor: i64,
    /// Present on the response to recording it: where the money went.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allocations: Option<Vec<AllocationResponse>>,
    /// Services resumed because the payment cleared what dunning suspended them for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed_services: Option<Vec<Uuid>>,
}

impl PaymentResponse {
    pub fn new(p: lastmile_domain::billing::account::Payment, unallocated_minor: i64) -> Self {
        Self {
            id: p.id.0,
            subscriber_id: p.subscriber_id.0,
            currency: p.currency.to_string(),
            amount_minor: p.amount_minor,
            method: p.method,
            reference: p.reference,
            external_id: p.external_id,
            received_at: p.received_at,
            recorded_at: p.recorded_at,
            unallocated_minor,
            allocations: None,
            resumed_services: None,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct CreditNoteResponse {
    pub id: Uuid,
    pub number: String,
    pub subscriber_id: Uuid,
    pub invoice_id: Uuid,
    pub currency: String,
    pub reason: String,
    pub subtotal_minor: i64,
    pub tax_minor: i64,
    pub total_minor: i64,
    #[schema(value_type = String, format = DateTime)]
    pub issued_at: Timestamp,
}

impl From<lastmile_domain::billing::account::CreditNote> for CreditNoteResponse {
    fn from(c: lastmile_domain::billing::account::CreditNote) -> Self {
        Self {
            id: c.id.0,
            number: c.number,
            subscriber_id: c.subscriber_id.0,
            invoice_id: c.invoice_id.0,
            currency: c.currency.to_string(),
            reason: c.reason,
            subtotal_minor: c.subtotal_minor,
            tax_minor: c.tax_minor,
            total_minor: c.total_minor,
            issued_at: c.issued_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RefundResponse {
    pub id: Uuid,
    pub subscriber_id: Uuid,
    pub currency: String,
    pub amount_minor: i64,
    pub method: lastmile_domain::billing::account::PaymentMethod,
    pub reference: Option<String>,
    pub reason: String,
    #[schema(value_type = String, format = DateTime)]
    pub refunded_at: Timestamp,
}

impl From<lastmile_domain::billing::account::Refund> for RefundResponse {
    fn from(r: lastmile_domain::billing::account::Refund) -> Self {
        Self {
            id: r.id.0,
            subscriber_id: r.subscriber_id.0,
            currency: r.currency.to_string(),
            amount_minor: r.amount_minor,
            method: r.method,
            reference: r.reference,
            reason: r.reason,
            refunded_at: r.refunded_at,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LedgerEntryResponse {
    pub kind: lastmile_domain::billing::account::LedgerEntryKind,
    pub document_id: Uuid,
    pub label: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    /// Positive: the subscriber owes more.
    pub amount_minor: i64,
    /// The balance after this entry.
    pub balance_minor: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct LedgerResponse {
    pub subscriber_id: Uuid,
    pub currency: String,
    /// What the subscriber owes; negative: credit in their favour.
    pub balance_minor: i64,
    /// Open amount of issued invoices.
    pub open_minor: i64,
    /// Open amount past its due date.
    pub overdue_minor: i64,
    /// Money received or credited and not allocated yet.
    pub credit_minor: i64,
    pub entries: Vec<LedgerEntryResponse>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImportOutcome {
    Matched,
    Unmatched,
    Duplicate,
    Invalid,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportRowResult {
    /// Line in the file (the header is line 1).
    pub line: u64,
    pub outcome: ImportOutcome,
    pub payment_id: Option<Uuid>,
    pub subscriber_id: Option<Uuid>,
    pub amount_minor: Option<i64>,
    /// Why a row is unmatched or invalid, or which field is at fault.
    pub field: Option<String>,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportResponse {
    pub matched: u64,
    pub unmatched: u64,
    pub duplicate: u64,
    pub invalid: u64,
    pub rows: Vec<ImportRowResult>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct DunningRunResponse {
    #[schema(value_type = String, format = Date)]
    pub as_of: jiff::civil::Date,
    pub subscribers_checked: u64,
    pub reminders: u64,
    pub suspensions: u64,
    pub terminations: u64,
    pub errors: Vec<lastmile_domain::billing::invoice::BillingRunError>,
}

#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct BillingSettingsResponse {
    /// The operator's time zone (fixed at start-up with `--time-zone`).
    pub time_zone: String,
    pub payment_terms_days: i64,
    pub invoice_prefix: String,
    pub credit_note_prefix: String,
    pub issue_invoices: bool,
    pub downgrades: lastmile_domain::billing::rating::DowngradeBilling,
    pub issuer: lastmile_domain::billing::settings::Issuer,
    /// 0: nothing stored yet, the start-up defaults apply.
    pub revision: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub updated_at: Option<Timestamp>,
}

impl BillingSettingsResponse {
    pub fn new(s: lastmile_domain::billing::settings::BillingSettings, time_zone: String) -> Self {
        Self {
            time_zone,
            payment_terms_days: s.payment_terms_days,
            invoice_prefix: s.invoice_prefix,
            credit_note_prefix: s.credit_note_prefix,
            issue_invoices: s.issue_invoices,
            downgrades: s.downgrades,
            issuer: s.issuer,
            revision: s.revision,
            updated_at: s.updated_at,
        }
    }
}

/// A RADIUS session, from accounting. `active` while the NAS has not said it ended (and it
/// was not closed as stale); octets are what the session used in total.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RadiusSessionResponse {
    pub id: Uuid,
    pub nas_id: Uuid,
    /// Acct-Session-Id, unique per NAS among open sessions.
    pub acct_session_id: String,
    /// Absent when no service matched the login, MAC or circuit.
    pub service_id: Option<Uuid>,
    pub subscriber_id: Option<Uuid>,
    pub username: Option<String>,
    pub framed_ip: Option<String>,
    pub calling_station_id: Option<String>,
    pub nas_port_id: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub started_at: Timestamp,
    /// Event time of the latest accounting update that counted.
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub stopped_at: Option<Timestamp>,
    /// Why it ended: `stop`, `nas_restart` (Accounting-On/Off) or `stale`.
    pub end_reason: Option<SessionEnd>,
    /// Acct-Terminate-Cause (RFC 2866 §5.10), when the NAS sent one.
    pub terminate_cause: Option<u32>,
    /// Acct-Session-Time, seconds.
    pub session_time: u32,
    pub download_bytes: u64,
    pub upload_bytes: u64,
    /// The policy (tier) the NAS last acknowledged, and when.
    pub accepted_policy: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub policy_updated_at: Option<Timestamp>,
    pub active: bool,
}

impl From<RadiusSession> for RadiusSessionResponse {
    fn from(s: RadiusSession) -> Self {
        Self {
            active: s.is_open(),
            id: s.id.0,
            nas_id: s.nas_id.0,
            acct_session_id: s.acct_session_id,
            service_id: s.service_id.map(|i| i.0),
            subscriber_id: s.subscriber_id.map(|i| i.0),
            username: s.username,
            framed_ip: s.framed_ip.map(|ip| ip.to_string()),
            calling_station_id: s.calling_station_id,
            nas_port_id: s.nas_port_id,
            started_at: s.started_at,
            updated_at: s.updated_at,
            stopped_at: s.stopped_at,
            end_reason: s.end,
            terminate_cause: s.terminate_cause,
            session_time: s.session_time,
            download_bytes: s.total.download,
            upload_bytes: s.total.upload,
            accepted_policy: s.accepted_policy,
            policy_updated_at: s.policy_updated_at,
        }
    }
}

/// One Access-Reject of a service, as the RADIUS server of this node saw it.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct RadiusRejectResponse {
    #[schema(value_type = String, format = DateTime)]
    pub at: Timestamp,
    pub nas_id: Uuid,
    pub nas_name: String,
    /// Why: `unknown_user`, `wrong_password`, `password_not_set`, `not_active_pending`,
    /// `not_active_suspended`, `terminated`, `wrong_nas`, `simultaneous_use`,
    /// `no_credentials`, `unsupported_method`, `malformed_request`.
    pub reason: String,
    /// The User-Name of the request, if it had one.
    pub username: Option<String>,
}
