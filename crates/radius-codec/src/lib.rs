//! RADIUS as bytes in, bytes out: no sockets, no async, no clock, no random numbers.
//!
//! The AAA server reads a datagram, hands it to [`PacketRef::decode`] (a zero-copy view that
//! checks every length once), reads attributes through it, verifies the packet with
//! [`auth::verify_request`], checks the password ([`pap`], [`chap`], [`mschap`]) and answers
//! with a [`PacketBuilder`] that writes into a reused `Vec<u8>`. Nothing here allocates per
//! attribute, and nothing panics on any input: lengths are checked before every read, errors
//! are values ([`DecodeError`], [`EncodeError`], [`AuthError`]).
//!
//! What the crate covers, by RFC:
//! - 2865 (packets, attributes, PAP, CHAP, Response Authenticator), 2866 (accounting),
//!   2869 and 3579 (Message-Authenticator), 5176 (CoA and Disconnect), 5080 (padding, hardening),
//!   3162 and 4818 (IPv6 prefixes);
//! - 2548, 2759 and 3079 (MS-CHAPv2, MPPE keys and their encryption in the Accept);
//! - the vendor attributes an ISP meets on its NASes ([`dict`]).
//!
//! Callers supply whatever must be random (identifiers, Request Authenticators of the requests
//! we originate, MPPE salts), so the crate stays deterministic and testable.

#![forbid(unsafe_code)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod acct;
pub mod attr;
pub mod auth;
pub mod builder;
pub mod chap;
pub mod dict;
pub mod error;
pub mod mppe;
pub mod mschap;
pub mod packet;
pub mod pap;

mod crypto;

pub use attr::{AttrRef, Attributes, Ipv6Prefix, VendorAttrRef, VendorAttributes, Vsa};
pub use builder::PacketBuilder;
pub use dict::{AttrType, VendorAttr};
pub use error::{AuthError, DecodeError, EncodeError};
pub use packet::{
    Authenticator, Code, PacketRef, AUTHENTICATOR_LEN, HEADER_LEN, MAX_ATTR_VALUE_LEN,
    MAX_PACKET_LEN,
};
