//! Seats and borrows served by a customer's license server: the chain vendor -> server license ->
//! certificate, and what a holder sees when the license server no longer holds its seat.
//!
//! The license server is played in the test process: it decides with the real engine, keeps its
//! seat leases in memory, signs certificates with its own key and sends the vendor-signed server
//! license with them. Tests make it sign what a faulty or hostile license server would.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::SigningKey;
use licet_client::client::{SeatHold, SeatHolder, SeatLoss};
use licet_client::{Client, ClientError, FixedProbe, Reply, Status, Transport, TransportError};
use licet_engine::certificate::{self, Certificate, CertificateClaims, CertificateKind};
use licet_engine::effects::MemoryRecords;
use licet_engine::server_license::{self, ServerLicense, ServerLicenseClaims};
use licet_engine::state::{License, LicenseStatus, SeatLease, Term};
use licet_engine::{decide, Action, Actor, Code, Effect, Fingerprint, Policy, Request};
use support::*;

const NET: &str = "GSTAR-NET-1";
const SERVER_LICENSE_BEGIN: &str = "-----BEGIN LICET SERVER LICENSE-----";
const SERVER_LICENSE_END: &str = "-----END LICET SERVER LICENSE-----";
const CERTIFICATE_BEGIN: &str = "-----BEGIN LICET CERTIFICATE-----";
const CERTIFICATE_END: &str = "-----END LICET CERTIFICATE-----";

fn start() -> DateTime<Utc> {
    at("2027-01-04T09:00:00Z")
}

fn network_license() -> License {
    license(
        NET,
        "network-key",
        "professional",
        Term::Rental {
            ends_at: at("2027-07-01T00:00:00Z"),
        },
    )
}

/// The license server's own key.
fn server_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn license_server_machine() -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", "m-license-server"),
        ("mac", "mac-ls"),
        ("cpu", "cpu-ls"),
        ("disk", "disk-ls"),
    ])
}

/// What the activation center grants the license server of `NET` activated at `now`: the pool's
/// terms from the engine's activation decision, and the license server's key.
fn server_license_claims(policy: &Policy, now: DateTime<Utc>) -> ServerLicenseClaims {
    let activation = activation_certificate(
        policy,
        &vendor_key(),
        network_license(),
        &license_server_machine(),
        now,
    );
    let activation = Certificate::from_armored(&activation, &vendor_key().verifying_key())
        .unwrap()
        .claims()
        .clone();
    ServerLicenseClaims::grant(
        policy,
        &network_license(),
        &activation,
        server_key().verifying_key().to_bytes(),
    )
    .unwrap()
}

fn issue_server_license(claims: ServerLicenseClaims, vendor: &SigningKey) -> String {
    server_license::issue(claims, vendor).to_armored()
}

/// A license server in the test process: the real engine decides, the engine's effect rules
/// keep its records in memory.
#[derive(Debug)]
struct LicenseServer {
    policy: Policy,
    records: MemoryRecords,
    /// Its clock; `None` for the system clock.
    now: Option<DateTime<Utc>>,
    /// Signs the certificates.
    key: SigningKey,
    /// Sent with every certificate.
    server_license: Option<String>,
    /// Applied to the claims the engine decided before they are signed.
    tamper: fn(&mut CertificateClaims),
    /// When set, seat certificates last this long (the lease on the server is the policy's).
    seat_span: Option<Duration>,
    unreachable: bool,
    received: Vec<Request>,
}

impl LicenseServer {
    fn new(policy: Policy, now: Option<DateTime<Utc>>) -> LicenseServer {
        let server_license = issue_server_license(
            server_license_claims(&policy, now.unwrap_or_else(Utc::now)),
            &vendor_key(),
        );
        let mut records = MemoryRecords::default();
        records.licenses.insert(NET.to_owned(), network_license());
        LicenseServer {
            policy,
            records,
            now,
            key: server_key(),
            server_license: Some(server_license),
            tamper: |_| {},
            seat_span: None,
            unreachable: false,
            received: Vec::new(),
        }
    }

