//! Property tests: whatever arrives on the socket, the codec returns values or errors and never
//! panics. Three kinds of input: arbitrary octets, packets with a valid header and random
//! attributes (which reach the typed getters, VSAs and crypto), and valid packets with octets
//! flipped, cut or appended. Cases default to 2,000 per property; `PROPTEST_CASES` overrides.

use lastmile_radius_codec::auth::{self, verify_reply, verify_request};
use lastmile_radius_codec::dict::{microsoft, mikrotik};
use lastmile_radius_codec::mschap::MsChap2Request;
use lastmile_radius_codec::{
    acct, chap, mppe, pap, AttrType, Code, PacketBuilder, PacketRef, HEADER_LEN, MAX_PACKET_LEN,
};
use proptest::prelude::*;

const SECRET: &[u8] = b"fuzz-secret";

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2_000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs everything a server or client would run on `bytes`. Any panic fails the property.
fn exercise(bytes: &[u8]) {
    let Ok(p) = PacketRef::decode(bytes) else {
        return;
    };
    // Structural invariants of a successful decode.
    assert!(p.length() >= HEADER_LEN && p.length() <= MAX_PACKET_LEN);
    assert!(p.length() <= bytes.len());
    let covered: usize = p.attributes().map(|a| 2 + a.value().len()).sum();
    assert_eq!(covered, p.length() - HEADER_LEN);
    assert!(Code::from_u8(bytes[0]).is_some());

    for a in p.attributes() {
        let _ = a.as_text();
        let _ = a.as_u32();
        let _ = a.as_ipv4();
        let _ = a.as_ipv6_prefix();
        let _ = a.kind().name();
        if let Some(vsa) = a.as_vsa() {
            let _ = vsa.is_well_formed();
            for s in vsa.sub_attributes() {
                let _ = (s.as_text(), s.as_u32(), s.as_ipv4(), s.attr().name());
            }
        }
    }
    for v in p.vendor_attributes() {
        let _ = (v.as_text(), v.as_u32(), v.attr());
    }
    let _ = p.vendor_text(mikrotik::RATE_LIMIT);
    let _ = p.vendor_integer(microsoft::MS_MPPE_ENCRYPTION_TYPES);
    let _ = p.ipv6_prefix(AttrType::FRAMED_IPV6_PREFIX);

    let _ = pap::decrypt_request(&p, SECRET);
    let _ = chap::verify_request(&p, b"password");
    if let Ok(Some(ms)) = MsChap2Request::from_packet(&p) {
        let _ = ms.verify_password("clientPass");
    }
    for key in [microsoft::MS_MPPE_SEND_KEY, microsoft::MS_MPPE_RECV_KEY] {
        if let Some(v) = p.vendor(key) {
            let _ = mppe::decrypt_key(v, SECRET, p.authenticator());
        }
    }
    let _ = acct::status_type(&p);
    let _ = acct::input_octets(&p);
    let _ = acct::Counters::from_packet(&p);

    let _ = verify_request(&p, SECRET, true);
    let _ = verify_request(&p, SECRET, false);
    let _ = verify_reply(&p, &[0; 16], SECRET, false);
    let _ = auth::verify_request_authenticator(&p, SECRET);
    let _ = auth::message_authenticator_offset(&p);

    // Answering it must always produce a packet that decodes and verifies.
    let mut out = Vec::new();
    let mut b = PacketBuilder::reply(&mut out, &p, Code::AccessReject);
    if b.copy_proxy_state(&p).is_ok() {
        let reply = b.finish_reply(&p, SECRET).to_vec();
        let r = PacketRef::decode(&reply).expect("a built reply decodes");
        verify_reply(&r, p.authenticator(), SECRET, true).expect("a built reply verifies");
    }

    // Re-signing a copy in place must not panic either.
    let mut copy = bytes.to_vec();
    let _ = auth::sign_reply_in_place(&mut copy, &[1; 16], SECRET);
    let _ = auth::sign_request_in_place(&mut copy, SECRET);
}

/// Attribute types that reach the most code, plus anything.
fn attr_type() -> impl Strategy<Value = u8> {
    prop_oneof![
        Just(1u8),
        Just(2),
        Just(3),
        Just(26),
        Just(33),
        Just(42),
        Just(52),
        Just(60),
        Just(79),
        Just(80),
        Just(97),
        any::<u8>(),
    ]
}

