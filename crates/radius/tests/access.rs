//! End to end over UDP on 127.0.0.1: Access-Requests from a client built on the codec.

mod common;

use common::{nas_at, service, sync, Harness, Options, SECRET, WAIT};
use lastmile_domain::nas::VendorProfile;
use lastmile_domain::service::{AccessKind, ServiceStatus};
use lastmile_radius::client::{self, AccessRequest, Client, ClientAuth};
use lastmile_radius::metrics::UNKNOWN_NAS;
use lastmile_radius::{
    DirectoryChange, DropReason, RejectReason, RequestKind, RequestResult, SuspendedAction,
};
use lastmile_radius_codec::dict::{microsoft, mikrotik};
use lastmile_radius_codec::mschap;
use lastmile_radius_codec::{mppe, AttrType, Code, PacketRef};

async fn exchange(client: &mut Client, req: &AccessRequest<'_>) -> Vec<u8> {
    let mut buf = Vec::new();
    let bytes = req.encode(&mut buf, SECRET).unwrap().to_vec();
    let reply = client.exchange(&bytes, WAIT).await.expect("no reply");
    client::verify_reply(&reply, &bytes, SECRET, true).expect("reply does not verify");
    reply
}

fn code(reply: &[u8]) -> Code {
    PacketRef::decode(reply).unwrap().code()
}

#[tokio::test]
async fn pap_accept_wrong_password_unknown_user() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let mut alice = service("alice", "s3cret");
    alice.ip_pool = Some("pool-a".into());
    let alice_id = alice.service_id;
    let h = Harness::start(vec![nas], vec![alice]).await;
    let mut c = Client::connect(h.auth).await.unwrap();

    let mut req = AccessRequest::pap(1, [1; 16], "alice", "s3cret");
    req.proxy_state = Some(b"proxy-1");
    let reply = exchange(&mut c, &req).await;
    let p = PacketRef::decode(&reply).unwrap();
    assert_eq!(p.code(), Code::AccessAccept);
    assert_eq!(
        p.attributes().next().unwrap().kind(),
        AttrType::MESSAGE_AUTHENTICATOR,
        "Message-Authenticator first (BlastRADIUS)"
    );
    assert_eq!(
        p.vendor_text(mikrotik::RATE_LIMIT),
        Ok(Some("5000k/20000k"))
    );
    assert_eq!(p.text(AttrType::FRAMED_POOL), Ok(Some("pool-a")));
    assert_eq!(p.integer(AttrType::ACCT_INTERIM_INTERVAL), Ok(Some(300)));
    assert_eq!(p.get(AttrType::PROXY_STATE), Some(&b"proxy-1"[..]));

    let reply = exchange(&mut c, &AccessRequest::pap(2, [2; 16], "alice", "nope")).await;
    assert_eq!(code(&reply), Code::AccessReject);
    let reply = exchange(&mut c, &AccessRequest::pap(3, [3; 16], "mallory", "x")).await;
    assert_eq!(code(&reply), Code::AccessReject);

    let m = h.metrics.snapshot();
    assert_eq!(
        m.requests("core-1", RequestKind::Access, RequestResult::Accept),
        1
    );
    assert_eq!(
        m.requests(
            "core-1",
            RequestKind::Access,
            RequestResult::Reject(RejectReason::WrongPassword)
        ),
        1
    );
    assert_eq!(
        m.requests(
            "core-1",
            RequestKind::Access,
            RequestResult::Reject(RejectReason::UnknownUser)
        ),
        1
    );
    let rejects = h.metrics.last_rejects(alice_id);
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].reason, RejectReason::WrongPassword);
    assert_eq!(rejects[0].nas_name, "core-1");
    h.stop().await;
}

