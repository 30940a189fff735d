//! A host may count the held seats itself (`State::held_seats`) and give the engine only the
//! leases the request needs; the decision is the same as with every lease.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use licet_engine::certificate::Binding;
use licet_engine::state::{License, SeatLease};
use licet_engine::{decide, Action, Actor, Code, Fingerprint, Policy, ProductRef, Request, State};

fn policy() -> Policy {
    Policy::from_yaml(
        "gstarcad.yaml",
        include_str!("../../policies/gstarcad.yaml"),
    )
    .unwrap()
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap()
}

fn machine(tag: &str) -> Fingerprint {
    Fingerprint::from_pairs([
        ("machine-id", format!("id-{tag}")),
        ("mac", format!("mac-{tag}")),
        ("cpu", format!("cpu-{tag}")),
        ("disk", format!("disk-{tag}")),
    ])
}

fn pool(seats: u32) -> License {
    License {
        key: "NET".into(),
        product: "gstarcad".into(),
        license_type: "network-key".into(),
        edition: "professional".into(),
        version: "2027".into(),
        term: Default::default(),
        seats: Some(seats),
        features: BTreeMap::new(),
        counters: BTreeMap::new(),
        status: Default::default(),
        dongle: None,
        client: None,
        limited: None,
    }
}

fn lease(session: &str, ends_in: Duration) -> SeatLease {
    SeatLease {
        session: session.into(),
        binding: Binding::Fingerprint(machine(session).components),
        leased_at: now() - Duration::minutes(1),
        expires_at: now() + ends_in,
        borrowed_until: None,
        certificate_serial: None,
        returned_at: None,
    }
}

fn checkout(session: &str) -> Request {
    Request {
        actor: Actor::EndUser,
        action: Action::Checkout {
            key: "NET".into(),
            target: ProductRef {
                product: "gstarcad".into(),
                edition: "professional".into(),
                version: "2027".into(),
            },
            machine: machine(session),
            session: session.into(),
        },
    }
}

#[test]
fn a_counted_pool_decides_like_the_leases_it_counts() {
    let policy = policy();
    // Three seats, two held and one lapsed.
    let leases = vec![
        lease("a", Duration::minutes(3)),
        lease("b", Duration::minutes(3)),
        lease("lapsed", -Duration::minutes(1)),
    ];
    let every_lease = State {
        license: Some(pool(3)),
        leases: leases.clone(),
        ..State::default()
    };
    let counted = |held, leases: Vec<SeatLease>| State {
        license: Some(pool(3)),
        leases,
        held_seats: Some(held),
        ..State::default()
    };
    for (session, own) in [("c", Vec::new()), ("a", vec![leases[0].clone()])] {
        let full = decide(&policy, &every_lease, &checkout(session), now());
        let host = decide(&policy, &counted(2, own), &checkout(session), now());
        assert_eq!(full.code, Code::SeatGranted, "{full:?}");
        assert_eq!(
            (host.code, host.effects.len()),
            (full.code, full.effects.len()),
            "{host:?}"
        );
    }
    // A full count refuses a new session, but not the session already holding its seat.
    let full = counted(3, Vec::new());
    assert_eq!(
        decide(&policy, &full, &checkout("d"), now()).code,
        Code::SeatsExhausted
    );
    let own = counted(3, vec![leases[0].clone()]);
    assert_eq!(
        decide(&policy, &own, &checkout("a"), now()).code,
        Code::SeatGranted
    );
}