    fn handle(&mut self, request: &Request) -> Reply {
        let now = self.now.unwrap_or_else(Utc::now);
        let key = request.action.key();
        let state = self.records.state(key);
        let decision = decide(&self.policy, &state, request, now);
        let mut certificate = None;
        if decision.is_allowed() {
            let applied = self.records.apply(key, &decision.effects, now).unwrap();
            for claims in applied.certificates {
                let mut claims = claims.clone();
                if let (Some(span), CertificateKind::Seat) = (self.seat_span, claims.kind) {
                    claims.expires_at = Some(claims.issued_at + span);
                    claims.offline_until = claims.expires_at;
                }
                (self.tamper)(&mut claims);
                certificate = Some(certificate::issue(claims, &self.key).to_armored());
            }
        }
        Reply {
            decision,
            server_license: certificate.as_ref().and(self.server_license.clone()),
            certificate,
        }
    }

    /// The seats the pool's records hold.
    fn leases(&self) -> Vec<SeatLease> {
        self.records.state(Some(NET)).leases
    }

    /// The network license as the server stores it.
    fn license(&mut self) -> &mut License {
        self.records.licenses.get_mut(NET).unwrap()
    }

    /// Applies `effects` to the pool's records, as the server's own housekeeping would.
    fn change(&mut self, effects: Vec<Effect>) {
        let now = self.now.unwrap_or_else(Utc::now);
        self.records.apply(Some(NET), &effects, now).unwrap();
    }

    /// The administrator releases every seat.
    fn force_release(&mut self) {
        let released = self
            .leases()
            .into_iter()
            .map(|lease| Effect::ReleaseSeat {
                session: lease.session,
            })
            .collect();
        self.change(released);
    }

    /// Every seat's lease ends at `at`.
    fn expire_leases(&mut self, at: DateTime<Utc>) {
        let renewed = self
            .leases()
            .into_iter()
            .map(|lease| Effect::RenewLease {
                session: lease.session,
                expires_at: at,
            })
            .collect();
        self.change(renewed);
    }

    fn kinds_received(&self) -> Vec<&'static str> {
        self.received
            .iter()
            .map(|request| request.action.kind().as_str())
            .collect()
    }
}

impl Transport for LicenseServer {
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError> {
        if self.unreachable {
            return Err(TransportError::Unreachable("connection refused".to_owned()));
        }
        self.received.push(request.clone());
        Ok(self.handle(request))
    }
}

/// A license server shared with a holder's heartbeat thread.
#[derive(Debug, Clone)]
struct Shared(Arc<Mutex<LicenseServer>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, LicenseServer> {
        self.0.lock().unwrap()
    }
}

impl Transport for Shared {
    fn send(&mut self, request: &Request) -> Result<Reply, TransportError> {
        self.lock().send(request)
    }
}

/// Always answers the same reply.
#[derive(Debug)]
struct Canned(Reply);

impl Transport for Canned {
    fn send(&mut self, _request: &Request) -> Result<Reply, TransportError> {
        Ok(self.0.clone())
    }
}

fn client_on(dir: &Path, policy: Policy) -> Client {
    Client::new(
        dir,
        policy,
        vendor_key().verifying_key(),
        Box::new(FixedProbe::new(office_pc())),
    )
}

fn checkout_request() -> Request {
    Request {
        actor: Actor::EndUser,
        action: Action::Checkout {
            key: NET.to_owned(),
            target: licet_engine::ProductRef {
                product: "gstarcad".to_owned(),
                edition: "professional".to_owned(),
                version: "2027".to_owned(),
            },
            machine: office_pc(),
            session: "s-office".to_owned(),
        },
    }
}

/// The reply a license server configured by `setup` gives to a checkout from the office PC.
fn served_reply(setup: impl FnOnce(&mut LicenseServer)) -> Reply {
    let mut server = LicenseServer::new(gstarcad(), Some(start()));
    setup(&mut server);
    let reply = server.handle(&checkout_request());
    assert_eq!(reply.decision.code, Code::SeatGranted, "{reply:?}");
    reply
}

