//! Attacks on the real `licet-server` binary over loopback: half-sent requests, a stalled body,
//! SIGTERM with such connections open, more connections than the cap, and what the server
//! logs and leaves on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{policy_paths, ADMIN_TOKEN};
use licet_server::keys::{generate_key_files, token_hash};
use licet_server::loopback::LoopbackClient;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

struct Running {
    child: Child,
    address: SocketAddr,
    stderr: Arc<Mutex<String>>,
}

/// A server directory whose configuration has `http` settings and a SQLite file not yet made.
fn server_dir(http: Value) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    generate_key_files(dir.path()).unwrap();
    let policies: Vec<String> = policy_paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let config = json!({
        "listen": "127.0.0.1:0",
        "database": format!("sqlite://{}", dir.path().join("licet.db").display()),
        "policies": policies,
        "vendor_key": dir.path().join("vendor.secret"),
        "admin_tokens": [{ "name": "tests", "sha256": token_hash(ADMIN_TOKEN) }],
        "http": http,
    });
    let path = dir.path().join("licet-server.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    (dir, path)
}

async fn start(config: &Path, args: &[&str]) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_licet-server"))
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    let collected = stderr.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            let mut text = collected.lock().unwrap();
            text.push_str(&line);
            text.push('\n');
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("licet-server listening on http://") {
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap();
            }
        }
        panic!(
            "the server exited before listening: {}",
            stderr.lock().unwrap()
        );
    })
    .await
    .expect("the server did not start in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running {
        child,
        address,
        stderr,
    }
}

/// Opens a connection that sends half a request line and header, then stops.
async fn slowloris(address: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        .await
        .unwrap();
    stream
}

/// Reads until the server closes the connection (or resets it); the bytes it sent.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return received,
            Ok(n) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_sent_requests_are_closed_within_the_header_timeout() {
    const CONNECTIONS: usize = 50;
    let (_dir, config) = server_dir(json!({ "header_read_timeout_seconds": 1 }));
    let server = start(&config, &[]).await;
    let mut streams = Vec::new();
    for _ in 0..CONNECTIONS {
        streams.push(slowloris(server.address).await);
    }
    let opened = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        for stream in &mut streams {
            read_until_closed(stream).await;
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "half-sent requests were still open after 5 s"
    );
    assert!(opened.elapsed() >= Duration::from_millis(500));
    // The server still answers whole requests.
    let mut client = LoopbackClient::connect(server.address).await.unwrap();
    let health = client
        .request("GET", "/v1/health", None, None)
        .await
        .unwrap();
    assert_eq!(health.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_request_body_is_answered_within_the_body_timeout() {
    let (_dir, config) = server_dir(json!({ "body_read_timeout_seconds": 1 }));
    let server = start(&config, &[]).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(
            b"POST /v1/validate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
              Content-Length: 100\r\n\r\n{\"key\": \"",
        )
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), read_until_closed(&mut stream))
        .await
        .expect("a stalled body was still waited for after 5 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_half_sent_requests_open_exits_within_the_shutdown_deadline() {
    let (_dir, config) = server_dir(json!({
        "header_read_timeout_seconds": 60, "idle_timeout_seconds": 120, "shutdown_timeout_seconds": 2
    }));
    let mut server = start(&config, &[]).await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(slowloris(server.address).await);
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.child.id().unwrap().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let signalled = Instant::now();
    let exited = tokio::time::timeout(Duration::from_secs(6), server.child.wait())
        .await
        .expect("the server did not stop within 6 s of SIGTERM")
        .unwrap();
    assert!(exited.success(), "{exited:?}");
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    drop(streams);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let (_dir, config) = server_dir(json!({
        "max_connections": 2, "header_read_timeout_seconds": 30, "idle_timeout_seconds": 60
    }));
    let server = start(&config, &[]).await;
    // Two connections hold the cap without sending anything.
    let first = TcpStream::connect(server.address).await.unwrap();
    let _second = TcpStream::connect(server.address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut third = TcpStream::connect(server.address).await.unwrap();
    third
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_secs(1), third.read(&mut byte)).await;
    assert!(
        early.is_err(),
        "a connection beyond the cap was served at once"
    );
    // Once one of the two closes, the waiting connection is served.
    drop(first);
    let answer = tokio::time::timeout(Duration::from_secs(5), read_until_closed(&mut third))
        .await
        .expect("the waiting connection was not served after one closed");
    let answer = format!("{}{}", byte[0] as char, String::from_utf8_lossy(&answer));
    assert!(answer.contains("HTTP/1.1 200"), "{answer}");
}

async fn issue_and_validate(address: SocketAddr) -> String {
    let mut client = LoopbackClient::connect(address).await.unwrap();
    let body = json!({ "product": "gstarcad", "license_type": "standalone-key", "edition": "professional" });
    let issued = client
        .request("POST", "/v1/admin/licenses", Some(ADMIN_TOKEN), Some(&body))
        .await
        .unwrap();
    assert_eq!(issued.status, 201);
    let key = issued.json().unwrap()["licenses"][0]["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "key": key, "target": common::gstarcad("professional"), "machine": common::machine(1) });
    let activated = client
        .request("POST", "/v1/activate", None, Some(&body))
        .await
        .unwrap();
    assert_eq!(activated.status, 200);
    key
}

async fn log_with(server: &Running, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = server.stderr.lock().unwrap().clone();
        if text.contains(needle) || Instant::now() > deadline {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_decision_is_logged_without_the_license_key() {
    let (_dir, config) = server_dir(json!({}));
    let server = start(&config, &[]).await;
    let key = issue_and_validate(server.address).await;
    let log = log_with(&server, "ACTIVATED").await;
    let line = log
        .lines()
        .find(|line| line.contains("licet::decision") && line.contains("ACTIVATED"))
        .unwrap_or_else(|| panic!("no decision line in {log}"));
    assert!(line.contains("access.") || line.contains("rule="), "{line}");
    assert!(line.contains("latency_ms"), "{line}");
    let short = format!("{}…{}", &key[..4], &key[key.len() - 4..]);
    assert!(line.contains(&short), "{line}");
    assert!(!log.contains(&key), "the log holds the whole key: {log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_the_decision_fields() {
    let (_dir, config) = server_dir(json!({}));
    let server = start(&config, &["--log-format", "json"]).await;
    let key = issue_and_validate(server.address).await;
    let log = log_with(&server, "ACTIVATED").await;
    let decision = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["target"] == "licet::decision" && line["code"] == "ACTIVATED")
        .unwrap_or_else(|| panic!("no JSON decision line in {log}"));
    assert_eq!(decision["verdict"], "allow");
    assert_eq!(decision["action"], "activate");
    assert!(decision["rule"].is_string(), "{decision}");
    assert!(decision["latency_ms"].is_number(), "{decision}");
    assert!(!log.contains(&key), "the log holds the whole key: {log}");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, config) = server_dir(json!({}));
    let server = start(&config, &[]).await;
    issue_and_validate(server.address).await;
    for name in ["licet.db", "licet.db-wal", "licet.db-shm"] {
        let path = dir.path().join(name);
        if let Ok(metadata) = std::fs::metadata(&path) {
            assert_eq!(
                metadata.permissions().mode() & 0o777,
                0o600,
                "{}",
                path.display()
            );
        } else {
            assert_ne!(name, "licet.db", "no database file");
        }
    }
}
