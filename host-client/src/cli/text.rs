//! `licet activate` and `licet return` by text blocks, where no file can be moved: with
//! `--text-plugin DIR` (a vendor-signed transport plugin whose destination is `text`, the shipped
//! `transport-text`) the request is printed as a block to read out, type or paste at the vendor's
//! page, and is remembered as pending like a request file; `--text-response` then reads the
//! block the vendor answered from standard input and loads it like a response file.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use licet_plugin_host::TransportPlugin;

use super::output::{carried_failure, emit, report_line};
use super::{CliError, Outcome};
use crate::client::{TextBlock, TEXT_BLOCK_INVALID};
use crate::{Client, ClientError};

/// The most bytes read from standard input for a block: far more than any response block.
const MAX_BLOCK_BYTES: u64 = 64 * 1024;

/// The text options of `licet activate` and `licet return`.
#[derive(Debug, clap::Args)]
pub(crate) struct TextArgs {
    /// Make the request as a text block with the transport plugin in DIR and print it (no file
    /// and no connection needed); with --text-response, read the answer.
    #[arg(long, value_name = "DIR")]
    pub text_plugin: Option<PathBuf>,
    /// Read the vendor's response block from standard input and load it.
    #[arg(long, requires = "text_plugin")]
    pub text_response: bool,
}

/// Prints the request block `make` produces with the plugin in `dir`.
pub(crate) fn request(
    client: &Client,
    dir: &Path,
    make: impl FnOnce(&TransportPlugin) -> Result<TextBlock, ClientError>,
) -> Result<Outcome, CliError> {
    let plugin = client.text_transport(dir)?;
    let block = make(&plugin)?;
    emit(&format!(
        "{}: read out, type or paste this block at the vendor's page, then run this command with \
         --text-response and type or paste the answer\n\n{}",
        block.title, block.text
    ));
    Ok(Outcome::Allowed)
}

fn read_block() -> Result<String, CliError> {
    let mut text = String::new();
    let stdin = std::path::PathBuf::from("<standard input>");
    std::io::stdin()
        .take(MAX_BLOCK_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(CliError::file("read", &stdin))?;
    if text.len() as u64 > MAX_BLOCK_BYTES {
        return Err(CliError::TooLarge {
            path: stdin,
            max: MAX_BLOCK_BYTES as usize,
        });
    }
    Ok(text)
}

/// A block the plugin refused (a typo, naming the line) is a denial, like a malformed file.
fn refused(error: ClientError) -> Result<Outcome, CliError> {
    carried_failure(error, TEXT_BLOCK_INVALID)
}

/// `licet activate --text-plugin DIR --text-response`.
pub(crate) fn activation_response(
    client: &Client,
    dir: &Path,
    now: DateTime<Utc>,
) -> Result<Outcome, CliError> {
    let plugin = client.text_transport(dir)?;
    let block = read_block()?;
    match client.load_text_activation_response(&plugin, &block, now) {
        Ok(report) => {
            emit("activated from the response block\n");
            emit(&report_line(&report));
            Ok(Outcome::decided(report.decision.is_allowed()))
        }
        Err(error) => refused(error),
    }
}

/// `licet return --text-plugin DIR --text-response`.
pub(crate) fn return_response(
    client: &Client,
    dir: &Path,
    now: DateTime<Utc>,
) -> Result<Outcome, CliError> {
    let plugin = client.text_transport(dir)?;
    let block = read_block()?;
    match client.load_text_return_response(&plugin, &block, now) {
        Ok(()) => {
            emit("returned: the license was removed from this machine\n");
            Ok(Outcome::Allowed)
        }
        Err(error) => refused(error),
    }
}
