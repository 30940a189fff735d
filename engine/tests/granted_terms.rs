//! What a certificate grants is decided by what is signed, and the server's records stay exact
//! against an end user who controls their own machine: the binding rule and offline terms travel
//! in the claims, early borrowed returns hold or free the seat as the policy says, drift is
//! measured from the activation's anchor, returns must present the current certificate, and a
//! strong fingerprint component is enough to recognise a machine's earlier trial.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use licet_engine::certificate::{Binding, CertificateClaims};
use licet_engine::offline::{check_certificate, LocalFacts};
use licet_engine::policy::{EarlyReturn, Method};
use licet_engine::scenario;
use licet_engine::state::{License, LicenseStatus, Term};
use licet_engine::{decide, Action, Actor, Code, Fingerprint, Policy, ProductRef, Request, State};

const POLICY: &str = r#"
licet: 1
id: terms
product:
  id: cad
  name: CAD
  version: "2027"
  editions: [pro]
model: web
trial:
  days: 30
fingerprint:
  components: [machine-id, mac, cpu, disk]
  match_at_least: 3
license_types:
  key:
    kind: standalone
    terms: [perpetual]
    offline_days: 3
  net:
    kind: network
    terms: [perpetual]
    default_seats: 2
    borrowing:
      max_days: 30
removal: { by_end_user: true }
transfer: { max: 2, period_days: 90 }
validation: { interval_hours: 24, offline_grace_days: 14 }
clock: { rollback_tolerance_minutes: 5 }
"#;

fn policy(source: &str) -> Policy {
    Policy::from_yaml("terms.yaml", source).unwrap()
}

fn now() -> DateTime<Utc> {
    "2027-06-01T12:00:00Z".parse().unwrap()
}

fn machine(tag: &str) -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", format!("id-{tag}")),
        ("mac", format!("mac-{tag}")),
        ("cpu", "same-cpu".to_owned()),
        ("disk", format!("disk-{tag}")),
    ])
}

fn license(key: &str, license_type: &str) -> License {
    License {
        key: key.into(),
        product: "cad".into(),
        license_type: license_type.into(),
        edition: "pro".into(),
        version: "2027".into(),
        term: Term::Perpetual,
        seats: None,
        features: BTreeMap::new(),
        counters: BTreeMap::new(),
        status: LicenseStatus::Enabled,
        dongle: None,
        client: None,
        limited: None,
    }
}

/// The activation certificate machine `a` gets under `policy`.
fn activation_certificate(policy: &Policy) -> CertificateClaims {
    let state = State {
        license: Some(license("K", "key")),
        ..State::default()
    };
    let request = Request {
        actor: Actor::EndUser,
        action: Action::Activate {
            key: "K".into(),
            target: ProductRef {
                product: "cad".into(),
                edition: "pro".into(),
                version: "2027".into(),
            },
            machine: machine("a"),
            method: Method::Online,
        },
    };
    let decision = decide(policy, &state, &request, now());
    assert_eq!(decision.code, Code::Activated, "{decision:?}");
    decision.certificate().unwrap().clone()
}

fn facts(machine: Fingerprint, last_seen: Option<DateTime<Utc>>) -> LocalFacts {
    LocalFacts {
        machine,
        dongle: None,
        last_seen,
        salt_id: None,
    }
}

#[test]
fn the_binding_rule_and_offline_terms_are_signed_into_the_certificate() {
    let policy = policy(POLICY);
    let claims = activation_certificate(&policy);
    let rule = claims.binding_rule.clone().unwrap();
    assert_eq!(rule.components, ["cpu", "disk", "mac", "machine-id"]);
    assert_eq!(rule.match_at_least, 3);
    assert_eq!(rule.salt_id, policy.salt_id);
    assert_eq!(claims.validate_after, Some(now() + Duration::hours(24)));
    // The license type's `offline_days: 3`, not the validation interval plus grace (15 days).
    assert_eq!(claims.offline_until, Some(now() + Duration::days(3)));
    assert_eq!(claims.rollback_tolerance_seconds, 300);
    assert_eq!(claims.policy_hash, policy.hash);
}

