//! The request shapes of the domain types that request bodies embed (`Address`, `Burst`,
//! `CapPolicy`, `Tax`, `DunningStep`, `DiscountValue`, `Issuer`), with the constraints the
//! server checks on them in their schemas. The domain types keep their own schemas for
//! responses; request fields point here with `#[schema(value_type = ...)]`, and those with
//! integers or variants also deserialise through these types (see `burst` and the others
//! below). The tests check that each accepts exactly the fields of its domain type.

use jiff::civil::Date;
use lastmile_domain::billing::discount::DiscountValue;
use lastmile_domain::billing::dunning::DunningStep;
use lastmile_domain::billing::money::MAX_AMOUNT_MINOR;
use lastmile_domain::billing::tax::{Rate, Tax};
use lastmile_domain::plan::{Burst, CapPolicy, MAX_RATE_KBPS};
use serde::{Deserialize, Deserializer};
use utoipa::openapi::schema::{AdditionalProperties, AnyOfBuilder, ArrayBuilder, KnownFormat};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// A postal address. Every line is optional and trimmed; empty means none.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddressInput {
    /// At most 200 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "Lindenweg 4"
    )]
    pub line1: Option<String>,
    /// At most 200 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub line2: Option<String>,
    /// At most 100 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "Altdorf"
    )]
    pub city: Option<String>,
    /// At most 20 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,18}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "91000"
    )]
    pub postal_code: Option<String>,
    /// At most 100 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2, upper case.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[A-Z]{2}[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$",
        example = "DE"
    )]
    pub country: Option<String>,
}

/// Burst ("boost") parameters: rates of 1 to 100,000,000 kbit/s, at least the plan's rates.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BurstInput {
    #[schema(minimum = 1, maximum = 100_000_000)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub download_kbps: u32,
    #[schema(minimum = 1, maximum = 100_000_000)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub upload_kbps: u32,
    /// Average rate below which the burst is allowed, in kbit/s.
    #[serde(deserialize_with = "crate::ints::int")]
    pub threshold_download_kbps: u32,
    #[serde(deserialize_with = "crate::ints::int")]
    pub threshold_upload_kbps: u32,
    /// Averaging window, 1 to 3600 seconds.
    #[schema(minimum = 1, maximum = 3600)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub time_secs: u32,
}

/// What happens when a service crosses its data cap; anything but `none` needs the plan's
/// `data_cap_bytes`. (Schema written out below: each variant refuses unknown fields.)
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum CapPolicyInput {
    /// Counted, nothing enforced. (A struct variant, so unknown fields are refused here too.)
    None {},
    /// Slow down to this rate until the next period; the download rate below the plan's.
    Throttle {
        #[serde(deserialize_with = "crate::ints::int")]
        download_kbps: u32,
        #[serde(deserialize_with = "crate::ints::int")]
        upload_kbps: u32,
    },
    /// Rate the excess at this price per started GB (10^9 bytes), in minor units.
    Overage {
        #[serde(deserialize_with = "crate::ints::int")]
        price_per_gb_minor: i64,
    },
    /// Cut off until the next period.
    Block {},
}

impl From<CapPolicyInput> for CapPolicy {
    fn from(c: CapPolicyInput) -> Self {
        match c {
            CapPolicyInput::None {} => CapPolicy::None,
            CapPolicyInput::Throttle {
                download_kbps,
                upload_kbps,
            } => CapPolicy::Throttle {
                download_kbps,
                upload_kbps,
            },
            CapPolicyInput::Overage { price_per_gb_minor } => {
                CapPolicy::Overage { price_per_gb_minor }
            }
            CapPolicyInput::Block {} => CapPolicy::Block,
        }
    }
}

/// One variant of an internally tagged enum (`kind`), refusing unknown fields.
fn variant(kind: &str, description: &str, fields: Vec<(&str, ObjectBuilder)>) -> ObjectBuilder {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind])),
        )
        .required("kind");
    for (name, schema) in fields {
        o = o.property(name, schema).required(name);
    }
    o.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
}

fn int(format: KnownFormat, min: i64, max: i64) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(format)))
        .minimum(Some(min))
        .maximum(Some(max))
}

fn rate_kbps() -> ObjectBuilder {
    int(KnownFormat::Int32, 1, i64::from(MAX_RATE_KBPS))
}

fn positive_amount() -> ObjectBuilder {
    int(KnownFormat::Int64, 1, MAX_AMOUNT_MINOR)
}

impl PartialSchema for CapPolicyInput {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(variant("none", "Counted, nothing enforced.", vec![]))
            .item(variant(
                "throttle",
                "Slow down to this rate until the next period; the download rate below the \
                 plan's.",
                vec![("download_kbps", rate_kbps()), ("upload_kbps", rate_kbps())],
            ))
            .item(variant(
                "overage",
                "Rate the excess at this price per started GB (10^9 bytes), in minor units.",
                vec![("price_per_gb_minor", positive_amount())],
            ))
            .item(variant("block", "Cut off until the next period.", vec![]))
            .description(Some(
                "What happens when a service crosses its data cap; anything but `none` needs \
                 the plan's `data_cap_bytes`.",
            ))
            .into()
    }
}

