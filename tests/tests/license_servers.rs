//! The two trust domains end to end, with real processes on loopback: the vendor's activation
//! center (`licet-server --demo`), customers' license servers (`licet-server` in the
//! `license-server` role) activated online and by files, LAN clients through the `licet` library
//! and binary, and the customer as an adversary who can read and write all of a license server's
//! files.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use common::{licet_server, post_bytes, DemoServer, Outcome, ServerProcess};
use licet_client::keys::read_signing_key;
use licet_client::{Client, FixedProbe, HttpTransport, Reply, Transport, TransportError};
use licet_engine::certificate::{self, Binding, CertificateClaims, CertificateKind, TermKind};
use licet_engine::server_license::{self, ServedKinds, ServerLicense};
use licet_engine::{Code, Decision, Fingerprint, Request};
use serde_json::{json, Value};
use tempfile::TempDir;

const EDITION: &str = "professional";

/// A license server's directory, made by `licet-server init --role license-server`.
struct LicenseServerDir {
    dir: TempDir,
}

impl LicenseServerDir {
    /// A new license server of the center's product, with a copy of its policy in its directory.
    fn init(center: &DemoServer) -> LicenseServerDir {
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("gstarcad.yaml");
        std::fs::copy(&center.policy, &policy).unwrap();
        let server_dir = dir.path().join("server");
        let out = licet_server(&[
            OsStr::new("init"),
            server_dir.as_os_str(),
            OsStr::new("--role"),
            OsStr::new("license-server"),
            OsStr::new("--policy"),
            policy.as_os_str(),
            OsStr::new("--vendor-public-key"),
            center.vendor_key().as_os_str(),
            OsStr::new("--center"),
            OsStr::new(&center.url),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
        ]);
        assert_eq!(out.code, 0, "{out:#?}");
        // It holds its own key pair and the vendor's public key, never the vendor's secret.
        assert!(server_dir.join("server.secret").exists());
        assert!(server_dir.join("vendor.pub").exists());
        assert!(!server_dir.join("vendor.secret").exists());
        let config = std::fs::read_to_string(server_dir.join("licet-server.yaml")).unwrap();
        assert!(!config.contains("vendor_key:"), "{config}");
        LicenseServerDir { dir }
    }

    fn server_dir(&self) -> PathBuf {
        self.dir.path().join("server")
    }

    fn config(&self) -> PathBuf {
        self.server_dir().join("licet-server.yaml")
    }

    /// `licet-server COMMAND --config <this> ARGS`.
    fn tool(&self, command: &str, args: &[&str]) -> Outcome {
        let config = self.config();
        let mut all: Vec<&OsStr> = vec![OsStr::new(command), OsStr::new("--config")];
        all.push(config.as_os_str());
        all.extend(args.iter().map(OsStr::new));
        licet_server(&all)
    }

    fn start(&self) -> ServerProcess {
        ServerProcess::start(&self.config())
    }

    fn status(&self) -> Value {
        let out = self.tool("status", &["--json"]);
        assert_eq!(out.code, 0, "{out:#?}");
        serde_json::from_str(&out.stdout).unwrap()
    }

    fn server_license_path(&self, key: &str) -> PathBuf {
        self.server_dir()
            .join("server-licenses")
            .join(format!("{key}.lic"))
    }
}

fn ok(out: &Outcome) -> &Outcome {
    assert_eq!(out.code, 0, "{out:#?}");
    out
}

/// A LAN client machine of the center's product, with its own state and fixed fingerprint.
fn lan_client(center: &DemoServer, root: &Path, name: &str) -> Client {
    let fingerprint = Fingerprint {
        components: ["machine-id", "mac", "cpu", "disk"]
            .iter()
            .map(|component| ((*component).to_owned(), format!("{name}-{component}")))
            .collect(),
    };
    Client::new(
        &root.join(name),
        licet_client::client::load_policy(&center.policy).unwrap(),
        licet_client::keys::read_verifying_key(&center.vendor_key()).unwrap(),
        Box::new(FixedProbe::new(fingerprint)),
    )
}

fn transport(server: &ServerProcess) -> HttpTransport {
    HttpTransport::new(server.address(), "gstarcad").unwrap()
}

