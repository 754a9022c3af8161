//! Authenticators and Message-Authenticator: how both ends prove they hold the shared secret.
//!
//! Three computations, all over the packet as sent, Length included:
//! - **Response Authenticator** (RFC 2865 §3, RFC 2866 §4, RFC 5176 §2.3): every reply carries
//!   `MD5(Code | Identifier | Length | Request Authenticator | Attributes | Secret)`, where the
//!   Request Authenticator is the one of the request being answered.
//! - **Signed Request Authenticator** (RFC 2866 §3, RFC 5176 §2.3): Accounting-, CoA- and
//!   Disconnect-Requests carry the same MD5 computed with 16 zero octets in place of the
//!   authenticator. (Access-Request and Status-Server carry random octets instead.)
//! - **Message-Authenticator** (RFC 3579 §3.2, RFC 5176 §3.3): an HMAC-MD5 keyed with the
//!   secret over the whole packet with the attribute's own value taken as 16 zero octets, and
//!   with the authenticator field holding the request's own Request Authenticator
//!   (Access-Request, Status-Server), 16 zero octets (Accounting-, CoA-, Disconnect-Requests),
//!   or the Request Authenticator of the request answered (every reply). A reply's
//!   Message-Authenticator is computed first and its Response Authenticator after, over it.
//!
//! Access-Requests are signed only by Message-Authenticator, so a server that does not insist
//! on it for every NAS can be fooled by the MD5 collision of BlastRADIUS (CVE-2024-3596).
//! [`verify_request`] takes that policy as a parameter; [`crate::PacketBuilder`] puts the
//! attribute first in whatever it builds, which defeats the attack on replies.

use hmac::Mac;

use crate::crypto::{self, ct_eq, hmac_finish, hmac_md5};
use crate::dict::AttrType;
use crate::error::{AuthError, DecodeError};
use crate::packet::{Authenticator, Code, PacketRef, AUTHENTICATOR_LEN, HEADER_LEN};

const ZERO_AUTH: Authenticator = [0; AUTHENTICATOR_LEN];

/// Where the single Message-Authenticator of a packet sits: offset of its 16-octet value from
/// the start of the packet. `Ok(None)` when absent; errors when duplicated or mis-sized.
pub fn message_authenticator_offset(packet: &PacketRef<'_>) -> Result<Option<usize>, AuthError> {
    let mut found = None;
    let mut offset = HEADER_LEN;
    for attr in packet.attributes() {
        let value_len = attr.value().len();
        if attr.kind() == AttrType::MESSAGE_AUTHENTICATOR {
            if found.is_some() {
                return Err(AuthError::DuplicateMessageAuthenticator);
            }
            if value_len != AUTHENTICATOR_LEN {
                return Err(AuthError::MessageAuthenticatorLength { len: value_len });
            }
            found = Some(offset + 2);
        }
        offset += 2 + value_len;
    }
    Ok(found)
}

/// Splits `bytes` around a 16-octet field at `at`: (before, field, after).
fn around(bytes: &[u8], at: usize) -> Option<(&[u8], &[u8], &[u8])> {
    let (before, rest) = bytes.split_at_checked(at)?;
    let (field, after) = rest.split_at_checked(AUTHENTICATOR_LEN)?;
    Some((before, field, after))
}

/// HMAC-MD5 over `bytes` with the authenticator field replaced by `auth` and the 16 octets at
/// `ma_at` replaced by zeros, without copying the packet.
fn message_authenticator(
    bytes: &[u8],
    auth: &Authenticator,
    ma_at: usize,
    secret: &[u8],
) -> Option<[u8; 16]> {
    let (head, _, rest) = around(bytes, 4)?;
    let (mid, _, tail) = around(rest, ma_at.checked_sub(HEADER_LEN)?)?;
    let mut mac = hmac_md5(secret);
    mac.update(head);
    mac.update(auth);
    mac.update(mid);
    mac.update(&ZERO_AUTH);
    mac.update(tail);
    Some(hmac_finish(mac))
}

/// MD5 over `bytes` with the authenticator field replaced by `auth`, then the secret.
fn packet_md5(bytes: &[u8], auth: &Authenticator, secret: &[u8]) -> Option<[u8; 16]> {
    let (head, _, attrs) = around(bytes, 4)?;
    Some(crypto::md5(&[head, auth, attrs, secret]))
}

