//! A host checking for its dongle: `DongleReader` over a software dongle file or the machine's
//! HID devices, and the `licet-plugin dongle` commands that make development dongles.

use std::process::Command;
use std::sync::Arc;

use licet_plugin_host::test_support::{install_dongle_plugin, install_plugin, test_key};
use licet_plugin_host::{
    hid_backend, sign_plugin, Allow, DongleReader, NoHid, PluginError, SoftwareDongle,
    SoftwareDongleError, World, DEFAULT_DONGLE_PRODUCT_ID, DEFAULT_DONGLE_VENDOR_ID, DONGLE_PLUGIN,
};

fn reader(dir: &tempfile::TempDir, hid: Arc<dyn licet_plugin_host::HidBackend>) -> DongleReader {
    let plugin_dir = install_dongle_plugin(
        dir.path(),
        &test_key(),
        DEFAULT_DONGLE_VENDOR_ID,
        DEFAULT_DONGLE_PRODUCT_ID,
    )
    .unwrap();
    DongleReader::load(&plugin_dir, DONGLE_PLUGIN, test_key().verifying_key(), hid).unwrap()
}

#[test]
fn a_reader_proves_the_software_dongle_is_present_with_fresh_challenges() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.dongle");
    let dongle =
        SoftwareDongle::generate(DEFAULT_DONGLE_VENDOR_ID, DEFAULT_DONGLE_PRODUCT_ID).unwrap();
    dongle.write_file(&path).unwrap();
    let reader = reader(&dir, hid_backend(Some(&path)).unwrap());

    let first = reader.present().unwrap();
    let second = reader.present().unwrap();
    assert_eq!(first.serial, dongle.serial());
    assert_eq!(second.serial, dongle.serial());
    // Each check signs its own random challenge.
    assert_ne!(first.proof.signature, second.proof.signature);

    let challenge = [0x77; 32];
    let proved = reader.prove(&challenge).unwrap();
    assert_eq!(proved.proof.verify(&challenge).unwrap(), dongle.serial());
}

#[test]
fn removing_a_software_dongle_file_unplugs_the_dongle_and_restoring_it_plugs_it_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.dongle");
    let dongle =
        SoftwareDongle::generate(DEFAULT_DONGLE_VENDOR_ID, DEFAULT_DONGLE_PRODUCT_ID).unwrap();
    dongle.write_file(&path).unwrap();
    let reader = reader(&dir, hid_backend(Some(&path)).unwrap());
    assert_eq!(reader.present().unwrap().serial, dongle.serial());
    std::fs::remove_file(&path).unwrap();
    let error = reader.present().unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "device"),
        "{error}"
    );
    dongle.write_file(&path).unwrap();
    assert_eq!(reader.present().unwrap().serial, dongle.serial());
    // A file that is there must be a dongle file from the start.
    let garbage = dir.path().join("garbage.dongle");
    std::fs::write(&garbage, "not a dongle").unwrap();
    assert!(hid_backend(Some(&garbage)).is_err());
}

#[test]
fn a_reader_without_a_dongle_reports_a_device_error() {
    let dir = tempfile::tempdir().unwrap();
    let reader = reader(&dir, Arc::new(NoHid));
    let error = reader.present().unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, message, .. }
            if code == "device" && message.contains("1209:4c43")),
        "{error}"
    );
    // No software dongle file: the machine's HID devices, where no dongle is attached (or hidapi
    // cannot start): the same answer, never a crash.
    let machine = tempfile::tempdir().unwrap();
    let reader = self::reader(&machine, hid_backend(None).unwrap());
    let error = reader.present().unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "device"),
        "{error}"
    );
}

#[test]
fn the_dongle_slot_takes_only_the_signed_dongle_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let load = |plugin_dir: &std::path::Path| {
        DongleReader::load(
            plugin_dir,
            DONGLE_PLUGIN,
            test_key().verifying_key(),
            Arc::new(NoHid),
        )
    };
    // The vendor-signed HTTP transport where the dongle plugin is expected.
    let transport = install_plugin(
        dir.path(),
        "transport-http",
        World::Transport,
        &[("server-url", "http://127.0.0.1:1/a")],
        Allow {
            urls: vec!["http://127.0.0.1:1/a".to_string()],
            hid: Vec::new(),
        },
        &test_key(),
    )
    .unwrap();
    let error = load(&transport).unwrap_err();
    assert!(
        matches!(&error, PluginError::WrongWorld { plugin, expected: "hardware-check", found: "transport" }
            if plugin == "transport-http"),
        "{error}"
    );
    // The vendor-signed fingerprint check, a hardware check of another name.
    let fingerprint = install_plugin(
        dir.path(),
        "fingerprint",
        World::HardwareCheck,
        &[],
        Allow::default(),
        &test_key(),
    )
    .unwrap();
    let error = load(&fingerprint).unwrap_err();
    assert!(
        matches!(&error, PluginError::WrongPlugin { expected, found, world: "hardware-check", .. }
            if expected == DONGLE_PLUGIN && found == "fingerprint"),
        "{error}"
    );
    assert!(
        error.to_string().contains("takes only `dongle-hid`"),
        "{error}"
    );

    // The refusal comes before the component is compiled: a signed manifest of another name
    // over bytes that are no component at all is refused for its name, not for its code.
    let bogus = dir.path().join("bogus");
    std::fs::create_dir(&bogus).unwrap();
    std::fs::write(bogus.join("bogus.wasm"), b"not a component").unwrap();
    for (name, world) in [
        ("dongle-usb", "hardware-check"),
        ("dongle-hid", "transport"),
    ] {
        std::fs::write(
            bogus.join("plugin.json"),
            format!(r#"{{"name":"{name}","version":"1","world":"{world}","wasm":"bogus.wasm"}}"#),
        )
        .unwrap();
        sign_plugin(&bogus, &test_key()).unwrap();
        let error = load(&bogus).unwrap_err();
        assert!(
            matches!(
                error,
                PluginError::WrongPlugin { .. } | PluginError::WrongWorld { .. }
            ),
            "{name} ({world}): {error}"
        );
    }
    // Named `dongle-hid` in the hardware-check world, the same bytes reach the compiler.
    std::fs::write(
        bogus.join("plugin.json"),
        r#"{"name":"dongle-hid","version":"1","world":"hardware-check","wasm":"bogus.wasm"}"#,
    )
    .unwrap();
    sign_plugin(&bogus, &test_key()).unwrap();
    let error = load(&bogus).unwrap_err();
    assert!(matches!(error, PluginError::Load { .. }), "{error}");

    // The shipped dongle plugin fills the slot.
    let dongle = install_dongle_plugin(
        dir.path(),
        &test_key(),
        DEFAULT_DONGLE_VENDOR_ID,
        DEFAULT_DONGLE_PRODUCT_ID,
    )
    .unwrap();
    assert!(load(&dongle).is_ok());
}