/// Waits (at most 20 s) until `condition` holds: the running server re-reads its files every few
/// seconds.
fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    for _ in 0..100 {
        if condition() {
            return;
        }
        std::thread::sleep(StdDuration::from_millis(200));
    }
    panic!("{what} did not happen");
}

fn seats_used(status: &Value, key: &str) -> (u64, u64) {
    let license = status["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|license| license["key"] == key)
        .unwrap_or_else(|| panic!("{key} is not in {status:#}"));
    (
        license["used"].as_u64().unwrap(),
        license["seats"].as_u64().unwrap(),
    )
}

#[test]
fn a_license_server_serves_its_lan_within_its_server_license_and_moves_by_files() {
    let center = DemoServer::start();
    let key = center.network_key().to_owned();
    let machines = tempfile::tempdir().unwrap();

    // The customer's license server is activated online against the center.
    let first = LicenseServerDir::init(&center);
    let activated = first.tool("activate", &["--key", &key, "--edition", EDITION]);
    ok(&activated);
    let running = first.start();

    // LAN clients check out every seat the server license grants, and no more.
    let clients: Vec<Client> = (0..6)
        .map(|n| lan_client(&center, machines.path(), &format!("pc-{n}")))
        .collect();
    let mut lan = transport(&running);
    for client in &clients[..5] {
        let granted = client
            .checkout(&mut lan, &key, EDITION, Utc::now())
            .unwrap();
        assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
        let report = client.check().unwrap();
        assert_eq!(report.decision.code, Code::Valid, "{report:?}");
        // The seat certificate is the license server's, under the vendor's server license.
        let served_under = report
            .server_license
            .expect("served under a server license");
        assert_eq!(
            (served_under.license_key.as_str(), served_under.seats),
            (key.as_str(), 5)
        );
    }
    let refused = clients[5]
        .checkout(&mut lan, &key, EDITION, Utc::now())
        .unwrap();
    assert_eq!(refused.code, Code::SeatsExhausted, "{refused:?}");
    // The center does not also serve the pool its license server serves.
    let at_center = clients[5]
        .checkout(&mut center.transport(), &key, EDITION, Utc::now())
        .unwrap();
    assert_eq!(at_center.code, Code::ServedElsewhere, "{at_center:?}");

    // A heartbeat renews the seat and its certificate.
    let renewed = clients[0].heartbeat(&mut lan, Utc::now()).unwrap();
    assert_eq!(renewed.code, Code::LeaseRenewed, "{renewed:?}");

    // The seeds' "Query", from the command line, by server address and port.
    let query = std::process::Command::new(common::binaries().join("licet"))
        .args(["seat", "query", "--server", running.address(), "--json"])
        .output()
        .unwrap();
    let query = Outcome::from(query);
    assert_eq!(query.code, 0, "{query:#?}");
    let served: Value = serde_json::from_str(&query.stdout).unwrap();
    let entry = &served["licenses"][0];
    assert_eq!(
        (entry["key"].as_str(), entry["edition"].as_str()),
        (Some(key.as_str()), Some(EDITION))
    );
    assert_eq!(
        (entry["seats"].as_u64(), entry["free"].as_u64()),
        (Some(5), Some(0)),
        "{served:#}"
    );
    assert_eq!(entry["borrow_max_days"].as_u64(), Some(30), "{served:#}");

    // The LAN administrator sees the holders and force-releases one; its holder learns it.
    let status = first.status();
    assert_eq!(seats_used(&status, &key), (5, 5), "{status:#}");
    let session = clients[1].seat().unwrap().unwrap().session;
    ok(&first.tool("release", &[&session]));
    let lost = clients[1].heartbeat(&mut lan, Utc::now()).unwrap();
    assert_eq!(lost.code, Code::LeaseNotFound, "{lost:?}");
    assert!(clients[1].seat().unwrap().is_none());
    assert_eq!(
        clients[1].check().unwrap().decision.code,
        Code::NotActivated
    );

    // Borrowing: a laptop borrows the freed seat for a week and runs offline with it.
    let until = Utc::now() + Duration::days(7);
    let borrowed = clients[5]
        .borrow(&mut lan, &key, EDITION, until, Utc::now())
        .unwrap();
    assert_eq!(borrowed.code, Code::Borrowed, "{borrowed:?}");
    let offline = clients[5].check_at(Utc::now() + Duration::days(6)).unwrap();
    assert_eq!(offline.decision.code, Code::Valid, "{offline:?}");
    let back = clients[5].return_borrowed(&mut lan, Utc::now()).unwrap();
    assert_eq!(back.code, Code::BorrowReturned, "{back:?}");

    // The vendor sells two more seats; the license server picks them up when it revalidates.
    let (status, answer) = center.admin(
        "PATCH",
        &format!("/v1/admin/licenses/{key}"),
        &json!({ "seats": 7 }),
    );
    assert_eq!(status, 200, "{answer}");
    let renewed = first.tool("renew", &["--key", &key]);
    assert!(ok(&renewed).stdout.contains("7 seats"), "{renewed:#?}");
    eventually("the running server serving 7 seats", || {
        clients[1]
            .checkout(&mut lan, &key, EDITION, Utc::now())
            .unwrap()
            .code
            == Code::SeatGranted
    });
    assert_eq!(seats_used(&first.status(), &key), (5, 7));

    // Moving to new hardware: return online, then activate a second license server by files.
    ok(&first.tool("return", &["--key", &key]));
    assert!(!first.server_license_path(&key).exists());
    eventually("the first server to stop serving", || {
        matches!(
            clients[2].heartbeat(&mut lan, Utc::now()),
            Ok(decision) if decision.code != Code::LeaseRenewed
        )
    });
    let second = LicenseServerDir::init(&center);
    let request = second.dir.path().join("activation-request.xml");
    ok(&second.tool(
        "activate",
        &[
            "--key",
            &key,
            "--edition",
            EDITION,
            "--request-out",
            request.to_str().unwrap(),
        ],
    ));
    let (status, response) = post_bytes(
        &center.url,
        "/v1/exchange",
        "application/xml",
        &std::fs::read(&request).unwrap(),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&response));
    let response_path = second.dir.path().join("activation-response.xml");
    std::fs::write(&response_path, &response).unwrap();
    ok(&second.tool(
        "activate",
        &["--load-response", response_path.to_str().unwrap()],
    ));
    let moved = second.start();
    let mut moved_lan = transport(&moved);
    let granted = clients[3]
        .checkout(&mut moved_lan, &key, EDITION, Utc::now())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
    assert_eq!(clients[3].check().unwrap().decision.code, Code::Valid);
    // The same response file loaded again is refused: it answered its request already.
    let again = second.tool(
        "activate",
        &["--load-response", response_path.to_str().unwrap()],
    );
    assert_ne!(again.code, 0, "{again:#?}");
}

