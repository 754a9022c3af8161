//! Request bodies. Every constraint the server enforces on a field is in its schema, so a
//! client generated from the OpenAPI document never sends what the server refuses; the rules
//! the schema cannot express (cross-field rules, references to existing records, dates
//! relative to today, byte lengths of non-ASCII text) are in the field's description.
//!
//! Text fields are trimmed by the server, so their patterns allow surrounding whitespace
//! (Unicode `White_Space`, as Rust's `trim`). Required text has something besides whitespace
//! and no control characters; optional text may also be empty or blank, which means none.
//! Lengths count characters, except where a field says bytes. The patterns are spelled out
//! because `#[schema(pattern = ...)]` takes a literal; the tests of this crate check each one
//! against the validator it mirrors.

use jiff::Timestamp;
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::plan::{BillingInterval, Burst, CapPolicy};
use lastmile_domain::service::AccessKind;
use lastmile_domain::subscriber::Address;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::inputs::{
    AddressInput, BurstInput, CapPolicyInput, DiscountValueInput, DunningStepInput, IssuerInput,
    TaxInput,
};

type JsonMap = serde_json::Map<String, serde_json::Value>;

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSubscriber {
    /// Account number; assigned (`S-000123`) when omitted. 1 to 32 letters, digits, `-`, `_`
    /// or `/`; unique.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[A-Za-z0-9_/-]{1,32}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "S-000123"
    )]
    pub number: Option<String>,
    /// 1 to 200 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Jo Example"
    )]
    pub name: String,
    /// An e-mail address (`local@domain.tld`, no spaces, at most 254 bytes); empty means
    /// none.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^@\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+@[^@.\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^@\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*\.[^@\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^@.\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "jo@example.net"
    )]
    pub email: Option<String>,
    /// At most 40 characters; empty means none.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,38}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "+49 30 1234567"
    )]
    pub phone: Option<String>,
    #[schema(value_type = Option<AddressInput>)]
    pub billing_address: Option<Address>,
    /// An active ISO 4217 code with a minor unit, e.g. `EUR`.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:AED|AFN|ALL|AMD|AOA|ARS|AUD|AWG|AZN|BAM|BBD|BDT|BGN|BHD|BIF|BMD|BND|BOB|BOV|BRL|BSD|BTN|BWP|BYN|BZD|CAD|CDF|CHE|CHF|CHW|CLF|CLP|CNY|COP|COU|CRC|CUP|CVE|CZK|DJF|DKK|DOP|DZD|EGP|ERN|ETB|EUR|FJD|FKP|GBP|GEL|GHS|GIP|GMD|GNF|GTQ|GYD|HKD|HNL|HTG|HUF|IDR|ILS|INR|IQD|IRR|ISK|JMD|JOD|JPY|KES|KGS|KHR|KMF|KPW|KRW|KWD|KYD|KZT|LAK|LBP|LKR|LRD|LSL|LYD|MAD|MDL|MGA|MKD|MMK|MNT|MOP|MRU|MUR|MVR|MWK|MXN|MXV|MYR|MZN|NAD|NGN|NIO|NOK|NPR|NZD|OMR|PAB|PEN|PGK|PHP|PKR|PLN|PYG|QAR|RON|RSD|RUB|RWF|SAR|SBD|SCR|SDG|SEK|SGD|SHP|SLE|SOS|SRD|SSP|STN|SVC|SYP|SZL|THB|TJS|TMT|TND|TOP|TRY|TTD|TWD|TZS|UAH|UGX|USD|USN|UYI|UYU|UYW|UZS|VED|VES|VND|VUV|WST|XAF|XCD|XCG|XOF|XPF|YER|ZAR|ZMW|ZWG)[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "EUR"
    )]
    pub currency: String,
    /// Code of a tax zone (`GET /tax-zones`), at most 40 characters; must exist. None or
    /// empty: no tax.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,38}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "de"
    )]
    pub tax_zone: Option<String>,
    /// Code of a dunning policy (`GET /dunning-policies`), at most 40 characters; must exist.
    /// None or empty: the default policy.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,38}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "standard"
    )]
    pub dunning_policy: Option<String>,
    /// 1 = calendar month (default); 2..=28 = anniversary day.
    #[schema(minimum = 1, maximum = 28, example = 1)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub billing_day: Option<i64>,
    #[schema(schema_with = crate::inputs::custom_fields)]
    pub custom_fields: Option<JsonMap>,
}

