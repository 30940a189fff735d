//! End-to-end dongle workflows of the GstarCAD guide against a real `licet-server`: a standalone
//! dongle license runs wherever its dongle is plugged in (the dongle signs a fresh challenge at
//! every start-up check and for the server at activation), and a network dongle license server
//! serves seats only while its own dongle answers. Dongles are software dongle files read through
//! the vendor-signed `dongle-hid` plugin, exactly as USB dongles are.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::DemoServer;
use licet_client::FixedProbe;
use licet_engine::{Code, Fingerprint};
use licet_plugin_host::test_support::install_dongle_plugin;
use licet_plugin_host::{
    read_signing_key, SoftwareDongle, DEFAULT_DONGLE_PRODUCT_ID, DEFAULT_DONGLE_VENDOR_ID,
};
use serde_json::json;

/// The dongle plugin signed with the demo vendor's key, installed in the server's directory.
fn dongle_plugin(server: &DemoServer) -> PathBuf {
    let key = read_signing_key(&server.dir.path().join("server").join("vendor.secret")).unwrap();
    install_dongle_plugin(
        &server.dir.path().join("plugins"),
        &key,
        DEFAULT_DONGLE_VENDOR_ID,
        DEFAULT_DONGLE_PRODUCT_ID,
    )
    .unwrap()
}

/// A new software dongle written to `path`; returns it.
fn new_dongle(path: &Path) -> SoftwareDongle {
    let dongle =
        SoftwareDongle::generate(DEFAULT_DONGLE_VENDOR_ID, DEFAULT_DONGLE_PRODUCT_ID).unwrap();
    dongle.write_file(path).unwrap();
    dongle
}

/// The administrator issues a license of `license_type` on `dongle`; returns its key.
fn issue_on_dongle(server: &DemoServer, license_type: &str, dongle: &SoftwareDongle) -> String {
    let mut body = json!({ "product": "gstarcad", "license_type": license_type,
                           "edition": "professional", "dongle": dongle.serial() });
    if license_type == "network-dongle" {
        body["seats"] = json!(2);
    }
    let (status, answer) = server.admin("POST", "/v1/admin/licenses", &body);
    assert_eq!(status, 201, "{answer}");
    answer["licenses"][0]["key"].as_str().unwrap().to_owned()
}

#[test]
fn a_standalone_dongle_license_runs_wherever_its_dongle_is_plugged_in() {
    let server = DemoServer::start();
    let plugin = dongle_plugin(&server);
    let dongle_file = server.dir.path().join("usb.dongle");
    let dongle = new_dongle(&dongle_file);
    let key = issue_on_dongle(&server, "standalone-dongle", &dongle);
    let plugin_arg = plugin.to_str().unwrap();
    let file_arg = dongle_file.to_str().unwrap();
    let with_dongle = |args: &[&str], online: bool| {
        let mut all = args.to_vec();
        all.extend(["--dongle-plugin", plugin_arg, "--software-dongle", file_arg]);
        server.licet(&all, online)
    };

    with_dongle(&["dongle", "status"], false).expect(0, "DONGLE_PRESENT: ");
    assert!(with_dongle(&["dongle", "status"], false)
        .stdout
        .contains(&dongle.serial()));
    // Without the dongle the server refuses the activation: a serial alone proves nothing.
    server
        .licet(
            &["activate", "--key", &key, "--edition", "professional"],
            true,
        )
        .expect(1, "DONGLE_ABSENT: ");
    with_dongle(
        &["activate", "--key", &key, "--edition", "professional"],
        true,
    )
    .expect(0, "ACTIVATED: ");
    with_dongle(&["check"], false).expect(0, "VALID");
    with_dongle(&["validate"], true).expect(0, "VALID: ");

    // Pulled out: the start-up check refuses, and runs again once it is back.
    std::fs::rename(&dongle_file, server.dir.path().join("drawer.dongle")).unwrap();
    with_dongle(&["dongle", "status"], false).expect(1, "DONGLE_ABSENT: ");
    with_dongle(&["check"], false).expect(1, "DONGLE_ABSENT");
    server.licet(&["check"], false).expect(1, "DONGLE_ABSENT");
    std::fs::rename(server.dir.path().join("drawer.dongle"), &dongle_file).unwrap();
    with_dongle(&["check"], false).expect(0, "VALID");

    // Another dongle in its place is not the license's dongle.
    let impostor_file = server.dir.path().join("impostor.dongle");
    new_dongle(&impostor_file);
    let mut impostor_args = vec!["check", "--dongle-plugin", plugin_arg, "--software-dongle"];
    impostor_args.push(impostor_file.to_str().unwrap());
    server
        .licet(&impostor_args, false)
        .expect(1, "DONGLE_MISMATCH");

    // The dongle moves to another machine: it activates there too, and the impostor does not.
    let laptop = |file: &Path| {
        let fingerprint = Fingerprint {
            components: [
                ("machine-id", "laptop"),
                ("mac", "l1"),
                ("cpu", "l2"),
                ("disk", "l3"),
            ]
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
        };
        licet_client::Client::new(
            &server.dir.path().join("laptop"),
            licet_client::client::load_policy(&server.policy).unwrap(),
            licet_client::keys::read_verifying_key(&server.vendor_key()).unwrap(),
            Box::new(FixedProbe::new(fingerprint)),
        )
        .with_dongle_plugin(&plugin, Some(file))
        .unwrap()
    };
    let mut transport = server.transport();
    let refused = laptop(&impostor_file)
        .activate(&mut transport, &key, "professional", chrono::Utc::now())
        .unwrap();
    assert_eq!(refused.code, Code::DongleMismatch, "{refused:?}");
    let laptop = laptop(&dongle_file);
    let moved = laptop
        .activate(&mut transport, &key, "professional", chrono::Utc::now())
        .unwrap();
    assert_eq!(moved.code, Code::Activated, "{moved:?}");
    assert_eq!(laptop.check().unwrap().decision.code, Code::Valid);
}

