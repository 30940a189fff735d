//! Only plugins signed by the vendor key load; the signing tool works as the guide says.

use std::process::Command;

use base64::Engine as _;
use ed25519_dalek::SigningKey;
use licet_plugin_host::test_support::{install_plugin, test_key};
use licet_plugin_host::{PluginError, Slot, World};

use crate::support::{host, plugin, urls};

#[test]
fn a_tampered_component_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "transport-file", World::Transport, &[], urls(&[]));
    let wasm = plugin_dir.join("transport_file.wasm");
    let mut bytes = std::fs::read(&wasm).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&wasm, bytes).unwrap();
    let error = host().load(&plugin_dir, Slot::TRANSPORT).unwrap_err();
    assert!(matches!(error, PluginError::HashMismatch { .. }), "{error}");
}

#[test]
fn unsigned_foreign_and_widened_plugins_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = install_plugin(
        dir.path(),
        "transport-http",
        World::Transport,
        &[("server-url", "http://127.0.0.1:1/a")],
        urls(&["http://127.0.0.1:1/a"]),
        &SigningKey::from_bytes(&[1; 32]),
    )
    .unwrap();
    let error = host().load(&foreign, Slot::TRANSPORT).unwrap_err();
    assert!(matches!(error, PluginError::BadSignature { .. }), "{error}");

    let own = plugin(
        &dir,
        "transport-http",
        World::Transport,
        &[("server-url", "http://127.0.0.1:1/a")],
        urls(&["http://127.0.0.1:1/a"]),
    );
    assert!(host().load(&own, Slot::TRANSPORT).is_ok());
    let manifest = own.join("plugin.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("127.0.0.1:1/a", "127.0.0.1:2/a")).unwrap();
    let error = host().load(&own, Slot::TRANSPORT).unwrap_err();
    assert!(matches!(error, PluginError::BadSignature { .. }), "{error}");

    std::fs::remove_file(own.join("plugin.sig")).unwrap();
    let error = host().load(&own, Slot::TRANSPORT).unwrap_err();
    assert!(matches!(error, PluginError::Unsigned { .. }), "{error}");
}

#[test]
fn the_signing_tool_signs_and_verifies_with_vendor_key_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = test_key();
    let engine = base64::engine::general_purpose::STANDARD;
    let secret = dir.path().join("vendor.secret");
    let public = dir.path().join("vendor.pub");
    std::fs::write(
        &secret,
        format!("licet-ed25519-secret:{}\n", engine.encode(key.to_bytes())),
    )
    .unwrap();
    std::fs::write(
        &public,
        format!(
            "licet-ed25519-public:{}\n",
            engine.encode(key.verifying_key().as_bytes())
        ),
    )
    .unwrap();
    let plugin_dir = dir.path().join("my-transport");
    std::fs::create_dir(&plugin_dir).unwrap();
    let wasm = licet_plugin_host::test_support::guest_wasm("transport-file").unwrap();
    std::fs::copy(wasm, plugin_dir.join("my_transport.wasm")).unwrap();
    std::fs::write(
        plugin_dir.join("plugin.json"),
        r#"{ "name": "my-transport", "version": "1.0.0", "world": "transport",
             "wasm": "my_transport.wasm" }"#,
    )
    .unwrap();

    let tool = env!("CARGO_BIN_EXE_licet-plugin");
    let run = |args: &[&std::ffi::OsStr]| Command::new(tool).args(args).output().unwrap();
    let verify = [
        "verify".as_ref(),
        plugin_dir.as_os_str(),
        "--key".as_ref(),
        public.as_os_str(),
    ];
    let unsigned = run(&verify);
    assert!(!unsigned.status.success());
    assert!(String::from_utf8_lossy(&unsigned.stderr).contains("not signed"));

    let signed = run(&[
        "sign".as_ref(),
        plugin_dir.as_os_str(),
        "--key".as_ref(),
        secret.as_os_str(),
    ]);
    assert!(
        signed.status.success(),
        "{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    assert!(String::from_utf8_lossy(&signed.stdout).starts_with("signed my-transport 1.0.0"));

    let verified = run(&verify);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    assert!(String::from_utf8_lossy(&verified.stdout).contains("signed transport plugin"));
    assert!(host().load_transport(&plugin_dir).is_ok());

    // Checked as a slot would: the transport slot takes it, the dongle slot does not.
    let as_slot = |world: &str, name: Option<&str>| {
        let mut args: Vec<&std::ffi::OsStr> = verify.to_vec();
        args.extend(["--world", world].map(std::ffi::OsStr::new));
        if let Some(name) = name {
            args.extend(["--name", name].map(std::ffi::OsStr::new));
        }
        run(&args)
    };
    assert!(as_slot("transport", Some("my-transport")).status.success());
    let dongle_slot = as_slot("hardware-check", Some("dongle-hid"));
    assert!(!dongle_slot.status.success());
    assert!(
        String::from_utf8_lossy(&dongle_slot.stderr).contains("not a `hardware-check` plugin"),
        "{}",
        String::from_utf8_lossy(&dongle_slot.stderr)
    );
    let other_name = as_slot("transport", Some("transport-http"));
    assert!(!other_name.status.success());
    assert!(
        String::from_utf8_lossy(&other_name.stderr).contains("takes only `transport-http`"),
        "{}",
        String::from_utf8_lossy(&other_name.stderr)
    );
}