/// Partial update: absent fields are left alone, `null` clears an optional field. The rules
/// of each field are those of `CreateSubscriber`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSubscriber {
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[A-Za-z0-9_/-]{1,32}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "S-000123"
    )]
    pub number: Option<String>,
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^@\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]+@[^@.\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][^@\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*\.[^@\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^@.\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000][\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$")]
    pub email: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,38}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$")]
    pub phone: Option<Option<String>>,
    /// Replaces the whole address.
    #[schema(value_type = Option<AddressInput>)]
    pub billing_address: Option<Address>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,38}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$")]
    pub tax_zone: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,38}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$")]
    pub dunning_policy: Option<Option<String>>,
    #[schema(minimum = 1, maximum = 28)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub billing_day: Option<i64>,
    /// Replaces the whole set of custom fields.
    #[schema(schema_with = crate::inputs::custom_fields)]
    pub custom_fields: Option<JsonMap>,
}

/// The optional body of `POST /subscribers/{id}/close` and `POST /plans/{id}/retire`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why, for the audit trail; at most 500 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,498}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub reason: Option<String>,
}

/// A daily window not counted against the cap, `HH:MM` in the operator's time zone; start and
/// end must differ (start after end: the window crosses midnight).
#[derive(Clone, Debug, Deserialize, serde::Serialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FreeWindowBody {
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*\+?0*(?:1?[0-9]|2[0-3]):\+?0*[1-5]?[0-9][\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "01:00"
    )]
    pub start: String,
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*\+?0*(?:1?[0-9]|2[0-3]):\+?0*[1-5]?[0-9][\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "06:00"
    )]
    pub end: String,
}

/// The terms of a plan version. Rates are 1 to 100,000,000 kbit/s (100 Gbit/s); amounts are
/// minor units of `currency`, 0 to 10^12. Cross-field rules: a burst is at least the plan's
/// rates; a cap policy other than `none` needs `data_cap_bytes`; a throttle is below the
/// plan's download rate; an early termination fee needs `contract_months`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanTermsBody {
    #[schema(minimum = 1, maximum = 100_000_000, example = 100_000)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub download_kbps: u32,
    #[schema(minimum = 1, maximum = 100_000_000, example = 20_000)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub upload_kbps: u32,
    #[serde(default, deserialize_with = "crate::inputs::burst")]
    #[schema(value_type = Option<BurstInput>)]
    pub burst: Option<Burst>,
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64, example = 4900)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub price_minor: i64,
    /// An active ISO 4217 code with a minor unit, e.g. `EUR`.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:AED|AFN|ALL|AMD|AOA|ARS|AUD|AWG|AZN|BAM|BBD|BDT|BGN|BHD|BIF|BMD|BND|BOB|BOV|BRL|BSD|BTN|BWP|BYN|BZD|CAD|CDF|CHE|CHF|CHW|CLF|CLP|CNY|COP|COU|CRC|CUP|CVE|CZK|DJF|DKK|DOP|DZD|EGP|ERN|ETB|EUR|FJD|FKP|GBP|GEL|GHS|GIP|GMD|GNF|GTQ|GYD|HKD|HNL|HTG|HUF|IDR|ILS|INR|IQD|IRR|ISK|JMD|JOD|JPY|KES|KGS|KHR|KMF|KPW|KRW|KWD|KYD|KZT|LAK|LBP|LKR|LRD|LSL|LYD|MAD|MDL|MGA|MKD|MMK|MNT|MOP|MRU|MUR|MVR|MWK|MXN|MXV|MYR|MZN|NAD|NGN|NIO|NOK|NPR|NZD|OMR|PAB|PEN|PGK|PHP|PKR|PLN|PYG|QAR|RON|RSD|RUB|RWF|SAR|SBD|SCR|SDG|SEK|SGD|SHP|SLE|SOS|SRD|SSP|STN|SVC|SYP|SZL|THB|TJS|TMT|TND|TOP|TRY|TTD|TWD|TZS|UAH|UGX|USD|USN|UYI|UYU|UYW|UZS|VED|VES|VND|VUV|WST|XAF|XCD|XCG|XOF|XPF|YER|ZAR|ZMW|ZWG)[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "EUR"
    )]
    pub currency: String,
    /// Default `monthly`.
    pub billing_interval: Option<BillingInterval>,
    /// Default 0.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub setup_fee_minor: Option<i64>,
    /// Bytes per billing period; omit for unlimited.
    #[schema(
        minimum = 1,
        maximum = 9_223_372_036_854_775_807i64,
        example = 500_000_000_000i64
    )]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub data_cap_bytes: Option<i64>,
    /// Default `{"kind": "none"}`.
    #[serde(default, deserialize_with = "crate::inputs::cap_policy")]
    #[schema(value_type = Option<CapPolicyInput>)]
    pub cap_policy: Option<CapPolicy>,
    pub free_window: Option<FreeWindowBody>,
    /// Default 0 (no contract).
    #[schema(minimum = 0, maximum = 120)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub contract_months: Option<u32>,
    /// Default 0.
    #[schema(minimum = 0, maximum = 1_000_000_000_000i64)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub early_termination_fee_minor: Option<i64>,
    /// Default `standard`; 1 to 40 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,38}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "standard"
    )]
    pub tax_class: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// 1 to 40 of `A-Z`, `0-9`, `-`, `_`, `.`; unique.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[A-Z0-9._-]{1,40}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "FIBER-100"
    )]
    pub code: String,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Fibre 100"
    )]
    pub name: String,
    pub terms: PlanTermsBody,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePlan {
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Fibre 100"
    )]
    pub name: String,
}