/// What the authenticator field is taken as while computing a request's Message-Authenticator.
fn request_hmac_auth<'p>(request: &PacketRef<'p>) -> Result<&'p Authenticator, AuthError> {
    match request.code() {
        Code::AccessRequest | Code::StatusServer => Ok(request.authenticator()),
        c if c.has_signed_request_authenticator() => Ok(&ZERO_AUTH),
        c => Err(AuthError::NotApplicable(c)),
    }
}

fn check_message_authenticator(
    packet: &PacketRef<'_>,
    auth: &Authenticator,
    secret: &[u8],
) -> Result<(), AuthError> {
    let at = message_authenticator_offset(packet)?.ok_or(AuthError::MissingMessageAuthenticator)?;
    let expected = message_authenticator(packet.as_bytes(), auth, at, secret)
        .ok_or(AuthError::BadMessageAuthenticator)?;
    let received = packet
        .as_bytes()
        .get(at..at + AUTHENTICATOR_LEN)
        .ok_or(AuthError::BadMessageAuthenticator)?;
    if ct_eq(&expected, received) {
        Ok(())
    } else {
        Err(AuthError::BadMessageAuthenticator)
    }
}

/// Verifies the Message-Authenticator of a request (any request code). Fails with
/// [`AuthError::MissingMessageAuthenticator`] when there is none, so the caller decides
/// whether that is acceptable.
pub fn verify_message_authenticator(
    request: &PacketRef<'_>,
    secret: &[u8],
) -> Result<(), AuthError> {
    let auth = request_hmac_auth(request)?;
    check_message_authenticator(request, auth, secret)
}

/// Verifies the Message-Authenticator of a reply, given the Request Authenticator of the
/// request we sent.
pub fn verify_reply_message_authenticator(
    reply: &PacketRef<'_>,
    request_authenticator: &Authenticator,
    secret: &[u8],
) -> Result<(), AuthError> {
    if reply.code().is_request() {
        return Err(AuthError::NotApplicable(reply.code()));
    }
    check_message_authenticator(reply, request_authenticator, secret)
}

/// Verifies the signed Request Authenticator of an Accounting-, CoA- or Disconnect-Request.
pub fn verify_request_authenticator(
    request: &PacketRef<'_>,
    secret: &[u8],
) -> Result<(), AuthError> {
    if !request.code().has_signed_request_authenticator() {
        return Err(AuthError::NotApplicable(request.code()));
    }
    let expected =
        packet_md5(request.as_bytes(), &ZERO_AUTH, secret).ok_or(AuthError::BadAuthenticator)?;
    if ct_eq(&expected, request.authenticator()) {
        Ok(())
    } else {
        Err(AuthError::BadAuthenticator)
    }
}

/// Verifies the Response Authenticator of a reply, given the Request Authenticator of the
/// request we sent (a CoA client checking the ACK, for instance).
pub fn verify_response_authenticator(
    reply: &PacketRef<'_>,
    request_authenticator: &Authenticator,
    secret: &[u8],
) -> Result<(), AuthError> {
    if reply.code().is_request() {
        return Err(AuthError::NotApplicable(reply.code()));
    }
    let expected = packet_md5(reply.as_bytes(), request_authenticator, secret)
        .ok_or(AuthError::BadAuthenticator)?;
    if ct_eq(&expected, reply.authenticator()) {
        Ok(())
    } else {
        Err(AuthError::BadAuthenticator)
    }
}

/// Verifies a reply completely: Response Authenticator, and Message-Authenticator when present
/// (or always, when `require_message_authenticator`).
pub fn verify_reply(
    reply: &PacketRef<'_>,
    request_authenticator: &Authenticator,
    secret: &[u8],
    require_message_authenticator: bool,
) -> Result<(), AuthError> {
    verify_response_authenticator(reply, request_authenticator, secret)?;
    match verify_reply_message_authenticator(reply, request_authenticator, secret) {
        Err(AuthError::MissingMessageAuthenticator) if !require_message_authenticator => Ok(()),
        other => other,
    }
}

