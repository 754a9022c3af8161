//! Network access servers: the routers subscribers connect through.

use crate::ids::NasId;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::str::FromStr;

/// The dialect a NAS speaks: which vendor attributes carry the tier, how CoA is addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum VendorProfile {
    Mikrotik,
    Cisco,
    Juniper,
    Huawei,
    /// WISPr attributes, understood by many hotspot controllers.
    Wispr,
    /// Standard attributes only.
    Generic,
}

impl VendorProfile {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mikrotik => "mikrotik",
            Self::Cisco => "cisco",
            Self::Juniper => "juniper",
            Self::Huawei => "huawei",
            Self::Wispr => "wispr",
            Self::Generic => "generic",
        }
    }
}

impl FromStr for VendorProfile {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mikrotik" => Ok(Self::Mikrotik),
            "cisco" => Ok(Self::Cisco),
            "juniper" => Ok(Self::Juniper),
            "huawei" => Ok(Self::Huawei),
            "wispr" => Ok(Self::Wispr),
            "generic" => Ok(Self::Generic),
            o => Err(format!("unknown vendor profile `{o}`")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nas {
    pub id: NasId,
    pub name: String,
    /// Source address of its RADIUS packets; unique.
    pub ip: IpAddr,
    /// The RADIUS shared secret, encrypted like service passwords (RADIUS needs it in clear).
    pub secret_ciphertext: Vec<u8>,
    pub vendor: VendorProfile,
    /// Where it listens for CoA / Disconnect-Request (RFC 5176 default 3799).
    pub coa_port: u16,
    /// Optional management-API endpoint (e.g. `https://10.0.0.1/rest`) and user; its password
    /// is encrypted.
    pub api_url: Option<String>,
    pub api_username: Option<String>,
    pub api_password_ciphertext: Option<Vec<u8>>,
    /// Drop Access-Requests without a Message-Authenticator (the BlastRADIUS hardening,
    /// CVE-2024-3596). Switch it off only for a NAS that cannot send the attribute.
    pub require_message_authenticator: bool,
    /// Acct-Interim-Interval sent in Accepts, seconds; 0 sends none.
    pub interim_interval_secs: u32,
    /// Session-Timeout sent in Accepts, seconds.
    pub session_timeout_secs: Option<u32>,
    /// What a suspended service gets.
    pub suspended_action: SuspendedAction,
    /// A session without accounting for this many interim intervals is closed as stale.
    pub stale_session_multiplier: u32,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
}

/// Acct-Interim-Interval when none is given: five minutes.
pub const DEFAULT_INTERIM_INTERVAL_SECS: u32 = 300;
/// Interim intervals without accounting before a session counts as stale.
pub const DEFAULT_STALE_SESSION_MULTIPLIER: u32 = 3;

/// What a NAS does with a suspended service. Written once here: the catalogue stores it and
/// the RADIUS directory decides with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SuspendedAction {
    /// Access-Reject, with this Reply-Message if set (PPPoE clients show it).
    Reject {
        /// Shown to the subscriber by some clients; at most 253 bytes (one attribute).
        reply_message: Option<String>,
    },
    /// Access-Accept into the walled garden: the session joins `address_list` (MikroTik
    /// firewall address list; other vendors ignore it) and takes its address from `pool`
    /// (Framed-Pool) when set. At least one of them is set.
    WalledGarden {
        /// MikroTik address list the firewall redirects to the payment portal.
        address_list: Option<String>,
        /// Pool of walled-garden addresses; replaces the service's own addressing.
        pool: Option<String>,
    },
}

impl SuspendedAction {
    /// The stored kind: `reject` or `walled_garden`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Reject { .. } => "reject",
            Self::WalledGarden { .. } => "walled_garden",
        }
    }
}

impl Default for SuspendedAction {
    fn default() -> Self {
        SuspendedAction::Reject {
            reply_message: None,
        }
    }
}

/// Acct-Interim-Interval: 0 (send none) or 60 s to a day. Shorter floods the accounting path.
pub fn interim_interval_secs(v: u32) -> Result<u32, String> {
    if v == 0 || (60..=86_400).contains(&v) {
        Ok(v)
    } else {
        Err("must be 0 (none) or 60 to 86400 seconds".into())
    }
}

/// Session-Timeout: a minute to 30 days.
pub fn session_timeout_secs(v: u32) -> Result<u32, String> {
    if (60..=2_592_000).contains(&v) {
        Ok(v)
    } else {
        Err("must be 60 to 2592000 seconds".into())
    }
}

/// Interim intervals before a session is stale: one missed update is normal (UDP), so 2 to 100.
pub fn stale_session_multiplier(v: u32) -> Result<u32, String> {
    if (2..=100).contains(&v) {
        Ok(v)
    } else {
        Err("must be 2 to 100".into())
    }
}

/// Reply-Message: one RADIUS attribute holds at most 253 octets.
pub fn reply_message(s: &str) -> Result<Option<String>, String> {
    // Measured as sent, surrounding blanks included (the API schema's maxLength counts them).
    if s.len() > 253 {
        return Err("must be at most 253 bytes".into());
    }
    let s = s.trim();
    if s.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok((!s.is_empty()).then(|| s.to_string()))
}

/// A MikroTik address list or a pool name: at most 64 characters, printable ASCII without
/// spaces (what RouterOS and Framed-Pool accept); blank means none.
pub fn garden_name(s: &str) -> Result<Option<String>, String> {
    // The length as sent, surrounding blanks included (what the API schema's maxLength says).
    if s.len() > 64 {
        return Err("must be at most 64 characters".into());
    }
    let s = s.trim();
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok((!s.is_empty()).then(|| s.to_string()))
}

/// RADIUS shared secrets: RFC 2865 requires at least one octet; we require 8 printable ASCII
/// characters (anything shorter is trivially brute-forced from one sniffed packet).
pub fn shared_secret(s: &str) -> Result<String, String> {
    if s.len() < 8 || s.len() > 128 {
        return Err("must be 8 to 128 characters".into());
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be printable ASCII without spaces".into());
    }
    Ok(s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets() {
        assert!(shared_secret("testing123").is_ok());
        assert!(shared_secret("short").is_err());
        assert!(shared_secret("has space in it").is_err());
    }

    #[test]
    fn radius_settings() {
        assert_eq!(interim_interval_secs(0), Ok(0));
        assert!(interim_interval_secs(59).is_err());
        assert_eq!(interim_interval_secs(86_400), Ok(86_400));
        assert!(interim_interval_secs(86_401).is_err());
        assert!(session_timeout_secs(59).is_err());
        assert!(session_timeout_secs(2_592_001).is_err());
        assert!(stale_session_multiplier(1).is_err());
        assert_eq!(stale_session_multiplier(100), Ok(100));
        assert_eq!(reply_message("  "), Ok(None));
        assert!(reply_message(&"é".repeat(127)).is_err(), "254 bytes");
        assert_eq!(garden_name(" unpaid "), Ok(Some("unpaid".into())));
        assert!(garden_name("a b").is_err());
        assert!(
            garden_name(&format!(" 0{}", " ".repeat(63))).is_err(),
            "65 as sent"
        );
        assert_eq!(garden_name(&"x".repeat(64)), Ok(Some("x".repeat(64))));
        let json = serde_json::to_value(SuspendedAction::WalledGarden {
            address_list: Some("unpaid".into()),
            pool: None,
        })
        .unwrap();
        assert_eq!(json["kind"], "walled_garden");
    }
}
