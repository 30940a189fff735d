//! Fixtures shared by Licet's benchmarks: the GstarCAD policy with and without a custom rule on the
//! benchmarked requests, and the states and requests those benchmarks decide.

#![deny(missing_docs)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use licet_engine::certificate::Binding;
use licet_engine::policy::Method;
use licet_engine::state::{Activation, License, SeatLease};
use licet_engine::{Action, Actor, Fingerprint, Policy, PolicyError, ProductRef, Request, State};

const GSTARCAD: &str = include_str!("../../policies/gstarcad.yaml");

/// The rule section of the GstarCAD policy, as shipped (it applies to `borrow` only).
const SHIPPED_RULE_ON: &str = "on: [borrow]";

/// The GstarCAD policy without custom rules.
pub fn policy_without_rules() -> Result<Policy, PolicyError> {
    let source = match GSTARCAD.find("\nrules:") {
        Some(index) => GSTARCAD.get(..index).unwrap_or(GSTARCAD),
        None => GSTARCAD,
    };
    Policy::from_yaml("gstarcad.yaml", source)
}

/// The GstarCAD policy with its Rhai rule applied to validate, activate and checkout as well.
pub fn policy_with_rule() -> Result<Policy, PolicyError> {
    let source = GSTARCAD.replace(
        SHIPPED_RULE_ON,
        "on: [borrow, validate, activate, checkout]",
    );
    Policy::from_yaml("gstarcad.yaml", &source)
}

/// A fixed point in time for the benchmarks.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A machine fingerprint with the four default components.
pub fn machine(tag: &str) -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", format!("id-{tag}")),
        ("mac", format!("mac-{tag}")),
        ("cpu", format!("cpu-{tag}")),
        ("disk", format!("disk-{tag}")),
    ])
}

fn license(key: &str, license_type: &str, seats: Option<u32>) -> License {
    License {
        key: key.to_owned(),
        product: "gstarcad".to_owned(),
        license_type: license_type.to_owned(),
        edition: "professional".to_owned(),
        version: "2027".to_owned(),
        term: Default::default(),
        seats,
        features: BTreeMap::new(),
        counters: BTreeMap::new(),
        status: Default::default(),
        dongle: None,
        client: None,
        limited: None,
    }
}

fn target() -> ProductRef {
    ProductRef {
        product: "gstarcad".to_owned(),
        edition: "professional".to_owned(),
        version: "2027".to_owned(),
    }
}

/// A standalone key activated on machine `a`, and a request validating it there.
pub fn validate_case() -> (State, Request) {
    let state = State {
        license: Some(license("GCAD-1", "standalone-key", None)),
        activations: vec![Activation::new(
            Binding::Fingerprint(machine("a").components),
            now() - Duration::days(30),
        )],
        ..State::default()
    };
    let request = Request {
        actor: Actor::EndUser,
        action: Action::Validate {
            key: "GCAD-1".to_owned(),
            machine: machine("a"),
            certificate_serial: None,
        },
    };
    (state, request)
}

/// A fresh standalone key, and a request activating it online.
pub fn activate_case() -> (State, Request) {
    let state = State {
        license: Some(license("GCAD-1", "standalone-key", None)),
        ..State::default()
    };
    let request = Request {
        actor: Actor::EndUser,
        action: Action::Activate {
            key: "GCAD-1".to_owned(),
            target: target(),
            machine: machine("a"),
            method: Method::Online,
        },
    };
    (state, request)
}

/// A network key with 25 seats of which 20 are leased, and a request checking out one more.
pub fn checkout_case() -> (State, Request) {
    let leases = (0..20)
        .map(|index| SeatLease {
            session: format!("session-{index}"),
            binding: Binding::Fingerprint(machine(&index.to_string()).components),
            leased_at: now() - Duration::minutes(2),
            expires_at: now() + Duration::minutes(3),
            borrowed_until: None,
            certificate_serial: None,
            returned_at: None,
        })
        .collect();
    let state = State {
        license: Some(license("GCAD-NET", "network-key", Some(25))),
        leases,
        ..State::default()
    };
    let request = Request {
        actor: Actor::EndUser,
        action: Action::Checkout {
            key: "GCAD-NET".to_owned(),
            target: target(),
            machine: machine("new"),
            session: "session-new".to_owned(),
        },
    };
    (state, request)
}