fn vsa_value() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![Just(311u32), Just(14988), Just(3561), any::<u32>()],
        prop::collection::vec(
            (any::<u8>(), prop::collection::vec(any::<u8>(), 0..60)),
            0..4,
        ),
        any::<bool>(),
        any::<u8>(),
    )
        .prop_map(|(vendor, subs, corrupt, junk)| {
            let mut v = vendor.to_be_bytes().to_vec();
            for (kind, value) in subs {
                v.push(kind);
                v.push((value.len() + 2) as u8);
                v.extend_from_slice(&value);
            }
            if corrupt {
                v.push(junk);
            }
            v.truncate(253);
            v
        })
}

/// A packet with a valid header and well-formed random attributes.
fn structured_packet() -> impl Strategy<Value = Vec<u8>> {
    let attr = prop_oneof![
        (attr_type(), prop::collection::vec(any::<u8>(), 0..64)),
        vsa_value().prop_map(|v| (26u8, v)),
        prop::collection::vec(any::<u8>(), 0..4).prop_map(|v| (80u8, v)),
        prop::sample::select(vec![16usize, 32, 128, 144]).prop_map(|n| (2u8, vec![0xA5; n])),
    ];
    (
        prop::sample::select(vec![1u8, 2, 3, 4, 5, 11, 12, 40, 41, 42, 43, 44, 45]),
        any::<u8>(),
        any::<[u8; 16]>(),
        prop::collection::vec(attr, 0..24),
        prop::collection::vec(any::<u8>(), 0..8),
    )
        .prop_map(|(code, id, auth, attrs, padding)| {
            let mut b = vec![code, id, 0, 0];
            b.extend_from_slice(&auth);
            for (kind, value) in attrs {
                if b.len() + 2 + value.len() > MAX_PACKET_LEN {
                    break;
                }
                b.push(kind);
                b.push((value.len() + 2) as u8);
                b.extend_from_slice(&value);
            }
            let len = b.len() as u16;
            b[2..4].copy_from_slice(&len.to_be_bytes());
            b.extend_from_slice(&padding);
            b
        })
}

/// A realistic signed Access-Request to mutate.
fn valid_packet() -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = PacketBuilder::new(&mut buf, Code::AccessRequest, 17);
    b.set_authenticator(&[0x42; 16]);
    b.add_text(AttrType::USER_NAME, "CORP\\User").unwrap();
    b.add_user_password(b"clientPass", SECRET).unwrap();
    b.add_vsa(microsoft::MS_CHAP_CHALLENGE, &[7; 16]).unwrap();
    b.add_vsa(microsoft::MS_CHAP2_RESPONSE, &[9; 50]).unwrap();
    b.add_vsa(mikrotik::RATE_LIMIT, b"10M/10M").unwrap();
    b.add(AttrType::CHAP_PASSWORD, &[1; 17]).unwrap();
    b.add(AttrType::PROXY_STATE, b"ps").unwrap();
    b.add(
        AttrType::FRAMED_IPV6_PREFIX,
        &[0, 64, 0x20, 1, 0xd, 0xb8, 0, 0, 0, 1],
    )
    .unwrap();
    b.add_u32(AttrType::ACCT_INPUT_OCTETS, 1).unwrap();
    b.finish_request(SECRET);
    buf
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..4200)) {
        exercise(&bytes);
    }

    #[test]
    fn structured_packets_never_panic(bytes in structured_packet()) {
        prop_assert!(PacketRef::decode(&bytes).is_ok());
        exercise(&bytes);
    }

    #[test]
    fn mutated_valid_packets_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
        cut in prop::option::of(any::<prop::sample::Index>()),
        tail in prop::collection::vec(any::<u8>(), 0..16),
        length in prop::option::of(any::<u16>()),
    ) {
        let mut bytes = valid_packet();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if let Some(l) = length {
            bytes[2..4].copy_from_slice(&l.to_be_bytes());
        }
        if let Some(c) = cut {
            let n = c.index(bytes.len() + 1);
            bytes.truncate(n);
        }
        bytes.extend_from_slice(&tail);
        exercise(&bytes);
    }
}

#[test]
fn the_unmutated_packet_verifies() {
    let bytes = valid_packet();
    let p = PacketRef::decode(&bytes).unwrap();
    verify_request(&p, SECRET, true).unwrap();
    exercise(&bytes);
    // Every prefix and every single-octet change is handled.
    for n in 0..bytes.len() {
        exercise(&bytes[..n]);
    }
    for i in 0..bytes.len() {
        for v in [0u8, 1, 2, 0x7f, 0xff] {
            let mut t = bytes.clone();
            t[i] = v;
            exercise(&t);
        }
    }
}
