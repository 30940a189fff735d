//! The `license-server` role: a customer's license server that never holds the vendor key,
//! activated against an activation center (both in this process, on 127.0.0.1), serving seats
//! within its vendor-signed server licenses and signing certificates with its own key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use axum::Router;
use chrono::Utc;
use common::{call, generous_limits, gstarcad, machine, policy_paths, TestServer, ADMIN_TOKEN};
use ed25519_dalek::SigningKey;
use licet_engine::certificate::{Binding, Certificate, CertificateKind, TermKind};
use licet_engine::server_license::{self, verify_served, ServerLicense, ServerLicenseClaims};
use licet_engine::Fingerprint;
use licet_server::api::{router, AppState};
use licet_server::config::{AdminTokenConfig, Config, ServerRole};
use licet_server::dongle::NoDongle;
use licet_server::keys::{generate_key_files, generate_key_pair, read_signing_key, token_hash};
use licet_server::license_server::activation::Revalidation;
use licet_server::license_server::{
    status, Entry, FixedIdentity, LicenseServer, LicenseServerError,
};
use licet_server::server::{build_state, build_state_with, serve, BuildOptions};
use licet_server::service::OffsetClock;
use serde_json::{json, Value};
use tempfile::TempDir;

/// An activation center listening on 127.0.0.1.
struct Center {
    server: TestServer,
    url: String,
}

impl Center {
    async fn start() -> Center {
        let server = TestServer::start(common::Backend::Sqlite).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let app = server
            .router
            .clone()
            .into_make_service_with_connect_info::<SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Center {
            server,
            url: format!("http://{address}"),
        }
    }

    fn vendor_public_key(&self) -> PathBuf {
        self.server.dir.path().join("vendor.pub")
    }

    fn vendor(&self) -> SigningKey {
        read_signing_key(&self.server.dir.path().join("vendor.secret")).unwrap()
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        self.server.admin(method, path, body).await
    }
}

/// The machine the license server runs on.
fn server_machine() -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", "ls-id"),
        ("mac", "ls-mac"),
        ("cpu", "ls-cpu"),
        ("disk", "ls-disk"),
    ])
}

/// A license server with its own key, in its own directory and database.
struct Ls {
    dir: TempDir,
    config: Config,
    clock: Arc<OffsetClock>,
    state: AppState,
    router: Router,
}

impl Ls {
    async fn start(center: Option<&str>, vendor_public_key: &Path) -> Ls {
        Ls::start_with(center, vendor_public_key, |_| {}).await
    }

    async fn start_with(
        center: Option<&str>,
        vendor_public_key: &Path,
        adjust: impl FnOnce(&mut Config),
    ) -> Ls {
        let dir = tempfile::tempdir().unwrap();
        generate_key_pair(dir.path(), "server").unwrap();
        std::fs::copy(vendor_public_key, dir.path().join("vendor.pub")).unwrap();
        let mut config = Config {
            role: ServerRole::LicenseServer,
            listen: "127.0.0.1:0".into(),
            database: format!("sqlite://{}", dir.path().join("licet.db").display()),
            policies: policy_paths(),
            server_key: Some(dir.path().join("server.secret")),
            vendor_public_key: Some(dir.path().join("vendor.pub")),
            center: center.map(str::to_owned),
            admin_tokens: vec![AdminTokenConfig {
                name: "tests".into(),
                sha256: token_hash(ADMIN_TOKEN),
            }],
            rate_limits: generous_limits(),
            ..Config::default()
        };
        adjust(&mut config);
        std::fs::write(
            dir.path().join("licet-server.yaml"),
            serde_yaml::to_string(&config).unwrap(),
        )
        .unwrap();
        let clock = Arc::new(OffsetClock::default());
        let state = build(&config, &clock).await;
        Ls {
            router: router(state.clone()),
            dir,
            config,
            clock,
            state,
        }
    }

