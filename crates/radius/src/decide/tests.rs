use super::*;
use crate::client::{AccessRequest, ClientAuth};
use crate::directory::{Directory, DirectoryChange};
use crate::reply::AttrKey;
use lastmile_domain::ids::{NasId, SubscriberId};
use lastmile_domain::plan::Burst;
use lastmile_domain::service::AccessKind;
use lastmile_radius_codec::dict::{cisco, huawei, juniper, wispr};
use lastmile_radius_codec::PacketRef;
use std::net::Ipv4Addr;

const SECRET: &[u8] = b"nas-secret";

fn nas(vendor: VendorProfile) -> NasEntry {
    NasEntry::new(
        NasId::generate(),
        "core-1",
        IpAddr::from([10, 0, 0, 1]),
        SECRET.to_vec(),
        vendor,
    )
}

fn service() -> AuthRecord {
    AuthRecord {
        service_id: ServiceId::generate(),
        subscriber_id: SubscriberId::generate(),
        status: ServiceStatus::Active,
        username: Some("alice".into()),
        password: Some("s3cret".into()),
        mac: Some("aa:bb:cc:dd:ee:ff".parse().unwrap()),
        circuit_id: Some("olt1:1/1/1".into()),
        access_kind: AccessKind::Pppoe,
        static_ip: None,
        ip_pool: Some("pool-a".into()),
        nas_id: None,
        tier: Tier {
            download_kbps: 10_000,
            upload_kbps: 2_000,
            burst: None,
            policy_name: "basic-10".into(),
        },
        simultaneous_use: 1,
    }
}

/// What a decision came to, owned, so tests need not juggle the borrowed packet.
#[derive(Debug)]
struct Out {
    reason: Option<RejectReason>,
    attrs: Vec<(AttrKey, String)>,
    walled: bool,
    mschap: bool,
    reply_message: Option<String>,
    mschap_ident: Option<u8>,
}

impl Out {
    fn accepted(&self) -> bool {
        self.reason.is_none()
    }
    fn std(&self, kind: AttrType) -> Option<&str> {
        self.get(AttrKey::Std(kind))
    }
    fn vendor(&self, attr: lastmile_radius_codec::VendorAttr) -> Option<&str> {
        self.get(AttrKey::Vendor(attr))
    }
    fn get(&self, key: AttrKey) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.as_str())
    }
}

fn summarise(d: &Decision<'_>) -> Out {
    match d {
        Decision::Accept(a) => Out {
            reason: None,
            attrs: a
                .attributes
                .iter()
                .map(|x| (x.key, x.value.to_text()))
                .collect(),
            walled: a.walled_garden,
            mschap: a.mschap.is_some(),
            reply_message: None,
            mschap_ident: None,
        },
        Decision::Reject(r) => Out {
            reason: Some(r.reason),
            attrs: Vec::new(),
            walled: false,
            mschap: false,
            reply_message: r.reply_message.map(String::from),
            mschap_ident: r.mschap_ident,
        },
    }
}

/// Encodes `req`, reads it back as the server does, and decides it against `rec` as found by
/// `by`.
fn run(
    nas: &NasEntry,
    req: &AccessRequest<'_>,
    rec: Option<&AuthRecord>,
    by: MatchedBy,
    live: u32,
) -> Out {
    let mut buf = Vec::new();
    let bytes = req.encode(&mut buf, SECRET).unwrap().to_vec();
    let packet = PacketRef::decode(&bytes).unwrap();
    let view = AccessRequestView::from_packet(&packet, SECRET).unwrap();
    let found = rec.map(|record| Found {
        record,
        matched_by: by,
    });
    summarise(&decide(nas, &view, found, live))
}

/// Same, but the directory finds the service.
fn run_dir(nas: &NasEntry, req: &AccessRequest<'_>, dir: &Directory, live: u32) -> Out {
    let mut buf = Vec::new();
    let bytes = req.encode(&mut buf, SECRET).unwrap().to_vec();
    let packet = PacketRef::decode(&bytes).unwrap();
    let view = AccessRequestView::from_packet(&packet, SECRET).unwrap();
    let found = find_service(dir, &view);
    let found_ref = found.as_ref().map(|(r, m)| Found {
        record: r,
        matched_by: *m,
    });
    summarise(&decide(nas, &view, found_ref, live))
}

