//! The `licet` command line, as a library: the binary only parses its arguments, runs them and
//! exits with the [`Outcome`].
//!
//! Each group of commands lives in its own module with its clap types and its `run`:
//! [`tools`] (`policy`, `keys`), [`local`] (`check`, `license`), [`online`] (`trial`,
//! `activate`, `validate`, `return`), [`seats`] (`seat`, `borrow`), [`dongle`] and [`bundle`]. What they
//! share is in [`args`] (where the license lives, which server to ask and how) and [`output`]
//! (what is printed). Modes that exclude each other are clap structure (subcommands, groups,
//! `requires` and `conflicts_with`), so clap refuses a wrong combination with its usage message
//! and exit code 2 before anything is read or written.
//!
//! Adding a command is local: a variant of [`Command`] with the module's argument type, and one
//! line in [`Cli::execute`].

mod args;
mod bundle;
mod dongle;
mod local;
mod online;
mod outcome;
mod output;
mod seats;
mod text;
mod tools;

use std::ffi::OsString;

use clap::{CommandFactory as _, Parser, Subcommand};

pub use outcome::{CliError, Outcome};

/// The exit codes, as `licet --help` prints them after the commands.
const EXIT_CODES: &str = "\
Exit status:
  0  allowed: the check or the online operation was allowed, or the command succeeded
  1  denied: the licensing decision denied (its code and sentence are printed), or a policy
     check or scenario test did not pass
  2  usage: the arguments are not a valid command line (nothing was run)
  3  failed: a file could not be read or written or is invalid, or the server could not be
     reached or answered something invalid";

/// The `licet` command line.
#[derive(Debug, Parser)]
#[command(
    name = "licet",
    version,
    about = "Licet license policy engine",
    after_help = EXIT_CODES
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    connection: args::ConnectionArgs,
}

/// The commands of `licet`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Check policies and run their scenario tests.
    #[command(subcommand)]
    Policy(tools::PolicyCommand),
    /// Manage vendor signing keys.
    #[command(subcommand)]
    Keys(tools::KeysCommand),
    /// Check that the product may run on this machine now (the start-up check).
    Check(local::CheckArgs),
    /// Read and manage the license on this machine.
    #[command(subcommand)]
    License(local::LicenseCommand),
    /// Start the product's trial on this machine (online).
    #[command(subcommand)]
    Trial(online::TrialCommand),
    /// Activate a license key on this machine, online or by request and response files.
    Activate(online::ActivateArgs),
    /// Validate the license (or trial) on this machine with the license server.
    Validate(online::ValidateArgs),
    /// Return the license on this machine, online or by request and response files.
    Return(online::ReturnArgs),
    /// Hold network seats of a license server.
    #[command(subcommand)]
    Seat(seats::SeatCommand),
    /// The USB dongle on this machine.
    #[command(subcommand)]
    Dongle(dongle::DongleCommand),
    /// Borrow a network seat until a date for offline use, or return it early (`borrow return`).
    Borrow(seats::BorrowArgs),
    /// Build and verify signed product bundles (the vendor's side).
    #[command(subcommand)]
    Bundle(bundle::BundleCommand),
}

/// Parses `args` (the program name first) and runs them: what `licet` does, as its exit code.
/// A command line clap refuses prints clap's message and is [`Outcome::Usage`]; `--help` and
/// `--version` print and are [`Outcome::Allowed`].
pub fn main<I, T>(args: I) -> Outcome
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match Cli::try_parse_from(args) {
        Ok(cli) => cli.run(),
        Err(error) => usage(&error),
    }
}

impl Cli {
    /// Runs the command, printing its result on standard output and any error on standard
    /// error.
    pub fn run(self) -> Outcome {
        match self.execute() {
            Ok(outcome) => outcome,
            Err(CliError::Usage(error)) => usage(&error),
            Err(error) => {
                eprintln!("error: {}", licet_engine::report::chain(&error));
                Outcome::Failed
            }
        }
    }

    /// Runs the command: allowed or denied, or why it failed.
    pub fn execute(self) -> Result<Outcome, CliError> {
        let connection = &self.connection;
        match self.command {
            Command::Policy(command) => tools::run_policy(command),
            Command::Keys(command) => tools::run_keys(command),
            Command::Check(args) => local::run_check(args),
            Command::License(command) => local::run_license(command),
            Command::Trial(command) => online::run_trial(connection, command),
            Command::Activate(args) => online::run_activate(connection, args),
            Command::Validate(args) => online::run_validate(connection, args),
            Command::Return(args) => online::run_return(connection, args),
            Command::Seat(command) => seats::run_seat(connection, command),
            Command::Dongle(command) => dongle::run(command),
            Command::Borrow(args) => seats::run_borrow(connection, args),
            Command::Bundle(command) => bundle::run(command),
        }
    }
}

/// Prints clap's message; `--help` and `--version` succeed, anything else is a usage error.
fn usage(error: &clap::Error) -> Outcome {
    let _ = error.print();
    if error.exit_code() == 0 {
        Outcome::Allowed
    } else {
        Outcome::Usage
    }
}

/// A usage error for arguments clap's structure should already have refused: `message` says
/// what the command needs.
fn usage_error(message: &str) -> CliError {
    CliError::Usage(Cli::command().error(clap::error::ErrorKind::MissingRequiredArgument, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_help_lists_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        for line in ["0  allowed", "1  denied", "2  usage", "3  failed"] {
            assert!(help.contains(line), "{help}");
        }
    }
}
