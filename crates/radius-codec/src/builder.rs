//! The encoder: builds one packet into a caller-owned `Vec<u8>`, reused from packet to packet,
//! so a reply costs no allocation once the buffer has grown to its working size.
//!
//! Every `add_*` checks the value (at most 253 octets) and the packet (at most 4096) before
//! writing, so a finished packet is always well formed. A Message-Authenticator slot is
//! reserved as the very first attribute unless the caller opts out: first, because a reply
//! whose Message-Authenticator precedes every attacker-influenced attribute cannot be forged by
//! the BlastRADIUS prefix collision (CVE-2024-3596).
//!
//! ```
//! use lastmile_radius_codec::{AttrType, Code, PacketBuilder, PacketRef, dict::mikrotik};
//! # let mut req = Vec::new();
//! # PacketBuilder::new(&mut req, Code::AccessRequest, 9).finish_request(b"s3cret");
//! let request = PacketRef::decode(&req)?;
//! let mut out = Vec::with_capacity(512);
//! let mut reply = PacketBuilder::reply(&mut out, &request, Code::AccessAccept);
//! reply
//!     .add_u32(AttrType::SESSION_TIMEOUT, 3600)?
//!     .add_vsa(mikrotik::RATE_LIMIT, b"10M/20M")?
//!     .copy_proxy_state(&request)?;
//! let datagram: &[u8] = reply.finish_reply(&request, b"s3cret");
//! # assert!(PacketRef::decode(datagram).is_ok());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::net::Ipv4Addr;

use crate::attr::Ipv6Prefix;
use crate::auth;
use crate::dict::{microsoft, AttrType, VendorAttr};
use crate::error::EncodeError;
use crate::mppe::{self, MppeKeys};
use crate::packet::{
    Authenticator, Code, PacketRef, AUTHENTICATOR_LEN, HEADER_LEN, MAX_ATTR_VALUE_LEN,
    MAX_PACKET_LEN,
};
use crate::pap;

/// Offset of the Message-Authenticator value when it is the first attribute.
const FIRST_MA_VALUE_AT: usize = HEADER_LEN + 2;

/// Builds one packet into a borrowed buffer. See the module documentation.
#[derive(Debug)]
pub struct PacketBuilder<'b> {
    buf: &'b mut Vec<u8>,
    code: Code,
    ma_at: Option<usize>,
}

impl<'b> PacketBuilder<'b> {
    /// Starts a packet of `code` in `buf` (cleared; its capacity is kept), with a zero
    /// authenticator and a Message-Authenticator slot as first attribute.
    pub fn new(buf: &'b mut Vec<u8>, code: Code, identifier: u8) -> Self {
        buf.clear();
        buf.extend_from_slice(&[code.as_u8(), identifier, 0, 0]);
        buf.extend_from_slice(&[0; AUTHENTICATOR_LEN]);
        buf.extend_from_slice(&[AttrType::MESSAGE_AUTHENTICATOR.0, 18]);
        buf.extend_from_slice(&[0; AUTHENTICATOR_LEN]);
        PacketBuilder {
            buf,
            code,
            ma_at: Some(FIRST_MA_VALUE_AT),
        }
    }

    /// Starts the reply `code` to `request`: same Identifier. Remember
    /// [`copy_proxy_state`](Self::copy_proxy_state) when answering through proxies.
    pub fn reply(buf: &'b mut Vec<u8>, request: &PacketRef<'_>, code: Code) -> Self {
        PacketBuilder::new(buf, code, request.identifier())
    }

    /// Drops the Message-Authenticator slot, for peers that reject the attribute (old NASes in
    /// accounting, mostly). Prefer keeping it.
    pub fn without_message_authenticator(self) -> Self {
        let PacketBuilder { buf, code, ma_at } = self;
        if let Some(at) = ma_at {
            buf.drain(at.saturating_sub(2)..(at + AUTHENTICATOR_LEN).min(buf.len()));
        }
        PacketBuilder {
            buf,
            code,
            ma_at: None,
        }
    }

    /// Sets the authenticator field: the random Request Authenticator of an Access-Request or
    /// Status-Server we originate (set it before [`add_user_password`](Self::add_user_password)).
    /// Other codes overwrite the field when finishing.
    pub fn set_authenticator(&mut self, authenticator: &Authenticator) -> &mut Self {
        if let Some(field) = self.buf.get_mut(4..HEADER_LEN) {
            field.copy_from_slice(authenticator);
        }
        self
    }

    /// The packet code being built.
    pub fn code(&self) -> Code {
        self.code
    }

