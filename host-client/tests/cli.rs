//! Drives the `licet` binary the way a vendor does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn licet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_licet"))
        .args(args)
        .current_dir(repo_root())
        .output()
        .expect("licet runs")
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_accepts_the_example_policies() {
    let output = licet(&[
        "policy",
        "check",
        "policies/gstarcad.yaml",
        "policies/acen-limited.yaml",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("ok: policies/gstarcad.yaml (gstarcad-2027, 4 license types, 1 rules)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: policies/acen-limited.yaml"),
        "{stdout}"
    );
}

#[test]
fn check_reports_every_problem_with_its_position() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let source = fs::read_to_string(repo_root().join("policies/gstarcad.yaml"))
        .unwrap()
        .replace("activations_per_serial: 1", "activations_per_serial: 0")
        .replace(
            "  standalone-key:\n    kind: standalone\n",
            "  standalone-key:\n    kind: standalone\n    borrowing: { max_days: 5 }\n",
        );
    fs::write(&path, source).unwrap();
    let output = licet(&["policy", "check", path.to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].ends_with(
            "bad.yaml:19:25: activations per serial must be between 1 and 100000, not 0"
        ),
        "{stderr}"
    );
    assert!(lines[1].ends_with("bad.yaml:36:16: borrowing is only for network license keys, but `standalone-key` is standalone"), "{stderr}");
}

#[test]
fn check_reports_unknown_fields_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("typo.yaml");
    let source = fs::read_to_string(repo_root().join("policies/acen-web.yaml"))
        .unwrap()
        .replace("removal:", "remvoal:");
    fs::write(&path, source).unwrap();
    let output = licet(&[
        "policy",
        "check",
        path.to_str().unwrap(),
        "no/such/policy.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("typo.yaml:26:1: unknown field `remvoal`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("`no/such/policy.yaml`: No such file or directory"),
        "{stderr}"
    );
}

#[test]
fn test_runs_every_policy_and_scenario() {
    let output = licet(&["policy", "test", "policies/"]);
    let stdout = text(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(
        stdout.contains("scenario ok    policies/scenarios/gstarcad-network.scenario.yaml"),
        "{stdout}"
    );
    let summary = stdout.lines().last().unwrap();
    assert!(summary.ends_with(" passed, 0 failed"), "{summary}");
}

#[test]
fn test_fails_and_explains_a_wrong_expectation() {
    let output = licet(&[
        "policy",
        "test",
        "tests/corpus/wrong-expectations.scenario.yaml",
    ]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("scenario FAIL"), "{stdout}");
    assert!(
        stdout.contains("expected SEATS_EXHAUSTED, got ACTIVATED"),
        "{stdout}"
    );
    assert!(
        stdout.trim_end().ends_with("0 passed, 1 failed"),
        "{stdout}"
    );
}

#[test]
fn verbose_test_explains_every_decision() {
    let output = licet(&[
        "policy",
        "test",
        "--verbose",
        "policies/scenarios/gstarcad-borrow.scenario.yaml",
    ]);
    assert!(output.status.success());
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains(
            "RULE_DENIED [rules.education-no-borrow] education licenses cannot be borrowed"
        ),
        "{stdout}"
    );
}

#[test]
fn keys_generate_writes_a_pair_and_never_overwrites_silently() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();
    let output = licet(&["keys", "generate", "--out", out]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    let public = fs::read_to_string(dir.path().join("vendor.pub")).unwrap();
    assert!(text(&output.stdout).contains(public.trim()));
    assert!(public.starts_with("licet-ed25519-public:"));
    assert!(fs::read_to_string(dir.path().join("vendor.secret"))
        .unwrap()
        .starts_with("licet-ed25519-secret:"));

    let again = licet(&["keys", "generate", "--out", out]);
    assert_eq!(again.status.code(), Some(2));
    assert!(text(&again.stderr).contains("pass --force to replace it"));
    assert_eq!(
        fs::read_to_string(dir.path().join("vendor.pub")).unwrap(),
        public
    );

    let forced = licet(&["keys", "generate", "--out", out, "--force"]);
    assert!(forced.status.success());
    assert_ne!(
        fs::read_to_string(dir.path().join("vendor.pub")).unwrap(),
        public
    );
}
