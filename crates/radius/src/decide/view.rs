//! The parts of an Access-Request a decision reads, taken out of the packet once.

use lastmile_radius_codec::dict::{dsl_forum, microsoft};
use lastmile_radius_codec::mschap::MsChap2Request;
use lastmile_radius_codec::pap::{self, Password};
use lastmile_radius_codec::VendorAttr;
use lastmile_radius_codec::{chap, AttrType, DecodeError, PacketRef};

use crate::directory::{AuthRecord, Directory, MatchedBy};
use crate::mac::MacAddr;

use lastmile_domain::service::AccessKind;
use std::sync::Arc;

/// MS-CHAP-Response (RFC 2548 §2.1.3): MS-CHAPv1, which the codec does not verify.
const MS_CHAP_RESPONSE: VendorAttr = VendorAttr::new(microsoft::VENDOR_ID, 1);

/// How the request proves the subscriber knows the password.
#[derive(Debug)]
pub enum Credentials<'a> {
    /// No password attribute: MAC / circuit authorisation (DHCP, hotspot MAC login).
    None,
    /// PAP: the User-Password, already decrypted with the NAS secret.
    Pap(Password),
    /// CHAP: CHAP-Password and the challenge it answers (CHAP-Challenge, or the Request
    /// Authenticator when there is none).
    Chap {
        /// The 17-octet CHAP-Password.
        response: &'a [u8],
        /// The challenge.
        challenge: &'a [u8],
    },
    /// MS-CHAPv2: MS-CHAP-Challenge and MS-CHAP2-Response.
    MsChap2(MsChap2Request<'a>),
    /// EAP or MS-CHAPv1: not served here. Never treated as "no credentials", which would
    /// fall through to MAC authorisation.
    Unsupported {
        /// `"eap"` or `"mschapv1"`.
        method: &'static str,
    },
}

impl Credentials<'_> {
    /// Whether the request carries a password proof of any kind.
    pub fn is_present(&self) -> bool {
        !matches!(self, Credentials::None)
    }

    /// Label for logs.
    pub fn method(&self) -> &'static str {
        match self {
            Credentials::None => "none",
            Credentials::Pap(_) => "pap",
            Credentials::Chap { .. } => "chap",
            Credentials::MsChap2(_) => "mschapv2",
            Credentials::Unsupported { method } => method,
        }
    }

    /// The MS-CHAP identifier to echo in MS-CHAP-Error, when this is MS-CHAPv2.
    pub fn ms_chap_ident(&self) -> Option<u8> {
        match self {
            Credentials::MsChap2(r) => Some(r.response.ident),
            _ => None,
        }
    }
}

/// The request cannot be decided on: a NAS bug or a tampered packet (it was signed, so the
/// server answers with a Reject rather than dropping it into endless retransmission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MalformedRequest {
    /// An attribute of the wrong size or encoding.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// More than one of User-Password, CHAP-Password, MS-CHAP2-Response (RFC 2865 §5.2
    /// forbids PAP with CHAP; the others make no sense together).
    #[error("more than one kind of credentials")]
    ConflictingCredentials,
}

/// An Access-Request, as decisions and lookups read it. Borrowed from the receive buffer.
#[derive(Debug)]
pub struct AccessRequestView<'a> {
    /// User-Name octets.
    pub user_name: Option<&'a [u8]>,
    /// The password proof.
    pub credentials: Credentials<'a>,
    /// Calling-Station-Id octets (usually the MAC).
    pub calling_station_id: Option<&'a [u8]>,
    /// Agent-Circuit-Id octets (DSL Forum vendor 3561, attribute 1).
    pub circuit_id: Option<&'a [u8]>,
}

impl<'a> AccessRequestView<'a> {
    /// Reads the request. PAP is decrypted here, with the NAS `secret`.
    pub fn from_packet(
        request: &PacketRef<'a>,
        secret: &[u8],
    ) -> Result<AccessRequestView<'a>, MalformedRequest> {
        let pap = pap::decrypt_request(request, secret)?;
        let chap = request.get(AttrType::CHAP_PASSWORD);
        let mschap = MsChap2Request::from_packet(request)?;
        let unsupported = if request.find(AttrType::EAP_MESSAGE).is_some() {
            Some("eap")
        } else if request.vendor(MS_CHAP_RESPONSE).is_some() {
            Some("mschapv1")
        } else {
            None
        };
        let present = usize::from(pap.is_some())
            + usize::from(chap.is_some())
            + usize::from(mschap.is_some());
        if present > 1 {
            return Err(MalformedRequest::ConflictingCredentials);
        }
        let credentials = match (unsupported, pap, chap, mschap) {
            (Some(method), ..) => Credentials::Unsupported { method },
            (_, Some(p), _, _) => Credentials::Pap(p),
            (_, _, Some(response), _) => Credentials::Chap {
                response,
                challenge: chap::challenge(request),
            },
            (_, _, _, Some(m)) => Credentials::MsChap2(m),
            _ => Credentials::None,
        };
        Ok(AccessRequestView {
            user_name: request.get(AttrType::USER_NAME),
            credentials,
            calling_station_id: request.get(AttrType::CALLING_STATION_ID),
            circuit_id: request.vendor(dsl_forum::AGENT_CIRCUIT_ID),
        })
    }
}

/// Finds the service an Access-Request is about.
///
/// - With credentials, the User-Name is the login. Should no service have that login and the
///   User-Name be a MAC (hotspot MAC login sends a password too), the MAC's service is taken,
///   unless it is a PPPoE service: a PPPoE user typing someone's MAC as login must not get in
///   without their password.
/// - Without credentials (DHCP / IPoE, MAC authorisation): the User-Name as login (an IPoE
///   service may have one), then as a MAC, then Calling-Station-Id as a MAC, then
///   Agent-Circuit-Id.
///
/// Whether a password must then be checked is [`super::decide`]'s business.
pub fn find_service(
    directory: &Directory,
    request: &AccessRequestView<'_>,
) -> Option<(Arc<AuthRecord>, MatchedBy)> {
    let user = request.user_name;
    let user_str = user.and_then(|u| core::str::from_utf8(u).ok());
    if let Some(rec) = user_str.and_then(|u| directory.by_username(u)) {
        return Some((rec, MatchedBy::Username));
    }
    if let Some(rec) = user
        .and_then(MacAddr::parse)
        .and_then(|m| directory.by_mac(m))
    {
        if !request.credentials.is_present() || rec.access_kind != AccessKind::Pppoe {
            return Some((rec, MatchedBy::Mac));
        }
        return None;
    }
    if request.credentials.is_present() {
        return None;
    }
    if let Some(rec) = request
        .calling_station_id
        .and_then(MacAddr::parse)
        .and_then(|m| directory.by_mac(m))
    {
        return Some((rec, MatchedBy::Mac));
    }
    request
        .circuit_id
        .and_then(|c| directory.by_circuit_id(c))
        .map(|rec| (rec, MatchedBy::CircuitId))
}
