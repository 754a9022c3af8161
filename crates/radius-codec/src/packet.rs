//! The packet header and a borrowed, validated view of one datagram.
//!
//! [`PacketRef::decode`] checks the header and walks the attribute list once; after that every
//! accessor is infallible at the structural level and nothing is copied: the server reads
//! attributes straight out of its receive buffer.

use core::fmt;
use std::net::Ipv4Addr;

use crate::attr::{AttrRef, Attributes, Ipv6Prefix, VendorAttributes};
use crate::dict::{AttrType, VendorAttr};
use crate::error::DecodeError;

/// Code, Identifier, Length and Authenticator: 20 octets.
pub const HEADER_LEN: usize = 20;
/// The largest packet RFC 2865 §3 allows.
pub const MAX_PACKET_LEN: usize = 4096;
/// Size of the Request and Response Authenticators.
pub const AUTHENTICATOR_LEN: usize = 16;
/// The largest attribute value: the Length octet counts type and length too (255 - 2).
pub const MAX_ATTR_VALUE_LEN: usize = 253;

/// A Request or Response Authenticator.
pub type Authenticator = [u8; AUTHENTICATOR_LEN];

/// The packet codes this crate speaks (RFC 2865, 2866, 5176, 5997). Anything else is refused
/// at decode time: an unknown code cannot be answered correctly, so it is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Code {
    /// Access-Request (1).
    AccessRequest = 1,
    /// Access-Accept (2).
    AccessAccept = 2,
    /// Access-Reject (3).
    AccessReject = 3,
    /// Accounting-Request (4).
    AccountingRequest = 4,
    /// Accounting-Response (5).
    AccountingResponse = 5,
    /// Access-Challenge (11).
    AccessChallenge = 11,
    /// Status-Server (12, RFC 5997).
    StatusServer = 12,
    /// Disconnect-Request (40, RFC 5176).
    DisconnectRequest = 40,
    /// Disconnect-ACK (41).
    DisconnectAck = 41,
    /// Disconnect-NAK (42).
    DisconnectNak = 42,
    /// CoA-Request (43).
    CoaRequest = 43,
    /// CoA-ACK (44).
    CoaAck = 44,
    /// CoA-NAK (45).
    CoaNak = 45,
}

impl Code {
    /// The code for `value`, if it is one this crate speaks.
    pub const fn from_u8(value: u8) -> Option<Code> {
        Some(match value {
            1 => Code::AccessRequest,
            2 => Code::AccessAccept,
            3 => Code::AccessReject,
            4 => Code::AccountingRequest,
            5 => Code::AccountingResponse,
            11 => Code::AccessChallenge,
            12 => Code::StatusServer,
            40 => Code::DisconnectRequest,
            41 => Code::DisconnectAck,
            42 => Code::DisconnectNak,
            43 => Code::CoaRequest,
            44 => Code::CoaAck,
            45 => Code::CoaNak,
            _ => return None,
        })
    }

    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The name the RFCs use.
    pub const fn name(self) -> &'static str {
        match self {
            Code::AccessRequest => "Access-Request",
            Code::AccessAccept => "Access-Accept",
            Code::AccessReject => "Access-Reject",
            Code::AccountingRequest => "Accounting-Request",
            Code::AccountingResponse => "Accounting-Response",
            Code::AccessChallenge => "Access-Challenge",
            Code::StatusServer => "Status-Server",
            Code::DisconnectRequest => "Disconnect-Request",
            Code::DisconnectAck => "Disconnect-ACK",
            Code::DisconnectNak => "Disconnect-NAK",
            Code::CoaRequest => "CoA-Request",
            Code::CoaAck => "CoA-ACK",
            Code::CoaNak => "CoA-NAK",
        }
    }

    /// Whether packets of this code are requests (they carry a Request Authenticator and get
    /// a reply), as opposed to replies (which carry a Response Authenticator).
    pub const fn is_request(self) -> bool {
        matches!(
            self,
            Code::AccessRequest
                | Code::AccountingRequest
                | Code::StatusServer
                | Code::DisconnectRequest
                | Code::CoaRequest
        )
    }

    /// Whether the Request Authenticator is an MD5 over the packet and the secret (Accounting,
    /// Disconnect and CoA requests: RFC 2866 §3, RFC 5176 §2.3) rather than random octets
    /// (Access-Request, Status-Server).
    pub const fn has_signed_request_authenticator(self) -> bool {
        matches!(
            self,
            Code::AccountingRequest | Code::DisconnectRequest | Code::CoaRequest
        )
    }
}

impl TryFrom<u8> for Code {
    type Error = DecodeError;