    /// Octets written so far.
    pub fn length(&self) -> usize {
        self.buf.len()
    }

    fn room_for(&self, value_len: usize, attr: u8) -> Result<(), EncodeError> {
        if value_len > MAX_ATTR_VALUE_LEN {
            return Err(EncodeError::ValueTooLong {
                attr,
                len: value_len,
            });
        }
        let len = self.buf.len() + 2 + value_len;
        if len > MAX_PACKET_LEN {
            return Err(EncodeError::PacketTooLong { len });
        }
        Ok(())
    }

    fn header(&mut self, kind: u8, value_len: usize) -> Result<(), EncodeError> {
        self.room_for(value_len, kind)?;
        let length = u8::try_from(value_len + 2).map_err(|_| EncodeError::ValueTooLong {
            attr: kind,
            len: value_len,
        })?;
        self.buf.extend_from_slice(&[kind, length]);
        Ok(())
    }

    /// Appends an attribute. Refuses values over 253 octets: only a few attributes may be
    /// split across several (see [`add_split`](Self::add_split)).
    pub fn add(&mut self, kind: AttrType, value: &[u8]) -> Result<&mut Self, EncodeError> {
        self.header(kind.0, value.len())?;
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a text attribute.
    pub fn add_text(&mut self, kind: AttrType, value: &str) -> Result<&mut Self, EncodeError> {
        self.add(kind, value.as_bytes())
    }

    /// Appends a 32-bit integer attribute (also `enum` and `time` types).
    pub fn add_u32(&mut self, kind: AttrType, value: u32) -> Result<&mut Self, EncodeError> {
        self.add(kind, &value.to_be_bytes())
    }

    /// Appends an IPv4 address attribute.
    pub fn add_ipv4(&mut self, kind: AttrType, value: Ipv4Addr) -> Result<&mut Self, EncodeError> {
        self.add(kind, &value.octets())
    }

    /// Appends an IPv6 prefix attribute (Framed-IPv6-Prefix, Delegated-IPv6-Prefix).
    pub fn add_ipv6_prefix(
        &mut self,
        kind: AttrType,
        value: Ipv6Prefix,
    ) -> Result<&mut Self, EncodeError> {
        self.add(kind, &value.to_bytes())
    }

    /// Appends a value that may exceed 253 octets as consecutive attributes of at most 253
    /// each, as RFC 3579 §3.1 prescribes for EAP-Message. Nothing is added for an empty value.
    pub fn add_split(&mut self, kind: AttrType, value: &[u8]) -> Result<&mut Self, EncodeError> {
        let chunks = value.len().div_ceil(MAX_ATTR_VALUE_LEN);
        let len = self.buf.len() + value.len() + 2 * chunks;
        if len > MAX_PACKET_LEN {
            return Err(EncodeError::PacketTooLong { len });
        }
        for chunk in value.chunks(MAX_ATTR_VALUE_LEN) {
            self.add(kind, chunk)?;
        }
        Ok(self)
    }

    /// Appends a Vendor-Specific attribute holding one sub-attribute (RFC 2865 §5.26 layout;
    /// one sub-attribute per VSA is what every NAS parses). The value is at most 247 octets.
    pub fn add_vsa(&mut self, attr: VendorAttr, value: &[u8]) -> Result<&mut Self, EncodeError> {
        let vsa_len = 4 + 2 + value.len();
        self.header(AttrType::VENDOR_SPECIFIC.0, vsa_len)?;
        // vsa_len <= 253 here, so the sub-attribute length fits an octet.
        let sub_len = u8::try_from(value.len() + 2).map_err(|_| EncodeError::ValueTooLong {
            attr: AttrType::VENDOR_SPECIFIC.0,
            len: vsa_len,
        })?;
        self.buf.extend_from_slice(&attr.vendor.to_be_bytes());
        self.buf.extend_from_slice(&[attr.kind, sub_len]);
        self.buf.extend_from_slice(value);
        Ok(self)
    }

    /// Appends a text vendor attribute.
    pub fn add_vsa_text(
        &mut self,
        attr: VendorAttr,
        value: &str,
    ) -> Result<&mut Self, EncodeError> {
        self.add_vsa(attr, value.as_bytes())
    }

    /// Appends a 32-bit integer vendor attribute.
    pub fn add_vsa_u32(&mut self, attr: VendorAttr, value: u32) -> Result<&mut Self, EncodeError> {
        self.add_vsa(attr, &value.to_be_bytes())
    }

    /// Appends a User-Password hidden with `secret` and the authenticator currently in the
    /// header (RFC 2865 §5.2): call [`set_authenticator`](Self::set_authenticator) first.
    pub fn add_user_password(
        &mut self,
        password: &[u8],
        secret: &[u8],
    ) -> Result<&mut Self, EncodeError> {
        let mut auth = [0u8; AUTHENTICATOR_LEN];
        if let Some(field) = self.buf.get(4..HEADER_LEN) {
            auth.copy_from_slice(field);
        }
        let hidden = pap::encrypt(password, secret, &auth)?;
        self.add(AttrType::USER_PASSWORD, hidden.as_bytes())
    }

    /// Appends MS-MPPE-Recv-Key and MS-MPPE-Send-Key (RFC 2548 §2.4), hidden under `secret`
    /// and the Request Authenticator of the Access-Request being answered. `salt` should be
    /// random; the two attributes use it and it with the lowest bit flipped, so they always
    /// differ as the RFC requires (the top bit is set on both).
    pub fn add_mppe_keys(
        &mut self,
        keys: &MppeKeys,
        salt: u16,
        secret: &[u8],
        request_authenticator: &Authenticator,
    ) -> Result<&mut Self, EncodeError> {
        let recv = mppe::encrypt_key(&keys.recv_key, salt, secret, request_authenticator)?;
        let send = mppe::encrypt_key(&keys.send_key, salt ^ 1, secret, request_authenticator)?;
        self.add_vsa(microsoft::MS_MPPE_RECV_KEY, recv.as_bytes())?;
        self.add_vsa(microsoft::MS_MPPE_SEND_KEY, send.as_bytes())
    }

    /// Copies every Proxy-State of `request`, in order and unmodified, as RFC 2865 §5.33
    /// requires of every reply.
    pub fn copy_proxy_state(&mut self, request: &PacketRef<'_>) -> Result<&mut Self, EncodeError> {
        for attr in request.find_all(AttrType::PROXY_STATE) {
            self.add(AttrType::PROXY_STATE, attr.value())?;
        }
        Ok(self)
    }

    fn write_length(&mut self) {
        let len = u16::try_from(self.buf.len()).unwrap_or(u16::MAX);
        if let Some(field) = self.buf.get_mut(2..4) {
            field.copy_from_slice(&len.to_be_bytes());
        }
    }

    /// Finishes a reply to `request`: Length, Message-Authenticator (computed with the
    /// request's authenticator), then Response Authenticator. Returns the datagram.
    pub fn finish_reply(self, request: &PacketRef<'_>, secret: &[u8]) -> &'b [u8] {
        self.finish_reply_to(request.authenticator(), secret)
    }

    /// [`finish_reply`](Self::finish_reply) from the request's authenticator alone, for a
    /// server that keeps 16 octets rather than the request buffer while it works.
    pub fn finish_reply_to(
        mut self,
        request_authenticator: &Authenticator,
        secret: &[u8],
    ) -> &'b [u8] {
        self.write_length();
        auth::sign_in_place(self.buf, request_authenticator, self.ma_at, true, secret);
        self.buf
    }

    /// Finishes a request we originate. Accounting-, CoA- and Disconnect-Requests get their
    /// Message-Authenticator (over a zero authenticator) and then their signed Request
    /// Authenticator; Access-Request and Status-Server keep the random authenticator given to
    /// [`set_authenticator`](Self::set_authenticator) and get their Message-Authenticator.
    pub fn finish_request(mut self, secret: &[u8]) -> &'b [u8] {
        self.write_length();
        let mut own = [0u8; AUTHENTICATOR_LEN];
        if self.code.has_signed_request_authenticator() {
            auth::sign_in_place(self.buf, &own, self.ma_at, true, secret);
        } else {
            if let Some(field) = self.buf.get(4..HEADER_LEN) {
                own.copy_from_slice(field);
            }
            auth::sign_in_place(self.buf, &own, self.ma_at, false, secret);
        }
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{verify_reply, verify_request};

    const SECRET: &[u8] = b"testing123";

    fn request() -> Vec<u8> {
        let mut buf = Vec::new();
        let mut b = PacketBuilder::new(&mut buf, Code::AccessRequest, 42);
        b.set_authenticator(&[7; 16]);
        b.add_text(AttrType::USER_NAME, "alice").unwrap();
        b.add(AttrType::PROXY_STATE, b"p1").unwrap();
        b.add(AttrType::PROXY_STATE, b"p2").unwrap();
        b.finish_request(SECRET);
        buf
    }

    #[test]
    fn reply_is_signed_and_carries_message_authenticator_first() {
        let req_bytes = request();
        let req = PacketRef::decode(&req_bytes).unwrap();
        verify_request(&req, SECRET, true).unwrap();
        let mut out = Vec::new();
        let mut b = PacketBuilder::reply(&mut out, &req, Code::AccessAccept);
        b.add_ipv4(AttrType::FRAMED_IP_ADDRESS, Ipv4Addr::new(100, 64, 0, 7))
            .unwrap()
            .copy_proxy_state(&req)
            .unwrap();
        let bytes = b.finish_reply(&req, SECRET).to_vec();
        let reply = PacketRef::decode(&bytes).unwrap();
        assert_eq!(reply.identifier(), 42);
        assert_eq!(
            reply.attributes().next().unwrap().kind(),
            AttrType::MESSAGE_AUTHENTICATOR
        );
        let states: Vec<_> = reply
            .find_all(AttrType::PROXY_STATE)
            .map(|a| a.value())
            .collect();
        assert_eq!(states, [b"p1", b"p2"]);
        verify_reply(&reply, req.authenticator(), SECRET, true).unwrap();
        assert!(verify_reply(&reply, req.authenticator(), b"wrong", false).is_err());
    }

    #[test]
    fn without_message_authenticator_removes_the_slot() {
        let mut out = Vec::new();
        let mut b = PacketBuilder::new(&mut out, Code::AccountingResponse, 1)
            .without_message_authenticator();
        b.add_u32(AttrType::ACCT_DELAY_TIME, 0).unwrap();
        let bytes = b.finish_reply_to(&[1; 16], SECRET).to_vec();
        assert_eq!(bytes.len(), 26);
        let reply = PacketRef::decode(&bytes).unwrap();
        assert_eq!(reply.find(AttrType::MESSAGE_AUTHENTICATOR), None);
        verify_reply(&reply, &[1; 16], SECRET, false).unwrap();
        assert!(verify_reply(&reply, &[1; 16], SECRET, true).is_err());
    }

    #[test]
    fn limits_are_enforced() {
        let mut out = Vec::new();
        let mut b = PacketBuilder::new(&mut out, Code::AccessAccept, 1);
        assert_eq!(
            b.add(AttrType::REPLY_MESSAGE, &[b'x'; 254]).err(),
            Some(EncodeError::ValueTooLong { attr: 18, len: 254 })
        );
        assert!(b.add(AttrType::REPLY_MESSAGE, &[b'x'; 253]).is_ok());
        assert!(b.add_vsa(crate::dict::cisco::AVPAIR, &[b'x'; 248]).is_err());
        assert!(b.add_vsa(crate::dict::cisco::AVPAIR, &[b'x'; 247]).is_ok());
        // Fill up to the 4096-octet ceiling, then one more octet is refused.
        while b.length() + 255 <= MAX_PACKET_LEN {
            b.add(AttrType::CLASS, &[0; 253]).unwrap();
        }
        let room = MAX_PACKET_LEN - b.length() - 2;
        b.add(AttrType::CLASS, &vec![0; room]).unwrap();
        assert_eq!(b.length(), MAX_PACKET_LEN);
        assert_eq!(
            b.add(AttrType::CLASS, &[]).err(),
            Some(EncodeError::PacketTooLong { len: 4098 })
        );
        let bytes = b.finish_reply_to(&[0; 16], SECRET).to_vec();
        assert_eq!(PacketRef::decode(&bytes).unwrap().length(), MAX_PACKET_LEN);
    }

    #[test]
    fn split_values_reassemble() {
        let eap: Vec<u8> = (0..600u32).map(|i| i as u8).collect();
        let mut out = Vec::new();
        let mut b = PacketBuilder::new(&mut out, Code::AccessChallenge, 3);
        b.add_split(AttrType::EAP_MESSAGE, &eap).unwrap();
        b.add_split(AttrType::EAP_MESSAGE, &[]).unwrap();
        let bytes = b.finish_reply_to(&[0; 16], SECRET).to_vec();
        let p = PacketRef::decode(&bytes).unwrap();
        let parts: Vec<_> = p.find_all(AttrType::EAP_MESSAGE).collect();
        assert_eq!(parts.len(), 3);
        let joined: Vec<u8> = parts
            .iter()
            .flat_map(|a| a.value().iter().copied())
            .collect();
        assert_eq!(joined, eap);
    }

    #[test]
    fn buffer_is_reused() {
        let mut out = Vec::with_capacity(64);
        for id in 0..3u8 {
            let b = PacketBuilder::new(&mut out, Code::CoaAck, id);
            let n = b.finish_reply_to(&[0; 16], SECRET).len();
            assert_eq!(n, 38);
        }
        assert_eq!(out.capacity(), 64);
    }
}
