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
    assert_eq!(again.status.code(), Some(3));
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

/// A vendor key pair in a fresh directory, for the end-user commands.
fn vendor_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let output = licet(&["keys", "generate", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    dir
}

/// `licet ARGS --state-dir DIR/state --policy gstarcad.yaml --vendor-key DIR/vendor.pub`.
fn licet_in(dir: &Path, policy: &str, args: &[&str]) -> Output {
    let state = dir.join("state");
    let key = dir.join("vendor.pub");
    let mut all = args.to_vec();
    all.extend([
        "--state-dir",
        state.to_str().unwrap(),
        "--policy",
        policy,
        "--vendor-key",
        key.to_str().unwrap(),
    ]);
    licet(&all)
}

#[test]
fn invalid_combinations_are_refused_with_two_before_anything_runs() {
    let dir = vendor_dir();
    let request = dir.path().join("request.xml");
    let request = request.to_str().unwrap();
    let refused: &[&[&str]] = &[
        // Activation and return: exactly one of online, request file and response file.
        &["activate"],
        &["activate", "--key", "K", "--edition", "standard"],
        &["activate", "--server", "127.0.0.1:9", "--key", "K"],
        &[
            "activate",
            "--server",
            "127.0.0.1:9",
            "--manual",
            "--key",
            "K",
            "--edition",
            "standard",
            "--request-out",
            request,
        ],
        &[
            "activate",
            "--manual",
            "--key",
            "K",
            "--edition",
            "standard",
        ],
        &["activate", "--load-response", request, "--key", "K"],
        &["activate", "--request-out", request],
        &["return"],
        &[
            "return",
            "--server",
            "127.0.0.1:9",
            "--load-response",
            request,
        ],
        &["return", "--manual"],
        &["return", "--request-out", request],
        // A server address that is not one.
        &["validate", "--server", "127.0.0.1"],
        // The dongle commands need the dongle plugin; a software dongle needs it too.
        &["dongle", "status"],
        &["check", "--software-dongle", request],
        // A borrow needs all of its terms, and is not a `borrow return` at once.
        &["borrow", "--server", "127.0.0.1:9", "--key", "K"],
        &[
            "borrow",
            "--until",
            "2030-01-01",
            "return",
            "--server",
            "127.0.0.1:9",
        ],
        &[
            "borrow",
            "--until",
            "2030-13-01",
            "--server",
            "127.0.0.1:9",
            "--key",
            "K",
            "--edition",
            "e",
        ],
    ];
    for args in refused {
        let output = licet_in(dir.path(), "policies/gstarcad.yaml", args);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains("try '--help'"),
            "{args:?}: {stderr}"
        );
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(!dir.path().join("state").exists(), "{args:?} wrote state");
        assert!(!dir.path().join("request.xml").exists(), "{args:?}");
    }
}

#[test]
fn the_start_up_check_exits_one_when_denied_and_three_when_it_fails() {
    let dir = vendor_dir();
    // No license on this machine: the check denies.
    let denied = licet_in(dir.path(), "policies/gstarcad.yaml", &["check"]);
    assert_eq!(denied.status.code(), Some(1), "{}", text(&denied.stderr));
    assert!(
        text(&denied.stdout).starts_with("NOT_ACTIVATED: "),
        "{}",
        text(&denied.stdout)
    );
    // A policy that cannot be read: the check fails.
    for policy in ["no/such/policy.yaml", "policies"] {
        let failed = licet_in(dir.path(), policy, &["check"]);
        let stderr = text(&failed.stderr);
        assert_eq!(failed.status.code(), Some(3), "{policy}: {stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(policy),
            "{stderr}"
        );
        assert!(failed.stdout.is_empty());
    }
}

#[test]
fn success_help_and_version_exit_zero_and_the_help_lists_the_exit_codes() {
    let dir = vendor_dir();
    let info = licet_in(dir.path(), "policies/gstarcad.yaml", &["license", "info"]);
    assert_eq!(info.status.code(), Some(0), "{}", text(&info.stderr));
    let help = licet(&["--help"]);
    assert_eq!(help.status.code(), Some(0));
    let help = text(&help.stdout);
    for line in ["0  allowed:", "1  denied:", "2  usage:", "3  failed:"] {
        assert!(help.contains(line), "{help}");
    }
    let version = licet(&["--version"]);
    assert_eq!(version.status.code(), Some(0));
    assert!(text(&version.stdout).starts_with("licet "));
    // No command at all is a usage error.
    assert_eq!(licet(&[]).status.code(), Some(2));
}
