//! The real `licet-server` binary: two processes sharing PostgreSQL, and a `kill -9` during an
//! activation load on SQLite.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{gstarcad, machine, policy_paths, postgres_schema, ADMIN_TOKEN};
use licet_server::keys::{generate_key_files, token_hash};
use licet_server::loopback::LoopbackClient;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

struct Running {
    child: Child,
    address: SocketAddr,
    /// The open metrics address, when `metrics.listen` is configured.
    metrics: Option<SocketAddr>,
    /// What the server wrote to its standard error so far (also echoed to the test's).
    log: Arc<Mutex<String>>,
}

fn write_config(dir: &Path, database: &str) -> std::path::PathBuf {
    let policies: Vec<String> = policy_paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let config = json!({
        "listen": "127.0.0.1:0",
        "database": database,
        "policies": policies,
        "vendor_key": dir.join("vendor.secret"),
        "admin_tokens": [{ "name": "tests", "sha256": token_hash(ADMIN_TOKEN) }],
        "rate_limits": { "per_key": { "burst": 100000, "per_minute": 100000 },
                         "per_address": { "burst": 1000000, "per_minute": 1000000 }, "max_tracked": 1000 },
    });
    let path = dir.join("licet-server.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

async fn start(config: &Path) -> Running {
    let mut child = Command::new(env!("CARGO_BIN_EXE_licet-server"))
        .arg("--config")
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    let written = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            eprintln!("{line}");
            written.lock().unwrap().push_str(&(line + "\n"));
        }
    });
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let mut metrics = None;
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("licet-server metrics on http://") {
                metrics = Some(
                    rest.split('/')
                        .next()
                        .unwrap()
                        .parse::<SocketAddr>()
                        .unwrap(),
                );
            }
            if let Some(rest) = line.strip_prefix("licet-server listening on http://") {
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap();
            }
        }
        panic!("the server exited before listening");
    })
    .await
    .expect("the server did not start in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running {
        child,
        address,
        metrics,
        log,
    }
}

async fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut client = LoopbackClient::connect(address).await.unwrap();
    let response = client
        .request(method, path, token, body.as_ref())
        .await
        .unwrap();
    (response.status, response.json().unwrap_or(Value::Null))
}

