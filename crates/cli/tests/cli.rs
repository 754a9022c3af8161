//! The `lastmile` binary end to end, on SQLite and on PostgreSQL: migrate, create a token,
//! serve, answer an authenticated request, and shut down gracefully on SIGTERM.

mod common;

use common::lastmile;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn http_get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\n{auth}Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

fn walkthrough(db: &str) {
    let dir = lastmile_testing::TempDir::new("cli");
    let out = lastmile(db, dir.path()).arg("migrate").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("migrated"));
    // Migrating again is a no-op.
    assert!(lastmile(db, dir.path())
        .arg("migrate")
        .status()
        .unwrap()
        .success());

    let out = lastmile(db, dir.path())
        .args(["token", "create", "--role", "readonly", "--name", "auditor"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(token.starts_with("lm_"));
    assert!(
        dir.path().join("lastmile.key").exists(),
        "secret key created on first use"
    );

    let bad = lastmile(db, dir.path())
        .args(["token", "create", "--role", "root"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown role"));

    let mut serve = lastmile(db, dir.path())
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
    let mut lines = BufReader::new(serve.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines.next().expect("serve exited early").unwrap();
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let (status, body) = http_get(&addr, "/healthz", None);
    assert_eq!(status, 200, "{body}");
    let (status, body) = http_get(&addr, "/api/v1/subscribers", Some(&token));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"items\":[]"), "{body}");
    let (status, _) = http_get(&addr, "/api/v1/subscribers", Some("lm_wrong"));
    assert_eq!(status, 401);

    let pid = serve.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = serve.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let rest: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(rest.iter().any(|l| l.contains("shutting down")), "{rest:?}");
}

#[test]
fn sqlite_walkthrough() {
    let dir = lastmile_testing::TempDir::new("cli-db");
    walkthrough(&format!("sqlite://{}", dir.path().join("isp.db").display()));
}

#[test]
fn a_command_leaves_every_commit_in_the_sqlite_file() {
    let dir = lastmile_testing::TempDir::new("cli-wal");
    let file = dir.path().join("isp.db");
    let db = format!("sqlite://{}", file.display());
    let out = lastmile(&db, dir.path())
        .args(["token", "create", "--role", "admin", "--name", "ops"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The WAL was checkpointed and truncated when the command ended: the file alone holds
    // the migrations and the new operator.
    let wal = dir.path().join("isp.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal_len, 0, "{} left un-checkpointed", wal.display());
    assert!(std::fs::metadata(&file).unwrap().len() > 0);
}

#[tokio::test]
async fn postgres_walkthrough() {
    if let Some(url) = lastmile_testing::pg::database_url().await {
        tokio::task::spawn_blocking(move || walkthrough(&url))
            .await
            .unwrap();
    }
}

#[test]
fn help_on_every_command() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["token", "create", "--help"],
        vec!["demo", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lastmile"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage:"),
            "{args:?}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_lastmile"))
        .args(["--database-url", "mysql://x", "migrate"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unsupported database URL"));
}
