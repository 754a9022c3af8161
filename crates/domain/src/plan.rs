//! Plans: sellable bandwidth tiers. A plan's commercial and technical terms live in immutable,
//! numbered versions; a service points at the version it was sold, so changing a price never
//! changes what existing subscribers pay until they are moved.

use crate::billing::money::check_amount;
use crate::ids::{PlanId, PlanVersionId};
use crate::validate::{Currency, ValidationErrors};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PlanStatus {
    /// Can be sold and moved to.
    Active,
    /// No new services or plan changes to it; existing services keep it.
    Retired,
}

impl PlanStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Retired => "retired",
        }
    }
}

impl FromStr for PlanStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(Self::Active),
            "retired" => Ok(Self::Retired),
            o => Err(format!("unknown plan status `{o}`")),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum BillingInterval {
    Monthly,
    Quarterly,
    Annual,
}

impl BillingInterval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Monthly => "monthly",
            Self::Quarterly => "quarterly",
            Self::Annual => "annual",
        }
    }
}

impl FromStr for BillingInterval {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "monthly" => Ok(Self::Monthly),
            "quarterly" => Ok(Self::Quarterly),
            "annual" => Ok(Self::Annual),
            o => Err(format!("unknown billing interval `{o}`")),
        }
    }
}

/// What happens when a service crosses its data cap.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CapPolicy {
    /// Counted, nothing enforced.
    None,
    /// Slow down to this rate until the next period.
    Throttle {
        download_kbps: u32,
        upload_kbps: u32,
    },
    /// Rate the excess at this price per started GB (10^9 bytes), in minor units.
    Overage { price_per_gb_minor: i64 },
    /// Cut off until the next period.
    Block,
}

impl CapPolicy {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Throttle { .. } => "throttle",
            Self::Overage { .. } => "overage",
            Self::Block => "block",
        }
    }
}

/// Burst ("boost") parameters as MikroTik and others understand them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Burst {
    pub download_kbps: u32,
    pub upload_kbps: u32,
    /// Average rate below which the burst is allowed, in kbit/s.
    pub threshold_download_kbps: u32,
    pub threshold_upload_kbps: u32,
    /// Averaging window in seconds.
    pub time_secs: u32,
}

/// A daily window whose traffic does not count against the cap, in the operator's time zone.
/// `start_minute` may be greater than `end_minute` (the window crosses midnight).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreeWindow {
    pub start_minute: u16,
    pub end_minute: u16,
}

/// The terms of one plan version. Money in integer minor units of `currency`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTerms {
    pub download_kbps: u32,
    pub upload_kbps: u32,
    pub burst: Option<Burst>,
    pub price_minor: i64,
    pub currency: Currency,
    pub billing_interval: BillingInterval,
    pub setup_fee_minor: i64,
    /// Bytes per billing period; `None` means unlimited.
    pub data_cap_bytes: Option<i64>,
    pub cap_policy: CapPolicy,
    pub free_window: Option<FreeWindow>,
    pub contract_months: u32,
    pub early_termination_fee_minor: i64,
    pub tax_class: String,
}

/// The largest rate we accept: 100 Gbit/s.
pub const MAX_RATE_KBPS: u32 = 100_000_000;

impl PlanTerms {
    /// Checks the cross-field rules; field names match the API's.
    pub fn validate(&self) -> Result<(), ValidationErrors> {
        let mut e = ValidationErrors::new();
        let rate = |e: &mut ValidationErrors, field: &str, v: u32| {
            if v == 0 || v > MAX_RATE_KBPS {
                e.add(
                    field,
                    format!("must be between 1 and {MAX_RATE_KBPS} kbit/s"),
                );
            }
        };
        rate(&mut e, "download_kbps", self.download_kbps);
        rate(&mut e, "upload_kbps", self.upload_kbps);
        for (field, v) in [
            ("price_minor", self.price_minor),
            ("setup_fee_minor", self.setup_fee_minor),
            (
                "early_termination_fee_minor",
                self.early_termination_fee_minor,
            ),
        ] {
            if v < 0 {
                e.add(field, "must not be negative");
            } else if let Err(m) = check_amount(v) {
                e.add(field, m);
            }
        }
        if self.contract_months > 120 {
            e.add("contract_months", "must be at most 120");
        }
        if self.early_termination_fee_minor > 0 && self.contract_months == 0 {
            e.add(
                "early_termination_fee_minor",
                "needs a contract (contract_months > 0)",
            );
        }
        if let Some(cap) = self.data_cap_bytes {
            if cap <= 0 {
                e.add("data_cap_bytes", "must be positive (omit it for no cap)");
            }
        }
        match &self.cap_policy {
            CapPolicy::None => {}
            policy => {
                if self.data_cap_bytes.is_none() {
                    e.add(
                        "cap_policy",
                        format!("`{}` needs a data_cap_bytes", policy.kind()),
                    );
                }
                match policy {
                    CapPolicy::Throttle {
                        download_kbps,
                        upload_kbps,
                    } => {
                        rate(&mut e, "cap_policy.download_kbps", *download_kbps);
                        rate(&mut e, "cap_policy.upload_kbps", *upload_kbps);
                        if *download_kbps >= self.download_kbps {
                            e.add("cap_policy.download_kbps", "must be below the plan's rate");
                        }
                    }
                    CapPolicy::Overage { price_per_gb_minor } if *price_per_gb_minor <= 0 => {
                        e.add("cap_policy.price_per_gb_minor", "must be positive");
                    }
                    CapPolicy::Overage { price_per_gb_minor } => {
                        if let Err(m) = check_amount(*price_per_gb_minor) {
                            e.add("cap_policy.price_per_gb_minor", m);
                        }
                    }
                    _ => {}
                }
            }
        }
        if let Some(b) = &self.burst {
            rate(&mut e, "burst.download_kbps", b.download_kbps);
            rate(&mut e, "burst.upload_kbps", b.upload_kbps);
            if b.download_kbps < self.download_kbps || b.upload_kbps < self.upload_kbps {
                e.add("burst", "burst rates must be at least the plan's rates");
            }
            if b.time_secs == 0 || b.time_secs > 3600 {
                e.add("burst.time_secs", "must be between 1 and 3600");
            }
        }
        if let Some(w) = &self.free_window {
            if w.start_minute >= 1440 {
                e.add("free_window.start_minute", "must be below 1440");
            }
            if w.end_minute >= 1440 {
                e.add("free_window.end_minute", "must be below 1440");
            }
            if w.start_minute == w.end_minute {
                e.add("free_window", "start and end must differ");
            }
        }
        e.into_result()
    }

