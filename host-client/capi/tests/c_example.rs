//! Builds `examples/check.c` with the system C compiler against the static library and runs it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use chrono::{Duration, Utc};
use ed25519_dalek::SigningKey;
use licet_client::keys::public_key_text;
use licet_client::{Client, MachineProbe, NativeProbe};
use licet_engine::certificate;
use licet_engine::policy::Method;
use licet_engine::state::{License, LicenseStatus, Term};
use licet_engine::{decide, Action, Actor, Policy, ProductRef, Request, State};

fn crate_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `liblicet.a` as built for this test run: cargo writes it into `deps/`, next to this test, and
/// copies it up to `target/<profile>/` only on `cargo build`.
fn static_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let deps = exe.parent().unwrap();
    let library = deps.join("liblicet.a");
    assert!(
        library.exists(),
        "{} is built with the tests",
        library.display()
    );
    library
}

/// The example, compiled once per test run next to the library.
fn example() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let dir = static_library()
            .parent()
            .and_then(Path::parent)
            .unwrap()
            .join("licet-c-example");
        fs::create_dir_all(&dir).unwrap();
        compile_example(&dir)
    })
}

fn compile_example(out_dir: &Path) -> PathBuf {
    let binary = out_dir.join("check");
    let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .arg("-std=c99")
        .arg("-Wall")
        .arg("-Werror")
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join("examples/check.c"))
        .arg(static_library())
        .args(["-lpthread", "-ldl", "-lm", "-o"])
        .arg(&binary)
        .output()
        .expect("a C compiler runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// A product installation: policy, vendor public key, and a state directory holding an
/// activation of this machine signed with the vendor key.
fn installation(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let source = fs::read_to_string(crate_dir().join("../../policies/gstarcad.yaml")).unwrap();
    let machine = NativeProbe::for_product("gstarcad").fingerprint().unwrap();
    let present = ["machine-id", "mac", "cpu", "disk"]
        .iter()
        .filter(|name| machine.components.contains_key(**name))
        .count();
    let source = source.replace(
        "match_at_least: 3",
        &format!("match_at_least: {}", present.clamp(1, 3)),
    );
    let policy_path = dir.join("gstarcad.yaml");
    fs::write(&policy_path, &source).unwrap();
    let policy = Policy::from_yaml("gstarcad.yaml", &source).unwrap();
    let vendor = SigningKey::from_bytes(&[9; 32]);
    let key_path = dir.join("vendor.pub");
    fs::write(&key_path, public_key_text(&vendor.verifying_key())).unwrap();

    let now = Utc::now();
    let license = License {
        key: "GSTAR-C-0001".into(),
        product: "gstarcad".into(),
        license_type: "standalone-key".into(),
        edition: "plus".into(),
        version: "2027".into(),
        term: Term::Rental {
            ends_at: now + Duration::days(365),
        },
        seats: None,
        features: Default::default(),
        counters: Default::default(),
        status: LicenseStatus::Enabled,
        dongle: None,
        client: None,
        limited: None,
    };
    let request = Request {
        actor: Actor::EndUser,
        action: Action::Activate {
            key: license.key.clone(),
            target: ProductRef {
                product: "gstarcad".into(),
                edition: "plus".into(),
                version: "2027".into(),
            },
            machine,
            method: Method::Online,
        },
    };
    let state = State {
        license: Some(license),
        ..State::default()
    };
    let decision = decide(&policy, &state, &request, now);
    let claims = decision.certificate().expect("activation allowed").clone();
    let armored = certificate::issue(claims, &vendor).to_armored();
    let state_dir = dir.join("state");
    let client = Client::open(&state_dir, &policy_path, &key_path).unwrap();
    assert!(client
        .install_certificate(&armored, now)
        .unwrap()
        .decision
        .is_allowed());
    (state_dir, policy_path, key_path)
}

fn run(binary: &Path, args: &[&Path]) -> Output {
    Command::new(binary).args(args).output().unwrap()
}

#[test]
fn the_c_example_checks_the_license() {
    let dir = tempfile::tempdir().unwrap();
    let binary = example();
    let (state_dir, policy, key) = installation(dir.path());

    let output = run(binary, &[&state_dir, &policy, &key]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    let (first, json) = stdout.split_once('\n').unwrap();
    assert_eq!(first, "VALID: the certificate is valid");
    let info: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(info["status"], "enabled");
    assert_eq!(info["license_key"], "GSTAR-C-0001");
    assert_eq!(info["edition"], "plus");
    assert_eq!(info["trusted"], true);

    // A tampered state: denied, exit 1, and the information says it is not trusted.
    let state_file = state_dir.join("gstarcad.state");
    let mut bytes = fs::read(&state_file).unwrap();
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    fs::write(&state_file, &bytes).unwrap();
    let output = run(binary, &[&state_dir, &policy, &key]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.starts_with("VALIDATION_REQUIRED: the local license state was altered"));
    assert!(stdout.contains("\"trusted\": false"), "{stdout}");
}

#[test]
fn the_c_example_reports_errors_through_the_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let binary = example();
    let missing = dir.path().join("missing.yaml");
    let output = run(binary, &[dir.path(), &missing, &missing]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.starts_with("cannot open the license: `"), "{stderr}");
    assert!(stderr.contains("missing.yaml"), "{stderr}");
}
