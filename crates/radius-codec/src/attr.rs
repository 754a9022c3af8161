//! Attributes as borrowed (type, value) pairs, their typed readings, and Vendor-Specific
//! sub-attributes.
//!
//! Typed readings follow RFC 8044's data types: `integer` is 4 octets big-endian, `ipv4addr`
//! 4 octets, `text` UTF-8, `ipv6prefix` a reserved octet, a prefix length and up to 16 prefix
//! octets. A wrong size is an error, never a truncation or a guess.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dict::{AttrType, VendorAttr};
use crate::error::DecodeError;

/// One attribute of a decoded packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrRef<'a> {
    kind: AttrType,
    value: &'a [u8],
}

impl<'a> AttrRef<'a> {
    /// An attribute from its parts (values over 253 octets cannot come from a packet).
    pub fn new(kind: AttrType, value: &'a [u8]) -> Self {
        AttrRef { kind, value }
    }

    /// Its type.
    pub fn kind(&self) -> AttrType {
        self.kind
    }

    /// Its value, without the type and length octets.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The value as UTF-8 text.
    pub fn as_text(&self) -> Result<&'a str, DecodeError> {
        parse_text(self.kind.0, self.value)
    }

    /// The value as a 32-bit big-endian integer (also `enum` and `time` types).
    pub fn as_u32(&self) -> Result<u32, DecodeError> {
        parse_u32(self.kind.0, self.value)
    }

    /// The value as an IPv4 address.
    pub fn as_ipv4(&self) -> Result<Ipv4Addr, DecodeError> {
        parse_ipv4(self.kind.0, self.value)
    }

    /// The value as an IPv6 prefix (Framed-IPv6-Prefix, Delegated-IPv6-Prefix).
    pub fn as_ipv6_prefix(&self) -> Result<Ipv6Prefix, DecodeError> {
        Ipv6Prefix::parse(self.kind.0, self.value)
    }

    /// The value as a Vendor-Specific attribute, if this is one and it has a Vendor-Id.
    pub fn as_vsa(&self) -> Option<Vsa<'a>> {
        if self.kind == AttrType::VENDOR_SPECIFIC {
            Vsa::parse(self.value)
        } else {
            None
        }
    }
}

/// The attributes of a packet, in order. Built over a validated attribute list; should it meet
/// a malformed attribute anyway it stops, it does not panic.
#[derive(Debug, Clone)]
pub struct Attributes<'a> {
    rest: &'a [u8],
}

impl<'a> Attributes<'a> {
    pub(crate) fn new(attrs: &'a [u8]) -> Self {
        Attributes { rest: attrs }
    }
}

impl<'a> Iterator for Attributes<'a> {
    type Item = AttrRef<'a>;

    fn next(&mut self) -> Option<AttrRef<'a>> {
        match split_tlv(self.rest) {
            Some((kind, value, tail)) => {
                self.rest = tail;
                Some(AttrRef {
                    kind: AttrType(kind),
                    value,
                })
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

impl core::iter::FusedIterator for Attributes<'_> {}

/// Splits one type-length-value off `bytes`: (type, value, rest). `None` at the end or when the
/// length octet is missing, below 2 or past the end.
fn split_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let [kind, length, ..] = *bytes else {
        return None;
    };
    let length = usize::from(length);
    if length < 2 {
        return None;
    }
    let (tlv, tail) = bytes.split_at_checked(length)?;
    Some((kind, tlv.get(2..)?, tail))
}

/// A Vendor-Specific attribute's value: a Vendor-Id and the vendor's own data.
///
/// Most vendors follow the layout RFC 2865 §5.26 suggests: sub-attributes of one octet type and
/// one octet length. Some do not (their types or lengths are wider); those VSAs still parse
/// here, but [`Vsa::is_well_formed`] is false and [`Vsa::sub_attributes`] yields nothing rather
/// than misreading them. [`Vsa::data`] keeps the raw octets for such vendors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vsa<'a> {
    vendor: u32,
    data: &'a [u8],
}

impl<'a> Vsa<'a> {
    /// Reads a Vendor-Specific value: 4 octets of Vendor-Id, then data. `None` if shorter.
    pub fn parse(value: &'a [u8]) -> Option<Self> {
        let (id, data) = value.split_first_chunk::<4>()?;
        Some(Vsa {
            vendor: u32::from_be_bytes(*id),
            data,
        })
    }

    /// The SMI Private Enterprise Code of the vendor.
    pub fn vendor_id(&self) -> u32 {
        self.vendor
    }

    /// The octets after the Vendor-Id.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// Whether the data is a clean sequence of RFC 2865-style sub-attributes.
    pub fn is_well_formed(&self) -> bool {
        let mut rest = self.data;
        while !rest.is_empty() {
            match split_tlv(rest) {
                Some((_, _, tail)) => rest = tail,
                None => return false,
            }
        }
        true
    }