fn pap(password: &str) -> AccessRequest<'_> {
    AccessRequest::pap(1, [7; 16], "alice", password)
}

#[test]
fn mikrotik_pap_accept_carries_tier_pool_and_interim() {
    let n = nas(VendorProfile::Mikrotik);
    let out = run(&n, &pap("s3cret"), Some(&service()), MatchedBy::Username, 0);
    assert!(out.accepted(), "{out:?}");
    assert_eq!(
        out.vendor(mikrotik::RATE_LIMIT),
        Some("2000k/10000k"),
        "rx/tx = upload/download"
    );
    assert_eq!(out.std(AttrType::FRAMED_POOL), Some("pool-a"));
    assert_eq!(out.std(AttrType::ACCT_INTERIM_INTERVAL), Some("300"));
    assert_eq!(out.std(AttrType::SESSION_TIMEOUT), None);
    assert_eq!(out.std(AttrType::FRAMED_IP_ADDRESS), None);
    assert!(!out.walled && !out.mschap);
}

#[test]
fn burst_static_ip_and_session_timeout() {
    let mut n = nas(VendorProfile::Mikrotik);
    n.session_timeout = Some(86_400);
    n.interim_interval = 600;
    let mut s = service();
    s.static_ip = Some(IpAddr::from([100, 64, 1, 2]));
    s.tier.burst = Some(Burst {
        download_kbps: 20_000,
        upload_kbps: 4_000,
        threshold_download_kbps: 8_000,
        threshold_upload_kbps: 1_500,
        time_secs: 10,
    });
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(
        out.vendor(mikrotik::RATE_LIMIT),
        Some("2000k/10000k 4000k/20000k 1500k/8000k 10/10")
    );
    assert_eq!(out.std(AttrType::FRAMED_IP_ADDRESS), Some("100.64.1.2"));
    assert_eq!(
        out.std(AttrType::FRAMED_POOL),
        None,
        "a static address needs no pool"
    );
    assert_eq!(out.std(AttrType::SESSION_TIMEOUT), Some("86400"));
    assert_eq!(out.std(AttrType::ACCT_INTERIM_INTERVAL), Some("600"));

    s.static_ip = Some("2001:db8::7".parse().unwrap());
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.std(AttrType::FRAMED_IPV6_ADDRESS), Some("2001:db8::7"));
    n.interim_interval = 0;
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.std(AttrType::ACCT_INTERIM_INTERVAL), None);
}

#[test]
fn each_vendor_profile_in_the_accept() {
    let s = service();
    let out = run(
        &nas(VendorProfile::Wispr),
        &pap("s3cret"),
        Some(&s),
        MatchedBy::Username,
        0,
    );
    assert_eq!(out.vendor(wispr::BANDWIDTH_MAX_UP), Some("2000000"));
    assert_eq!(out.vendor(wispr::BANDWIDTH_MAX_DOWN), Some("10000000"));

    let out = run(
        &nas(VendorProfile::Cisco),
        &pap("s3cret"),
        Some(&s),
        MatchedBy::Username,
        0,
    );
    let pairs: Vec<_> = out
        .attrs
        .iter()
        .filter(|(k, _)| *k == AttrKey::Vendor(cisco::AVPAIR))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(
        pairs,
        [
            "ip:sub-qos-policy-in=basic-10-in",
            "ip:sub-qos-policy-out=basic-10-out"
        ]
    );

    let out = run(
        &nas(VendorProfile::Juniper),
        &pap("s3cret"),
        Some(&s),
        MatchedBy::Username,
        0,
    );
    assert_eq!(out.vendor(juniper::QOS_PROFILE_NAME), Some("basic-10"));
    assert_eq!(
        out.vendor(juniper::INGRESS_POLICY_NAME),
        Some("basic-10-in")
    );
    assert_eq!(
        out.vendor(juniper::EGRESS_POLICY_NAME),
        Some("basic-10-out")
    );

    let out = run(
        &nas(VendorProfile::Huawei),
        &pap("s3cret"),
        Some(&s),
        MatchedBy::Username,
        0,
    );
    assert_eq!(out.vendor(huawei::INPUT_AVERAGE_RATE), Some("2000000"));
    assert_eq!(out.vendor(huawei::OUTPUT_AVERAGE_RATE), Some("10000000"));
    assert_eq!(out.vendor(huawei::INPUT_PEAK_RATE), None);

    let out = run(
        &nas(VendorProfile::Generic),
        &pap("s3cret"),
        Some(&s),
        MatchedBy::Username,
        0,
    );
    assert!(out.accepted());
    assert!(out.attrs.iter().all(|(k, _)| matches!(k, AttrKey::Std(_))));
    assert_eq!(out.attrs.len(), 2, "pool and interim only: {out:?}");
}

