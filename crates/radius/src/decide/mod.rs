//! Access decisions: pure functions from (NAS, request, directory record, live sessions) to
//! Accept-with-attributes or Reject-with-reason. No IO, no clock, no randomness: the server
//! adds what must be random (MPPE salts, the MS-CHAP-Error challenge) when it encodes.

mod view;

pub use view::{find_service, AccessRequestView, Credentials, MalformedRequest};

use core::fmt;

use lastmile_domain::ids::ServiceId;
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::service::ServiceStatus;
use lastmile_radius_codec::dict::mikrotik;
use lastmile_radius_codec::mschap::{error_code, MsChap2Success};
use lastmile_radius_codec::{chap, AttrType};
use std::net::IpAddr;

use crate::directory::{AuthRecord, MatchedBy, NasEntry, SuspendedAction, Tier};
use crate::reply::{ReplyAttrs, Value};
use crate::vendor::tier_attributes;

/// Why an Access-Request was rejected: the metrics' `result` label, and what support sees in
/// [`crate::metrics::RadiusMetrics::last_rejects`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// No service has that login, MAC or circuit.
    UnknownUser,
    /// The password proof does not match.
    WrongPassword,
    /// The service needs a password and has none stored.
    PasswordNotSet,
    /// Pending, or suspended on a NAS that rejects suspended services.
    NotActive(ServiceStatus),
    /// The service is terminated.
    Terminated,
    /// The service is bound to another NAS.
    WrongNas,
    /// The service already has as many live sessions as it may.
    SimultaneousUse,
    /// The service needs a password and the request carries none.
    NoCredentials,
    /// EAP or MS-CHAPv1.
    UnsupportedMethod,
    /// The request could not be read (see [`MalformedRequest`]).
    MalformedRequest,
}

impl RejectReason {
    /// Every reason, for metrics.
    pub const ALL: [RejectReason; 12] = [
        RejectReason::UnknownUser,
        RejectReason::WrongPassword,
        RejectReason::PasswordNotSet,
        RejectReason::NotActive(ServiceStatus::Pending),
        RejectReason::NotActive(ServiceStatus::Suspended),
        RejectReason::NotActive(ServiceStatus::Active),
        RejectReason::Terminated,
        RejectReason::WrongNas,
        RejectReason::SimultaneousUse,
        RejectReason::NoCredentials,
        RejectReason::UnsupportedMethod,
        RejectReason::MalformedRequest,
    ];

    /// Position in [`ALL`](Self::ALL), for counters.
    pub(crate) fn index(self) -> usize {
        match self {
            RejectReason::UnknownUser => 0,
            RejectReason::WrongPassword => 1,
            RejectReason::PasswordNotSet => 2,
            RejectReason::NotActive(ServiceStatus::Pending) => 3,
            RejectReason::NotActive(ServiceStatus::Suspended) => 4,
            RejectReason::NotActive(ServiceStatus::Active) => 5,
            RejectReason::NotActive(ServiceStatus::Terminated) | RejectReason::Terminated => 6,
            RejectReason::WrongNas => 7,
            RejectReason::SimultaneousUse => 8,
            RejectReason::NoCredentials => 9,
            RejectReason::UnsupportedMethod => 10,
            RejectReason::MalformedRequest => 11,
        }
    }