#[test]
fn a_network_dongle_server_serves_seats_only_while_its_dongle_answers() {
    let mut server = DemoServer::start();
    let plugin = dongle_plugin(&server);
    let dongle_file = server.dir.path().join("server.dongle");
    let dongle = new_dongle(&dongle_file);
    let key = issue_on_dongle(&server, "network-dongle", &dongle);
    // The vendor configures the server's dongle and restarts it.
    let mut config: String = std::fs::read_to_string(server.config_path())
        .unwrap()
        .lines()
        .filter(|line| !line.starts_with("dongle:"))
        .map(|line| format!("{line}\n"))
        .collect();
    config.push_str(&format!(
        "dongle:\n  plugin: {}\n  software: {}\n  poll_seconds: 1\n",
        plugin.display(),
        dongle_file.display()
    ));
    std::fs::write(server.config_path(), config).unwrap();
    server.restart();

    let mut transport = server.transport();
    let first = server.machine("first");
    let second = server.machine("second");
    let granted = first
        .checkout(&mut transport, &key, "professional", chrono::Utc::now())
        .unwrap();
    assert_eq!(granted.code, Code::SeatGranted, "{granted:?}");
    // The dongle is pulled out of the server: within a poll no seat is served, and the holder's
    // heartbeat is refused.
    std::fs::remove_file(&dongle_file).unwrap();
    let absent = wait_for(|| {
        let decision = second
            .checkout(&mut transport, &key, "professional", chrono::Utc::now())
            .unwrap();
        (decision.code != Code::SeatGranted).then_some(decision)
    });
    assert_eq!(absent.code, Code::DongleAbsent, "{absent:?}");
    let heartbeat = first.heartbeat(&mut transport, chrono::Utc::now()).unwrap();
    assert_eq!(heartbeat.code, Code::DongleAbsent, "{heartbeat:?}");
    // Plugged back in: seats again.
    dongle.write_file(&dongle_file).unwrap();
    let back = wait_for(|| {
        let decision = second
            .checkout(&mut transport, &key, "professional", chrono::Utc::now())
            .unwrap();
        (decision.code == Code::SeatGranted).then_some(decision)
    });
    assert_eq!(back.code, Code::SeatGranted);
    // A server whose plugin is not signed by the vendor does not start.
    let forged = server.dir.path().join("forged");
    install_dongle_plugin(
        &forged,
        &ed25519_dalek::SigningKey::from_bytes(&[9; 32]),
        DEFAULT_DONGLE_VENDOR_ID,
        DEFAULT_DONGLE_PRODUCT_ID,
    )
    .unwrap();
    let config = std::fs::read_to_string(server.config_path())
        .unwrap()
        .replace(
            &plugin.display().to_string(),
            &forged.join("dongle-hid").display().to_string(),
        );
    std::fs::write(server.config_path(), config).unwrap();
    server.stop();
    let output = std::process::Command::new(common::binaries().join("licet-server"))
        .arg("--config")
        .arg(server.config_path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("dongle plugin"), "{stderr}");
}

/// Polls `probe` every 100 ms for up to 10 s until it returns something.
fn wait_for<T>(mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "gave up waiting");
        std::thread::sleep(Duration::from_millis(100));
    }
}
