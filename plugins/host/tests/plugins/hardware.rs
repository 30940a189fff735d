use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::SigningKey;
use licet_engine::policy::FingerprintPolicy;
use licet_plugin_host::test_support::install_dongle_plugin;
use licet_plugin_host::{
    read_machine, read_machine_at, DongleProofError, DongleRefusal, HardwareCheckPlugin,
    HidApiBackend, HidBackend, HidDevice, HidError, NoHid, PluginError, PluginHost, Reading,
    SoftwareDongle, World, DONGLE_PLUGIN,
};
use sha2::{Digest, Sha256};

use crate::support::{hid, host, plugin};

const SALT: &[u8] = b"gstarcad-2026 product salt";
const DONGLE: (u16, u16) = (0x1209, 0x4c43);

fn write(root: &Path, path: &str, text: &str) {
    let path = root.join(path);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A machine's files: two physical NICs, a docker bridge, a loop device and an NVMe disk.
fn fake_machine(root: &Path, eth0: &str) {
    write(root, "etc/machine-id", "0123456789ABCDEF0123456789abcdef\n");
    write(root, "sys/class/net/eth0/address", &format!("{eth0}\n"));
    write(root, "sys/class/net/wlan0/address", "f0:de:f1:00:00:02\n");
    write(root, "sys/class/net/docker0/address", "02:42:ac:11:00:01\n");
    write(root, "sys/class/net/lo/address", "00:00:00:00:00:00\n");
    write(
        root,
        "proc/cpuinfo",
        "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM)   i7-8650U\n\n\
         processor\t: 1\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Core(TM)   i7-8650U\n",
    );
    write(
        root,
        "sys/block/nvme0n1/device/serial",
        "  s3ewnx0k123456  \n",
    );
    write(root, "sys/block/loop0/device/serial", "LOOPLOOP\n");
}

fn expected(name: &str, value: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(SALT);
    hasher.update([0]);
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn policy() -> FingerprintPolicy {
    FingerprintPolicy {
        components: ["machine-id", "mac", "cpu", "disk"]
            .map(String::from)
            .to_vec(),
        match_at_least: 3,
    }
}

#[test]
fn the_host_reads_the_machine_files_the_plugin_needs() {
    let root = tempfile::tempdir().unwrap();
    fake_machine(root.path(), "00:1b:21:0a:0b:0c");
    let readings = read_machine_at(root.path());
    let kinds: Vec<_> = readings
        .iter()
        .map(|reading| (reading.kind.as_str(), reading.source.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("machine-id", "/etc/machine-id"),
            ("mac", "/sys/class/net/docker0/address"),
            ("mac", "/sys/class/net/eth0/address"),
            ("mac", "/sys/class/net/wlan0/address"),
            ("cpu", "/proc/cpuinfo"),
            ("disk", "/sys/block/nvme0n1/device/serial"),
        ]
    );
    let cpu = &readings[4].value;
    assert!(cpu.contains("processor\t: 0") && !cpu.contains("processor\t: 1"));
}

#[test]
fn fingerprint_normalizes_hashes_and_survives_one_changed_part() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Default::default(),
    );
    let check = host()
        .load_hardware_check(&plugin_dir, "fingerprint")
        .unwrap();

    let office = tempfile::tempdir().unwrap();
    fake_machine(office.path(), "00:1B:21:0A:0B:0C");
    let fingerprint = check
        .fingerprint(SALT, &read_machine_at(office.path()))
        .unwrap();
    let components = &fingerprint.components;
    assert_eq!(
        components.get("machine-id").unwrap(),
        &expected("machine-id", "0123456789abcdef0123456789abcdef")
    );
    // The docker bridge's locally administered address is ignored; the lowest physical one wins.
    assert_eq!(
        components.get("mac").unwrap(),
        &expected("mac", "001b210a0b0c")
    );
    assert_eq!(
        components.get("cpu").unwrap(),
        &expected("cpu", "GenuineIntel Intel(R) Core(TM) i7-8650U")
    );
    assert_eq!(
        components.get("disk").unwrap(),
        &expected("disk", "S3EWNX0K123456")
    );

    // Another product's salt gives unrelated values.
    let other = check
        .fingerprint(b"another product salt", &read_machine_at(office.path()))
        .unwrap();
    assert_eq!(other.matching_components(&fingerprint, &policy()), 0);

    // A replaced network card: three of four still match, the license holds.
    let new_nic = tempfile::tempdir().unwrap();
    fake_machine(new_nic.path(), "00:0e:c6:99:88:77");
    let after_repair = check
        .fingerprint(SALT, &read_machine_at(new_nic.path()))
        .unwrap();
    assert_ne!(after_repair.components.get("mac"), components.get("mac"));
    assert!(after_repair.matches(&fingerprint, &policy()));

    // A new disk as well: two of four, another machine.
    write(
        new_nic.path(),
        "sys/block/nvme0n1/device/serial",
        "S4NEWDISK\n",
    );
    let rebuilt = check
        .fingerprint(SALT, &read_machine_at(new_nic.path()))
        .unwrap();
    assert!(!rebuilt.matches(&fingerprint, &policy()));
}

