//! The license's life with the vendor: `licet trial start`, `licet validate`, and `licet
//! activate` and `licet return`, each online (`--server`) or by request and response files
//! (`--manual --request-out FILE`, then `--load-response FILE`: with a bundle that has a `files`
//! plugin, the files are that plugin's, else the exchange files themselves) or by text blocks
//! (`--text-plugin DIR`, then `--text-plugin DIR --text-response`, see [`super::text`]).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use clap::ArgGroup;

use super::args::{server_url, ClientArgs, ConnectionArgs, ServerArgs};
use super::output::{carried_failure, decided, emit, report_line};
use super::{usage_error, CliError, Outcome};
use crate::client::RESPONSE_FILE_INVALID;
use crate::{Client, ClientError};

/// The trial commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum TrialCommand {
    /// Start (or resume) the trial of an edition; the server records it against this machine.
    Start {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        server: ServerArgs,
        /// The edition to try.
        #[arg(long)]
        edition: String,
    },
}

/// `licet validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct ValidateArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(flatten)]
    server: ServerArgs,
}

/// `licet activate`: exactly one of `--server`, `--manual` and `--load-response`.
#[derive(Debug, clap::Args)]
#[command(group(
    ArgGroup::new("activation")
        .args(["server", "online", "manual", "load_response", "text_plugin"])
        .required(true)
))]
pub(crate) struct ActivateArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Activate online with the server at URL (`https://host:port`, `http://host:port`, or `host:port`).
    #[arg(
        long,
        value_name = "URL",
        value_parser = server_url,
        requires_all = ["key", "edition"]
    )]
    server: Option<String>,
    /// Activate online with the product bundle's server.
    #[arg(long, requires_all = ["bundle", "key", "edition"])]
    online: bool,
    /// Write an activation request file for the vendor (no connection needed); with a bundle
    /// that has a `files` plugin, the file is that plugin's.
    #[arg(long, requires_all = ["key", "edition", "request_out"])]
    manual: bool,
    /// The license key.
    #[arg(long, conflicts_with = "load_response")]
    key: Option<String>,
    /// The edition to activate.
    #[arg(long, conflicts_with = "load_response")]
    edition: Option<String>,
    /// Where to write the request file.
    #[arg(long, value_name = "FILE", requires = "manual")]
    request_out: Option<PathBuf>,
    /// Load the vendor's activation response file (with a bundle that has a `files` plugin, read
    /// through that plugin).
    #[arg(long, value_name = "FILE")]
    load_response: Option<PathBuf>,
    #[command(flatten)]
    text: super::text::TextArgs,
}

/// `licet return`: exactly one of `--server`, `--manual` and `--load-response`.
#[derive(Debug, clap::Args)]
#[command(group(
    ArgGroup::new("return")
        .args(["server", "online", "manual", "load_response", "text_plugin"])
        .required(true)
))]
pub(crate) struct ReturnArgs {
    #[command(flatten)]
    client: ClientArgs,
    /// Return online to the server at URL (`https://host:port`, `http://host:port`, or `host:port`).
    #[arg(long, value_name = "URL", value_parser = server_url)]
    server: Option<String>,
    /// Return online to the product bundle's server.
    #[arg(long, requires = "bundle")]
    online: bool,
    /// Write a return request file for the vendor; the license stops working now. With a bundle
    /// that has a `files` plugin, the file is that plugin's.
    #[arg(long, requires = "request_out")]
    manual: bool,
    /// Where to write the request file.
    #[arg(long, value_name = "FILE", requires = "manual")]
    request_out: Option<PathBuf>,
    /// Load the vendor's return response file (with a bundle that has a `files` plugin, read
    /// through that plugin).
    #[arg(long, value_name = "FILE")]
    load_response: Option<PathBuf>,
    #[command(flatten)]
    text: super::text::TextArgs,
}

/// How to activate, as the arguments say.
enum Activation {
    Online {
        /// `None`: the bundle's server.
        server: Option<String>,
        key: String,
        edition: String,
    },
    Request {
        key: String,
        edition: String,
        out: PathBuf,
    },
    Load(PathBuf),
    /// A text request block through the transport plugin in the directory.
    Text {
        plugin: PathBuf,
        key: String,
        edition: String,
    },
    /// The response block, from standard input.
    TextResponse(PathBuf),
}

