use jiff::Timestamp;
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::plan::{BillingInterval, Burst, CapPolicy};
use lastmile_domain::service::AccessKind;
use lastmile_domain::subscriber::Address;
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

type JsonMap = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriber {
    /// Account number; assigned (`S-000123`) when omitted.
    pub number: Option<String>,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub billing_address: Option<Address>,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
    /// Code of a tax zone (`GET /tax-zones`); none: no tax.
    pub tax_zone: Option<String>,
    /// Code of a dunning policy; none: the default policy.
    pub dunning_policy: Option<String>,
    /// 1 = calendar month (default); 2..=28 = anniversary day.
    pub billing_day: Option<i64>,
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<JsonMap>,
}

/// Partial update: absent fields are left alone, `null` clears an optional field.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriber {
    pub number: Option<String>,
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    pub billing_address: Option<Address>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>)]
    pub tax_zone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>)]
    pub dunning_policy: Option<Option<String>>,
    pub billing_day: Option<i64>,
    /// Replaces the whole set of custom fields.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<JsonMap>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    pub reason: Option<String>,
}

/// A daily window not counted against the cap, `HH:MM` in the operator's time zone.
#[derive(Clone, Debug, Deserialize, serde::Serialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FreeWindowBody {
    pub start: String,
    pub end: String,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanTermsBody {
    pub download_kbps: u32,
    pub upload_kbps: u32,
    pub burst: Option<Burst>,
    pub price_minor: i64,
    pub currency: String,
    /// Default `monthly`.
    pub billing_interval: Option<BillingInterval>,
    pub setup_fee_minor: Option<i64>,
    /// Bytes per billing period; omit for unlimited.
    pub data_cap_bytes: Option<i64>,
    /// Default `{"kind": "none"}`.
    pub cap_policy: Option<CapPolicy>,
    pub free_window: Option<FreeWindowBody>,
    pub contract_months: Option<u32>,
    pub early_termination_fee_minor: Option<i64>,
    /// Default `standard`.
    pub tax_class: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    pub code: String,
    pub name: String,
    pub terms: PlanTermsBody,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    pub name: String,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlanVersion {
    pub terms: PlanTermsBody,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNas {
    pub name: String,
    pub ip: String,
    /// RADIUS shared secret. Write-only: never returned.
    pub secret: String,
    pub vendor: VendorProfile,
    /// Default 3799 (RFC 5176).
    pub coa_port: Option<u16>,
    pub api_url: Option<String>,
    pub api_username: Option<String>,
    /// Write-only.
    pub api_password: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNas {
    pub name: Option<String>,
    pub ip: Option<String>,
    pub secret: Option<String>,
    pub vendor: Option<VendorProfile>,
    pub coa_port: Option<u16>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>)]
    pub api_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>)]
    pub api_username: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>)]
    pub api_password: Option<Option<String>>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    pub subscriber_id: Uuid,
    pub plan_id: Uuid,
    /// Default `pppoe`.
    pub access_kind: Option<AccessKind>,
    /// PPPoE/hotspot login.
    pub username: Option<String>,
    /// PPPoE/hotspot password. Write-only; stored encrypted (CHAP needs it).
    pub password: Option<String>,
    /// IPoE: MAC address.
    pub mac_address: Option<String>,
    /// IPoE: circuit id (DHCP option 82).
    pub circuit_id: Option<String>,
    pub static_ip: Option<String>,
    pub ip_pool: Option<String>,
    pub nas_id: Option<Uuid>,
    pub service_address: Option<Address>,
}

/// Body of `activate`, `suspend`, `resume` and `terminate`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceActionBody {
    /// When it happened; default now. May be back-dated within the configured window.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub effective_at: Option<Timestamp>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanBody {
    pub plan_id: Uuid,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub effective_at: Option<Timestamp>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBillingRun {
    /// Billing date (operator time zone); default today. Every subscriber whose period starts
    /// by this date is invoiced.
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<jiff::civil::Date>,
    /// Bill only this subscriber (a run of its own).
    pub subscriber_id: Option<Uuid>,
}