#[test]
fn fingerprint_config_and_salt_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "fingerprint",
        World::HardwareCheck,
        &[("components", "machine-id, cpu")],
        Default::default(),
    );
    let check = host()
        .load_hardware_check(&plugin_dir, "fingerprint")
        .unwrap();
    let readings = [
        Reading::new(
            "machine-id",
            "/etc/machine-id",
            "0123456789abcdef0123456789abcdef",
        ),
        Reading::new("mac", "/sys/class/net/eth0/address", "00:1b:21:0a:0b:0c"),
    ];
    let fingerprint = check.fingerprint(SALT, &readings).unwrap();
    let names: Vec<_> = fingerprint.components.keys().map(String::as_str).collect();
    assert_eq!(names, ["machine-id"]);

    let error = check.fingerprint(b"short", &readings).unwrap_err();
    assert!(
        matches!(&error, PluginError::Plugin { code, .. } if code == "bad-config"),
        "{error}"
    );
}

#[test]
fn fingerprint_of_this_machine_is_stable() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Default::default(),
    );
    let check = host()
        .load_hardware_check(&plugin_dir, "fingerprint")
        .unwrap();
    let first = check.fingerprint(SALT, &read_machine()).unwrap();
    let second = check.fingerprint(SALT, &read_machine()).unwrap();
    assert!(!first.components.is_empty(), "no component on this machine");
    assert_eq!(first, second);
}

fn dongle() -> SoftwareDongle {
    SoftwareDongle {
        vendor_id: DONGLE.0,
        product_id: DONGLE.1,
        signing_key: SigningKey::from_bytes(&[0x41; 32]),
    }
}

fn dongle_config() -> [(&'static str, &'static str); 2] {
    [("vendor-id", "0x1209"), ("product-id", "0x4c43")]
}

fn dongle_check_plugin(dir: &tempfile::TempDir) -> HardwareCheckPlugin {
    let plugin_dir = plugin(
        dir,
        "dongle-hid",
        World::HardwareCheck,
        &dongle_config(),
        hid(&[DONGLE]),
    );
    host()
        .load_hardware_check(&plugin_dir, DONGLE_PLUGIN)
        .unwrap()
}

