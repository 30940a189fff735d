//! Properties of `decide` that scenarios cannot show: determinism, fail-closed rules, check order,
//! denials without effects, and the certificates a decision asks for.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use licet_engine::certificate::{Binding, CertificateKind};
use licet_engine::policy::Method;
use licet_engine::state::{Activation, License, LicenseStatus, Term};
use licet_engine::{
    decide, Action, Actor, Code, Effect, Fingerprint, Policy, ProductRef, Request, State, Verdict,
};

const BASE: &str = r#"
licet: 1
id: test
product:
  id: cad
  name: CAD
  version: "2027"
  editions: [pro, edu]
  features: { render: true }
  counters: { seats-used: 0 }
model: web
license_types:
  key:
    kind: standalone
    terms: [perpetual, rental]
  perpetual-only:
    kind: standalone
    terms: [perpetual]
removal: { by_end_user: true }
"#;

fn policy(extra: &str) -> Policy {
    Policy::from_yaml("test.yaml", &format!("{BASE}{extra}")).unwrap()
}

fn now() -> DateTime<Utc> {
    "2027-06-01T12:00:00Z".parse().unwrap()
}

fn machine(tag: &str) -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", tag),
        ("mac", tag),
        ("cpu", tag),
        ("disk", tag),
    ])
}

