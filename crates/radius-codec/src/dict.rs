//! The dictionary, as Rust constants: the attribute numbers, vendor attributes and values an
//! ISP's AAA server uses. Numbers follow the RFCs named on each item and agree with the
//! FreeRADIUS dictionaries NAS vendors test against.
//!
//! Attribute types are a newtype over the wire octet rather than a closed enum, so a packet
//! carrying an attribute nobody listed here still decodes and can be passed through.

use core::fmt;

/// An attribute type: the first octet of an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AttrType(pub u8);

macro_rules! attribute_types {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $text:literal; )*) => {
        impl AttrType {
            $( $(#[$doc])* pub const $name: AttrType = AttrType($num); )*

            /// The attribute's dictionary name, if listed here.
            pub const fn name(self) -> Option<&'static str> {
                match self.0 {
                    $( $num => Some($text), )*
                    _ => None,
                }
            }
        }
    };
}

attribute_types! {
    /// RFC 2865 §5.1.
    USER_NAME = 1, "User-Name";
    /// RFC 2865 §5.2: hidden with the shared secret, see [`crate::pap`].
    USER_PASSWORD = 2, "User-Password";
    /// RFC 2865 §5.3: CHAP ident and response, see [`crate::chap`].
    CHAP_PASSWORD = 3, "CHAP-Password";
    /// RFC 2865 §5.4.
    NAS_IP_ADDRESS = 4, "NAS-IP-Address";
    /// RFC 2865 §5.5.
    NAS_PORT = 5, "NAS-Port";
    /// RFC 2865 §5.6, values in [`service_type`].
    SERVICE_TYPE = 6, "Service-Type";
    /// RFC 2865 §5.7, values in [`framed_protocol`].
    FRAMED_PROTOCOL = 7, "Framed-Protocol";
    /// RFC 2865 §5.8.
    FRAMED_IP_ADDRESS = 8, "Framed-IP-Address";
    /// RFC 2865 §5.9.
    FRAMED_IP_NETMASK = 9, "Framed-IP-Netmask";
    /// RFC 2865 §5.10.
    FRAMED_ROUTING = 10, "Framed-Routing";
    /// RFC 2865 §5.11.
    FILTER_ID = 11, "Filter-Id";
    /// RFC 2865 §5.12.
    FRAMED_MTU = 12, "Framed-MTU";
    /// RFC 2865 §5.13.
    FRAMED_COMPRESSION = 13, "Framed-Compression";
    /// RFC 2865 §5.14.
    LOGIN_IP_HOST = 14, "Login-IP-Host";
    /// RFC 2865 §5.15.
    LOGIN_SERVICE = 15, "Login-Service";
    /// RFC 2865 §5.18.
    REPLY_MESSAGE = 18, "Reply-Message";
    /// RFC 2865 §5.22.
    FRAMED_ROUTE = 22, "Framed-Route";
    /// RFC 2865 §5.24: echoed by the NAS after an Access-Challenge.
    STATE = 24, "State";
    /// RFC 2865 §5.25: echoed by the NAS in accounting.
    CLASS = 25, "Class";
    /// RFC 2865 §5.26, see [`crate::attr::Vsa`].
    VENDOR_SPECIFIC = 26, "Vendor-Specific";
    /// RFC 2865 §5.27.
    SESSION_TIMEOUT = 27, "Session-Timeout";
    /// RFC 2865 §5.28.
    IDLE_TIMEOUT = 28, "Idle-Timeout";
    /// RFC 2865 §5.29.
    TERMINATION_ACTION = 29, "Termination-Action";
    /// RFC 2865 §5.30.
    CALLED_STATION_ID = 30, "Called-Station-Id";
    /// RFC 2865 §5.31: usually the subscriber's MAC address.
    CALLING_STATION_ID = 31, "Calling-Station-Id";
    /// RFC 2865 §5.32.
    NAS_IDENTIFIER = 32, "NAS-Identifier";
    /// RFC 2865 §5.33: must be copied unmodified, in order, into the reply.
    PROXY_STATE = 33, "Proxy-State";
    /// RFC 2866 §5.1, values in [`crate::acct::AcctStatusType`].
    ACCT_STATUS_TYPE = 40, "Acct-Status-Type";
    /// RFC 2866 §5.2.
    ACCT_DELAY_TIME = 41, "Acct-Delay-Time";
    /// RFC 2866 §5.3: low 32 bits, see [`crate::acct`].
    ACCT_INPUT_OCTETS = 42, "Acct-Input-Octets";
    /// RFC 2866 §5.4: low 32 bits, see [`crate::acct`].
    ACCT_OUTPUT_OCTETS = 43, "Acct-Output-Octets";
    /// RFC 2866 §5.5.
    ACCT_SESSION_ID = 44, "Acct-Session-Id";
    /// RFC 2866 §5.6, values in [`acct_authentic`].
    ACCT_AUTHENTIC = 45, "Acct-Authentic";
    /// RFC 2866 §5.7.
    ACCT_SESSION_TIME = 46, "Acct-Session-Time";
    /// RFC 2866 §5.8.
    ACCT_INPUT_PACKETS = 47, "Acct-Input-Packets";
    /// RFC 2866 §5.9.
    ACCT_OUTPUT_PACKETS = 48, "Acct-Output-Packets";
    /// RFC 2866 §5.10, values in [`acct_terminate_cause`].
    ACCT_TERMINATE_CAUSE = 49, "Acct-Terminate-Cause";
    /// RFC 2866 §5.11.
    ACCT_MULTI_SESSION_ID = 50, "Acct-Multi-Session-Id";
    /// RFC 2866 §5.12.
    ACCT_LINK_COUNT = 51, "Acct-Link-Count";
    /// RFC 2869 §5.1: how many times Acct-Input-Octets wrapped past 2^32.
    ACCT_INPUT_GIGAWORDS = 52, "Acct-Input-Gigawords";
    /// RFC 2869 §5.2.
    ACCT_OUTPUT_GIGAWORDS = 53, "Acct-Output-Gigawords";
    /// RFC 2869 §5.3: seconds since the Unix epoch.
    EVENT_TIMESTAMP = 55, "Event-Timestamp";
    /// RFC 2865 §5.40.
    CHAP_CHALLENGE = 60, "CHAP-Challenge";
    /// RFC 2865 §5.41, values in [`nas_port_type`].
    NAS_PORT_TYPE = 61, "NAS-Port-Type";
    /// RFC 2865 §5.42.
    PORT_LIMIT = 62, "Port-Limit";
    /// RFC 3579 §3.1: may span several attributes.
    EAP_MESSAGE = 79, "EAP-Message";
    /// RFC 3579 §3.2 / RFC 2869 §5.14, see [`crate::auth`].
    MESSAGE_AUTHENTICATOR = 80, "Message-Authenticator";
    /// RFC 2869 §5.16.
    ACCT_INTERIM_INTERVAL = 85, "Acct-Interim-Interval";
    /// RFC 2869 §5.17.
    NAS_PORT_ID = 87, "NAS-Port-Id";
    /// RFC 2869 §5.18.
    FRAMED_POOL = 88, "Framed-Pool";
    /// RFC 3162 §2.1.
    NAS_IPV6_ADDRESS = 95, "NAS-IPv6-Address";
    /// RFC 3162 §2.2.
    FRAMED_INTERFACE_ID = 96, "Framed-Interface-Id";
    /// RFC 3162 §2.3, see [`crate::attr::Ipv6Prefix`].
    FRAMED_IPV6_PREFIX = 97, "Framed-IPv6-Prefix";
    /// RFC 3162 §2.4.
    LOGIN_IPV6_HOST = 98, "Login-IPv6-Host";
    /// RFC 3162 §2.5.
    FRAMED_IPV6_ROUTE = 99, "Framed-IPv6-Route";
    /// RFC 3162 §2.6.
    FRAMED_IPV6_POOL = 100, "Framed-IPv6-Pool";
    /// RFC 5176 §3.5, values in [`ErrorCause`].
    ERROR_CAUSE = 101, "Error-Cause";
    /// RFC 4818: the prefix delegated by DHCPv6-PD.
    DELEGATED_IPV6_PREFIX = 123, "Delegated-IPv6-Prefix";
    /// RFC 6911 §3.1.
    FRAMED_IPV6_ADDRESS = 168, "Framed-IPv6-Address";
}

