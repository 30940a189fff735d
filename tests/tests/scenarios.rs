//! Runs every scenario of the example policies, and checks that wrong expectations are caught.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::Path;

use licet_engine::scenario::{self, ScenarioReport};
use licet_engine::Policy;
use licet_tests::{failing_corpus_dir, policies_dir, scenario_files};

fn run_file(path: &Path) -> ScenarioReport {
    let source = fs::read_to_string(path).unwrap();
    let parsed = scenario::parse(&path.display().to_string(), &source).unwrap();
    let policy_path = path.parent().unwrap().join(&parsed.policy);
    let policy_source = fs::read_to_string(&policy_path).unwrap();
    let policy = Policy::from_yaml(&policy_path.display().to_string(), &policy_source).unwrap();
    scenario::run(&policy, &parsed).unwrap()
}

#[test]
fn every_example_scenario_passes() {
    let files = scenario_files(&policies_dir().join("scenarios")).unwrap();
    assert!(
        files.len() >= 6,
        "expected the example scenarios, found {files:?}"
    );
    let mut failures = Vec::new();
    for file in &files {
        let report = run_file(file);
        for step in report.steps.iter().filter(|step| !step.passed()) {
            failures.push(format!(
                "{} step {}: {}: {:?}",
                file.display(),
                step.step,
                step.summary,
                step.failures
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "scenario failures:\n{}",
        failures.join("\n")
    );
}

#[test]
fn wrong_expectations_are_reported_step_by_step() {
    let report = run_file(&failing_corpus_dir().join("wrong-expectations.scenario.yaml"));
    let failed: Vec<usize> = report
        .steps
        .iter()
        .filter(|s| !s.passed())
        .map(|s| s.step)
        .collect();
    assert_eq!(failed, vec![2, 3, 4, 5]);
    let messages: Vec<String> = report
        .steps
        .iter()
        .flat_map(|s| s.failures.clone())
        .collect();
    assert!(
        messages[0].contains("expected SEATS_EXHAUSTED, got ACTIVATED"),
        "{messages:?}"
    );
    assert!(
        messages[1].contains("expected expiry 2030-01-01T00:00:00Z"),
        "{messages:?}"
    );
    assert!(
        messages[2].contains("`NOT_A_CODE` is not a decision code"),
        "{messages:?}"
    );
    assert!(
        messages[3].contains("expected rule `license.edition.typo`, got `license.edition`"),
        "{messages:?}"
    );
}
