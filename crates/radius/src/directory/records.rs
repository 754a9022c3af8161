//! What the directory holds: NAS entries and services' authorisation records, with cleartext
//! secrets (the caller decrypts them; this crate never sees the key).

use core::fmt;
use std::net::IpAddr;
use std::sync::LazyLock;

use lastmile_domain::ids::{NasId, ServiceId, SubscriberId};
pub use lastmile_domain::nas::SuspendedAction;
use lastmile_domain::nas::{
    Nas, VendorProfile, DEFAULT_INTERIM_INTERVAL_SECS, DEFAULT_STALE_SESSION_MULTIPLIER,
};
use lastmile_domain::plan::{Burst, PlanTerms};
use lastmile_domain::service::{AccessKind, Service, ServiceStatus};

use crate::mac::MacAddr;

/// RFC 5176's default CoA port.
pub const DEFAULT_COA_PORT: u16 = 3799;
/// Acct-Interim-Interval sent when the NAS entry says nothing else: five minutes.
pub const DEFAULT_INTERIM_INTERVAL: u32 = DEFAULT_INTERIM_INTERVAL_SECS;

/// One NAS as the server knows it, found by the source IP of its packets.
#[derive(Clone, PartialEq, Eq)]
pub struct NasEntry {
    /// Its id in the catalogue.
    pub id: NasId,
    /// Its name: the `nas` label of the metrics.
    pub name: String,
    /// Source address of its RADIUS packets, and where CoA goes.
    pub ip: IpAddr,
    /// The shared secret, in clear.
    pub secret: Vec<u8>,
    /// Which vendor attributes carry the tier.
    pub vendor: VendorProfile,
    /// Where it listens for CoA / Disconnect-Request.
    pub coa_port: u16,
    /// Drop Access-Requests without a Message-Authenticator (the BlastRADIUS hardening). On by
    /// default; switch it off only for a NAS that cannot send the attribute.
    pub require_message_authenticator: bool,
    /// Acct-Interim-Interval in every Accept, seconds; 0 sends none.
    pub interim_interval: u32,
    /// What suspended services get.
    pub suspended: SuspendedAction,
    /// Session-Timeout in every Accept, seconds.
    pub session_timeout: Option<u32>,
    /// Interim intervals without accounting after which a session counts as stale.
    pub stale_session_multiplier: u32,
}

impl NasEntry {
    /// An entry with the defaults: Message-Authenticator required, interim updates every
    /// 300 s, suspended services rejected, no Session-Timeout, stale after three intervals.
    pub fn new(
        id: NasId,
        name: impl Into<String>,
        ip: IpAddr,
        secret: impl Into<Vec<u8>>,
        vendor: VendorProfile,
    ) -> Self {
        NasEntry {
            id,
            name: name.into(),
            ip,
            secret: secret.into(),
            vendor,
            coa_port: DEFAULT_COA_PORT,
            require_message_authenticator: true,
            interim_interval: DEFAULT_INTERIM_INTERVAL,
            suspended: SuspendedAction::default(),
            session_timeout: None,
            stale_session_multiplier: DEFAULT_STALE_SESSION_MULTIPLIER,
        }
    }

    /// The entry for a catalogue `Nas`, given its decrypted secret, with its RADIUS settings.
    pub fn from_nas(nas: &Nas, secret: impl Into<Vec<u8>>) -> Self {
        NasEntry {
            id: nas.id,
            name: nas.name.clone(),
            ip: nas.ip,
            secret: secret.into(),
            vendor: nas.vendor,
            coa_port: nas.coa_port,
            require_message_authenticator: nas.require_message_authenticator,
            interim_interval: nas.interim_interval_secs,
            suspended: nas.suspended_action.clone(),
            session_timeout: nas.session_timeout_secs,
            stale_session_multiplier: nas.stale_session_multiplier,
        }
    }
}

