//! Message-Authenticator and signed-authenticator round trips, checked against an independent
//! computation written straight from RFC 3579 §3.2, RFC 2866 §3 and RFC 5176 §2.3 / §3.3.

use hmac::{KeyInit, Mac};
use lastmile_radius_codec::auth::{
    self, message_authenticator_offset, sign_reply_in_place, sign_request_in_place,
    verify_message_authenticator, verify_reply, verify_request, verify_request_authenticator,
};
use lastmile_radius_codec::dict::ErrorCause;
use lastmile_radius_codec::{acct, AttrType, AuthError, Code, PacketBuilder, PacketRef};
use md5::{Digest, Md5};

const SECRET: &[u8] = b"a-long-enough-secret";

fn hmac_md5(data: &[u8]) -> [u8; 16] {
    let mut mac = hmac::Hmac::<Md5>::new_from_slice(SECRET).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn access_request() -> Vec<u8> {
    let mut buf = Vec::new();
    let mut b = PacketBuilder::new(&mut buf, Code::AccessRequest, 77);
    b.set_authenticator(&[0x3c; 16]);
    b.add_text(AttrType::USER_NAME, "alice@isp").unwrap();
    b.add_user_password(b"correct horse", SECRET).unwrap();
    b.add_text(AttrType::CALLING_STATION_ID, "AA-BB-CC-DD-EE-FF")
        .unwrap();
    b.finish_request(SECRET);
    buf
}

#[test]
fn access_request_message_authenticator_matches_rfc3579() {
    let bytes = access_request();
    let req = PacketRef::decode(&bytes).unwrap();
    let at = message_authenticator_offset(&req).unwrap().unwrap();
    assert_eq!(at, 22, "Message-Authenticator is the first attribute");
    // HMAC-MD5 over the packet with the value zeroed, own authenticator in place.
    let mut zeroed = bytes.clone();
    zeroed[at..at + 16].fill(0);
    assert_eq!(&bytes[at..at + 16], &hmac_md5(&zeroed));
    verify_message_authenticator(&req, SECRET).unwrap();
    verify_request(&req, SECRET, true).unwrap();
    assert_eq!(
        verify_message_authenticator(&req, b"other secret"),
        Err(AuthError::BadMessageAuthenticator)
    );
    // Any altered octet, header or attribute, breaks it.
    for i in [1, 5, 19, 30, bytes.len() - 1] {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let p = PacketRef::decode(&t).unwrap();
        assert_eq!(
            verify_request(&p, SECRET, false),
            Err(AuthError::BadMessageAuthenticator),
            "octet {i}"
        );
    }
}

#[test]
fn reply_message_authenticator_uses_the_request_authenticator() {
    let req_bytes = access_request();
    let req = PacketRef::decode(&req_bytes).unwrap();
    let mut out = Vec::new();
    let mut b = PacketBuilder::reply(&mut out, &req, Code::AccessAccept);
    b.add_u32(AttrType::SESSION_TIMEOUT, 86400).unwrap();
    let bytes = b.finish_reply(&req, SECRET).to_vec();

    // Independent check: MA over the packet with the request's authenticator and a zero value,
    // then the Response Authenticator over the packet with the MA filled in.
    let mut m = bytes.clone();
    m[4..20].copy_from_slice(req.authenticator());
    m[22..38].fill(0);
    assert_eq!(&bytes[22..38], &hmac_md5(&m));
    m[22..38].copy_from_slice(&bytes[22..38]);
    let ra: [u8; 16] = Md5::new()
        .chain_update(&m)
        .chain_update(SECRET)
        .finalize()
        .into();
    assert_eq!(&bytes[4..20], &ra);

    let reply = PacketRef::decode(&bytes).unwrap();
    verify_reply(&reply, req.authenticator(), SECRET, true).unwrap();
    assert_eq!(
        verify_reply(&reply, &[0; 16], SECRET, true),
        Err(AuthError::BadAuthenticator)
    );
    assert_eq!(
        verify_request(&reply, SECRET, true),
        Err(AuthError::NotApplicable(Code::AccessAccept))
    );
}

#[test]
fn accounting_request_authenticator() {
    let mut buf = Vec::new();
    let mut b = PacketBuilder::new(&mut buf, Code::AccountingRequest, 9);
    b.add_u32(AttrType::ACCT_STATUS_TYPE, 2).unwrap();
    b.add_text(AttrType::ACCT_SESSION_ID, "81200003").unwrap();
    b.add_u32(AttrType::ACCT_INPUT_OCTETS, 7).unwrap();
    b.add_u32(AttrType::ACCT_INPUT_GIGAWORDS, 2).unwrap();
    b.add_u32(AttrType::ACCT_OUTPUT_OCTETS, u32::MAX).unwrap();
    b.add_u32(AttrType::ACCT_SESSION_TIME, 3600).unwrap();
    b.finish_request(SECRET);
    let req = PacketRef::decode(&buf).unwrap();

    // RFC 2866 §3: MD5(Code+ID+Length+16 zero octets+Attributes+Secret); the MA was computed
    // first over a zero authenticator (RFC 5176 §3.3 rule, used for accounting too).
    let mut z = buf.clone();
    z[4..20].fill(0);
    let ra: [u8; 16] = Md5::new()
        .chain_update(&z)
        .chain_update(SECRET)
        .finalize()
        .into();
    assert_eq!(req.authenticator(), &ra);
    z[22..38].fill(0);
    assert_eq!(&buf[22..38], &hmac_md5(&z));

    verify_request_authenticator(&req, SECRET).unwrap();
    verify_request(&req, SECRET, true).unwrap();
    let mut t = buf.clone();
    *t.last_mut().unwrap() ^= 1;
    let tampered = PacketRef::decode(&t).unwrap();
    assert_eq!(
        verify_request_authenticator(&tampered, SECRET),
        Err(AuthError::BadAuthenticator)
    );

    assert_eq!(
        acct::status_type(&req),
        Ok(Some(acct::AcctStatusType::Stop))
    );
    assert_eq!(acct::input_octets(&req), Ok(Some((2 << 32) + 7)));
    assert_eq!(acct::output_octets(&req), Ok(Some(u64::from(u32::MAX))));
    let c = acct::Counters::from_packet(&req).unwrap();
    assert_eq!(c.input_octets, Some((2 << 32) + 7));
    assert_eq!(c.session_time, Some(3600));
    assert_eq!(c.input_packets, None);

    // A plain accounting request without Message-Authenticator (most NASes).
    let mut b =
        PacketBuilder::new(&mut buf, Code::AccountingRequest, 10).without_message_authenticator();
    b.add_u32(AttrType::ACCT_STATUS_TYPE, 7).unwrap();
    b.finish_request(SECRET);
    let req = PacketRef::decode(&buf).unwrap();
    verify_request(&req, SECRET, false).unwrap();
    // Signed as a whole: the Access-Request policy does not apply.
    verify_request(&req, SECRET, true).unwrap();
    assert_eq!(
        verify_message_authenticator(&req, SECRET),
        Err(AuthError::MissingMessageAuthenticator)
    );
    assert_eq!(
        verify_request_authenticator(&PacketRef::decode(&access_request()).unwrap(), SECRET),
        Err(AuthError::NotApplicable(Code::AccessRequest))
    );
}

#[test]
fn coa_and_disconnect_round_trip() {
    for (code, ack) in [
        (Code::CoaRequest, Code::CoaAck),
        (Code::DisconnectRequest, Code::DisconnectNak),
    ] {
        let mut buf = Vec::new();
        let mut b = PacketBuilder::new(&mut buf, code, 200);
        b.add_text(AttrType::ACCT_SESSION_ID, "sess-1").unwrap();
        b.add_u32(AttrType::SESSION_TIMEOUT, 60).unwrap();
        let sent = b.finish_request(SECRET).to_vec();
        // The NAS's side.
        let req = PacketRef::decode(&sent).unwrap();
        verify_request(&req, SECRET, true).unwrap();
        let mut out = Vec::new();
        let mut r = PacketBuilder::reply(&mut out, &req, ack);
        r.add_u32(
            AttrType::ERROR_CAUSE,
            ErrorCause::SessionContextNotFound.as_u32(),
        )
        .unwrap();
        let reply_bytes = r.finish_reply(&req, SECRET).to_vec();
        // Our side again: we kept the authenticator of what we sent.
        let reply = PacketRef::decode(&reply_bytes).unwrap();
        assert_eq!(reply.identifier(), 200);
        verify_reply(&reply, req.authenticator(), SECRET, true).unwrap();
        assert_eq!(
            reply
                .integer(AttrType::ERROR_CAUSE)
                .unwrap()
                .map(ErrorCause::from_u32),
            Some(ErrorCause::SessionContextNotFound)
        );
    }
}

#[test]
fn status_server_requires_message_authenticator() {
    let mut buf = Vec::new();
    let mut b = PacketBuilder::new(&mut buf, Code::StatusServer, 1);
    b.set_authenticator(&[5; 16]);
    b.finish_request(SECRET);
    verify_request(&PacketRef::decode(&buf).unwrap(), SECRET, false).unwrap();
    let mut b = PacketBuilder::new(&mut buf, Code::StatusServer, 1).without_message_authenticator();
    b.set_authenticator(&[5; 16]);
    b.finish_request(SECRET);
    assert_eq!(
        verify_request(&PacketRef::decode(&buf).unwrap(), SECRET, false),
        Err(AuthError::MissingMessageAuthenticator)
    );
}

#[test]
fn eap_requires_message_authenticator() {
    let mut buf = Vec::new();
    let mut b =
        PacketBuilder::new(&mut buf, Code::AccessRequest, 1).without_message_authenticator();
    b.add(AttrType::EAP_MESSAGE, &[2, 1, 0, 5, 1]).unwrap();
    b.finish_request(SECRET);
    assert_eq!(
        verify_request(&PacketRef::decode(&buf).unwrap(), SECRET, false),
        Err(AuthError::MissingMessageAuthenticator)
    );
}

#[test]
fn duplicate_and_missized_message_authenticators_are_refused() {
    let mut buf = access_request();
    // Append a second Message-Authenticator and fix the Length.
    buf.extend_from_slice(&[80, 18]);
    buf.extend_from_slice(&[0; 16]);
    let len = buf.len() as u16;
    buf[2..4].copy_from_slice(&len.to_be_bytes());
    assert_eq!(
        verify_request(&PacketRef::decode(&buf).unwrap(), SECRET, false),
        Err(AuthError::DuplicateMessageAuthenticator)
    );
    let mut buf = vec![1, 1, 0, 24];
    buf.extend_from_slice(&[0; 16]);
    buf.extend_from_slice(&[80, 4, 0, 0]);
    assert_eq!(
        verify_request(&PacketRef::decode(&buf).unwrap(), SECRET, false),
        Err(AuthError::MessageAuthenticatorLength { len: 2 })
    );
}

#[test]
fn in_place_signing_matches_the_builder() {
    let req_bytes = access_request();
    let req = PacketRef::decode(&req_bytes).unwrap();
    let mut out = Vec::new();
    let mut b = PacketBuilder::reply(&mut out, &req, Code::AccessReject);
    b.add_text(AttrType::REPLY_MESSAGE, "no").unwrap();
    let signed = b.finish_reply(&req, SECRET).to_vec();
    let mut again = signed.clone();
    again[4..20].fill(0xEE);
    again[22..38].fill(0xEE);
    again.extend_from_slice(&[0xFF; 5]); // padding must be left out of the signature
    sign_reply_in_place(&mut again, req.authenticator(), SECRET).unwrap();
    assert_eq!(&again[..signed.len()], &signed[..]);

    let mut acct_buf = Vec::new();
    let mut b = PacketBuilder::new(&mut acct_buf, Code::AccountingRequest, 3);
    b.add_u32(AttrType::ACCT_STATUS_TYPE, 1).unwrap();
    let signed = b.finish_request(SECRET).to_vec();
    let mut again = signed.clone();
    again[4..20].fill(1);
    sign_request_in_place(&mut again, SECRET).unwrap();
    assert_eq!(again, signed);
    let mut access = access_request();
    let before = access.clone();
    access[22..38].fill(0);
    sign_request_in_place(&mut access, SECRET).unwrap();
    assert_eq!(access, before);
    assert!(sign_request_in_place(&mut [1, 2, 3], SECRET).is_err());
    assert!(auth::sign_reply_in_place(&mut [0; 4], &[0; 16], SECRET).is_err());
}