#[test]
fn a_dongle_proves_its_presence_by_signing_the_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let check = dongle_check_plugin(&dir);
    let dongle = dongle();
    let challenge = [0x5a; 32];
    let verified = check
        .dongle_check(Arc::new(dongle.clone()), &challenge)
        .unwrap();
    assert_eq!(verified.serial, dongle.serial());
    assert_eq!(
        verified.serial,
        licet_engine::dongle::dongle_serial(&dongle.public_key())
    );
    assert_eq!(verified.proof.public_key, dongle.public_key());
    // The proof can be checked again elsewhere, for this challenge only.
    assert_eq!(verified.proof.verify(&challenge).unwrap(), dongle.serial());
    assert_eq!(
        verified.proof.verify(&[0x5b; 32]),
        Err(DongleProofError::Signature)
    );

    // Another dongle with the same USB IDs proves another serial.
    let other = SoftwareDongle {
        signing_key: SigningKey::from_bytes(&[0x42; 32]),
        ..dongle.clone()
    };
    let other_verified = check
        .dongle_check(Arc::new(other.clone()), &challenge)
        .unwrap();
    assert_eq!(other_verified.serial, other.serial());
    assert_ne!(other_verified.serial, verified.serial);

    // A generated dongle, written to a file and read back, proves the same serial.
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("dev.dongle");
    let generated = SoftwareDongle::generate(DONGLE.0, DONGLE.1).unwrap();
    generated.write_file(&path).unwrap();
    let from_file = SoftwareDongle::read_file(&path).unwrap();
    let verified = check.dongle_check(Arc::new(from_file), &[9; 32]).unwrap();
    assert_eq!(verified.serial, generated.serial());
}

/// A dongle device that answers through a transformation of the software dongle's reports: what
/// a broken, replaying or emulating device would send.
type Tamper = Arc<dyn Fn(&mut Vec<Vec<u8>>) + Send + Sync>;

struct TamperingDongle {
    dongle: SoftwareDongle,
    tamper: Tamper,
}

struct TamperingDevice {
    inner: Box<dyn HidDevice>,
    tamper: Tamper,
    answers: Option<std::collections::VecDeque<Vec<u8>>>,
}

impl HidDevice for TamperingDevice {
    fn write(&mut self, report: &[u8]) -> Result<(), HidError> {
        self.inner.write(report)
    }

    fn read(&mut self, timeout: Duration) -> Result<Vec<u8>, HidError> {
        if self.answers.is_none() {
            let mut reports = Vec::new();
            while let Ok(report) = self.inner.read(timeout) {
                reports.push(report);
            }
            (self.tamper)(&mut reports);
            self.answers = Some(reports.into());
        }
        self.answers
            .as_mut()
            .and_then(|answers| answers.pop_front())
            .ok_or(HidError::Timeout)
    }
}

impl HidBackend for TamperingDongle {
    fn open(&self, vendor_id: u16, product_id: u16) -> Result<Box<dyn HidDevice>, HidError> {
        Ok(Box::new(TamperingDevice {
            inner: self.dongle.open(vendor_id, product_id)?,
            tamper: Arc::clone(&self.tamper),
            answers: None,
        }))
    }
}

fn tampered(
    check: &HardwareCheckPlugin,
    tamper: impl Fn(&mut Vec<Vec<u8>>) + Send + Sync + 'static,
) -> PluginError {
    let backend = TamperingDongle {
        dongle: dongle(),
        tamper: Arc::new(tamper),
    };
    check
        .dongle_check(Arc::new(backend), &[0x5a; 32])
        .unwrap_err()
}