    /// The sub-attributes, or nothing when the data is not well formed.
    pub fn sub_attributes(&self) -> SubAttributes<'a> {
        SubAttributes {
            vendor: self.vendor,
            rest: if self.is_well_formed() {
                self.data
            } else {
                &[]
            },
        }
    }
}

/// The sub-attributes of one Vendor-Specific attribute.
#[derive(Debug, Clone)]
pub struct SubAttributes<'a> {
    vendor: u32,
    rest: &'a [u8],
}

impl<'a> Iterator for SubAttributes<'a> {
    type Item = VendorAttrRef<'a>;

    fn next(&mut self) -> Option<VendorAttrRef<'a>> {
        match split_tlv(self.rest) {
            Some((kind, value, tail)) => {
                self.rest = tail;
                Some(VendorAttrRef {
                    vendor: self.vendor,
                    kind,
                    value,
                })
            }
            None => {
                self.rest = &[];
                None
            }
        }
    }
}

impl core::iter::FusedIterator for SubAttributes<'_> {}

/// One vendor sub-attribute: vendor, vendor type, value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VendorAttrRef<'a> {
    vendor: u32,
    kind: u8,
    value: &'a [u8],
}

impl<'a> VendorAttrRef<'a> {
    /// The vendor and vendor type, comparable with the constants in [`crate::dict`].
    pub fn attr(&self) -> VendorAttr {
        VendorAttr::new(self.vendor, self.kind)
    }

    /// The SMI Private Enterprise Code of the vendor.
    pub fn vendor_id(&self) -> u32 {
        self.vendor
    }

    /// The vendor type.
    pub fn vendor_type(&self) -> u8 {
        self.kind
    }

    /// The value, without the vendor type and length octets.
    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The value as UTF-8 text.
    pub fn as_text(&self) -> Result<&'a str, DecodeError> {
        parse_text(self.kind, self.value)
    }

    /// The value as a 32-bit big-endian integer.
    pub fn as_u32(&self) -> Result<u32, DecodeError> {
        parse_u32(self.kind, self.value)
    }

    /// The value as an IPv4 address.
    pub fn as_ipv4(&self) -> Result<Ipv4Addr, DecodeError> {
        parse_ipv4(self.kind, self.value)
    }
}

/// Every sub-attribute of every well-formed Vendor-Specific attribute of a packet.
#[derive(Debug, Clone)]
pub struct VendorAttributes<'a> {
    attrs: Attributes<'a>,
    current: Option<SubAttributes<'a>>,
}

impl<'a> VendorAttributes<'a> {
    pub(crate) fn new(attrs: Attributes<'a>) -> Self {
        VendorAttributes {
            attrs,
            current: None,
        }
    }
}

impl<'a> Iterator for VendorAttributes<'a> {
    type Item = VendorAttrRef<'a>;

    fn next(&mut self) -> Option<VendorAttrRef<'a>> {
        loop {
            if let Some(sub) = self.current.as_mut().and_then(Iterator::next) {
                return Some(sub);
            }
            let vsa = self.attrs.by_ref().find_map(|a| a.as_vsa())?;
            self.current = Some(vsa.sub_attributes());
        }
    }
}

impl core::iter::FusedIterator for VendorAttributes<'_> {}

/// An IPv6 prefix as carried by Framed-IPv6-Prefix and Delegated-IPv6-Prefix (RFC 3162 §2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Prefix {
    addr: Ipv6Addr,
    len: u8,
}

impl Ipv6Prefix {
    /// A prefix; `None` if `len` exceeds 128. Bits past `len` are cleared.
    pub fn new(addr: Ipv6Addr, len: u8) -> Option<Self> {
        if len > 128 {
            return None;
        }
        Some(Ipv6Prefix {
            addr: mask(addr, len),
            len,
        })
    }

    /// The network address, host bits cleared.
    pub fn addr(&self) -> Ipv6Addr {
        self.addr
    }

    /// The prefix length in bits.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether this is the zero-length prefix `::/0`.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Reads the wire form: reserved octet, prefix length (0..=128), then at least enough
    /// octets to hold the prefix and at most 16. Host bits are cleared. `attr` names the
    /// attribute in errors.
    pub fn parse(attr: u8, value: &[u8]) -> Result<Self, DecodeError> {
        let err = DecodeError::InvalidIpv6Prefix { attr };
        let [_reserved, len, prefix @ ..] = value else {
            return Err(err);
        };
        let len = *len;
        let needed = usize::from(len).div_ceil(8);
        if len > 128 || prefix.len() > 16 || prefix.len() < needed {
            return Err(err);
        }
        let mut octets = [0u8; 16];
        for (o, p) in octets.iter_mut().zip(prefix) {
            *o = *p;
        }
        Ipv6Prefix::new(Ipv6Addr::from(octets), len).ok_or(err)
    }

    /// The wire form with all 16 prefix octets: the widest-understood encoding, and the one the
    /// common NASes expect.
    pub fn to_bytes(&self) -> [u8; 18] {
        let mut out = [0u8; 18];
        out[1] = self.len;
        for (o, a) in out.iter_mut().skip(2).zip(self.addr.octets()) {
            *o = a;
        }
        out
    }
}