impl fmt::Debug for NasEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NasEntry")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("ip", &self.ip)
            .field("secret", &"<redacted>")
            .field("vendor", &self.vendor)
            .field("coa_port", &self.coa_port)
            .field(
                "require_message_authenticator",
                &self.require_message_authenticator,
            )
            .field("interim_interval", &self.interim_interval)
            .field("suspended", &self.suspended)
            .field("session_timeout", &self.session_timeout)
            .field("stale_session_multiplier", &self.stale_session_multiplier)
            .finish()
    }
}

/// The bandwidth a service gets, as the vendor profiles need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tier {
    /// Towards the subscriber, kbit/s (0: unlimited on MikroTik).
    pub download_kbps: u32,
    /// From the subscriber, kbit/s.
    pub upload_kbps: u32,
    /// Burst parameters, if the plan has them.
    pub burst: Option<Burst>,
    /// The plan code: the name of the QoS policy or profile configured on Cisco, Juniper and
    /// similar NASes (which take a policy name, not rates).
    pub policy_name: String,
}

static WALLED_GARDEN: LazyLock<Tier> = LazyLock::new(|| Tier {
    download_kbps: Tier::WALLED_GARDEN_KBPS,
    upload_kbps: Tier::WALLED_GARDEN_KBPS,
    burst: None,
    policy_name: Tier::WALLED_GARDEN_POLICY.to_string(),
});

impl Tier {
    /// Rate of the walled garden, both ways: enough for a payment portal.
    pub const WALLED_GARDEN_KBPS: u32 = 256;
    /// Policy name of the walled garden on policy-based NASes (configure it there).
    pub const WALLED_GARDEN_POLICY: &'static str = "walled-garden";

    /// The tier of a plan version, named by the plan's code.
    pub fn from_terms(terms: &PlanTerms, plan_code: &str) -> Self {
        Tier {
            download_kbps: terms.download_kbps,
            upload_kbps: terms.upload_kbps,
            burst: terms.burst.clone(),
            policy_name: plan_code.to_string(),
        }
    }

    /// The low tier of the walled garden.
    pub fn walled_garden() -> &'static Tier {
        &WALLED_GARDEN
    }
}

/// What the server needs to authorise one service, answered from memory.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthRecord {
    /// The service.
    pub service_id: ServiceId,
    /// Its subscriber (accounting rows are keyed by it).
    pub subscriber_id: SubscriberId,
    /// Status as of now (the projection of the timeline).
    pub status: ServiceStatus,
    /// PPPoE / hotspot login; a directory key.
    pub username: Option<String>,
    /// The password in clear (CHAP and MS-CHAPv2 need it so).
    pub password: Option<String>,
    /// MAC of the subscriber's device; a directory key.
    pub mac: Option<MacAddr>,
    /// Agent-Circuit-Id of the line (DHCP option 82 / PPPoE IA); a directory key.
    pub circuit_id: Option<String>,
    /// How the NAS identifies the line.
    pub access_kind: AccessKind,
    /// Framed-IP-Address (v4) or Framed-IPv6-Address (v6).
    pub static_ip: Option<IpAddr>,
    /// Framed-Pool.
    pub ip_pool: Option<String>,
    /// If set, the service may log in through this NAS only.
    pub nas_id: Option<NasId>,
    /// The bandwidth of its plan.
    pub tier: Tier,
    /// Sessions allowed at once; 0 means no limit.
    pub simultaneous_use: u32,
}

impl AuthRecord {
    /// The record of `service`, given its decrypted password and its plan's tier. A MAC the domain would not have stored is ignored.
    pub fn from_service(service: &Service, password: Option<String>, tier: Tier) -> Self {
        AuthRecord {
            service_id: service.id,
            subscriber_id: service.subscriber_id,
            status: service.status,
            username: service.username.clone(),
            password,
            mac: service
                .mac_address
                .as_deref()
                .and_then(|m| m.parse::<MacAddr>().ok()),
            circuit_id: service.circuit_id.clone(),
            access_kind: service.access_kind,
            static_ip: service.static_ip,
            ip_pool: service.ip_pool.clone(),
            nas_id: service.nas_id,
            tier,
            simultaneous_use: service.simultaneous_use,
        }
    }
}