/// Armored text of `bytes` in the layout the engine writes.
fn armored(bytes: &[u8], begin: &str, end: &str) -> String {
    let encoded = STANDARD.encode(bytes);
    let mut text = format!("{begin}\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).unwrap());
        text.push('\n');
    }
    text.push_str(end);
    text.push('\n');
    text
}

fn unarmored(text: &str) -> Vec<u8> {
    let body: String = text
        .lines()
        .filter(|line| !line.starts_with("-----"))
        .collect();
    STANDARD.decode(body).unwrap()
}

/// The refusal of a checkout answered by `reply`, after checking that nothing was stored.
fn refused(reply: Reply) -> (Code, String) {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let error = client
        .checkout(&mut Canned(reply), NET, "professional", start())
        .expect_err("the certificate is refused");
    let code = error.code().unwrap_or_else(|| panic!("no code: {error:?}"));
    assert!(matches!(error, ClientError::ServerLicense(_)), "{error:?}");
    assert!(
        !client.state_path().exists(),
        "nothing is stored after {error}"
    );
    assert!(client.seat().unwrap().is_none());
    assert_eq!(
        client.check_at(start()).unwrap().decision.code,
        Code::NotActivated
    );
    (code, licet_engine::report::chain(&error).to_string())
}

fn assert_refused(reply: Reply, expected: Code, why: &str) {
    let (code, message) = refused(reply);
    assert_eq!(code, expected, "{why}: {message}");
    assert!(
        message.starts_with(&format!("{expected}: certificate rejected: ")),
        "{message}"
    );
}

#[test]
fn a_seat_served_by_a_license_server_is_accepted_through_its_server_license() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let mut server = LicenseServer::new(gstarcad(), Some(start()));
    let now = start();

    let granted = client
        .checkout(&mut server, NET, "professional", now)
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
    let report = client.check_at(now + Duration::minutes(1)).unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{report:?}");
    let served = report
        .server_license
        .expect("served under a server license");
    assert_eq!(served.license_key, NET);
    assert_eq!(served.server_key, server_key().verifying_key().to_bytes());
    let info = client.info_at(now + Duration::minutes(1)).unwrap();
    assert_eq!(info.status, Status::CheckedOut);
    assert_eq!(info.server_license.as_deref(), Some(served.serial.as_str()));
    assert!(
        info.to_table().contains(&format!(
            "served under     server license {}",
            served.serial
        )),
        "{}",
        info.to_table()
    );
    // The state keeps the server license beside the certificate.
    let state = std::fs::read_to_string(client.state_path()).unwrap();
    assert!(state.contains("\"server_license\": \"-----BEGIN LICET SERVER LICENSE-----"));

    // A heartbeat renews the certificate through the same chain.
    server.now = Some(now + Duration::minutes(2));
    let renewed = client
        .heartbeat(&mut server, now + Duration::minutes(2))
        .unwrap();
    assert_eq!(renewed.code, Code::LeaseRenewed, "{renewed:?}");
    assert_eq!(server.kinds_received(), ["checkout", "heartbeat"]);
    let report = client.check_at(now + Duration::minutes(6)).unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{report:?}");

    // Released: certificate and server license are gone.
    let released = client
        .release(&mut server, now + Duration::minutes(7))
        .unwrap();
    assert_eq!(released.code, Code::SeatReleased);
    let state = std::fs::read_to_string(client.state_path()).unwrap();
    assert!(!state.contains("server_license"), "{state}");
    assert_eq!(
        client
            .check_at(now + Duration::minutes(7))
            .unwrap()
            .decision
            .code,
        Code::NotActivated
    );
}