#[test]
fn an_edited_local_policy_does_not_widen_what_the_certificate_grants() {
    let vendor = policy(POLICY);
    let claims = activation_certificate(&vendor);
    // Machine b shares only the CPU with machine a.
    let other = machine("b");
    assert_eq!(
        check_certificate(&vendor, &claims, &facts(other.clone(), None), now()).code,
        Code::FingerprintMismatch
    );
    // The end user edits the policy file: one matching component (the CPU) should be enough, and
    // the clock may go back a whole day.
    let edited = policy(
        &POLICY
            .replace(
                "components: [machine-id, mac, cpu, disk]\n  match_at_least: 3",
                "components: [cpu]\n  match_at_least: 1",
            )
            .replace(
                "rollback_tolerance_minutes: 5",
                "rollback_tolerance_minutes: 1440",
            ),
    );
    let copied = check_certificate(&edited, &claims, &facts(other, None), now());
    assert_eq!(copied.code, Code::FingerprintMismatch, "{copied:?}");
    assert_eq!(copied.rule, "certificate.binding");
    // On its own machine the certificate decided under another policy asks for a validation.
    let own = check_certificate(&edited, &claims, &facts(machine("a"), None), now());
    assert_eq!(own.code, Code::ValidationRequired, "{own:?}");
    assert_eq!(own.rule, "certificate.policy");
    // The rollback tolerance is the signed one (5 minutes), not the edited file's day.
    let seen = now() + Duration::hours(2);
    let rolled_back = check_certificate(&edited, &claims, &facts(machine("a"), Some(seen)), now());
    assert_eq!(rolled_back.code, Code::ClockRollback);
    assert_eq!(
        check_certificate(&vendor, &claims, &facts(machine("a"), None), now()).code,
        Code::Valid
    );
}

#[test]
fn a_probe_reporting_another_salt_does_not_match() {
    let vendor = policy(POLICY);
    let claims = activation_certificate(&vendor);
    let mut salted = facts(machine("a"), None);
    salted.salt_id = Some(vendor.salt_id.clone());
    assert_eq!(
        check_certificate(&vendor, &claims, &salted, now()).code,
        Code::Valid
    );
    salted.salt_id = Some("another-salt".into());
    assert_eq!(
        check_certificate(&vendor, &claims, &salted, now()).code,
        Code::FingerprintMismatch
    );
}

#[test]
fn early_returns_hold_the_seat_by_default_and_free_it_when_the_policy_says_so() {
    let holds = policy(POLICY);
    let borrowing = holds.license_type("net").unwrap().borrowing.unwrap();
    assert_eq!(borrowing.early_return, EarlyReturn::HoldsSeat);
    let frees = policy(&POLICY.replace(
        "      max_days: 30\n",
        "      max_days: 30\n      early_return: frees-seat\n",
    ));
    assert_eq!(
        frees
            .license_type("net")
            .unwrap()
            .borrowing
            .unwrap()
            .early_return,
        EarlyReturn::FreesSeat
    );
}

