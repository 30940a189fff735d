//! Plugins that misbehave are stopped with a typed error, and the host serves the next call.

use std::sync::Arc;

use ed25519_dalek::SigningKey;
use licet_plugin_host::test_support::{install_plugin, test_key};
use licet_plugin_host::{
    Destination, DongleProofError, DongleRefusal, Instances, PluginError, Slot, SoftwareDongle,
    TransportPlugin, World,
};

use crate::support::{hid, host, plugin, urls};

fn hostile_transport(dir: &tempfile::TempDir) -> TransportPlugin {
    let plugin_dir = plugin(dir, "hostile-transport", World::Transport, &[], urls(&[]));
    host().load_transport(&plugin_dir).unwrap()
}

/// The plugin still answers a well-formed call after a failure.
fn still_serves(transport: &TransportPlugin) {
    let request = transport.encode(b"hello").unwrap();
    assert_eq!(request.body, b"hello");
    assert_eq!(
        request.destination,
        Destination::File {
            extension: "echo".to_string()
        }
    );
}

#[test]
fn an_endless_loop_runs_out_of_fuel() {
    let dir = tempfile::tempdir().unwrap();
    let transport = hostile_transport(&dir);
    let error = transport.encode(b"loop").unwrap_err();
    assert!(matches!(error, PluginError::OutOfFuel { .. }), "{error}");
    still_serves(&transport);
}

#[test]
fn a_memory_bomb_hits_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    let transport = hostile_transport(&dir);
    let error = transport.encode(b"memory").unwrap_err();
    assert!(
        matches!(error, PluginError::MemoryLimit { limit, .. } if limit == 16 << 20),
        "{error}"
    );
    still_serves(&transport);
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let dir = tempfile::tempdir().unwrap();
    let transport = hostile_transport(&dir);
    let error = transport.encode(b"recursion").unwrap_err();
    assert!(
        matches!(error, PluginError::StackOverflow { .. }),
        "{error}"
    );
    still_serves(&transport);
}

#[test]
fn a_panic_is_a_trap() {
    let dir = tempfile::tempdir().unwrap();
    let transport = hostile_transport(&dir);
    let error = transport.encode(b"panic").unwrap_err();
    assert!(
        matches!(&error, PluginError::Trapped { plugin, .. } if plugin == "hostile-transport"),
        "{error}"
    );
    still_serves(&transport);
}

#[test]
fn a_huge_result_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let transport = hostile_transport(&dir);
    let error = transport.encode(b"huge").unwrap_err();
    assert!(
        matches!(error, PluginError::PayloadTooLarge { size, limit, .. }
            if size >= 8 << 20 && limit == 1 << 20),
        "{error}"
    );
    still_serves(&transport);
}

#[test]
fn a_transport_cannot_redirect_requests() {
    let dir = tempfile::tempdir().unwrap();
    let transport = hostile_transport(&dir);
    let error = transport.encode(b"evil-url").unwrap_err();
    assert!(
        matches!(&error, PluginError::NotAllowed { what, .. } if what.contains("attacker.invalid")),
        "{error}"
    );
    still_serves(&transport);
}

#[test]
fn hardware_checks_cannot_open_other_devices_or_flood_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "hostile-hid",
        World::HardwareCheck,
        &[],
        hid(&[(0x1209, 0x4c43)]),
    );
    let check = host()
        .load_hardware_check(&plugin_dir, "hostile-hid")
        .unwrap();
    let dongle = Arc::new(software_dongle());

    let mut challenge = [0u8; 32];
    challenge[0] = 1;
    let error = check.dongle_check(dongle.clone(), &challenge).unwrap_err();
    assert!(
        matches!(&error, PluginError::NotAllowed { what, .. } if what.contains("046d:c52b")),
        "{error}"
    );

    challenge[0] = 2;
    let error = check.dongle_check(dongle.clone(), &challenge).unwrap_err();
    assert!(
        matches!(error, PluginError::PayloadTooLarge { what: "a HID report", size, .. }
            if size == 4 << 20),
        "{error}"
    );

    let error = check.fingerprint(b"salt salt salt", &[]).unwrap_err();
    assert!(
        matches!(
            error,
            PluginError::PayloadTooLarge {
                what: "a fingerprint",
                ..
            }
        ),
        "{error}"
    );

    // The same plugin still serves: relaying the dongle's answer faithfully verifies.
    challenge[0] = 0;
    let verified = check.dongle_check(dongle.clone(), &challenge).unwrap();
    assert_eq!(verified.serial, dongle.serial());
}

