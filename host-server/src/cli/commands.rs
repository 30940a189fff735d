//! The command line of `licet-server admin ...`: its options, commands and the parsers of their
//! values (features, counters, times). [`super::admin`] turns a parsed command into its request.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand, ValueEnum};

use super::client::{DEFAULT_SERVER, SERVER_ENV};

/// `licet-server admin`: the options every administration command takes, and the command.
#[derive(Debug, Args)]
#[command(
    after_help = "The administrator token is read from --token-file FILE or the environment \
    variable LICET_ADMIN_TOKEN, never from the command line.\n\
    Exit status: 0 done, 1 refused by the server (CODE: message), 2 wrong command line or no \
    usable token, 3 the server cannot be reached or is not a Licet server."
)]
pub struct AdminArgs {
    /// The server: https://HOST:PORT, http://HOST:PORT (loopback only) or HOST:PORT (HTTPS, or
    /// plain HTTP on loopback).
    #[arg(long, value_name = "URL", env = SERVER_ENV, default_value = DEFAULT_SERVER, global = true, help_heading = "Server options")]
    pub server: String,
    /// A file holding the administrator token (otherwise the environment variable
    /// LICET_ADMIN_TOKEN).
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Server options"
    )]
    pub token_file: Option<PathBuf>,
    /// Allow plain http:// to a server that is not on this machine (the token then travels in
    /// clear text: only on a trusted network). Without it, plain HTTP off loopback is refused
    /// before connecting.
    #[arg(long, global = true, help_heading = "Server options")]
    pub allow_plain_http: bool,
    /// Trust only this certificate (DER or PEM: the server's own, or the CA that issued it) for
    /// the server's TLS certificate, instead of the public roots.
    #[arg(
        long,
        value_name = "FILE",
        global = true,
        help_heading = "Server options"
    )]
    pub server_certificate: Option<PathBuf>,
    /// How long to wait for the server (connecting, and each read and write), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600), global = true, help_heading = "Server options")]
    pub timeout: u64,
    /// Print the API's JSON answer instead of a table.
    #[arg(long, global = true, help_heading = "Server options")]
    pub json: bool,
    /// Refused: a token on the command line would stay in the shell's history.
    #[arg(long, value_name = "TOKEN", num_args = 0..=1, hide = true, global = true)]
    pub token: Option<Option<String>>,
    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The administration commands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// The products this server licenses: model, editions, default features and counters,
    /// license types.
    Products,
    /// Administrator tokens.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// Client accounts (standard model).
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Orders of clients (standard model).
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// License keys: list, show, issue, extend, revoke, remove activations, release seats.
    #[command(subcommand)]
    Licenses(LicensesCommand),
    /// Serial numbers of web-model products.
    #[command(subcommand)]
    Serials(SerialsCommand),
    /// Seats held and borrowed now.
    #[command(subcommand)]
    Seats(SeatsCommand),
    /// The audit log, oldest first: every decision and every administrator change.
    Audit {
        /// Only the entries about this license key.
        #[arg(long, value_name = "KEY")]
        license: Option<String>,
        /// Only the entries after this one (its ID; paging).
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
        /// At most this many entries (1 to 1000; default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
}

/// `admin tokens ...`.
#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Create an administrator token (shown once).
    Create {
        /// The name of its holder (shown in the audit log).
        name: String,
    },
}

/// `admin clients ...`.
#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// List the clients, ordered by identifier.
    List {
        /// Only the clients after this one (its identifier; paging).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        /// At most this many (1 to 1000; default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
    /// Show one client.
    Show {
        /// The client identifier.
        id: String,
    },
    /// Create a client and its token (shown once).
    Create {
        /// The client identifier: letters, digits, `-`, `_`, `.`.
        id: String,
        /// Its display name.
        #[arg(long)]
        name: String,
    },
    /// Replace a client's token (shown once; the old one stops working).
    Token {
        /// The client identifier.
        id: String,
    },
    /// Set a client's password of the client interface (10 to 256 characters), read from a file
    /// or standard input, or remove it.
    Password {
        /// The client identifier.
        id: String,
        /// The file whose first line is the password; `-` reads standard input.
        #[arg(
            long,
            value_name = "FILE",
            required_unless_present = "clear",
            conflicts_with = "clear"
        )]
        password_file: Option<PathBuf>,
        /// Remove the password: the client signs in with its token only.
        #[arg(long)]
        clear: bool,
    },
}

