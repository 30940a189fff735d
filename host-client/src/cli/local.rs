//! The commands that read and change the license on this machine without a server: the
//! start-up check (`licet check`) and `licet license ...`.

use std::path::PathBuf;

use super::args::ClientArgs;
use super::output::{emit, report_json, report_line};
use super::{CliError, Outcome};

/// `licet check`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Print the result as JSON.
    #[arg(long)]
    json: bool,
}

/// The license commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum LicenseCommand {
    /// Show product, edition, version, language, key, status, expiry and trust.
    Info {
        #[command(flatten)]
        client: ClientArgs,
        /// Print the information as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Install a vendor-signed certificate file (armored text).
    Install {
        #[command(flatten)]
        client: ClientArgs,
        /// The certificate file.
        file: PathBuf,
    },
    /// Choose the product's language.
    Language {
        #[command(flatten)]
        client: ClientArgs,
        /// One of the product's languages.
        language: String,
    },
}

/// Runs the start-up check: allowed or denied as it decides.
pub(crate) fn run_check(args: CheckArgs) -> Result<Outcome, CliError> {
    let client = args.client.open()?;
    let report = client.check()?;
    if args.json {
        emit(&format!("{}\n", report_json(&report)));
    } else {
        emit(&report_line(&report));
    }
    // The decision stands; a failure to record the time seen is only reported.
    if let Err(error) = client.flush() {
        eprintln!("warning: {}", licet_engine::report::chain(&error));
    }
    // The process exits next, and the system takes back a product bundle's plugin host (its
    // code and memory mappings, its deadline thread) at once: tearing it down piece by piece
    // first would only make the start-up check slower. Nothing is left to write.
    std::mem::forget(client);
    Ok(Outcome::decided(report.decision.is_allowed()))
}

/// Runs a license command.
pub(crate) fn run_license(command: LicenseCommand) -> Result<Outcome, CliError> {
    let now = chrono::Utc::now();
    match command {
        LicenseCommand::Info { client, json } => {
            let info = client.open()?.info()?;
            if json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&info)?));
            } else {
                emit(&info.to_table());
            }
            Ok(Outcome::Allowed)
        }
        LicenseCommand::Install { client, file } => {
            let text = std::fs::read_to_string(&file).map_err(CliError::file("read", &file))?;
            let report = client.open()?.install_certificate(&text, now)?;
            emit(&format!("installed: {}\n", file.display()));
            emit(&report_line(&report));
            Ok(Outcome::decided(report.decision.is_allowed()))
        }
        LicenseCommand::Language { client, language } => {
            client.open()?.set_language(&language, now)?;
            emit(&format!("language: {language}\n"));
            Ok(Outcome::Allowed)
        }
    }
}