fn software_dongle() -> SoftwareDongle {
    SoftwareDongle {
        vendor_id: 0x1209,
        product_id: 0x4c43,
        signing_key: SigningKey::from_bytes(&[0x23; 32]),
    }
}

#[test]
fn a_hardware_check_cannot_vouch_for_a_dongle_that_did_not_sign_the_challenge() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "hostile-hid",
        World::HardwareCheck,
        &[],
        hid(&[(0x1209, 0x4c43)]),
    );
    let check = host()
        .load_hardware_check(&plugin_dir, "hostile-hid")
        .unwrap();
    let dongle = Arc::new(software_dongle());
    let mut challenge = [0x33u8; 32];

    // An answer made up without the dongle.
    challenge[0] = 4;
    let error = check.dongle_check(dongle.clone(), &challenge).unwrap_err();
    assert!(
        matches!(
            &error,
            PluginError::DongleProof {
                reason: DongleRefusal::Proof(DongleProofError::Length(32)),
                ..
            }
        ),
        "{error}"
    );

    // The dongle's genuine answer, claimed for another dongle's serial.
    challenge[0] = 5;
    let error = check.dongle_check(dongle.clone(), &challenge).unwrap_err();
    assert!(
        matches!(&error, PluginError::DongleProof {
                reason: DongleRefusal::SerialMismatch { claimed, derived }, ..
            } if claimed.starts_with("LD-") && *derived == dongle.serial()),
        "{error}"
    );

    // The dongle's answer to a challenge the plugin chose instead of the host's.
    challenge[0] = 6;
    let error = check.dongle_check(dongle.clone(), &challenge).unwrap_err();
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

    // Relayed faithfully, the same dongle's answer verifies.
    challenge[0] = 0;
    let verified = check.dongle_check(dongle.clone(), &challenge).unwrap();
    assert_eq!(verified.serial, dongle.serial());
    assert_eq!(verified.proof.verify(&challenge).unwrap(), dongle.serial());
}

#[test]
fn a_component_importing_wasi_is_refused_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "hostile-wasi", World::Transport, &[], urls(&[]));
    let error = host().load(&plugin_dir, Slot::TRANSPORT).unwrap_err();
    assert!(
        matches!(&error, PluginError::ForbiddenImport { import, world: "transport", .. }
            if import.starts_with("wasi:")),
        "{error}"
    );
}

#[test]
fn a_hardware_check_posing_as_a_transport_is_refused_at_load() {
    // The dongle plugin imports `hid`, which the transport world does not offer.
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = install_plugin(
        dir.path(),
        "dongle-hid",
        World::Transport,
        &[],
        urls(&[]),
        &test_key(),
    )
    .unwrap();
    let error = host().load(&plugin_dir, Slot::TRANSPORT).unwrap_err();
    assert!(
        matches!(&error, PluginError::ForbiddenImport { import, .. }
            if import == "licet:plugin/hid@0.2.0"),
        "{error}"
    );
}

#[test]
fn calls_beyond_the_concurrency_limit_are_refused_not_queued() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "fingerprint",
        World::HardwareCheck,
        &[],
        Default::default(),
    );
    let limits = licet_plugin_host::Limits {
        concurrent_calls: 1,
        ..Default::default()
    };
    for instances in [Instances::Pooled, Instances::OnDemand] {
        let host = licet_plugin_host::PluginHost::builder(test_key().verifying_key())
            .limits(limits)
            .instances(instances)
            .build()
            .unwrap();
        let check = host
            .load_hardware_check(&plugin_dir, "fingerprint")
            .unwrap();
        let readings = [licet_plugin_host::Reading::new(
            "machine-id",
            "/etc/machine-id",
            "0123456789abcdef0123456789abcdef",
        )];
        let warm = check.warm_instance().unwrap();
        let error = check.fingerprint(b"product salt", &readings).unwrap_err();
        assert!(
            matches!(
                error,
                PluginError::Busy {
                    concurrent_calls: 1,
                    ..
                }
            ),
            "{instances:?}: {error}"
        );
        drop(warm);
        assert_eq!(
            check
                .fingerprint(b"product salt", &readings)
                .unwrap()
                .components
                .len(),
            1,
            "{instances:?}"
        );
    }
}