#[test]
fn password_failures() {
    let n = nas(VendorProfile::Mikrotik);
    let s = service();
    let out = run(&n, &pap("wrong"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::WrongPassword));
    assert_eq!(
        out.reply_message, None,
        "the reason is not told to the client"
    );
    // A prefix of the password is not the password.
    let out = run(&n, &pap("s3cre"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::WrongPassword));
    let mut none = service();
    none.password = None;
    let out = run(&n, &pap("anything"), Some(&none), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::PasswordNotSet));
    let bare = AccessRequest::new(1, [7; 16], Some("alice"));
    let out = run(&n, &bare, Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::NoCredentials));
    let out = run(&n, &pap("s3cret"), None, MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::UnknownUser));
}

#[test]
fn chap_with_and_without_challenge() {
    let n = nas(VendorProfile::Mikrotik);
    let s = service();
    for challenge in [None, Some([0x42; 16])] {
        let mut req = AccessRequest::new(3, [9; 16], Some("alice"));
        req.auth = ClientAuth::Chap {
            ident: 5,
            password: "s3cret",
            challenge,
        };
        assert!(run(&n, &req, Some(&s), MatchedBy::Username, 0).accepted());
        req.auth = ClientAuth::Chap {
            ident: 5,
            password: "S3cret",
            challenge,
        };
        assert_eq!(
            run(&n, &req, Some(&s), MatchedBy::Username, 0).reason,
            Some(RejectReason::WrongPassword)
        );
    }
}

fn mschap_req(password: &str) -> AccessRequest<'_> {
    let mut req = AccessRequest::new(4, [3; 16], Some("alice"));
    req.auth = ClientAuth::MsChap2 {
        ident: 0x21,
        password,
        authenticator_challenge: [0x11; 16],
        peer_challenge: [0x22; 16],
    };
    req
}

#[test]
fn mschapv2_success_and_failure() {
    let n = nas(VendorProfile::Mikrotik);
    let s = service();
    let out = run(&n, &mschap_req("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert!(out.accepted() && out.mschap, "{out:?}");
    let out = run(&n, &mschap_req("nope"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::WrongPassword));
    assert_eq!(
        out.mschap_ident,
        Some(0x21),
        "MS-CHAP-Error echoes the ident"
    );
    assert_eq!(RejectReason::WrongPassword.ms_chap_error_code(), 691);
    assert_eq!(RejectReason::Terminated.ms_chap_error_code(), 647);
    assert_eq!(RejectReason::SimultaneousUse.ms_chap_error_code(), 649);
    // A PAP reject carries no MS-CHAP ident.
    assert_eq!(
        run(&n, &pap("nope"), Some(&s), MatchedBy::Username, 0).mschap_ident,
        None
    );
}

#[test]
fn statuses() {
    let n = nas(VendorProfile::Mikrotik);
    let mut s = service();
    s.status = ServiceStatus::Terminated;
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::Terminated));
    // The password comes first: without it nothing is learnt about the service.
    let out = run(&n, &pap("wrong"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::WrongPassword));
    s.status = ServiceStatus::Pending;
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(
        out.reason,
        Some(RejectReason::NotActive(ServiceStatus::Pending))
    );
}