fn mask(addr: Ipv6Addr, len: u8) -> Ipv6Addr {
    let bits = u128::from(addr);
    let kept = match len {
        0 => 0,
        l if l >= 128 => bits,
        l => bits & (u128::MAX << (128 - u32::from(l))),
    };
    Ipv6Addr::from(kept)
}

/// Reads UTF-8 text.
pub fn parse_text(attr: u8, value: &[u8]) -> Result<&str, DecodeError> {
    core::str::from_utf8(value).map_err(|_| DecodeError::InvalidText { attr })
}

/// Reads a 4-octet big-endian integer.
pub fn parse_u32(attr: u8, value: &[u8]) -> Result<u32, DecodeError> {
    four(attr, value).map(u32::from_be_bytes)
}

/// Reads a 4-octet IPv4 address.
pub fn parse_ipv4(attr: u8, value: &[u8]) -> Result<Ipv4Addr, DecodeError> {
    four(attr, value).map(Ipv4Addr::from)
}

fn four(attr: u8, value: &[u8]) -> Result<[u8; 4], DecodeError> {
    <[u8; 4]>::try_from(value).map_err(|_| DecodeError::ValueLength {
        attr,
        expected: 4,
        actual: value.len(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_readings() {
        let a = AttrRef::new(AttrType::NAS_PORT, &[0, 0, 1, 2]);
        assert_eq!(a.as_u32(), Ok(258));
        assert_eq!(a.as_ipv4(), Ok(Ipv4Addr::new(0, 0, 1, 2)));
        let short = AttrRef::new(AttrType::NAS_PORT, &[1, 2, 3]);
        assert_eq!(
            short.as_u32(),
            Err(DecodeError::ValueLength {
                attr: 5,
                expected: 4,
                actual: 3
            })
        );
        assert_eq!(
            AttrRef::new(AttrType::USER_NAME, &[0xff]).as_text(),
            Err(DecodeError::InvalidText { attr: 1 })
        );
        assert_eq!(
            AttrRef::new(AttrType::USER_NAME, b"bob").as_text(),
            Ok("bob")
        );
        assert_eq!(AttrRef::new(AttrType::USER_NAME, b"bob").as_vsa(), None);
    }

    #[test]
    fn ipv6_prefixes() {
        let p = Ipv6Prefix::parse(97, &[0, 64, 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2]).unwrap();
        assert_eq!(p.len(), 64);
        assert_eq!(p.addr(), "2001:db8:1:2::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(Ipv6Prefix::parse(97, &p.to_bytes()), Ok(p));
        // Host bits are cleared; a full-length field is accepted.
        let mut wide = [0xffu8; 18];
        wide[0] = 0;
        wide[1] = 56;
        let w = Ipv6Prefix::parse(123, &wide).unwrap();
        assert_eq!(
            w.addr(),
            "ffff:ffff:ffff:ff00::".parse::<Ipv6Addr>().unwrap()
        );
        assert!(Ipv6Prefix::parse(97, &[0, 0]).unwrap().is_empty());
        for bad in [&[0u8][..], &[0, 129], &[0, 64, 1, 2, 3], &[0u8; 19]] {
            assert_eq!(
                Ipv6Prefix::parse(97, bad),
                Err(DecodeError::InvalidIpv6Prefix { attr: 97 })
            );
        }
        assert_eq!(Ipv6Prefix::new(Ipv6Addr::UNSPECIFIED, 129), None);
        let full = Ipv6Prefix::new(Ipv6Addr::LOCALHOST, 128).unwrap();
        assert_eq!(full.addr(), Ipv6Addr::LOCALHOST);
    }

    #[test]
    fn vsas_well_formed_and_not() {
        let v = [0, 0, 0x3a, 0x8c, 8, 6, b'1', b'M', b'/', b'2', 19, 2];
        let vsa = Vsa::parse(&v).unwrap();
        assert_eq!(vsa.vendor_id(), 14988);
        assert!(vsa.is_well_formed());
        let subs: Vec<_> = vsa.sub_attributes().collect();
        assert_eq!(subs.len(), 2);
        assert_eq!(subs[0].attr(), crate::dict::mikrotik::RATE_LIMIT);
        assert_eq!(subs[0].as_text(), Ok("1M/2"));
        assert_eq!(subs[1].value(), b"");
        // A vendor with 2-octet types: the data is kept, no sub-attribute is invented.
        let odd = [0, 0, 0, 9, 0, 1, 5];
        let vsa = Vsa::parse(&odd).unwrap();
        assert!(!vsa.is_well_formed());
        assert_eq!(vsa.sub_attributes().count(), 0);
        assert_eq!(vsa.data(), &[0, 1, 5]);
        assert_eq!(Vsa::parse(&[0, 0, 1]), None);
    }
}