#[test]
fn instances_allocated_on_demand_run_under_the_same_limits() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "hostile-transport", World::Transport, &[], urls(&[]));
    let host = licet_plugin_host::PluginHost::builder(test_key().verifying_key())
        .instances(Instances::OnDemand)
        .build()
        .unwrap();
    let transport = host.load_transport(&plugin_dir).unwrap();
    let error = transport.encode(b"loop").unwrap_err();
    assert!(matches!(error, PluginError::OutOfFuel { .. }), "{error}");
    let error = transport.encode(b"memory").unwrap_err();
    assert!(
        matches!(error, PluginError::MemoryLimit { limit, .. } if limit == 16 << 20),
        "{error}"
    );
    let error = transport.encode(b"recursion").unwrap_err();
    assert!(
        matches!(error, PluginError::StackOverflow { .. }),
        "{error}"
    );
    still_serves(&transport);
}

/// A device that never answers: every read waits out its timeout.
struct SilentDevice;

impl licet_plugin_host::HidDevice for SilentDevice {
    fn write(&mut self, _report: &[u8]) -> Result<(), licet_plugin_host::HidError> {
        Ok(())
    }

    fn read(
        &mut self,
        timeout: std::time::Duration,
    ) -> Result<Vec<u8>, licet_plugin_host::HidError> {
        std::thread::sleep(timeout);
        Err(licet_plugin_host::HidError::Timeout)
    }
}

struct SilentDongle;

impl licet_plugin_host::HidBackend for SilentDongle {
    fn open(
        &self,
        _vendor_id: u16,
        _product_id: u16,
    ) -> Result<Box<dyn licet_plugin_host::HidDevice>, licet_plugin_host::HidError> {
        Ok(Box::new(SilentDevice))
    }
}

#[test]
fn waiting_on_a_silent_device_forever_ends_at_the_hid_wait_budget() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "hostile-hid",
        World::HardwareCheck,
        &[],
        hid(&[(0x1209, 0x4c43)]),
    );
    let limits = licet_plugin_host::Limits {
        hid_wait: std::time::Duration::from_millis(300),
        ..licet_plugin_host::Limits::default()
    };
    let host =
        licet_plugin_host::PluginHost::with_limits(test_key().verifying_key(), limits).unwrap();
    let check = host
        .load_hardware_check(&plugin_dir, "hostile-hid")
        .unwrap();

    let mut challenge = [0u8; 32];
    challenge[0] = 3;
    let error = check
        .dongle_check(Arc::new(SilentDongle), &challenge)
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::HidTimeLimit { plugin, limit_ms: 300 } if plugin == "hostile-hid"),
        "{error}"
    );

    // The next call runs to completion: a made-up answer, refused by the host's check.
    challenge[0] = 4;
    let error = check
        .dongle_check(Arc::new(SilentDongle), &challenge)
        .unwrap_err();
    assert!(
        matches!(&error, PluginError::DongleProof { plugin, .. } if plugin == "hostile-hid"),
        "{error}"
    );
}

fn host_with(limits: licet_plugin_host::Limits) -> licet_plugin_host::PluginHost {
    licet_plugin_host::PluginHost::builder(test_key().verifying_key())
        .limits(limits)
        .build()
        .unwrap()
}

fn limits_with_call_time(millis: u64) -> licet_plugin_host::Limits {
    licet_plugin_host::Limits {
        call_time: std::time::Duration::from_millis(millis),
        ..licet_plugin_host::Limits::default()
    }
}

