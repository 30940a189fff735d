//! `licet`: Licet's command line.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use licet_client::client::{SeatHold, SeatHolder, SeatLoss};
use licet_client::keys::{self, KeyPair};
use licet_client::policy_tools::{self, TestRun};
use licet_client::{CheckReport, Client, ClientError, HttpTransport};
use licet_engine::Decision;

#[derive(Debug, Parser)]
#[command(name = "licet", version, about = "Licet license policy engine")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    connection: ConnectionArgs,
}

/// How `--server` is reached: HTTPS by default (plain HTTP on loopback), with an optional pinned
/// certificate.
#[derive(Debug, clap::Args)]
struct ConnectionArgs {
    /// Allow plain `http://` to a server that is not on this machine (license keys then travel in
    /// clear text: only on a trusted network).
    #[arg(long, global = true)]
    allow_plain_http: bool,
    /// Trust only this certificate (DER or PEM: the server's own, or the CA that issued it) for
    /// the server's TLS certificate, instead of the public roots.
    #[arg(long, global = true, value_name = "FILE")]
    server_certificate: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check policies and run their scenario tests.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Manage vendor signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Check that the product may run on this machine now (the start-up check).
    Check {
        #[command(flatten)]
        client: ClientArgs,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Read and manage the license on this machine.
    #[command(subcommand)]
    License(LicenseCommand),
    /// Start the product's trial on this machine (online).
    #[command(subcommand)]
    Trial(TrialCommand),
    /// Activate a license key on this machine, online or by request and response files.
    Activate {
        #[command(flatten)]
        client: ClientArgs,
        /// Activate online with the server at URL (`https://host:port`, `http://host:port`, or `host:port`).
        #[arg(
            long,
            value_name = "URL",
            requires_all = ["key", "edition"],
            conflicts_with_all = ["manual", "load_response"]
        )]
        server: Option<String>,
        /// Write an activation request file for the vendor (no connection needed).
        #[arg(long, requires_all = ["key", "edition", "request_out"], conflicts_with = "load_response")]
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
        /// Load the vendor's activation response file.
        #[arg(long, value_name = "FILE")]
        load_response: Option<PathBuf>,
    },
    /// Validate the license (or trial) on this machine with the license server.
    Validate {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
    /// Return the license on this machine, online or by request and response files.
    Return {
        #[command(flatten)]
        client: ClientArgs,
        /// Return online to the server at URL (`https://host:port`, `http://host:port`, or `host:port`).
        #[arg(long, value_name = "URL", conflicts_with_all = ["manual", "load_response"])]
        server: Option<String>,
        /// Write a return request file for the vendor; the license stops working now.
        #[arg(long, requires = "request_out", conflicts_with = "load_response")]
        manual: bool,
        /// Where to write the request file.
        #[arg(long, value_name = "FILE", requires = "manual")]
        request_out: Option<PathBuf>,
        /// Load the vendor's return response file.
        #[arg(long, value_name = "FILE")]
        load_response: Option<PathBuf>,
    },
    /// Hold network seats of a license server.
    #[command(subcommand)]
    Seat(SeatCommand),
    /// The USB dongle on this machine.
    #[command(subcommand)]
    Dongle(DongleCommand),
    /// Borrow a network seat until a date for offline use, or return it early (`borrow return`).
    #[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
    Borrow {
        #[command(subcommand)]
        action: Option<BorrowCommand>,
        #[command(flatten)]
        client: Option<ClientArgs>,
        /// The license server: `https://host:port`, `http://host:port`, or `host:port` (its
        /// address and license port: HTTPS, or plain HTTP on loopback).
        #[arg(long = "server", value_name = "URL", required = true)]
        url: Option<String>,
        /// The network license key.
        #[arg(long, required = true)]
        key: Option<String>,
        /// The edition to run.
        #[arg(long, required = true)]
        edition: Option<String>,
        /// When the borrow ends (`YYYY-MM-DD`, at 00:00 UTC); the seat then comes back by itself.
        #[arg(long, value_name = "YYYY-MM-DD", required = true)]
        until: Option<chrono::NaiveDate>,
    },
}

