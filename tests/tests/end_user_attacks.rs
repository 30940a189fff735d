//! The end user is the adversary: root on their own machine, their own files, the shipped
//! library and a real `licet-server`. Each test plays one attack the way they would and checks
//! that it no longer gets more than was granted (server side and signed claims):
//!
//! 1. a state copied to another machine, with the local policy edited to match on the CPU alone;
//! 2. borrow, copy the state, return early, restore the copy;
//! 3. walk an activation to another machine one component per validation;
//! 4. restore the state after a return, and return with a made-up certificate serial;
//! 5. a second trial with a new MAC and disk serial but the same machine id;
//! 6. an older state put back with the clock set back, and a clock frozen across starts;
//! 7. a revoked certificate installed again after deleting the state.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use common::{gstarcad_policy, post_bytes, DemoServer};
use licet_client::client::load_policy;
use licet_client::keys::read_verifying_key;
use licet_client::{Client, FixedProbe};
use licet_engine::exchange::{Nonce, ReturnRequest, Role};
use licet_engine::{Code, Fingerprint, Policy, ProductRef};
use serde_json::Value;

const EDITION: &str = "professional";

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// A machine's fingerprint from its four component values.
fn fingerprint(machine_id: &str, mac: &str, cpu: &str, disk: &str) -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", machine_id),
        ("mac", mac),
        ("cpu", cpu),
        ("disk", disk),
    ])
}

/// A client of `server` with its state in `dir`, the given policy and fixed fingerprint.
fn client(server: &DemoServer, dir: &Path, policy: Policy, machine: Fingerprint) -> Client {
    Client::new(
        dir,
        policy,
        read_verifying_key(&server.vendor_key()).unwrap(),
        Box::new(FixedProbe::new(machine)),
    )
}

fn gstarcad() -> Policy {
    load_policy(&gstarcad_policy()).unwrap()
}

/// The bytes of a client's state file, once its pending write landed.
fn copy_state(client: &Client) -> Vec<u8> {
    client.flush().unwrap();
    std::fs::read(client.state_path()).unwrap()
}

fn restore_state(client: &Client, copy: &[u8]) {
    client.flush().unwrap();
    std::fs::write(client.state_path(), copy).unwrap();
}

