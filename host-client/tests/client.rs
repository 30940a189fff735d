//! The client library's online and offline flows against a vendor server in the test process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::fs;
use std::path::Path;

use chrono::Duration;
use licet_client::state::StateProblem;
use licet_client::{Client, ClientError, FixedProbe, Status, Trust, Validation};
use licet_engine::certificate::Binding;
use licet_engine::state::Term;
use licet_engine::{Action, Code, Fingerprint};
use support::*;

fn client_on(dir: &Path, machine: Fingerprint) -> Client {
    Client::new(
        dir,
        gstarcad(),
        vendor_key().verifying_key(),
        Box::new(FixedProbe::new(machine)),
    )
}

fn server_with_key() -> FakeServer {
    let mut server = FakeServer::new(at("2027-01-04T09:00:00Z"));
    server.add_license(license(
        "GSTAR-0001",
        "standalone-key",
        "professional",
        Term::Rental {
            ends_at: at("2027-07-01T00:00:00Z"),
        },
    ));
    server
}

#[test]
fn online_activation_then_offline_start_up_checks() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server_with_key();
    let now = server.now;

    let before = client.check_at(now).unwrap();
    assert_eq!(before.decision.code, Code::NotActivated);
    assert_eq!(before.trust, Trust::Absent);

    let decision = client
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    assert_eq!(decision.code, Code::Activated, "{decision:?}");

    let report = client.check_at(now + Duration::hours(2)).unwrap();
    assert_eq!(report.decision.code, Code::Valid, "{:?}", report.decision);
    assert_eq!(report.trust, Trust::Verified);
    assert!(!report.validation_due);

    let info = client.info_at(now + Duration::hours(2)).unwrap();
    assert_eq!(info.status, Status::Enabled);
    assert_eq!(info.license_key.as_deref(), Some("GSTAR-0001"));
    assert_eq!(info.edition.as_deref(), Some("professional"));
    assert_eq!(info.version, "2027");
    assert_eq!(info.language.as_deref(), Some("en"));
    assert_eq!(info.expires_at, Some(at("2027-07-01T00:00:00Z")));
    assert!(info.trusted);

    // The key is bound: another machine cannot activate it.
    let home = tempfile::tempdir().unwrap();
    let other = client_on(home.path(), home_pc());
    let denied = other
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    assert_eq!(denied.code, Code::ActivationLimitReached);
    assert_eq!(
        other.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );
}

#[test]
fn a_denied_activation_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server_with_key();
    let now = server.now;
    let decision = client
        .activate(&mut server, "GSTAR-0001", "standard", now)
        .unwrap();
    assert_eq!(decision.code, Code::EditionMismatch);
    assert_eq!(
        client.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );
    assert!(matches!(
        client.activate(&mut server, "GSTAR-0001", "enterprise", now),
        Err(ClientError::Unknown {
            kind: "edition",
            ..
        })
    ));
}

#[test]
fn deleting_the_state_does_not_give_a_second_trial() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = FakeServer::new(at("2027-01-04T09:00:00Z"));
    let start = server.now;
    let first = client
        .start_trial(&mut server, "professional", start)
        .unwrap();
    assert_eq!(first.code, Code::TrialStarted);
    let info = client.info_at(start).unwrap();
    assert_eq!(info.status, Status::Trial);
    let trial_end = info.expires_at.unwrap();
    assert_eq!(trial_end, at("2027-02-03T09:00:00Z"));

    // Ten days in, the end user deletes the local state: nothing runs until the server is asked,
    // and the server gives back the same trial with its original end.
    client.flush().unwrap();
    fs::remove_file(client.state_path()).unwrap();
    server.now = start + Duration::days(10);
    assert_eq!(
        client.check_at(server.now).unwrap().decision.code,
        Code::NotActivated
    );
    let t = server.now;
    let again = client.start_trial(&mut server, "professional", t).unwrap();
    assert_eq!(again.code, Code::TrialStarted);
    assert_eq!(
        client.info_at(server.now).unwrap().expires_at,
        Some(trial_end)
    );

    // After the end, neither the old state nor a deleted one brings the trial back.
    server.now = trial_end + Duration::days(1);
    assert_eq!(
        client.check_at(server.now).unwrap().decision.code,
        Code::TrialExpired
    );
    client.flush().unwrap();
    fs::remove_file(client.state_path()).unwrap();
    let t = server.now;
    let denied = client.start_trial(&mut server, "standard", t).unwrap();
    assert_eq!(denied.code, Code::TrialAlreadyUsed);
    assert_eq!(
        client.check_at(server.now).unwrap().decision.code,
        Code::NotActivated
    );
}

