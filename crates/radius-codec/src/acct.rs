//! Accounting helpers (RFC 2866, RFC 2869 §5.1-5.2).
//!
//! Octet counters are 32-bit on the wire; a NAS reports how many times a counter wrapped in
//! Acct-Input-Gigawords / Acct-Output-Gigawords, so a session's real volume is
//! `gigawords << 32 | octets`. Forgetting the gigawords undercounts any session past 4 GiB.

use crate::dict::AttrType;
use crate::error::DecodeError;
use crate::packet::PacketRef;

/// Acct-Status-Type (RFC 2866 §5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AcctStatusType {
    /// 1: session started.
    Start,
    /// 2: session ended; counters are final.
    Stop,
    /// 3: periodic update of a running session (Alive).
    InterimUpdate,
    /// 7: the NAS (re)started accounting: it has no sessions.
    AccountingOn,
    /// 8: the NAS is stopping accounting: its sessions are over.
    AccountingOff,
    /// Any other value (tunnel accounting, Failed...).
    Other(u32),
}

impl AcctStatusType {
    /// The status for a wire value.
    pub const fn from_u32(value: u32) -> Self {
        match value {
            1 => AcctStatusType::Start,
            2 => AcctStatusType::Stop,
            3 => AcctStatusType::InterimUpdate,
            7 => AcctStatusType::AccountingOn,
            8 => AcctStatusType::AccountingOff,
            other => AcctStatusType::Other(other),
        }
    }

    /// The wire value.
    pub const fn as_u32(self) -> u32 {
        match self {
            AcctStatusType::Start => 1,
            AcctStatusType::Stop => 2,
            AcctStatusType::InterimUpdate => 3,
            AcctStatusType::AccountingOn => 7,
            AcctStatusType::AccountingOff => 8,
            AcctStatusType::Other(v) => v,
        }
    }
}

/// A 64-bit counter from its low 32 bits and its gigawords.
pub const fn combine_octets(octets: u32, gigawords: u32) -> u64 {
    ((gigawords as u64) << 32) | octets as u64
}

/// The Acct-Status-Type of an Accounting-Request; `Ok(None)` when absent.
pub fn status_type(request: &PacketRef<'_>) -> Result<Option<AcctStatusType>, DecodeError> {
    Ok(request
        .integer(AttrType::ACCT_STATUS_TYPE)?
        .map(AcctStatusType::from_u32))
}

fn octets(
    request: &PacketRef<'_>,
    low: AttrType,
    giga: AttrType,
) -> Result<Option<u64>, DecodeError> {
    let low = request.integer(low)?;
    let giga = request.integer(giga)?;
    Ok(match (low, giga) {
        (None, None) => None,
        (l, g) => Some(combine_octets(l.unwrap_or(0), g.unwrap_or(0))),
    })
}

/// Octets received from the subscriber (Acct-Input-Octets with Acct-Input-Gigawords);
/// `Ok(None)` when neither is present.
pub fn input_octets(request: &PacketRef<'_>) -> Result<Option<u64>, DecodeError> {
    octets(
        request,
        AttrType::ACCT_INPUT_OCTETS,
        AttrType::ACCT_INPUT_GIGAWORDS,
    )
}

/// Octets sent to the subscriber (Acct-Output-Octets with Acct-Output-Gigawords);
/// `Ok(None)` when neither is present.
pub fn output_octets(request: &PacketRef<'_>) -> Result<Option<u64>, DecodeError> {
    octets(
        request,
        AttrType::ACCT_OUTPUT_OCTETS,
        AttrType::ACCT_OUTPUT_GIGAWORDS,
    )
}

/// The usual counters of an Accounting-Request, read in one pass over the attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Octets from the subscriber, gigawords included.
    pub input_octets: Option<u64>,
    /// Octets to the subscriber, gigawords included.
    pub output_octets: Option<u64>,
    /// Acct-Input-Packets.
    pub input_packets: Option<u32>,
    /// Acct-Output-Packets.
    pub output_packets: Option<u32>,
    /// Acct-Session-Time, seconds.
    pub session_time: Option<u32>,
}

impl Counters {
    /// Reads the counters; a counter attribute that is not 4 octets is an error.
    pub fn from_packet(request: &PacketRef<'_>) -> Result<Self, DecodeError> {
        let mut c = Counters::default();
        let (mut in_lo, mut in_gw, mut out_lo, mut out_gw) = (None, None, None, None);
        for attr in request.attributes() {
            let slot = match attr.kind() {
                AttrType::ACCT_INPUT_OCTETS => &mut in_lo,
                AttrType::ACCT_INPUT_GIGAWORDS => &mut in_gw,
                AttrType::ACCT_OUTPUT_OCTETS => &mut out_lo,
                AttrType::ACCT_OUTPUT_GIGAWORDS => &mut out_gw,
                AttrType::ACCT_INPUT_PACKETS => &mut c.input_packets,
                AttrType::ACCT_OUTPUT_PACKETS => &mut c.output_packets,
                AttrType::ACCT_SESSION_TIME => &mut c.session_time,
                _ => continue,
            };
            // The first occurrence counts, like every other single-valued attribute.
            if slot.is_none() {
                *slot = Some(attr.as_u32()?);
            }
        }
        let join = |lo: Option<u32>, gw: Option<u32>| match (lo, gw) {
            (None, None) => None,
            (l, g) => Some(combine_octets(l.unwrap_or(0), g.unwrap_or(0))),
        };
        c.input_octets = join(in_lo, in_gw);
        c.output_octets = join(out_lo, out_gw);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_values_round_trip() {
        for v in 0..20 {
            assert_eq!(AcctStatusType::from_u32(v).as_u32(), v);
        }
        assert_eq!(AcctStatusType::from_u32(3), AcctStatusType::InterimUpdate);
    }

    #[test]
    fn gigawords_combine() {
        assert_eq!(combine_octets(5, 0), 5);
        assert_eq!(combine_octets(0, 1), 1 << 32);
        assert_eq!(combine_octets(u32::MAX, u32::MAX), u64::MAX);
    }
}