/// A license server that answers every request with what the customer forged.
struct Forged(Reply);

impl Transport for Forged {
    fn send(&mut self, _request: &Request) -> Result<Reply, TransportError> {
        Ok(self.0.clone())
    }
}

fn forged_reply(code: Code, certificate: String, server_license: &str) -> Forged {
    Forged(Reply {
        decision: Decision::allow(code, "seats.pool", "granted", Vec::new()),
        certificate: Some(certificate),
        server_license: Some(server_license.to_owned()),
    })
}

/// What a seat certificate of `served` for `machine` says, as its license server would sign it.
fn seat_claims(served: &ServerLicense, machine: &Client) -> CertificateClaims {
    let license = served.claims();
    let now = Utc::now();
    let lease = Duration::seconds(license.lease_seconds);
    CertificateClaims {
        kind: CertificateKind::Seat,
        serial: "forged".to_owned(),
        license_key: license.license_key.clone(),
        product: license.product.clone(),
        edition: license.edition.clone(),
        version: license.version.clone(),
        license_type: license.license_type.clone(),
        term: license.term,
        features: license.features.clone(),
        counters: license.counters.clone(),
        binding: Binding::Fingerprint(machine.fingerprint().unwrap().components),
        binding_rule: Some(machine.policy().binding_rule()),
        issued_at: now,
        not_before: now,
        expires_at: Some(now + lease),
        validate_after: None,
        offline_until: Some(now + lease),
        rollback_tolerance_seconds: machine.policy().clock.rollback_tolerance.num_seconds(),
        policy_hash: license.policy_hash,
    }
}