#[test]
fn suspended_rejected_with_message_or_walled_garden() {
    let mut s = service();
    s.status = ServiceStatus::Suspended;
    s.static_ip = Some(IpAddr::from([100, 64, 0, 9]));

    let mut n = nas(VendorProfile::Mikrotik);
    n.suspended = SuspendedAction::Reject {
        reply_message: Some("Your account is suspended".into()),
    };
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(
        out.reason,
        Some(RejectReason::NotActive(ServiceStatus::Suspended))
    );
    assert_eq!(
        out.reply_message.as_deref(),
        Some("Your account is suspended")
    );

    n.suspended = SuspendedAction::WalledGarden {
        address_list: Some("unpaid".into()),
        pool: Some("garden".into()),
    };
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert!(out.accepted() && out.walled, "{out:?}");
    assert_eq!(out.vendor(mikrotik::ADDRESS_LIST), Some("unpaid"));
    assert_eq!(out.std(AttrType::FRAMED_POOL), Some("garden"));
    assert_eq!(
        out.std(AttrType::FRAMED_IP_ADDRESS),
        None,
        "the garden's pool replaces the static address"
    );
    assert_eq!(out.vendor(mikrotik::RATE_LIMIT), Some("256k/256k"));

    // Without a pool the service keeps its addressing; other vendors get no address list.
    let mut c = nas(VendorProfile::Cisco);
    c.suspended = SuspendedAction::WalledGarden {
        address_list: Some("unpaid".into()),
        pool: None,
    };
    let out = run(&c, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert!(out.walled);
    assert_eq!(out.vendor(mikrotik::ADDRESS_LIST), None);
    assert_eq!(out.std(AttrType::FRAMED_IP_ADDRESS), Some("100.64.0.9"));
    assert_eq!(
        out.vendor(cisco::AVPAIR),
        Some("ip:sub-qos-policy-in=walled-garden-in")
    );
    // Wrong password still first, even for the garden.
    let out = run(&c, &pap("x"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::WrongPassword));
}

#[test]
fn bound_nas_and_simultaneous_use() {
    let n = nas(VendorProfile::Mikrotik);
    let mut s = service();
    s.nas_id = Some(NasId::generate());
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
    assert_eq!(out.reason, Some(RejectReason::WrongNas));
    s.nas_id = Some(n.id);
    assert!(run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0).accepted());

    let s = service();
    let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 1);
    assert_eq!(out.reason, Some(RejectReason::SimultaneousUse));
    let mut two = service();
    two.simultaneous_use = 2;
    assert!(run(&n, &pap("s3cret"), Some(&two), MatchedBy::Username, 1).accepted());
    assert!(!run(&n, &pap("s3cret"), Some(&two), MatchedBy::Username, 2).accepted());
    let mut unlimited = service();
    unlimited.simultaneous_use = 0;
    assert!(run(
        &n,
        &pap("s3cret"),
        Some(&unlimited),
        MatchedBy::Username,
        50
    )
    .accepted());
}

fn ipoe() -> AuthRecord {
    AuthRecord {
        username: None,
        password: None,
        access_kind: AccessKind::Ipoe,
        mac: Some("00:11:22:33:44:55".parse().unwrap()),
        circuit_id: Some("olt2:2/2/2".into()),
        ..service()
    }
}

#[test]
fn mac_and_circuit_authorisation() {
    let n = nas(VendorProfile::Mikrotik);
    let d = Directory::new();
    let ipoe = ipoe();
    let pppoe = service();
    d.apply([
        DirectoryChange::UpsertService(ipoe.clone()),
        DirectoryChange::UpsertService(pppoe.clone()),
    ]);

    // MikroTik DHCP: User-Name is the MAC, no password.
    let req = AccessRequest::new(1, [1; 16], Some("00:11:22:33:44:55"));
    assert!(run_dir(&n, &req, &d, 0).accepted());
    // Only Calling-Station-Id, in RFC 3580 notation.
    let mut req = AccessRequest::new(1, [1; 16], Some("whatever"));
    req.calling_station_id = Some("00-11-22-33-44-55");
    assert!(run_dir(&n, &req, &d, 0).accepted());
    // Only the circuit.
    let mut req = AccessRequest::new(1, [1; 16], None);
    req.circuit_id = Some("olt2:2/2/2");
    assert!(run_dir(&n, &req, &d, 0).accepted());
    // Nothing known.
    let mut req = AccessRequest::new(1, [1; 16], None);
    req.calling_station_id = Some("66:66:66:66:66:66");
    assert_eq!(
        run_dir(&n, &req, &d, 0).reason,
        Some(RejectReason::UnknownUser)
    );

    // A PPPoE login that types someone's MAC as user name gets nowhere without their
    // password, and a wrong login is not rescued by the Calling-Station-Id.
    let req = AccessRequest::pap(1, [1; 16], "aa:bb:cc:dd:ee:ff", "guess");
    assert_eq!(
        run_dir(&n, &req, &d, 0).reason,
        Some(RejectReason::UnknownUser)
    );
    let mut req = AccessRequest::pap(1, [1; 16], "alicia", "guess");
    req.calling_station_id = Some("00:11:22:33:44:55");
    assert_eq!(
        run_dir(&n, &req, &d, 0).reason,
        Some(RejectReason::UnknownUser)
    );
    // Hotspot MAC login (User-Name = MAC, with a password) for a non-PPPoE service works.
    let req = AccessRequest::pap(1, [1; 16], "00:11:22:33:44:55", "");
    assert!(run_dir(&n, &req, &d, 0).accepted());
    // The login of an IPoE service needs no password either.
    let mut named = ipoe.clone();
    named.username = Some("cpe-77".into());
    d.apply([DirectoryChange::UpsertService(named)]);
    let req = AccessRequest::new(1, [1; 16], Some("cpe-77"));
    assert!(run_dir(&n, &req, &d, 0).accepted());
}