impl fmt::Debug for AuthRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthRecord")
            .field("service_id", &self.service_id)
            .field("subscriber_id", &self.subscriber_id)
            .field("status", &self.status)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("mac", &self.mac)
            .field("circuit_id", &self.circuit_id)
            .field("access_kind", &self.access_kind)
            .field("static_ip", &self.static_ip)
            .field("ip_pool", &self.ip_pool)
            .field("nas_id", &self.nas_id)
            .field("tier", &self.tier)
            .field("simultaneous_use", &self.simultaneous_use)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let nas = NasEntry::new(
            NasId::generate(),
            "core-1",
            IpAddr::from([10, 0, 0, 1]),
            b"very-secret".to_vec(),
            VendorProfile::Mikrotik,
        );
        let text = format!("{nas:?}");
        assert!(!text.contains("very-secret"), "{text}");
        assert!(nas.require_message_authenticator);
        assert_eq!(nas.interim_interval, 300);
        assert_eq!(nas.coa_port, 3799);
        assert_eq!(nas.stale_session_multiplier, 3);
    }

    fn catalogue_nas() -> Nas {
        Nas {
            id: NasId::generate(),
            name: "edge-7".into(),
            ip: IpAddr::from([10, 0, 0, 7]),
            secret_ciphertext: vec![1, 2, 3],
            vendor: VendorProfile::Cisco,
            coa_port: 1700,
            api_url: None,
            api_username: None,
            api_password_ciphertext: None,
            require_message_authenticator: false,
            interim_interval_secs: 0,
            session_timeout_secs: Some(86_400),
            suspended_action: SuspendedAction::WalledGarden {
                address_list: Some("unpaid".into()),
                pool: Some("garden".into()),
            },
            stale_session_multiplier: 5,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
            revision: 1,
        }
    }

    #[test]
    fn from_nas_takes_every_setting() {
        let n = catalogue_nas();
        let e = NasEntry::from_nas(&n, b"clear".to_vec());
        assert_eq!(e.id, n.id);
        assert_eq!(e.name, "edge-7");
        assert_eq!(e.ip, n.ip);
        assert_eq!(e.secret, b"clear");
        assert_eq!(e.vendor, VendorProfile::Cisco);
        assert_eq!(e.coa_port, 1700);
        assert!(!e.require_message_authenticator);
        assert_eq!(e.interim_interval, 0);
        assert_eq!(e.session_timeout, Some(86_400));
        assert_eq!(e.suspended, n.suspended_action);
        assert_eq!(e.stale_session_multiplier, 5);
    }

    #[test]
    fn from_service_takes_simultaneous_use() {
        use lastmile_domain::ids::{PlanId, PlanVersionId};
        use lastmile_domain::subscriber::Address;
        let s = Service {
            id: ServiceId::generate(),
            subscriber_id: SubscriberId::generate(),
            plan_id: PlanId::generate(),
            plan_version_id: PlanVersionId::generate(),
            status: ServiceStatus::Active,
            suspension_cause: None,
            service_address: Address::default(),
            access_kind: AccessKind::Pppoe,
            username: Some("jo@isp".into()),
            password_ciphertext: None,
            mac_address: Some("AA:BB:CC:00:11:22".into()),
            circuit_id: None,
            static_ip: None,
            ip_pool: None,
            nas_id: None,
            simultaneous_use: 0,
            created_at: jiff::Timestamp::UNIX_EPOCH,
            updated_at: jiff::Timestamp::UNIX_EPOCH,
            revision: 1,
        };
        let tier = Tier {
            download_kbps: 1000,
            upload_kbps: 500,
            burst: None,
            policy_name: "P".into(),
        };
        let r = AuthRecord::from_service(&s, Some("pw".into()), tier);
        assert_eq!(r.simultaneous_use, 0, "0 = unlimited, from the service");
        assert_eq!(r.username.as_deref(), Some("jo@isp"));
        assert!(r.mac.is_some());
        let limited = Service {
            simultaneous_use: 4,
            ..s
        };
        let r = AuthRecord::from_service(&limited, None, r.tier);
        assert_eq!(r.simultaneous_use, 4);
    }
}
