//! Reply attributes as values: what a decision (or a CoA) wants sent, before it is encoded.
//!
//! Decisions are pure and tested by value, so they return attributes rather than write
//! packets. To keep the request path free of allocation, values borrow from the directory
//! (plan codes, pool names) or are formatted into a small inline buffer (a MikroTik rate
//! string), and a reply holds at most [`ReplyAttrs::CAPACITY`] of them in a fixed array.

use core::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use lastmile_radius_codec::{AttrType, EncodeError, PacketBuilder, VendorAttr};

/// Longest value an attribute can hold (RFC 2865: 253 octets; a vendor attribute 247).
const MAX_VALUE: usize = 253;

/// Text formatted in place, up to 128 octets (a MikroTik rate string with burst is under 100).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct InlineText {
    buf: [u8; 128],
    len: u8,
}

impl InlineText {
    /// An empty text.
    pub const fn new() -> Self {
        InlineText {
            buf: [0; 128],
            len: 0,
        }
    }

    /// The text written so far.
    pub fn as_str(&self) -> &str {
        // Only whole `&str`s are ever appended, so the prefix is always UTF-8.
        self.buf
            .get(..usize::from(self.len))
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl Default for InlineText {
    fn default() -> Self {
        InlineText::new()
    }
}

impl fmt::Write for InlineText {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let start = usize::from(self.len);
        let end = start + s.len();
        let slot = self.buf.get_mut(start..end).ok_or(fmt::Error)?;
        slot.copy_from_slice(s.as_bytes());
        self.len = u8::try_from(end).map_err(|_| fmt::Error)?;
        Ok(())
    }
}

impl fmt::Debug for InlineText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

/// An attribute value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value<'a> {
    /// 32-bit integer (also `enum` and `time`).
    U32(u32),
    /// IPv4 address.
    Ipv4(Ipv4Addr),
    /// IPv6 address (Framed-IPv6-Address).
    Ipv6(Ipv6Addr),
    /// Text borrowed from the directory.
    Text(&'a str),
    /// `prefix + text + suffix`, e.g. `ip:sub-qos-policy-in=` + plan code + `-in`.
    Concat(&'static str, &'a str, &'static str),
    /// Text formatted for this reply.
    Inline(InlineText),
}

impl Value<'_> {
    /// The value's octets, written into `scratch` where they must be assembled. `None` when
    /// they exceed 253 octets.
    pub fn encode<'s>(&'s self, scratch: &'s mut [u8; MAX_VALUE]) -> Option<&'s [u8]> {
        let bytes: &[u8] = match self {
            Value::U32(v) => {
                let b = v.to_be_bytes();
                let dst = scratch.get_mut(..4)?;
                dst.copy_from_slice(&b);
                dst
            }
            Value::Ipv4(ip) => {
                let dst = scratch.get_mut(..4)?;
                dst.copy_from_slice(&ip.octets());
                dst
            }
            Value::Ipv6(ip) => {
                let dst = scratch.get_mut(..16)?;
                dst.copy_from_slice(&ip.octets());
                dst
            }
            Value::Text(t) => t.as_bytes(),
            Value::Concat(a, b, c) => {
                let len = a.len() + b.len() + c.len();
                let dst = scratch.get_mut(..len)?;
                let (x, rest) = dst.split_at_mut(a.len());
                let (y, z) = rest.split_at_mut(b.len());
                x.copy_from_slice(a.as_bytes());
                y.copy_from_slice(b.as_bytes());
                z.copy_from_slice(c.as_bytes());
                dst
            }
            Value::Inline(t) => t.as_str().as_bytes(),
        };
        (bytes.len() <= MAX_VALUE).then_some(bytes)
    }

    /// The value as text, for tests and logs (integers and addresses in decimal/dotted form).
    pub fn to_text(&self) -> String {
        match self {
            Value::U32(v) => v.to_string(),
            Value::Ipv4(ip) => ip.to_string(),
            Value::Ipv6(ip) => ip.to_string(),
            Value::Text(t) => (*t).to_string(),
            Value::Concat(a, b, c) => format!("{a}{b}{c}"),
            Value::Inline(t) => t.as_str().to_string(),
        }
    }
}

/// Which attribute a value goes into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttrKey {
    /// A standard attribute.
    Std(AttrType),
    /// A vendor attribute, sent in its own Vendor-Specific attribute.
    Vendor(VendorAttr),
}

/// One attribute to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyAttr<'a> {
    /// Where it goes.
    pub key: AttrKey,
    /// What it holds.
    pub value: Value<'a>,
}

impl<'a> ReplyAttr<'a> {
    /// A standard attribute.
    pub const fn std(kind: AttrType, value: Value<'a>) -> Self {
        ReplyAttr {
            key: AttrKey::Std(kind),
            value,
        }
    }

    /// A vendor attribute.
    pub const fn vendor(attr: VendorAttr, value: Value<'a>) -> Self {
        ReplyAttr {
            key: AttrKey::Vendor(attr),
            value,
        }
    }
}

/// Why attributes could not be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// A value over 253 octets (a plan code or pool name far too long).
    #[error("attribute {0:?} value is too long")]
    ValueTooLong(AttrKey),
    /// The OS gave no random octets (for MPPE salts).
    #[error("no randomness available")]
    Randomness,
    /// The codec refused it (packet over 4096 octets, ...).
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// The attributes of one reply, in order, in a fixed array: no allocation.
#[derive(Clone, PartialEq, Eq)]
pub struct ReplyAttrs<'a> {
    items: [Option<ReplyAttr<'a>>; ReplyAttrs::CAPACITY],
    len: usize,
}