    /// The same license server started again on its directory and database.
    async fn restart(&mut self) {
        self.state = build(&self.config, &self.clock).await;
        self.router = router(self.state.clone());
    }

    fn server(&self) -> &Arc<LicenseServer> {
        self.state.licensing.license_server().unwrap()
    }

    fn now(&self) -> chrono::DateTime<Utc> {
        self.state.licensing.now()
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("licet-server.yaml")
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        call(&self.router, Method::POST, path, None, Some(body)).await
    }

    async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        call(&self.router, method, path, Some(ADMIN_TOKEN), body).await
    }

    async fn checkout(&self, key: &str, session: &str, n: usize) -> (u16, Value) {
        self.post(
            "/v1/seats/checkout",
            json!({ "key": key, "target": gstarcad("professional"), "machine": machine(n), "session": session }),
        )
        .await
    }

    async fn heartbeat(&self, key: &str, session: &str) -> (u16, Value) {
        self.post(
            "/v1/seats/heartbeat",
            json!({ "key": key, "session": session }),
        )
        .await
    }

    async fn query(&self) -> Value {
        let (status, body) = call(&self.router, Method::GET, "/v1/seats/query", None, None).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    fn license_file(&self, key: &str) -> PathBuf {
        self.dir
            .path()
            .join("server-licenses")
            .join(format!("{key}.lic"))
    }
}

async fn build(config: &Config, clock: &Arc<OffsetClock>) -> AppState {
    build_state_with(
        config,
        Arc::new(NoDongle),
        BuildOptions {
            identity: Some(Arc::new(FixedIdentity(server_machine()))),
            clock: Some(clock.clone()),
        },
    )
    .await
    .unwrap()
}

fn code(answer: &(u16, Value)) -> (u16, &str) {
    (answer.0, answer.1["code"].as_str().unwrap_or_default())
}

fn vendor_key(center: &Center) -> ed25519_dalek::VerifyingKey {
    center.server.state.licensing.verifying_key()
}

/// Activates a new network license of `seats` seats on `ls` online; answers its key.
async fn activated(center: &Center, ls: &Ls, seats: u32) -> String {
    let key = center.server.network_key(seats).await;
    let served = ls
        .server()
        .activate_online(
            Some(&center.url),
            &key,
            "gstarcad",
            "professional",
            ls.now(),
        )
        .await
        .unwrap();
    assert_eq!(served.license.claims().seats, seats);
    key
}

