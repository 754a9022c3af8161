//! Interoperability with FreeRADIUS's `radclient` (Debian: freeradius-utils): an independent
//! implementation of the client side checks our encoding, signatures and accounting.
//!
//! Without radclient these tests print a note and pass, unless `LASTMILE_REQUIRE_RADCLIENT=1`
//! (CI sets it), which makes a missing radclient a failure.

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{nas_at, service, Harness, Options};
use lastmile_domain::nas::VendorProfile;
use lastmile_radius::{DropReason, RejectReason, RequestKind, RequestResult};
use lastmile_radius_codec::acct::AcctStatusType;

const SECRET: &str = "testing123";

/// Whether radclient can be run; panics if it cannot and must.
fn radclient_available() -> bool {
    let found = std::process::Command::new("radclient")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        if std::env::var("LASTMILE_REQUIRE_RADCLIENT").as_deref() == Ok("1") {
            panic!(
                "radclient not found but LASTMILE_REQUIRE_RADCLIENT=1: \
                 install freeradius-utils (apt-get install -y freeradius-utils)"
            );
        }
        eprintln!("note: radclient not found, skipping (install freeradius-utils to run this)");
    }
    found
}

struct Run {
    ok: bool,
    stdout: String,
}

/// Runs `radclient -x` with `attributes` on stdin against `port` with `command` (auth, acct).
/// One retry after one second: used to observe drops, never to wait for the server. Runs on a
/// blocking thread, so the server keeps being polled meanwhile.
async fn radclient(port: u16, command: &str, attributes: &str) -> Run {
    let command = command.to_string();
    let attributes = attributes.to_string();
    let out = tokio::task::spawn_blocking(move || {
        use std::io::Write as _;
        let mut child = std::process::Command::new("radclient")
            .args(["-x", "-r", "1", "-t", "1"])
            .arg(format!("127.0.0.1:{port}"))
            .arg(command)
            .arg(SECRET)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn radclient");
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(attributes.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    });
    let out = tokio::time::timeout(Duration::from_secs(20), out)
        .await
        .expect("radclient hung")
        .unwrap();
    let stdout =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    Run {
        ok: out.status.success(),
        stdout,
    }
}

async fn harness() -> Harness {
    let nas = nas_at([127, 0, 0, 1], "radclient", VendorProfile::Mikrotik);
    Harness::start_with(
        vec![nas],
        vec![service("alice", "s3cret")],
        Options::default(),
    )
    .await
}

#[tokio::test]
async fn radclient_pap_accept_and_reject() {
    if !radclient_available() {
        return;
    }
    let h = harness().await;
    let port = h.auth.port();
    let r = radclient(
        port,
        "auth",
        "User-Name = alice, User-Password = s3cret, Message-Authenticator = 0x00\n",
    )
    .await;
    assert!(r.stdout.contains("Received Access-Accept"), "{}", r.stdout);
    assert!(r.ok, "{}", r.stdout);
    assert!(
        r.stdout.contains("Mikrotik-Rate-Limit = \"5000k/20000k\""),
        "radclient decodes our vendor attribute: {}",
        r.stdout
    );
    assert!(
        r.stdout.contains("Acct-Interim-Interval = 300"),
        "{}",
        r.stdout
    );

    let r = radclient(
        port,
        "auth",
        "User-Name = alice, User-Password = wrong, Message-Authenticator = 0x00\n",
    )
    .await;
    assert!(r.stdout.contains("Received Access-Reject"), "{}", r.stdout);
    let m = h.metrics.snapshot();
    assert_eq!(
        m.requests("radclient", RequestKind::Access, RequestResult::Accept),
        1
    );
    assert_eq!(
        m.requests(
            "radclient",
            RequestKind::Access,
            RequestResult::Reject(RejectReason::WrongPassword)
        ),
        1
    );
    h.stop().await;
}

#[tokio::test]
async fn radclient_chap() {
    if !radclient_available() {
        return;
    }
    let h = harness().await;
    // radclient computes CHAP-Password from the cleartext given here.
    let r = radclient(
        h.auth.port(),
        "auth",
        "User-Name = alice, CHAP-Password = s3cret, Message-Authenticator = 0x00\n",
    )
    .await;
    assert!(r.stdout.contains("Received Access-Accept"), "{}", r.stdout);
    let r = radclient(
        h.auth.port(),
        "auth",
        "User-Name = alice, CHAP-Password = nope, Message-Authenticator = 0x00\n",
    )
    .await;
    assert!(r.stdout.contains("Received Access-Reject"), "{}", r.stdout);
    h.stop().await;
}

#[tokio::test]
async fn radclient_without_message_authenticator_is_dropped() {
    if !radclient_available() {
        return;
    }
    let h = harness().await;
    let r = radclient(
        h.auth.port(),
        "auth",
        "User-Name = alice, User-Password = s3cret\n",
    )
    .await;
    assert!(!r.stdout.contains("Received"), "{}", r.stdout);
    assert!(!r.ok);
    let m = h.metrics.snapshot();
    // radclient sent it twice (-r 1): both dropped, both counted.
    assert!(
        m.dropped("radclient", DropReason::MissingMessageAuthenticator) >= 1,
        "{m:?}"
    );
    let r = radclient(
        h.auth.port(),
        "auth",
        "User-Name = alice, User-Password = s3cret, Message-Authenticator = 0x00\n",
    )
    .await;
    assert!(r.stdout.contains("Received Access-Accept"), "{}", r.stdout);
    h.stop().await;
}

#[tokio::test]
async fn radclient_accounting_with_gigawords_and_accounting_on() {
    if !radclient_available() {
        return;
    }
    let mut h = harness().await;
    let port = h.acct.port();
    let base = "User-Name = alice, Acct-Session-Id = \"rc-1\", \
                Framed-IP-Address = 100.64.0.9, NAS-Port-Id = \"ether5\"";
    let r = radclient(port, "acct", &format!("Acct-Status-Type = Start, {base}\n")).await;
    assert!(
        r.stdout.contains("Received Accounting-Response"),
        "{}",
        r.stdout
    );
    let start = h.next_record().await;
    assert_eq!(start.status, AcctStatusType::Start);
    assert!(start.service_id.is_some());
    assert_eq!(start.nas_port_id.as_deref(), Some("ether5"));

    let r = radclient(
        port,
        "acct",
        &format!(
            "Acct-Status-Type = Interim-Update, {base}, Acct-Session-Time = 60, \
             Acct-Input-Octets = 1000, Acct-Input-Gigawords = 2, \
             Acct-Output-Octets = 5, Acct-Output-Gigawords = 3\n"
        ),
    )
    .await;
    assert!(
        r.stdout.contains("Received Accounting-Response"),
        "{}",
        r.stdout
    );
    let interim = h.next_record().await;
    assert_eq!(interim.status, AcctStatusType::InterimUpdate);
    assert_eq!(interim.input_octets, Some((2 << 32) + 1000));
    assert_eq!(interim.output_octets, Some((3 << 32) + 5));
    assert_eq!(interim.session_time, Some(60));

    let r = radclient(
        port,
        "acct",
        &format!(
            "Acct-Status-Type = Stop, {base}, Acct-Session-Time = 120, \
             Acct-Terminate-Cause = User-Request, Acct-Output-Gigawords = 1\n"
        ),
    )
    .await;
    assert!(
        r.stdout.contains("Received Accounting-Response"),
        "{}",
        r.stdout
    );
    let stop = h.next_record().await;
    assert_eq!(stop.status, AcctStatusType::Stop);
    assert_eq!(stop.terminate_cause, Some(1));
    assert_eq!(stop.output_octets, Some(1 << 32));

    let r = radclient(port, "acct", "Acct-Status-Type = Accounting-On\n").await;
    assert!(
        r.stdout.contains("Received Accounting-Response"),
        "{}",
        r.stdout
    );
    let on = h.next_record().await;
    assert_eq!(on.status, AcctStatusType::AccountingOn);
    h.stop().await;
}
