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

/// The system libraries `liblicet.a` needs (`cargo rustc -p licet-capi --crate-type staticlib --
/// --print native-static-libs` lists them); on Linux the HID dongle support links libudev.
const NATIVE_LIBRARIES: &[&str] = if cfg!(target_os = "linux") {
    &["-lpthread", "-ldl", "-lm", "-ludev"]
} else {
    &["-lpthread", "-ldl", "-lm"]
};

/// The directory the examples are compiled into, next to the library.
fn examples_dir() -> PathBuf {
    let dir = static_library()
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("licet-c-example");
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// `examples/check.c`, compiled once per test run.
fn example() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| compile_example("check", &examples_dir()))
}

/// `examples/workflow.c`, compiled once per test run.
fn workflow_example() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| compile_example("workflow", &examples_dir()))
}

/// Compiles `examples/<name>.c` against the header and the static library, warnings as errors.
fn compile_example(name: &str, out_dir: &Path) -> PathBuf {
    let binary = out_dir.join(name);
    let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .arg("-std=c99")
        .arg("-Wall")
        .arg("-Wextra")
        .arg("-Werror")
        .arg("-I")
        .arg(crate_dir().join("include"))
        .arg(crate_dir().join(format!("examples/{name}.c")))
        .arg(static_library())
        .args(NATIVE_LIBRARIES)
        .arg("-o")
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

/// A port on loopback that refuses connections: port 1 (tcpmux) has no listener.
const UNREACHABLE_SERVER: &str = "http://127.0.0.1:1";

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

#[test]
fn the_workflow_example_reports_an_unreachable_server_as_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let binary = workflow_example();
    let (_, policy, key) = installation(dir.path());
    let state_dir = dir.path().join("fresh-state");
    let server = Path::new(UNREACHABLE_SERVER);

    let output = run(
        binary,
        &[
            &state_dir,
            &policy,
            &key,
            server,
            Path::new("GSTAR-C-0001"),
            Path::new("plus"),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("cannot activate: the license server cannot be reached"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "{output:?}");

    let output = run(
        binary,
        &[
            &state_dir,
            &policy,
            &key,
            server,
            Path::new("GSTAR-N-0001"),
            Path::new("plus"),
            Path::new("seat"),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("cannot check out a seat: the license server cannot be reached"),
        "{stderr}"
    );
}

#[test]
fn the_workflow_example_refuses_a_bad_server_address_and_usage() {
    let dir = tempfile::tempdir().unwrap();
    let binary = workflow_example();
    let (_, policy, key) = installation(dir.path());
    let state_dir = dir.path().join("fresh-state");
    let output = run(
        binary,
        &[
            &state_dir,
            &policy,
            &key,
            Path::new("ftp://licenses.example"),
            Path::new("GSTAR-C-0001"),
            Path::new("plus"),
        ],
    );
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("cannot activate: invalid server address `ftp://licenses.example`"),
        "{stderr}"
    );

    let output = run(binary, &[&state_dir, &policy]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).starts_with("usage: "));
}
