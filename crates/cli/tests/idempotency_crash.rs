//! `Idempotency-Key` across a crash of `lastmile serve`, on SQLite and on PostgreSQL: many
//! concurrent `POST /subscribers` with keys, the server SIGKILLed while most are in flight,
//! restarted, every key retried until it gets a definitive answer. Each key must end with
//! exactly one subscriber and a non-409 answer that names it; keys answered before the kill
//! replay that answer.
//!
//! The server runs with a 1-second idempotency lease (`LASTMILE_IDEMPOTENCY_LEASE_SECS`) so
//! the reservations of the killed process expire quickly; retries poll until then.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const REQUESTS: usize = 120;
/// Answers received before the kill.
const ANSWERED_BEFORE_KILL: usize = 10;

fn lastmile(db: &str, dir: &std::path::Path) -> Command {
    let mut c = common::lastmile(db, dir);
    c.env("LASTMILE_IDEMPOTENCY_LEASE_SECS", "1");
    c
}

/// Starts `serve` on a free port; returns the child and its address.
fn serve(db: &str, dir: &std::path::Path) -> (Child, String) {
    let mut child = lastmile(db, dir)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--radius-auth",
            "127.0.0.1:0",
            "--radius-acct",
            "127.0.0.1:0",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines.map_while(Result::ok) {});
    (child, addr)
}

struct Answer {
    status: u16,
    replayed: bool,
    body: serde_json::Value,
}

fn name(i: usize) -> String {
    format!("crashkey{i:04}x")
}

/// POSTs subscriber `i` with its key; `None` if the connection broke (the server died).
fn post(addr: &str, token: &str, i: usize) -> Option<Answer> {
    let body = format!("{{\"name\":\"{}\",\"currency\":\"EUR\"}}", name(i));
    let mut s = TcpStream::connect(addr).ok()?;
    write!(
        s,
        "POST /api/v1/subscribers HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
         Idempotency-Key: crash-{i}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    let (head, body) = out.split_once("\r\n\r\n")?;
    let status = head.get(9..12)?.parse().ok()?;
    let head = head.to_ascii_lowercase();
    assert!(
        !head.contains("transfer-encoding: chunked"),
        "expected a sized body: {head}"
    );
    Some(Answer {
        status,
        replayed: head.contains("idempotent-replayed: true"),
        body: serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    })
}

/// Subscribers per name, through the API.
fn subscribers(addr: &str, token: &str) -> HashMap<String, Vec<String>> {
    let mut by_name: HashMap<String, Vec<String>> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "GET /api/v1/subscribers?q=crashkey&limit=100{cursor} HTTP/1.1\r\nHost: test\r\n\
             Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200"), "{out}");
        let page: serde_json::Value = serde_json::from_str(body).unwrap();
        for item in page["items"].as_array().unwrap() {
            by_name
                .entry(item["name"].as_str().unwrap().to_string())
                .or_default()
                .push(item["id"].as_str().unwrap().to_string());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return by_name,
        }
    }
}

fn crash_and_retry(db: &str) {
    let dir = lastmile_testing::TempDir::new("idem-crash");
    let out = lastmile(db, dir.path())
        .args(["token", "create", "--role", "admin", "--name", "crash"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();

    let (mut first, addr) = serve(db, dir.path());
    let (tx, rx) = mpsc::channel();
    let clients: Vec<_> = (0..REQUESTS)
        .map(|i| {
            let (addr, token, tx) = (addr.clone(), token.clone(), tx.clone());
            std::thread::spawn(move || {
                let answer = post(&addr, &token, i);
                let _ = tx.send(());
                (i, answer)
            })
        })
        .collect();
    drop(tx);
    for _ in 0..ANSWERED_BEFORE_KILL {
        rx.recv().unwrap();
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let before: HashMap<usize, Answer> = clients
        .into_iter()
        .filter_map(|c| {
            let (i, a) = c.join().unwrap();
            a.map(|a| (i, a))
        })
        .collect();
    assert!(
        before.len() < REQUESTS,
        "the server must die with requests in flight"
    );
    eprintln!("{} of {REQUESTS} answered before the kill", before.len());

    let (mut second, addr) = serve(db, dir.path());
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut in_progress = 0;
    let mut answers = HashMap::new();
    for i in 0..REQUESTS {
        let answer = loop {
            let a = post(&addr, &token, i).expect("the restarted server answers");
            if a.status != 409 {
                break a;
            }
            // A reservation of the killed process, until its lease passes.
            in_progress += 1;
            assert!(Instant::now() < deadline, "key {i} stuck in progress");
            std::thread::sleep(Duration::from_millis(50));
        };
        answers.insert(i, answer);
    }
    let by_name = subscribers(&addr, &token);
    let mut replayed = 0;
    for i in 0..REQUESTS {
        let a = &answers[&i];
        assert_eq!(a.status, 201, "key {i}: {}", a.body);
        let ids = by_name.get(&name(i)).cloned().unwrap_or_default();
        assert_eq!(ids.len(), 1, "key {i}: exactly one subscriber, got {ids:?}");
        assert_eq!(a.body["id"], ids[0], "key {i}: the answer names it");
        assert_eq!(a.body["name"], name(i));
        if let Some(b) = before.get(&i) {
            assert_eq!(b.status, 201);
            assert!(a.replayed, "key {i} was answered before: replayed");
            assert_eq!(a.body, b.body, "key {i}: the same answer");
        }
        replayed += usize::from(a.replayed);
        // And from now on the same bytes.
        let again = post(&addr, &token, i).unwrap();
        assert_eq!((again.status, &again.body), (201, &a.body));
        assert!(again.replayed);
    }
    eprintln!(
        "{replayed} keys replayed or recovered after the restart, {} ran on retry, \
         {in_progress} retries saw a live lease",
        REQUESTS - replayed
    );
    second.kill().unwrap();
    second.wait().unwrap();
}

#[test]
fn sqlite_crash_during_idempotent_posts() {
    let dir = lastmile_testing::TempDir::new("idem-crash-db");
    crash_and_retry(&format!("sqlite://{}", dir.path().join("isp.db").display()));
}

#[tokio::test]
async fn postgres_crash_during_idempotent_posts() {
    if let Some(url) = lastmile_testing::pg::database_url().await {
        tokio::task::spawn_blocking(move || crash_and_retry(&url))
            .await
            .unwrap();
    }
}