/// Features and counters to set.
#[derive(Debug, Clone, Default, Args)]
pub struct Settings {
    /// Set a feature: NAME=on or NAME=off (repeatable).
    #[arg(long = "feature", value_name = "NAME=on|off", value_parser = parse_feature)]
    pub features: Vec<(String, bool)>,
    /// Set a counter: NAME=N (repeatable).
    #[arg(long = "counter", value_name = "NAME=N", value_parser = parse_counter)]
    pub counters: Vec<(String, i64)>,
}

impl Settings {
    pub(super) fn is_empty(&self) -> bool {
        self.features.is_empty() && self.counters.is_empty()
    }

    pub(super) fn features(&self) -> BTreeMap<&str, bool> {
        self.features
            .iter()
            .map(|(name, on)| (name.as_str(), *on))
            .collect()
    }

    pub(super) fn counters(&self) -> BTreeMap<&str, i64> {
        self.counters
            .iter()
            .map(|(name, value)| (name.as_str(), *value))
            .collect()
    }
}

/// `admin orders ...`.
#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// List the orders, ordered by identifier.
    List {
        /// Only this client's orders.
        #[arg(long, value_name = "ID")]
        client: Option<String>,
        /// Only the orders after this one (its identifier; paging).
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        /// At most this many (1 to 1000; default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
    /// Show one order.
    Show {
        /// The order identifier.
        id: String,
    },
    /// Create an order for a client.
    Create {
        /// The order identifier (generated when absent).
        #[arg(long)]
        id: Option<String>,
        /// The client ordering.
        #[arg(long, value_name = "ID")]
        client: String,
        /// The product ordered.
        #[arg(long)]
        product: String,
        /// Features and counters to set.
        #[command(flatten)]
        settings: Settings,
    },
    /// Set order-level features and counters (merged with the order's).
    Update {
        /// The order identifier.
        id: String,
        /// Features and counters to set.
        #[command(flatten)]
        settings: Settings,
    },
}

/// The term of new licenses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TermArg {
    /// No end.
    Perpetual,
    /// Until --ends-at.
    Rental,
}

/// What every issue takes: product, type, edition, term, seats, features, ...
#[derive(Debug, Clone, Args)]
pub struct IssueArgs {
    /// The product.
    #[arg(long)]
    pub product: String,
    /// The license type (a key of the policy's `license_types`, e.g. `network-key`).
    #[arg(long = "type", value_name = "LICENSE_TYPE")]
    pub license_type: String,
    /// The edition.
    #[arg(long)]
    pub edition: String,
    /// The version (the policy's when absent).
    #[arg(long)]
    pub version: Option<String>,
    /// The term: perpetual (default) or rental (with --ends-at).
    #[arg(long, value_enum)]
    pub term: Option<TermArg>,
    /// The end of a rental: RFC 3339 (2027-06-30T00:00:00Z) or a date (00:00 UTC); implies
    /// --term rental.
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub ends_at: Option<DateTime<Utc>>,
    /// Seats of a network license (the license type's default when absent).
    #[arg(long, value_name = "N")]
    pub seats: Option<u32>,
    /// The dongle serial of a dongle license.
    #[arg(long, value_name = "SERIAL")]
    pub dongle: Option<String>,
    /// The key to use (issuing one).
    #[arg(long)]
    pub key: Option<String>,
    /// How many to issue (1 to 1000; default 1).
    #[arg(long, value_name = "N")]
    pub count: Option<u32>,
    /// Features and counters to set.
    #[command(flatten)]
    pub settings: Settings,
}