fn license() -> License {
    License {
        key: "K".into(),
        product: "cad".into(),
        license_type: "key".into(),
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

fn activate(edition: &str) -> Request {
    Request {
        actor: Actor::EndUser,
        action: Action::Activate {
            key: "K".into(),
            target: ProductRef {
                product: "cad".into(),
                edition: edition.into(),
                version: "2027".into(),
            },
            machine: machine("a"),
            method: Method::Online,
        },
    }
}

fn state() -> State {
    State {
        license: Some(license()),
        ..State::default()
    }
}

fn rule(id: &str, on: &str, field: &str, condition: &str) -> String {
    format!("  - id: {id}\n    on: [{on}]\n    {field}: '{condition}'\n    message: {id} says no\n")
}

#[test]
fn the_same_inputs_give_the_same_decision() {
    let policy = policy("");
    let first = decide(&policy, &state(), &activate("pro"), now());
    for _ in 0..10 {
        assert_eq!(decide(&policy, &state(), &activate("pro"), now()), first);
    }
    assert_eq!(first.code, Code::Activated);
    let certificate = first.certificate().unwrap();
    assert_eq!(certificate.kind, CertificateKind::Activation);
    assert_eq!(certificate.policy_hash, policy.hash);
    assert_eq!(
        certificate.binding,
        Binding::Fingerprint(machine("a").components)
    );
    assert_eq!(certificate.features.get("render"), Some(&true));
}

#[test]
fn sub_second_times_are_truncated_to_certificate_precision() {
    let policy = policy("");
    let a = decide(
        &policy,
        &state(),
        &activate("pro"),
        now() + Duration::milliseconds(250),
    );
    let b = decide(
        &policy,
        &state(),
        &activate("pro"),
        now() + Duration::milliseconds(750),
    );
    assert_eq!(a, b);
}

#[test]
fn a_rule_that_errors_denies() {
    let policy = policy(&format!(
        "rules:\n{}",
        rule("broken", "activate", "deny_when", "activations / 0 > 1")
    ));
    let decision = decide(&policy, &state(), &activate("pro"), now());
    assert_eq!(decision.verdict, Verdict::Deny);
    assert_eq!(decision.code, Code::RuleError);
    assert_eq!(decision.rule, "rules.broken");
    assert!(decision.effects.is_empty());
}

#[test]
fn conditions_beyond_the_limits_are_rejected_at_load() {
    let deep = format!("{}true{}", "(".repeat(64), ")".repeat(64));
    let nested = format!("rules:\n{}", rule("deep", "activate", "require", &deep));
    let error = Policy::from_yaml("test.yaml", &format!("{BASE}{nested}")).unwrap_err();
    assert!(
        error.to_string().contains("condition does not compile"),
        "{error}"
    );
    let long = vec!["activations"; 400].join(" + ");
    let oversized = format!(
        "rules:\n{}",
        rule("long", "activate", "require", &format!("{long} > 0"))
    );
    let error = Policy::from_yaml("test.yaml", &format!("{BASE}{oversized}")).unwrap_err();
    assert!(
        error.to_string().contains("longer than 4096 bytes"),
        "{error}"
    );
}

#[test]
fn a_rule_returning_a_number_denies() {
    let policy = policy(&format!(
        "rules:\n{}",
        rule("number", "activate", "require", "activations + 1")
    ));
    let decision = decide(&policy, &state(), &activate("pro"), now());
    assert_eq!(decision.code, Code::RuleError);
    assert!(
        decision.message.contains("not a boolean"),
        "{}",
        decision.message
    );
}

#[test]
fn rules_apply_only_to_their_requests_and_in_file_order() {
    let policy = policy(&format!(
        "rules:\n{}{}{}",
        rule("first", "activate", "deny_when", "edition == \"pro\""),
        rule("second", "activate", "deny_when", "true"),
        rule("other", "borrow", "deny_when", "true"),
    ));
    let decision = decide(&policy, &state(), &activate("pro"), now());
    assert_eq!(
        (decision.code, decision.rule.as_str()),
        (Code::RuleDenied, "rules.first")
    );
    assert_eq!(decision.message, "first says no");
    let mut edu = state();
    edu.license.as_mut().unwrap().edition = "edu".into();
    let decision = decide(&policy, &edu, &activate("edu"), now());
    assert_eq!(
        (decision.code, decision.rule.as_str()),
        (Code::RuleDenied, "rules.second")
    );
}

#[test]
fn the_first_failing_check_wins() {
    let policy = policy("");
    let mut broken = state();
    let license = broken.license.as_mut().unwrap();
    license.status = LicenseStatus::Revoked;
    license.term = Term::Rental {
        ends_at: now() - Duration::days(1),
    };
    // Status is checked before edition and expiry.
    assert_eq!(
        decide(&policy, &broken, &activate("edu"), now()).code,
        Code::Revoked
    );
    broken.license.as_mut().unwrap().status = LicenseStatus::Enabled;
    assert_eq!(
        decide(&policy, &broken, &activate("edu"), now()).code,
        Code::EditionMismatch
    );
    assert_eq!(
        decide(&policy, &broken, &activate("pro"), now()).code,
        Code::Expired
    );
    // The clock is checked before anything else.
    broken.last_seen = Some(now() + Duration::days(2));
    assert_eq!(
        decide(&policy, &broken, &activate("pro"), now()).code,
        Code::ClockRollback
    );
}

#[test]
fn a_license_of_another_product_is_not_found() {
    let policy = policy("");
    let mut other = state();
    other.license.as_mut().unwrap().product = "word".into();
    assert_eq!(
        decide(&policy, &other, &activate("pro"), now()).code,
        Code::LicenseNotFound
    );
    let mut unknown_type = state();
    unknown_type.license.as_mut().unwrap().license_type = "mystery".into();
    assert_eq!(
        decide(&policy, &unknown_type, &activate("pro"), now()).code,
        Code::UnknownLicenseType
    );
}

#[test]
fn denials_carry_no_effects() {
    let policy = policy("");
    let mut taken = state();
    taken.activations.push(Activation::new(
        Binding::Fingerprint(machine("b").components),
        now(),
    ));
    let decision = decide(&policy, &taken, &activate("pro"), now());
    assert_eq!(decision.code, Code::ActivationLimitReached);
    assert!(decision.effects.is_empty());
    assert!(!decision.message.is_empty());
}

#[test]
fn fingerprint_drift_within_tolerance_rebinds_the_activation() {
    let policy = policy("");
    let mut activated = state();
    let old = Fingerprint::from_pairs([
        ("machine-id", "a"),
        ("mac", "old-nic"),
        ("cpu", "a"),
        ("disk", "a"),
    ]);
    activated.activations.push(Activation::new(
        Binding::Fingerprint(old.components.clone()),
        now(),
    ));
    let request = Request {
        actor: Actor::EndUser,
        action: Action::Validate {
            key: "K".into(),
            machine: machine("a"),
            certificate_serial: None,
        },
    };
    let decision = decide(&policy, &activated, &request, now());
    assert_eq!(decision.code, Code::Valid);
    assert_eq!(
        decision.effects.first(),
        Some(&Effect::RebindActivation {
            from: Binding::Fingerprint(old.components),
            to: Binding::Fingerprint(machine("a").components),
        })
    );
}

#[test]
fn clients_act_only_on_their_own_licenses_and_administrators_on_all() {
    let policy = policy("");
    let mut owned = state();
    owned.license.as_mut().unwrap().client = Some("acme".into());
    let as_actor = |actor: Actor| Request {
        actor,
        ..activate("pro")
    };
    assert_eq!(
        decide(
            &policy,
            &owned,
            &as_actor(Actor::Client("acme".into())),
            now()
        )
        .code,
        Code::Activated
    );
    assert_eq!(
        decide(
            &policy,
            &owned,
            &as_actor(Actor::Client("other".into())),
            now()
        )
        .code,
        Code::AccessDenied
    );
    let revoke = |actor: Actor| Request {
        actor,
        action: Action::Revoke { key: "K".into() },
    };
    assert_eq!(
        decide(
            &policy,
            &owned,
            &revoke(Actor::Client("acme".into())),
            now()
        )
        .code,
        Code::AdminRequired
    );
    let decision = decide(&policy, &owned, &revoke(Actor::Administrator), now());
    assert_eq!(decision.code, Code::RevocationApplied);
    assert_eq!(decision.effects, vec![Effect::RevokeLicense]);
}

#[test]
fn every_code_is_documented() {
    let docs =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/decisions.md"))
            .unwrap();
    let missing: Vec<&str> = Code::ALL
        .iter()
        .map(|code| code.as_str())
        .filter(|code| !docs.contains(&format!("`{code}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "codes missing from docs/decisions.md: {missing:?}"
    );
}

#[test]
fn a_license_in_an_order_belongs_to_the_orders_client() {
    let policy = policy("");
    let mut in_order = state();
    in_order.order = Some(licet_engine::state::Order {
        id: "o-1".into(),
        client: "acme".into(),
        features: BTreeMap::new(),
        counters: BTreeMap::new(),
    });
    // The license itself names a different client: the order decides.
    in_order.license.as_mut().unwrap().client = Some("intruder".into());
    let as_client = |id: &str| Request {
        actor: Actor::Client(id.into()),
        ..activate("pro")
    };
    assert_eq!(
        decide(&policy, &in_order, &as_client("acme"), now()).code,
        Code::Activated
    );
    assert_eq!(
        decide(&policy, &in_order, &as_client("intruder"), now()).code,
        Code::AccessDenied
    );
}

#[test]
fn extending_a_limited_rental_license_moves_the_date_that_counts() {
    let mut license = license();
    license.term = Term::Rental {
        ends_at: now() + Duration::days(10),
    };
    license.limited = Some(licet_engine::state::LimitedTerms {
        not_before: now() - Duration::days(1),
        expires_at: now() + Duration::days(10),
        features: BTreeMap::new(),
        counters: BTreeMap::new(),
    });
    let later = now() + Duration::days(100);
    licet_engine::effects::update_license(
        &mut license,
        Some(later),
        &BTreeMap::new(),
        &BTreeMap::new(),
        None,
    );
    assert_eq!(license.limited.as_ref().unwrap().expires_at, later);
    assert_eq!(license.term, Term::Rental { ends_at: later });
}

#[test]
fn web_serial_features_override_product_defaults_one_by_one() {
    let policy = policy("");
    let mut serial = state();
    serial.license.as_mut().unwrap().features = BTreeMap::from([("extra".to_owned(), true)]);
    let decision = decide(&policy, &serial, &activate("pro"), now());
    let features = &decision.certificate().unwrap().features;
    assert_eq!(features.get("render"), Some(&true));
    assert_eq!(features.get("extra"), Some(&true));
    serial.license.as_mut().unwrap().features = BTreeMap::from([("render".to_owned(), false)]);
    let decision = decide(&policy, &serial, &activate("pro"), now());
    assert_eq!(
        decision.certificate().unwrap().features.get("render"),
        Some(&false)
    );
}

#[test]
fn a_stored_license_whose_term_its_type_does_not_allow_is_refused() {
    // Hosts refuse to issue such a license; a record changed behind their back is still denied.
    let policy = policy("");
    let mut state = state();
    state.license = Some(License {
        license_type: "perpetual-only".into(),
        term: Term::Rental {
            ends_at: now() + Duration::days(30),
        },
        ..license()
    });
    let decision = decide(&policy, &state, &activate("pro"), now());
    assert_eq!(decision.code, Code::TermNotAllowed, "{decision:?}");
    assert_eq!(decision.rule, "license_type.terms");
}