#[tokio::test]
async fn suspended_rejected_or_walled_garden_per_nas() {
    let mut rejecting = nas_at([127, 0, 0, 1], "rejecting", VendorProfile::Mikrotik);
    rejecting.suspended = SuspendedAction::Reject {
        reply_message: Some("Account suspended: please pay".into()),
    };
    let mut garden = nas_at([127, 0, 0, 3], "garden", VendorProfile::Mikrotik);
    garden.suspended = SuspendedAction::WalledGarden {
        address_list: Some("unpaid".into()),
        pool: Some("garden-pool".into()),
    };
    let mut bob = service("bob", "pw");
    bob.status = ServiceStatus::Suspended;
    let h = Harness::start(vec![rejecting, garden], vec![bob]).await;

    let mut c = Client::connect(h.auth).await.unwrap();
    let reply = exchange(&mut c, &AccessRequest::pap(1, [1; 16], "bob", "pw")).await;
    let p = PacketRef::decode(&reply).unwrap();
    assert_eq!(p.code(), Code::AccessReject);
    assert_eq!(
        p.text(AttrType::REPLY_MESSAGE),
        Ok(Some("Account suspended: please pay"))
    );

    let mut g = Client::connect_from("127.0.0.3:0".parse().unwrap(), h.auth)
        .await
        .unwrap();
    let reply = exchange(&mut g, &AccessRequest::pap(2, [2; 16], "bob", "pw")).await;
    let p = PacketRef::decode(&reply).unwrap();
    assert_eq!(p.code(), Code::AccessAccept);
    assert_eq!(p.vendor_text(mikrotik::ADDRESS_LIST), Ok(Some("unpaid")));
    assert_eq!(p.text(AttrType::FRAMED_POOL), Ok(Some("garden-pool")));
    assert_eq!(p.vendor_text(mikrotik::RATE_LIMIT), Ok(Some("256k/256k")));
    let m = h.metrics.snapshot();
    assert_eq!(
        m.requests("garden", RequestKind::Access, RequestResult::WalledGarden),
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn message_authenticator_wrong_secret_and_unknown_nas_are_dropped_and_counted() {
    let strict = nas_at([127, 0, 0, 1], "strict", VendorProfile::Generic);
    let mut lax = nas_at([127, 0, 0, 4], "lax", VendorProfile::Generic);
    lax.require_message_authenticator = false;
    let h = Harness::start(vec![strict, lax], vec![service("carol", "pw")]).await;
    let mut c = Client::connect(h.auth).await.unwrap();
    let mut buf = Vec::new();

    // No Message-Authenticator where it is required.
    let mut req = AccessRequest::pap(1, [1; 16], "carol", "pw");
    req.message_authenticator = false;
    c.send(req.encode(&mut buf, SECRET).unwrap()).await.unwrap();
    // The wrong secret.
    let req = AccessRequest::pap(2, [2; 16], "carol", "pw");
    c.send(req.encode(&mut buf, b"not-the-secret").unwrap())
        .await
        .unwrap();
    // Not RADIUS at all.
    c.send(b"hello").await.unwrap();
    // From an address no NAS has.
    let mut stranger = Client::connect_from("127.0.0.2:0".parse().unwrap(), h.auth)
        .await
        .unwrap();
    let req = AccessRequest::pap(3, [3; 16], "carol", "pw");
    stranger
        .send(req.encode(&mut buf, SECRET).unwrap())
        .await
        .unwrap();
    sync(&mut c, 9).await;
    assert_eq!(c.try_recv(), None);
    assert_eq!(stranger.try_recv(), None);

    let m = h.metrics.snapshot();
    assert_eq!(
        m.dropped("strict", DropReason::MissingMessageAuthenticator),
        1
    );
    assert_eq!(m.dropped("strict", DropReason::BadAuthenticator), 1);
    assert_eq!(m.dropped("strict", DropReason::Malformed), 1);
    assert_eq!(m.dropped(UNKNOWN_NAS, DropReason::UnknownNas), 1);

    // A NAS allowed to omit it is answered.
    let mut l = Client::connect_from("127.0.0.4:0".parse().unwrap(), h.auth)
        .await
        .unwrap();
    let mut req = AccessRequest::pap(4, [4; 16], "carol", "pw");
    req.message_authenticator = false;
    let bytes = req.encode(&mut buf, SECRET).unwrap().to_vec();
    let reply = l.exchange(&bytes, WAIT).await.unwrap();
    client::verify_reply(&reply, &bytes, SECRET, true).unwrap();
    assert_eq!(code(&reply), Code::AccessAccept);
    h.stop().await;
}

#[tokio::test]
async fn chap_and_mac_authorisation() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Wispr);
    let dave = service("dave", "chap-pw");
    let mut cpe = service("unused", "");
    cpe.username = None;
    cpe.password = None;
    cpe.access_kind = AccessKind::Ipoe;
    cpe.mac = Some("aa:bb:cc:00:11:22".parse().unwrap());
    let h = Harness::start(vec![nas], vec![dave, cpe]).await;
    let mut c = Client::connect(h.auth).await.unwrap();

    for (i, challenge) in [None, Some([0x5a; 16])].into_iter().enumerate() {
        let mut req = AccessRequest::new(i as u8, [i as u8; 16], Some("dave"));
        req.auth = ClientAuth::Chap {
            ident: 7,
            password: "chap-pw",
            challenge,
        };
        let reply = exchange(&mut c, &req).await;
        let p = PacketRef::decode(&reply).unwrap();
        assert_eq!(p.code(), Code::AccessAccept);
        assert_eq!(
            p.vendor_integer(lastmile_radius_codec::dict::wispr::BANDWIDTH_MAX_DOWN),
            Ok(Some(20_000_000))
        );
    }

    let mut req = AccessRequest::new(10, [10; 16], Some("AA-BB-CC-00-11-22"));
    req.calling_station_id = Some("AA-BB-CC-00-11-22");
    assert_eq!(code(&exchange(&mut c, &req).await), Code::AccessAccept);
    h.stop().await;
}

