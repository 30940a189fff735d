//! The vendor's tools: `licet policy ...` (check policies, run scenario tests) and
//! `licet keys ...` (vendor key pairs).

use licet_engine::report::Report as _;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use super::output::emit;
use super::{CliError, Outcome};
use crate::keys::{self, KeyPair};
use crate::policy_tools::{self, TestRun};

/// The policy commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum PolicyCommand {
    /// Load policy files and report every problem with file:line:column.
    Check {
        /// Policy files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check every policy and run every `*.scenario.yaml` under the given paths.
    Test {
        /// Files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Print every step with its decision, not only failures.
        #[arg(short, long)]
        verbose: bool,
    },
}

/// The key commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum KeysCommand {
    /// Generate a vendor key pair: `vendor.secret` (keep it on the server) and `vendor.pub`.
    Generate {
        /// Directory to write the key files into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
        /// Replace existing key files.
        #[arg(long)]
        force: bool,
    },
}

/// Runs a policy command: denied when a policy or scenario did not pass.
pub(crate) fn run_policy(command: PolicyCommand) -> Result<Outcome, CliError> {
    match command {
        PolicyCommand::Check { files } => Ok(check(&files)),
        PolicyCommand::Test { paths, verbose } => test(&paths, verbose),
    }
}

/// Runs a key command.
pub(crate) fn run_keys(command: KeysCommand) -> Result<Outcome, CliError> {
    match command {
        KeysCommand::Generate { out, force } => {
            let keys_error = |source| CliError::Keys {
                dir: out.clone(),
                source,
            };
            let pair = KeyPair::generate().map_err(keys_error)?;
            let (secret, public) = keys::write_key_pair(&out, &pair, force).map_err(keys_error)?;
            emit(&format!(
                "secret key: {} (keep it on the server only)\npublic key: {} (ship it with the \
                 product)\n{}",
                secret.display(),
                public.display(),
                keys::public_key_text(&pair.verifying())
            ));
            Ok(Outcome::Allowed)
        }
    }
}

fn check(files: &[PathBuf]) -> Outcome {
    let mut ok = true;
    for file in files {
        match policy_tools::check_policy(file) {
            Ok(policy) => emit(&format!(
                "ok: {} ({}, {} license types, {} rules)\n",
                file.display(),
                policy.id,
                policy.license_types.len(),
                policy.rule_count()
            )),
            Err(error) => {
                ok = false;
                let _ = writeln!(std::io::stderr().lock(), "{}", error.report());
            }
        }
    }
    Outcome::decided(ok)
}

fn test(paths: &[PathBuf], verbose: bool) -> Result<Outcome, CliError> {
    let mut passed = 0;
    let mut failed = 0;
    for path in paths {
        let run = policy_tools::test_path(path)?;
        emit(&report(&run, verbose));
        let (p, f) = run.counts();
        passed += p;
        failed += f;
    }
    emit(&format!("{passed} passed, {failed} failed\n"));
    Ok(Outcome::decided(failed == 0))
}

fn report(run: &TestRun, verbose: bool) -> String {
    let mut out = String::new();
    for outcome in &run.policies {
        match &outcome.result {
            Ok(policy) => {
                let _ = writeln!(
                    out,
                    "policy   ok    {} ({})",
                    outcome.path.display(),
                    policy.id
                );
            }
            Err(error) => {
                let _ = writeln!(out, "policy   FAIL  {}", outcome.path.display());
                let _ = writeln!(
                    out,
                    "{}",
                    indent(&licet_engine::report::chain(error).to_string())
                );
            }
        }
    }
    for outcome in &run.scenarios {
        match &outcome.result {
            Ok(report) => {
                let status = if report.passed() { "ok  " } else { "FAIL" };
                let description = outcome.description.as_deref().unwrap_or("");
                let _ = writeln!(
                    out,
                    "scenario {status}  {} {}",
                    outcome.path.display(),
                    dim(description)
                );
                for step in &report.steps {
                    if verbose || !step.passed() {
                        let code = step.decision.as_ref().map_or("-".to_owned(), |d| {
                            format!("{} [{}] {}", d.code, d.rule, d.message)
                        });
                        let mark = if step.passed() { " " } else { "x" };
                        let _ = writeln!(
                            out,
                            "  {mark} {:>3} {} {}: {code}",
                            step.step,
                            step.at.format("%Y-%m-%d %H:%M"),
                            step.summary
                        );
                        for failure in &step.failures {
                            let _ = writeln!(out, "        {failure}");
                        }
                    }
                }
            }
            Err(error) => {
                let _ = writeln!(out, "scenario FAIL  {}", outcome.path.display());
                let _ = writeln!(
                    out,
                    "{}",
                    indent(&licet_engine::report::chain(error).to_string())
                );
            }
        }
    }
    out
}

fn indent(text: &str) -> String {
    text.lines()
        .map(|line| format!("    {line}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn dim(text: &str) -> String {
    if text.is_empty() {
        String::new()
    } else {
        format!("({})", text.trim())
    }
}