impl From<u8> for AttrType {
    fn from(value: u8) -> Self {
        AttrType(value)
    }
}

impl fmt::Display for AttrType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Attr-{}", self.0),
        }
    }
}

/// A vendor attribute: vendor (SMI Private Enterprise Code) and vendor type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct VendorAttr {
    /// The vendor's SMI Private Enterprise Code.
    pub vendor: u32,
    /// The vendor type octet.
    pub kind: u8,
}

impl VendorAttr {
    /// A vendor attribute from its numbers.
    pub const fn new(vendor: u32, kind: u8) -> Self {
        VendorAttr { vendor, kind }
    }

    /// The attribute's dictionary name, if listed here.
    pub const fn name(self) -> Option<&'static str> {
        match self.vendor {
            microsoft::VENDOR_ID => microsoft::name(self.kind),
            mikrotik::VENDOR_ID => mikrotik::name(self.kind),
            wispr::VENDOR_ID => wispr::name(self.kind),
            cisco::VENDOR_ID => cisco::name(self.kind),
            juniper::VENDOR_ID => juniper::name(self.kind),
            huawei::VENDOR_ID => huawei::name(self.kind),
            dsl_forum::VENDOR_ID => dsl_forum::name(self.kind),
            _ => None,
        }
    }
}

impl fmt::Display for VendorAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "Vendor-{}-Attr-{}", self.vendor, self.kind),
        }
    }
}