/// Body of `POST /tax-zones` and `PUT /tax-zones/{id}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxZoneBody {
    /// What subscribers' `tax_zone` refers to, e.g. `de`.
    pub code: String,
    pub name: String,
    /// Plan prices include these taxes (consumer pricing) rather than exclude them.
    #[serde(default)]
    pub prices_include_tax: bool,
    pub taxes: Vec<lastmile_domain::billing::tax::Tax>,
}

/// Body of `POST /dunning-policies` and `PUT /dunning-policies/{id}`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DunningPolicyBody {
    pub code: String,
    pub name: String,
    /// In increasing `days_overdue`, e.g. 3 remind, 10 suspend, 45 terminate.
    pub steps: Vec<lastmile_domain::billing::dunning::DunningStep>,
    /// Bill the days services spend suspended by dunning.
    #[serde(default)]
    pub bill_suspended_days: bool,
    /// The policy of every subscriber without one of their own.
    #[serde(default)]
    pub is_default: bool,
}

/// Body of `POST /subscribers/{id}/discounts`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDiscount {
    /// Only this service; none: every service of the subscriber.
    pub service_id: Option<Uuid>,
    pub value: lastmile_domain::billing::discount::DiscountValue,
    #[schema(value_type = String, format = Date)]
    pub starts_on: jiff::civil::Date,
    /// Exclusive; none: open-ended.
    #[schema(value_type = Option<String>, format = Date)]
    pub ends_on: Option<jiff::civil::Date>,
    pub description: String,
}

/// Body of `POST /discounts/{id}/end`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndDiscount {
    /// First day without the discount.
    #[schema(value_type = String, format = Date)]
    pub ends_on: jiff::civil::Date,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentAllocationBody {
    pub invoice_id: Uuid,
    pub amount_minor: i64,
}

/// Body of `POST /payments`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    pub subscriber_id: Uuid,
    /// Positive, in the subscriber's currency.
    pub amount_minor: i64,
    /// Must be the subscriber's currency when given.
    pub currency: Option<String>,
    pub method: lastmile_domain::billing::account::PaymentMethod,
    pub reference: Option<String>,
    /// The bank's transaction id: recording the same one twice is refused as a duplicate.
    pub external_id: Option<String>,
    /// Default now.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub received_at: Option<Timestamp>,
    /// Pay these invoices first; the rest goes oldest-first, then stays as credit.
    #[serde(default)]
    pub allocations: Vec<PaymentAllocationBody>,
}

/// Body of `POST /credit-notes`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCreditNote {
    pub invoice_id: Uuid,
    /// Gross amount to credit; default: everything not credited yet (a full credit note).
    pub amount_minor: Option<i64>,
    pub reason: String,
}

/// Body of `POST /subscribers/{id}/refunds`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// Positive; at most the subscriber's credit balance.
    pub amount_minor: i64,
    pub method: lastmile_domain::billing::account::PaymentMethod,
    pub reference: Option<String>,
    pub reason: String,
}

/// Body of `POST /invoices/{id}/void`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidInvoiceBody {
    pub reason: String,
}

/// Body of `POST /dunning-runs`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDunningRun {
    #[schema(value_type = Option<String>, format = Date)]
    pub as_of: Option<jiff::civil::Date>,
}

/// Body of `PUT /settings/billing`: the whole group (fields left out are not kept).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingSettingsBody {
    pub payment_terms_days: i64,
    pub invoice_prefix: String,
    pub credit_note_prefix: String,
    /// Runs issue invoices at once; false: they leave drafts to review and issue.
    pub issue_invoices: bool,
    pub downgrades: lastmile_domain::billing::rating::DowngradeBilling,
    pub issuer: lastmile_domain::billing::settings::Issuer,
}