/// The server's gate for an incoming request: everything the RFCs let it check.
///
/// - Access-Request: the Message-Authenticator, if present; if absent, refused when
///   `require_message_authenticator` (the BlastRADIUS hardening a server should apply to every
///   NAS able to send it), or when the request carries EAP-Message (RFC 3579 §3.2 requires it).
/// - Status-Server: the Message-Authenticator, always required (RFC 5997 §3).
/// - Accounting-, CoA-, Disconnect-Request: the signed Request Authenticator, and the
///   Message-Authenticator if present. `require_message_authenticator` does not apply: these
///   are already signed as a whole, and most NASes send no Message-Authenticator in accounting.
/// - Replies: [`AuthError::NotApplicable`]; use [`verify_reply`].
pub fn verify_request(
    request: &PacketRef<'_>,
    secret: &[u8],
    require_message_authenticator: bool,
) -> Result<(), AuthError> {
    let required = match request.code() {
        Code::AccessRequest => {
            require_message_authenticator || request.find(AttrType::EAP_MESSAGE).is_some()
        }
        Code::StatusServer => true,
        c if c.has_signed_request_authenticator() => {
            verify_request_authenticator(request, secret)?;
            false
        }
        c => return Err(AuthError::NotApplicable(c)),
    };
    match verify_message_authenticator(request, secret) {
        Err(AuthError::MissingMessageAuthenticator) if !required => Ok(()),
        other => other,
    }
}

/// Signs a packet being built in `buf` (complete, Length written, Message-Authenticator value
/// zeroed at `ma_at` if present): writes `hmac_auth` into the authenticator field, fills the
/// Message-Authenticator, then, when `md5_after`, replaces the authenticator field with the
/// MD5 of the packet and the secret.
pub(crate) fn sign_in_place(
    buf: &mut [u8],
    hmac_auth: &Authenticator,
    ma_at: Option<usize>,
    md5_after: bool,
    secret: &[u8],
) {
    if let Some(field) = buf.get_mut(4..HEADER_LEN) {
        field.copy_from_slice(hmac_auth);
    }
    if let Some(at) = ma_at {
        if let Some(field) = buf.get_mut(at..at + AUTHENTICATOR_LEN) {
            field.fill(0);
        }
        let mut mac = hmac_md5(secret);
        mac.update(buf);
        let value = hmac_finish(mac);
        if let Some(field) = buf.get_mut(at..at + AUTHENTICATOR_LEN) {
            field.copy_from_slice(&value);
        }
    }
    if md5_after {
        let digest = crypto::md5(&[buf, secret]);
        if let Some(field) = buf.get_mut(4..HEADER_LEN) {
            field.copy_from_slice(&digest);
        }
    }
}

/// Re-signs a complete reply in place (a proxy rewriting a reply, a test forging one):
/// Message-Authenticator if present, then Response Authenticator. Padding past the Length is
/// left alone. A Message-Authenticator that is duplicated or not 16 octets is left as is (the
/// packet will then not verify).
pub fn sign_reply_in_place(
    packet: &mut [u8],
    request_authenticator: &Authenticator,
    secret: &[u8],
) -> Result<(), DecodeError> {
    let (len, _, _, ma_at) = inspect(packet)?;
    let buf = packet.get_mut(..len).ok_or(DecodeError::TooShort { len })?;
    sign_in_place(buf, request_authenticator, ma_at, true, secret);
    Ok(())
}

/// Re-signs a complete request in place. Accounting-, CoA- and Disconnect-Requests get their
/// Message-Authenticator (if present) and signed Request Authenticator; Access-Request and
/// Status-Server only their Message-Authenticator, over the authenticator already there.
pub fn sign_request_in_place(packet: &mut [u8], secret: &[u8]) -> Result<(), DecodeError> {
    let (len, code, own, ma_at) = inspect(packet)?;
    let buf = packet.get_mut(..len).ok_or(DecodeError::TooShort { len })?;
    if code.has_signed_request_authenticator() {
        sign_in_place(buf, &ZERO_AUTH, ma_at, true, secret);
    } else {
        sign_in_place(buf, &own, ma_at, false, secret);
    }
    Ok(())
}

/// Length, code, authenticator and Message-Authenticator offset of a packet about to be signed.
fn inspect(packet: &[u8]) -> Result<(usize, Code, Authenticator, Option<usize>), DecodeError> {
    let view = PacketRef::decode(packet)?;
    let ma_at = message_authenticator_offset(&view).unwrap_or(None);
    Ok((view.length(), view.code(), *view.authenticator(), ma_at))
}
