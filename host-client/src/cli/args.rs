//! What many commands share: where the product's license lives ([`ClientArgs`]), the server to
//! ask ([`ServerArgs`]) and how it is reached ([`ConnectionArgs`]).

use std::path::PathBuf;

use licet_plugin_host::http::{HttpError, ServerUrl};

use super::CliError;
use crate::{Client, HttpTransport};

/// How `--server` is reached: HTTPS by default (plain HTTP on loopback), with an optional pinned
/// certificate.
#[derive(Debug, clap::Args)]
pub(crate) struct ConnectionArgs {
    /// Allow plain `http://` to a server that is not on this machine (license keys then travel in
    /// clear text: only on a trusted network).
    #[arg(long, global = true)]
    pub allow_plain_http: bool,
    /// Trust only this certificate (DER or PEM: the server's own, or the CA that issued it) for
    /// the server's TLS certificate, instead of the public roots.
    #[arg(long, global = true, value_name = "FILE")]
    pub server_certificate: Option<PathBuf>,
}

/// The license server to ask.
#[derive(Debug, clap::Args)]
pub(crate) struct ServerArgs {
    /// The server: `https://host:port`, `http://host:port`, or `host:port` (its address and
    /// license port: HTTPS, or plain HTTP on loopback).
    #[arg(long = "server", value_name = "URL", value_parser = server_url)]
    pub url: String,
}

/// Where the product's license lives and what verifies it.
#[derive(Debug, clap::Args)]
pub(crate) struct ClientArgs {
    /// Directory of the signed local state (default: a per-user directory).
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The product's policy file.
    #[arg(long, value_name = "FILE")]
    pub policy: PathBuf,
    /// The vendor's public key file (`vendor.pub`).
    #[arg(long, value_name = "FILE")]
    pub vendor_key: PathBuf,
    /// The vendor-signed dongle plugin directory: USB dongles are checked through it.
    #[arg(long, value_name = "DIR")]
    pub dongle_plugin: Option<PathBuf>,
    /// A software dongle file to use instead of USB devices (development and tests).
    #[arg(long, value_name = "FILE", requires = "dongle_plugin")]
    pub software_dongle: Option<PathBuf>,
}

/// A server address as `--server` takes it, checked when the command line is parsed.
pub(crate) fn server_url(text: &str) -> Result<String, HttpError> {
    ServerUrl::parse(text)?;
    Ok(text.to_owned())
}

impl ClientArgs {
    /// Opens the client these arguments describe.
    pub fn open(&self) -> Result<Client, CliError> {
        let state_dir = match &self.state_dir {
            Some(dir) => dir.clone(),
            None => default_state_dir()?,
        };
        let client = Client::open(&state_dir, &self.policy, &self.vendor_key)?;
        Ok(match &self.dongle_plugin {
            Some(plugin) => client.with_dongle_plugin(plugin, self.software_dongle.as_deref())?,
            None => client,
        })
    }
}

impl ConnectionArgs {
    /// The HTTP transport to `url` for the client's product.
    pub fn transport(&self, client: &Client, url: &str) -> Result<HttpTransport, CliError> {
        self.connect(url, &client.policy().product.id)
    }

    /// The HTTP transport to `url` for `product`, as these arguments ask.
    pub fn connect(&self, url: &str, product: &str) -> Result<HttpTransport, CliError> {
        let mut transport = HttpTransport::new(url, product)?;
        if self.allow_plain_http {
            transport = transport.allow_plain_http();
        }
        if let Some(path) = &self.server_certificate {
            let bytes =
                std::fs::read(path).map_err(CliError::file("read the server certificate", path))?;
            transport = transport.with_pinned_certificate_bytes(&bytes)?;
        }
        Ok(transport)
    }
}

/// The per-user state directory: `licet` under `%LOCALAPPDATA%` on Windows,
/// `~/Library/Application Support/licet` on macOS, else `$XDG_DATA_HOME/licet` or
/// `~/.local/share/licet`.
fn default_state_dir() -> Result<PathBuf, CliError> {
    let var = |name: &str| std::env::var_os(name).filter(|value| !value.is_empty());
    let base = if cfg!(windows) {
        var("LOCALAPPDATA").map(PathBuf::from)
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|home| PathBuf::from(home).join("Library/Application Support"))
    } else {
        var("XDG_DATA_HOME")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|home| PathBuf::from(home).join(".local/share")))
    };
    base.map(|base| base.join("licet"))
        .ok_or(CliError::NoStateDir)
}
