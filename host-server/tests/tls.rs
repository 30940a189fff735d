//! HTTPS on the real `licet-server` binary over loopback: a test CA, an intermediate and a
//! server certificate made with rcgen; requests over TLS from a client that trusts only the
//! test CA; plain HTTP to the TLS port; connections that never send a ClientHello (closed at the
//! header-read deadline, never holding up shutdown, counted by the connection cap); and the
//! start-up errors of the plain-HTTP rule and of bad certificate and key files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, Method, Request};
use common::{policy_paths, ADMIN_TOKEN};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use licet_server::config::Config;
use licet_server::keys::{generate_key_files, token_hash};
use licet_server::loopback::LoopbackClient;
use licet_server::tls::{TlsConfig, TlsError};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_rustls::TlsConnector;

/// A root CA, an intermediate it signed, and a server certificate for `localhost` and
/// `127.0.0.1` the intermediate signed, written as PEM files.
struct TestPki {
    root: CertificateDer<'static>,
    /// The server certificate followed by the intermediate.
    chain: PathBuf,
    key: PathBuf,
    /// A key of another certificate.
    other_key: PathBuf,
}

fn ca_params(name: &str) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params
}

fn make_pki(dir: &Path) -> TestPki {
    let root =
        CertifiedIssuer::self_signed(ca_params("Licet test root"), KeyPair::generate().unwrap())
            .unwrap();
    let intermediate = CertifiedIssuer::signed_by(
        ca_params("Licet test intermediate"),
        KeyPair::generate().unwrap(),
        &root,
    )
    .unwrap();
    let server_key = KeyPair::generate().unwrap();
    let mut server = CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "licet-server test");
    let server = server.signed_by(&server_key, &intermediate).unwrap();
    let chain = dir.join("server.pem");
    std::fs::write(&chain, format!("{}{}", server.pem(), intermediate.pem())).unwrap();
    let key = dir.join("server.key");
    std::fs::write(&key, server_key.serialize_pem()).unwrap();
    let other_key = dir.join("other.key");
    std::fs::write(&other_key, KeyPair::generate().unwrap().serialize_pem()).unwrap();
    TestPki {
        root: root.der().clone(),
        chain,
        key,
        other_key,
    }
}

/// A server directory whose configuration has `listen`, `http` and `tls` settings.
fn server_dir(dir: &Path, listen: &str, http: Value, tls: Option<(&Path, &Path)>) -> PathBuf {
    generate_key_files(dir).unwrap();
    let policies: Vec<String> = policy_paths()
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let mut config = json!({
        "listen": listen,
        "database": format!("sqlite://{}", dir.join("licet.db").display()),
        "policies": policies,
        "vendor_key": dir.join("vendor.secret"),
        "admin_tokens": [{ "name": "tests", "sha256": token_hash(ADMIN_TOKEN) }],
        "http": http,
    });
    if let Some((certificate, key)) = tls {
        config["tls"] = json!({ "certificate": certificate, "key": key });
    }
    let path = dir.join("licet-server.yaml");
    std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    path
}

struct Running {
    child: Child,
    address: SocketAddr,
}

fn command(config: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_licet-server"));
    command
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    command
}

/// Starts the server and waits for its `listening on https://` line.
async fn start_https(config: &Path) -> Running {
    let mut child = command(config).spawn().unwrap();
    let stderr = Arc::new(Mutex::new(String::new()));
    let mut errors = BufReader::new(child.stderr.take().unwrap()).lines();
    let collected = stderr.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = errors.next_line().await {
            collected.lock().unwrap().push_str(&format!("{line}\n"));
        }
    });
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let address = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("licet-server listening on https://") {
                return rest
                    .split_whitespace()
                    .next()
                    .unwrap()
                    .parse::<SocketAddr>()
                    .unwrap();
            }
            assert!(!line.contains("listening on http://"), "{line}");
        }
        panic!(
            "the server exited before listening: {}",
            stderr.lock().unwrap()
        );
    })
    .await
    .expect("the server did not start in time");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Running { child, address }
}