/// How to return, as the arguments say.
enum Return {
    /// `None`: the bundle's server.
    Online(Option<String>),
    Request(PathBuf),
    Load(PathBuf),
    Text(PathBuf),
    TextResponse(PathBuf),
}

impl ActivateArgs {
    /// The one activation the arguments ask for (clap's groups admit no other combination).
    fn activation(self) -> Result<(ClientArgs, Activation), CliError> {
        let online = self.online || self.server.is_some();
        let text = (self.text.text_plugin, self.text.text_response);
        let activation = match (
            online,
            self.manual,
            self.key,
            self.edition,
            self.request_out,
            self.load_response,
            text,
        ) {
            (true, false, Some(key), Some(edition), None, None, (None, false)) => {
                Activation::Online {
                    server: self.server,
                    key,
                    edition,
                }
            }
            (false, true, Some(key), Some(edition), Some(out), None, (None, false)) => {
                Activation::Request { key, edition, out }
            }
            (false, false, None, None, None, Some(response), (None, false)) => {
                Activation::Load(response)
            }
            (false, false, Some(key), Some(edition), None, None, (Some(plugin), false)) => {
                Activation::Text {
                    plugin,
                    key,
                    edition,
                }
            }
            (false, false, None, None, None, None, (Some(plugin), true)) => {
                Activation::TextResponse(plugin)
            }
            _ => {
                return Err(usage_error(
                    "pass --server URL --key K --edition E, --manual --key K --edition E \
                     --request-out FILE, --load-response FILE, --text-plugin DIR --key K \
                     --edition E, or --text-plugin DIR --text-response",
                ))
            }
        };
        Ok((self.client, activation))
    }
}

impl ReturnArgs {
    /// The one return the arguments ask for (clap's group admits no other combination).
    fn way(self) -> Result<(ClientArgs, Return), CliError> {
        let online = self.online || self.server.is_some();
        let way = match (
            online,
            self.manual,
            self.request_out,
            self.load_response,
            (self.text.text_plugin, self.text.text_response),
        ) {
            (true, false, None, None, (None, false)) => Return::Online(self.server),
            (false, true, Some(out), None, (None, false)) => Return::Request(out),
            (false, false, None, Some(response), (None, false)) => Return::Load(response),
            (false, false, None, None, (Some(plugin), false)) => Return::Text(plugin),
            (false, false, None, None, (Some(plugin), true)) => Return::TextResponse(plugin),
            _ => {
                return Err(usage_error(
                    "pass --server URL, --manual --request-out FILE, --load-response FILE, \
                     --text-plugin DIR, or --text-plugin DIR --text-response",
                ))
            }
        };
        Ok((self.client, way))
    }
}

/// Runs a trial command.
pub(crate) fn run_trial(
    connection: &ConnectionArgs,
    command: TrialCommand,
) -> Result<Outcome, CliError> {
    match command {
        TrialCommand::Start {
            client,
            server,
            edition,
        } => {
            let client = client.open()?;
            let mut transport = connection.transport(&client, server.url.as_deref())?;
            decided(client.start_trial(&mut *transport, &edition, chrono::Utc::now()))
        }
    }
}

/// Runs `licet validate`.
pub(crate) fn run_validate(
    connection: &ConnectionArgs,
    args: ValidateArgs,
) -> Result<Outcome, CliError> {
    let client = args.client.open()?;
    let mut transport = connection.transport(&client, args.server.url.as_deref())?;
    decided(client.validate(&mut *transport, chrono::Utc::now()))
}

/// Runs `licet activate`.
pub(crate) fn run_activate(
    connection: &ConnectionArgs,
    args: ActivateArgs,
) -> Result<Outcome, CliError> {
    let (client, activation) = args.activation()?;
    let client = client.open()?;
    let now = chrono::Utc::now();
    match activation {
        Activation::Online {
            server,
            key,
            edition,
        } => {
            let mut transport = connection.transport(&client, server.as_deref())?;
            decided(client.activate(&mut *transport, &key, &edition, now))
        }
        Activation::Load(response) => {
            let file = read_response_file(&client, &response)?;
            match client.load_manual_activation_file(&file, now) {
                Ok(report) => {
                    emit(&format!("activated from {}\n", response.display()));
                    emit(&report_line(&report));
                    Ok(Outcome::decided(report.decision.is_allowed()))
                }
                Err(error) => refused_file(error),
            }
        }
        Activation::Text {
            plugin,
            key,
            edition,
        } => super::text::request(&client, &plugin, |plugin| {
            client.begin_text_activation(plugin, &key, &edition, now)
        }),
        Activation::TextResponse(plugin) => super::text::activation_response(&client, &plugin, now),
        Activation::Request { key, edition, out } => {
            write_new_file(&out, || {
                Ok(client.manual_activation_file(&key, &edition, now)?)
            })?;
            emit(&format!(
                "activation request written to {}{}; send it to the vendor and load the response \
                 with `licet activate --load-response FILE`\n",
                out.display(),
                carried_by(&client)?
            ));
            Ok(Outcome::Allowed)
        }
    }
}