/// New terms for a plan; they must differ from the current version's.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlanVersion {
    pub terms: PlanTermsBody,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNas {
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "bras-1"
    )]
    pub name: String,
    /// IPv4 or IPv6 address: the source of its RADIUS packets; unique.
    #[schema(schema_with = crate::inputs::ip_address)]
    pub ip: String,
    /// RADIUS shared secret: 8 to 128 printable ASCII characters, no spaces. Write-only:
    /// never returned.
    #[schema(
        min_length = 8,
        max_length = 128,
        pattern = r"^[!-~]{8,128}$",
        example = "testing123"
    )]
    pub secret: String,
    pub vendor: VendorProfile,
    /// Default 3799 (RFC 5176).
    #[schema(minimum = 1, maximum = 65535, example = 3799)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub coa_port: Option<u16>,
    /// Management API, an `http://` or `https://` URL of at most 300 characters.
    #[schema(
        min_length = 7,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:http://(?:[^\x00-\x1F\x7F-\x9F]{0,291}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?|https://(?:[^\x00-\x1F\x7F-\x9F]{0,290}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?)[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "https://10.0.0.1/rest"
    )]
    pub api_url: Option<String>,
    /// At most 100 characters; empty means none.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub api_username: Option<String>,
    /// 1 to 200 bytes (UTF-8) without control characters. Write-only.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    pub api_password: Option<String>,
    /// Drop Access-Requests without a Message-Authenticator (BlastRADIUS, CVE-2024-3596).
    /// Default `true`; switch it off only for a NAS that cannot send the attribute.
    pub require_message_authenticator: Option<bool>,
    /// Acct-Interim-Interval sent in Accepts, seconds: 0 (send none) or 60 to 86400.
    /// Default 300.
    #[schema(schema_with = crate::inputs::interim_interval)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub interim_interval_secs: Option<u32>,
    /// Session-Timeout sent in Accepts, seconds: 60 to 2592000 (30 days). Default none.
    #[schema(minimum = 60, maximum = 2592000, example = 86400)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub session_timeout_secs: Option<u32>,
    /// What a suspended service gets. Default `{"kind": "reject"}`.
    pub suspended_action: Option<SuspendedActionBody>,
    /// A session without an accounting update for this many interim intervals is closed as
    /// stale: 2 to 100, default 3.
    #[schema(minimum = 2, maximum = 100, example = 3)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub stale_session_multiplier: Option<u32>,
}

/// What a NAS gives a suspended service: `reject` (Access-Reject, with an optional
/// Reply-Message of at most 253 bytes) or `walled_garden` (Access-Accept at the walled-garden
/// rate, into a MikroTik `address_list` and/or a Framed-Pool `pool` when named, each 1 to 64
/// printable ASCII characters without spaces, blank meaning none; with neither, the
/// walled-garden rate and policy alone).
/// (Schema written out in `inputs`: each variant refuses unknown fields.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SuspendedActionBody {
    Reject {
        /// At most 253 bytes (UTF-8) without control characters; blank means none.
        #[serde(default)]
        reply_message: Option<String>,
    },
    WalledGarden {
        #[serde(default)]
        address_list: Option<String>,
        #[serde(default)]
        pool: Option<String>,
    },
}