#[test]
fn a_borrow_stays_valid_until_its_end_after_its_server_license_lapsed() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let mut server = LicenseServer::new(gstarcad(), Some(start()));
    let license_end = {
        let text = server.server_license.clone().unwrap();
        ServerLicense::from_armored(&text, &vendor_key().verifying_key())
            .unwrap()
            .claims()
            .offline_until
    };
    let until = start() + Duration::days(25);
    assert!(until > license_end + Duration::days(5));
    let borrowed = client
        .borrow(&mut server, NET, "professional", until, start())
        .unwrap();
    assert_eq!(borrowed.code, Code::Borrowed, "{borrowed:?}");
    // Past the server license's offline period (the license server did not revalidate), the
    // borrow, issued while it was in force, runs to its own end.
    let later = license_end + Duration::days(2);
    let report = client.check_at(later).unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{report:?}");
    assert_eq!(client.info_at(later).unwrap().status, Status::Borrowed);
    assert_eq!(
        client
            .check_at(until + Duration::hours(1))
            .unwrap()
            .decision
            .code,
        Code::Expired
    );
}

#[test]
fn the_activation_centers_certificates_need_no_server_license() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let mut center = LicenseServer::new(gstarcad(), Some(start()));
    center.key = vendor_key();
    center.server_license = None;
    let granted = client
        .checkout(&mut center, NET, "professional", start())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted);
    let report = client.check_at(start()).unwrap();
    assert_eq!(report.decision.code, Code::Valid);
    assert_eq!(report.server_license, None);
    assert_eq!(client.info_at(start()).unwrap().server_license, None);

    // A license server's certificate without its server license does not verify with the
    // vendor key.
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let mut reply = served_reply(|_| {});
    reply.server_license = None;
    let error = client
        .checkout(&mut Canned(reply), NET, "professional", start())
        .unwrap_err();
    assert!(matches!(error, ClientError::Certificate(_)), "{error:?}");
    assert!(!client.state_path().exists());
}

#[test]
fn a_server_license_of_another_vendor_is_refused() {
    let other_vendor = SigningKey::from_bytes(&[99; 32]);
    let reply = served_reply(|server| {
        server.server_license = Some(issue_server_license(
            server_license_claims(&gstarcad(), start()),
            &other_vendor,
        ));
    });
    assert_refused(reply, Code::ServerLicenseInvalid, "another vendor");
}

#[test]
fn one_changed_byte_in_the_server_license_or_the_certificate_is_refused() {
    let reply = served_reply(|_| {});
    let license = unarmored(reply.server_license.as_deref().unwrap());
    let certificate = unarmored(reply.certificate.as_deref().unwrap());
    // Every byte of each, through the verification a checkout runs; the full client path for a
    // spread of them.
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    for index in 0..license.len() {
        let mut changed = license.clone();
        changed[index] ^= 0x01;
        let mut tampered = reply.clone();
        tampered.server_license = Some(armored(&changed, SERVER_LICENSE_BEGIN, SERVER_LICENSE_END));
        if index % 41 == 0 {
            assert_refused(
                tampered,
                Code::ServerLicenseInvalid,
                &format!("license byte {index}"),
            );
            continue;
        }
        let error = client
            .checkout(&mut Canned(tampered), NET, "professional", start())
            .unwrap_err();
        assert_eq!(
            error.code(),
            Some(Code::ServerLicenseInvalid),
            "byte {index}: {error}"
        );
    }
    for index in 0..certificate.len() {
        let mut changed = certificate.clone();
        changed[index] ^= 0x01;
        let mut tampered = reply.clone();
        tampered.certificate = Some(armored(&changed, CERTIFICATE_BEGIN, CERTIFICATE_END));
        if index % 41 == 0 {
            assert_refused(
                tampered,
                Code::CertificateOutsideServerLicense,
                &format!("certificate byte {index}"),
            );
            continue;
        }
        let error = client
            .checkout(&mut Canned(tampered), NET, "professional", start())
            .unwrap_err();
        assert_eq!(
            error.code(),
            Some(Code::CertificateOutsideServerLicense),
            "byte {index}: {error}"
        );
    }
    assert!(!client.state_path().exists());
}

#[test]
fn a_certificate_not_signed_by_the_server_licenses_key_is_refused() {
    for (signer, why) in [
        (SigningKey::from_bytes(&[8; 32]), "another license server"),
        (vendor_key(), "the vendor, under a server license"),
    ] {
        let reply = served_reply(|server| server.key = signer);
        assert_refused(reply, Code::CertificateOutsideServerLicense, why);
    }
}