#[test]
fn unsupported_and_malformed() {
    let n = nas(VendorProfile::Mikrotik);
    let s = service();
    // EAP: a request with EAP-Message and Message-Authenticator.
    let mut buf = Vec::new();
    let mut b = lastmile_radius_codec::PacketBuilder::new(
        &mut buf,
        lastmile_radius_codec::Code::AccessRequest,
        1,
    );
    b.set_authenticator(&[5; 16]);
    b.add_text(AttrType::USER_NAME, "alice").unwrap();
    b.add(
        AttrType::EAP_MESSAGE,
        &[2, 1, 0, 10, 1, b'a', b'l', b'i', b'c', b'e'],
    )
    .unwrap();
    let bytes = b.finish_request(SECRET).to_vec();
    let p = PacketRef::decode(&bytes).unwrap();
    let view = AccessRequestView::from_packet(&p, SECRET).unwrap();
    let found = Found {
        record: &s,
        matched_by: MatchedBy::Username,
    };
    assert_eq!(
        decide(&n, &view, Some(found), 0).reason(),
        Some(RejectReason::UnsupportedMethod)
    );

    // PAP and CHAP together.
    let mut buf = Vec::new();
    let mut b = lastmile_radius_codec::PacketBuilder::new(
        &mut buf,
        lastmile_radius_codec::Code::AccessRequest,
        1,
    );
    b.set_authenticator(&[5; 16]);
    b.add_user_password(b"x", SECRET).unwrap();
    b.add(AttrType::CHAP_PASSWORD, &[0; 17]).unwrap();
    let bytes = b.finish_request(SECRET).to_vec();
    let p = PacketRef::decode(&bytes).unwrap();
    assert_eq!(
        AccessRequestView::from_packet(&p, SECRET).err(),
        Some(MalformedRequest::ConflictingCredentials)
    );
}

#[test]
fn the_widest_accept_fits_the_attribute_array() {
    let mut n = nas(VendorProfile::Huawei);
    n.session_timeout = Some(1);
    let mut s = service();
    s.tier.burst = Some(Burst {
        download_kbps: 1,
        upload_kbps: 1,
        threshold_download_kbps: 1,
        threshold_upload_kbps: 1,
        time_secs: 1,
    });
    s.static_ip = Some(IpAddr::V4(Ipv4Addr::LOCALHOST));
    for vendor in [
        VendorProfile::Mikrotik,
        VendorProfile::Huawei,
        VendorProfile::Juniper,
        VendorProfile::Cisco,
        VendorProfile::Wispr,
    ] {
        n.vendor = vendor;
        for suspended in [false, true] {
            let mut s = s.clone();
            if suspended {
                s.status = ServiceStatus::Suspended;
                n.suspended = SuspendedAction::WalledGarden {
                    address_list: Some("l".into()),
                    pool: Some("p".into()),
                };
            }
            let out = run(&n, &pap("s3cret"), Some(&s), MatchedBy::Username, 0);
            assert!(out.accepted());
            assert!(
                out.attrs.len() < ReplyAttrs::CAPACITY,
                "{vendor:?}: {out:?}"
            );
        }
    }
}
