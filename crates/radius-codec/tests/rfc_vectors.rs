//! Published test vectors: the RFC 2865 §7 example exchanges (secret "xyzzy5461"), the
//! RFC 2759 §9.2 MS-CHAPv2 vector and the RFC 3079 §3.5.3 MPPE 128-bit key vector. Where the
//! RFC gives exact packets, the builder must reproduce them octet for octet, since every
//! authenticator in a reply is deterministic.

use std::net::Ipv4Addr;

use lastmile_radius_codec::auth::{verify_request, verify_response_authenticator};
use lastmile_radius_codec::dict::{framed_protocol, microsoft, service_type};
use lastmile_radius_codec::mschap::{self, MsChap2Request, MsChap2Response};
use lastmile_radius_codec::{chap, mppe, pap, AttrType, Code, PacketBuilder, PacketRef};

const SECRET: &[u8] = b"xyzzy5461";

fn unhex(s: &str) -> Vec<u8> {
    let compact: String = s.split_whitespace().collect();
    hex::decode(compact).unwrap()
}

// RFC 2865 §7.1: User Telnet to Specified Host.
const TELNET_REQUEST: &str = "01 00 00 38 0f 40 3f 94 73 97 80 57 bd 83 d5 cb
    98 f4 22 7a 01 06 6e 65 6d 6f 02 12 0d be 70 8d 93 d4 13 ce 31 96 e4 3f 78 2a 0a ee
    04 06 c0 a8 01 10 05 06 00 00 00 03";
const TELNET_ACCEPT: &str = "02 00 00 26 86 fe 22 0e 76 24 ba 2a 10 05 f6 bf
    9b 55 e0 b2 06 06 00 00 00 01 0f 06 00 00 00 00 0e 06 c0 a8 01 03";

// RFC 2865 §7.2: Framed User Authenticating with CHAP.
const CHAP_REQUEST: &str = "01 01 00 47 2a ee 86 f0 8d 0d 55 96 9c a5 97 8e
    0d 33 67 a2 01 08 66 6c 6f 70 73 79 03 13 16 e9 75 57 c3 16 18 58 95 f2 93 ff 63 44
    07 72 75 04 06 c0 a8 01 10 05 06 00 00 00 14 06 06 00 00 00 02 07 06 00 00 00 01";
const CHAP_ACCEPT: &str = "02 01 00 38 15 ef bc 7d ab 26 cf a3 dc 34 d9 c0
    3c 86 01 a4 06 06 00 00 00 02 07 06 00 00 00 01 08 06 ff ff ff fe 0a 06 00 00 00 02
    0d 06 00 00 00 01 0c 06 00 00 05 dc";

// RFC 2865 §7.3: User with Challenge-Response card.
const CARD_REQUEST_1: &str = "01 02 00 39 f3 a4 7a 1f 6a 6d 76 71 0b 94 7a b9
    30 41 a0 39 01 07 6d 6f 70 73 79 02 12 33 65 75 73 77 82 89 b5 70 88 5e 15 08 48 25
    c5 04 06 c0 a8 01 10 05 06 00 00 00 07";
const CARD_CHALLENGE: &str = "0b 02 00 4e 36 f3 c8 76 4a e8 c7 11 57 40 3c 0c
    71 ff 9c 45 12 30 43 68 61 6c 6c 65 6e 67 65 20 33 32 37 36 39 34 33 30 2e 20 20 45
    6e 74 65 72 20 72 65 73 70 6f 6e 73 65 20 61 74 20 70 72 6f 6d 70 74 2e 18 0a 33 32
    37 36 39 34 33 30";
const CARD_REQUEST_2: &str = "01 03 00 43 b1 22 55 6d 42 8a 13 d0 d6 25 38 07
    c4 57 ec f0 01 07 6d 6f 70 73 79 02 12 69 2c 1f 20 5f c0 81 b9 19 b9 51 95 f5 61 a5
    81 04 06 c0 a8 01 10 05 06 00 00 00 07 18 0a 33 32 37 36 39 34 33 30";
const CARD_REJECT: &str = "03 03 00 14 a4 2f 4f ca 45 91 6c 4e 09 c8 34 0f 9e 74 6a a0";