#[test]
fn a_flipped_byte_makes_the_state_untrusted_and_denied() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server_with_key();
    let now = server.now;
    client
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    client.flush().unwrap();
    let original = fs::read(client.state_path()).unwrap();
    // Every byte, including inside the certificate, the dates and the MAC.
    for index in (0..original.len()).step_by(7) {
        let mut bytes = original.clone();
        bytes[index] ^= 0x20;
        client.flush().unwrap();
        fs::write(client.state_path(), &bytes).unwrap();
        let report = client.check_at(now).unwrap();
        assert!(!report.decision.is_allowed(), "flip at {index}");
        assert!(
            matches!(report.trust, Trust::Untrusted(_)),
            "flip at {index}"
        );
        assert_eq!(report.decision.code, Code::ValidationRequired);
    }
    let info = client.info_at(now).unwrap();
    assert!(!info.trusted);
    assert_eq!(info.status, Status::Untrusted);
    // Removing half of the file is detected too.
    client.flush().unwrap();
    fs::write(client.state_path(), &original[..original.len() / 2]).unwrap();
    assert_eq!(
        client.check_at(now).unwrap().trust,
        Trust::Untrusted(StateProblem::BadMac)
    );
    // The vendor grants the same activation again; the state is trusted once more.
    let decision = client
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    assert_eq!(decision.code, Code::Activated);
    assert_eq!(server.activations_of("GSTAR-0001").len(), 1);
    assert_eq!(client.check_at(now).unwrap().decision.code, Code::Valid);
}

#[test]
fn a_state_copied_to_another_machine_is_rejected() {
    let office_dir = tempfile::tempdir().unwrap();
    let office = client_on(office_dir.path(), office_pc());
    let mut server = server_with_key();
    let now = server.now;
    office
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();

    let home_dir = tempfile::tempdir().unwrap();
    let home = client_on(home_dir.path(), home_pc());
    office.flush().unwrap();
    fs::copy(office.state_path(), home.state_path()).unwrap();
    let report = home.check_at(now).unwrap();
    assert_eq!(report.trust, Trust::Untrusted(StateProblem::OtherMachine));
    assert!(!report.decision.is_allowed());

    // Nor can the certificate alone be moved: it is bound to the office machine.
    let info = office.info_at(now).unwrap();
    assert_eq!(info.status, Status::Enabled);
    office.flush().unwrap();
    let state = fs::read_to_string(office.state_path()).unwrap();
    let armored = certificate_text(&state);
    assert!(matches!(
        home.install_certificate(&armored, now),
        Err(ClientError::CertificateNotForThisMachine(_))
    ));

    // A replaced network card is still the same machine.
    let mut drifted = office_pc();
    drifted.components.insert("mac".into(), "mac-new".into());
    let same = client_on(office_dir.path(), drifted);
    assert_eq!(same.check_at(now).unwrap().decision.code, Code::Valid);
}

/// The armored certificate inside a state file's JSON body.
fn certificate_text(state_file: &str) -> String {
    let body = state_file.splitn(4, '\n').nth(3).unwrap();
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    json["certificate"].as_str().unwrap().to_owned()
}

#[test]
fn moving_the_clock_back_is_detected_even_after_deleting_the_state() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server_with_key();
    let now = server.now;
    client
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    let later = now + Duration::days(3);
    assert_eq!(client.check_at(later).unwrap().decision.code, Code::Valid);
    // Within the policy's 60-minute tolerance: fine.
    assert_eq!(
        client
            .check_at(later - Duration::minutes(30))
            .unwrap()
            .decision
            .code,
        Code::Valid
    );
    let report = client.check_at(later - Duration::days(2)).unwrap();
    assert_eq!(report.decision.code, Code::ClockRollback);
    assert_eq!(
        client.info_at(later - Duration::days(2)).unwrap().status,
        Status::ClockRollback
    );
    // The stored time stays where it was; moving the clock forward again works.
    assert_eq!(client.check_at(later).unwrap().decision.code, Code::Valid);

    // Reinstalling the same certificate into a fresh state: its issue time is the floor.
    client.flush().unwrap();
    let armored = certificate_text(&fs::read_to_string(client.state_path()).unwrap());
    client.flush().unwrap();
    fs::remove_file(client.state_path()).unwrap();
    let report = client
        .install_certificate(&armored, now - Duration::days(5))
        .unwrap();
    assert_eq!(report.decision.code, Code::ClockRollback);
}