/// Partial update: absent fields are left alone, `null` clears an optional field. The rules
/// of each field are those of `CreateNas`.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateNas {
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub name: Option<String>,
    #[schema(schema_with = crate::inputs::ip_address_or_null)]
    pub ip: Option<String>,
    #[schema(min_length = 8, max_length = 128, pattern = r"^[!-~]{8,128}$")]
    pub secret: Option<String>,
    pub vendor: Option<VendorProfile>,
    #[schema(minimum = 1, maximum = 65535)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub coa_port: Option<u16>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>, min_length = 7, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:http://(?:[^\x00-\x1F\x7F-\x9F]{0,291}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?|https://(?:[^\x00-\x1F\x7F-\x9F]{0,290}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?)[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$")]
    pub api_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$")]
    pub api_username: Option<Option<String>>,
    #[serde(default, deserialize_with = "crate::nullable")]
    #[schema(value_type = Option<String>, min_length = 1, max_length = 200, pattern = r"^[^\x00-\x1F\x7F-\x9F]+$")]
    pub api_password: Option<Option<String>>,
    pub require_message_authenticator: Option<bool>,
    #[schema(schema_with = crate::inputs::interim_interval)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub interim_interval_secs: Option<u32>,
    /// `null` removes the Session-Timeout.
    #[schema(value_type = Option<u32>, minimum = 60, maximum = 2592000)]
    #[serde(default, deserialize_with = "crate::ints::nullable_int")]
    pub session_timeout_secs: Option<Option<u32>>,
    /// Replaces the whole suspended action.
    pub suspended_action: Option<SuspendedActionBody>,
    #[schema(minimum = 2, maximum = 100)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub stale_session_multiplier: Option<u32>,
}

/// A service. `pppoe` and `hotspot` need `username` and `password`; `ipoe` needs a
/// `mac_address` or a `circuit_id` and has no password. `static_ip` and `ip_pool` exclude each
/// other. The subscriber, plan (active, in the subscriber's currency) and NAS must exist.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateService {
    pub subscriber_id: Uuid,
    pub plan_id: Uuid,
    /// Default `pppoe`.
    pub access_kind: Option<AccessKind>,
    /// PPPoE/hotspot login: 1 to 64 printable ASCII characters, no spaces; unique among
    /// services that are not terminated.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[!-~]{1,64}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "jo@isp"
    )]
    pub username: Option<String>,
    /// PPPoE/hotspot password: 1 to 128 bytes (UTF-8) without control characters. Write-only;
    /// stored encrypted (CHAP needs it).
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1F\x7F-\x9F]+$"
    )]
    pub password: Option<String>,
    /// IPoE: MAC address (`aa:bb:cc:dd:ee:ff`, `aa-bb-…` or `aabb.ccdd.eeff`).
    #[schema(
        min_length = 12,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[:.-]*[0-9A-Fa-f]){12}[:.-]*[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "aa:bb:cc:dd:ee:ff"
    )]
    pub mac_address: Option<String>,
    /// IPoE: circuit id (DHCP option 82), at most 253 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,251}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub circuit_id: Option<String>,
    /// IPv4 or IPv6 address; unique among services that are not terminated.
    #[schema(schema_with = crate::inputs::ip_address_or_null)]
    pub static_ip: Option<String>,
    /// At most 64 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,62}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub ip_pool: Option<String>,
    pub nas_id: Option<Uuid>,
    #[schema(value_type = Option<AddressInput>)]
    pub service_address: Option<Address>,
    /// Sessions the service may hold at once: 0 (no limit) to 1000. Default 1.
    #[schema(minimum = 0, maximum = 1000, example = 1)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub simultaneous_use: Option<u32>,
}

/// Partial update of a service's settings (its status and plan change only through the
/// service actions). Absent fields are left alone.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateService {
    /// Sessions the service may hold at once: 0 (no limit) to 1000.
    #[schema(minimum = 0, maximum = 1000, example = 2)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub simultaneous_use: Option<u32>,
}

/// Body of `activate`, `suspend`, `resume` and `terminate`; optional.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceActionBody {
    /// When it happened; default now. Not in the future, and at most the back-dating window
    /// (`serve --backdate-days`, default 90 days) in the past.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub effective_at: Option<Timestamp>,
    /// Why, for the timeline and the audit trail; at most 500 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,498}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePlanBody {
    /// An active plan in the subscriber's currency.
    pub plan_id: Uuid,
    /// As for the other service actions: not in the future, within the back-dating window.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub effective_at: Option<Timestamp>,
    /// At most 500 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,498}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub reason: Option<String>,
}

