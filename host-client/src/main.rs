//! `licet`: Licet's command line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use licet_client::keys::{self, KeyPair};
use licet_client::policy_tools::{self, TestRun};

#[derive(Debug, Parser)]
#[command(name = "licet", version, about = "Licet license policy engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check policies and run their scenario tests.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage vendor signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
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

#[derive(Debug, Subcommand)]
enum KeysCommand {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<bool> {
    match cli.command {
        Command::Policy(PolicyCommand::Check { files }) => Ok(check(&files)),
        Command::Policy(PolicyCommand::Test { paths, verbose }) => test(&paths, verbose),
        Command::Keys(KeysCommand::Generate { out, force }) => {
            let pair = KeyPair::generate()?;
            let (secret, public) = keys::write_key_pair(&out, &pair, force)
                .with_context(|| format!("cannot write keys into `{}`", out.display()))?;
            println!(
                "secret key: {} (keep it on the server only)",
                secret.display()
            );
            println!(
                "public key: {} (ship it with the product)",
                public.display()
            );
            print!("{}", keys::public_key_text(&pair.verifying()));
            Ok(true)
        }
    }
}

/// Writes to standard output; a closed pipe (`licet ... | head`) is not an error.
fn emit(text: &str) {
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn check(files: &[PathBuf]) -> bool {
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
                let _ = writeln!(std::io::stderr().lock(), "{error}");
            }
        }
    }
    ok
}

fn test(paths: &[PathBuf], verbose: bool) -> anyhow::Result<bool> {
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
    Ok(failed == 0)
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
                let _ = writeln!(out, "{}", indent(&error.to_string()));
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
                let _ = writeln!(out, "{}", indent(&error.to_string()));
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