    /// The label: `unknown_user`, `not_active_suspended`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::UnknownUser => "unknown_user",
            RejectReason::WrongPassword => "wrong_password",
            RejectReason::PasswordNotSet => "password_not_set",
            RejectReason::NotActive(ServiceStatus::Pending) => "not_active_pending",
            RejectReason::NotActive(ServiceStatus::Suspended) => "not_active_suspended",
            RejectReason::NotActive(ServiceStatus::Active) => "not_active_active",
            RejectReason::NotActive(ServiceStatus::Terminated) | RejectReason::Terminated => {
                "terminated"
            }
            RejectReason::WrongNas => "wrong_nas",
            RejectReason::SimultaneousUse => "simultaneous_use",
            RejectReason::NoCredentials => "no_credentials",
            RejectReason::UnsupportedMethod => "unsupported_method",
            RejectReason::MalformedRequest => "malformed_request",
        }
    }

    /// The Windows error MS-CHAP-Error carries for this reason (RFC 2759 §6): a wrong login
    /// or password is 691, an account that exists but may not log in 647 or 649.
    pub fn ms_chap_error_code(self) -> u32 {
        match self {
            RejectReason::UnknownUser
            | RejectReason::WrongPassword
            | RejectReason::PasswordNotSet
            | RejectReason::NoCredentials
            | RejectReason::MalformedRequest
            | RejectReason::UnsupportedMethod => error_code::AUTHENTICATION_FAILURE,
            RejectReason::NotActive(_) | RejectReason::Terminated => error_code::ACCT_DISABLED,
            RejectReason::WrongNas | RejectReason::SimultaneousUse => {
                error_code::NO_DIALIN_PERMISSION
            }
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An Access-Accept to send.
#[derive(Debug, Clone)]
pub struct Accept<'a> {
    /// The service let in.
    pub service_id: ServiceId,
    /// Attributes to add (the server adds Message-Authenticator and Proxy-State).
    pub attributes: ReplyAttrs<'a>,
    /// Whether this is a suspended service let into the walled garden.
    pub walled_garden: bool,
    /// For MS-CHAPv2: MS-CHAP2-Success and the MPPE keys, which the server encodes (the keys
    /// are hidden with the secret and a random salt).
    pub mschap: Option<MsChap2Success>,
}

/// An Access-Reject to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject<'a> {
    /// The service, when the request was about a known one.
    pub service_id: Option<ServiceId>,
    /// Why.
    pub reason: RejectReason,
    /// Reply-Message to add.
    pub reply_message: Option<&'a str>,
    /// For MS-CHAP requests, the identifier to echo in MS-CHAP-Error.
    pub mschap_ident: Option<u8>,
}

/// What to answer.
// An Accept carries its attributes inline (about 2 KiB): it lives on the stack for one
// request, and boxing it would cost an allocation per Accept.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Decision<'a> {
    /// Access-Accept.
    Accept(Accept<'a>),
    /// Access-Reject.
    Reject(Reject<'a>),
}

impl<'a> Decision<'a> {
    /// A Reject with no service and no message.
    pub fn reject(reason: RejectReason, mschap_ident: Option<u8>) -> Self {
        Decision::Reject(Reject {
            service_id: None,
            reason,
            reply_message: None,
            mschap_ident,
        })
    }

    /// Whether this is an Accept.
    pub fn is_accept(&self) -> bool {
        matches!(self, Decision::Accept(_))
    }

    /// The reject reason, if this is a Reject.
    pub fn reason(&self) -> Option<RejectReason> {
        match self {
            Decision::Accept(_) => None,
            Decision::Reject(r) => Some(r.reason),
        }
    }

    /// The Accept's attributes (empty for a Reject).
    pub fn attributes(&self) -> ReplyAttrs<'a> {
        match self {
            Decision::Accept(a) => a.attributes.clone(),
            Decision::Reject(_) => ReplyAttrs::new(),
        }
    }

    /// The service concerned, if known.
    pub fn service_id(&self) -> Option<ServiceId> {
        match self {
            Decision::Accept(a) => Some(a.service_id),
            Decision::Reject(r) => r.service_id,
        }
    }
}

/// A directory record and the key that found it.
#[derive(Debug, Clone, Copy)]
pub struct Found<'a> {
    /// The service's record.
    pub record: &'a AuthRecord,
    /// Which key found it: a login needs a password, a MAC or circuit does not.
    pub matched_by: MatchedBy,
}

