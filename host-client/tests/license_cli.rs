//! Drives `licet check` and `licet license ...` the way an end user does, each test with its own
//! state directory, against certificates bound to this machine's native fingerprint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use chrono::{Duration, Utc};
use licet_client::keys::read_signing_key;
use licet_client::{Client, FixedProbe, MachineProbe, NativeProbe};
use licet_engine::state::Term;
use licet_engine::{Fingerprint, Policy};
use support::*;

/// A product installation: vendor keys, the policy, and an empty state directory.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let out = run_licet(&["keys", "generate", "--out", dir.path().to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        // The policy of the product, requiring as many fingerprint components as this machine
        // exposes (up to the policy's own three of four).
        let machine = native_fingerprint();
        let policy = gstarcad();
        let present = policy
            .fingerprint
            .components
            .iter()
            .filter(|name| machine.components.contains_key(*name))
            .count();
        let source = gstarcad_source().replace(
            "match_at_least: 3",
            &format!("match_at_least: {}", present.clamp(1, 3)),
        );
        fs::write(dir.path().join("gstarcad.yaml"), source).unwrap();
        Setup { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn state_dir(&self) -> PathBuf {
        self.path("state")
    }

    fn policy(&self) -> Policy {
        let source = fs::read_to_string(self.path("gstarcad.yaml")).unwrap();
        Policy::from_yaml("gstarcad.yaml", &source).unwrap()
    }

    /// Runs `licet <args> --state-dir … --policy … --vendor-key …`.
    fn licet(&self, args: &[&str]) -> Output {
        let mut all: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        for (flag, path) in [
            ("--state-dir", self.state_dir()),
            ("--policy", self.path("gstarcad.yaml")),
            ("--vendor-key", self.path("vendor.pub")),
        ] {
            all.push(flag.to_owned());
            all.push(path.display().to_string());
        }
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_licet(&all)
    }

    /// A certificate file for a license activated on `machine` now, signed with the vendor key.
    fn certificate_file(&self, term: Term, machine: &Fingerprint) -> PathBuf {
        self.certificate_issued(term, machine, Utc::now())
    }

    fn certificate_issued(
        &self,
        term: Term,
        machine: &Fingerprint,
        issued: chrono::DateTime<Utc>,
    ) -> PathBuf {
        let key = read_signing_key(&self.path("vendor.secret")).unwrap();
        let license = license("GSTAR-7777", "standalone-key", "professional", term);
        let armored = activation_certificate(&self.policy(), &key, license, machine, issued);
        let path = self.path("license.cert");
        fs::write(&path, armored).unwrap();
        path
    }

    fn install(&self, term: Term) {
        let cert = self.certificate_file(term, &native_fingerprint());
        let out = self.licet(&["license", "install", cert.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("VALID: the certificate is valid"));
    }

    /// A library client on this directory with another machine's probe.
    fn client_with(&self, probe: Box<dyn MachineProbe + Send + Sync>) -> Client {
        let key = licet_client::keys::read_verifying_key(&self.path("vendor.pub")).unwrap();
        Client::new(&self.state_dir(), self.policy(), key, probe)
    }

    fn state_file(&self) -> PathBuf {
        self.state_dir().join("gstarcad.state")
    }
}

fn native_fingerprint() -> Fingerprint {
    NativeProbe::for_product("gstarcad").fingerprint().unwrap()
}

fn run_licet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_licet"))
        .args(args)
        .output()
        .expect("licet runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn info_json(setup: &Setup) -> serde_json::Value {
    let out = setup.licet(&["license", "info", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn install_then_check_and_show_the_license() {
    let setup = Setup::new();
    let out = setup.licet(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "NOT_ACTIVATED: no license is installed on this machine\n"
    );

    setup.install(Term::Rental {
        ends_at: Utc::now() + Duration::days(90),
    });
    let out = setup.licet(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert_eq!(text(&out.stdout), "VALID: the certificate is valid\n");

    let out = setup.licet(&["check", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["allowed"], true);
    assert_eq!(json["code"], "VALID");
    assert_eq!(json["trust"], "verified");

    let table = text(&setup.licet(&["license", "info"]).stdout);
    for expected in [
        "product          GstarCAD (gstarcad)",
        "edition          professional",
        "version          2027",
        "language         en",
        "license key      GSTAR-7777",
        "license type     standalone-key",
        "status           enabled",
        "trusted          yes (verified)",
    ] {
        assert!(table.contains(expected), "missing `{expected}` in\n{table}");
    }
    let out = setup.licet(&["license", "language", "ru"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let json = info_json(&setup);
    assert_eq!(json["status"], "enabled");
    assert_eq!(json["license_key"], "GSTAR-7777");
    assert_eq!(json["language"], "ru");
    assert_eq!(json["trusted"], true);
    assert_eq!(json["code"], "VALID");
    assert!(json["expires_at"].as_str().is_some());
}

#[test]
fn a_flipped_byte_in_the_state_is_untrusted_and_denied() {
    let setup = Setup::new();
    setup.install(Term::Perpetual);
    let mut bytes = fs::read(setup.state_file()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    fs::write(setup.state_file(), &bytes).unwrap();
    let out = setup.licet(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "VALIDATION_REQUIRED: the local license state was altered; activate the license or start the trial again\n"
    );
    let json = info_json(&setup);
    assert_eq!(json["trusted"], false);
    assert_eq!(json["status"], "untrusted");
}

#[test]
fn deleting_the_state_gives_no_use() {
    let setup = Setup::new();
    setup.install(Term::Perpetual);
    fs::remove_file(setup.state_file()).unwrap();
    let out = setup.licet(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).starts_with("NOT_ACTIVATED:"));
    assert_eq!(info_json(&setup)["status"], "not-activated");
}

#[test]
fn a_state_written_for_another_machine_is_rejected() {
    let setup = Setup::new();
    let elsewhere = Fingerprint::from_pairs([
        ("machine-id", "elsewhere"),
        ("mac", "elsewhere"),
        ("cpu", "elsewhere"),
        ("disk", "elsewhere"),
    ]);
    // The state and certificate of another machine, copied into this machine's state directory.
    let other = setup.client_with(Box::new(FixedProbe::new(elsewhere.clone())));
    let cert = setup.certificate_file(Term::Perpetual, &elsewhere);
    let report = other
        .install_certificate(&fs::read_to_string(&cert).unwrap(), Utc::now())
        .unwrap();
    assert!(report.decision.is_allowed());
    let out = setup.licet(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stdout),
        "VALIDATION_REQUIRED: the local license state was copied from another machine; activate the license or start the trial again\n"
    );
    // And the certificate alone does not install here.
    fs::remove_file(setup.state_file()).unwrap();
    let out = setup.licet(&["license", "install", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("it is bound to another machine"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn moving_the_clock_back_is_reported() {
    let setup = Setup::new();
    setup.install(Term::Perpetual);
    // The client saw a time two days ahead of the clock now, as if the clock was moved back.
    let client = setup.client_with(Box::new(NativeProbe::for_product("gstarcad")));
    let ahead = client.check_at(Utc::now() + Duration::days(2)).unwrap();
    assert!(ahead.decision.is_allowed());
    client.flush().unwrap();
    let out = setup.licet(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("CLOCK_ROLLBACK: the clock reads "),
        "{stdout}"
    );
    assert_eq!(info_json(&setup)["status"], "clock-rollback");
}

#[test]
fn an_expired_rental_is_denied() {
    let setup = Setup::new();
    let cert = setup.certificate_issued(
        Term::Rental {
            ends_at: Utc::now() - Duration::days(1),
        },
        &native_fingerprint(),
        Utc::now() - Duration::days(40),
    );
    let out = setup.licet(&["license", "install", cert.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("EXPIRED: the certificate expired at"));
    assert_eq!(info_json(&setup)["status"], "expired");
}

#[test]
fn usage_errors_exit_with_two_and_file_errors_with_three() {
    let setup = Setup::new();
    let out = run_licet(&["check", "--policy", "x.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let out = run_licet(&[
        "check",
        "--policy",
        "missing.yaml",
        "--vendor-key",
        setup.path("vendor.pub").to_str().unwrap(),
        "--state-dir",
        setup.state_dir().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        text(&out.stderr).contains("missing.yaml"),
        "{}",
        text(&out.stderr)
    );
    let out = setup.licet(&["license", "install", "no-such.cert"]);
    assert_eq!(out.status.code(), Some(3));
    let out = setup.licet(&["license", "language", "xx"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(text(&out.stderr).contains("the product has no language `xx`"));
    assert!(!Path::new(&setup.state_file()).exists());
}

#[test]
fn manual_activation_and_return_with_files() {
    let setup = Setup::new();
    let mut vendor = FakeServer::new(Utc::now());
    vendor.policy = setup.policy();
    vendor.key = read_signing_key(&setup.path("vendor.secret")).unwrap();
    vendor.add_license(license(
        "GSTAR-FILE-1",
        "standalone-key",
        "standard",
        Term::Perpetual,
    ));

    // On the offline machine: write the activation request.
    let request = setup.path("activation-request.xml");
    let out = setup.licet(&[
        "activate",
        "--manual",
        "--key",
        "GSTAR-FILE-1",
        "--edition",
        "standard",
        "--request-out",
        request.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).starts_with("activation request written to "));
    // An existing file is never replaced.
    let again = setup.licet(&[
        "activate",
        "--manual",
        "--key",
        "GSTAR-FILE-1",
        "--edition",
        "standard",
        "--request-out",
        request.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(3));

    // At the vendor: the response file.
    let response = setup.path("activation-response.xml");
    fs::write(
        &response,
        vendor
            .answer_activation(&fs::read(&request).unwrap())
            .unwrap(),
    )
    .unwrap();

    // Back on the machine: load it, once.
    let load = ["activate", "--load-response", response.to_str().unwrap()];
    let out = setup.licet(&load);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("VALID: the certificate is valid"));
    assert_eq!(setup.licet(&["check"]).status.code(), Some(0));
    let out = setup.licet(&load);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).starts_with("EXCHANGE_UNKNOWN_REQUEST: "),
        "{}",
        text(&out.stdout)
    );

    // Return: the license stops working as soon as the request is written.
    let return_request = setup.path("return-request.xml");
    let out = setup.licet(&[
        "return",
        "--manual",
        "--request-out",
        return_request.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = setup.licet(&["check"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("a return of license `GSTAR-FILE-1` is pending"));
    assert_eq!(info_json(&setup)["status"], "return-pending");

    let return_response = setup.path("return-response.xml");
    fs::write(
        &return_response,
        vendor
            .answer_return(&fs::read(&return_request).unwrap())
            .unwrap(),
    )
    .unwrap();
    let out = setup.licet(&[
        "return",
        "--load-response",
        return_response.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(vendor.activations_of("GSTAR-FILE-1").is_empty());
    let json = info_json(&setup);
    assert_eq!(json["status"], "returned");
    assert_eq!(json["license_key"], "GSTAR-FILE-1");
    assert_eq!(setup.licet(&["check"]).status.code(), Some(1));

    // Usage: --manual without its arguments is a usage error.
    let out = setup.licet(&["activate", "--manual", "--key", "K"]);
    assert_eq!(out.status.code(), Some(2));
    let out = setup.licet(&["return"]);
    assert_eq!(out.status.code(), Some(2));
}
