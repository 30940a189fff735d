//! `licet dongle ...`: the USB dongle on this machine.

use super::args::ClientArgs;
use super::output::emit;
use super::{CliError, Outcome};
use licet_engine::report::Report as _;

/// The dongle commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum DongleCommand {
    /// Check which dongle is present: it must sign a fresh challenge (needs --dongle-plugin).
    #[command(mut_arg("dongle_plugin", |arg| arg.required(true)))]
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
}

/// Runs a dongle command: present is allowed, absent denied.
pub(crate) fn run(command: DongleCommand) -> Result<Outcome, CliError> {
    match command {
        DongleCommand::Status { client } => match client.open()?.dongle_serial() {
            Ok(serial) => {
                emit(&format!(
                    "DONGLE_PRESENT: dongle `{serial}` answered a fresh challenge\n"
                ));
                Ok(Outcome::Allowed)
            }
            Err(error) => {
                emit(&format!("DONGLE_ABSENT: {}\n", error.report()));
                Ok(Outcome::Denied)
            }
        },
    }
}