#[derive(Debug, Subcommand)]
enum SeatCommand {
    /// Show what a license server serves: its network licenses with their seats.
    Query {
        #[command(flatten)]
        server: ServerArgs,
        /// Print the answer as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check out a seat and hold it with heartbeats until standard input closes or the process is
    /// interrupted (Ctrl-C), terminated or hung up, then release it. A seat the license server
    /// released (or let lapse) ends the hold with its denial.
    Hold {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        server: ServerArgs,
        /// The network license key.
        #[arg(long)]
        key: String,
        /// The edition to run.
        #[arg(long)]
        edition: String,
    },
}

#[derive(Debug, Subcommand)]
enum DongleCommand {
    /// Check which dongle is present: it must sign a fresh challenge (needs --dongle-plugin).
    Status {
        #[command(flatten)]
        client: ClientArgs,
    },
}

#[derive(Debug, Subcommand)]
enum BorrowCommand {
    /// Return the borrowed seat to the license server early.
    Return {
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        server: ServerArgs,
    },
}

#[derive(Debug, Subcommand)]
enum TrialCommand {
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

/// The license server to ask.
#[derive(Debug, clap::Args)]
struct ServerArgs {
    /// The server: `https://host:port`, `http://host:port`, or `host:port` (its address and
    /// license port: HTTPS, or plain HTTP on loopback).
    #[arg(long = "server", value_name = "URL")]
    url: String,
}

/// Where the product's license lives and what verifies it.
#[derive(Debug, clap::Args)]
struct ClientArgs {
    /// Directory of the signed local state (default: a per-user directory).
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// The product's policy file.
    #[arg(long, value_name = "FILE")]
    policy: PathBuf,
    /// The vendor's public key file (`vendor.pub`).
    #[arg(long, value_name = "FILE")]
    vendor_key: PathBuf,
    /// The vendor-signed dongle plugin directory: USB dongles are checked through it.
    #[arg(long, value_name = "DIR")]
    dongle_plugin: Option<PathBuf>,
    /// A software dongle file to use instead of USB devices (development and tests).
    #[arg(long, value_name = "FILE", requires = "dongle_plugin")]
    software_dongle: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum LicenseCommand {
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
    let connection = &cli.connection;
    match cli.command {
        Command::Check { client, json } => {
            let client = open(&client)?;
            let report = client.check()?;
            if json {
                emit(&format!("{}\n", report_json(&report)));
            } else {
                emit(&report_line(&report));
            }
            // The decision stands; a failure to record the time seen is only reported.
            if let Err(error) = client.flush() {
                eprintln!("warning: {error}");
            }
            Ok(report.decision.is_allowed())
        }
        Command::Trial(TrialCommand::Start {
            client,
            server,
            edition,
        }) => {
            let client = open(&client)?;
            let mut transport = transport(connection, &client, &server.url)?;
            decided(client.start_trial(&mut transport, &edition, chrono::Utc::now()))
        }
        Command::Validate { client, server } => {
            let client = open(&client)?;
            let mut transport = transport(connection, &client, &server.url)?;
            decided(client.validate(&mut transport, chrono::Utc::now()))
        }
        Command::Activate {
            client,
            server: Some(server),
            key: Some(key),
            edition: Some(edition),
            ..
        } => {
            let client = open(&client)?;
            let mut transport = transport(connection, &client, &server)?;
            decided(client.activate(&mut transport, &key, &edition, chrono::Utc::now()))
        }
        Command::Return {
            client,
            server: Some(server),
            ..
        } => {
            let client = open(&client)?;
            let mut transport = transport(connection, &client, &server)?;
            decided(client.return_license(&mut transport, chrono::Utc::now()))
        }
        Command::Activate {
            client,
            server: _,
            manual: _,
            key,
            edition,
            request_out,
            load_response,
        } => {
            let client = open(&client)?;
            let now = chrono::Utc::now();
            match (load_response, key, edition, request_out) {
                (Some(response), ..) => {
                    let file = read_exchange_file(&response)?;
                    match client.load_activation_response(&file, now) {
                        Ok(report) => {
                            emit(&format!("activated from {}\n", response.display()));
                            emit(&report_line(&report));
                            Ok(report.decision.is_allowed())
                        }
                        Err(error) => exchange_failure(error),
                    }
                }
                (None, Some(key), Some(edition), Some(out)) => {
                    write_new_file(&out, || {
                        Ok(client.begin_manual_activation(&key, &edition, now)?)
                    })?;
                    emit(&format!(
                        "activation request written to {}; send it to the vendor and load the \
                         response with `licet activate --load-response FILE`\n",
                        out.display()
                    ));
                    Ok(true)
                }
                _ => anyhow::bail!(
                    "pass --server URL --key K --edition E, --manual --key K --edition E --request-out \
                     FILE, or --load-response FILE"
                ),
            }
        }
        Command::Return {
            client,
            server: _,
            manual: _,
            request_out,
            load_response,
        } => {
            let client = open(&client)?;
            let now = chrono::Utc::now();
            match (load_response, request_out) {
                (Some(response), _) => {
                    let file = read_exchange_file(&response)?;
                    match client.load_return_response(&file, now) {
                        Ok(()) => {
                            emit(&format!(
                                "returned: the license was removed from this machine ({})\n",
                                response.display()
                            ));
                            Ok(true)
                        }
                        Err(error) => exchange_failure(error),
                    }
                }
                (None, Some(out)) => {
                    write_new_file(&out, || Ok(client.begin_manual_return(now)?))?;
                    emit(&format!(
                        "return request written to {}; the license is not used any more. Send \
                         the file to the vendor and load the response with \
                         `licet return --load-response FILE`\n",
                        out.display()
                    ));
                    Ok(true)
                }
                _ => anyhow::bail!(
                    "pass --server URL, --manual --request-out FILE, or --load-response FILE"
                ),
            }
        }
        Command::Seat(SeatCommand::Query { server, json }) => {
            // The query names no product: it lists every license the server serves.
            let query = connect(connection, &server.url, "")?.query_seats()?;
            if json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&query)?));
            } else {
                emit(&query.to_table());
            }
            Ok(true)
        }
        Command::Seat(SeatCommand::Hold {
            client,
            server,
            key,
            edition,
        }) => {
            let client = std::sync::Arc::new(open(&client)?);
            let transport = Box::new(transport(connection, &client, &server.url)?);
            let holder = match SeatHolder::checkout(client, transport, &key, &edition) {
                Ok(SeatHold::Held(holder)) => holder,
                Ok(SeatHold::Denied(decision)) => return Ok(online_outcome(&decision)),
                Err(error) => return decided(Err(error)),
            };
            online_outcome(holder.decision());
            let (ended, end) = std::sync::mpsc::channel();
            let lost = ended.clone();
            holder.on_loss(move |loss| {
                let _ = lost.send(EndOfHold::Lost(loss.clone()));
            });
            match wait_for_end_of_hold(ended, &end)? {
                EndOfHold::Stopped(stop) => {
                    eprintln!("{stop}: releasing the seat");
                    decided(holder.release())
                }
                EndOfHold::Lost(loss) => {
                    emit(&format!(
                        "{}: the seat of session {} was released by the license server: {}\n",
                        loss.decision.code, loss.session, loss.decision.message
                    ));
                    Ok(false)
                }
            }
        }
        Command::Dongle(DongleCommand::Status { client }) => {
            if client.dongle_plugin.is_none() {
                anyhow::bail!("pass --dongle-plugin DIR (the vendor-signed dongle plugin)");
            }
            match open(&client)?.dongle_serial() {
                Ok(serial) => {
                    emit(&format!(
                        "DONGLE_PRESENT: dongle `{serial}` answered a fresh challenge\n"
                    ));
                    Ok(true)
                }
                Err(error) => {
                    emit(&format!("DONGLE_ABSENT: {error}\n"));
                    Ok(false)
                }
            }
        }
        Command::Borrow {
            action: Some(BorrowCommand::Return { client, server }),
            ..
        } => {
            let client = open(&client)?;
            let mut transport = transport(connection, &client, &server.url)?;
            decided(client.return_borrowed(&mut transport, chrono::Utc::now()))
        }
        Command::Borrow {
            action: None,
            client: Some(client),
            url: Some(url),
            key: Some(key),
            edition: Some(edition),
            until: Some(until),
        } => {
            let client = open(&client)?;
            let mut transport = transport(connection, &client, &url)?;
            let until = until.and_time(chrono::NaiveTime::MIN).and_utc();
            decided(client.borrow(&mut transport, &key, &edition, until, chrono::Utc::now()))
        }
        Command::Borrow { .. } => {
            anyhow::bail!("pass --server URL --key K --edition E --until YYYY-MM-DD")
        }
        Command::License(LicenseCommand::Info { client, json }) => {
            let info = open(&client)?.info()?;
            if json {
                emit(&format!("{}\n", serde_json::to_string_pretty(&info)?));
            } else {
                emit(&info.to_table());
            }
            Ok(true)
        }
        Command::License(LicenseCommand::Install { client, file }) => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read `{}`", file.display()))?;
            let report = open(&client)?.install_certificate(&text, chrono::Utc::now())?;
            emit(&format!("installed: {}\n", file.display()));
            emit(&report_line(&report));
            Ok(report.decision.is_allowed())
        }
        Command::License(LicenseCommand::Language { client, language }) => {
            open(&client)?.set_language(&language, chrono::Utc::now())?;
            emit(&format!("language: {language}\n"));
            Ok(true)
        }
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