/// Runs `licet return`.
pub(crate) fn run_return(
    connection: &ConnectionArgs,
    args: ReturnArgs,
) -> Result<Outcome, CliError> {
    let (client, way) = args.way()?;
    let client = client.open()?;
    let now = chrono::Utc::now();
    match way {
        Return::Online(server) => {
            let mut transport = connection.transport(&client, server.as_deref())?;
            decided(client.return_license(&mut *transport, now))
        }
        Return::Load(response) => {
            let file = read_response_file(&client, &response)?;
            match client.load_manual_return_file(&file, now) {
                Ok(()) => {
                    emit(&format!(
                        "returned: the license was removed from this machine ({})\n",
                        response.display()
                    ));
                    Ok(Outcome::Allowed)
                }
                Err(error) => refused_file(error),
            }
        }
        Return::Text(plugin) => super::text::request(&client, &plugin, |plugin| {
            client.begin_text_return(plugin, now)
        }),
        Return::TextResponse(plugin) => super::text::return_response(&client, &plugin, now),
        Return::Request(out) => {
            write_new_file(&out, || Ok(client.manual_return_file(now)?))?;
            emit(&format!(
                "return request written to {}{}; the license is not used any more. Send the file \
                 to the vendor and load the response with `licet return --load-response FILE`\n",
                out.display(),
                carried_by(&client)?
            ));
            Ok(Outcome::Allowed)
        }
    }
}

/// The largest response file read through the bundle's file transport: an exchange file's
/// limit, with room for the plugin's framing (base64 and its lines).
const MAX_CARRIED_FILE_BYTES: usize = 2 * licet_engine::exchange::MAX_FILE_BYTES;

/// ` through the bundle's file transport `NAME`` when the client's bundle has a `files` plugin.
fn carried_by(client: &Client) -> Result<String, CliError> {
    Ok(client.file_transport()?.map_or_else(String::new, |plugin| {
        format!(
            " through the bundle's file transport `{}`",
            plugin.manifest().name
        )
    }))
}

/// A response file the bundle's file transport refused (not its response file) is a denial with
/// `RESPONSE_FILE_INVALID`; a rejected exchange file one with its code.
fn refused_file(error: ClientError) -> Result<Outcome, CliError> {
    carried_failure(error, RESPONSE_FILE_INVALID)
}

/// Reads a response file: an exchange file, or with a bundle's `files` plugin that plugin's
/// response file, refusing anything larger than either may be before reading it.
fn read_response_file(client: &Client, path: &Path) -> Result<Vec<u8>, CliError> {
    let max = match client.file_transport()? {
        Some(_) => MAX_CARRIED_FILE_BYTES,
        None => licet_engine::exchange::MAX_FILE_BYTES,
    };
    let size = std::fs::metadata(path)
        .map_err(CliError::file("read", path))?
        .len();
    if size > max as u64 {
        return Err(CliError::TooLarge {
            path: path.to_path_buf(),
            max,
        });
    }
    std::fs::read(path).map_err(CliError::file("read", path))
}

/// Creates `path` (never replacing a file), then makes the request and writes it; the request
/// is only recorded as pending once the file can be written.
fn write_new_file(
    path: &Path,
    request: impl FnOnce() -> Result<Vec<u8>, CliError>,
) -> Result<(), CliError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(CliError::file("create", path))?;
    let text = match request() {
        Ok(text) => text,
        Err(error) => {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(error);
        }
    };
    file.write_all(&text)
        .and_then(|()| file.sync_all())
        .map_err(CliError::file("write", path))
}