#[test]
fn a_license_server_never_signs_activations_or_trials() {
    let reply =
        served_reply(|server| server.tamper = |claims| claims.kind = CertificateKind::Activation);
    assert_refused(reply, Code::CertificateOutsideServerLicense, "activation");
    let reply = served_reply(|server| {
        server.tamper = |claims| {
            claims.kind = CertificateKind::Trial;
            claims.license_key.clear();
            claims.license_type.clear();
        }
    });
    assert_refused(reply, Code::CertificateOutsideServerLicense, "trial");
    // Nor kinds its server license leaves out.
    let mut only_seats = server_license_claims(&gstarcad(), start());
    only_seats.kinds.borrow = false;
    let only_seats = issue_server_license(only_seats, &vendor_key());
    let reply = served_reply(|server| {
        server.server_license = Some(only_seats);
        server.tamper = |claims| claims.kind = CertificateKind::Borrow;
    });
    assert_refused(reply, Code::CertificateOutsideServerLicense, "borrow");
}

#[test]
fn a_certificate_for_another_edition_version_or_key_is_refused() {
    type Tamper = fn(&mut CertificateClaims);
    let cases: [(Tamper, &str); 4] = [
        (|claims| claims.edition = "standard".to_owned(), "edition"),
        (|claims| claims.version = "2026".to_owned(), "version"),
        (
            |claims| claims.license_key = "GSTAR-NET-2".to_owned(),
            "key",
        ),
        (
            |claims| {
                claims
                    .features
                    .insert("cloud-collaboration".to_owned(), true);
            },
            "features",
        ),
    ];
    for (tamper, why) in cases {
        let reply = served_reply(|server| server.tamper = tamper);
        let (code, message) = refused(reply);
        assert_eq!(
            code,
            Code::CertificateOutsideServerLicense,
            "{why}: {message}"
        );
    }
}

#[test]
fn a_certificate_ending_after_its_server_license_or_borrowed_too_long_is_refused() {
    // The server license ends two minutes after the checkout; a five-minute seat outlasts it.
    let mut short = server_license_claims(&gstarcad(), start());
    short.expires_at = Some(start() + Duration::minutes(2));
    let short = issue_server_license(short, &vendor_key());
    let reply = served_reply(|server| server.server_license = Some(short));
    let (code, message) = refused(reply);
    assert_eq!(code, Code::CertificateOutsideServerLicense);
    assert!(message.contains("after the server license"), "{message}");

    // The server license lets seats be borrowed for ten days; the license server signs twenty.
    let mut ten_days = server_license_claims(&gstarcad(), start());
    ten_days.borrow_max_seconds = Some(Duration::days(10).num_seconds());
    let ten_days = issue_server_license(ten_days, &vendor_key());
    let mut server = LicenseServer::new(gstarcad(), Some(start()));
    server.server_license = Some(ten_days);
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let error = client
        .borrow(
            &mut server,
            NET,
            "professional",
            start() + Duration::days(20),
            start(),
        )
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(Code::CertificateOutsideServerLicense),
        "{error}"
    );
    assert!(
        licet_engine::report::chain(&error)
            .to_string()
            .contains("longer than the server license allows"),
        "{error}"
    );
    assert!(!client.state_path().exists());
    assert!(client.seat().unwrap().is_none());
}

#[test]
fn a_certificate_received_after_its_server_license_lapsed_is_refused() {
    // The license server's clock says the server license is in force; this machine's clock is
    // past the server license's offline period.
    let reply = served_reply(|_| {});
    let offline_until = ServerLicense::from_armored(
        reply.server_license.as_deref().unwrap(),
        &vendor_key().verifying_key(),
    )
    .unwrap()
    .claims()
    .offline_until;
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let error = client
        .checkout(
            &mut Canned(reply),
            NET,
            "professional",
            offline_until + Duration::minutes(1),
        )
        .unwrap_err();
    assert_eq!(error.code(), Some(Code::ServerLicenseExpired), "{error}");
    assert!(!client.state_path().exists());
}