macro_rules! vendor_attributes {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $text:literal; )*) => {
        $( $(#[$doc])* pub const $name: VendorAttr = VendorAttr::new(VENDOR_ID, $num); )*

        pub(crate) const fn name(kind: u8) -> Option<&'static str> {
            match kind {
                $( $num => Some($text), )*
                _ => None,
            }
        }
    };
}

/// Microsoft (311): MS-CHAP and MPPE attributes (RFC 2548).
pub mod microsoft {
    use super::VendorAttr;

    /// Microsoft's SMI Private Enterprise Code.
    pub const VENDOR_ID: u32 = 311;

    vendor_attributes! {
        /// RFC 2548 §2.1.5: ident octet, then "E=... R=... C=... V=... M=...".
        MS_CHAP_ERROR = 2, "MS-CHAP-Error";
        /// RFC 2548 §2.4.4, values in [`encryption_policy`].
        MS_MPPE_ENCRYPTION_POLICY = 7, "MS-MPPE-Encryption-Policy";
        /// RFC 2548 §2.4.5, values in [`encryption_types`].
        MS_MPPE_ENCRYPTION_TYPES = 8, "MS-MPPE-Encryption-Types";
        /// RFC 2548 §2.3.2: the authenticator challenge of MS-CHAP (v1: 8 octets, v2: 16).
        MS_CHAP_CHALLENGE = 11, "MS-CHAP-Challenge";
        /// RFC 2548 §2.4.2: key for NAS-to-peer traffic, encrypted ([`crate::mppe`]).
        MS_MPPE_SEND_KEY = 16, "MS-MPPE-Send-Key";
        /// RFC 2548 §2.4.3: key for peer-to-NAS traffic, encrypted ([`crate::mppe`]).
        MS_MPPE_RECV_KEY = 17, "MS-MPPE-Recv-Key";
        /// RFC 2548 §2.3.2: ident, flags, peer challenge, reserved, NT-Response (50 octets).
        MS_CHAP2_RESPONSE = 25, "MS-CHAP2-Response";
        /// RFC 2548 §2.3.3: ident octet, then "S=" and 40 hex digits.
        MS_CHAP2_SUCCESS = 26, "MS-CHAP2-Success";
    }

    /// MS-MPPE-Encryption-Policy values.
    pub mod encryption_policy {
        /// Encryption allowed.
        pub const ALLOWED: u32 = 1;
        /// Encryption required.
        pub const REQUIRED: u32 = 2;
    }

    /// MS-MPPE-Encryption-Types bits.
    pub mod encryption_types {
        /// RC4 with a 40-bit key.
        pub const RC4_40: u32 = 2;
        /// RC4 with a 128-bit key.
        pub const RC4_128: u32 = 4;
        /// Either.
        pub const RC4_40_OR_128: u32 = 6;
    }
}

