//! End to end over UDP: Accounting-Requests reach the sink, and the NAS hears back only once
//! the sink has returned `Ok`.

mod common;

use std::net::Ipv4Addr;
use std::sync::atomic::Ordering;

use common::{nas_at, service, sync, Harness, Options, SECRET, WAIT};
use lastmile_domain::nas::VendorProfile;
use lastmile_radius::client::{self, AccountingRequest, Client};
use lastmile_radius::{DropReason, RequestKind, RequestResult, SessionCounter};
use lastmile_radius_codec::acct::AcctStatusType;
use lastmile_radius_codec::{AttrType, Code};

fn gated() -> Options {
    Options {
        gated: true,
        ..Options::default()
    }
}

#[tokio::test]
async fn start_interim_stop_with_gigawords_reach_the_sink_before_the_response() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let mut alice = service("alice", "pw");
    alice.mac = Some("aa:bb:cc:dd:ee:ff".parse().unwrap());
    let mut h = Harness::start_with(vec![nas.clone()], vec![alice.clone()], gated()).await;
    let mut c = Client::connect(h.acct).await.unwrap();
    let mut buf = Vec::new();

    let mut start = AccountingRequest::new(1, AcctStatusType::Start);
    start.session_id = Some("81a00001");
    start.user_name = Some("alice");
    start.framed_ip = Some(Ipv4Addr::new(100, 64, 0, 7));
    start.calling_station_id = Some("AA-BB-CC-DD-EE-FF");
    start.delay_time = Some(4);
    let bytes = start.encode(&mut buf, SECRET).unwrap().to_vec();
    c.send(&bytes).await.unwrap();
    let rec = h.next_record().await;
    // The sink has the record but has not returned: no answer may be out yet.
    assert_eq!(c.try_recv(), None);
    assert_eq!(h.sink.returned_ok.load(Ordering::SeqCst), 0);
    h.release();
    let reply = c.recv(WAIT).await.unwrap();
    assert_eq!(h.sink.returned_ok.load(Ordering::SeqCst), 1);
    let p = client::verify_reply(&reply, &bytes, SECRET, false).unwrap();
    assert_eq!(p.code(), Code::AccountingResponse);
    assert_eq!(
        p.find(AttrType::MESSAGE_AUTHENTICATOR),
        None,
        "none in the response when the request had none"
    );

    assert_eq!(rec.status, AcctStatusType::Start);
    assert_eq!(rec.nas_id, nas.id);
    assert_eq!(rec.service_id, Some(alice.service_id));
    assert_eq!(rec.subscriber_id, Some(alice.subscriber_id));
    assert_eq!(rec.acct_session_id.as_deref(), Some("81a00001"));
    assert_eq!(rec.framed_ip, Some(Ipv4Addr::new(100, 64, 0, 7)));
    assert_eq!(rec.calling_station_id.as_deref(), Some("AA-BB-CC-DD-EE-FF"));
    let delay = rec.received_at.duration_since(rec.event_time);
    assert_eq!(
        delay.as_secs(),
        4,
        "event time = received − Acct-Delay-Time"
    );
    assert_eq!(h.sessions.live_sessions(alice.service_id), 1);

    // Interim with counters past 4 GiB, and an Event-Timestamp; found by MAC alone.
    let mut interim = AccountingRequest::new(2, AcctStatusType::InterimUpdate);
    interim.session_id = Some("81a00001");
    interim.calling_station_id = Some("aabb.ccdd.eeff");
    interim.input_octets = Some((1 << 32) + 1000);
    interim.output_octets = Some((5 << 32) + 7);
    interim.input_packets = Some(10);
    interim.output_packets = Some(20);
    interim.session_time = Some(300);
    interim.event_timestamp = Some(1_700_000_000);
    interim.message_authenticator = true;
    let bytes = interim.encode(&mut buf, SECRET).unwrap().to_vec();
    c.send(&bytes).await.unwrap();
    let rec = h.next_record().await;
    h.release();
    let reply = c.recv(WAIT).await.unwrap();
    let p = client::verify_reply(&reply, &bytes, SECRET, true).unwrap();
    assert_eq!(p.code(), Code::AccountingResponse);
    assert_eq!(rec.service_id, Some(alice.service_id));
    assert_eq!(rec.input_octets, Some((1 << 32) + 1000));
    assert_eq!(rec.output_octets, Some((5 << 32) + 7));
    assert_eq!(
        rec.download(),
        (5 << 32) + 7,
        "download = what the NAS sent"
    );
    assert_eq!(rec.upload(), (1 << 32) + 1000);
    assert_eq!((rec.input_packets, rec.output_packets), (10, 20));
    assert_eq!(rec.session_time, Some(300));
    assert_eq!(rec.event_time.as_second(), 1_700_000_000);

    let mut stop = AccountingRequest::new(3, AcctStatusType::Stop);
    stop.session_id = Some("81a00001");
    stop.user_name = Some("alice");
    stop.terminate_cause = Some(1);
    stop.output_octets = Some(u64::from(u32::MAX) + 1);
    let bytes = stop.encode(&mut buf, SECRET).unwrap().to_vec();
    c.send(&bytes).await.unwrap();
    let rec = h.next_record().await;
    h.release();
    c.recv(WAIT).await.unwrap();
    assert_eq!(rec.status, AcctStatusType::Stop);
    assert_eq!(rec.terminate_cause, Some(1));
    assert_eq!(rec.output_octets, Some(1 << 32));
    assert_eq!(
        rec.input_octets, None,
        "a direction the Stop did not carry stays unknown"
    );
    assert_eq!(h.sessions.live_sessions(alice.service_id), 0);
    let metrics = h.metrics.clone();
    // Stopping waits for every accounting task, so the counters are final.
    h.stop().await;
    assert_eq!(
        metrics
            .snapshot()
            .requests("core-1", RequestKind::Accounting, RequestResult::Recorded),
        3
    );
}