#[test]
fn periodic_validation_picks_up_an_extension_and_a_revocation() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server_with_key();
    let start = server.now;
    client
        .activate(&mut server, "GSTAR-0001", "professional", start)
        .unwrap();

    // Not due within the 24-hour interval: nothing is sent.
    let sent = server.received.len();
    let early = client
        .validate_if_due(&mut server, start + Duration::hours(1))
        .unwrap();
    assert_eq!(
        early,
        Validation::NotDue {
            next: start + Duration::hours(24)
        }
    );
    assert_eq!(server.received.len(), sent);

    // The administrator extends the rental; the client picks it up at its next validation.
    let extension = server.administer(Action::Extend {
        key: "GSTAR-0001".into(),
        expires_at: Some(at("2028-07-01T00:00:00Z")),
        features: [("cloud-collaboration".to_owned(), true)].into(),
        counters: Default::default(),
        seats: None,
    });
    assert_eq!(extension.code, Code::Extended, "{extension:?}");
    assert_eq!(
        client.info_at(start).unwrap().expires_at,
        Some(at("2027-07-01T00:00:00Z"))
    );
    server.now = start + Duration::hours(25);
    assert!(client.check_at(server.now).unwrap().validation_due);
    let t = server.now;
    let done = client.validate_if_due(&mut server, t).unwrap();
    assert!(
        matches!(&done, Validation::Done(d) if d.code == Code::Valid),
        "{done:?}"
    );
    let info = client.info_at(server.now).unwrap();
    assert_eq!(info.expires_at, Some(at("2028-07-01T00:00:00Z")));
    assert_eq!(info.features.get("cloud-collaboration"), Some(&true));
    assert!(!info.validation_due);
    client.flush().unwrap();
    let extended = certificate_text(&fs::read_to_string(client.state_path()).unwrap());

    // Revocation: the next validation stores the server's denial.
    let revoked = server.administer(Action::Revoke {
        key: "GSTAR-0001".into(),
    });
    assert!(revoked.is_allowed(), "{revoked:?}");
    server.now += Duration::hours(25);
    let t = server.now;
    let done = client.validate_if_due(&mut server, t).unwrap();
    assert!(
        matches!(&done, Validation::Done(d) if d.code == Code::Revoked),
        "{done:?}"
    );
    let report = client.check_at(server.now).unwrap();
    assert_eq!(report.decision.code, Code::Revoked);
    assert_eq!(client.info_at(server.now).unwrap().status, Status::Revoked);
    // Loading the pre-revocation certificate again does not undo it: the machine remembers the
    // revocation.
    assert!(matches!(
        client.install_certificate(&extended, server.now),
        Err(ClientError::Revoked(_))
    ));
    assert_eq!(
        client.check_at(server.now).unwrap().decision.code,
        Code::Revoked
    );
}

#[test]
fn offline_grace_then_validation_required() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server_with_key();
    let start = server.now;
    client
        .activate(&mut server, "GSTAR-0001", "professional", start)
        .unwrap();
    let offline_until = client.info_at(start).unwrap().offline_until.unwrap();
    // Interval (24 h) plus grace (14 days).
    assert_eq!(offline_until, start + Duration::days(15));

    server.unreachable = true;
    let day_two = start + Duration::days(2);
    let outcome = client.validate_if_due(&mut server, day_two).unwrap();
    assert!(
        matches!(&outcome, Validation::Offline { offline_until: Some(until), .. } if *until == offline_until),
        "{outcome:?}"
    );
    let report = client.check_at(day_two).unwrap();
    assert_eq!(report.decision.code, Code::Valid);
    assert!(report.validation_due);

    let report = client.check_at(offline_until).unwrap();
    assert_eq!(report.decision.code, Code::ValidationRequired);
    assert_eq!(
        client.info_at(offline_until).unwrap().status,
        Status::ValidationRequired
    );

    // Back online: the validation restores a fresh offline period.
    server.unreachable = false;
    server.now = offline_until;
    let t = server.now;
    let done = client.validate_if_due(&mut server, t).unwrap();
    assert!(
        matches!(&done, Validation::Done(d) if d.code == Code::Valid),
        "{done:?}"
    );
    assert_eq!(
        client.check_at(server.now).unwrap().decision.code,
        Code::Valid
    );
}

#[test]
fn returning_frees_the_key_for_another_machine() {
    let office_dir = tempfile::tempdir().unwrap();
    let office = client_on(office_dir.path(), office_pc());
    let mut server = server_with_key();
    let now = server.now;
    office
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    office.flush().unwrap();
    let armored = certificate_text(&fs::read_to_string(office.state_path()).unwrap());
    let returned = office.return_license(&mut server, now).unwrap();
    assert_eq!(returned.code, Code::Returned, "{returned:?}");
    assert!(server.activations_of("GSTAR-0001").is_empty());
    let report = office.check_at(now).unwrap();
    assert_eq!(report.decision.code, Code::NotActivated);
    let info = office.info_at(now).unwrap();
    assert_eq!(info.status, Status::Returned);
    assert_eq!(info.license_key.as_deref(), Some("GSTAR-0001"));
    assert!(matches!(
        office.return_license(&mut server, now),
        Err(ClientError::NoLicense)
    ));

    let home_dir = tempfile::tempdir().unwrap();
    let home = client_on(home_dir.path(), home_pc());
    let activated = home
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    assert_eq!(activated.code, Code::Activated);
    assert_eq!(
        server.activations_of("GSTAR-0001"),
        vec![Binding::Fingerprint(home_pc().components)]
    );
    // The office's old certificate is still signed and bound to the office; reinstalling it only
    // lasts until the next validation, where the server knows its serial was given back.
    office.install_certificate(&armored, now).unwrap();
    server.now = now + Duration::days(2);
    let t = server.now;
    let validated = office.validate(&mut server, t).unwrap();
    assert_eq!(validated.code, Code::ExchangeSerialReturned);
    assert_eq!(
        office.check_at(server.now).unwrap().decision.code,
        Code::ExchangeSerialReturned
    );
    assert_eq!(office.info_at(server.now).unwrap().status, Status::Returned);
}