/// Body of `POST /billing-runs`; optional.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBillingRun {
    /// Billing date (operator time zone, `YYYY-MM-DD`); default today. Between 2000-01-01 and
    /// 366 days after today. Every subscriber whose period starts by this date is invoiced.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    #[schema(value_type = Option<String>, format = Date, pattern = r"^(?:2[01][0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))-02-29)$", example = "2026-06-01")]
    pub as_of: Option<jiff::civil::Date>,
    /// Bill only this subscriber (a run of its own); must exist.
    pub subscriber_id: Option<Uuid>,
}

/// Body of `POST /tax-zones` and `PUT /tax-zones/{id}` (whose code cannot change).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxZoneBody {
    /// What subscribers' `tax_zone` refers to, e.g. `de`: 1 to 40 letters, digits, `-`, `_`,
    /// `.`; unique.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[A-Za-z0-9._-]{1,40}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "de"
    )]
    pub code: String,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Germany"
    )]
    pub name: String,
    /// Plan prices include these taxes (consumer pricing) rather than exclude them.
    #[serde(default)]
    pub prices_include_tax: bool,
    /// At least one; a tax name at most once per class and `valid_from`.
    #[serde(deserialize_with = "crate::inputs::taxes")]
    #[schema(value_type = Vec<TaxInput>, min_items = 1)]
    pub taxes: Vec<lastmile_domain::billing::tax::Tax>,
}

/// Body of `POST /dunning-policies` and `PUT /dunning-policies/{id}` (whose code cannot
/// change).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DunningPolicyBody {
    /// What subscribers' `dunning_policy` refers to: 1 to 40 letters, digits, `-`, `_`, `.`;
    /// unique.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[A-Za-z0-9._-]{1,40}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "standard"
    )]
    pub code: String,
    /// 1 to 100 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"
    )]
    pub name: String,
    /// In strictly increasing `days_overdue`, e.g. 3 remind, 10 suspend, 45 terminate; no step
    /// after a termination.
    #[serde(deserialize_with = "crate::inputs::dunning_steps")]
    #[schema(value_type = Vec<DunningStepInput>)]
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
    /// Only this service (of this subscriber); none: every service of the subscriber.
    pub service_id: Option<Uuid>,
    #[serde(deserialize_with = "crate::inputs::discount_value")]
    #[schema(value_type = DiscountValueInput)]
    pub value: lastmile_domain::billing::discount::DiscountValue,
    /// First discounted day, between 2000-01-01 and 2199-12-31.
    #[serde(deserialize_with = "crate::dates::required")]
    #[schema(value_type = String, format = Date, pattern = r"^(?:2[01][0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))-02-29)$", example = "2026-06-01")]
    pub starts_on: jiff::civil::Date,
    /// Exclusive, after `starts_on`, at most 2199-12-31; none: open-ended.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    #[schema(value_type = Option<String>, format = Date, pattern = r"^(?:2[01][0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))-02-29)$", example = "2026-12-01")]
    pub ends_on: Option<jiff::civil::Date>,
    /// 1 to 200 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Loyalty 10 %"
    )]
    pub description: String,
}

/// Body of `POST /discounts/{id}/end`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EndDiscount {
    /// First day without the discount: after its first day, at most 2199-12-31.
    #[serde(deserialize_with = "crate::dates::required")]
    #[schema(value_type = String, format = Date, pattern = r"^(?:2[01][0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))-02-29)$", example = "2026-12-01")]
    pub ends_on: jiff::civil::Date,
}

#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PaymentAllocationBody {
    /// An open invoice of the payment's subscriber.
    pub invoice_id: Uuid,
    /// Positive, at most 10^12 minor units; the allocations add up to at most the payment.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64, example = 4900)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub amount_minor: i64,
}