#[test]
fn nothing_in_the_license_servers_directory_lets_a_client_accept_more_than_its_server_license() {
    let center = DemoServer::start();
    let key = center.network_key().to_owned();
    let machines = tempfile::tempdir().unwrap();
    let customer = LicenseServerDir::init(&center);
    ok(&customer.tool("activate", &["--key", &key, "--edition", EDITION]));

    // The customer reads everything the license server keeps: its own secret key and its server
    // license.
    let server_key = read_signing_key(&customer.server_dir().join("server.secret")).unwrap();
    let served_text = std::fs::read_to_string(customer.server_license_path(&key)).unwrap();
    let vendor = licet_client::keys::read_verifying_key(&center.vendor_key()).unwrap();
    let served = ServerLicense::from_armored(&served_text, &vendor).unwrap();
    let client = lan_client(&center, machines.path(), "desk");

    // What the license server may sign, signed with its key, is accepted: the key works.
    let honest = certificate::issue(seat_claims(&served, &client), &server_key).to_armored();
    let accepted = client
        .checkout(
            &mut forged_reply(Code::SeatGranted, honest, &served_text),
            &key,
            EDITION,
            Utc::now(),
        )
        .unwrap();
    assert_eq!(accepted.code, Code::SeatGranted);
    assert_eq!(client.check().unwrap().decision.code, Code::Valid);
    client
        .release(
            &mut Forged(Reply::new(
                Decision::allow(Code::SeatReleased, "seats.lease", "released", Vec::new()),
                None,
            )),
            Utc::now(),
        )
        .unwrap();
    assert_eq!(client.check().unwrap().decision.code, Code::NotActivated);

    // Anything more, signed with the same key under the same server license, is refused.
    let sign = |change: &dyn Fn(&mut CertificateClaims)| {
        let mut claims = seat_claims(&served, &client);
        change(&mut claims);
        certificate::issue(claims, &server_key).to_armored()
    };
    let outside = Code::CertificateOutsideServerLicense;
    let forgeries: Vec<(&str, Code, String)> = vec![
        (
            "another edition",
            Code::SeatGranted,
            sign(&|claims| claims.edition = "plus".to_owned()),
        ),
        (
            "every feature on",
            Code::SeatGranted,
            sign(&|claims| {
                claims
                    .features
                    .insert("cloud-collaboration".to_owned(), true);
            }),
        ),
        (
            "a later expiry",
            Code::SeatGranted,
            sign(&|claims| {
                claims.expires_at = Some(Utc::now() + Duration::days(3650));
                claims.offline_until = claims.expires_at;
            }),
        ),
        (
            "a perpetual seat",
            Code::SeatGranted,
            sign(&|claims| {
                claims.expires_at = None;
                claims.offline_until = None;
            }),
        ),
        (
            "a borrow past the maximum",
            Code::Borrowed,
            sign(&|claims| {
                claims.kind = CertificateKind::Borrow;
                claims.expires_at = Some(Utc::now() + Duration::days(365));
                claims.offline_until = None;
            }),
        ),
        (
            "a standalone activation",
            Code::Activated,
            sign(&|claims| {
                claims.kind = CertificateKind::Activation;
                claims.expires_at = Some(Utc::now() + Duration::minutes(5));
            }),
        ),
        (
            "a trial",
            Code::TrialStarted,
            sign(&|claims| {
                claims.kind = CertificateKind::Trial;
                claims.term = TermKind::Trial;
                claims.license_key = String::new();
                claims.license_type = String::new();
            }),
        ),
    ];
    for (what, code, certificate) in forgeries {
        let mut forged = forged_reply(code, certificate, &served_text);
        let result = match code {
            Code::Activated => client.activate(&mut forged, &key, EDITION, Utc::now()),
            Code::TrialStarted => client.start_trial(&mut forged, EDITION, Utc::now()),
            Code::Borrowed => client.borrow(
                &mut forged,
                &key,
                EDITION,
                Utc::now() + Duration::days(365),
                Utc::now(),
            ),
            _ => client.checkout(&mut forged, &key, EDITION, Utc::now()),
        };
        let error = result.expect_err(what);
        assert_eq!(error.code(), Some(outside), "{what}: {error}");
        assert_eq!(
            client.check().unwrap().decision.code,
            Code::NotActivated,
            "{what}"
        );
    }

    // A server license of its own making (the server's key, not the vendor's) is refused.
    let mut bigger = served.claims().clone();
    bigger.seats = 1000;
    bigger.kinds = ServedKinds {
        seat: true,
        borrow: true,
    };
    let self_signed = server_license::issue(bigger, &server_key).to_armored();
    let honest = certificate::issue(seat_claims(&served, &client), &server_key).to_armored();
    let error = client
        .checkout(
            &mut forged_reply(Code::SeatGranted, honest, &self_signed),
            &key,
            EDITION,
            Utc::now(),
        )
        .expect_err("a self-signed server license");
    assert_eq!(error.code(), Some(Code::ServerLicenseInvalid), "{error}");

    // More seats in its database: the license server still serves the server license's five.
    let running = customer.start();
    let mut lan = transport(&running);
    let database = customer.server_dir().join("licet.db");
    let connection = rusqlite::Connection::open(&database).unwrap();
    let changed = connection
        .execute("UPDATE licenses SET seats = 1000 WHERE key = ?1", [&key])
        .unwrap();
    assert_eq!(changed, 1);
    let pool: Vec<Client> = (0..6)
        .map(|n| lan_client(&center, machines.path(), &format!("lan-{n}")))
        .collect();
    for client in &pool[..5] {
        assert_eq!(
            client
                .checkout(&mut lan, &key, EDITION, Utc::now())
                .unwrap()
                .code,
            Code::SeatGranted
        );
    }
    let sixth = pool[5]
        .checkout(&mut lan, &key, EDITION, Utc::now())
        .unwrap();
    assert_eq!(sixth.code, Code::SeatsExhausted, "{sixth:?}");
    drop(running);

    // More seats in its server license file: one changed byte, and it is refused, with the reason.
    let mut text = served_text.clone().into_bytes();
    let at = text.iter().position(|byte| *byte == b'\n').unwrap() + 20;
    text[at] = if text[at] == b'A' { b'B' } else { b'A' };
    std::fs::write(customer.server_license_path(&key), &text).unwrap();
    let running = customer.start();
    let mut lan = transport(&running);
    let refused = pool[5]
        .checkout(&mut lan, &key, EDITION, Utc::now())
        .unwrap();
    assert_eq!(refused.code, Code::ServerLicenseInvalid, "{refused:?}");
    let status = customer.status();
    let listed = status["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["key"] == key)
        .unwrap()
        .clone();
    assert_eq!(listed["code"], "SERVER_LICENSE_INVALID", "{status:#}");
    assert_eq!(listed["serving"], false, "{status:#}");
    drop(running);

    // A more generous policy in its directory: the server license was decided under another one.
    std::fs::write(customer.server_license_path(&key), served_text.as_bytes()).unwrap();
    let policy = customer.dir.path().join("gstarcad.yaml");
    let generous = std::fs::read_to_string(&policy)
        .unwrap()
        .replace("default_seats: 5", "default_seats: 500")
        .replace("max_days: 30", "max_days: 365");
    std::fs::write(&policy, generous).unwrap();
    let running = customer.start();
    let refused = pool[5]
        .checkout(&mut transport(&running), &key, EDITION, Utc::now())
        .unwrap();
    assert_eq!(refused.code, Code::ServerLicenseInvalid, "{refused:?}");
    drop(running);

    // And the vendor's secret in its configuration: the license server does not start.
    let config = customer.config();
    let mut yaml = std::fs::read_to_string(&config).unwrap();
    yaml.push_str(&format!(
        "vendor_key: {}\n",
        center.vendor_key().with_extension("secret").display()
    ));
    std::fs::write(&config, yaml).unwrap();
    let out = licet_server(&[OsStr::new("--config"), config.as_os_str()]);
    assert_ne!(out.code, 0, "{out:#?}");
    assert!(out.stderr.contains("vendor"), "{out:#?}");
}