#[test]
fn certificates_from_another_vendor_or_product_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let now = at("2027-01-04T09:00:00Z");
    let policy = gstarcad();
    let license = license("GSTAR-0002", "standalone-key", "standard", Term::Perpetual);
    let foreign_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let forged = activation_certificate(&policy, &foreign_key, license.clone(), &office_pc(), now);
    assert!(matches!(
        client.install_certificate(&forged, now),
        Err(ClientError::Certificate(_))
    ));
    let mut other_product = license.clone();
    other_product.version = "2026".into();
    let other_policy = licet_engine::Policy::from_yaml(
        "old.yaml",
        &gstarcad_source().replace("version: \"2027\"", "version: \"2026\""),
    )
    .unwrap();
    let old = activation_certificate(
        &other_policy,
        &vendor_key(),
        other_product,
        &office_pc(),
        now,
    );
    assert!(matches!(
        client.install_certificate(&old, now),
        Err(ClientError::CertificateNotForThisMachine(_))
    ));
    assert_eq!(
        client.check_at(now).unwrap().decision.code,
        Code::NotActivated
    );

    let good = activation_certificate(&policy, &vendor_key(), license, &office_pc(), now);
    let report = client.install_certificate(&good, now).unwrap();
    assert_eq!(report.decision.code, Code::Valid);
    let info = client.info_at(now).unwrap();
    assert_eq!(info.expires_at, None);
    assert!(info.to_table().contains("never"));
}

#[test]
fn start_up_checks_write_the_state_at_most_once_a_minute() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let mut server = server_with_key();
    let now = server.now;
    client
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    client.flush().unwrap();
    let written = fs::read(client.state_path()).unwrap();
    client.check_at(now + Duration::seconds(30)).unwrap();
    client.flush().unwrap();
    assert_eq!(fs::read(client.state_path()).unwrap(), written);
    client.check_at(now + Duration::minutes(2)).unwrap();
    client.flush().unwrap();
    assert_ne!(fs::read(client.state_path()).unwrap(), written);
}

#[test]
fn the_language_is_one_of_the_products() {
    let dir = tempfile::tempdir().unwrap();
    let client = client_on(dir.path(), office_pc());
    let now = at("2027-01-04T09:00:00Z");
    client.set_language("zh-CN", now).unwrap();
    assert_eq!(
        client.info_at(now).unwrap().language.as_deref(),
        Some("zh-CN")
    );
    assert!(matches!(
        client.set_language("fr", now),
        Err(ClientError::Unknown {
            kind: "language",
            ..
        })
    ));
}

#[test]
fn a_client_opened_from_text_and_key_bytes_in_memory_works_like_one_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let key = vendor_key().verifying_key().to_bytes();
    let client = Client::from_parts(
        dir.path(),
        &gstarcad_source(),
        &key,
        Box::new(FixedProbe::new(office_pc())),
    )
    .unwrap();
    let mut server = server_with_key();
    let now = server.now;
    let decision = client
        .activate(&mut server, "GSTAR-0001", "professional", now)
        .unwrap();
    assert_eq!(decision.code, Code::Activated, "{decision:?}");
    assert_eq!(client.check_at(now).unwrap().decision.code, Code::Valid);

    // Policy text that does not load, and bytes that are no public key, are refused.
    let broken = Client::from_parts(
        dir.path(),
        "product: [",
        &key,
        Box::new(FixedProbe::new(office_pc())),
    );
    assert!(
        matches!(broken, Err(ClientError::PolicyText(_))),
        "{broken:?}"
    );
    let mut not_a_key = [0u8; 32];
    not_a_key[0] = 2;
    let wrong = Client::from_parts(
        dir.path(),
        &gstarcad_source(),
        &not_a_key,
        Box::new(FixedProbe::new(office_pc())),
    );
    assert!(matches!(wrong, Err(ClientError::Key(_))), "{wrong:?}");
    let text = Client::from_embedded(dir.path(), &gstarcad_source(), "licet-ed25519-public:AAAA");
    assert!(matches!(text, Err(ClientError::Key(_))), "{text:?}");
}
