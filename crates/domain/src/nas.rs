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
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub revision: i64,
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
}