    fn try_from(value: u8) -> Result<Self, Self::Error> {
        Code::from_u8(value).ok_or(DecodeError::UnknownCode(value))
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A validated, borrowed view of one RADIUS packet.
///
/// Its bytes stop at the Length field: octets past it in the datagram are padding and ignored
/// (RFC 2865 §3). Every attribute inside is known to be well formed, so iteration cannot fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketRef<'a> {
    bytes: &'a [u8],
    attrs: &'a [u8],
    authenticator: &'a Authenticator,
    code: Code,
    identifier: u8,
}

impl<'a> PacketRef<'a> {
    /// Checks and views `datagram`. Refused: fewer than 20 octets, a Length below 20, above
    /// 4096 or above the datagram, an unknown code, an attribute of Length < 2 or one running
    /// past the Length. Accepted and ignored: octets past the Length.
    pub fn decode(datagram: &'a [u8]) -> Result<Self, DecodeError> {
        let Some(header) = datagram.first_chunk::<HEADER_LEN>() else {
            return Err(DecodeError::TooShort {
                len: datagram.len(),
            });
        };
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&length) {
            return Err(DecodeError::LengthOutOfRange { length });
        }
        let Some(bytes) = datagram.get(..length) else {
            return Err(DecodeError::LengthMismatch {
                length,
                received: datagram.len(),
            });
        };
        let code = Code::try_from(header[0])?;
        let (authenticator, attrs) = match bytes.get(4..).and_then(<[u8]>::split_first_chunk) {
            Some(split) => split,
            None => return Err(DecodeError::TooShort { len: bytes.len() }),
        };
        validate_attributes(attrs)?;
        Ok(PacketRef {
            bytes,
            attrs,
            authenticator,
            code,
            identifier: header[1],
        })
    }

    /// The packet code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The Identifier, which pairs a reply with its request.
    pub fn identifier(&self) -> u8 {
        self.identifier
    }

    /// The Request or Response Authenticator as received.
    pub fn authenticator(&self) -> &'a Authenticator {
        self.authenticator
    }

    /// The Length field: the packet's size without padding.
    pub fn length(&self) -> usize {
        self.bytes.len()
    }

    /// The packet, header included, without padding.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The raw attribute list.
    pub fn attributes_bytes(&self) -> &'a [u8] {
        self.attrs
    }

    /// Every attribute, in packet order.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes::new(self.attrs)
    }

    /// The first attribute of type `kind`.
    pub fn find(&self, kind: AttrType) -> Option<AttrRef<'a>> {
        self.attributes().find(|a| a.kind() == kind)
    }

    /// The value of the first attribute of type `kind`.
    pub fn get(&self, kind: AttrType) -> Option<&'a [u8]> {
        self.find(kind).map(|a| a.value())
    }

    /// Every attribute of type `kind`, in packet order (Proxy-State, Class, Reply-Message...).
    pub fn find_all(&self, kind: AttrType) -> impl Iterator<Item = AttrRef<'a>> + 'a {
        self.attributes().filter(move |a| a.kind() == kind)
    }

    /// How many attributes of type `kind` the packet holds.
    pub fn count(&self, kind: AttrType) -> usize {
        self.find_all(kind).count()
    }

    /// The first `kind` attribute as UTF-8 text; `Ok(None)` when absent.
    pub fn text(&self, kind: AttrType) -> Result<Option<&'a str>, DecodeError> {
        self.find(kind).map(|a| a.as_text()).transpose()
    }

    /// The first `kind` attribute as a 32-bit integer; `Ok(None)` when absent.
    pub fn integer(&self, kind: AttrType) -> Result<Option<u32>, DecodeError> {
        self.find(kind).map(|a| a.as_u32()).transpose()
    }

    /// The first `kind` attribute as an IPv4 address; `Ok(None)` when absent.
    pub fn ipv4(&self, kind: AttrType) -> Result<Option<Ipv4Addr>, DecodeError> {
        self.find(kind).map(|a| a.as_ipv4()).transpose()
    }

    /// The first `kind` attribute as an IPv6 prefix; `Ok(None)` when absent.
    pub fn ipv6_prefix(&self, kind: AttrType) -> Result<Option<Ipv6Prefix>, DecodeError> {
        self.find(kind).map(|a| a.as_ipv6_prefix()).transpose()
    }

    /// Every vendor sub-attribute of every well-formed Vendor-Specific attribute, in order.
    /// Vendor-Specific attributes that do not follow the RFC 2865 §5.26 layout are skipped.
    pub fn vendor_attributes(&self) -> VendorAttributes<'a> {
        VendorAttributes::new(self.attributes())
    }

    /// The value of the first vendor attribute `attr`.
    pub fn vendor(&self, attr: VendorAttr) -> Option<&'a [u8]> {
        self.vendor_attributes()
            .find(|v| v.attr() == attr)
            .map(|v| v.value())
    }

    /// The values of every vendor attribute `attr`, in order.
    pub fn vendor_all(&self, attr: VendorAttr) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.vendor_attributes()
            .filter(move |v| v.attr() == attr)
            .map(|v| v.value())
    }

    /// The first vendor attribute `attr` as UTF-8 text; `Ok(None)` when absent.
    pub fn vendor_text(&self, attr: VendorAttr) -> Result<Option<&'a str>, DecodeError> {
        self.vendor_attributes()
            .find(|v| v.attr() == attr)
            .map(|v| v.as_text())
            .transpose()
    }

    /// The first vendor attribute `attr` as a 32-bit integer; `Ok(None)` when absent.
    pub fn vendor_integer(&self, attr: VendorAttr) -> Result<Option<u32>, DecodeError> {
        self.vendor_attributes()
            .find(|v| v.attr() == attr)
            .map(|v| v.as_u32())
            .transpose()
    }
}