/// `admin licenses ...`.
#[derive(Debug, Subcommand)]
pub enum LicensesCommand {
    /// List licenses, ordered by key.
    List {
        /// Only this product's.
        #[arg(long)]
        product: Option<String>,
        /// Only this client's (directly or through its orders).
        #[arg(long, value_name = "ID")]
        client: Option<String>,
        /// Only this order's.
        #[arg(long, value_name = "ID")]
        order: Option<String>,
        /// Only the keys after this one (paging).
        #[arg(long, value_name = "KEY")]
        after: Option<String>,
        /// At most this many (1 to 1000; default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
    /// Show one license with its owner, activations and seats.
    Show {
        /// The license key.
        key: String,
    },
    /// Issue license keys (standard model: for an order or a client).
    Issue {
        /// What to issue.
        #[command(flatten)]
        issue: IssueArgs,
        /// The order they belong to (their client is the order's).
        #[arg(long, value_name = "ID")]
        order: Option<String>,
        /// The client owning them outside any order.
        #[arg(long, value_name = "ID")]
        client: Option<String>,
    },
    /// Extend a license: a new expiry, features, counters or seats (an engine decision: the
    /// policy may refuse it).
    Extend {
        /// The license key.
        key: String,
        /// The new expiry: RFC 3339 or a date (00:00 UTC).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        expires_at: Option<DateTime<Utc>>,
        /// The new seat count of a network license.
        #[arg(long, value_name = "N")]
        seats: Option<u32>,
        /// Features and counters to set.
        #[command(flatten)]
        settings: Settings,
    },
    /// Revoke a license (an engine decision; certificates stop validating).
    Revoke {
        /// The license key.
        key: String,
    },
    /// List a license's activations, ordered by ID.
    Activations {
        /// The license key.
        key: String,
        /// Only the activations after this one (its ID; paging).
        #[arg(long, value_name = "ID")]
        after: Option<i64>,
        /// At most this many (1 to 1000; default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
    /// Remove an activation (limited licenses too); its ID is in `licenses show`.
    RemoveActivation {
        /// The license key.
        key: String,
        /// The activation's ID.
        id: i64,
    },
    /// Take a seat or a borrowed seat back from a session (force-release).
    ReleaseSeat {
        /// The license key.
        key: String,
        /// The session holding the seat.
        session: String,
    },
}

/// `admin serials ...`.
#[derive(Debug, Subcommand)]
pub enum SerialsCommand {
    /// Issue serial numbers of a web-model product.
    Issue {
        /// What to issue.
        #[command(flatten)]
        issue: IssueArgs,
    },
}

/// `admin seats ...`.
#[derive(Debug, Subcommand)]
pub enum SeatsCommand {
    /// List the seats held and borrowed now, ordered by license key then session; with
    /// `--license`, every lease of that license (lapsed ones until they are swept), by session.
    List {
        /// Only this product's.
        #[arg(long, conflicts_with = "license")]
        product: Option<String>,
        /// Only this license's.
        #[arg(long, value_name = "KEY")]
        license: Option<String>,
        /// Only the seats after this one (the cursor a previous page printed; paging).
        #[arg(long, value_name = "CURSOR")]
        after: Option<String>,
        /// At most this many (1 to 1000; default 100).
        #[arg(long, value_name = "N")]
        limit: Option<i64>,
    },
}

/// Parses `NAME=on|off` (also `true|false`, `yes|no`, `1|0`).
pub fn parse_feature(text: &str) -> Result<(String, bool), String> {
    let (name, value) = split_setting(text, "NAME=on|off")?;
    let on = match value.to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => true,
        "off" | "false" | "no" | "0" => false,
        _ => return Err(format!("`{value}` is not on or off (NAME=on|off)")),
    };
    Ok((name, on))
}

/// Parses `NAME=N`.
pub fn parse_counter(text: &str) -> Result<(String, i64), String> {
    let (name, value) = split_setting(text, "NAME=N")?;
    let count = value
        .parse::<i64>()
        .map_err(|_| format!("`{value}` is not a whole number (NAME=N)"))?;
    Ok((name, count))
}

fn split_setting(text: &str, shape: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("expected {shape}, not `{text}`")),
    }
}

/// Parses an RFC 3339 time, or a date `YYYY-MM-DD` (its 00:00 UTC).
pub fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map(|date| date.and_time(chrono::NaiveTime::MIN).and_utc())
        .map_err(|_| {
            format!("`{text}` is not a time (2027-06-30T00:00:00Z) or a date (2027-06-30)")
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_times_parse_as_documented() {
        assert_eq!(parse_feature("lisp=on").unwrap(), ("lisp".into(), true));
        assert_eq!(parse_feature("lisp=OFF").unwrap(), ("lisp".into(), false));
        assert!(parse_feature("lisp").is_err());
        assert!(parse_feature("=on").is_err());
        assert!(parse_feature("lisp=maybe").is_err());
        assert_eq!(
            parse_counter("plot-sheets=12").unwrap(),
            ("plot-sheets".into(), 12)
        );
        assert!(parse_counter("plot-sheets=many").is_err());
        assert_eq!(
            parse_time("2027-06-30").unwrap().to_rfc3339(),
            "2027-06-30T00:00:00+00:00"
        );
        assert_eq!(
            parse_time("2027-06-30T12:00:00+02:00")
                .unwrap()
                .to_rfc3339(),
            "2027-06-30T10:00:00+00:00"
        );
        assert!(parse_time("next week").is_err());
    }
}
