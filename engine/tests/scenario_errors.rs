//! Malformed scenario files get a clear error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use licet_engine::scenario::{self, parse_duration, ScenarioError};
use licet_engine::Policy;

const POLICY: &str = r#"
licet: 1
id: test
product: { id: cad, name: CAD, version: "1", editions: [pro] }
model: web
license_types:
  key: { kind: standalone, terms: [perpetual] }
"#;

fn scenario(steps: &str) -> String {
    format!(
        "policy: p.yaml\nstart: 2027-01-01T00:00:00Z\nmachines:\n  pc: {{ machine-id: a }}\nlicenses:\n  - {{ key: K, license_type: key, edition: pro }}\nsteps:\n{steps}"
    )
}

fn run_error(steps: &str) -> String {
    let policy = Policy::from_yaml("p.yaml", POLICY).unwrap();
    let parsed = scenario::parse("s.yaml", &scenario(steps)).unwrap();
    scenario::run(&policy, &parsed).unwrap_err().to_string()
}

#[test]
fn unknown_actions_and_fields_point_at_their_position() {
    let error = scenario::parse(
        "s.yaml",
        &scenario("  - do: { activat: { key: K, machine: pc } }\n    expect: ACTIVATED\n"),
    )
    .unwrap_err();
    let ScenarioError::Parse { line, message, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(*line, 8, "{message}");
    assert!(message.contains("unknown variant `activat`"), "{message}");
    let error = scenario::parse(
        "s.yaml",
        &scenario("  - do: { activate: { key: K, machine: pc } }\n    expct: ACTIVATED\n"),
    )
    .unwrap_err();
    assert!(error.to_string().starts_with("s.yaml:9:5: "), "{error}");
    assert!(
        error.to_string().contains("unknown field `expct`"),
        "{error}"
    );
}

#[test]
fn steps_naming_unknown_things_are_errors() {
    assert_eq!(
        run_error("  - do: { activate: { key: K, machine: laptop } }\n    expect: ACTIVATED\n"),
        "step 1: unknown machine `laptop`"
    );
    assert!(run_error(
        "  - as: root\n    do: { activate: { key: K, machine: pc } }\n    expect: ACTIVATED\n"
    )
    .contains("unknown actor `root`"));
    assert!(run_error("  - at: 2027-01-02T00:00:00Z\n    after: 1d\n    do: { activate: { key: K, machine: pc } }\n    expect: ACTIVATED\n")
        .contains("give `at` or `after`, not both"));
    assert!(run_error(
        "  - after: soon\n    do: { activate: { key: K, machine: pc } }\n    expect: ACTIVATED\n"
    )
    .contains("`soon` is not a duration"));
    assert!(
        run_error("  - do: { borrow: { key: K, machine: pc } }\n    expect: BORROWED\n")
            .contains("exactly one of `days` or `until`")
    );
    assert!(
        run_error("  - do: { offline-check: { machine: pc, key: K } }\n    expect: VALID\n")
            .contains("holds no certificate")
    );
}

#[test]
fn a_request_without_expectation_fails_its_step() {
    let policy = Policy::from_yaml("p.yaml", POLICY).unwrap();
    let parsed = scenario::parse(
        "s.yaml",
        &scenario("  - do: { activate: { key: K, machine: pc } }\n"),
    )
    .unwrap();
    let report = scenario::run(&policy, &parsed).unwrap();
    assert!(!report.passed());
    assert_eq!(
        report.steps[0].failures,
        vec!["a step that makes a decision needs `expect`".to_owned()]
    );
}

#[test]
fn durations_parse_and_reject_garbage() {
    assert_eq!(parse_duration("30d").unwrap().num_days(), 30);
    assert_eq!(parse_duration("12h").unwrap().num_hours(), 12);
    assert_eq!(parse_duration("90m").unwrap().num_minutes(), 90);
    assert_eq!(parse_duration("15s").unwrap().num_seconds(), 15);
    for bad in [
        "",
        "d",
        "5",
        "5w",
        "-",
        "99999999999999999999d",
        "1.5d",
        "é",
    ] {
        assert!(parse_duration(bad).is_err(), "{bad}");
    }
}

#[test]
fn oversized_scenarios_are_refused() {
    let huge = format!("{}\n", "#".repeat(scenario::MAX_SCENARIO_BYTES + 1));
    assert!(scenario::parse("s.yaml", &huge)
        .unwrap_err()
        .to_string()
        .contains("larger than"));
}