/// The codes of the audit entries about `key`, oldest first.
fn audit_codes(server: &DemoServer, key: &str) -> Vec<String> {
    let (status, entries) = server.admin(
        "GET",
        &format!("/v1/admin/audit?license={key}&limit=1000"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{entries:#}");
    entries
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["code"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn attack_1_an_edited_local_policy_does_not_make_a_copied_state_valid_on_another_machine() {
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let mut transport = server.transport();
    let machine_a = fingerprint("id-a", "mac-a", "same-cpu", "disk-a");
    let machine_b = fingerprint("id-b", "mac-b", "same-cpu", "disk-b");
    let a = client(&server, &dirs.path().join("a"), gstarcad(), machine_a);
    let activated = a
        .activate(&mut transport, server.standalone_key(), EDITION, now())
        .unwrap();
    assert_eq!(activated.code, Code::Activated, "{activated:?}");
    assert_eq!(a.check().unwrap().decision.code, Code::Valid);

    // On machine B: the state of A copied in, and the policy file edited so that the CPU alone
    // identifies the machine (B shares only its CPU with A).
    let edited_path = dirs.path().join("edited.yaml");
    let edited_text = std::fs::read_to_string(gstarcad_policy()).unwrap().replace(
        "components: [machine-id, mac, cpu, disk]\n  match_at_least: 3",
        "components: [cpu]\n  match_at_least: 1",
    );
    assert!(edited_text.contains("components: [cpu]"));
    std::fs::write(&edited_path, &edited_text).unwrap();
    let b_dir = dirs.path().join("b");
    std::fs::create_dir_all(&b_dir).unwrap();
    std::fs::write(
        b_dir.join(a.state_path().file_name().unwrap()),
        copy_state(&a),
    )
    .unwrap();
    let b = client(
        &server,
        &b_dir,
        load_policy(&edited_path).unwrap(),
        machine_b.clone(),
    );
    let report = b.check().unwrap();
    assert_ne!(report.decision.code, Code::Valid, "{report:?}");
    assert_eq!(
        report.decision.code,
        Code::FingerprintMismatch,
        "{report:?}"
    );
    assert_eq!(report.decision.rule, "certificate.binding");

    // The same machine-matching rule holds with the vendor's policy file, of course.
    let honest = client(&server, &b_dir, gstarcad(), machine_b);
    assert_ne!(honest.check().unwrap().decision.code, Code::Valid);
}

#[test]
fn attack_2_a_borrow_restored_after_an_early_return_is_refused_and_flagged_with_frees_seat() {
    // The example policy's network key frees the seat at an early return.
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let mut transport = server.transport();
    let key = server.network_key().to_owned();
    let laptop = client(
        &server,
        dirs.path(),
        gstarcad(),
        fingerprint("id-l", "mac-l", "cpu-l", "disk-l"),
    );
    let until = now() + Duration::days(29);
    let borrowed = laptop
        .borrow(&mut transport, &key, EDITION, until, now())
        .unwrap();
    assert_eq!(borrowed.code, Code::Borrowed, "{borrowed:?}");
    let copy = copy_state(&laptop);
    let returned = laptop.return_borrowed(&mut transport, now()).unwrap();
    assert_eq!(returned.code, Code::BorrowReturned, "{returned:?}");

    restore_state(&laptop, &copy);
    // Online, the restored borrow is refused with its own code, and the audit log keeps it for
    // administrators.
    let again = laptop.return_borrowed(&mut transport, now()).unwrap();
    assert_eq!(again.code, Code::BorrowSerialReturned, "{again:?}");
    assert_eq!(again.rule, "certificate.returned");
    let codes = audit_codes(&server, &key);
    assert!(
        codes.iter().any(|code| code == "BORROW_SERIAL_RETURNED"),
        "{codes:?}"
    );
}

#[test]
fn attack_2_with_holds_seat_no_restored_borrow_exceeds_the_pool() {
    let dirs = tempfile::tempdir().unwrap();
    let policy_path = dirs.path().join("gstarcad-holds-seat.yaml");
    let text = std::fs::read_to_string(gstarcad_policy())
        .unwrap()
        .replace("early_return: frees-seat", "early_return: holds-seat");
    assert!(text.contains("early_return: holds-seat"));
    std::fs::write(&policy_path, text).unwrap();
    let server = DemoServer::start_with(policy_path.clone());
    let mut transport = server.transport();
    let key = server.network_key().to_owned();
    let policy = load_policy(&policy_path).unwrap();
    let seats = policy
        .license_type("network-key")
        .unwrap()
        .default_seats
        .unwrap();
    assert_eq!(seats, 5);

    // Seven machines each borrow, copy their state, return early and restore the copy.
    let until = now() + Duration::days(29);
    let mut restored = Vec::new();
    let mut refused = 0;
    for index in 0..7 {
        let tag = format!("m{index}");
        let machine = client(
            &server,
            &dirs.path().join(&tag),
            load_policy(&policy_path).unwrap(),
            fingerprint(&tag, &tag, &tag, &tag),
        );
        let borrowed = machine
            .borrow(&mut transport, &key, EDITION, until, now())
            .unwrap();
        if borrowed.code == Code::SeatsExhausted {
            refused += 1;
            continue;
        }
        assert_eq!(borrowed.code, Code::Borrowed, "{borrowed:?}");
        let copy = copy_state(&machine);
        let returned = machine.return_borrowed(&mut transport, now()).unwrap();
        assert_eq!(returned.code, Code::BorrowReturned, "{returned:?}");
        assert_eq!(returned.rule, "license_type.borrowing.early_return");
        restore_state(&machine, &copy);
        restored.push(machine);
    }
    assert_eq!((restored.len(), refused), (5, 2));
    // Offline, 28 days later, at most the pool's five borrows run.
    let later = now() + Duration::days(28);
    let valid = restored
        .iter()
        .filter(|machine| machine.check_at(later).unwrap().decision.code == Code::Valid)
        .count();
    assert!(valid <= 5, "{valid} borrows from a 5-seat pool");
    // The server still counts every seat until the borrows end.
    let (status, seats_view) = server.admin("GET", "/v1/admin/seats", &Value::Null);
    assert_eq!(status, 200);
    assert_eq!(seats_view.as_array().unwrap().len(), 5, "{seats_view:#}");
}

#[test]
fn attack_3_drifting_one_component_per_validation_cannot_move_an_activation() {
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let mut transport = server.transport();
    let key = server.standalone_key().to_owned();
    // The same state directory, the machine's identity changed one component at a time.
    let at = |machine: Fingerprint| client(&server, dirs.path(), gstarcad(), machine);
    let machine_b = fingerprint("id-b", "mac-b", "cpu-b", "disk-b");
    let machine_a = fingerprint("id-a", "mac-a", "cpu-a", "disk-a");
    let activated = at(machine_b.clone())
        .activate(&mut transport, &key, EDITION, now())
        .unwrap();
    assert_eq!(activated.code, Code::Activated, "{activated:?}");

    let steps = [
        fingerprint("id-a", "mac-b", "cpu-b", "disk-b"),
        fingerprint("id-a", "mac-a", "cpu-b", "disk-b"),
        fingerprint("id-a", "mac-a", "cpu-a", "disk-b"),
    ];
    let codes: Vec<Code> = steps
        .iter()
        .map(|machine| {
            at(machine.clone())
                .validate(&mut transport, now())
                .map(|decision| decision.code)
                .unwrap_or(Code::NotActivated)
        })
        .collect();
    // The first change is accepted drift; the second is measured against the activation, not
    // the drifted binding, and is refused.
    assert_eq!(codes[0], Code::Valid, "{codes:?}");
    assert_eq!(codes[1], Code::FingerprintMismatch, "{codes:?}");

    // Machine A did not get the activation: validating or activating it there is refused, while
    // the activation stays with machine B.
    let a = client(
        &server,
        &dirs.path().join("a"),
        gstarcad(),
        machine_a.clone(),
    );
    let activate_a = a.activate(&mut transport, &key, EDITION, now()).unwrap();
    assert_eq!(
        activate_a.code,
        Code::ActivationLimitReached,
        "{activate_a:?}"
    );
    let walked = at(machine_a).validate(&mut transport, now());
    assert!(
        !matches!(&walked, Ok(decision) if decision.code == Code::Valid),
        "{walked:?}"
    );
    let home = client(&server, &dirs.path().join("home"), gstarcad(), machine_b);
    let back = home.activate(&mut transport, &key, EDITION, now()).unwrap();
    assert_eq!(back.code, Code::Activated, "{back:?}");
}

#[test]
fn attack_4_a_state_restored_after_a_return_is_refused_at_its_next_validation() {
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let mut transport = server.transport();
    let key = server.standalone_key().to_owned();
    let office = client(
        &server,
        &dirs.path().join("office"),
        gstarcad(),
        fingerprint("id-o", "mac-o", "cpu-o", "disk-o"),
    );
    assert_eq!(
        office
            .activate(&mut transport, &key, EDITION, now())
            .unwrap()
            .code,
        Code::Activated
    );
    let copy = copy_state(&office);
    let returned = office.return_license(&mut transport, now()).unwrap();
    assert_eq!(returned.code, Code::Returned, "{returned:?}");
    // Another machine takes the key.
    let other = client(
        &server,
        &dirs.path().join("other"),
        gstarcad(),
        fingerprint("id-x", "mac-x", "cpu-x", "disk-x"),
    );
    assert_eq!(
        other
            .activate(&mut transport, &key, EDITION, now())
            .unwrap()
            .code,
        Code::Activated
    );

    // The restored copy runs offline no longer than its certificate's offline period ...
    restore_state(&office, &copy);
    let report = office.check().unwrap();
    assert_eq!(report.decision.code, Code::Valid);
    let offline_until = report.claims.unwrap().offline_until.unwrap();
    assert_eq!(
        office
            .check_at(offline_until - Duration::seconds(1))
            .unwrap()
            .decision
            .code,
        Code::Valid
    );
    assert_eq!(
        office.check_at(offline_until).unwrap().decision.code,
        Code::ValidationRequired
    );
    // ... and at its next validation the returned serial is refused and audited; the start-up
    // check refuses from then on.
    let denied = office.validate(&mut transport, now()).unwrap();
    assert_eq!(denied.code, Code::ExchangeSerialReturned, "{denied:?}");
    assert_ne!(office.check().unwrap().decision.code, Code::Valid);
    let codes = audit_codes(&server, &key);
    assert!(
        codes.iter().any(|code| code == "EXCHANGE_SERIAL_RETURNED"),
        "{codes:?}"
    );
}

#[test]
fn attack_4_a_manual_return_with_a_made_up_serial_frees_nothing() {
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let mut transport = server.transport();
    let key = server.standalone_key().to_owned();
    let machine = fingerprint("id-o", "mac-o", "cpu-o", "disk-o");
    let office = client(
        &server,
        &dirs.path().join("office"),
        gstarcad(),
        machine.clone(),
    );
    assert_eq!(
        office
            .activate(&mut transport, &key, EDITION, now())
            .unwrap()
            .code,
        Code::Activated
    );
    // The end user writes a return request file by hand: the right key and machine, but a
    // certificate serial of their choosing.
    let request = ReturnRequest {
        role: Role::Machine,
        license_key: key.clone(),
        target: ProductRef {
            product: "gstarcad".into(),
            edition: EDITION.into(),
            version: "2027".into(),
        },
        machine,
        nonce: Nonce([0x5a; 32]),
        created_at: now().trunc_subsecs(0),
        certificate_serial: "0123456789abcdef01234567".into(),
    };
    let file = request.to_xml().unwrap();
    let (status, body) = post_bytes(
        &server.url,
        "/v1/exchange",
        "application/xml",
        file.as_bytes(),
    );
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("CERTIFICATE_NOT_CURRENT"), "{body}");

    // Nothing was freed: another machine cannot activate the key, and the office still validates.
    let other = client(
        &server,
        &dirs.path().join("other"),
        gstarcad(),
        fingerprint("id-x", "mac-x", "cpu-x", "disk-x"),
    );
    assert_eq!(
        other
            .activate(&mut transport, &key, EDITION, now())
            .unwrap()
            .code,
        Code::ActivationLimitReached
    );
    assert_eq!(
        office.validate(&mut transport, now()).unwrap().code,
        Code::Valid
    );
}

#[test]
fn attack_5_new_mac_and_disk_on_the_same_machine_id_get_no_second_trial() {
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let mut transport = server.transport();
    let first = client(
        &server,
        &dirs.path().join("first"),
        gstarcad(),
        fingerprint("id-t", "mac-1", "cpu-t", "disk-1"),
    );
    let started = first.start_trial(&mut transport, EDITION, now()).unwrap();
    assert_eq!(started.code, Code::TrialStarted, "{started:?}");
    let first_end = first.check().unwrap().claims.unwrap().expires_at.unwrap();

    // A second later, a fresh state and new MAC and disk identities (bind-mounted files, say):
    // only the CPU and the machine id are left, two of four components.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let disguised = client(
        &server,
        &dirs.path().join("disguised"),
        gstarcad(),
        fingerprint("id-t", "mac-2", "cpu-t", "disk-2"),
    );
    let again = disguised
        .start_trial(&mut transport, EDITION, now())
        .unwrap();
    // The machine id is a strong component: this is the same machine, whose trial resumes with
    // its original end (no second trial).
    assert_eq!(again.code, Code::TrialStarted, "{again:?}");
    let again_end = disguised
        .check()
        .unwrap()
        .claims
        .unwrap()
        .expires_at
        .unwrap();
    assert_eq!(again_end, first_end);
}

/// The armored certificate installed in a client's state file, as the end user would copy it out.
fn installed_certificate(client: &Client) -> String {
    let text = String::from_utf8(copy_state(client)).unwrap();
    let body = &text[text.find("\n{").unwrap() + 1..];
    let state: Value = serde_json::from_str(body).unwrap();
    state["certificate"].as_str().unwrap().to_owned()
}

#[test]
fn attack_6_an_older_state_put_back_with_the_clock_set_back_is_denied() {
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let machine_dir = dirs.path().join("machine");
    let mut transport = server.transport();
    let machine = fingerprint("id-c", "mac-c", "cpu-c", "disk-c");
    let office = client(
        &server,
        &dirs.path().join("office"),
        gstarcad(),
        machine.clone(),
    )
    .with_machine_dir(Some(&machine_dir));
    let start = now();
    assert_eq!(
        office
            .activate(&mut transport, server.standalone_key(), EDITION, start)
            .unwrap()
            .code,
        Code::Activated
    );
    let early_copy = copy_state(&office);
    // Ten days of use go by.
    let later = start + Duration::days(10);
    assert_eq!(office.check_at(later).unwrap().decision.code, Code::Valid);
    office.flush().unwrap();

    // The clock is set back nine days and the state of the first day put back: the state alone
    // would not know, the machine ledger does.
    restore_state(&office, &early_copy);
    let rolled_back = office.check_at(start + Duration::days(1)).unwrap();
    assert_eq!(
        rolled_back.decision.code,
        Code::ClockRollback,
        "{rolled_back:?}"
    );
    assert_eq!(rolled_back.decision.rule, "clock.machine");

    // Wiping the whole state directory and putting the old state back: the machine directory's
    // copy of the ledger still knows.
    office.flush().unwrap();
    let state_dir = office.state_path().parent().unwrap().to_path_buf();
    std::fs::remove_dir_all(&state_dir).unwrap();
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(office.state_path(), &early_copy).unwrap();
    let wiped = client(&server, &state_dir, gstarcad(), machine)
        .with_machine_dir(Some(&machine_dir))
        .check_at(start + Duration::days(1))
        .unwrap();
    assert_eq!(wiped.decision.code, Code::ClockRollback, "{wiped:?}");
}

#[test]
fn attack_6_a_clock_frozen_across_starts_is_denied() {
    use licet_client::machine::MachineClock;
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let state_dir = dirs.path().join("office");
    let machine = fingerprint("id-f", "mac-f", "cpu-f", "disk-f");
    let mut transport = server.transport();
    let frozen_at = now();
    assert_eq!(
        client(&server, &state_dir, gstarcad(), machine.clone())
            .activate(&mut transport, server.standalone_key(), EDITION, frozen_at)
            .unwrap()
            .code,
        Code::Activated
    );
    // Each start is a new process on the same boot, a minute of uptime later, while the wall
    // clock the process sees stands still (a library faking the time, say).
    let start = |minute: u64| {
        let probe = FixedProbe::new(machine.clone()).with_clock(MachineClock {
            boot_id: Some("boot-1".to_owned()),
            uptime: Some(std::time::Duration::from_secs(60 * minute)),
            floors: Vec::new(),
        });
        let client = Client::new(
            &state_dir,
            gstarcad(),
            read_verifying_key(&server.vendor_key()).unwrap(),
            Box::new(probe),
        );
        let code = client.check_at(frozen_at).unwrap().decision.code;
        client.flush().unwrap();
        code
    };
    let codes: Vec<Code> = (1..=5).map(start).collect();
    let frozen = licet_client::client::FROZEN_CLOCK_STARTS as usize;
    assert!(
        codes[..frozen].iter().all(|code| *code == Code::Valid),
        "{codes:?}"
    );
    assert!(
        codes[frozen..]
            .iter()
            .all(|code| *code == Code::ClockRollback),
        "{codes:?}"
    );
}

#[test]
fn attack_7_a_revoked_certificate_installed_again_is_refused() {
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    let machine_dir = dirs.path().join("machine");
    let mut transport = server.transport();
    let key = server.standalone_key().to_owned();
    let machine = fingerprint("id-r", "mac-r", "cpu-r", "disk-r");
    let state_dir = dirs.path().join("office");
    let office = client(&server, &state_dir, gstarcad(), machine.clone())
        .with_machine_dir(Some(&machine_dir));
    assert_eq!(
        office
            .activate(&mut transport, &key, EDITION, now())
            .unwrap()
            .code,
        Code::Activated
    );
    let saved = installed_certificate(&office);
    let saved_state = copy_state(&office);
    let (status, answer) = server.admin(
        "POST",
        &format!("/v1/admin/licenses/{key}/revoke"),
        &Value::Null,
    );
    assert_eq!(status, 200, "{answer:#}");
    assert_eq!(
        office.validate(&mut transport, now()).unwrap().code,
        Code::Revoked
    );

    // The end user deletes the state and installs the certificate they saved.
    office.flush().unwrap();
    std::fs::remove_dir_all(&state_dir).unwrap();
    let fresh =
        client(&server, &state_dir, gstarcad(), machine).with_machine_dir(Some(&machine_dir));
    let refused = fresh.install_certificate(&saved, now());
    assert!(
        matches!(refused, Err(licet_client::ClientError::Revoked(_))),
        "{refused:?}"
    );
    // Nor does the state saved before the revocation, put back: the start-up check refuses it.
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(fresh.state_path(), &saved_state).unwrap();
    let report = fresh.check().unwrap();
    assert_eq!(report.decision.code, Code::Revoked, "{report:?}");
}

/// Whether this process may make mount namespaces and bind mounts (root with `unshare`).
fn can_bind_mount() -> bool {
    std::process::Command::new("unshare")
        .args(["--mount", "--propagation", "private", "true"])
        .output()
        .is_ok_and(|output| output.status.success())
}

#[test]
fn attack_5_a_fresh_machine_id_bind_mounted_in_a_mount_namespace_gets_no_second_trial() {
    if !can_bind_mount() {
        eprintln!(
            "SKIPPED attack_5 (namespaces): making a mount namespace needs root and `unshare`; \
             CI runs this test as root"
        );
        return;
    }
    let server = DemoServer::start();
    let dirs = tempfile::tempdir().unwrap();
    // `licet trial start` as the machine is: the real native probe.
    let trial = |state: &str, fake_machine_id: Option<&Path>| {
        let licet = common::binaries().join("licet");
        let mut command = std::process::Command::new("unshare");
        command.args(["--mount", "--propagation", "private", "sh", "-c"]);
        match fake_machine_id {
            Some(_) => command.arg("mount --bind \"$0\" /etc/machine-id && exec \"$@\""),
            None => command.arg("exec \"$@\""),
        };
        command
            .arg(fake_machine_id.unwrap_or(Path::new("-")))
            .arg(licet)
            .args(["trial", "start", "--edition", EDITION, "--state-dir"])
            .arg(dirs.path().join(state))
            .arg("--policy")
            .arg(&server.policy)
            .arg("--vendor-key")
            .arg(server.vendor_key())
            .args(["--server", &server.url]);
        let output = command.output().unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = trial("first", None);
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert!(stdout.starts_with("TRIAL_STARTED"), "{stdout}");

    // A fresh machine id laid over /etc/machine-id in a mount namespace of their own, and a
    // fresh state directory.
    let fake = dirs.path().join("machine-id");
    std::fs::write(&fake, "0123456789abcdef0123456789abcdef\n").unwrap();
    let (code, stdout, stderr) = trial("disguised", Some(&fake));
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("UNTRUSTED_ENVIRONMENT"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("/etc/machine-id"), "{stdout}");
}