#[tokio::test]
async fn a_failing_sink_gets_no_response_and_the_retransmission_is_processed_again() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let mut h = Harness::start_with(
        vec![nas],
        vec![service("bob", "pw")],
        Options {
            failing: true,
            ..Options::default()
        },
    )
    .await;
    let mut c = Client::connect(h.acct).await.unwrap();
    let mut buf = Vec::new();
    let mut start = AccountingRequest::new(1, AcctStatusType::Start);
    start.session_id = Some("s-1");
    start.user_name = Some("bob");
    let bytes = start.encode(&mut buf, SECRET).unwrap().to_vec();
    c.send(&bytes).await.unwrap();
    h.next_record().await;
    // The test runtime has one thread: the accounting task ran on from the sink's Err to its
    // end (forgetting the cache entry, counting the failure) before this test resumed. So
    // the NAS's retransmission reaches the sink again instead of being dropped.
    c.send(&bytes).await.unwrap();
    h.next_record().await;
    sync(&mut c, 200).await;
    assert_eq!(c.try_recv(), None);
    let m = h.metrics.snapshot();
    assert_eq!(m.dropped_total(DropReason::DuplicateInProgress), 0);
    assert_eq!(m.dropped("core-1", DropReason::SinkFailed), 2);

    // Once the sink recovers, the next retransmission is answered.
    h.sink.fail.store(false, Ordering::SeqCst);
    let reply = c.exchange(&bytes, WAIT).await.unwrap();
    h.next_record().await;
    client::verify_reply(&reply, &bytes, SECRET, false).unwrap();
    h.stop().await;
}