#[test]
fn a_reader_refuses_a_plugin_the_vendor_did_not_sign_and_a_broken_dongle_file() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = install_dongle_plugin(
        dir.path(),
        &ed25519_dalek::SigningKey::from_bytes(&[0x31; 32]),
        DEFAULT_DONGLE_VENDOR_ID,
        DEFAULT_DONGLE_PRODUCT_ID,
    )
    .unwrap();
    let error = DongleReader::load(
        &plugin_dir,
        DONGLE_PLUGIN,
        test_key().verifying_key(),
        Arc::new(NoHid),
    )
    .unwrap_err();
    assert!(matches!(error, PluginError::BadSignature { .. }), "{error}");

    let broken = dir.path().join("broken.dongle");
    std::fs::write(&broken, "licet-software-dongle 1\nvendor-id 0x1209\n").unwrap();
    let error = hid_backend(Some(&broken)).err().unwrap();
    assert!(matches!(error, SoftwareDongleError::File { .. }), "{error}");
    // A missing file is a dongle not plugged in: the check says so, it does not fail to start.
    let unplugged = reader(
        &dir,
        hid_backend(Some(&dir.path().join("missing.dongle"))).unwrap(),
    );
    let error = unplugged.present().unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "device"),
        "{error}"
    );
}

fn run(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_licet-plugin"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn the_tool_creates_software_dongles_and_prints_their_serials() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dev.dongle");
    let created = stdout(&run(&[
        "dongle".as_ref(),
        "create".as_ref(),
        "--out".as_ref(),
        path.as_os_str(),
    ]));
    let serial = created.trim().strip_prefix("serial: ").unwrap().to_string();
    assert!(serial.starts_with("LD-") && serial.len() == 23, "{created}");
    let dongle = SoftwareDongle::read_file(&path).unwrap();
    assert_eq!(dongle.serial(), serial);
    assert_eq!(
        (dongle.vendor_id, dongle.product_id),
        (DEFAULT_DONGLE_VENDOR_ID, DEFAULT_DONGLE_PRODUCT_ID)
    );
    assert_eq!(
        stdout(&run(&[
            "dongle".as_ref(),
            "serial".as_ref(),
            path.as_os_str()
        ]))
        .trim(),
        serial
    );

    // The dongle the tool made proves its presence through the plugin.
    let reader = reader(&dir, hid_backend(Some(&path)).unwrap());
    assert_eq!(reader.present().unwrap().serial, serial);

    // An existing file is kept unless `--force` is given.
    let again = run(&[
        "dongle".as_ref(),
        "create".as_ref(),
        "--out".as_ref(),
        path.as_os_str(),
    ]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    assert_eq!(SoftwareDongle::read_file(&path).unwrap().serial(), serial);
    let replaced = stdout(&run(&[
        "dongle".as_ref(),
        "create".as_ref(),
        "--out".as_ref(),
        path.as_os_str(),
        "--force".as_ref(),
        "--vendor-id".as_ref(),
        "4617".as_ref(),
        "--product-id".as_ref(),
        "0x0002".as_ref(),
    ]));
    let replacement = SoftwareDongle::read_file(&path).unwrap();
    assert_ne!(replacement.serial(), serial);
    assert_eq!(replaced.trim(), format!("serial: {}", replacement.serial()));
    assert_eq!((replacement.vendor_id, replacement.product_id), (0x1209, 2));

    let bad_id = run(&[
        "dongle".as_ref(),
        "create".as_ref(),
        "--out".as_ref(),
        dir.path().join("other.dongle").as_os_str(),
        "--vendor-id".as_ref(),
        "0x1ffff".as_ref(),
    ]);
    assert!(!bad_id.status.success());
    assert!(String::from_utf8_lossy(&bad_id.stderr).contains("not a USB ID"));
    assert!(!dir.path().join("other.dongle").exists());

    std::fs::write(&path, "not a dongle\n").unwrap();
    let unreadable = run(&["dongle".as_ref(), "serial".as_ref(), path.as_os_str()]);
    assert!(!unreadable.status.success());
    assert!(
        String::from_utf8_lossy(&unreadable.stderr).contains("not a licet software dongle file")
    );
}