#[test]
fn rfc2865_7_1_pap_request_decodes_and_decrypts() {
    let bytes = unhex(TELNET_REQUEST);
    let req = PacketRef::decode(&bytes).unwrap();
    assert_eq!(req.code(), Code::AccessRequest);
    assert_eq!(req.identifier(), 0);
    assert_eq!(req.attributes().count(), 4);
    assert_eq!(req.text(AttrType::USER_NAME), Ok(Some("nemo")));
    assert_eq!(
        req.ipv4(AttrType::NAS_IP_ADDRESS),
        Ok(Some(Ipv4Addr::new(192, 168, 1, 16)))
    );
    assert_eq!(req.integer(AttrType::NAS_PORT), Ok(Some(3)));
    let password = pap::decrypt_request(&req, SECRET).unwrap().unwrap();
    assert_eq!(password.as_bytes(), b"arctangent");
    // Without Message-Authenticator it passes only when the server does not insist on it.
    assert!(verify_request(&req, SECRET, false).is_ok());
    assert!(verify_request(&req, SECRET, true).is_err());

    // The builder reproduces the request exactly.
    let mut out = Vec::new();
    let mut b =
        PacketBuilder::new(&mut out, Code::AccessRequest, 0).without_message_authenticator();
    b.set_authenticator(req.authenticator());
    b.add_text(AttrType::USER_NAME, "nemo").unwrap();
    b.add_user_password(b"arctangent", SECRET).unwrap();
    b.add_ipv4(AttrType::NAS_IP_ADDRESS, Ipv4Addr::new(192, 168, 1, 16))
        .unwrap();
    b.add_u32(AttrType::NAS_PORT, 3).unwrap();
    assert_eq!(b.finish_request(SECRET), &bytes[..]);
}

#[test]
fn rfc2865_7_1_accept_authenticator_verifies_and_is_reproduced() {
    let req_bytes = unhex(TELNET_REQUEST);
    let req = PacketRef::decode(&req_bytes).unwrap();
    let bytes = unhex(TELNET_ACCEPT);
    let accept = PacketRef::decode(&bytes).unwrap();
    assert_eq!(accept.code(), Code::AccessAccept);
    verify_response_authenticator(&accept, req.authenticator(), SECRET).unwrap();
    assert!(verify_response_authenticator(&accept, req.authenticator(), b"xyzzy5462").is_err());
    assert_eq!(
        accept.integer(AttrType::SERVICE_TYPE),
        Ok(Some(service_type::LOGIN))
    );
    assert_eq!(accept.integer(AttrType::LOGIN_SERVICE), Ok(Some(0)));
    assert_eq!(
        accept.ipv4(AttrType::LOGIN_IP_HOST),
        Ok(Some(Ipv4Addr::new(192, 168, 1, 3)))
    );

    let mut out = Vec::new();
    let mut b =
        PacketBuilder::reply(&mut out, &req, Code::AccessAccept).without_message_authenticator();
    b.add_u32(AttrType::SERVICE_TYPE, service_type::LOGIN)
        .unwrap()
        .add_u32(AttrType::LOGIN_SERVICE, 0)
        .unwrap()
        .add_ipv4(AttrType::LOGIN_IP_HOST, Ipv4Addr::new(192, 168, 1, 3))
        .unwrap();
    assert_eq!(b.finish_reply(&req, SECRET), &bytes[..]);
}

#[test]
fn rfc2865_7_2_chap_exchange() {
    let req_bytes = unhex(CHAP_REQUEST);
    let req = PacketRef::decode(&req_bytes).unwrap();
    assert_eq!(req.text(AttrType::USER_NAME), Ok(Some("flopsy")));
    let chap_password = req.get(AttrType::CHAP_PASSWORD).unwrap();
    assert_eq!(chap_password.len(), 17);
    assert_eq!(chap_password[0], 22);
    // No CHAP-Challenge: the Request Authenticator is the challenge.
    assert_eq!(chap::challenge(&req), &req.authenticator()[..]);
    assert_eq!(req.integer(AttrType::NAS_PORT), Ok(Some(20)));
    assert_eq!(
        req.integer(AttrType::SERVICE_TYPE),
        Ok(Some(service_type::FRAMED))
    );
    assert_eq!(
        req.integer(AttrType::FRAMED_PROTOCOL),
        Ok(Some(framed_protocol::PPP))
    );
    // The RFC does not give flopsy's password; a wrong one must not verify.
    assert_eq!(chap::verify_request(&req, b"not-the-password"), Ok(false));

    let bytes = unhex(CHAP_ACCEPT);
    let accept = PacketRef::decode(&bytes).unwrap();
    verify_response_authenticator(&accept, req.authenticator(), SECRET).unwrap();
    // (RFC 2865 erratum 1469: the text says Service-Type Framed, the hex is what it is.)
    let mut out = Vec::new();
    let mut b =
        PacketBuilder::reply(&mut out, &req, Code::AccessAccept).without_message_authenticator();
    b.add_u32(AttrType::SERVICE_TYPE, 2).unwrap();
    b.add_u32(AttrType::FRAMED_PROTOCOL, 1).unwrap();
    b.add_ipv4(
        AttrType::FRAMED_IP_ADDRESS,
        Ipv4Addr::new(255, 255, 255, 254),
    )
    .unwrap();
    b.add_u32(AttrType::FRAMED_ROUTING, 2).unwrap();
    b.add_u32(AttrType::FRAMED_COMPRESSION, 1).unwrap();
    b.add_u32(AttrType::FRAMED_MTU, 1500).unwrap();
    assert_eq!(b.finish_reply(&req, SECRET), &bytes[..]);
}