#[tokio::test]
async fn a_duplicate_while_writing_is_dropped_and_the_write_happens_once() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let mut h = Harness::start_with(vec![nas], vec![service("carl", "pw")], gated()).await;
    let mut c = Client::connect(h.acct).await.unwrap();
    let mut buf = Vec::new();
    let mut start = AccountingRequest::new(1, AcctStatusType::Start);
    start.session_id = Some("s-2");
    start.user_name = Some("carl");
    let bytes = start.encode(&mut buf, SECRET).unwrap().to_vec();
    c.send(&bytes).await.unwrap();
    h.next_record().await;
    c.send(&bytes).await.unwrap();
    sync(&mut c, 201).await;
    assert_eq!(
        h.metrics
            .snapshot()
            .dropped("core-1", DropReason::DuplicateInProgress),
        1
    );
    h.release();
    let first = c.recv(WAIT).await.unwrap();
    // Now answered from the cache, without another write.
    let again = c.exchange(&bytes, WAIT).await.unwrap();
    assert_eq!(first, again);
    assert!(h.records.try_recv().is_err(), "written once");
    assert_eq!(
        h.metrics
            .snapshot()
            .requests("core-1", RequestKind::Accounting, RequestResult::Retransmit),
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn accounting_on_clears_the_nas_sessions() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let dana = service("dana", "pw");
    let mut h = Harness::start(vec![nas.clone()], vec![dana.clone()]).await;
    h.sessions
        .seed([(dana.service_id, nas.id, "old".to_string())]);
    let mut c = Client::connect(h.acct).await.unwrap();
    let mut buf = Vec::new();
    let mut on = AccountingRequest::new(5, AcctStatusType::AccountingOn);
    on.proxy_state = Some(b"ps");
    let bytes = on.encode(&mut buf, SECRET).unwrap().to_vec();
    let reply = c.exchange(&bytes, WAIT).await.unwrap();
    let p = client::verify_reply(&reply, &bytes, SECRET, false).unwrap();
    assert_eq!(p.get(AttrType::PROXY_STATE), Some(&b"ps"[..]));
    let rec = h.next_record().await;
    assert_eq!(rec.status, AcctStatusType::AccountingOn);
    assert_eq!(rec.service_id, None);
    assert_eq!(h.sessions.live_sessions(dana.service_id), 0);
    h.stop().await;
}

#[tokio::test]
async fn bad_accounting_is_dropped_and_counted() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let h = Harness::start(vec![nas], vec![]).await;
    let mut c = Client::connect(h.acct).await.unwrap();
    let mut buf = Vec::new();
    // Wrong secret: the Request Authenticator does not verify.
    let start = AccountingRequest::new(1, AcctStatusType::Start);
    c.send(start.encode(&mut buf, b"wrong-secret").unwrap())
        .await
        .unwrap();
    // No Acct-Status-Type at all.
    let b = lastmile_radius_codec::PacketBuilder::new(&mut buf, Code::AccountingRequest, 2)
        .without_message_authenticator();
    c.send(b.finish_request(SECRET)).await.unwrap();
    // An Access-Request on the accounting port.
    let req = client::AccessRequest::pap(3, [3; 16], "x", "y");
    c.send(req.encode(&mut buf, SECRET).unwrap()).await.unwrap();
    sync(&mut c, 202).await;
    assert_eq!(c.try_recv(), None);
    let m = h.metrics.snapshot();
    assert_eq!(m.dropped("core-1", DropReason::BadAuthenticator), 1);
    assert_eq!(m.dropped("core-1", DropReason::InvalidAccounting), 1);
    assert_eq!(m.dropped("core-1", DropReason::UnexpectedCode), 1);
    h.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_the_writes_in_flight() {
    let nas = nas_at([127, 0, 0, 1], "core-1", VendorProfile::Mikrotik);
    let mut h = Harness::start_with(vec![nas], vec![service("eve", "pw")], gated()).await;
    let mut c = Client::connect(h.acct).await.unwrap();
    let mut buf = Vec::new();
    let mut start = AccountingRequest::new(1, AcctStatusType::Start);
    start.session_id = Some("s-9");
    start.user_name = Some("eve");
    let bytes = start.encode(&mut buf, SECRET).unwrap().to_vec();
    c.send(&bytes).await.unwrap();
    h.next_record().await;
    h.shutdown();
    // The write holds a permit the server waits for: it cannot have finished.
    tokio::task::yield_now().await;
    assert!(!h.is_finished());
    h.release();
    let reply = c.recv(WAIT).await.expect("the in-flight write is answered");
    client::verify_reply(&reply, &bytes, SECRET, false).unwrap();
    h.stop().await;
}
