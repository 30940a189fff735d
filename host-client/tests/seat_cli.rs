//! Drives `licet seat query` and `licet seat hold` against a small license server on 127.0.0.1
//! that signs seat certificates with its own key and sends its server license with them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use ed25519_dalek::SigningKey;
use licet_client::keys::read_signing_key;
use licet_client::{MachineProbe, NativeProbe};
use licet_engine::certificate::{self, Certificate};
use licet_engine::server_license::{self, ServerLicenseClaims};
use licet_engine::state::Term;
use licet_engine::{
    decide, Action, Actor, Effect, Fingerprint, Policy, ProductRef, Request, State,
};
use serde_json::{json, Value};
use support::*;

const NET: &str = "GSTAR-NET-1";

fn licet_binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_licet"))
}

fn run(args: &[&str]) -> Output {
    licet_binary().args(args).output().expect("licet runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn native_fingerprint() -> Fingerprint {
    NativeProbe::for_product("gstarcad").fingerprint().unwrap()
}

/// Vendor keys, a policy with the shortest network lease (10 s, so heartbeats every 3.3 s) and a
/// state directory.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let out = run(&["keys", "generate", "--out", dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let machine = native_fingerprint();
        let present = gstarcad()
            .fingerprint
            .components
            .iter()
            .filter(|name| machine.components.contains_key(*name))
            .count();
        let source = gstarcad_source()
            .replace(
                "match_at_least: 3",
                &format!("match_at_least: {}", present.clamp(1, 3)),
            )
            .replace(
                "default_seats: 5\n    lease_seconds: 300",
                "default_seats: 5\n    lease_seconds: 10",
            );
        assert!(source.contains("lease_seconds: 10"));
        fs::write(dir.path().join("gstarcad.yaml"), source).unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn policy(&self) -> Policy {
        let source = fs::read_to_string(self.path("gstarcad.yaml")).unwrap();
        Policy::from_yaml("gstarcad.yaml", &source).unwrap()
    }

    fn vendor(&self) -> SigningKey {
        read_signing_key(&self.path("vendor.secret")).unwrap()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut command = licet_binary();
        command.args(args);
        for (flag, path) in [
            ("--state-dir", self.path("state")),
            ("--policy", self.path("gstarcad.yaml")),
            ("--vendor-key", self.path("vendor.pub")),
        ] {
            command.arg(flag).arg(path);
        }
        command
    }
}

/// How the test license server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Seats signed with the key its server license names; heartbeats answer `LEASE_NOT_FOUND`
    /// (the administrator released every seat right after the checkout).
    ForceReleased,
    /// Seats signed with another key.
    WrongKey,
}

struct LicenseServer {
    address: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl LicenseServer {
    fn start(setup: &Setup, mode: Mode) -> LicenseServer {
        let policy = setup.policy();
        let vendor = setup.vendor();
        let server_key = SigningKey::from_bytes(&[7; 32]);
        let network = license(
            NET,
            "network-key",
            "professional",
            Term::Rental {
                ends_at: Utc::now() + chrono::Duration::days(180),
            },
        );
        let activation = activation_certificate(
            &policy,
            &vendor,
            network.clone(),
            &Fingerprint::from_pairs([("machine-id", "license-server")]),
            Utc::now(),
        );
        let activation = Certificate::from_armored(&activation, &vendor.verifying_key())
            .unwrap()
            .claims()
            .clone();
        let claims = ServerLicenseClaims::grant(
            &policy,
            &network,
            &activation,
            server_key.verifying_key().to_bytes(),
        )
        .unwrap();
        let server_license = server_license::issue(claims, &vendor).to_armored();
        let signer = match mode {
            Mode::ForceReleased => server_key,
            Mode::WrongKey => SigningKey::from_bytes(&[8; 32]),
        };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (line, body) = read_request(&mut stream);
                seen.lock().unwrap().push(line.clone());
                let (status, answer) = match line.as_str() {
                    "GET /v1/seats/query" => ("200 OK", query_answer()),
                    "POST /v1/seats/checkout" => {
                        let request = checkout(&body);
                        let state = State {
                            license: Some(network.clone()),
                            ..State::default()
                        };
                        let decision = decide(&policy, &state, &request, Utc::now());
                        let claims = decision
                            .effects
                            .iter()
                            .find_map(|effect| match effect {
                                Effect::IssueCertificate(claims) => Some(*claims.clone()),
                                _ => None,
                            })
                            .unwrap_or_else(|| panic!("no seat: {decision:?}"));
                        let certificate = certificate::issue(claims, &signer).to_armored();
                        (
                            "200 OK",
                            json!({ "verdict": "allow", "code": decision.code, "rule": decision.rule,
                                    "message": decision.message, "certificate": certificate,
                                    "server_license": server_license }),
                        )
                    }
                    "POST /v1/seats/heartbeat" => (
                        "404 Not Found",
                        json!({ "code": "LEASE_NOT_FOUND", "rule": "seats.lease",
                                "message": format!("session `{}` holds no seat",
                                                   body["session"].as_str().unwrap()) }),
                    ),
                    _ => (
                        "404 Not Found",
                        json!({ "code": "NOT_FOUND", "rule": "api", "message": "no route" }),
                    ),
                };
                let answer = answer.to_string();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                    answer.len()
                );
            }
        });
        LicenseServer { address, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut TcpStream) -> (String, Value) {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    line.to_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .map_or(0, |length| length.trim().parse().unwrap());
            if bytes.len() >= end + 4 + length {
                let mut first = head.lines().next().unwrap().split(' ');
                let line = format!("{} {}", first.next().unwrap(), first.next().unwrap());
                let body = &bytes[end + 4..end + 4 + length];
                let body = if body.is_empty() {
                    Value::Null
                } else {
                    serde_json::from_slice(body).unwrap()
                };
                return (line, body);
            }
        }
        let read = stream.read(&mut chunk).unwrap();
        assert!(read > 0, "the request ended early");
        bytes.extend_from_slice(&chunk[..read]);
    }
}