#[test]
fn rfc2865_7_3_challenge_response_card() {
    let r1_bytes = unhex(CARD_REQUEST_1);
    let r1 = PacketRef::decode(&r1_bytes).unwrap();
    assert_eq!(r1.text(AttrType::USER_NAME), Ok(Some("mopsy")));
    let pw = pap::decrypt_request(&r1, SECRET).unwrap().unwrap();
    assert_eq!(pw.as_str(), Some("challenge"));

    let ch_bytes = unhex(CARD_CHALLENGE);
    let ch = PacketRef::decode(&ch_bytes).unwrap();
    assert_eq!(ch.code(), Code::AccessChallenge);
    verify_response_authenticator(&ch, r1.authenticator(), SECRET).unwrap();
    assert_eq!(
        ch.text(AttrType::REPLY_MESSAGE),
        Ok(Some("Challenge 32769430.  Enter response at prompt."))
    );
    assert_eq!(ch.get(AttrType::STATE), Some(&b"32769430"[..]));

    let r2_bytes = unhex(CARD_REQUEST_2);
    let r2 = PacketRef::decode(&r2_bytes).unwrap();
    let pw = pap::decrypt_request(&r2, SECRET).unwrap().unwrap();
    assert_eq!(pw.as_str(), Some("99101462"));
    assert_eq!(r2.get(AttrType::STATE), Some(&b"32769430"[..]));

    let rej_bytes = unhex(CARD_REJECT);
    let rej = PacketRef::decode(&rej_bytes).unwrap();
    assert_eq!(rej.code(), Code::AccessReject);
    verify_response_authenticator(&rej, r2.authenticator(), SECRET).unwrap();
    let mut out = Vec::new();
    let b = PacketBuilder::reply(&mut out, &r2, Code::AccessReject).without_message_authenticator();
    assert_eq!(b.finish_reply(&r2, SECRET), &rej_bytes[..]);
}

// RFC 2759 §9.2 and RFC 3079 §3.5.3.
const AUTH_CHALLENGE: &str = "5B5D7C7D7B3F2F3E3C2C602132262628";
const PEER_CHALLENGE: &str = "21402324255E262A28295F2B3A337C7E";
const NT_RESPONSE: &str = "82309ECD8D708B5EA08FAA3981CD83544233114A3D85D6DF";

fn arr<const N: usize>(s: &str) -> [u8; N] {
    unhex(s).try_into().unwrap()
}