impl<'a> ReplyAttrs<'a> {
    /// More than any vendor profile plus addressing, timers and the walled garden need
    /// (at most 11 today); a test holds the decisions to it.
    pub const CAPACITY: usize = 16;

    /// No attributes.
    pub const fn new() -> Self {
        ReplyAttrs {
            items: [None; ReplyAttrs::CAPACITY],
            len: 0,
        }
    }

    /// Appends `attr`. Past [`CAPACITY`](Self::CAPACITY) (which no code path reaches) the
    /// attribute is ignored and `false` returned.
    pub fn push(&mut self, attr: ReplyAttr<'a>) -> bool {
        match self.items.get_mut(self.len) {
            Some(slot) => {
                *slot = Some(attr);
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Appends a standard attribute.
    pub fn push_std(&mut self, kind: AttrType, value: Value<'a>) -> bool {
        self.push(ReplyAttr::std(kind, value))
    }

    /// Appends a vendor attribute.
    pub fn push_vendor(&mut self, attr: VendorAttr, value: Value<'a>) -> bool {
        self.push(ReplyAttr::vendor(attr, value))
    }

    /// How many attributes there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The attributes, in order.
    pub fn iter(&self) -> impl Iterator<Item = &ReplyAttr<'a>> + '_ {
        self.items.iter().take(self.len).flatten()
    }

    /// The first value for `key`.
    pub fn get(&self, key: AttrKey) -> Option<&Value<'a>> {
        self.iter().find(|a| a.key == key).map(|a| &a.value)
    }

    /// The first standard attribute `kind`, as text (see [`Value::to_text`]).
    pub fn text(&self, kind: AttrType) -> Option<String> {
        self.get(AttrKey::Std(kind)).map(Value::to_text)
    }

    /// The first vendor attribute `attr`, as text.
    pub fn vendor_text(&self, attr: VendorAttr) -> Option<String> {
        self.get(AttrKey::Vendor(attr)).map(Value::to_text)
    }

    /// Every value of vendor attribute `attr`, as text.
    pub fn vendor_texts(&self, attr: VendorAttr) -> Vec<String> {
        self.iter()
            .filter(|a| a.key == AttrKey::Vendor(attr))
            .map(|a| a.value.to_text())
            .collect()
    }

    /// Writes every attribute into `builder`.
    pub fn write_to(&self, builder: &mut PacketBuilder<'_>) -> Result<(), WriteError> {
        let mut scratch = [0u8; MAX_VALUE];
        for attr in self.iter() {
            let bytes = attr
                .value
                .encode(&mut scratch)
                .ok_or(WriteError::ValueTooLong(attr.key))?;
            match attr.key {
                AttrKey::Std(kind) => builder.add(kind, bytes)?,
                AttrKey::Vendor(v) => builder.add_vsa(v, bytes)?,
            };
        }
        Ok(())
    }
}

impl Default for ReplyAttrs<'_> {
    fn default() -> Self {
        ReplyAttrs::new()
    }
}

impl fmt::Debug for ReplyAttrs<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;
    use lastmile_radius_codec::{dict::cisco, Code, PacketRef};

    #[test]
    fn inline_text_refuses_overflow() {
        let mut t = InlineText::new();
        write!(t, "{}", "x".repeat(128)).unwrap();
        assert_eq!(t.as_str().len(), 128);
        assert!(write!(t, "y").is_err());
        assert_eq!(t.as_str().len(), 128);
    }

    #[test]
    fn values_encode_and_write() {
        let mut attrs = ReplyAttrs::new();
        attrs.push_std(AttrType::SESSION_TIMEOUT, Value::U32(3600));
        attrs.push_std(
            AttrType::FRAMED_IP_ADDRESS,
            Value::Ipv4(Ipv4Addr::new(10, 0, 0, 1)),
        );
        attrs.push_vendor(
            cisco::AVPAIR,
            Value::Concat("ip:sub-qos-policy-in=", "gold", "-in"),
        );
        assert_eq!(attrs.len(), 3);
        assert_eq!(
            attrs.vendor_text(cisco::AVPAIR).as_deref(),
            Some("ip:sub-qos-policy-in=gold-in")
        );
        let mut buf = Vec::new();
        let mut b = PacketBuilder::new(&mut buf, Code::AccessAccept, 1);
        attrs.write_to(&mut b).unwrap();
        let bytes = b.finish_reply_to(&[0; 16], b"s").to_vec();
        let p = PacketRef::decode(&bytes).unwrap();
        assert_eq!(p.integer(AttrType::SESSION_TIMEOUT), Ok(Some(3600)));
        assert_eq!(
            p.vendor_text(cisco::AVPAIR),
            Ok(Some("ip:sub-qos-policy-in=gold-in"))
        );
    }

    #[test]
    fn too_long_values_are_errors_not_truncations() {
        let long = "p".repeat(250);
        let mut attrs = ReplyAttrs::new();
        attrs.push_vendor(cisco::AVPAIR, Value::Concat("ip:x=", &long, "-in"));
        let mut buf = Vec::new();
        let mut b = PacketBuilder::new(&mut buf, Code::AccessAccept, 1);
        assert!(matches!(
            attrs.write_to(&mut b),
            Err(WriteError::ValueTooLong(_))
        ));
    }

    #[test]
    fn capacity_is_bounded() {
        let mut attrs = ReplyAttrs::new();
        for i in 0..ReplyAttrs::CAPACITY {
            assert!(attrs.push_std(AttrType::CLASS, Value::U32(i as u32)));
        }
        assert!(!attrs.push_std(AttrType::CLASS, Value::U32(99)));
        assert_eq!(attrs.len(), ReplyAttrs::CAPACITY);
    }
}