#[test]
fn tampered_or_misframed_answers_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let check = dongle_check_plugin(&dir);

    // One flipped bit of the public key or of the signature: the answer no longer verifies.
    for (report, byte) in [(0, 4), (0, 35), (0, 36), (0, 63), (1, 4), (1, 39)] {
        let error = tampered(&check, move |reports| reports[report][byte] ^= 1);
        assert!(
            matches!(&error, PluginError::DongleProof { plugin, reason: DongleRefusal::Proof(_) }
                if plugin == "dongle-hid"),
            "report {report} byte {byte}: {error}"
        );
    }

    // The reports in the wrong order, a part missing, an error status, something else entirely.
    let error = tampered(&check, |reports| reports.swap(0, 1));
    assert!(
        matches!(&error, PluginError::Plugin { code, message, .. }
            if code == "bad-reply" && message.contains("part 1, not part 0")),
        "{error}"
    );
    let error = tampered(&check, |reports| {
        reports.pop();
    });
    assert!(
        matches!(&error, PluginError::Plugin { code, message, .. }
            if code == "device" && message.contains("did not answer")),
        "{error}"
    );
    let error = tampered(&check, |reports| reports[0][2] = 7);
    assert!(
        matches!(&error, PluginError::Plugin { code, message, .. }
            if code == "device" && message.contains("status 7")),
        "{error}"
    );
    let error = tampered(&check, |reports| reports[1][1] = 0x81);
    assert!(
        matches!(&error, PluginError::Plugin { code, message, .. }
            if code == "bad-reply" && message.contains("second")),
        "{error}"
    );
    let error = tampered(&check, |reports| reports[0].truncate(40));
    assert!(
        matches!(&error, PluginError::Plugin { code, message, .. }
            if code == "bad-reply" && message.contains("too short")),
        "{error}"
    );
}

/// A device that answers every challenge with the answer it recorded for one earlier challenge.
struct ReplayingDongle {
    recorded: Vec<Vec<u8>>,
}

struct ReplayingDevice(std::collections::VecDeque<Vec<u8>>);

impl HidDevice for ReplayingDevice {
    fn write(&mut self, _report: &[u8]) -> Result<(), HidError> {
        Ok(())
    }

    fn read(&mut self, _timeout: Duration) -> Result<Vec<u8>, HidError> {
        self.0.pop_front().ok_or(HidError::Timeout)
    }
}

impl HidBackend for ReplayingDongle {
    fn open(&self, _vendor_id: u16, _product_id: u16) -> Result<Box<dyn HidDevice>, HidError> {
        Ok(Box::new(ReplayingDevice(self.recorded.clone().into())))
    }
}

#[test]
fn a_replayed_answer_does_not_answer_a_new_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let check = dongle_check_plugin(&dir);
    // Record the genuine dongle's answer to one challenge.
    let mut device = dongle().open(DONGLE.0, DONGLE.1).unwrap();
    let mut request = vec![0, b'L', 0x02, 32];
    request.extend_from_slice(&[1; 32]);
    request.resize(65, 0);
    device.write(&request).unwrap();
    let recorded = vec![
        device.read(Duration::from_millis(10)).unwrap(),
        device.read(Duration::from_millis(10)).unwrap(),
    ];
    let replay = Arc::new(ReplayingDongle { recorded });
    // It passes for that challenge, and for no other.
    assert_eq!(
        check.dongle_check(replay.clone(), &[1; 32]).unwrap().serial,
        dongle().serial()
    );
    let error = check.dongle_check(replay, &[2; 32]).unwrap_err();
    assert!(
        matches!(
            &error,
            PluginError::DongleProof {
                reason: DongleRefusal::Proof(DongleProofError::Signature),
                ..
            }
        ),
        "{error}"
    );
}

#[test]
fn a_missing_dongle_is_a_device_error() {
    let dir = tempfile::tempdir().unwrap();
    let check = dongle_check_plugin(&dir);
    let mut backends: Vec<Arc<dyn HidBackend>> = vec![Arc::new(NoHid)];
    let mut other_dongle = dongle();
    other_dongle.product_id = 0x4c44;
    backends.push(Arc::new(other_dongle));
    // No dongle is attached to this machine: hidapi either finds none or cannot start.
    if let Ok(hidapi) = HidApiBackend::new() {
        backends.push(Arc::new(hidapi));
    }
    for backend in backends {
        let error = check.dongle_check(backend, &[7; 32]).unwrap_err();
        assert!(
            matches!(&error, PluginError::Plugin { code, message, .. }
                if code == "device" && message.contains("1209:4c43")),
            "{error}"
        );
    }
}