#[test]
fn a_refused_renewal_keeps_the_installed_seat() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let mut server = LicenseServer::new(gstarcad(), Some(start()));
    client
        .checkout(&mut server, NET, "professional", start())
        .unwrap();
    let before = std::fs::read(client.state_path()).unwrap();
    server.key = SigningKey::from_bytes(&[8; 32]);
    let error = client
        .heartbeat(&mut server, start() + Duration::seconds(30))
        .unwrap_err();
    assert_eq!(
        error.code(),
        Some(Code::CertificateOutsideServerLicense),
        "{error}"
    );
    assert_eq!(std::fs::read(client.state_path()).unwrap(), before);
    assert_eq!(
        client
            .check_at(start() + Duration::seconds(30))
            .unwrap()
            .decision
            .code,
        Code::Valid
    );
}

#[test]
fn a_heartbeat_on_a_force_released_seat_forgets_it_and_takes_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), gstarcad());
    let mut server = LicenseServer::new(gstarcad(), Some(start()));
    client
        .checkout(&mut server, NET, "professional", start())
        .unwrap();
    server.force_release();
    let denied = client
        .heartbeat(&mut server, start() + Duration::minutes(1))
        .unwrap();
    assert_eq!(denied.code, Code::LeaseNotFound, "{denied:?}");
    assert_eq!(server.kinds_received(), ["checkout", "heartbeat"]);
    assert!(server.leases().is_empty(), "no other seat was taken");
    assert!(client.seat().unwrap().is_none());
    assert_eq!(
        client
            .check_at(start() + Duration::minutes(1))
            .unwrap()
            .decision
            .code,
        Code::NotActivated
    );

    // A lapsed lease is lost the same way.
    let again = client
        .checkout(
            &mut server,
            NET,
            "professional",
            start() + Duration::minutes(2),
        )
        .unwrap();
    assert_eq!(again.code, Code::SeatGranted, "{again:?}");
    let lapsed = start() + Duration::minutes(20);
    server.now = Some(lapsed);
    let denied = client.heartbeat(&mut server, lapsed).unwrap();
    assert_eq!(denied.code, Code::LeaseExpired, "{denied:?}");
    assert!(client.seat().unwrap().is_none());

    // Other denials change nothing.
    client
        .checkout(&mut server, NET, "professional", lapsed)
        .unwrap();
    server.license().status = LicenseStatus::Revoked;
    let revoked = client
        .heartbeat(&mut server, lapsed + Duration::seconds(10))
        .unwrap();
    assert_eq!(revoked.code, Code::Revoked, "{revoked:?}");
    assert!(client.seat().unwrap().is_some());
}

/// The client's policy with three-second network leases (shorter than any policy may say), so
/// a holder heartbeats every second; the test license server signs seat certificates that short.
fn short_lease_policy() -> Policy {
    let mut policy = gstarcad();
    policy.license_types.get_mut("network-key").unwrap().lease = Some(Duration::seconds(3));
    policy
}

fn hold(client: &Arc<Client>, server: &Shared) -> SeatHolder {
    match SeatHolder::checkout(
        Arc::clone(client),
        Box::new(server.clone()),
        NET,
        "professional",
    )
    .unwrap()
    {
        SeatHold::Held(holder) => holder,
        SeatHold::Denied(decision) => panic!("denied: {decision:?}"),
    }
}

/// Runs `change` on the license server between two heartbeats (after a heartbeat and
/// before the next heartbeat), so the next heartbeat is the first request to see it.
fn between_heartbeats(server: &Shared, change: impl Fn(&mut LicenseServer)) {
    eventually(|| {
        let mut server = server.lock();
        let kinds = server.kinds_received();
        let done = kinds.len() >= 2 && kinds.last() == Some(&"heartbeat");
        if done {
            change(&mut server);
        }
        done
    });
}

/// Waits until `condition` holds, for at most ten seconds.
fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..200 {
        if condition() {
            return;
        }
        std::thread::sleep(StdDuration::from_millis(50));
    }
    panic!("the condition did not come true");
}