async fn issue(address: SocketAddr, body: Value) -> Vec<String> {
    let (status, answer) = request(
        address,
        "POST",
        "/v1/admin/licenses",
        Some(ADMIN_TOKEN),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    answer["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["key"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_server_processes_on_one_postgresql_grant_exactly_the_seats() {
    const SEATS: u32 = 5;
    const CLIENTS: usize = 40;
    let dir = tempfile::tempdir().unwrap();
    generate_key_files(dir.path()).unwrap();
    let (url, schema) = postgres_schema().await;
    let config = write_config(dir.path(), &url);
    let first = start(&config).await;
    let second = start(&config).await;
    let key = issue(first.address, json!({
        "product": "gstarcad", "license_type": "network-key", "edition": "professional", "seats": SEATS
    })).await.remove(0);
    let mut tasks = Vec::new();
    for n in 0..CLIENTS {
        let address = if n % 2 == 0 {
            first.address
        } else {
            second.address
        };
        let body = json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n), "session": format!("s{n}") });
        tasks.push(tokio::spawn(async move {
            request(address, "POST", "/v1/seats/checkout", None, Some(body)).await
        }));
    }
    let mut granted = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            200 => granted += 1,
            409 => assert_eq!(body["code"], "SEATS_EXHAUSTED"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(granted, SEATS);
    let (_, seats) = request(
        second.address,
        "GET",
        "/v1/admin/seats",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(seats.as_array().unwrap().len(), SEATS as usize);
    drop((first, second));
    common::drop_schema(&schema);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storage_failure_is_answered_without_its_cause_and_logged_once_with_it() {
    let dir = tempfile::tempdir().unwrap();
    generate_key_files(dir.path()).unwrap();
    let file = dir.path().join("licet.db");
    let config = write_config(dir.path(), &format!("sqlite://{}", file.display()));
    let server = start(&config).await;
    let key = issue(server.address, json!({
        "product": "gstarcad", "license_type": "standalone-key", "edition": "professional", "count": 1
    })).await.remove(0);
    // The database loses a table under the running server.
    rusqlite::Connection::open(&file)
        .unwrap()
        .execute_batch("DROP TABLE activations")
        .unwrap();

    let body = json!({ "key": key, "target": gstarcad("professional"), "machine": machine(1) });
    let (status, answer) = request(server.address, "POST", "/v1/activate", None, Some(body)).await;
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer["code"], "STORAGE_UNAVAILABLE", "{answer}");
    assert_eq!(answer["message"], "storage failed; nothing was changed");
    assert!(!answer.to_string().contains("activations"), "{answer}");

    // The cause, with its route and status, is logged once.
    let cause = "no such table: activations";
    for _ in 0..200 {
        if server.log.lock().unwrap().contains(cause) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = server.log.lock().unwrap().clone();
    let logged: Vec<&str> = log.lines().filter(|line| line.contains(cause)).collect();
    assert_eq!(logged.len(), 1, "{log}");
    assert_eq!(log.matches(cause).count(), 1, "{log}");
    let line = logged[0];
    assert!(line.contains("ERROR"), "{line}");
    assert!(
        line.contains("/v1/activate") && line.contains("503"),
        "{line}"
    );
    assert!(line.contains("storage: sqlite"), "{line}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_during_activations_loses_no_acknowledged_activation() {
    const KEYS: usize = 600;
    const WORKERS: usize = 8;
    let dir = tempfile::tempdir().unwrap();
    generate_key_files(dir.path()).unwrap();
    let database = format!("sqlite://{}", dir.path().join("licet.db").display());
    let config = write_config(dir.path(), &database);
    let mut server = start(&config).await;
    let mut keys = Vec::new();
    for _ in 0..KEYS / 100 {
        keys.extend(issue(server.address, json!({
            "product": "gstarcad", "license_type": "standalone-key", "edition": "professional", "count": 100
        })).await);
    }
    let pool = issue(server.address, json!({
        "product": "gstarcad", "license_type": "network-key", "edition": "professional", "seats": 1
    })).await.remove(0);
    let checkout = |session: &str, n: usize| json!({ "key": pool, "target": gstarcad("professional"), "machine": machine(n), "session": session });
    let (status, _) = request(
        server.address,
        "POST",
        "/v1/seats/checkout",
        None,
        Some(checkout("before-crash", 1)),
    )
    .await;
    assert_eq!(status, 200);

    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let keys = Arc::new(keys);
    let mut workers = Vec::new();
    for worker in 0..WORKERS {
        let (keys, acknowledged, address) = (keys.clone(), acknowledged.clone(), server.address);
        workers.push(tokio::spawn(async move {
            let Ok(mut client) = LoopbackClient::connect(address).await else { return };
            for index in (worker..KEYS).step_by(WORKERS) {
                let body = json!({ "key": keys[index], "target": gstarcad("professional"), "machine": machine(index) });
                match client.request("POST", "/v1/activate", None, Some(&body)).await {
                    Ok(response) if response.status == 200 => acknowledged.lock().unwrap().push(index),
                    Ok(response) => panic!("{}: {}", response.status, String::from_utf8_lossy(&response.body)),
                    Err(_) => return,
                }
            }
        }));
    }
    // Kill the server once part of the load was acknowledged (bounded wait).
    for _ in 0..500 {
        if acknowledged.lock().unwrap().len() >= KEYS / 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.child.start_kill().unwrap();
    server.child.wait().await.unwrap();
    for worker in workers {
        worker.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(!acknowledged.is_empty());
    eprintln!(
        "{} of {KEYS} activations acknowledged before the kill",
        acknowledged.len()
    );

    let restarted = start(&config).await;
    for index in &acknowledged {
        let body = json!({ "key": keys[*index], "machine": machine(*index) });
        let (status, answer) =
            request(restarted.address, "POST", "/v1/validate", None, Some(body)).await;
        assert_eq!(
            status, 200,
            "acknowledged activation of key {index} was lost: {answer}"
        );
    }
    // The lease taken before the crash is still held: it renews, and the pool is still full.
    let (status, body) = request(
        restarted.address,
        "POST",
        "/v1/seats/heartbeat",
        None,
        Some(json!({ "key": pool, "session": "before-crash" })),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (200, Some("LEASE_RENEWED")),
        "{body}"
    );
    let (status, body) = request(
        restarted.address,
        "POST",
        "/v1/seats/checkout",
        None,
        Some(checkout("after-crash", 2)),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("SEATS_EXHAUSTED")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_metrics_address_serves_metrics_without_a_token_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    generate_key_files(dir.path()).unwrap();
    let database = format!("sqlite://{}", dir.path().join("licet.db").display());
    let path = write_config(dir.path(), &database);
    let mut config: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["metrics"] = json!({ "listen": "127.0.0.1:0" });
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let server = start(&path).await;
    let open = server
        .metrics
        .expect("the server printed no metrics address");
    assert_ne!(open.port(), server.address.port());
    let (status, _) = request(server.address, "GET", "/v1/health", None, None).await;
    assert_eq!(status, 200);
    let mut client = LoopbackClient::connect(open).await.unwrap();
    let response = client.request("GET", "/metrics", None, None).await.unwrap();
    assert_eq!(response.status, 200);
    let text = String::from_utf8(response.body).unwrap();
    assert!(
        text.contains("licet_http_requests_total{route=\"/v1/health\",status=\"200\"} 1"),
        "{text}"
    );
    assert!(text.ends_with("# EOF\n"), "{text}");
    // Only the metrics: the API is not served there, and the main listener still wants a token.
    let (status, body) = request(open, "GET", "/v1/health", None, None).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (404, Some("ROUTE_NOT_FOUND"))
    );
    let (status, body) = request(open, "POST", "/metrics", None, None).await;
    assert_eq!(status, 405, "{body}");
    let (status, _) = request(server.address, "GET", "/metrics", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_metrics_address_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    generate_key_files(dir.path()).unwrap();
    let database = format!("sqlite://{}", dir.path().join("licet.db").display());
    let path = write_config(dir.path(), &database);
    let mut config: Value = serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["metrics"] = json!({ "listen": "0.0.0.0:9464" });
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_licet-server"))
        .arg("--config")
        .arg(&path)
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a private address"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_then_serve_then_stop_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let policy = common::repo_root().join("policies/gstarcad.yaml");
    let output = Command::new(env!("CARGO_BIN_EXE_licet-server"))
        .arg("init")
        .arg(&server_dir)
        .arg("--policy")
        .arg(&policy)
        .arg("--listen")
        .arg("127.0.0.1:0")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout
        .lines()
        .find_map(|line| line.strip_prefix("administrator token (shown once): "))
        .unwrap()
        .to_owned();
    assert!(server_dir.join("vendor.pub").exists());
    let mut server = start(&server_dir.join("licet-server.yaml")).await;
    let (status, _) = request(
        server.address,
        "GET",
        "/v1/admin/clients",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = request(
        server.address,
        "GET",
        "/v1/admin/clients",
        Some("lct_admin_wrong"),
        None,
    )
    .await;
    assert_eq!((status, body["code"].as_str()), (401, Some("UNAUTHORIZED")));
    // A second init refuses to overwrite the directory.
    let again = Command::new(env!("CARGO_BIN_EXE_licet-server"))
        .arg("init")
        .arg(&server_dir)
        .arg("--policy")
        .arg(&policy)
        .output()
        .await
        .unwrap();
    assert!(!again.status.success());
    let pid = server.child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(20), server.child.wait())
        .await
        .expect("the server did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_server_prints_its_token_and_example_keys_once() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let policy = common::repo_root().join("policies/gstarcad.yaml");
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_licet-server"))
            .arg("--demo")
            .arg(&demo)
            .arg("--policy")
            .arg(&policy)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    // Reads the start-up lines until the server listens; returns them and the address.
    async fn startup(child: &mut Child) -> (Vec<String>, SocketAddr) {
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let address = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("licet-server listening on http://") {
                    return rest.split_whitespace().next().unwrap().parse().unwrap();
                }
                seen.push(line);
            }
            panic!("the demo server exited: {seen:?}");
        })
        .await
        .unwrap();
        (seen, address)
    }
    let mut first = spawn();
    let (lines, address) = startup(&mut first).await;
    let token = lines
        .iter()
        .find_map(|line| line.strip_prefix("administrator token (shown once): "))
        .unwrap()
        .to_owned();
    let network = lines
        .iter()
        .find_map(|line| line.strip_prefix("example network-key license key: "))
        .unwrap()
        .to_owned();
    let body = json!({ "key": network, "target": gstarcad("professional"), "machine": machine(1), "session": "demo" });
    let (status, answer) = request(address, "POST", "/v1/seats/checkout", None, Some(body)).await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (200, Some("SEAT_GRANTED")),
        "{answer}"
    );
    first.start_kill().unwrap();
    first.wait().await.unwrap();

    // The second start serves the same directory and prints no secret.
    let mut second = spawn();
    let (lines, address) = startup(&mut second).await;
    assert!(
        lines.iter().all(|line| !line.contains("token")),
        "{lines:?}"
    );
    let (status, _) = request(address, "GET", "/v1/admin/seats", Some(&token), None).await;
    assert_eq!(status, 200);
}