fn licet_server() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_licet-server"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_creates_no_vendor_key_and_a_license_server_refuses_one() {
    let vendor = tempfile::tempdir().unwrap();
    generate_key_files(vendor.path()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("ls");
    let output = licet_server()
        .arg("init")
        .arg("--role")
        .arg("license-server")
        .arg(&dir)
        .arg("--policy")
        .arg(common::repo_root().join("policies/gstarcad.yaml"))
        .arg("--vendor-public-key")
        .arg(vendor.path().join("vendor.pub"))
        .arg("--center")
        .arg("http://127.0.0.1:9")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    for file in [
        "server.secret",
        "server.pub",
        "vendor.pub",
        "licet.db",
        "licet-server.yaml",
    ] {
        assert!(dir.join(file).exists(), "{file}");
    }
    assert!(!dir.join("vendor.secret").exists());
    assert_eq!(
        std::fs::read_to_string(dir.join("vendor.pub")).unwrap(),
        std::fs::read_to_string(vendor.path().join("vendor.pub")).unwrap()
    );
    let yaml_path = dir.join("licet-server.yaml");
    let yaml = std::fs::read_to_string(&yaml_path).unwrap();
    assert!(yaml.contains("role: license-server"), "{yaml}");
    assert!(!yaml.contains("vendor_key"), "{yaml}");
    let config = Config::load(&yaml_path).unwrap();
    assert_eq!(config.center.as_deref(), Some("http://127.0.0.1:9"));

    // Nothing activated yet.
    let output = licet_server()
        .arg("status")
        .arg("--config")
        .arg(&yaml_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("no server license"));

    // An offline activation starts with a request file naming the server's key.
    let request = root.path().join("request.xml");
    let output = licet_server()
        .arg("activate")
        .arg("--config")
        .arg(&yaml_path)
        .arg("--key")
        .arg("GSTA-00000-00000-00000-00000")
        .arg("--edition")
        .arg("professional")
        .arg("--request-out")
        .arg(&request)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let file = std::fs::read_to_string(&request).unwrap();
    assert!(file.contains(r#"role="license-server""#), "{file}");
    assert!(file.contains("<server-key>"), "{file}");
    let pending = std::fs::read_to_string(dir.join("exchange-state.json")).unwrap();
    assert!(
        pending.contains("GSTA-00000-00000-00000-00000"),
        "{pending}"
    );

    // A vendor key in a license server's configuration stops it from starting.
    std::fs::write(
        &yaml_path,
        format!(
            "{yaml}vendor_key: {}\n",
            vendor.path().join("vendor.secret").display()
        ),
    )
    .unwrap();
    let output = licet_server()
        .arg("--config")
        .arg(&yaml_path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("never holds the vendor's secret key"),
        "{stderr}"
    );

    // So does the vendor's secret given as the server's own key.
    let mut config = config;
    config.server_key = Some(vendor.path().join("vendor.secret"));
    config.vendor_public_key = Some(vendor.path().join("vendor.pub"));
    let error = build_state(&config, Arc::new(NoDongle)).await.unwrap_err();
    assert!(
        error.to_string().contains("is the vendor's secret key"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seats_are_served_within_the_server_license_and_signed_by_the_server() {
    let center = Center::start().await;
    let ls = Ls::start(Some(&center.url), &center.vendor_public_key()).await;
    let vendor = vendor_key(&center);
    let key = activated(&center, &ls, 2).await;
    assert!(ls.license_file(&key).exists());

    let granted = ls.checkout(&key, "s1", 1).await;
    assert_eq!(code(&granted), (200, "SEAT_GRANTED"), "{}", granted.1);
    let certificate = granted.1["certificate"].as_str().unwrap();
    let served_under = granted.1["server_license"].as_str().unwrap();
    let (verified, license) = verify_served(certificate, served_under, &vendor).unwrap();
    assert_eq!(verified.claims().kind, CertificateKind::Seat);
    assert_eq!(verified.claims().license_key, key);
    assert_eq!(
        license.claims().server_key,
        ls.server().public_key().to_bytes()
    );
    // Signed by the license server's own key, not the vendor's.
    assert!(Certificate::from_armored(certificate, &vendor).is_err());
    let (status, keys) = call(&ls.router, Method::GET, "/v1/public-key", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        keys["public_key"],
        licet_server::keys::public_key_line(&vendor)
    );
    assert_eq!(
        keys["server_key"],
        licet_server::keys::public_key_line(&ls.server().public_key())
    );

    assert_eq!(
        code(&ls.checkout(&key, "s2", 2).await),
        (200, "SEAT_GRANTED")
    );
    assert_eq!(
        code(&ls.checkout(&key, "s3", 3).await),
        (409, "SEATS_EXHAUSTED")
    );
    // The database row is not what is served: 1000 seats there change nothing.
    let db = rusqlite::Connection::open(ls.dir.path().join("licet.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE licenses SET seats = 1000 WHERE key = ?1",
            rusqlite::params![key],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(db);
    assert_eq!(
        code(&ls.checkout(&key, "s3", 3).await),
        (409, "SEATS_EXHAUSTED")
    );
    // Nor can an administrator of the license server change its licenses, or activate anything.
    let answer = ls
        .admin(
            Method::PATCH,
            &format!("/v1/admin/licenses/{key}"),
            Some(json!({ "seats": 1000 })),
        )
        .await;
    assert_eq!(code(&answer), (403, "WRONG_LICENSE_TYPE"), "{}", answer.1);
    assert_eq!(answer.1["rule"], "license_server.role");
    let answer = ls
        .post(
            "/v1/activate",
            json!({ "key": key, "target": gstarcad("professional"), "machine": machine(9) }),
        )
        .await;
    assert_eq!(code(&answer), (403, "WRONG_LICENSE_TYPE"), "{}", answer.1);
    // A key the server holds no server license of.
    let other = center.server.network_key(3).await;
    let answer = ls.checkout(&other, "x", 1).await;
    assert_eq!(
        code(&answer),
        (403, "SERVER_LICENSE_INVALID"),
        "{}",
        answer.1
    );

    assert_eq!(
        code(&ls.heartbeat(&key, "s1").await),
        (200, "LEASE_RENEWED")
    );
    let answer = ls
        .post("/v1/seats/release", json!({ "key": key, "session": "s2" }))
        .await;
    assert_eq!(code(&answer), (200, "SEAT_RELEASED"));

    // Borrowing within the server license's maximum.
    let until = (Utc::now() + chrono::Duration::days(10)).to_rfc3339();
    let answer = ls
        .post(
            "/v1/seats/borrow",
            json!({ "key": key, "target": gstarcad("professional"), "machine": machine(4), "session": "b1", "until": until }),
        )
        .await;
    assert_eq!(code(&answer), (200, "BORROWED"), "{}", answer.1);
    let (borrowed, _) = verify_served(
        answer.1["certificate"].as_str().unwrap(),
        answer.1["server_license"].as_str().unwrap(),
        &vendor,
    )
    .unwrap();
    assert_eq!(borrowed.claims().kind, CertificateKind::Borrow);
    let too_long = (Utc::now() + chrono::Duration::days(31)).to_rfc3339();
    let answer = ls
        .post(
            "/v1/seats/borrow",
            json!({ "key": key, "target": gstarcad("professional"), "machine": machine(5), "session": "b2", "until": too_long }),
        )
        .await;
    assert_eq!(code(&answer), (422, "BORROW_TOO_LONG"), "{}", answer.1);

    // What is served, publicly.
    let query = ls.query().await;
    let served = &query["licenses"][0];
    assert_eq!(served["key"], key.as_str());
    assert_eq!(
        (
            &served["seats"],
            &served["free"],
            &served["borrowed"],
            &served["borrow_max_days"]
        ),
        (&json!(2), &json!(0), &json!(1), &json!(30))
    );
    assert_eq!(served["status"], "serving");
    assert_eq!(served["expires_at"], Value::Null);
    let report = status::status(&ls.state.licensing).await.unwrap();
    let line = &report.licenses[0];
    assert_eq!((line.used, line.borrowed, line.seats), (2, 1, Some(2)));
    let sessions: Vec<&str> = line.holders.iter().map(|h| h.session.as_str()).collect();
    assert_eq!(sessions, ["b1", "s1"]);
    assert!(status::render(&report).contains("borrowed   session b1"));

    // An administrator's force-release; the session learns it at its next heartbeat.
    let answer = ls
        .admin(
            Method::DELETE,
            &format!("/v1/admin/licenses/{key}/seats/s1"),
            None,
        )
        .await;
    assert_eq!(code(&answer), (200, "SEAT_RELEASED"), "{}", answer.1);
    assert_eq!(
        code(&ls.heartbeat(&key, "s1").await),
        (404, "LEASE_NOT_FOUND")
    );
    assert_eq!(ls.query().await["licenses"][0]["free"], 1);
}

/// A server license like `template` for another key, changed by `change` and signed by `signer`.
fn variant(
    template: &ServerLicenseClaims,
    key: &str,
    signer: &SigningKey,
    change: impl FnOnce(&mut ServerLicenseClaims),
) -> String {
    let mut claims = template.clone();
    claims.license_key = key.to_owned();
    claims.serial = format!("sl-test-{key}");
    change(&mut claims);
    server_license::issue(claims, signer).to_armored()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_tampered_expired_and_misbound_server_licenses_are_refused_with_reasons() {
    let center = Center::start().await;
    let ls = Ls::start(None, &center.vendor_public_key()).await;
    let vendor = center.vendor();
    let valid = activated(&center, &ls, 3).await;
    let template = ls.server().stored_claims(&valid).unwrap();
    let now = Utc::now();
    let mut keys = Vec::new();
    for _ in 0..6 {
        keys.push(center.server.network_key(2).await);
    }
    let [foreign, tampered, expired, elsewhere, other_machine, other_policy] =
        <[String; 6]>::try_from(keys).unwrap();
    let write = |key: &str, text: &str| std::fs::write(ls.license_file(key), text).unwrap();

    write(
        &foreign,
        &variant(
            &template,
            &foreign,
            &SigningKey::from_bytes(&[9; 32]),
            |_| {},
        ),
    );
    let good = variant(&template, &tampered, &vendor, |_| {});
    let mut lines: Vec<String> = good.lines().map(str::to_owned).collect();
    let line = &mut lines[2];
    let flipped = if line.starts_with('A') { "B" } else { "A" };
    line.replace_range(0..1, flipped);
    write(&tampered, &(lines.join("\n") + "\n"));
    write(
        &expired,
        &variant(&template, &expired, &vendor, |claims| {
            claims.term = TermKind::Rental;
            claims.not_before = now - chrono::Duration::days(30);
            claims.expires_at = Some(now - chrono::Duration::days(1));
        }),
    );
    write(
        &elsewhere,
        &variant(&template, &elsewhere, &vendor, |claims| {
            claims.server_key = SigningKey::from_bytes(&[5; 32]).verifying_key().to_bytes();
        }),
    );
    write(
        &other_machine,
        &variant(&template, &other_machine, &vendor, |claims| {
            claims.binding = Binding::Fingerprint(
                Fingerprint::from_pairs([
                    ("machine-id", "x"),
                    ("mac", "y"),
                    ("cpu", "ls-cpu"),
                    ("disk", "ls-disk"),
                ])
                .components,
            );
        }),
    );
    write(
        &other_policy,
        &variant(&template, &other_policy, &vendor, |claims| {
            claims.policy_hash = [7; 32];
        }),
    );
    ls.server().reload().await.unwrap();

    let report = status::status(&ls.state.licensing).await.unwrap();
    let status_of = |key: &str| {
        report
            .licenses
            .iter()
            .find(|line| line.key == key)
            .unwrap()
            .status
            .clone()
    };
    assert_eq!(status_of(&valid), "serving");
    for (key, expected_code, why) in [
        (&foreign, "SERVER_LICENSE_INVALID", "signed by the vendor"),
        (&tampered, "SERVER_LICENSE_INVALID", "signed by the vendor"),
        (&expired, "SERVER_LICENSE_EXPIRED", "expired"),
        (
            &elsewhere,
            "SERVER_LICENSE_INVALID",
            "another license server's key",
        ),
        (&other_machine, "SERVER_LICENSE_INVALID", "another machine"),
        (&other_policy, "SERVER_LICENSE_INVALID", "another policy"),
    ] {
        let line = status_of(key);
        assert!(
            line.starts_with(&format!("{expected_code}: ")),
            "{key}: {line}"
        );
        assert!(line.contains(why), "{key}: {line}");
        let answer = ls.checkout(key, "s", 1).await;
        assert_eq!(code(&answer), (403, expected_code), "{key}: {}", answer.1);
    }
    assert_eq!(
        code(&ls.checkout(&valid, "s", 1).await),
        (200, "SEAT_GRANTED")
    );
    // The query shows them too, none with free seats.
    let query = ls.query().await;
    let listed = query["licenses"].as_array().unwrap();
    assert_eq!(listed.len(), 7);
    assert!(listed
        .iter()
        .filter(|line| line["key"] != valid.as_str())
        .all(|line| line["free"] == 0 && line["status"] != "serving"));

    // Installing a refused server license changes nothing.
    let text = std::fs::read_to_string(ls.license_file(&expired)).unwrap();
    let error = ls.server().install(&text, ls.now()).await.unwrap_err();
    assert!(
        matches!(&error, LicenseServerError::Refused { code, .. } if code.as_str() == "SERVER_LICENSE_EXPIRED"),
        "{error}"
    );
    let replaced = variant(&template, &valid, &SigningKey::from_bytes(&[9; 32]), |_| {});
    assert!(ls.server().install(&replaced, ls.now()).await.is_err());
    assert!(matches!(ls.server().entry(&valid), Some(Entry::Served(_))));

    // The command line says why too (it identifies the real machine, so even the valid one is
    // bound to another machine there).
    let output = licet_server()
        .arg("status")
        .arg("--json")
        .arg("--config")
        .arg(ls.config_path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let line = printed["licenses"]
        .as_array()
        .unwrap()
        .iter()
        .find(|line| line["key"] == foreign.as_str())
        .unwrap()
        .clone();
    assert_eq!(line["code"], "SERVER_LICENSE_INVALID");
    assert_eq!(line["serving"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revalidation_picks_up_more_seats_and_revocation_and_offline_ends_service() {
    let center = Center::start().await;
    let mut ls = Ls::start(Some(&center.url), &center.vendor_public_key()).await;
    let key = activated(&center, &ls, 2).await;
    assert_eq!(
        code(&ls.checkout(&key, "s1", 1).await),
        (200, "SEAT_GRANTED")
    );
    assert_eq!(
        code(&ls.checkout(&key, "s2", 2).await),
        (200, "SEAT_GRANTED")
    );
    assert_eq!(
        code(&ls.checkout(&key, "s3", 3).await),
        (409, "SEATS_EXHAUSTED")
    );

    // More seats bought at the center.
    let answer = center
        .admin(
            Method::PATCH,
            &format!("/v1/admin/licenses/{key}"),
            Some(json!({ "seats": 3 })),
        )
        .await;
    assert_eq!(code(&answer), (200, "EXTENDED"), "{}", answer.1);
    let done = ls.server().revalidate_all(ls.now()).await;
    assert_eq!(
        done,
        vec![(key.clone(), Revalidation::Renewed { seats: 3 })]
    );
    assert_eq!(
        code(&ls.checkout(&key, "s3", 3).await),
        (200, "SEAT_GRANTED")
    );
    assert_eq!(ls.query().await["licenses"][0]["seats"], 3);

    // Revoked at the center: no new seats, held leases lapse, seats can still be given back,
    // and a restart does not bring it back.
    let answer = center
        .admin(
            Method::POST,
            &format!("/v1/admin/licenses/{key}/revoke"),
            None,
        )
        .await;
    assert_eq!(code(&answer), (200, "REVOCATION_APPLIED"), "{}", answer.1);
    let done = ls.server().revalidate_all(ls.now()).await;
    assert_eq!(
        done,
        vec![(
            key.clone(),
            Revalidation::Withdrawn {
                code: "REVOKED".into()
            }
        )]
    );
    assert_eq!(code(&ls.checkout(&key, "s4", 4).await), (403, "REVOKED"));
    assert_eq!(code(&ls.heartbeat(&key, "s1").await), (403, "REVOKED"));
    let answer = ls
        .post("/v1/seats/release", json!({ "key": key, "session": "s2" }))
        .await;
    assert_eq!(code(&answer), (200, "SEAT_RELEASED"), "{}", answer.1);
    assert!(!ls.license_file(&key).exists());
    ls.restart().await;
    assert_eq!(code(&ls.checkout(&key, "s4", 4).await), (403, "REVOKED"));
    let query = ls.query().await;
    assert!(
        query["licenses"][0]["status"]
            .as_str()
            .unwrap()
            .starts_with("REVOKED: "),
        "{query}"
    );

    // An unreachable center leaves a server license serving until its offline period ends.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let ls = Ls::start(Some(&dead), &center.vendor_public_key()).await;
    let key = activated(&center, &ls, 2).await;
    assert_eq!(
        code(&ls.checkout(&key, "s1", 1).await),
        (200, "SEAT_GRANTED")
    );
    let done = ls.server().revalidate_all(ls.now()).await;
    assert!(
        matches!(done.as_slice(), [(_, Revalidation::Kept { .. })]),
        "{done:?}"
    );
    assert_eq!(
        code(&ls.checkout(&key, "s2", 2).await),
        (200, "SEAT_GRANTED")
    );
    ls.clock.advance(chrono::Duration::days(16));
    assert_eq!(
        code(&ls.checkout(&key, "s3", 3).await),
        (403, "SERVER_LICENSE_EXPIRED")
    );
    assert_eq!(
        code(&ls.heartbeat(&key, "s1").await),
        (403, "SERVER_LICENSE_EXPIRED")
    );
    let report = status::status(&ls.state.licensing).await.unwrap();
    assert!(
        report.licenses[0]
            .status
            .starts_with("SERVER_LICENSE_EXPIRED: "),
        "{:?}",
        report.licenses[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_running_server_revalidates_in_the_background() {
    let center = Center::start().await;
    let ls = Ls::start_with(Some(&center.url), &center.vendor_public_key(), |config| {
        config.revalidate_seconds = Some(1);
    })
    .await;
    let key = activated(&center, &ls, 2).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let running = tokio::spawn(serve(
        listener,
        ls.state.clone(),
        Duration::from_secs(60),
        std::future::pending(),
    ));
    let answer = center
        .admin(
            Method::PATCH,
            &format!("/v1/admin/licenses/{key}"),
            Some(json!({ "seats": 7 })),
        )
        .await;
    assert_eq!(code(&answer), (200, "EXTENDED"), "{}", answer.1);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if ls.query().await["licenses"][0]["seats"] == 7 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not revalidated in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    running.abort();
}

async fn exchange(center: &Center, file: &str) -> Vec<u8> {
    use axum::body::Body;
    use axum::http::{header, Request};
    use tower::ServiceExt;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/v1/exchange")
        .header(header::CONTENT_TYPE, "application/xml")
        .body(Body::from(file.to_owned()))
        .unwrap();
    let response = center.server.router.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    bytes.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_license_server_activates_renews_and_returns_by_files() {
    let center = Center::start().await;
    let ls = Ls::start(None, &center.vendor_public_key()).await;
    let server = ls.server();
    let key = center.server.network_key(2).await;
    let request = server
        .activation_request(&key, "gstarcad", "professional", ls.now())
        .unwrap();
    assert!(request.contains("license-server"), "{request}");
    let response = exchange(&center, &request).await;
    let served = server
        .load_activation_response(&response, ls.now())
        .await
        .unwrap();
    assert_eq!(served.license.claims().seats, 2);
    assert_eq!(
        code(&ls.checkout(&key, "s1", 1).await),
        (200, "SEAT_GRANTED")
    );
    // A response is loaded once.
    let error = server
        .load_activation_response(&response, ls.now())
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("EXCHANGE_UNKNOWN_REQUEST"),
        "{error}"
    );

    // Renewal by files picks up seats bought.
    let answer = center
        .admin(
            Method::PATCH,
            &format!("/v1/admin/licenses/{key}"),
            Some(json!({ "seats": 4 })),
        )
        .await;
    assert_eq!(code(&answer), (200, "EXTENDED"), "{}", answer.1);
    let request = server
        .activation_request(&key, "gstarcad", "professional", ls.now())
        .unwrap();
    let response = exchange(&center, &request).await;
    let served = server
        .load_activation_response(&response, ls.now())
        .await
        .unwrap();
    assert_eq!(served.license.claims().seats, 4);
    assert_eq!(ls.query().await["licenses"][0]["seats"], 4);

    // Return by files: not served while pending, deleted once the center confirms.
    let request = server.return_request(&key, ls.now()).unwrap();
    server.reload().await.unwrap();
    let answer = ls.checkout(&key, "s2", 2).await;
    assert_eq!(
        code(&answer),
        (403, "SERVER_LICENSE_INVALID"),
        "{}",
        answer.1
    );
    assert!(answer.1["message"].as_str().unwrap().contains("return"));
    let response = exchange(&center, &request).await;
    assert_eq!(server.load_return_response(&response).await.unwrap(), key);
    assert!(server.entry(&key).is_none());
    assert!(!ls.license_file(&key).exists());
    assert_eq!(
        code(&ls.checkout(&key, "s2", 2).await),
        (403, "SERVER_LICENSE_INVALID")
    );

    // Returned: another license server can be activated with the key.
    let other = Ls::start(Some(&center.url), &center.vendor_public_key()).await;
    other
        .server()
        .activate_online(None, &key, "gstarcad", "professional", other.now())
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returned_online_and_released_from_the_command_line() {
    let center = Center::start().await;
    let ls = Ls::start(Some(&center.url), &center.vendor_public_key()).await;
    let key = activated(&center, &ls, 2).await;
    assert_eq!(
        code(&ls.checkout(&key, "s1", 1).await),
        (200, "SEAT_GRANTED")
    );

    let output = licet_server()
        .arg("status")
        .arg("--json")
        .arg("--config")
        .arg(ls.config_path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let printed: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(printed["licenses"][0]["holders"][0]["session"], "s1");

    // `licet-server release` takes the seat back through the service, audited.
    let output = licet_server()
        .arg("release")
        .arg("--config")
        .arg(ls.config_path())
        .arg("s1")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stdout).contains("SEAT_RELEASED"));
    assert_eq!(
        code(&ls.heartbeat(&key, "s1").await),
        (404, "LEASE_NOT_FOUND")
    );
    let (status, audit) = ls
        .admin(Method::GET, &format!("/v1/admin/audit?license={key}"), None)
        .await;
    assert_eq!(status, 200);
    assert!(audit.as_array().unwrap().iter().any(|entry| entry["actor"]
        == "administrator:licet-server release (local)"
        && entry["code"] == "SEAT_RELEASED"));
    let output = licet_server()
        .arg("release")
        .arg("--config")
        .arg(ls.config_path())
        .arg("s1")
        .output()
        .unwrap();
    assert!(!output.status.success());

    // Returned online: the server license is deleted and the key no longer served.
    ls.server().return_online(None, &key).await.unwrap();
    assert!(ls.server().entry(&key).is_none());
    assert!(!ls.license_file(&key).exists());
    assert_eq!(
        code(&ls.checkout(&key, "s2", 2).await),
        (403, "SERVER_LICENSE_INVALID")
    );
    let answer = center
        .server
        .post(
            "/v1/server/validate",
            json!({ "key": key, "machine": server_machine(), "server_key":
                base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ls.server().public_key().as_bytes()) }),
        )
        .await;
    assert_eq!(code(&answer), (404, "NOT_ACTIVATED"), "{}", answer.1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_license_verifies_only_with_the_vendor_key() {
    let center = Center::start().await;
    let ls = Ls::start(None, &center.vendor_public_key()).await;
    let key = activated(&center, &ls, 1).await;
    let text = std::fs::read_to_string(ls.license_file(&key)).unwrap();
    assert!(ServerLicense::from_armored(&text, &vendor_key(&center)).is_ok());
    assert!(ServerLicense::from_armored(&text, &ls.server().public_key()).is_err());
}