impl ToSchema for CapPolicyInput {}

/// An optional text field: a string of this pattern and length, or `null`.
fn opt_text(max: usize, pattern: &str, example: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .max_length(Some(max))
        .pattern(Some(pattern))
        .examples([serde_json::json!(example)])
}

/// A variant of an internally tagged enum (`kind`) whose fields are all optional.
fn optional_variant(
    kind: &str,
    description: &str,
    fields: Vec<(&str, ObjectBuilder)>,
) -> ObjectBuilder {
    let mut o = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(description))
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind])),
        )
        .required("kind");
    for (name, schema) in fields {
        o = o.property(name, schema);
    }
    o.additional_properties(Some(AdditionalProperties::<Schema>::FreeForm(false)))
}

impl PartialSchema for crate::requests::SuspendedActionBody {
    fn schema() -> RefOr<Schema> {
        // Blank means none, as for the Reply-Message (the domain trims, then drops it).
        let garden_name = r"^[\t-\r ]*[!-~]{0,64}[\t-\r ]*$";
        OneOfBuilder::new()
            .item(optional_variant(
                "reject",
                "Access-Reject, with this Reply-Message if set.",
                vec![(
                    "reply_message",
                    opt_text(253, r"^[^\x00-\x1F\x7F-\x9F]*$", "Please pay your invoice"),
                )],
            ))
            .item(optional_variant(
                "walled_garden",
                "Access-Accept at the walled-garden rate, into this MikroTik address list \
                 and/or Framed-Pool when named.",
                vec![
                    ("address_list", opt_text(64, garden_name, "unpaid")),
                    ("pool", opt_text(64, garden_name, "walled-garden")),
                ],
            ))
            .description(Some(
                "What a NAS gives a suspended service: `reject` (optional Reply-Message of at \
                 most 253 bytes) or `walled_garden` (optional `address_list` and `pool`, each 1 \
                 to 64 printable ASCII characters without spaces, blank meaning none; with \
                 neither, the walled-garden rate and policy alone).",
            ))
            .into()
    }
}

impl ToSchema for crate::requests::SuspendedActionBody {}

/// One tax of a zone: it applies to the lines whose plan has this tax class.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaxInput {
    /// As printed on the invoice ("VAT", "GST"), 1 to 100 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,98}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "VAT"
    )]
    pub name: String,
    /// 1 to 50 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,48}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "standard"
    )]
    pub tax_class: String,
    /// A percentage from 0 to 100 with at most 4 decimals, as a string (`"20"`, `"8.875"`).
    #[schema(value_type = String, pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*0*(?:100(?:\.0{1,4})?|[0-9]{1,2}(?:\.[0-9]{1,4})?)[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$", example = "20")]
    pub rate: Rate,
    /// The first billing period start this rate applies to (between 2000-01-01 and
    /// 2199-12-31); absent: every period until the next dated entry of the same tax.
    #[serde(default, deserialize_with = "crate::dates::optional")]
    #[schema(value_type = Option<String>, format = Date, pattern = r"^(?:2[01][0-9]{2}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))-02-29)$", example = "2026-01-01")]
    pub valid_from: Option<Date>,
}

/// One step of a dunning policy.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DunningStepInput {
    /// Days after the due date (1 = the day after), 1 to 730.
    #[schema(minimum = 1, maximum = 730, example = 10)]
    #[serde(deserialize_with = "crate::ints::int")]
    pub days_overdue: i64,
    pub action: lastmile_domain::billing::dunning::DunningActionKind,
}

/// How much a discount takes off. (Schema written out below: each variant refuses unknown
/// fields.)
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DiscountValueInput {
    Percent {
        percent: Rate,
    },
    Fixed {
        #[serde(deserialize_with = "crate::ints::int")]
        amount_minor: i64,
    },
}

impl From<DiscountValueInput> for DiscountValue {
    fn from(v: DiscountValueInput) -> Self {
        match v {
            DiscountValueInput::Percent { percent } => DiscountValue::Percent { percent },
            DiscountValueInput::Fixed { amount_minor } => DiscountValue::Fixed { amount_minor },
        }
    }
}

impl PartialSchema for DiscountValueInput {
    fn schema() -> RefOr<Schema> {
        let percent = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:0*(?:100(?:\.0{1,4})?|[1-9][0-9]?(?:\.[0-9]{1,4})?)|0+\.(?:[1-9][0-9]{0,3}|0[1-9][0-9]{0,2}|00[1-9][0-9]?|000[1-9]))[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$"))
            .examples([serde_json::json!("10")]);
        OneOfBuilder::new()
            .item(variant(
                "percent",
                "This percentage (above 0, at most 100, at most 4 decimals, as a string) of \
                 each discounted recurring charge.",
                vec![("percent", percent)],
            ))
            .item(variant(
                "fixed",
                "This amount per billing period (positive, at most 10^12 minor units), \
                 prorated by discounted days, in the subscriber's currency.",
                vec![("amount_minor", positive_amount())],
            ))
            .description(Some("How much a discount takes off."))
            .into()
    }
}