/// The HTTP transport to `url` for the client's product.
fn transport(
    connection: &ConnectionArgs,
    client: &Client,
    url: &str,
) -> anyhow::Result<HttpTransport> {
    connect(connection, url, &client.policy().product.id)
}

/// The HTTP transport to `url` for `product`, as `connection` asks.
fn connect(connection: &ConnectionArgs, url: &str, product: &str) -> anyhow::Result<HttpTransport> {
    let mut transport = HttpTransport::new(url, product)?;
    if connection.allow_plain_http {
        transport = transport.allow_plain_http();
    }
    if let Some(path) = &connection.server_certificate {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the server certificate `{}`", path.display()))?;
        transport = transport.with_pinned_certificate_bytes(&bytes)?;
    }
    Ok(transport)
}

/// Prints the server's decision as `CODE: sentence`; whether it allowed.
fn online_outcome(decision: &Decision) -> bool {
    emit(&format!("{}: {}\n", decision.code, decision.message));
    decision.is_allowed()
}

/// The outcome of an online operation: its decision, or a certificate refused with a code
/// (`CERTIFICATE_OUTSIDE_SERVER_LICENSE`, `SERVER_LICENSE_INVALID`, `SERVER_LICENSE_EXPIRED`),
/// printed as `CODE: sentence`, exit 1, with nothing stored. Any other failure is an error.
fn decided(result: Result<Decision, ClientError>) -> anyhow::Result<bool> {
    match result {
        Ok(decision) => Ok(online_outcome(&decision)),
        Err(ClientError::ServerLicense(error)) => {
            emit(&format!("{}: {error}\n", error.code()));
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}

fn open(args: &ClientArgs) -> anyhow::Result<Client> {
    let state_dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => default_state_dir()?,
    };
    let client = Client::open(&state_dir, &args.policy, &args.vendor_key)?;
    Ok(match &args.dongle_plugin {
        Some(plugin) => client.with_dongle_plugin(plugin, args.software_dongle.as_deref())?,
        None => client,
    })
}

/// The per-user state directory: `licet` under `%LOCALAPPDATA%` on Windows,
/// `~/Library/Application Support/licet` on macOS, else `$XDG_DATA_HOME/licet` or
/// `~/.local/share/licet`.
fn default_state_dir() -> anyhow::Result<PathBuf> {
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
        .context("no per-user data directory is known; pass --state-dir")
}

/// Reads an exchange file, refusing anything larger than any exchange file before reading it.
fn read_exchange_file(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read `{}`", path.display()))?
        .len();
    if size > licet_engine::exchange::MAX_FILE_BYTES as u64 {
        anyhow::bail!(
            "`{}` is larger than any exchange file ({} bytes)",
            path.display(),
            licet_engine::exchange::MAX_FILE_BYTES
        );
    }
    std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

/// Creates `path` (never replacing a file), then makes the request and writes it; the request
/// is only recorded as pending once the file can be written.
fn write_new_file(
    path: &std::path::Path,
    request: impl FnOnce() -> anyhow::Result<String>,
) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .with_context(|| format!("cannot create `{}`", path.display()))?;
    let text = match request() {
        Ok(text) => text,
        Err(error) => {
            drop(file);
            let _ = std::fs::remove_file(path);
            return Err(error);
        }
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write `{}`", path.display()))
}

/// A rejected response file is a denial (exit 1) with its code; anything else an error.
fn exchange_failure(error: licet_client::ClientError) -> anyhow::Result<bool> {
    match error.exchange_code() {
        Some(code) => {
            let message = match &error {
                licet_client::ClientError::Exchange(inner) => inner.to_string(),
                other => other.to_string(),
            };
            emit(&format!("{code}: {message}\n"));
            Ok(false)
        }
        None => Err(error.into()),
    }
}

fn report_line(report: &CheckReport) -> String {
    let decision = &report.decision;
    let mut line = format!("{}: {}\n", decision.code, decision.message);
    if report.validation_due && decision.is_allowed() {
        line.push_str("note: an online validation is due\n");
    }
    line
}

fn report_json(report: &CheckReport) -> serde_json::Value {
    serde_json::json!({
        "allowed": report.decision.is_allowed(),
        "code": report.decision.code,
        "rule": report.decision.rule,
        "message": report.decision.message,
        "trust": report.trust.as_str(),
        "validation_due": report.validation_due,
    })
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

/// What ended `licet seat hold`.
enum EndOfHold {
    /// Standard input closed or a stop signal came (which one).
    Stopped(&'static str),
    /// The license server no longer holds the seat.
    Lost(SeatLoss),
}

/// Blocks until standard input reaches its end, the process gets SIGINT (Ctrl-C), SIGTERM or
/// SIGHUP, or something else sends on `stopped` (the loss of the seat), and says which. The
/// signals are caught only from here on, so the seat they end is released before the process
/// exits.
fn wait_for_end_of_hold(
    stopped: std::sync::mpsc::Sender<EndOfHold>,
    stop: &std::sync::mpsc::Receiver<EndOfHold>,
) -> anyhow::Result<EndOfHold> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .context("cannot catch the stop signals")?;
    let on_signal = stopped.clone();
    std::thread::Builder::new()
        .name("licet-signals".to_owned())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = match signal {
                    SIGINT => "interrupted",
                    SIGTERM => "terminated",
                    _ => "hung up",
                };
                let _ = on_signal.send(EndOfHold::Stopped(name));
            }
        })
        .context("cannot start the signal thread")?;
    std::thread::Builder::new()
        .name("licet-stdin".to_owned())
        .spawn(move || {
            let _ = std::io::copy(&mut std::io::stdin().lock(), &mut std::io::sink());
            let _ = stopped.send(EndOfHold::Stopped("standard input closed"));
        })
        .context("cannot start the input thread")?;
    stop.recv()
        .context("the stop signal and input threads both ended")
}