/// Walks the attribute list once, refusing any attribute whose Length is below 2 or runs past
/// the end. `attrs` starts at packet offset 20, which the offsets in errors include.
fn validate_attributes(mut attrs: &[u8]) -> Result<(), DecodeError> {
    let mut offset = HEADER_LEN;
    while let Some((&_kind, rest)) = attrs.split_first() {
        let Some(&length) = rest.first() else {
            return Err(DecodeError::AttributeHeaderTruncated { offset });
        };
        if length < 2 {
            return Err(DecodeError::AttributeTooShort { offset, length });
        }
        let Some((_, tail)) = attrs.split_at_checked(usize::from(length)) else {
            return Err(DecodeError::AttributeOverflow {
                offset,
                length,
                available: attrs.len(),
            });
        };
        attrs = tail;
        offset += usize::from(length);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(code: u8, length: u16) -> Vec<u8> {
        let mut b = vec![code, 7];
        b.extend_from_slice(&length.to_be_bytes());
        b.extend_from_slice(&[0xAA; 16]);
        b
    }

    #[test]
    fn every_code_round_trips_and_others_are_refused() {
        for v in 0..=255u8 {
            match Code::from_u8(v) {
                Some(c) => {
                    assert_eq!(c.as_u8(), v);
                    assert!(!c.name().is_empty());
                }
                None => assert_eq!(Code::try_from(v), Err(DecodeError::UnknownCode(v))),
            }
        }
        assert_eq!(Code::CoaNak.to_string(), "CoA-NAK");
        assert!(Code::StatusServer.is_request());
        assert!(!Code::StatusServer.has_signed_request_authenticator());
        assert!(Code::DisconnectRequest.has_signed_request_authenticator());
        assert!(!Code::AccessAccept.is_request());
    }

    #[test]
    fn header_errors() {
        assert_eq!(
            PacketRef::decode(&[1, 0, 0]),
            Err(DecodeError::TooShort { len: 3 })
        );
        assert_eq!(
            PacketRef::decode(&header(1, 19)),
            Err(DecodeError::LengthOutOfRange { length: 19 })
        );
        let mut big = header(1, 4097);
        big.resize(5000, 0);
        assert_eq!(
            PacketRef::decode(&big),
            Err(DecodeError::LengthOutOfRange { length: 4097 })
        );
        assert_eq!(
            PacketRef::decode(&header(1, 22)),
            Err(DecodeError::LengthMismatch {
                length: 22,
                received: 20
            })
        );
        assert_eq!(
            PacketRef::decode(&header(99, 20)),
            Err(DecodeError::UnknownCode(99))
        );
    }

    #[test]
    fn attribute_errors_carry_the_offset() {
        let mut b = header(1, 21);
        b.push(1);
        assert_eq!(
            PacketRef::decode(&b),
            Err(DecodeError::AttributeHeaderTruncated { offset: 20 })
        );
        let mut b = header(1, 25);
        b.extend_from_slice(&[1, 3, b'x', 5, 1]);
        assert_eq!(
            PacketRef::decode(&b),
            Err(DecodeError::AttributeTooShort {
                offset: 23,
                length: 1
            })
        );
        let mut b = header(1, 24);
        b.extend_from_slice(&[1, 2, 4, 6]);
        assert_eq!(
            PacketRef::decode(&b),
            Err(DecodeError::AttributeOverflow {
                offset: 22,
                length: 6,
                available: 2
            })
        );
    }

    #[test]
    fn padding_past_the_length_is_ignored() {
        let mut b = header(2, 23);
        b.extend_from_slice(&[18, 3, b'!', 0xFF, 0xFF, 0xFF]);
        // An attribute that would overflow lives only in the padding: not our business.
        let p = PacketRef::decode(&b).unwrap();
        assert_eq!(p.length(), 23);
        assert_eq!(p.as_bytes(), &b[..23]);
        assert_eq!(p.code(), Code::AccessAccept);
        assert_eq!(p.identifier(), 7);
        assert_eq!(p.authenticator(), &[0xAA; 16]);
        assert_eq!(p.get(AttrType::REPLY_MESSAGE), Some(&b"!"[..]));
        assert_eq!(p.attributes().count(), 1);
    }

    #[test]
    fn empty_values_are_structurally_fine() {
        let mut b = header(1, 24);
        b.extend_from_slice(&[1, 2, 24, 2]);
        let p = PacketRef::decode(&b).unwrap();
        assert_eq!(p.get(AttrType::USER_NAME), Some(&b""[..]));
        assert_eq!(p.count(AttrType::STATE), 1);
        assert_eq!(p.integer(AttrType::NAS_PORT), Ok(None));
    }
}