#[test]
fn a_dongle_outside_the_manifest_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "dongle-hid",
        World::HardwareCheck,
        &dongle_config(),
        hid(&[(0x1209, 0x0001)]),
    );
    let check = host()
        .load_hardware_check(&plugin_dir, DONGLE_PLUGIN)
        .unwrap();
    let error = check
        .dongle_check(Arc::new(dongle()), &[7; 32])
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::NotAllowed { what, .. } if what.contains("1209:4c43")),
        "{error}"
    );
}

#[test]
fn the_dongle_plugin_installed_for_other_ids_and_another_vendor_key() {
    let dir = tempfile::tempdir().unwrap();
    let vendor = SigningKey::from_bytes(&[0x99; 32]);
    let plugin_dir = install_dongle_plugin(dir.path(), &vendor, 0x1209, 0x0007).unwrap();
    // Signed with another vendor's key: the test host refuses it, a host trusting that key loads it.
    assert!(matches!(
        host()
            .load_hardware_check(&plugin_dir, DONGLE_PLUGIN)
            .unwrap_err(),
        PluginError::BadSignature { .. }
    ));
    let check = PluginHost::new(vendor.verifying_key())
        .unwrap()
        .load_hardware_check(&plugin_dir, DONGLE_PLUGIN)
        .unwrap();
    let dongle = SoftwareDongle {
        product_id: 0x0007,
        ..dongle()
    };
    let verified = check
        .dongle_check(Arc::new(dongle.clone()), &[3; 32])
        .unwrap();
    assert_eq!(verified.serial, dongle.serial());
}

#[test]
fn a_warm_instance_gives_the_same_fingerprints_as_fresh_ones() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Default::default(),
    );
    let check = host()
        .load_hardware_check(&plugin_dir, "fingerprint")
        .unwrap();
    let office = tempfile::tempdir().unwrap();
    fake_machine(office.path(), "00:1b:21:0a:0b:0c");
    let readings = read_machine_at(office.path());
    let fresh = check.fingerprint(SALT, &readings).unwrap();
    let mut warm = check.warm_instance().unwrap();
    for _ in 0..3 {
        assert_eq!(warm.fingerprint(SALT, &readings).unwrap(), fresh);
    }
    let other_salt = warm
        .fingerprint(b"another product salt", &readings)
        .unwrap();
    assert_ne!(other_salt, fresh);
}

#[test]
fn a_warm_instance_serves_many_calls_in_a_small_memory() {
    // A plugin's memory persists across a warm instance's calls: whatever one call leaves
    // allocated would add up and, under a 2 MiB limit, stop the calls long before the last.
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Default::default(),
    );
    let limits = licet_plugin_host::Limits {
        memory_bytes: 2 << 20,
        ..Default::default()
    };
    let host = PluginHost::with_limits(
        licet_plugin_host::test_support::test_key().verifying_key(),
        limits,
    )
    .unwrap();
    let check = host
        .load_hardware_check(&plugin_dir, "fingerprint")
        .unwrap();
    let office = tempfile::tempdir().unwrap();
    fake_machine(office.path(), "00:1b:21:0a:0b:0c");
    let small = read_machine_at(office.path());
    // Readings larger than the plugin's call arena: these go to its general allocator.
    let mut large = read_machine_at(office.path());
    large.push(Reading::new(
        "cpu",
        "/proc/cpuinfo",
        &"processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme de pse\n".repeat(1000),
    ));
    let expected_small = check.fingerprint(SALT, &small).unwrap();
    let expected_large = check.fingerprint(SALT, &large).unwrap();
    let mut warm = check.warm_instance().unwrap();
    for round in 0..2_000 {
        assert_eq!(warm.fingerprint(SALT, &small).unwrap(), expected_small);
        if round % 10 == 0 {
            assert_eq!(warm.fingerprint(SALT, &large).unwrap(), expected_large);
        }
    }
}
