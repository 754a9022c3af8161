//! The CoA / Disconnect client against a NAS stand-in: a UDP socket that checks what it
//! receives as a NAS would (signed Request Authenticator, Message-Authenticator) and answers.

use std::net::IpAddr;
use std::time::Duration;

use lastmile_domain::ids::NasId;
use lastmile_domain::nas::VendorProfile;
use lastmile_radius::{CoaClient, CoaError, CoaKind, CoaOutcome, NasEntry, SessionIdent, Tier};
use lastmile_radius_codec::dict::{mikrotik, ErrorCause};
use lastmile_radius_codec::{auth, AttrType, Code, PacketBuilder, PacketRef};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

const SECRET: &[u8] = b"coa-secret";

/// What the stand-in does with each request.
#[derive(Clone, Copy)]
enum Answer {
    Ack,
    Nak(u32),
    Silent,
    WrongSecret,
    /// A reply with another identifier first, then the right ACK.
    StrayThenAck,
}

/// A request as the stand-in saw it.
#[derive(Debug)]
struct Seen {
    code: Code,
    bytes: Vec<u8>,
    rate_limit: Option<String>,
    user_name: Option<String>,
    session_id: Option<String>,
}

async fn stand_in(answer: Answer) -> (u16, mpsc::UnboundedReceiver<Seen>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = socket.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut out = Vec::new();
        loop {
            let Ok((n, src)) = socket.recv_from(&mut buf).await else {
                return;
            };
            let p = PacketRef::decode(&buf[..n]).unwrap();
            // What a NAS checks: the signed authenticator and the Message-Authenticator.
            auth::verify_request(&p, SECRET, false).expect("request authenticator");
            auth::verify_message_authenticator(&p, SECRET).expect("Message-Authenticator");
            let _ = tx.send(Seen {
                code: p.code(),
                bytes: buf[..n].to_vec(),
                rate_limit: p
                    .vendor_text(mikrotik::RATE_LIMIT)
                    .unwrap()
                    .map(String::from),
                user_name: p.text(AttrType::USER_NAME).unwrap().map(String::from),
                session_id: p.text(AttrType::ACCT_SESSION_ID).unwrap().map(String::from),
            });
            let (ack, nak) = match p.code() {
                Code::CoaRequest => (Code::CoaAck, Code::CoaNak),
                _ => (Code::DisconnectAck, Code::DisconnectNak),
            };
            let mut reply = |code, cause: Option<u32>, id: u8, secret: &[u8]| {
                let mut b = PacketBuilder::new(&mut out, code, id);
                if let Some(c) = cause {
                    b.add_u32(AttrType::ERROR_CAUSE, c).unwrap();
                }
                b.finish_reply(&p, secret).to_vec()
            };
            let replies = match answer {
                Answer::Silent => vec![],
                Answer::Ack => vec![reply(ack, None, p.identifier(), SECRET)],
                Answer::Nak(c) => vec![reply(nak, Some(c), p.identifier(), SECRET)],
                Answer::WrongSecret => vec![reply(ack, None, p.identifier(), b"other")],
                Answer::StrayThenAck => vec![
                    reply(ack, None, p.identifier().wrapping_add(1), SECRET),
                    reply(ack, None, p.identifier(), SECRET),
                ],
            };
            for r in replies {
                socket.send_to(&r, src).await.unwrap();
            }
        }
    });
    (port, rx)
}

fn nas(port: u16, vendor: VendorProfile) -> NasEntry {
    let mut n = NasEntry::new(
        NasId::generate(),
        "core-1",
        IpAddr::from([127, 0, 0, 1]),
        SECRET.to_vec(),
        vendor,
    );
    n.coa_port = port;
    n
}

fn session() -> SessionIdent {
    SessionIdent {
        user_name: Some("alice".into()),
        acct_session_id: Some("81a00001".into()),
        framed_ip: Some([100, 64, 0, 7].into()),
        nas_ip_address: Some([127, 0, 0, 1].into()),
    }
}

fn tier() -> Tier {
    Tier {
        download_kbps: 50_000,
        upload_kbps: 10_000,
        burst: None,
        policy_name: "fast-50".into(),
    }
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn coa_with_the_new_tier_is_acked() {
    let (port, mut seen) = stand_in(Answer::Ack).await;
    let client = CoaClient::new();
    let (kind, outcome) = client
        .apply_tier(
            &nas(port, VendorProfile::Mikrotik),
            &session(),
            &tier(),
            T,
            0,
        )
        .await
        .unwrap();
    assert_eq!((kind, outcome), (CoaKind::Coa, CoaOutcome::Ack));
    let s = seen.recv().await.unwrap();
    assert_eq!(s.code, Code::CoaRequest);
    assert_eq!(s.rate_limit.as_deref(), Some("10000k/50000k"));
    assert_eq!(s.user_name.as_deref(), Some("alice"));
    assert_eq!(s.session_id.as_deref(), Some("81a00001"));
}

#[tokio::test]
async fn generic_nas_gets_a_disconnect_and_a_nak_names_its_cause() {
    let (port, mut seen) = stand_in(Answer::Nak(503)).await;
    let (kind, outcome) = CoaClient::new()
        .apply_tier(
            &nas(port, VendorProfile::Generic),
            &session(),
            &tier(),
            T,
            0,
        )
        .await
        .unwrap();
    assert_eq!(kind, CoaKind::Disconnect);
    assert_eq!(
        outcome,
        CoaOutcome::Nak {
            error_cause: Some(ErrorCause::SessionContextNotFound)
        }
    );
    let s = seen.recv().await.unwrap();
    assert_eq!(s.code, Code::DisconnectRequest);
    assert_eq!(s.rate_limit, None);
}

#[tokio::test]
async fn a_silent_nas_times_out_after_identical_retries() {
    let (port, mut seen) = stand_in(Answer::Silent).await;
    let r = CoaClient::new()
        .send(
            &nas(port, VendorProfile::Mikrotik),
            CoaKind::Disconnect,
            &session(),
            &Default::default(),
            Duration::from_millis(50),
            2,
        )
        .await;
    assert!(matches!(r, Err(CoaError::Timeout)), "{r:?}");
    let first = seen.recv().await.unwrap();
    for _ in 0..2 {
        let again = seen.recv().await.unwrap();
        assert_eq!(again.bytes, first.bytes, "a retry resends the same request");
    }
    assert!(seen.try_recv().is_err());
}

#[tokio::test]
async fn replies_that_do_not_verify_are_refused_and_strays_ignored() {
    let (port, _seen) = stand_in(Answer::WrongSecret).await;
    let r = CoaClient::new()
        .send(
            &nas(port, VendorProfile::Mikrotik),
            CoaKind::Coa,
            &session(),
            &Default::default(),
            Duration::from_millis(100),
            0,
        )
        .await;
    assert!(matches!(r, Err(CoaError::BadReply(_))), "{r:?}");

    let (port, _seen) = stand_in(Answer::StrayThenAck).await;
    let r = CoaClient::new()
        .send(
            &nas(port, VendorProfile::Mikrotik),
            CoaKind::Coa,
            &session(),
            &Default::default(),
            T,
            0,
        )
        .await
        .unwrap();
    assert_eq!(r, CoaOutcome::Ack);
}