fn mschap_request(id: u8, password: &str) -> AccessRequest<'_> {
    let mut req = AccessRequest::new(id, [id; 16], Some("CORP\\erin"));
    req.auth = ClientAuth::MsChap2 {
        ident: 0x33,
        password,
        authenticator_challenge: [0x44; 16],
        peer_challenge: [0x55; 16],
    };
    req
}

#[tokio::test]
async fn mschapv2_accept_with_success_and_mppe_keys_and_reject_with_error() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let mut erin = service("CORP\\erin", "Passw0rd!");
    erin.username = Some("CORP\\erin".into());
    let h = Harness::start(vec![nas], vec![erin]).await;
    let mut c = Client::connect(h.auth).await.unwrap();

    let req = mschap_request(1, "Passw0rd!");
    let reply = exchange(&mut c, &req).await;
    let p = PacketRef::decode(&reply).unwrap();
    assert_eq!(p.code(), Code::AccessAccept);
    let expected = client::expected_ms_chap2_success(
        "CORP\\erin",
        "Passw0rd!",
        0x33,
        &[0x44; 16],
        &[0x55; 16],
    );
    assert_eq!(p.vendor(microsoft::MS_CHAP2_SUCCESS), Some(&expected[..]));

    // The keys decrypt to what RFC 3079 derives from the password.
    let hash = mschap::nt_password_hash("Passw0rd!");
    let nt = mschap::generate_nt_response(&[0x44; 16], &[0x55; 16], b"erin", &hash);
    let keys = mppe::server_keys(&mschap::hash_nt_password_hash(&hash), &nt);
    let send = p.vendor(microsoft::MS_MPPE_SEND_KEY).unwrap();
    let recv = p.vendor(microsoft::MS_MPPE_RECV_KEY).unwrap();
    assert_eq!(
        mppe::decrypt_key(send, SECRET, &[1; 16])
            .unwrap()
            .as_bytes(),
        &keys.send_key[..]
    );
    assert_eq!(
        mppe::decrypt_key(recv, SECRET, &[1; 16])
            .unwrap()
            .as_bytes(),
        &keys.recv_key[..]
    );
    assert_eq!(
        p.vendor_integer(microsoft::MS_MPPE_ENCRYPTION_POLICY),
        Ok(Some(1))
    );
    assert_eq!(
        p.vendor_integer(microsoft::MS_MPPE_ENCRYPTION_TYPES),
        Ok(Some(6))
    );

    let reply = exchange(&mut c, &mschap_request(2, "wrong")).await;
    let p = PacketRef::decode(&reply).unwrap();
    assert_eq!(p.code(), Code::AccessReject);
    let err = p.vendor(microsoft::MS_CHAP_ERROR).unwrap();
    assert_eq!(err[0], 0x33);
    assert!(
        err[1..].starts_with(b"E=691 R=0 C="),
        "{:?}",
        String::from_utf8_lossy(err)
    );
    h.stop().await;
}

#[tokio::test]
async fn a_retransmission_gets_the_identical_cached_reply_and_is_processed_once() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let mut erin = service("erin", "Passw0rd!");
    erin.username = Some("CORP\\erin".into());
    let h = Harness::start(vec![nas], vec![erin]).await;
    let mut c = Client::connect(h.auth).await.unwrap();
    let mut buf = Vec::new();
    // MS-CHAPv2: reprocessing would draw new MPPE salts, so identical bytes prove the cache.
    let bytes = mschap_request(7, "Passw0rd!")
        .encode(&mut buf, SECRET)
        .unwrap()
        .to_vec();
    let first = c.exchange(&bytes, WAIT).await.unwrap();
    let second = c.exchange(&bytes, WAIT).await.unwrap();
    assert_eq!(first, second);
    assert_eq!(code(&first), Code::AccessAccept);
    let m = h.metrics.snapshot();
    assert_eq!(
        m.requests("core-1", RequestKind::Access, RequestResult::Accept),
        1
    );
    assert_eq!(
        m.requests("core-1", RequestKind::Access, RequestResult::Retransmit),
        1
    );
    // A new request (new authenticator) is processed: fresh salts, different bytes.
    let bytes2 = mschap_request(8, "Passw0rd!")
        .encode(&mut buf, SECRET)
        .unwrap()
        .to_vec();
    let third = c.exchange(&bytes2, WAIT).await.unwrap();
    assert_ne!(first[20..], third[20..]);
    h.stop().await;
}