/// MikroTik (14988): RouterOS PPPoE, hotspot and queue attributes.
pub mod mikrotik {
    use super::VendorAttr;

    /// MikroTik's SMI Private Enterprise Code.
    pub const VENDOR_ID: u32 = 14988;

    vendor_attributes! {
        /// PPP profile name.
        GROUP = 3, "Mikrotik-Group";
        /// Simple queue: "rx-rate[/tx-rate] [rx-burst/tx-burst ...]", e.g. "10M/20M".
        RATE_LIMIT = 8, "Mikrotik-Rate-Limit";
        /// Firewall address list the session's address joins.
        ADDRESS_LIST = 19, "Mikrotik-Address-List";
    }
}

/// WISPr (14122): Wi-Fi hotspot attributes.
pub mod wispr {
    use super::VendorAttr;

    /// WISPr's SMI Private Enterprise Code.
    pub const VENDOR_ID: u32 = 14122;

    vendor_attributes! {
        /// Captive portal redirect URL.
        REDIRECTION_URL = 4, "WISPr-Redirection-URL";
        /// Upstream limit, bits per second.
        BANDWIDTH_MAX_UP = 7, "WISPr-Bandwidth-Max-Up";
        /// Downstream limit, bits per second.
        BANDWIDTH_MAX_DOWN = 8, "WISPr-Bandwidth-Max-Down";
    }
}

/// Cisco (9).
pub mod cisco {
    use super::VendorAttr;

    /// Cisco's SMI Private Enterprise Code.
    pub const VENDOR_ID: u32 = 9;

    vendor_attributes! {
        /// "name=value" pairs ("ip:addr-pool=...", "subscriber:accounting-list=...").
        AVPAIR = 1, "Cisco-AVPair";
    }
}

/// Juniper / Unisphere ERX (4874): JunOS and JunOSe broadband attributes.
pub mod juniper {
    use super::VendorAttr;

    /// The ERX SMI Private Enterprise Code Juniper kept.
    pub const VENDOR_ID: u32 = 4874;

    vendor_attributes! {
        /// Routing instance of the subscriber.
        VIRTUAL_ROUTER_NAME = 1, "ERX-Virtual-Router-Name";
        /// Address pool to allocate from.
        ADDRESS_POOL_NAME = 2, "ERX-Address-Pool-Name";
        /// Input firewall filter.
        INGRESS_POLICY_NAME = 10, "ERX-Ingress-Policy-Name";
        /// Output firewall filter.
        EGRESS_POLICY_NAME = 11, "ERX-Egress-Policy-Name";
        /// QoS profile.
        QOS_PROFILE_NAME = 26, "ERX-Qos-Profile-Name";
        /// Service to activate, "name(arg,...)"; tagged on the wire (first octet is the tag).
        SERVICE_ACTIVATE = 65, "ERX-Service-Activate";
    }
}

/// Huawei (2011): BRAS rate and domain attributes.
pub mod huawei {
    use super::VendorAttr;

    /// Huawei's SMI Private Enterprise Code.
    pub const VENDOR_ID: u32 = 2011;

    vendor_attributes! {
        /// Upstream committed burst size, bits.
        INPUT_BURST_SIZE = 1, "Huawei-Input-Burst-Size";
        /// Upstream committed rate, bits per second.
        INPUT_AVERAGE_RATE = 2, "Huawei-Input-Average-Rate";
        /// Upstream peak rate, bits per second.
        INPUT_PEAK_RATE = 3, "Huawei-Input-Peak-Rate";
        /// Downstream committed burst size, bits.
        OUTPUT_BURST_SIZE = 4, "Huawei-Output-Burst-Size";
        /// Downstream committed rate, bits per second.
        OUTPUT_AVERAGE_RATE = 5, "Huawei-Output-Average-Rate";
        /// Downstream peak rate, bits per second.
        OUTPUT_PEAK_RATE = 6, "Huawei-Output-Peak-Rate";
        /// Authentication domain.
        DOMAIN_NAME = 138, "Huawei-Domain-Name";
    }
}

/// DSL Forum / Broadband Forum (3561): line identification a DHCP relay (option 82) or a
/// PPPoE intermediate agent inserts, relayed by the NAS in Access-Requests (TR-101).
pub mod dsl_forum {
    use super::VendorAttr;