#[test]
fn a_holder_reports_a_force_released_seat_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let client = Arc::new(client_on(dir.path(), short_lease_policy()));
    let mut server = LicenseServer::new(gstarcad(), None);
    server.seat_span = Some(Duration::seconds(3));
    let server = Shared(Arc::new(Mutex::new(server)));
    let holder = hold(&client, &server);
    let (lost, losses) = mpsc::channel::<SeatLoss>();
    holder.on_loss(move |loss| lost.send(loss.clone()).unwrap());

    // Heartbeats (every second) keep the seat.
    eventually(|| server.lock().kinds_received().len() >= 3);
    assert!(holder.lost().is_none());
    assert_eq!(client.check().unwrap().decision.code, Code::Valid);

    between_heartbeats(&server, LicenseServer::force_release);
    let loss = losses.recv_timeout(StdDuration::from_secs(10)).unwrap();
    assert_eq!(loss.decision.code, Code::LeaseNotFound, "{loss:?}");
    assert_eq!(loss.session, holder.session());
    assert_eq!(holder.lost(), Some(loss.clone()));
    // Forgotten here, and no other seat taken.
    assert!(client.seat().unwrap().is_none());
    assert_eq!(client.check().unwrap().decision.code, Code::NotActivated);
    let seen = server.lock().kinds_received().len();
    assert_eq!(server.lock().kinds_received().last(), Some(&"heartbeat"));
    std::thread::sleep(StdDuration::from_millis(2500));
    assert_eq!(
        server.lock().kinds_received().len(),
        seen,
        "the heartbeats stopped"
    );
    assert!(server.lock().leases().is_empty());
    // A callback registered now hears of it at once.
    let (late, heard) = mpsc::channel();
    holder.on_loss(move |loss| late.send(loss.decision.code).unwrap());
    assert_eq!(heard.try_recv(), Ok(Code::LeaseNotFound));
    // Releasing the lost seat sends nothing and answers the loss.
    let released = holder.release().unwrap();
    assert_eq!(released.code, Code::LeaseNotFound);
    assert_eq!(server.lock().kinds_received().len(), seen);
}

#[test]
fn a_holder_rides_out_an_unreachable_server_and_loses_a_lapsed_or_refused_seat() {
    let dir = tempfile::tempdir().unwrap();
    let client = Arc::new(client_on(dir.path(), short_lease_policy()));
    let mut server = LicenseServer::new(gstarcad(), None);
    server.seat_span = Some(Duration::seconds(3));
    let server = Shared(Arc::new(Mutex::new(server)));
    let holder = hold(&client, &server);

    // Unreachable for two heartbeats: retried, not lost.
    server.lock().unreachable = true;
    std::thread::sleep(StdDuration::from_millis(2200));
    assert!(holder.lost().is_none());
    let seen = server.lock().kinds_received().len();
    server.lock().unreachable = false;
    eventually(|| {
        server.lock().kinds_received().len() >= seen + 2
            && client.check().unwrap().decision.code == Code::Valid
    });
    assert!(holder.lost().is_none());

    // The server's lease lapsed (while it was unreachable for longer, say): lost.
    between_heartbeats(&server, |server| {
        server.expire_leases(Utc::now() - Duration::seconds(1));
    });
    eventually(|| holder.lost().is_some());
    assert_eq!(holder.lost().unwrap().decision.code, Code::LeaseExpired);
    assert!(client.seat().unwrap().is_none());
    drop(holder);

    // A revoked license: refused heartbeats are retried until the seat's lease ran out.
    server.lock().force_release();
    let holder = hold(&client, &server);
    let revoked_at = Utc::now();
    server.lock().received.clear();
    server.lock().received.push(checkout_request());
    between_heartbeats(&server, |server| {
        server.license().status = LicenseStatus::Revoked
    });
    eventually(|| holder.lost().is_some());
    let loss = holder.lost().unwrap();
    assert_eq!(loss.decision.code, Code::Revoked, "{loss:?}");
    assert!(
        loss.at >= revoked_at + Duration::seconds(2),
        "{loss:?} {revoked_at}"
    );
    assert!(client.seat().unwrap().is_none());
}