fn checkout(body: &Value) -> Request {
    Request {
        actor: Actor::EndUser,
        action: Action::Checkout {
            key: body["key"].as_str().unwrap().to_owned(),
            target: serde_json::from_value::<ProductRef>(body["target"].clone()).unwrap(),
            machine: serde_json::from_value::<Fingerprint>(body["machine"].clone()).unwrap(),
            session: body["session"].as_str().unwrap().to_owned(),
        },
    }
}

fn query_answer() -> Value {
    json!({ "licenses": [
        { "key": "GSTAR-NET-1", "product": "gstarcad", "edition": "professional", "version": "2027",
          "seats": 5, "free": 3, "borrowed": 1, "borrow_max_days": 30,
          "expires_at": "2027-07-01T00:00:00Z", "status": "serving" },
        { "key": "GSTAR-NET-2", "product": "gstarcad", "edition": "standard", "version": "2027",
          "seats": 10, "free": 0, "borrowed": 0, "borrow_max_days": null, "expires_at": null,
          "status": "SERVER_LICENSE_EXPIRED: the server license was not revalidated" }
    ] })
}

/// Waits for `child` to exit, for at most `limit`.
fn wait_with_limit(mut child: std::process::Child, limit: Duration) -> Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "licet did not exit in time: {}{}",
                text(&output.stdout),
                text(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn seat_query_prints_what_the_license_server_serves() {
    let setup = Setup::new();
    let server = LicenseServer::start(&setup, Mode::ForceReleased);
    // The server's address and license port, without a scheme.
    let out = run(&["seat", "query", "--server", &server.address]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "\
PRODUCT   EDITION       VERSION  KEY          SEATS  FREE  BORROWED  BORROW MAX  EXPIRES               STATUS
gstarcad  professional  2027     GSTAR-NET-1  5      3     1         30 days     2027-07-01 00:00 UTC  serving
gstarcad  standard      2027     GSTAR-NET-2  10     0     0         -           never                 SERVER_LICENSE_EXPIRED: the server license was not revalidated
"
    );
    let url = format!("http://{}", server.address);
    let out = run(&["seat", "query", "--server", &url, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(printed, query_answer());
    assert_eq!(
        server.requests(),
        ["GET /v1/seats/query", "GET /v1/seats/query"]
    );

    // Nothing listening: a failure, exit 3.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = free.local_addr().unwrap().to_string();
    drop(free);
    let out = run(&["seat", "query", "--server", &address]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("cannot be reached"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["seat", "query", "--server", "127.0.0.1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("host:port"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn seat_hold_reports_a_seat_the_license_server_released_and_exits_denied() {
    let setup = Setup::new();
    let server = LicenseServer::start(&setup, Mode::ForceReleased);
    let child = setup
        .command(&[
            "seat",
            "hold",
            "--server",
            &server.address,
            "--key",
            NET,
            "--edition",
            "professional",
        ])
        // Standard input stays open: only the server ends the hold.
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = wait_with_limit(child, Duration::from_secs(30));
    let stdout = text(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{stdout}{}",
        text(&output.stderr)
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert!(lines[0].starts_with("SEAT_GRANTED: "), "{stdout}");
    let lost = lines[1]
        .strip_prefix("LEASE_NOT_FOUND: the seat of session ")
        .unwrap_or_else(|| panic!("{stdout}"));
    let (session, why) = lost.split_once(' ').unwrap();
    assert_eq!(session.len(), 32, "{stdout}");
    assert_eq!(
        why,
        format!("was released by the license server: session `{session}` holds no seat")
    );
    // No other seat was taken, and nothing released.
    assert_eq!(
        server.requests(),
        ["POST /v1/seats/checkout", "POST /v1/seats/heartbeat"]
    );
    // The seat is forgotten here.
    let out = setup.command(&["check"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("NOT_ACTIVATED: "),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn seat_hold_refuses_a_certificate_outside_its_server_license() {
    let setup = Setup::new();
    let server = LicenseServer::start(&setup, Mode::WrongKey);
    let out = setup
        .command(&[
            "seat",
            "hold",
            "--server",
            &server.address,
            "--key",
            NET,
            "--edition",
            "professional",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with(
            "CERTIFICATE_OUTSIDE_SERVER_LICENSE: the certificate is not signed by the license \
             server of its server license: "
        ),
        "{stdout}"
    );
    assert_eq!(server.requests(), ["POST /v1/seats/checkout"]);
    assert!(!Path::new(&setup.path("state").join("gstarcad.state")).exists());
}