    /// The DSL Forum's SMI Private Enterprise Code.
    pub const VENDOR_ID: u32 = 3561;

    vendor_attributes! {
        /// The access node's identification of the subscriber line.
        AGENT_CIRCUIT_ID = 1, "Agent-Circuit-Id";
        /// The subscriber's identification (often the CPE's).
        AGENT_REMOTE_ID = 2, "Agent-Remote-Id";
    }
}

/// Service-Type values (RFC 2865 §5.6; Authorize-Only from RFC 5176).
pub mod service_type {
    /// Login.
    pub const LOGIN: u32 = 1;
    /// Framed (PPP, IPoE).
    pub const FRAMED: u32 = 2;
    /// Callback Login.
    pub const CALLBACK_LOGIN: u32 = 3;
    /// Callback Framed.
    pub const CALLBACK_FRAMED: u32 = 4;
    /// Outbound.
    pub const OUTBOUND: u32 = 5;
    /// Administrative.
    pub const ADMINISTRATIVE: u32 = 6;
    /// NAS Prompt.
    pub const NAS_PROMPT: u32 = 7;
    /// Authenticate Only.
    pub const AUTHENTICATE_ONLY: u32 = 8;
    /// Call Check (MAC authentication on some NASes).
    pub const CALL_CHECK: u32 = 10;
    /// Authorize Only (RFC 5176 §3.1: a CoA asking the NAS to re-authorize).
    pub const AUTHORIZE_ONLY: u32 = 17;
}

/// Framed-Protocol values (RFC 2865 §5.7).
pub mod framed_protocol {
    /// PPP.
    pub const PPP: u32 = 1;
    /// SLIP.
    pub const SLIP: u32 = 2;
}

/// NAS-Port-Type values (RFC 2865 §5.41 and later assignments).
pub mod nas_port_type {
    /// Async.
    pub const ASYNC: u32 = 0;
    /// Sync.
    pub const SYNC: u32 = 1;
    /// ISDN Sync.
    pub const ISDN: u32 = 2;
    /// Virtual (tunnels, PPPoE on some NASes).
    pub const VIRTUAL: u32 = 5;
    /// Ethernet (PPPoE, IPoE).
    pub const ETHERNET: u32 = 15;
    /// xDSL.
    pub const XDSL: u32 = 16;
    /// Cable.
    pub const CABLE: u32 = 17;
    /// Wireless, other.
    pub const WIRELESS_OTHER: u32 = 18;
    /// Wireless IEEE 802.11.
    pub const WIRELESS_802_11: u32 = 19;
}

/// Acct-Authentic values (RFC 2866 §5.6).
pub mod acct_authentic {
    /// Authenticated by RADIUS.
    pub const RADIUS: u32 = 1;
    /// Authenticated locally on the NAS.
    pub const LOCAL: u32 = 2;
    /// Authenticated remotely.
    pub const REMOTE: u32 = 3;
}

/// Acct-Terminate-Cause values (RFC 2866 §5.10).
pub mod acct_terminate_cause {
    /// User Request.
    pub const USER_REQUEST: u32 = 1;
    /// Lost Carrier.
    pub const LOST_CARRIER: u32 = 2;
    /// Lost Service.
    pub const LOST_SERVICE: u32 = 3;
    /// Idle Timeout.
    pub const IDLE_TIMEOUT: u32 = 4;
    /// Session Timeout.
    pub const SESSION_TIMEOUT: u32 = 5;
    /// Admin Reset (also what a Disconnect-Request produces on most NASes).
    pub const ADMIN_RESET: u32 = 6;
    /// Admin Reboot.
    pub const ADMIN_REBOOT: u32 = 7;
    /// Port Error.
    pub const PORT_ERROR: u32 = 8;
    /// NAS Error.
    pub const NAS_ERROR: u32 = 9;
    /// NAS Request.
    pub const NAS_REQUEST: u32 = 10;
    /// NAS Reboot.
    pub const NAS_REBOOT: u32 = 11;
    /// Port Unneeded.
    pub const PORT_UNNEEDED: u32 = 12;
    /// Port Preempted.
    pub const PORT_PREEMPTED: u32 = 13;
    /// Port Suspended.
    pub const PORT_SUSPENDED: u32 = 14;
    /// Service Unavailable.
    pub const SERVICE_UNAVAILABLE: u32 = 15;
    /// Callback.
    pub const CALLBACK: u32 = 16;
    /// User Error.
    pub const USER_ERROR: u32 = 17;
    /// Host Request.
    pub const HOST_REQUEST: u32 = 18;
}