#[test]
fn rfc2759_9_2_ms_chap_v2_vector() {
    let auth_challenge: [u8; 16] = arr(AUTH_CHALLENGE);
    let peer_challenge: [u8; 16] = arr(PEER_CHALLENGE);
    let hash = mschap::nt_password_hash("clientPass");
    assert_eq!(hash, arr::<16>("44EBBA8D5312B8D611474411F56989AE"));
    assert_eq!(
        mschap::hash_nt_password_hash(&hash),
        arr::<16>("41C00C584BD2D91C4017A2A12FA59F3F")
    );
    let challenge = mschap::challenge_hash(&peer_challenge, &auth_challenge, b"User");
    assert_eq!(challenge, arr::<8>("D02E4386BCE91226"));
    let nt = mschap::generate_nt_response(&auth_challenge, &peer_challenge, b"User", &hash);
    assert_eq!(nt, arr::<24>(NT_RESPONSE));
    assert_eq!(mschap::challenge_response(&challenge, &hash), nt);
    let s = mschap::authenticator_response(&hash, &nt, &peer_challenge, &auth_challenge, b"User");
    assert_eq!(&s, b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
}

#[test]
fn rfc3079_3_5_3_mppe_128_bit_keys() {
    let hash_hash = mschap::hash_nt_password_hash(&mschap::nt_password_hash("clientPass"));
    let nt: [u8; 24] = arr(NT_RESPONSE);
    let master = mppe::master_key(&hash_hash, &nt);
    assert_eq!(master, arr::<16>("FDECE3717A8C838CB388E527AE3CDD31"));
    // The RFC's SendStartKey128 is the server's send key (IsSend, IsServer).
    let send = mppe::asymmetric_start_key(&master, true, true);
    assert_eq!(send, arr::<16>("8B7CDC149B993A1BA118CB153F56DCCB"));
    // The client receives with the same key; the other direction uses the other magic.
    assert_eq!(mppe::asymmetric_start_key(&master, false, false), send);
    let recv = mppe::asymmetric_start_key(&master, false, true);
    assert_eq!(recv, arr::<16>("D5F0E9521E3EA9589645E86051C82226"));
    assert_eq!(mppe::asymmetric_start_key(&master, true, false), recv);
    let keys = mppe::server_keys(&hash_hash, &nt);
    assert_eq!((keys.send_key, keys.recv_key), (send, recv));
}

/// A whole MS-CHAPv2 round: the Access-Request a NAS would send for the RFC 2759 user, the
/// server's check, and the Accept with MS-CHAP2-Success and MPPE keys the NAS can decrypt.
#[test]
fn ms_chap_v2_exchange_over_radius() {
    let auth_challenge: [u8; 16] = arr(AUTH_CHALLENGE);
    let response = MsChap2Response {
        ident: 0x42,
        flags: 0,
        peer_challenge: arr(PEER_CHALLENGE),
        nt_response: arr(NT_RESPONSE),
    };
    for user in ["User", "CORP\\User"] {
        let mut req_buf = Vec::new();
        let mut b = PacketBuilder::new(&mut req_buf, Code::AccessRequest, 5);
        b.set_authenticator(&[0x11; 16]);
        b.add_text(AttrType::USER_NAME, user).unwrap();
        b.add_vsa(microsoft::MS_CHAP_CHALLENGE, &auth_challenge)
            .unwrap();
        b.add_vsa(microsoft::MS_CHAP2_RESPONSE, &response.to_bytes())
            .unwrap();
        b.finish_request(SECRET);
        let req = PacketRef::decode(&req_buf).unwrap();
        verify_request(&req, SECRET, true).unwrap();

        let ms = MsChap2Request::from_packet(&req).unwrap().unwrap();
        assert_eq!(ms.response, response);
        assert!(ms.verify_password("clientpass").is_none());
        let ok = ms.verify_password("clientPass").unwrap();
        let mut success = vec![0x42];
        success.extend_from_slice(b"S=407A5589115FD0D6209F510FE9C04566932CDA56");
        assert_eq!(&ok.success_value()[..], &success[..]);

        let mut out = Vec::new();
        let mut b = PacketBuilder::reply(&mut out, &req, Code::AccessAccept);
        b.add_vsa(microsoft::MS_CHAP2_SUCCESS, &ok.success_value())
            .unwrap();
        b.add_mppe_keys(&ok.mppe_keys, 0x1357, SECRET, req.authenticator())
            .unwrap();
        b.add_vsa_u32(
            microsoft::MS_MPPE_ENCRYPTION_POLICY,
            microsoft::encryption_policy::ALLOWED,
        )
        .unwrap();
        let accept_bytes = b.finish_reply(&req, SECRET).to_vec();
        let accept = PacketRef::decode(&accept_bytes).unwrap();
        lastmile_radius_codec::auth::verify_reply(&accept, req.authenticator(), SECRET, true)
            .unwrap();
        let send = accept.vendor(microsoft::MS_MPPE_SEND_KEY).unwrap();
        let recv = accept.vendor(microsoft::MS_MPPE_RECV_KEY).unwrap();
        assert_eq!(send.len(), 34);
        assert_ne!(send[..2], recv[..2], "salts differ");
        assert!(send[0] & 0x80 != 0 && recv[0] & 0x80 != 0);
        let send = mppe::decrypt_key(send, SECRET, req.authenticator()).unwrap();
        let recv = mppe::decrypt_key(recv, SECRET, req.authenticator()).unwrap();
        assert_eq!(
            send.as_bytes(),
            arr::<16>("8B7CDC149B993A1BA118CB153F56DCCB")
        );
        assert_eq!(
            recv.as_bytes(),
            arr::<16>("D5F0E9521E3EA9589645E86051C82226")
        );
    }
}

#[test]
fn ms_chap_v2_missing_pieces_are_errors() {
    let mut buf = Vec::new();
    let mut b = PacketBuilder::new(&mut buf, Code::AccessRequest, 1);
    b.add_text(AttrType::USER_NAME, "u").unwrap();
    b.finish_request(SECRET);
    let req = PacketRef::decode(&buf).unwrap();
    assert_eq!(MsChap2Request::from_packet(&req), Ok(None));

    let mut b = PacketBuilder::new(&mut buf, Code::AccessRequest, 1);
    b.add_vsa(microsoft::MS_CHAP2_RESPONSE, &[0; 50]).unwrap();
    b.add_vsa(microsoft::MS_CHAP_CHALLENGE, &[0; 8]).unwrap();
    b.finish_request(SECRET);
    let req = PacketRef::decode(&buf).unwrap();
    assert!(MsChap2Request::from_packet(&req).is_err());
}
