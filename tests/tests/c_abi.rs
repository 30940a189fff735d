//! End-to-end workflows of the C ABI: `host-client/capi/examples/workflow.c`, compiled against
//! `liblicet.a`, drives a real `licet-server --demo` on loopback with this machine's native
//! fingerprint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::{binaries, DemoServer};
use licet_tests::repo_root;

/// `workflow.c` compiled once per test run.
fn c_workflow() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| c_example("workflow"))
}

/// `bundle.c` compiled once per test run.
fn c_bundle_example() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| c_example("bundle"))
}

/// The C example `examples/NAME.c` compiled against `liblicet.a` of this profile, which
/// `cargo test --workspace` builds with the rest of the workspace.
fn c_example(name: &str) -> PathBuf {
    let profile_dir = binaries();
    // `cargo build` puts the archive in the profile directory, `cargo test` (which builds it
    // for the C ABI's own tests) leaves it in `deps`.
    let archive = [
        profile_dir.join("liblicet.a"),
        profile_dir.join("deps/liblicet.a"),
    ]
    .into_iter()
    .filter(|archive| archive.is_file())
    .max_by_key(|archive| archive.metadata().and_then(|meta| meta.modified()).ok())
    .unwrap_or_else(|| {
        panic!(
            "liblicet.a is not built in {}: run `cargo test --workspace`, which builds it",
            profile_dir.display()
        )
    });

    let capi = repo_root().join("host-client/capi");
    let out_dir = profile_dir.join("licet-c-workflow");
    std::fs::create_dir_all(&out_dir).unwrap();
    let binary = out_dir.join(name);
    let output = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".to_owned()))
        .args(["-std=c99", "-Wall", "-Wextra", "-Werror", "-I"])
        .arg(capi.join("include"))
        .arg(capi.join("examples").join(format!("{name}.c")))
        .arg(&archive)
        .args(["-lpthread", "-ldl", "-lm"])
        // The HID dongle support links libudev.
        .args(if cfg!(target_os = "linux") {
            &["-ludev"][..]
        } else {
            &[]
        })
        .arg("-o")
        .arg(&binary)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    binary
}

/// Runs the C workflow against `server` with its own state directory; returns the `CODE` of
/// every printed step, after asserting that it exited 0.
fn run_c_workflow(server: &DemoServer, state: &str, key: &str, seat: bool) -> Vec<String> {
    let mut command = Command::new(c_workflow());
    command
        .arg(server.dir.path().join(state))
        .arg(&server.policy)
        .arg(server.vendor_key())
        .args([server.url.as_str(), key, "professional"]);
    if seat {
        command.arg("seat");
    }
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .map(|line| {
            let (step, rest) = line.split_once(": ").unwrap();
            let code = rest.split_once(": ").unwrap().0;
            format!("{step}: {code}")
        })
        .collect()
}

#[test]
fn a_c_application_activates_validates_and_returns_a_license() {
    let server = DemoServer::start();
    let steps = run_c_workflow(&server, "c-state", server.standalone_key(), false);
    assert_eq!(
        steps,
        [
            "activate: ACTIVATED",
            "check: VALID",
            "validate: VALID",
            "return: RETURNED",
            "check: NOT_ACTIVATED",
        ]
    );

    // The return freed the key: the command line activates it again on this machine.
    server
        .licet(
            &[
                "activate",
                "--key",
                server.standalone_key(),
                "--edition",
                "professional",
            ],
            true,
        )
        .expect(0, "ACTIVATED: ");
}

#[test]
fn a_c_application_holds_releases_borrows_and_returns_network_seats() {
    let server = DemoServer::start();
    let steps = run_c_workflow(&server, "c-state", server.network_key(), true);
    assert_eq!(
        steps,
        [
            "seat checkout: SEAT_GRANTED",
            "check: VALID",
            "seat release: SEAT_RELEASED",
            "check: NOT_ACTIVATED",
            "borrow: BORROWED",
            "check: VALID",
            "borrow return: BORROW_RETURNED",
            "check: NOT_ACTIVATED",
        ]
    );

    // Every seat is back in the pool.
    let (status, seats) = server.admin("GET", "/v1/admin/seats", &serde_json::Value::Null);
    assert_eq!(status, 200, "{seats}");
    assert_eq!(seats.as_array().map(Vec::len), Some(0), "{seats}");
}

fn run_c_bundle(server: &DemoServer, bundle: &[u8], key: &[u8; 32]) -> (i32, String) {
    let file = server.dir.path().join("product.licet-bundle");
    std::fs::write(&file, bundle).unwrap();
    let hex: String = key.iter().map(|byte| format!("{byte:02x}")).collect();
    let output = Command::new(c_bundle_example())
        .arg(server.dir.path().join("c-bundle-state"))
        .arg(&file)
        .arg(hex)
        .args([server.standalone_key(), "professional"])
        .output()
        .unwrap();
    (
        output.status.code().unwrap(),
        String::from_utf8_lossy(&output.stdout).into_owned()
            + String::from_utf8_lossy(&output.stderr).as_ref(),
    )
}

#[test]
fn a_c_product_opens_its_bundle_and_activates_with_the_bundles_server() {
    let server = DemoServer::start();
    let bundle = server.bundle();
    let key = server.vendor_secret().verifying_key().to_bytes();

    // One byte changed, and another vendor's key: refused before anything runs.
    let mut tampered = bundle.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 1;
    let (code, output) = run_c_bundle(&server, &tampered, &key);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.starts_with("open: REFUSED: product bundle refused"),
        "{output}"
    );
    let (code, output) = run_c_bundle(&server, &bundle, &[7; 32]);
    assert_eq!(code, 1, "{output}");
    assert!(output.starts_with("open: REFUSED: "), "{output}");
    assert!(!server.dir.path().join("c-bundle-state").exists());

    let (code, output) = run_c_bundle(&server, &bundle, &key);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("activate: ACTIVATED: "), "{output}");
    assert!(output.contains("check: VALID: "), "{output}");
}