macro_rules! error_causes {
    ($( $(#[$doc:meta])* $name:ident = $num:literal, $text:literal; )*) => {
        /// Error-Cause values (RFC 5176 §3.5), sent in Disconnect/CoA ACKs and NAKs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCause {
            $( $(#[$doc])* $name, )*
            /// A value not listed here.
            Other(u32),
        }

        impl ErrorCause {
            /// The cause for a wire value.
            pub const fn from_u32(value: u32) -> Self {
                match value {
                    $( $num => ErrorCause::$name, )*
                    other => ErrorCause::Other(other),
                }
            }

            /// The wire value.
            pub const fn as_u32(self) -> u32 {
                match self {
                    $( ErrorCause::$name => $num, )*
                    ErrorCause::Other(v) => v,
                }
            }

            /// The RFC's name, if listed.
            pub const fn name(self) -> Option<&'static str> {
                match self {
                    $( ErrorCause::$name => Some($text), )*
                    ErrorCause::Other(_) => None,
                }
            }
        }
    };
}

error_causes! {
    /// 201: the NAS removed the session context (success with a caveat).
    ResidualSessionContextRemoved = 201, "Residual Session Context Removed";
    /// 202.
    InvalidEapPacket = 202, "Invalid EAP Packet (Ignored)";
    /// 401.
    UnsupportedAttribute = 401, "Unsupported Attribute";
    /// 402.
    MissingAttribute = 402, "Missing Attribute";
    /// 403.
    NasIdentificationMismatch = 403, "NAS Identification Mismatch";
    /// 404.
    InvalidRequest = 404, "Invalid Request";
    /// 405.
    UnsupportedService = 405, "Unsupported Service";
    /// 406.
    UnsupportedExtension = 406, "Unsupported Extension";
    /// 407.
    InvalidAttributeValue = 407, "Invalid Attribute Value";
    /// 501.
    AdministrativelyProhibited = 501, "Administratively Prohibited";
    /// 502.
    RequestNotRoutable = 502, "Request Not Routable (Proxy)";
    /// 503: no session matched the identification attributes.
    SessionContextNotFound = 503, "Session Context Not Found";
    /// 504.
    SessionContextNotRemovable = 504, "Session Context Not Removable";
    /// 505.
    OtherProxyProcessingError = 505, "Other Proxy Processing Error";
    /// 506.
    ResourcesUnavailable = 506, "Resources Unavailable";
    /// 507.
    RequestInitiated = 507, "Request Initiated";
    /// 508.
    MultipleSessionSelectionUnsupported = 508, "Multiple Session Selection Unsupported";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(AttrType::USER_NAME.name(), Some("User-Name"));
        assert_eq!(AttrType(200).name(), None);
        assert_eq!(AttrType(200).to_string(), "Attr-200");
        assert_eq!(AttrType::from(80), AttrType::MESSAGE_AUTHENTICATOR);
        assert_eq!(mikrotik::RATE_LIMIT.to_string(), "Mikrotik-Rate-Limit");
        assert_eq!(VendorAttr::new(311, 26).name(), Some("MS-CHAP2-Success"));
        assert_eq!(VendorAttr::new(1, 1).to_string(), "Vendor-1-Attr-1");
        assert_eq!(dsl_forum::AGENT_CIRCUIT_ID, VendorAttr::new(3561, 1));
        assert_eq!(huawei::DOMAIN_NAME.name(), Some("Huawei-Domain-Name"));
    }

    #[test]
    fn error_causes_round_trip() {
        for v in [201, 202, 401, 404, 407, 501, 503, 508, 999] {
            assert_eq!(ErrorCause::from_u32(v).as_u32(), v);
        }
        assert_eq!(
            ErrorCause::from_u32(503),
            ErrorCause::SessionContextNotFound
        );
        assert_eq!(ErrorCause::Other(1).name(), None);
    }
}