/// Plays `steps` (scenario YAML) against `policy` with machines a, b, c, d and licenses K and NET.
fn play(policy: &Policy, steps: &str) {
    let text = format!(
        r#"
policy: unused.yaml
start: 2027-06-01T12:00:00Z
machines:
  a: {{ machine-id: id-a, mac: mac-a, cpu: cpu-a, disk: disk-a }}
  b: {{ machine-id: id-b, mac: mac-b, cpu: cpu-b, disk: disk-b }}
  c: {{ machine-id: id-c, mac: mac-c, cpu: cpu-c, disk: disk-c }}
  d: {{ machine-id: id-d, mac: mac-d, cpu: cpu-d, disk: disk-d }}
licenses:
  - {{ key: K, license_type: key, edition: pro }}
  - {{ key: NET, license_type: net, edition: pro }}
steps:
{steps}"#
    );
    let parsed = scenario::parse("inline.scenario.yaml", &text).unwrap();
    let report = scenario::run(policy, &parsed).unwrap();
    let failures: Vec<String> = report
        .steps
        .iter()
        .filter(|step| !step.passed())
        .map(|step| format!("step {} {}: {:?}", step.step, step.summary, step.failures))
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn with_holds_seat_a_restored_borrow_never_exceeds_the_pool() {
    play(
        &policy(POLICY),
        r#"
  - do: { borrow: { key: NET, machine: a, days: 10 } }
    expect: BORROWED
  - do: { borrow: { key: NET, machine: b, days: 10 } }
    expect: BORROWED
  - do: { backup: { machine: a } }
  - do: { return-borrowed: { key: NET, session: a } }
    expect: { code: BORROW_RETURNED, rule: license_type.borrowing.early_return }
  - do: { restore: { machine: a } }
  # The returned seat stays counted until the borrow's end: a third machine gets nothing.
  - do: { borrow: { key: NET, machine: c, days: 10 } }
    expect: SEATS_EXHAUSTED
  - do: { checkout: { key: NET, machine: c } }
    expect: SEATS_EXHAUSTED
  # The same session cannot take its returned seat over, nor return it twice.
  - do: { borrow: { key: NET, machine: a, days: 2 } }
    expect: { code: INVALID_REQUEST, rule: seats.session }
  - do: { return-borrowed: { key: NET, session: a, serial: anything } }
    expect: BORROW_NOT_FOUND
  # An administrator may release it knowingly; then the seat is free.
  - as: administrator
    do: { return-borrowed: { key: NET, session: a } }
    expect: BORROW_RETURNED
  - do: { borrow: { key: NET, machine: c, days: 10 } }
    expect: BORROWED
  # At the borrow's end the held seat comes back by itself.
  - after: 10d
    do: { checkout: { key: NET, machine: d } }
    expect: SEAT_GRANTED
"#,
    );
}

#[test]
fn a_return_must_present_the_activations_current_certificate() {
    play(
        &policy(POLICY),
        r#"
  - do: { activate: { key: K, machine: a } }
    expect: ACTIVATED
  - do: { return: { key: K, machine: a, serial: made-up } }
    expect: { code: CERTIFICATE_NOT_CURRENT, rule: return.certificate_serial }
  # The made-up serial freed nothing.
  - do: { activate: { key: K, machine: b } }
    expect: ACTIVATION_LIMIT_REACHED
  - do: { backup: { machine: a } }
  - after: 1h
    do: { validate: { key: K, machine: a } }
    expect: VALID
  # A certificate older than the current one does not return the license either.
  - do: { restore: { machine: a } }
  - do: { return: { key: K, machine: a } }
    expect: CERTIFICATE_NOT_CURRENT
  # Administrators return without one.
  - as: administrator
    do: { return: { key: K, machine: a, serial: made-up } }
    expect: RETURNED
"#,
    );
}

#[test]
fn drift_is_anchored_and_each_accepted_drift_counts_as_a_move() {
    play(
        &policy(POLICY),
        r#"
  - do: { activate: { key: K, machine: a } }
    expect: ACTIVATED
  # Two machines that both match the anchor take turns: each change is a move (max 2 in 90 days).
  - do: { change-hardware: { machine: b, set: { machine-id: id-a, cpu: cpu-a, disk: disk-a } } }
  - do: { validate: { key: K, machine: b } }
    expect: VALID
  - do: { validate: { key: K, machine: a } }
    expect: VALID
  - do: { validate: { key: K, machine: b } }
    expect: { code: TRANSFER_LIMIT_REACHED, rule: transfer.max }
  # Walking one component at a time never leaves the anchor's tolerance.
  - do: { change-hardware: { machine: a, set: { mac: mac-x } } }
  - do: { change-hardware: { machine: a, set: { disk: disk-x } } }
  - do: { validate: { key: K, machine: a } }
    expect: { code: FINGERPRINT_MISMATCH, rule: license.fingerprint }
"#,
    );
}

#[test]
fn a_strong_component_is_enough_to_recognise_an_earlier_trial() {
    let steps = r#"
  - do: { start-trial: { machine: a } }
    expect: TRIAL_STARTED
  - after: 31d
    do: { change-hardware: { machine: a, set: { mac: mac-new, disk: disk-new } } }
  - do: { start-trial: { machine: a } }
    expect: { code: TRIAL_ALREADY_USED, rule: trial.strong_components }
  # A running trial found by its machine id resumes with its original end.
  - do: { start-trial: { machine: b } }
    expect: TRIAL_STARTED
  - do: { change-hardware: { machine: b, set: { mac: mac-new, cpu: cpu-new, disk: disk-new } } }
  - do: { validate-trial: { machine: b } }
    expect: { code: VALID, expires_at: 2027-08-01T12:00:00Z }
"#;
    play(&policy(POLICY), steps);
    // Without strong components only k of n counts, and the changed machine gets a new trial.
    let only_k_of_n =
        policy(&POLICY.replace("  days: 30\n", "  days: 30\n  strong_components: []\n"));
    let request = |machine: Fingerprint| Request {
        actor: Actor::EndUser,
        action: Action::StartTrial {
            target: ProductRef {
                product: "cad".into(),
                edition: "pro".into(),
                version: "2027".into(),
            },
            machine,
        },
    };
    let first = decide(
        &only_k_of_n,
        &State::default(),
        &request(machine("a")),
        now(),
    );
    let trial = first
        .effects
        .iter()
        .find_map(|effect| match effect {
            licet_engine::Effect::RecordTrial {
                binding,
                edition,
                started_at,
                ends_at,
            } => Some(licet_engine::state::TrialRecord {
                binding: binding.clone(),
                edition: edition.clone(),
                started_at: *started_at,
                ends_at: *ends_at,
            }),
            _ => None,
        })
        .unwrap();
    let state = State {
        trials: vec![trial],
        ..State::default()
    };
    let mut changed = machine("a");
    changed.components.insert("mac".into(), "mac-new".into());
    changed.components.insert("disk".into(), "disk-new".into());
    let later = now() + Duration::days(31);
    assert_eq!(
        decide(&only_k_of_n, &state, &request(changed.clone()), later).code,
        Code::TrialStarted
    );
    assert_eq!(
        decide(&policy(POLICY), &state, &request(changed), later).code,
        Code::TrialAlreadyUsed
    );
    assert!(matches!(state.trials[0].binding, Binding::Fingerprint(_)));
}