/// Runs the server, which must refuse to start; its standard error.
async fn refused_start(config: &Path) -> String {
    let output = tokio::time::timeout(Duration::from_secs(30), command(config).output())
        .await
        .expect("the server neither started nor exited within 30 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "it started: {stdout} {stderr}");
    assert!(!stdout.contains("listening on"), "{stdout}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A TLS client that trusts only `root`, offering HTTP/1.1 by ALPN.
fn connector(root: &CertificateDer<'static>) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    TlsConnector::from(Arc::new(config))
}

/// An HTTPS connection to `address` for the name `localhost`.
async fn https(address: SocketAddr, root: &CertificateDer<'static>) -> SendRequest<Body> {
    let tcp = TcpStream::connect(address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector(root).connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    sender
}

/// The server at `address` answers a health check over HTTPS.
async fn assert_serves_https(address: SocketAddr, root: &CertificateDer<'static>) {
    let mut sender = https(address, root).await;
    assert_eq!(
        send(&mut sender, Method::GET, "/v1/health", None).await.0,
        200
    );
}

async fn send(
    sender: &mut SendRequest<Body>,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, "localhost")
        .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"));
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    sender.ready().await.unwrap();
    let response = sender
        .send_request(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(Body::new(response.into_body()), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
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
async fn https_requests_are_served_with_the_configured_chain() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let config = server_dir(
        dir.path(),
        "127.0.0.1:0",
        json!({}),
        Some((&pki.chain, &pki.key)),
    );
    let server = start_https(&config).await;
    let mut sender = https(server.address, &pki.root).await;
    let (status, health) = send(&mut sender, Method::GET, "/v1/health", None).await;
    assert_eq!(status, 200, "{health}");
    // A request with a body, on the same keep-alive connection.
    let body = json!({ "product": "gstarcad", "license_type": "standalone-key", "edition": "professional" });
    let (status, issued) = send(&mut sender, Method::POST, "/v1/admin/licenses", Some(body)).await;
    assert_eq!(status, 201, "{issued}");
    assert!(issued["licenses"][0]["key"].is_string(), "{issued}");
    // The loopback client of the multi-process tests and the load generator, over TLS.
    let mut loopback = LoopbackClient::connect_tls(server.address, &connector(&pki.root))
        .await
        .unwrap();
    for _ in 0..2 {
        let health = loopback
            .request("GET", "/v1/health", None, None)
            .await
            .unwrap();
        assert_eq!(health.status, 200);
    }
    // Pages served over TLS set their cookies `Secure`.
    let request = Request::builder()
        .uri("/admin/login")
        .header(header::HOST, "localhost")
        .body(Body::empty())
        .unwrap();
    let page = sender.send_request(request).await.unwrap();
    assert_eq!(page.status(), 200);
    let cookies: Vec<&str> = page
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap())
        .collect();
    assert!(!cookies.is_empty());
    assert!(
        cookies.iter().all(|cookie| cookie.contains("; Secure")),
        "{cookies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let elsewhere = tempfile::tempdir().unwrap();
    let stranger = make_pki(elsewhere.path());
    let config = server_dir(
        dir.path(),
        "127.0.0.1:0",
        json!({}),
        Some((&pki.chain, &pki.key)),
    );
    let server = start_https(&config).await;
    let tcp = TcpStream::connect(server.address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let refused = connector(&stranger.root).connect(name, tcp).await;
    assert!(
        refused.is_err(),
        "a certificate of an unknown CA was accepted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let config = server_dir(
        dir.path(),
        "127.0.0.1:0",
        json!({}),
        Some((&pki.chain, &pki.key)),
    );
    let server = start_https(&config).await;
    let mut stream = TcpStream::connect(server.address).await.unwrap();
    stream
        .write_all(b"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(5), read_until_closed(&mut stream))
        .await
        .expect("a plain HTTP request to the TLS port was kept open for 5 s");
    assert!(
        !answer.starts_with(b"HTTP/"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // The server still serves HTTPS.
    assert_serves_https(server.address, &pki.root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_are_closed_at_the_header_read_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let config = server_dir(
        dir.path(),
        "127.0.0.1:0",
        json!({ "header_read_timeout_seconds": 1 }),
        Some((&pki.chain, &pki.key)),
    );
    let server = start_https(&config).await;
    // Connections that never send a ClientHello.
    let mut silent = Vec::new();
    for _ in 0..20 {
        silent.push(TcpStream::connect(server.address).await.unwrap());
    }
    // A connection that completes its handshake and then sends no request.
    let tcp = TcpStream::connect(server.address).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut idle_tls = connector(&pki.root).connect(name, tcp).await.unwrap();
    let opened = Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        for stream in &mut silent {
            read_until_closed(stream).await;
        }
        let mut buffer = [0u8; 64];
        while let Ok(n) = idle_tls.read(&mut buffer).await {
            if n == 0 {
                break;
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "silent connections were still open after 5 s"
    );
    assert!(opened.elapsed() >= Duration::from_millis(500));
    assert_serves_https(server.address, &pki.root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_connections_mid_handshake_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let config = server_dir(
        dir.path(),
        "127.0.0.1:0",
        json!({ "header_read_timeout_seconds": 60, "idle_timeout_seconds": 120,
                "shutdown_timeout_seconds": 10 }),
        Some((&pki.chain, &pki.key)),
    );
    let mut server = start_https(&config).await;
    let mut silent = Vec::new();
    for _ in 0..5 {
        silent.push(TcpStream::connect(server.address).await.unwrap());
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
    let exited = tokio::time::timeout(Duration::from_secs(15), server.child.wait())
        .await
        .expect("the server did not stop within 15 s of SIGTERM")
        .unwrap();
    assert!(exited.success(), "{exited:?}");
    // Well before the 10 s shutdown deadline: handshakes under way do not hold it up.
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?}",
        signalled.elapsed()
    );
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_counts_tls_connections() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let config = server_dir(
        dir.path(),
        "127.0.0.1:0",
        json!({ "max_connections": 2, "header_read_timeout_seconds": 30, "idle_timeout_seconds": 60 }),
        Some((&pki.chain, &pki.key)),
    );
    let server = start_https(&config).await;
    // Two connections hold the cap without sending a ClientHello.
    let first = TcpStream::connect(server.address).await.unwrap();
    let _second = TcpStream::connect(server.address).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (address, root) = (server.address, pki.root.clone());
    let mut third = tokio::spawn(async move {
        let mut sender = https(address, &root).await;
        send(&mut sender, Method::GET, "/v1/health", None).await.0
    });
    let early = tokio::time::timeout(Duration::from_secs(1), &mut third).await;
    assert!(
        early.is_err(),
        "a connection beyond the cap was served at once"
    );
    drop(first);
    let status = tokio::time::timeout(Duration::from_secs(5), third)
        .await
        .expect("the waiting connection was not served after one closed")
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_off_loopback_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = server_dir(dir.path(), "0.0.0.0:0", json!({}), None);
    let stderr = refused_start(&config).await;
    assert!(stderr.contains("not a loopback address"), "{stderr}");
    assert!(stderr.contains("`tls`"), "{stderr}");
    assert!(stderr.contains("http.allow_plain: true"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_that_is_not_the_certificates_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    let config = server_dir(
        dir.path(),
        "127.0.0.1:0",
        json!({}),
        Some((&pki.chain, &pki.other_key)),
    );
    let stderr = refused_start(&config).await;
    assert!(
        stderr.contains("is not the private key of the certificate in tls.certificate"),
        "{stderr}"
    );
    assert!(stderr.contains("other.key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_file_without_a_key_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    // The certificate where the key should be.
    let config = server_dir(
        dir.path(),
        "127.0.0.1:0",
        json!({}),
        Some((&pki.chain, &pki.chain)),
    );
    let stderr = refused_start(&config).await;
    assert!(stderr.contains("holds no PEM private key"), "{stderr}");
}

fn tls_config(certificate: &Path, key: &Path) -> TlsConfig {
    TlsConfig {
        certificate: certificate.to_owned(),
        key: key.to_owned(),
    }
}

#[test]
fn certificate_and_key_errors_name_the_file_and_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let pki = make_pki(dir.path());
    assert!(tls_config(&pki.chain, &pki.key).server_config().is_ok());
    let missing = dir.path().join("missing.pem");
    let error = tls_config(&missing, &pki.key).server_config().unwrap_err();
    assert!(
        matches!(
            error,
            TlsError::Read {
                setting: "certificate",
                ..
            }
        ),
        "{error}"
    );
    assert!(
        error.to_string().starts_with("tls.certificate `"),
        "{error}"
    );
    assert!(error.to_string().contains("missing.pem"), "{error}");
    let error = tls_config(&pki.chain, &missing)
        .server_config()
        .unwrap_err();
    assert!(
        matches!(error, TlsError::Read { setting: "key", .. }),
        "{error}"
    );
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "just some text\n").unwrap();
    let error = tls_config(&not_pem, &pki.key).server_config().unwrap_err();
    assert!(matches!(error, TlsError::NoCertificate { .. }), "{error}");
    let error = tls_config(&pki.chain, &not_pem)
        .server_config()
        .unwrap_err();
    assert!(matches!(error, TlsError::NoKey { .. }), "{error}");
    let broken = dir.path().join("broken.pem");
    std::fs::write(&broken, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n").unwrap();
    let error = tls_config(&broken, &pki.key).server_config().unwrap_err();
    assert!(matches!(error, TlsError::NotPem { .. }), "{error}");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let error = tls_config(&garbage, &pki.key).server_config().unwrap_err();
    assert!(
        matches!(error, TlsError::UnusableCertificate { .. }),
        "{error}"
    );
    let error = tls_config(&pki.chain, &pki.other_key)
        .server_config()
        .unwrap_err();
    assert!(matches!(error, TlsError::KeyMismatch { .. }), "{error}");
}

/// Loads a configuration file with `listen`, `http` and `tls` (in-process, nothing started).
fn load(listen: &str, http: Value, tls: Option<Value>) -> Result<Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = server_dir(dir.path(), listen, http, None);
    if let Some(tls) = tls {
        let mut config: Value =
            serde_yaml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        config["tls"] = tls;
        std::fs::write(&path, serde_yaml::to_string(&config).unwrap()).unwrap();
    }
    Config::load(&path).map_err(|error| error.to_string())
}

#[test]
fn the_plain_http_rule_and_the_tls_section_are_checked_when_the_configuration_loads() {
    let tls = json!({ "certificate": "server.pem", "key": "server.key" });
    assert!(load("127.0.0.1:8440", json!({}), None).is_ok());
    assert!(load("[::1]:8440", json!({}), None).is_ok());
    assert!(load("localhost:8440", json!({}), None).is_ok());
    for public in ["0.0.0.0:8440", "[::]:8440", "192.168.1.10:8440"] {
        let refused = load(public, json!({}), None).unwrap_err();
        assert!(
            refused.contains(&format!("`listen: {public}`")),
            "{refused}"
        );
        assert!(refused.contains("http.allow_plain"), "{refused}");
        assert!(load(public, json!({ "allow_plain": true }), None).is_ok());
        let config = load(public, json!({}), Some(tls.clone())).unwrap();
        // Relative to the configuration file.
        assert!(config.tls.unwrap().certificate.is_absolute());
    }
    let both = load("0.0.0.0:8440", json!({ "allow_plain": true }), Some(tls)).unwrap_err();
    assert!(
        both.contains("`http.allow_plain` is for a server without `tls`"),
        "{both}"
    );
    let unknown = load(
        "127.0.0.1:8440",
        json!({}),
        Some(json!({ "certificate": "a.pem", "key": "a.key", "password": "x" })),
    )
    .unwrap_err();
    assert!(unknown.contains("password"), "{unknown}");
    let incomplete = load(
        "127.0.0.1:8440",
        json!({}),
        Some(json!({ "certificate": "a.pem" })),
    )
    .unwrap_err();
    assert!(incomplete.contains("key"), "{incomplete}");
}

fn init(dir: &Path, args: &[&std::ffi::OsStr]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_licet-server"))
        .arg("init")
        .arg(dir)
        .arg("--policy")
        .arg(&policy_paths()[0])
        .args(args)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_writes_the_tls_section_and_refuses_plain_http_off_loopback() {
    let root = tempfile::tempdir().unwrap();
    let pki = make_pki(root.path());
    let refused = init(
        &root.path().join("plain"),
        &["--listen".as_ref(), "0.0.0.0:8440".as_ref()],
    );
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("http.allow_plain"), "{stderr}");
    assert!(!root.path().join("plain/licet-server.yaml").exists());
    assert!(!root.path().join("plain/vendor.secret").exists());
    let proxied = init(
        &root.path().join("proxied"),
        &[
            "--listen".as_ref(),
            "0.0.0.0:8440".as_ref(),
            "--allow-plain-http".as_ref(),
        ],
    );
    assert!(proxied.status.success(), "{proxied:?}");
    let config = Config::load(&root.path().join("proxied/licet-server.yaml")).unwrap();
    assert!(config.http.allow_plain && config.tls.is_none());
    // A key that is not the certificate's is refused before anything is created.
    let mismatched = init(
        &root.path().join("mismatched"),
        &[
            "--tls-certificate".as_ref(),
            pki.chain.as_os_str(),
            "--tls-key".as_ref(),
            pki.other_key.as_os_str(),
        ],
    );
    assert!(!mismatched.status.success());
    let stderr = String::from_utf8_lossy(&mismatched.stderr);
    assert!(stderr.contains("is not the private key"), "{stderr}");
    assert!(!root.path().join("mismatched/licet-server.yaml").exists());
    // With a certificate and key it serves HTTPS.
    let dir = root.path().join("https");
    let created = init(
        &dir,
        &[
            "--listen".as_ref(),
            "127.0.0.1:0".as_ref(),
            "--tls-certificate".as_ref(),
            pki.chain.as_os_str(),
            "--tls-key".as_ref(),
            pki.key.as_os_str(),
        ],
    );
    assert!(created.status.success(), "{created:?}");
    let path = dir.join("licet-server.yaml");
    let config = Config::load(&path).unwrap();
    assert_eq!(config.tls.as_ref().unwrap().certificate, pki.chain);
    let server = start_https(&path).await;
    assert_serves_https(server.address, &pki.root).await;
}
