//! `lastmile serve` with RADIUS, end to end, on SQLite and on PostgreSQL:
//! - two processes on one database: a change made through one node's API is answered by the
//!   other node's RADIUS server within a second (each node's directory follows the store's
//!   change feed);
//! - a plan change through the API reaches a live session's NAS as a CoA-Request with the new
//!   rate; the NAS's ACK marks the job succeeded and the session's accepted policy.

mod common;

use common::lastmile;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, UdpSocket};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use lastmile_radius::client::{self, AccessRequest, AccountingRequest};
use lastmile_radius_codec::Code;

const SECRET: &str = "two-nodes-secret";

/// One HTTP/1.1 exchange; returns the status and the body.
fn http(addr: &str, method: &str, path: &str, token: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("write");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read");
    let status = out.get(9..12).and_then(|s| s.parse().ok()).expect("status");
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn post(addr: &str, path: &str, token: &str, body: serde_json::Value) -> serde_json::Value {
    let (status, text) = http(addr, "POST", path, token, &body.to_string());
    assert!((200..300).contains(&status), "{path}: {status} {text}");
    serde_json::from_str(&text).expect("JSON")
}

struct Node {
    child: Child,
    http: String,
    radius: String,
    acct: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn node(db: &str, dir: &std::path::Path) -> Node {
    let mut child = lastmile(db, dir)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--radius-auth",
            "127.0.0.1:0",
            "--radius-acct",
            "127.0.0.1:0",
            "--billing-scheduler",
            "false",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let (mut http, mut radius, mut acct) = (None, None, None);
    while http.is_none() || radius.is_none() {
        let line = lines.next().expect("serve exited early").expect("a line");
        let field = |name: &str| {
            line.split(name)
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .map(str::to_string)
        };
        if line.contains("RADIUS listening") {
            radius = field("auth=");
            acct = field("acct=");
        } else if line.contains("serving") {
            http = field("addr=");
        }
    }
    // Keep reading so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Node {
        child,
        http: http.expect("http address"),
        radius: radius.expect("radius address"),
        acct: acct.expect("accounting address"),
    }
}

/// An Access-Request for alice to `server`; the reply's code.
fn access(sock: &UdpSocket, server: &str, id: u8) -> Option<Code> {
    let mut buf = Vec::new();
    // A fresh authenticator each time: a repeat would be answered from the retransmission
    // cache, not decided anew.
    let auth = client::random_authenticator().expect("random");
    let req = AccessRequest::pap(id, auth, "alice", "alice-pw")
        .encode(&mut buf, SECRET.as_bytes())
        .expect("encode")
        .to_vec();
    sock.send_to(&req, server).expect("send");
    let mut reply = [0u8; 4096];
    let n = sock.recv(&mut reply).ok()?;
    let p = client::verify_reply(reply.get(..n)?, &req, SECRET.as_bytes(), true).ok()?;
    Some(p.code())
}

/// Asks again and again (each question waits for its answer) until the answer is `want`;
/// returns how long that took after `since`.
fn until(sock: &UdpSocket, server: &str, want: Code, since: Instant) -> Duration {
    let mut id = 0u8;
    while since.elapsed() < Duration::from_secs(10) {
        if access(sock, server, id) == Some(want) {
            return since.elapsed();
        }
        id = id.wrapping_add(1);
    }
    panic!("node never answered {want:?}");
}

fn admin_token(db: &str, dir: &std::path::Path) -> String {
    let out = lastmile(db, dir)
        .args(["token", "create", "--role", "admin", "--name", "test"])
        .output()
        .expect("token create");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

/// A plan with this code and download rate (upload 5 Mbit/s).
fn plan(http: &str, token: &str, code: &str, download_kbps: u32) -> serde_json::Value {
    post(
        http,
        "/api/v1/plans",
        token,
        serde_json::json!({"code": code, "name": code, "terms": {
            "download_kbps": download_kbps, "upload_kbps": 5000, "price_minor": 2000,
            "currency": "EUR"}}),
    )
}

/// Alice's PPPoE service (`alice` / `alice-pw`) on `plan`, pending; returns its id.
fn alice_service(http: &str, token: &str, plan: &serde_json::Value) -> String {
    let sub = post(
        http,
        "/api/v1/subscribers",
        token,
        serde_json::json!({"name": "Alice", "currency": "EUR"}),
    );
    let svc = post(
        http,
        "/api/v1/services",
        token,
        serde_json::json!({"subscriber_id": sub["id"], "plan_id": plan["id"],
            "username": "alice", "password": "alice-pw"}),
    );
    svc["id"].as_str().expect("service id").to_string()
}

fn two_nodes(db: &str) {
    let dir = lastmile_testing::TempDir::new("radius-nodes");
    let token = admin_token(db, dir.path());
    let a = node(db, dir.path());
    let b = node(db, dir.path());

    post(
        &a.http,
        "/api/v1/nas",
        &token,
        serde_json::json!({"name": "loopback", "ip": "127.0.0.1", "secret": SECRET, "vendor": "mikrotik"}),
    );
    let home = plan(&a.http, &token, "HOME", 20_000);
    let id = alice_service(&a.http, &token, &home);
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    // Short: until the NAS itself reaches node B's directory, B drops our packets unanswered.
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");

    let t = Instant::now();
    post(
        &a.http,
        &format!("/api/v1/services/{id}/activate"),
        &token,
        serde_json::json!({}),
    );
    let took = until(&sock, &b.radius, Code::AccessAccept, t);
    assert!(
        took <= Duration::from_secs(1),
        "activation reached node B after {took:?}"
    );

    let t = Instant::now();
    post(
        &a.http,
        &format!("/api/v1/services/{id}/suspend"),
        &token,
        serde_json::json!({}),
    );
    let took = until(&sock, &b.radius, Code::AccessReject, t);
    assert!(
        took <= Duration::from_secs(1),
        "suspension reached node B after {took:?}"
    );
    // And node A, whose API made the change, agrees.
    assert_eq!(access(&sock, &a.radius, 7), Some(Code::AccessReject));
}

fn get(addr: &str, path: &str, token: &str) -> serde_json::Value {
    let (status, text) = http(addr, "GET", path, token, "");
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).expect("JSON")
}

/// A NAS that answers one CoA-Request with a CoA-ACK and reports the rate it was sent.
fn coa_stand_in() -> (u16, std::thread::JoinHandle<Option<String>>) {
    use lastmile_radius_codec::dict::mikrotik;
    use lastmile_radius_codec::{PacketBuilder, PacketRef};
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind the stand-in");
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let port = sock.local_addr().expect("address").port();
    let handle = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let (n, from) = sock.recv_from(&mut buf).ok()?;
        let req = PacketRef::decode(buf.get(..n)?).ok()?;
        if req.code() != Code::CoaRequest {
            return None;
        }
        let rate = req
            .vendor(mikrotik::RATE_LIMIT)
            .map(|v| String::from_utf8_lossy(v).into_owned());
        let mut out = Vec::new();
        let ack = PacketBuilder::reply(&mut out, &req, Code::CoaAck)
            .finish_reply(&req, SECRET.as_bytes());
        sock.send_to(ack, from).ok()?;
        rate
    });
    (port, handle)
}