/// Body of `POST /payments`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// Must exist.
    pub subscriber_id: Uuid,
    /// Positive, at most 10^12 minor units, in the subscriber's currency.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64, example = 4900)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub amount_minor: i64,
    /// Must be the subscriber's currency when given.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:AED|AFN|ALL|AMD|AOA|ARS|AUD|AWG|AZN|BAM|BBD|BDT|BGN|BHD|BIF|BMD|BND|BOB|BOV|BRL|BSD|BTN|BWP|BYN|BZD|CAD|CDF|CHE|CHF|CHW|CLF|CLP|CNY|COP|COU|CRC|CUP|CVE|CZK|DJF|DKK|DOP|DZD|EGP|ERN|ETB|EUR|FJD|FKP|GBP|GEL|GHS|GIP|GMD|GNF|GTQ|GYD|HKD|HNL|HTG|HUF|IDR|ILS|INR|IQD|IRR|ISK|JMD|JOD|JPY|KES|KGS|KHR|KMF|KPW|KRW|KWD|KYD|KZT|LAK|LBP|LKR|LRD|LSL|LYD|MAD|MDL|MGA|MKD|MMK|MNT|MOP|MRU|MUR|MVR|MWK|MXN|MXV|MYR|MZN|NAD|NGN|NIO|NOK|NPR|NZD|OMR|PAB|PEN|PGK|PHP|PKR|PLN|PYG|QAR|RON|RSD|RUB|RWF|SAR|SBD|SCR|SDG|SEK|SGD|SHP|SLE|SOS|SRD|SSP|STN|SVC|SYP|SZL|THB|TJS|TMT|TND|TOP|TRY|TTD|TWD|TZS|UAH|UGX|USD|USN|UYI|UYU|UYW|UZS|VED|VES|VND|VUV|WST|XAF|XCD|XCG|XOF|XPF|YER|ZAR|ZMW|ZWG)[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "EUR"
    )]
    pub currency: Option<String>,
    pub method: lastmile_domain::billing::account::PaymentMethod,
    /// At most 200 characters; an invoice number in it pays that invoice.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "INV-000042"
    )]
    pub reference: Option<String>,
    /// The bank's transaction id, at most 200 characters: recording the same one twice is
    /// refused as a duplicate.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub external_id: Option<String>,
    /// Default now; at most 24 hours ahead.
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
    /// An issued (or paid) invoice with a positive total.
    pub invoice_id: Uuid,
    /// Gross amount to credit: positive, at most what is not credited yet (and 10^12 minor
    /// units); default: everything not credited yet (a full credit note).
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64, example = 1000)]
    #[serde(default, deserialize_with = "crate::ints::opt_int")]
    pub amount_minor: Option<i64>,
    /// 1 to 500 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,498}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Outage 3–5 June"
    )]
    pub reason: String,
}

/// Body of `POST /subscribers/{id}/refunds`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// Positive, at most 10^12 minor units and at most the subscriber's credit balance.
    #[schema(minimum = 1, maximum = 1_000_000_000_000i64, example = 1000)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub amount_minor: i64,
    pub method: lastmile_domain::billing::account::PaymentMethod,
    /// At most 200 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub reference: Option<String>,
    /// 1 to 500 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,498}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Moved away"
    )]
    pub reason: String,
}

/// Body of `POST /invoices/{id}/void`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoidInvoiceBody {
    /// 1 to 500 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,498}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Wrong plan"
    )]
    pub reason: String,
}

/// Body of `POST /dunning-runs`; optional.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDunningRun {
    /// The day of the pass (`YYYY-MM-DD`); default today. Between 2000-01-01 and today.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    #[schema(value_type = Option<String>, format = Date, pattern = r"^(?:2[01][0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))-02-29)$", example = "2026-06-01")]
    pub as_of: Option<jiff::civil::Date>,
}

/// Body of `PUT /settings/billing`: the whole group (fields left out are not kept).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingSettingsBody {
    /// Due date = issue date + this many days.
    #[schema(minimum = 0, maximum = 365, example = 14)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub payment_terms_days: i64,
    /// 1 to 20 letters, digits, `-`, `_`, `/`, `.`.
    #[schema(
        min_length = 1,
        max_length = 20,
        pattern = r"^[A-Za-z0-9_/.-]{1,20}$",
        example = "INV-"
    )]
    pub invoice_prefix: String,
    /// As `invoice_prefix`, and different from it.
    #[schema(
        min_length = 1,
        max_length = 20,
        pattern = r"^[A-Za-z0-9_/.-]{1,20}$",
        example = "CN-"
    )]
    pub credit_note_prefix: String,
    /// Runs issue invoices at once; false: they leave drafts to review and issue.
    pub issue_invoices: bool,
    pub downgrades: lastmile_domain::billing::rating::DowngradeBilling,
    #[schema(value_type = IssuerInput)]
    pub issuer: lastmile_domain::billing::settings::Issuer,
}
