//! Subscribers: the customer accounts.

use crate::ids::SubscriberId;
use crate::validate::Currency;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SubscriberStatus {
    Active,
    Suspended,
    Closed,
}

impl SubscriberStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Closed => "closed",
        }
    }
}

impl FromStr for SubscriberStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "closed" => Ok(Self::Closed),
            other => Err(format!("unknown subscriber status `{other}`")),
        }
    }
}

impl fmt::Display for SubscriberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The human account number, `S-` followed by at least six digits (e.g. `S-000123`), or an
/// operator-chosen number migrated from another system (letters, digits, `-`, `_`, `/`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SubscriberNumber(String);

impl SubscriberNumber {
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() || s.len() > 32 {
            return Err("must be 1 to 32 characters".into());
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '/'))
        {
            return Err("may contain only letters, digits, `-`, `_` and `/`".into());
        }
        Ok(Self(s.to_string()))
    }

    /// The number the system assigns from a sequence value.
    pub fn from_sequence(n: u64) -> Self {
        Self(format!("S-{n:06}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SubscriberNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Billing day: 1 means calendar-month billing; 2..=28 is an anniversary day. 29–31 are not
/// allowed so every month has the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BillingDay(u8);

impl BillingDay {
    pub fn new(day: i64) -> Result<Self, String> {
        if (1..=28).contains(&day) {
            Ok(Self(day as u8))
        } else {
            Err("must be between 1 and 28".into())
        }
    }

    pub fn get(self) -> u8 {
        self.0
    }
}

impl Default for BillingDay {
    fn default() -> Self {
        Self(1)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Address {
    pub line1: Option<String>,
    pub line2: Option<String>,
    pub city: Option<String>,
    pub postal_code: Option<String>,
    pub region: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscriber {
    pub id: SubscriberId,
    pub number: SubscriberNumber,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub billing_address: Address,
    pub currency: Currency,
    pub tax_zone: Option<String>,
    /// Code of the dunning policy; `None`: the default policy.
    pub dunning_policy: Option<String>,
    pub billing_day: BillingDay,
    pub status: SubscriberStatus,
    /// Operator-defined fields (string keys, any JSON value).
    pub custom_fields: serde_json::Map<String, serde_json::Value>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency revision, incremented on every write.
    pub revision: i64,
}