    /// True when moving from `self` to `to` is an upgrade (takes effect at once when billing
    /// arrives): a higher price, or the same price with a faster download.
    pub fn is_upgrade_to(&self, to: &PlanTerms) -> bool {
        (to.price_minor, to.download_kbps) > (self.price_minor, self.download_kbps)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub id: PlanId,
    /// Short unique code, e.g. `FIBER-100`.
    pub code: String,
    pub name: String,
    pub status: PlanStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency revision, incremented on every write.
    pub revision: i64,
    /// The version new services and plan changes get.
    pub current: PlanVersion,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanVersion {
    pub id: PlanVersionId,
    pub plan_id: PlanId,
    /// 1, 2, 3… per plan.
    pub version: i32,
    pub terms: PlanTerms,
    pub created_at: Timestamp,
}

/// Plan codes: upper-case letters, digits, `-`, `_`, `.`; 1 to 40 characters.
pub fn plan_code(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || s.len() > 40 {
        return Err("must be 1 to 40 characters".into());
    }
    if !s
        .chars()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || matches!(c, '-' | '_' | '.'))
    {
        return Err("may contain only A-Z, 0-9, `-`, `_` and `.`".into());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms() -> PlanTerms {
        PlanTerms {
            download_kbps: 100_000,
            upload_kbps: 20_000,
            burst: None,
            price_minor: 4_900,
            currency: Currency::parse("EUR").unwrap(),
            billing_interval: BillingInterval::Monthly,
            setup_fee_minor: 0,
            data_cap_bytes: None,
            cap_policy: CapPolicy::None,
            free_window: None,
            contract_months: 0,
            early_termination_fee_minor: 0,
            tax_class: "standard".into(),
        }
    }

    #[test]
    fn amounts_beyond_the_input_maximum_are_refused_by_field() {
        use crate::billing::money::MAX_AMOUNT_MINOR;
        let mut t = terms();
        t.price_minor = MAX_AMOUNT_MINOR;
        assert!(t.validate().is_ok());
        t.price_minor = i64::MAX;
        t.setup_fee_minor = MAX_AMOUNT_MINOR + 1;
        let fields: Vec<String> = t
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|f| f.field)
            .collect();
        assert_eq!(fields, ["price_minor", "setup_fee_minor"]);
    }

    #[test]
    fn valid_terms_pass() {
        assert!(terms().validate().is_ok());
    }

    #[test]
    fn cap_policy_needs_cap_and_slower_throttle() {
        let mut t = terms();
        t.cap_policy = CapPolicy::Throttle {
            download_kbps: 200_000,
            upload_kbps: 1_000,
        };
        let e = t.validate().unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["cap_policy", "cap_policy.download_kbps"]);
    }

    #[test]
    fn rates_and_money_bounds() {
        let mut t = terms();
        t.download_kbps = 0;
        t.price_minor = -1;
        t.early_termination_fee_minor = 100;
        let e = t.validate().unwrap_err();
        let fields: Vec<_> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "download_kbps",
                "price_minor",
                "early_termination_fee_minor"
            ]
        );
    }

    #[test]
    fn upgrade_ordering() {
        let a = terms();
        let mut b = terms();
        b.price_minor += 1;
        assert!(a.is_upgrade_to(&b));
        assert!(!b.is_upgrade_to(&a));
        assert!(!a.is_upgrade_to(&a));
    }

    #[test]
    fn codes() {
        assert!(plan_code("FIBER-100").is_ok());
        assert!(plan_code("fiber").is_err());
        assert!(plan_code("").is_err());
    }
}