impl ToSchema for DiscountValueInput {}

/// Who sends the invoices: printed on every document.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IssuerInput {
    /// 1 to 200 characters.
    #[schema(
        min_length = 1,
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*$",
        example = "Fibre Town ISP"
    )]
    pub name: String,
    /// At most 8 lines of at most 200 bytes (UTF-8) each.
    #[serde(default)]
    #[schema(schema_with = address_lines)]
    pub address_lines: Vec<String>,
    /// At most 200 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub tax_id: Option<String>,
    /// At most 200 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub email: Option<String>,
    /// At most 200 characters.
    #[schema(
        pattern = r"^[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*(?:[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000](?:[^\x00-\x1F\x7F-\x9F]{0,198}[^\x00-\x20\x7F-\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000])?[\t-\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000]*)?$"
    )]
    pub phone: Option<String>,
}

fn address_lines() -> ArrayBuilder {
    ArrayBuilder::new()
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .max_length(Some(200)),
        )
        .max_items(Some(8))
        .description(Some("At most 8 lines of at most 200 bytes (UTF-8) each."))
}

// Request fields of domain types deserialise through these mirrors (for
// `#[serde(deserialize_with = ...)]`): their integers take `5.0` like the rest of the API, and
// their variants refuse unknown fields.

impl From<BurstInput> for Burst {
    fn from(b: BurstInput) -> Self {
        Burst {
            download_kbps: b.download_kbps,
            upload_kbps: b.upload_kbps,
            threshold_download_kbps: b.threshold_download_kbps,
            threshold_upload_kbps: b.threshold_upload_kbps,
            time_secs: b.time_secs,
        }
    }
}

impl From<TaxInput> for Tax {
    fn from(t: TaxInput) -> Self {
        Tax {
            name: t.name,
            tax_class: t.tax_class,
            rate: t.rate,
            valid_from: t.valid_from,
        }
    }
}

impl From<DunningStepInput> for DunningStep {
    fn from(s: DunningStepInput) -> Self {
        DunningStep {
            days_overdue: s.days_overdue,
            action: s.action,
        }
    }
}

pub(crate) fn burst<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Burst>, D::Error> {
    Ok(Option::<BurstInput>::deserialize(d)?.map(Into::into))
}

pub(crate) fn cap_policy<'de, D: Deserializer<'de>>(d: D) -> Result<Option<CapPolicy>, D::Error> {
    Ok(Option::<CapPolicyInput>::deserialize(d)?.map(Into::into))
}

pub(crate) fn taxes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Tax>, D::Error> {
    Ok(Vec::<TaxInput>::deserialize(d)?
        .into_iter()
        .map(Into::into)
        .collect())
}

pub(crate) fn dunning_steps<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<DunningStep>, D::Error> {
    Ok(Vec::<DunningStepInput>::deserialize(d)?
        .into_iter()
        .map(Into::into)
        .collect())
}

pub(crate) fn discount_value<'de, D: Deserializer<'de>>(d: D) -> Result<DiscountValue, D::Error> {
    DiscountValueInput::deserialize(d).map(Into::into)
}

/// Operator-defined fields of a subscriber (for `#[schema(schema_with = ...)]`).
pub fn custom_fields() -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Object, Type::Null]))
        .max_properties(Some(50))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .min_length(Some(1))
                .max_length(Some(64)),
        ))
        .description(Some(
            "Operator-defined fields (any JSON values): at most 50, keys of 1 to 64 bytes \
             (UTF-8), at most 16 KiB as JSON, no NUL characters.",
        ))
        .into()
}

/// Acct-Interim-Interval: 0 (send none) or 60 to 86400 seconds.
pub fn interim_interval() -> RefOr<Schema> {
    let int = || ObjectBuilder::new().schema_type(Type::Integer);
    // `null` is what an absent field is: the default on create, left alone on update (as
    // for every other optional field of these bodies).
    AnyOfBuilder::new()
        .item(int().minimum(Some(0)).maximum(Some(0)))
        .item(int().minimum(Some(60)).maximum(Some(86_400)))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .description(Some(
            "Acct-Interim-Interval sent in Accepts, seconds: 0 (send none) or 60 to 86400; \
             null as if absent.",
        ))
        .examples([serde_json::json!(300)])
        .into()
}

fn ip_formats() -> AnyOfBuilder {
    let ip = |format| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    AnyOfBuilder::new()
        .item(ip(KnownFormat::Ipv4))
        .item(ip(KnownFormat::Ipv6))
        .description(Some("An IPv4 or IPv6 address."))
        .examples([serde_json::json!("192.0.2.1")])
}

/// An IPv4 or IPv6 address (for `#[schema(schema_with = ...)]`).
pub fn ip_address() -> RefOr<Schema> {
    ip_formats().into()
}

/// An IPv4 or IPv6 address, or `null` (for `#[schema(schema_with = ...)]`).
pub fn ip_address_or_null() -> RefOr<Schema> {
    ip_formats()
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .into()
}