fn assert_times_out(transport: &TransportPlugin, payload: &[u8], limit_ms: u128) {
    let started = std::time::Instant::now();
    let error = transport.encode(payload).unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&error, PluginError::Timeout { plugin, limit_ms: limit }
            if plugin == "hostile-transport" && *limit == limit_ms),
        "{error}"
    );
    assert!(
        took.as_millis() >= limit_ms && took < std::time::Duration::from_secs(2),
        "{took:?}"
    );
}

#[test]
fn work_that_costs_little_fuel_is_stopped_by_the_wall_clock_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "hostile-transport", World::Transport, &[], urls(&[]));
    // Chasing cache misses, the default fuel lasts about half a second on the development
    // machine, some ninety times as long as an endless loop takes to burn it; the call may take
    // 50 ms.
    let host = host_with(limits_with_call_time(50));
    let transport = host.load_transport(&plugin_dir).unwrap();
    // The host has sat idle long enough for its deadline clock to sleep; the call wakes it.
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    for _ in 0..2 {
        assert_times_out(&transport, b"churn", 50);
        still_serves(&transport);
    }
    // With fuel the tighter bound, an endless loop still runs out of fuel first.
    let error = transport.encode(b"loop").unwrap_err();
    assert!(matches!(error, PluginError::OutOfFuel { .. }), "{error}");
}

#[test]
fn a_host_that_allows_much_fuel_still_bounds_the_time_of_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "hostile-transport", World::Transport, &[], urls(&[]));
    let host = host_with(licet_plugin_host::Limits {
        fuel: 1 << 50,
        ..limits_with_call_time(100)
    });
    let transport = host.load_transport(&plugin_dir).unwrap();
    assert_times_out(&transport, b"loop", 100);
    still_serves(&transport);
}

#[test]
fn a_warm_instance_that_timed_out_serves_no_more_calls() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(&dir, "hostile-transport", World::Transport, &[], urls(&[]));
    let host = host_with(limits_with_call_time(50));
    let transport = host.load_transport(&plugin_dir).unwrap();
    let mut warm = transport.warm_instance().unwrap();
    assert_eq!(warm.encode(b"hello").unwrap().body, b"hello");
    let error = warm.encode(b"churn").unwrap_err();
    assert!(matches!(error, PluginError::Timeout { .. }), "{error}");
    let error = warm.encode(b"hello").unwrap_err();
    assert!(
        matches!(&error, PluginError::Trapped { reason, .. } if reason.contains("failed before")),
        "{error}"
    );
    drop(warm);
    let mut warm = transport.warm_instance().unwrap();
    assert_eq!(warm.encode(b"hello").unwrap().body, b"hello");
    assert_eq!(
        warm.decode(&licet_plugin_host::WireReply {
            status: 0,
            body: b"answer".to_vec()
        })
        .unwrap(),
        b"answer"
    );
}

#[test]
fn waiting_in_a_host_call_ends_at_the_wall_clock_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let plugin_dir = plugin(
        &dir,
        "hostile-hid",
        World::HardwareCheck,
        &[],
        hid(&[(0x1209, 0x4c43)]),
    );
    // The HID budget alone would allow ten seconds of waiting; the call may take 300 ms.
    let host = host_with(limits_with_call_time(300));
    let check = host
        .load_hardware_check(&plugin_dir, "hostile-hid")
        .unwrap();
    let mut challenge = [0u8; 32];
    challenge[0] = 3;
    let started = std::time::Instant::now();
    let error = check
        .dongle_check(Arc::new(SilentDongle), &challenge)
        .unwrap_err();
    let took = started.elapsed();
    assert!(
        matches!(&error, PluginError::Timeout { plugin, limit_ms: 300 } if plugin == "hostile-hid"),
        "{error}"
    );
    assert!(took < std::time::Duration::from_secs(2), "{took:?}");

    // The next call is served: relaying the dongle's answer faithfully verifies.
    challenge[0] = 0;
    let dongle = Arc::new(software_dongle());
    let verified = check.dongle_check(dongle.clone(), &challenge).unwrap();
    assert_eq!(verified.serial, dongle.serial());
}
