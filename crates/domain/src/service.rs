//! Services: one subscription of a subscriber to a plan, with the network credentials the
//! NAS authenticates.

use crate::ids::{NasId, PlanId, PlanVersionId, ServiceId, SubscriberId};
use crate::subscriber::Address;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum ServiceStatus {
    Pending,
    Active,
    Suspended,
    Terminated,
}

impl ServiceStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Active => "active",
            Self::Suspended => "suspended",
            Self::Terminated => "terminated",
        }
    }
}

impl FromStr for ServiceStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(Self::Pending),
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            "terminated" => Ok(Self::Terminated),
            o => Err(format!("unknown service status `{o}`")),
        }
    }
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who put a service into `suspended`: dunning resumes only its own suspensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum SuspensionCause {
    Operator,
    Dunning,
}

impl SuspensionCause {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::Dunning => "dunning",
        }
    }
}

impl FromStr for SuspensionCause {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "operator" => Ok(Self::Operator),
            "dunning" => Ok(Self::Dunning),
            o => Err(format!("unknown suspension cause `{o}`")),
        }
    }
}

/// How the NAS identifies the subscriber's line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AccessKind {
    /// PPPoE username + password (PAP or CHAP).
    Pppoe,
    /// Hotspot / captive-portal username + password.
    Hotspot,
    /// IPoE / DHCP: identified by MAC address and/or circuit id (option 82).
    Ipoe,
}

impl AccessKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pppoe => "pppoe",
            Self::Hotspot => "hotspot",
            Self::Ipoe => "ipoe",
        }
    }

    pub fn uses_password(self) -> bool {
        !matches!(self, Self::Ipoe)
    }
}

impl FromStr for AccessKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pppoe" => Ok(Self::Pppoe),
            "hotspot" => Ok(Self::Hotspot),
            "ipoe" => Ok(Self::Ipoe),
            o => Err(format!("unknown access kind `{o}`")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: ServiceId,
    pub subscriber_id: SubscriberId,
    /// The plan currently in force (per the timeline as of now).
    pub plan_id: PlanId,
    pub plan_version_id: PlanVersionId,
    pub status: ServiceStatus,
    pub suspension_cause: Option<SuspensionCause>,
    pub service_address: Address,
    pub access_kind: AccessKind,
    /// PPPoE/hotspot login; unique among services that are not terminated.
    pub username: Option<String>,
    /// The access password encrypted with the installation's secret key (see the app crate).
    /// Never leaves the process except towards a NAS.
    pub password_ciphertext: Option<Vec<u8>>,
    /// Lower-case, colon-separated.
    pub mac_address: Option<String>,
    pub circuit_id: Option<String>,
    /// Unique among services that are not terminated.
    pub static_ip: Option<IpAddr>,
    pub ip_pool: Option<String>,
    pub nas_id: Option<NasId>,
    /// Sessions allowed at once; 0 means no limit.
    pub simultaneous_use: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Optimistic-concurrency revision, incremented on every write.
    pub revision: i64,
}

/// Sessions a service may hold at once when nothing else is said.
pub const DEFAULT_SIMULTANEOUS_USE: u32 = 1;

/// Simultaneous-Use: 0 (no limit) to 1000.
pub fn simultaneous_use(v: u32) -> Result<u32, String> {
    if v <= 1000 {
        Ok(v)
    } else {
        Err("must be 0 (no limit) to 1000".into())
    }
}

/// PPPoE/hotspot usernames: printable ASCII without spaces, 1 to 64 characters (what every
/// NAS vendor accepts). Case is preserved; RADIUS compares exactly.
pub fn username(s: &str) -> Result<String, String> {
    let s = s.trim();
    if s.is_empty() || s.len() > 64 {
        return Err("must be 1 to 64 characters".into());
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(s.to_string())
}

/// RADIUS User-Password carries at most 128 octets (RFC 2865 §5.2).
pub fn password(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > 128 {
        return Err("must be 1 to 128 bytes".into());
    }
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(s.to_string())
}

/// MAC addresses in any of the common notations, normalised to `aa:bb:cc:dd:ee:ff`.
pub fn mac_address(s: &str) -> Result<String, String> {
    let hex: String = s
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .collect();
    if hex.len() != 12 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("must be a MAC address such as aa:bb:cc:dd:ee:ff".into());
    }
    let lower = hex.to_ascii_lowercase();
    let parts: Vec<&str> = (0..6).map(|i| &lower[i * 2..i * 2 + 2]).collect();
    Ok(parts.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_notations() {
        for s in ["AA:BB:CC:00:11:22", "aa-bb-cc-00-11-22", "aabb.cc00.1122"] {
            assert_eq!(mac_address(s).unwrap(), "aa:bb:cc:00:11:22");
        }
        assert!(mac_address("aa:bb").is_err());
        assert!(mac_address("zz:bb:cc:00:11:22").is_err());
    }

    #[test]
    fn usernames_and_passwords() {
        assert_eq!(username(" jo@isp ").unwrap(), "jo@isp");
        assert!(username("a b").is_err());
        assert!(username("").is_err());
        assert!(password(&"x".repeat(129)).is_err());
        assert!(password("s3cret").is_ok());
    }
}