fn plan_change_reaches_the_nas(db: &str) {
    let dir = lastmile_testing::TempDir::new("radius-coa");
    let token = admin_token(db, dir.path());
    let n = node(db, dir.path());
    let (coa_port, nas) = coa_stand_in();
    post(
        &n.http,
        "/api/v1/nas",
        &token,
        serde_json::json!({"name": "loopback", "ip": "127.0.0.1", "secret": SECRET,
            "vendor": "mikrotik", "coa_port": coa_port}),
    );
    let small = plan(&n.http, &token, "SMALL", 20_000);
    let big = plan(&n.http, &token, "BIG", 80_000);
    let id = alice_service(&n.http, &token, &small);
    post(
        &n.http,
        &format!("/api/v1/services/{id}/activate"),
        &token,
        serde_json::json!({}),
    );
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    until(&sock, &n.radius, Code::AccessAccept, Instant::now());

    // A live session, as the NAS reports it.
    let mut start = AccountingRequest::new(1, lastmile_radius_codec::acct::AcctStatusType::Start);
    start.session_id = Some("coa-1");
    start.user_name = Some("alice");
    let mut buf = Vec::new();
    let req = start
        .encode(&mut buf, SECRET.as_bytes())
        .expect("encode")
        .to_vec();
    sock.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    sock.send_to(&req, &n.acct).expect("send");
    let mut reply = [0u8; 4096];
    let got = sock.recv(&mut reply).expect("an Accounting-Response");
    let p = client::verify_reply(&reply[..got], &req, SECRET.as_bytes(), false).expect("valid");
    assert_eq!(p.code(), Code::AccountingResponse);

    post(
        &n.http,
        &format!("/api/v1/services/{id}/change-plan"),
        &token,
        serde_json::json!({"plan_id": big["id"]}),
    );
    let rate = nas.join().expect("stand-in thread");
    assert_eq!(
        rate.as_deref(),
        Some("5000k/80000k"),
        "the new tier, upload/download"
    );

    // The ACK is recorded on the job and on the session (the runner may still be writing it).
    let jobs = format!("/api/v1/provisioning-jobs?service_id={id}&kind=nas.coa");
    let deadline = Instant::now() + Duration::from_secs(10);
    let job = loop {
        let list = get(&n.http, &jobs, &token);
        let job = list["items"][0].clone();
        if job["status"] == "succeeded" || Instant::now() > deadline {
            break job;
        }
        std::thread::yield_now();
    };
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        job["last_result"].as_str().is_some_and(|r| !r.is_empty()),
        "{job}"
    );
    let sessions = get(&n.http, &format!("/api/v1/services/{id}/sessions"), &token);
    assert_eq!(sessions["items"][0]["accepted_policy"], "BIG", "{sessions}");
}

#[test]
fn sqlite_plan_change_reaches_the_nas() {
    let dir = lastmile_testing::TempDir::new("radius-coa-db");
    plan_change_reaches_the_nas(&format!("sqlite://{}", dir.path().join("isp.db").display()));
}

#[tokio::test]
async fn postgres_plan_change_reaches_the_nas() {
    if let Some(url) = lastmile_testing::pg::database_url().await {
        tokio::task::spawn_blocking(move || plan_change_reaches_the_nas(&url))
            .await
            .expect("test thread");
    }
}

#[test]
fn sqlite_two_nodes_follow_one_database() {
    let dir = lastmile_testing::TempDir::new("radius-nodes-db");
    two_nodes(&format!("sqlite://{}", dir.path().join("isp.db").display()));
}

#[tokio::test]
async fn postgres_two_nodes_follow_one_database() {
    if let Some(url) = lastmile_testing::pg::database_url().await {
        tokio::task::spawn_blocking(move || two_nodes(&url))
            .await
            .expect("test thread");
    }
}
