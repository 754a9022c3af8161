//! MAC addresses as NASes send them.
//!
//! Calling-Station-Id (and the User-Name of MAC authentication) carries the subscriber's MAC in
//! whatever notation the vendor likes: `AA-BB-CC-DD-EE-FF` (RFC 3580), `aa:bb:cc:dd:ee:ff`
//! (MikroTik), `aabb.ccdd.eeff` (Cisco), `AABBCCDDEEFF`. The directory keys on the six octets,
//! so every notation finds the same service and parsing allocates nothing.

use core::fmt;
use core::str::FromStr;

/// Six octets; displays as the domain's lower-case colon form `aa:bb:cc:dd:ee:ff`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// Reads one of the four notations above, case-insensitively. Anything else (other
    /// groupings, mixed separators, trailing text) is not a MAC: a User-Name that merely
    /// contains hex digits must not be mistaken for one.
    pub fn parse(text: &[u8]) -> Option<MacAddr> {
        let (group, sep) = match text.len() {
            12 => (12, None),
            14 => (4, Some(b'.')),
            17 => (2, text.get(2).copied().filter(|&c| c == b':' || c == b'-')),
            _ => return None,
        };
        if text.len() != 12 && sep.is_none() {
            return None;
        }
        let mut out = [0u8; 6];
        let mut nibbles = 0usize;
        for (i, &c) in text.iter().enumerate() {
            // Position i is a separator when it follows a complete group.
            if let Some(s) = sep {
                if (i + 1) % (group + 1) == 0 {
                    if c != s {
                        return None;
                    }
                    continue;
                }
            }
            let v = hex_value(c)?;
            let slot = out.get_mut(nibbles / 2)?;
            *slot = (*slot << 4) | v;
            nibbles += 1;
        }
        (nibbles == 12).then_some(MacAddr(out))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl fmt::Debug for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MacAddr({self})")
    }
}

/// The text is not a MAC address in a notation we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address (expected aa:bb:cc:dd:ee:ff, AA-BB-CC-DD-EE-FF, aabb.ccdd.eeff or AABBCCDDEEFF)")]
pub struct InvalidMac;

impl FromStr for MacAddr {
    type Err = InvalidMac;

    fn from_str(s: &str) -> Result<Self, InvalidMac> {
        MacAddr::parse(s.trim().as_bytes()).ok_or(InvalidMac)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notation_gives_the_same_octets() {
        let want = MacAddr([0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff]);
        for s in [
            "aa:bb:cc:dd:ee:ff",
            "AA:BB:CC:DD:EE:FF",
            "AA-BB-CC-DD-EE-FF",
            "aabb.ccdd.eeff",
            "AABBCCDDEEFF",
            "aAbBcCdDeEfF",
        ] {
            assert_eq!(MacAddr::parse(s.as_bytes()), Some(want), "{s}");
        }
        assert_eq!(want.to_string(), "aa:bb:cc:dd:ee:ff");
        assert_eq!(" 00:11:22:33:44:55 ".parse::<MacAddr>().unwrap().0[5], 0x55);
    }

    #[test]
    fn near_misses_are_refused() {
        for s in [
            "",
            "aa:bb:cc:dd:ee",
            "aa:bb:cc:dd:ee:fg",
            "aa:bb-cc:dd:ee:ff",
            "aabb:ccdd:eeff",
            "aa.bb.cc.dd.ee.ff",
            "aabbccddeef",
            "aabbccddeeff0",
            "aabb.ccdd-eeff",
            "alice@isp.net",
            "aa:bb:cc:dd:ee:ff:00",
            "a:abb:ccdd:eeff:",
        ] {
            assert_eq!(MacAddr::parse(s.as_bytes()), None, "{s}");
        }
    }
}