/// Constant-time comparison of a PAP password with the stored one.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Decides an Access-Request from NAS `nas`, about the service `found` (if any) which has
/// `live_sessions` sessions open now.
///
/// In order: unknown service → UnknownUser; bound to another NAS → WrongNas; the password, if
/// one is needed (found by login and not IPoE) → NoCredentials / PasswordNotSet /
/// WrongPassword; then the status (terminated, pending, suspended per the NAS's
/// [`SuspendedAction`]); then simultaneous use; then Accept with the tier. The password comes
/// before the status so that someone without it learns nothing about the service.
pub fn decide<'a>(
    nas: &'a NasEntry,
    request: &AccessRequestView<'_>,
    found: Option<Found<'a>>,
    live_sessions: u32,
) -> Decision<'a> {
    let ident = request.credentials.ms_chap_ident();
    let reject = |service_id, reason, reply_message| {
        Decision::Reject(Reject {
            service_id,
            reason,
            reply_message,
            mschap_ident: ident,
        })
    };
    if let Credentials::Unsupported { .. } = request.credentials {
        return reject(
            found.map(|f| f.record.service_id),
            RejectReason::UnsupportedMethod,
            None,
        );
    }
    let Some(Found { record, matched_by }) = found else {
        return reject(None, RejectReason::UnknownUser, None);
    };
    let sid = Some(record.service_id);
    if record.nas_id.is_some_and(|id| id != nas.id) {
        return reject(sid, RejectReason::WrongNas, None);
    }

    let mut mschap = None;
    let needs_password = matched_by == MatchedBy::Username && record.access_kind.uses_password();
    if needs_password {
        if !request.credentials.is_present() {
            return reject(sid, RejectReason::NoCredentials, None);
        }
        let Some(password) = record.password.as_deref() else {
            return reject(sid, RejectReason::PasswordNotSet, None);
        };
        let ok = match &request.credentials {
            Credentials::Pap(given) => ct_eq(given.as_bytes(), password.as_bytes()),
            Credentials::Chap {
                response,
                challenge,
            } => match chap::verify(response, challenge, password.as_bytes()) {
                Ok(ok) => ok,
                Err(_) => return reject(sid, RejectReason::MalformedRequest, None),
            },
            Credentials::MsChap2(req) => {
                mschap = req.verify_password(password);
                mschap.is_some()
            }
            Credentials::None | Credentials::Unsupported { .. } => false,
        };
        if !ok {
            return reject(sid, RejectReason::WrongPassword, None);
        }
    }

    let walled_garden = match record.status {
        ServiceStatus::Active => None,
        ServiceStatus::Terminated => return reject(sid, RejectReason::Terminated, None),
        ServiceStatus::Pending => {
            return reject(sid, RejectReason::NotActive(ServiceStatus::Pending), None)
        }
        ServiceStatus::Suspended => match &nas.suspended {
            SuspendedAction::Reject { reply_message } => {
                return reject(
                    sid,
                    RejectReason::NotActive(ServiceStatus::Suspended),
                    reply_message.as_deref(),
                )
            }
            SuspendedAction::WalledGarden { address_list, pool } => {
                Some((address_list.as_deref(), pool.as_deref()))
            }
        },
    };

    if record.simultaneous_use > 0 && live_sessions >= record.simultaneous_use {
        return reject(sid, RejectReason::SimultaneousUse, None);
    }

    let mut attributes = ReplyAttrs::new();
    let (tier, garden_pool) = match walled_garden {
        Some((_, pool)) => (Tier::walled_garden(), pool),
        None => (&record.tier, None),
    };
    match garden_pool {
        // The garden's pool replaces the service's addressing: its addresses are the ones
        // the firewall redirects.
        Some(pool) => {
            attributes.push_std(AttrType::FRAMED_POOL, Value::Text(pool));
        }
        None => match (record.static_ip, record.ip_pool.as_deref()) {
            (Some(IpAddr::V4(ip)), _) => {
                attributes.push_std(AttrType::FRAMED_IP_ADDRESS, Value::Ipv4(ip));
            }
            (Some(IpAddr::V6(ip)), _) => {
                attributes.push_std(AttrType::FRAMED_IPV6_ADDRESS, Value::Ipv6(ip));
            }
            (None, Some(pool)) => {
                attributes.push_std(AttrType::FRAMED_POOL, Value::Text(pool));
            }
            (None, None) => {}
        },
    }
    if nas.interim_interval > 0 {
        attributes.push_std(
            AttrType::ACCT_INTERIM_INTERVAL,
            Value::U32(nas.interim_interval),
        );
    }
    if let Some(t) = nas.session_timeout {
        attributes.push_std(AttrType::SESSION_TIMEOUT, Value::U32(t));
    }
    tier_attributes(nas.vendor, tier, &mut attributes);
    if let Some((Some(list), _)) = walled_garden {
        if nas.vendor == VendorProfile::Mikrotik {
            attributes.push_vendor(mikrotik::ADDRESS_LIST, Value::Text(list));
        }
    }
    Decision::Accept(Accept {
        service_id: record.service_id,
        attributes,
        walled_garden: walled_garden.is_some(),
        mschap,
    })
}

#[cfg(test)]
mod tests;