#[tokio::test]
async fn directory_changes_apply_to_the_next_request() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let frank = service("frank", "pw");
    let h = Harness::start(vec![nas], vec![frank.clone()]).await;
    let mut c = Client::connect(h.auth).await.unwrap();
    let reply = exchange(&mut c, &AccessRequest::pap(1, [1; 16], "frank", "pw")).await;
    assert_eq!(code(&reply), Code::AccessAccept);

    let mut changed = frank.clone();
    changed.status = ServiceStatus::Terminated;
    h.directory.apply([DirectoryChange::UpsertService(changed)]);
    let reply = exchange(&mut c, &AccessRequest::pap(2, [2; 16], "frank", "pw")).await;
    assert_eq!(code(&reply), Code::AccessReject);
    assert_eq!(
        h.metrics.last_rejects(frank.service_id)[0].reason,
        RejectReason::Terminated
    );
    h.stop().await;
}

#[tokio::test]
async fn simultaneous_use_counts_live_sessions() {
    use lastmile_radius::SessionCounter;
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let gina = service("gina", "pw");
    let h = Harness::start(vec![nas.clone()], vec![gina.clone()]).await;
    h.sessions
        .seed([(gina.service_id, nas.id, "sess-1".to_string())]);
    assert_eq!(h.sessions.live_sessions(gina.service_id), 1);
    let mut c = Client::connect(h.auth).await.unwrap();
    let reply = exchange(&mut c, &AccessRequest::pap(1, [1; 16], "gina", "pw")).await;
    assert_eq!(code(&reply), Code::AccessReject);
    assert_eq!(
        h.metrics.last_rejects(gina.service_id)[0].reason,
        RejectReason::SimultaneousUse
    );
    h.stop().await;
}

#[tokio::test]
async fn several_sockets_per_port_share_the_load() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let h = Harness::start_with(
        vec![nas],
        vec![service("hank", "pw")],
        Options {
            sockets_per_port: 2,
            ..Options::default()
        },
    )
    .await;
    let mut handles = Vec::new();
    for i in 0..8u8 {
        let addr = h.auth;
        handles.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await.unwrap();
            let reply = exchange(&mut c, &AccessRequest::pap(i, [i; 16], "hank", "pw")).await;
            code(&reply)
        }));
    }
    for h in handles {
        assert_eq!(h.await.unwrap(), Code::AccessAccept);
    }
    assert_eq!(
        h.metrics
            .snapshot()
            .requests("core-1", RequestKind::Access, RequestResult::Accept),
        8
    );
    h.stop().await;
}

#[tokio::test]
async fn prometheus_exposition_after_traffic() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let h = Harness::start(vec![nas], vec![service("ivy", "pw")]).await;
    let mut c = Client::connect(h.auth).await.unwrap();
    exchange(&mut c, &AccessRequest::pap(1, [1; 16], "ivy", "pw")).await;
    let mut registry = prometheus_client::registry::Registry::with_prefix("lastmile");
    h.metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains(
            r#"lastmile_radius_requests_total{nas="core-1",kind="access",result="accept"} 1"#
        ),
        "{text}"
    );
    h.stop().await;
}

#[tokio::test]
async fn mangled_packets_are_dropped_and_the_server_lives_on() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let h = Harness::start(vec![nas], vec![service("joe", "pw")]).await;
    let mut junk = Client::connect(h.auth).await.unwrap();
    let mut buf = Vec::new();
    let mut req = AccessRequest::pap(1, [1; 16], "joe", "pw");
    req.calling_station_id = Some("aa:bb:cc:dd:ee:ff");
    let good = req.encode(&mut buf, SECRET).unwrap().to_vec();
    let mut sent = 0;
    // Every octet flipped, every truncation, and some extensions.
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0xA5;
        junk.send(&bad).await.unwrap();
        junk.send(&good[..i]).await.unwrap();
        sent += 2;
    }
    let mut long = good.clone();
    long.extend_from_slice(&[0xff; 64]);
    long[3] = long[3].wrapping_add(64);
    junk.send(&long).await.unwrap();
    let mut c = Client::connect(h.auth).await.unwrap();
    sync(&mut c, 77).await;
    let m = h.metrics.snapshot();
    let dropped: u64 = m.dropped.iter().map(|d| d.count).sum();
    assert_eq!(dropped, sent + 1, "{m:?}");
    assert_eq!(junk.try_recv(), None);
    // Still serving.
    let reply = exchange(&mut c, &AccessRequest::pap(2, [2; 16], "joe", "pw")).await;
    assert_eq!(code(&reply), Code::AccessAccept);
    h.stop().await;
}
