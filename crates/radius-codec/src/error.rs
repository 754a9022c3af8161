//! The three ways a codec operation fails: the bytes are malformed ([`DecodeError`]), what the
//! caller asked to write does not fit RADIUS ([`EncodeError`]), or the packet is well formed but
//! not signed with the shared secret we hold ([`AuthError`]). A server drops the datagram in
//! every case; the variants exist so that logs and counters can say why.

use crate::packet::Code;

/// The bytes do not form what was asked for: a packet, an attribute value, a hidden password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Fewer octets than the 20-octet header.
    #[error("packet too short: {len} octets, a RADIUS header needs 20")]
    TooShort {
        /// Octets received.
        len: usize,
    },
    /// The Length field is below 20 or above 4096 (RFC 2865 §3).
    #[error("Length field {length} is outside 20..=4096")]
    LengthOutOfRange {
        /// The Length field.
        length: usize,
    },
    /// The Length field claims more octets than were received (RFC 2865 §3 says drop it).
    #[error("Length field {length} exceeds the {received} octets received")]
    LengthMismatch {
        /// The Length field.
        length: usize,
        /// Octets received.
        received: usize,
    },
    /// The Code is none of those this crate speaks.
    #[error("unknown packet code {0}")]
    UnknownCode(u8),
    /// An attribute's type octet is the last octet of the packet: its length octet is missing.
    #[error("attribute at offset {offset} has no length octet")]
    AttributeHeaderTruncated {
        /// Offset of the attribute from the start of the packet.
        offset: usize,
    },
    /// An attribute's Length is 0 or 1: it cannot even cover its own type and length octets.
    #[error("attribute at offset {offset} has length {length}, below the minimum of 2")]
    AttributeTooShort {
        /// Offset of the attribute from the start of the packet.
        offset: usize,
        /// Its Length octet.
        length: u8,
    },
    /// An attribute's Length runs past the end of the packet.
    #[error("attribute at offset {offset} with length {length} overflows the packet ({available} octets left)")]
    AttributeOverflow {
        /// Offset of the attribute from the start of the packet.
        offset: usize,
        /// Its Length octet.
        length: u8,
        /// Octets left in the packet from that offset.
        available: usize,
    },
    /// A value has the wrong size for its type (an integer that is not 4 octets, ...).
    #[error("attribute {attr} has a {actual}-octet value, expected {expected}")]
    ValueLength {
        /// Attribute type (or vendor type, for a vendor attribute).
        attr: u8,
        /// The size its type requires.
        expected: usize,
        /// The size received.
        actual: usize,
    },
    /// A text value is not UTF-8.
    #[error("attribute {attr} is not valid UTF-8 text")]
    InvalidText {
        /// Attribute type (or vendor type).
        attr: u8,
    },
    /// An IPv6 prefix value is malformed (RFC 3162 §2.3).
    #[error("attribute {attr} is not a valid IPv6 prefix")]
    InvalidIpv6Prefix {
        /// Attribute type (or vendor type).
        attr: u8,
    },
    /// A hidden User-Password is empty, not a multiple of 16 octets, or over 128 (RFC 2865 §5.2).
    #[error("hidden password of {len} octets: it must be 16..=128 and a multiple of 16")]
    PasswordLength {
        /// Octets of the hidden value.
        len: usize,
    },
    /// An attribute the operation needs is absent.
    #[error("attribute {attr} is missing")]
    MissingAttribute {
        /// Attribute type (or vendor type).
        attr: u8,
    },
    /// An encrypted MPPE key attribute (RFC 2548 §2.4.2) is malformed or decrypts to nonsense.
    #[error("malformed MPPE key attribute")]
    InvalidMppeKey,
}

/// What the caller asked to write does not fit in a RADIUS packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// An attribute value longer than 253 octets (the Length octet counts 2 more).
    #[error("attribute {attr} value of {len} octets exceeds 253")]
    ValueTooLong {
        /// Attribute type (26 for a vendor attribute).
        attr: u8,
        /// Octets asked for.
        len: usize,
    },
    /// Adding the attribute would take the packet past 4096 octets.
    #[error("packet would be {len} octets, over the 4096 maximum")]
    PacketTooLong {
        /// Size the packet would have had.
        len: usize,
    },
    /// A User-Password over 128 octets (RFC 2865 §5.2).
    #[error("password of {len} octets exceeds 128")]
    PasswordTooLong {
        /// Octets asked for.
        len: usize,
    },
    /// An MPPE key too long for one attribute (at most 239 octets once padded and salted).
    #[error("MPPE key of {len} octets is too long")]
    KeyTooLong {
        /// Octets asked for.
        len: usize,
    },
}

/// A well-formed packet that fails its cryptographic checks, or lacks one that is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No Message-Authenticator, where one is required (Status-Server, EAP, BlastRADIUS policy).
    #[error("Message-Authenticator is missing")]
    MissingMessageAuthenticator,
    /// More than one Message-Authenticator (RFC 3579 §3.2 allows at most one).
    #[error("more than one Message-Authenticator")]
    DuplicateMessageAuthenticator,
    /// A Message-Authenticator whose value is not 16 octets.
    #[error("Message-Authenticator of {len} octets, expected 16")]
    MessageAuthenticatorLength {
        /// Octets of the value.
        len: usize,
    },
    /// The Message-Authenticator does not match: wrong secret, or a forged or altered packet.
    #[error("Message-Authenticator does not match")]
    BadMessageAuthenticator,
    /// The Request or Response Authenticator does not match.
    #[error("authenticator does not match")]
    BadAuthenticator,
    /// The check asked for does not exist for this packet code (for instance the Request
    /// Authenticator of an Access-Request, which is random).
    #[error("this check does not apply to {0}")]
    NotApplicable(Code),
}
