//! `licet-server`: the activation center and network license server.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use licet_engine::{Action, Actor};
use licet_server::config::{Config, ServerRole};
use licet_server::dongle::NoDongle;
use licet_server::license_server::activation::Revalidation;
use licet_server::license_server::{status, LicenseServer, NativeIdentity, ServedLicense};
use licet_server::logging::{self, LogFormat};
use licet_server::server::{
    build_state, configured_dongle, init, init_license_server, open_license_server, serve_metrics,
    serve_with_transports, shutdown_signal, ListenSettings,
};
use licet_server::service::RequestContext;
use licet_server::tls::TlsConfig;

/// Licet's activation center and network license server.
#[derive(Debug, Parser)]
#[command(name = "licet-server", version)]
struct Cli {
    /// Start with this configuration file.
    #[arg(long, value_name = "FILE", conflicts_with = "demo")]
    config: Option<PathBuf>,
    /// Start a demonstration server in DIR on SQLite (created on first use with a new vendor key,
    /// an administrator token printed once, and example licenses).
    #[arg(long, value_name = "DIR")]
    demo: Option<PathBuf>,
    /// Policy of the demonstration server (repeatable).
    #[arg(
        long = "policy",
        value_name = "FILE",
        default_value = "policies/gstarcad.yaml"
    )]
    policies: Vec<PathBuf>,
    /// Address of the demonstration server.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8440")]
    listen: String,
    /// Log format on standard error: `human` or `json` (default: `log_format` of the
    /// configuration, else `human`).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<LogFormat>,
    /// Log filter, e.g. `info` or `licet=debug,tower_http=debug` (default: `RUST_LOG`, else
    /// `info`).
    #[arg(long = "log", value_name = "FILTER")]
    log_filter: Option<String>,
    #[command(subcommand)]
    command: Option<Command>,
}

/// The role of a new server directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum RoleArg {
    /// The vendor's server, with the vendor key.
    ActivationCenter,
    /// A customer's network license server, with its own key and no vendor key.
    LicenseServer,
}

/// How a license server talks to the activation center.
#[derive(Debug, Args)]
struct Exchange {
    /// The activation center to ask (default: `center` of the configuration).
    #[arg(long, value_name = "URL", conflicts_with_all = ["request_out", "load_response"])]
    center: Option<String>,
    /// Write a request file for the activation center instead of asking it online.
    #[arg(long, value_name = "FILE", conflicts_with = "load_response")]
    request_out: Option<PathBuf>,
    /// Load the activation center's response file to a request written before.
    #[arg(long, value_name = "FILE")]
    load_response: Option<PathBuf>,
}

/// HTTPS or plain HTTP for a new server directory.
#[derive(Debug, Args)]
struct Security {
    /// Serve HTTPS with this certificate (PEM; the server's certificate, then intermediates).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    tls_certificate: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_certificate")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP on an address other than loopback (behind a TLS-terminating proxy).
    #[arg(long, conflicts_with = "tls_certificate")]
    allow_plain_http: bool,
}

impl Security {
    fn listen_settings(self, listen: &str) -> ListenSettings {
        ListenSettings {
            address: listen.to_owned(),
            tls: self
                .tls_certificate
                .zip(self.tls_key)
                .map(|(certificate, key)| TlsConfig { certificate, key }),
            allow_plain: self.allow_plain_http,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a server directory: keys, SQLite database, administrator token, configuration. An
    /// activation center gets a vendor key pair; a license server its own key pair and a copy of
    /// the vendor's public key, and no vendor key.
    Init {
        /// The directory.
        dir: PathBuf,
        /// Policy files (repeatable).
        #[arg(long = "policy", value_name = "FILE", required = true)]
        policies: Vec<PathBuf>,
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8440")]
        listen: String,
        /// What the server is.
        #[arg(long, value_enum, default_value = "activation-center")]
        role: RoleArg,
        /// The vendor's public key file (license servers).
        #[arg(long, value_name = "FILE", required_if_eq("role", "license-server"))]
        vendor_public_key: Option<PathBuf>,
        /// The activation center's URL (license servers; leave out on an offline LAN).
        #[arg(long, value_name = "URL")]
        center: Option<String>,
        #[command(flatten)]
        security: Security,
    },
    /// Activate a network license key on this license server: online, or by request and
    /// response files.
    Activate {
        /// The license server's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The network license key (not with --load-response: the response names it).
        #[arg(long, required_unless_present = "load_response")]
        key: Option<String>,
        /// The edition to serve.
        #[arg(long, required_unless_present = "load_response")]
        edition: Option<String>,
        /// The product (when the server licenses several).
        #[arg(long)]
        product: Option<String>,
        #[command(flatten)]
        exchange: Exchange,
    },
    /// Revalidate a stored server license now (online), or renew it by request and response
    /// files; the fresh server license replaces the stored one.
    Renew {
        /// The license server's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The network license key (not with --load-response: the response names it).
        #[arg(long, required_unless_present = "load_response")]
        key: Option<String>,
        #[command(flatten)]
        exchange: Exchange,
    },
    /// Return a network license key from this license server to the activation center (before
    /// moving the server): online, or by request and response files.
    Return {
        /// The license server's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The network license key (not with --load-response: the response names it).
        #[arg(long, required_unless_present = "load_response")]
        key: Option<String>,
        #[command(flatten)]
        exchange: Exchange,
    },
    /// Show the server licenses of this license server: seats used and total, holders, borrowed
    /// seats, or why a server license is refused.
    Status {
        /// The license server's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a seat back from a session (force-release), through the service and audited, like
    /// the administrator route. Opens the server's database directly, whether the server runs
    /// or not.
    Release {
        /// The server's configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The session holding the seat.
        session: String,
        /// The license key (when the session holds seats of several keys).
        #[arg(long)]
        key: Option<String>,
    },
    /// Administer a running server over its administrator API: products, tokens, clients,
    /// orders, licenses, serials, seats, the audit log (see docs/server.md).
    Admin(Box<licet_server::cli::commands::AdminArgs>),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let ran = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .and_then(|runtime| runtime.block_on(run(cli)));
    match ran {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // The error and each of its causes, on one line.
            eprintln!("error: {}", licet_engine::report::chain(error.as_ref()));
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(command) = cli.command {
        logging::install(
            cli.log_format.unwrap_or_default(),
            cli.log_filter.as_deref(),
        )?;
        return run_command(command).await;
    }
    let config_path = match (&cli.config, &cli.demo) {
        (Some(path), None) => path.clone(),
        (None, Some(dir)) => {
            let path = dir.join("licet-server.yaml");
            if !path.exists() {
                let listen = ListenSettings::plain(&cli.listen);
                let created = init(dir, &cli.policies, &listen, true).await?;
                println!("created {}", created.config_path.display());
                println!("administrator token (shown once): {}", created.admin_token);
                for (license_type, key) in &created.example_keys {
                    println!("example {license_type} license key: {key}");
                }
            }
            path
        }
        _ => anyhow::bail!("give --config FILE, --demo DIR, or a command; see --help"),
    };
    let config = Config::load(&config_path)?;
    logging::install(
        cli.log_format.unwrap_or(config.log_format),
        cli.log_filter.as_deref(),
    )?;
    let cannot_start = || format!("cannot start from `{}`", config_path.display());
    let tls = match &config.tls {
        Some(tls) => Some(tls.acceptor().with_context(cannot_start)?),
        None => None,
    };
    let dongle = configured_dongle(&config).with_context(cannot_start)?;
    let transports =
        licet_server::api::transport::load_transports(&config).with_context(cannot_start)?;
    let state = build_state(&config, dongle)
        .await
        .with_context(cannot_start)?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.listen))?;
    let address = listener.local_addr()?;
    // `listen` may be a host name: the rule holds for the address it bound.
    if let Err(message) = config.check_plain_http(address) {
        anyhow::bail!("{}: {message}", cannot_start());
    }
    if let Some(server) = state.licensing.license_server() {
        for (key, entry) in server.entries() {
            match entry {
                licet_server::license_server::Entry::Served(_) => {
                    println!("serving server license of {key}");
                }
                licet_server::license_server::Entry::Refused(refusal) => {
                    println!(
                        "not serving {key}: {}: {}",
                        refusal.code.as_str(),
                        refusal.reason
                    );
                }
            }
        }
    }
    let metrics = match &config.metrics {
        Some(metrics) => {
            let address = metrics.address().map_err(anyhow::Error::msg)?;
            let listener = tokio::net::TcpListener::bind(address)
                .await
                .with_context(|| {
                    format!("cannot listen on `{}` (metrics.listen)", metrics.listen)
                })?;
            println!(
                "licet-server metrics on http://{}/metrics (no token)",
                listener.local_addr()?
            );
            Some(tokio::spawn(serve_metrics(
                listener,
                state.clone(),
                shutdown_signal(),
            )))
        }
        None => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!(
        "licet-server listening on {scheme}://{address} ({} storage, {})",
        state.licensing.store().backend_name(),
        config.role.as_str()
    );
    for name in transports.names() {
        println!("accepting transport {name} at /v1/transport/{name}");
    }
    serve_with_transports(
        listener,
        state,
        transports,
        Duration::from_secs(config.sweep_seconds),
        config.http,
        tls,
        shutdown_signal(),
    )
    .await?;
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    println!("licet-server stopped");
    Ok(())
}

async fn run_command(command: Command) -> anyhow::Result<()> {
    match command {
        // Its own exit statuses and messages (`CODE: message` for the server's refusals).
        Command::Admin(admin) => std::process::exit(licet_server::cli::admin::run(&admin).into()),
        Command::Init {
            dir,
            policies,
            listen,
            role,
            vendor_public_key,
            center,
            security,
        } => {
            let listen = security.listen_settings(&listen);
            let created = match role {
                RoleArg::ActivationCenter => {
                    if vendor_public_key.is_some() || center.is_some() {
                        anyhow::bail!(
                            "--vendor-public-key and --center are for --role license-server"
                        );
                    }
                    init(&dir, &policies, &listen, false).await?
                }
                RoleArg::LicenseServer => {
                    let vendor = vendor_public_key
                        .context("a license server needs --vendor-public-key FILE")?;
                    init_license_server(&dir, &policies, &listen, &vendor, center.as_deref())
                        .await?
                }
            };
            println!("created {}", created.config_path.display());
            println!("administrator token (shown once): {}", created.admin_token);
            if role == RoleArg::LicenseServer {
                println!(
                    "activate it: licet-server activate --config {} --key KEY --edition EDITION",
                    created.config_path.display()
                );
            }
            Ok(())
        }
        Command::Activate {
            config,
            key,
            edition,
            product,
            exchange,
        } => {
            let server = license_server_tool(&config).await?;
            let now = now();
            if let Some(file) = &exchange.load_response {
                let served = server.load_activation_response(&read(file)?, now).await?;
                print_installed(&served);
                return Ok(());
            }
            let (key, edition) = (given(key)?, given(edition)?);
            let product = server.product_or_only(product.as_deref())?;
            if let Some(out) = &exchange.request_out {
                let text = server.activation_request(&key, &product, &edition, now)?;
                write_request(out, &text)?;
                return Ok(());
            }
            let served = server
                .activate_online(exchange.center.as_deref(), &key, &product, &edition, now)
                .await?;
            print_installed(&served);
            Ok(())
        }
        Command::Renew {
            config,
            key,
            exchange,
        } => {
            let server = license_server_tool(&config).await?;
            let now = now();
            if let Some(file) = &exchange.load_response {
                let served = server.load_activation_response(&read(file)?, now).await?;
                print_installed(&served);
                return Ok(());
            }
            let key = given(key)?;
            if let Some(out) = &exchange.request_out {
                let claims = server.stored_claims(&key)?;
                let text =
                    server.activation_request(&key, &claims.product, &claims.edition, now)?;
                write_request(out, &text)?;
                return Ok(());
            }
            match server
                .revalidate(exchange.center.as_deref(), &key, now)
                .await?
            {
                Revalidation::Renewed { seats } => {
                    println!("renewed the server license of {key}: {seats} seats");
                    Ok(())
                }
                Revalidation::Withdrawn { code } => {
                    anyhow::bail!(
                        "the activation center answered {code}; {key} is no longer served"
                    )
                }
                Revalidation::Kept { reason } => {
                    anyhow::bail!("not renewed ({reason}); the stored server license is kept")
                }
            }
        }
        Command::Return {
            config,
            key,
            exchange,
        } => {
            let server = license_server_tool(&config).await?;
            if let Some(file) = &exchange.load_response {
                let key = server.load_return_response(&read(file)?).await?;
                println!("returned {key}; its server license is deleted");
                return Ok(());
            }
            let key = given(key)?;
            if let Some(out) = &exchange.request_out {
                let text = server.return_request(&key, now())?;
                write_request(out, &text)?;
                println!("{key} is not served while its return is pending");
                return Ok(());
            }
            server
                .return_online(exchange.center.as_deref(), &key)
                .await?;
            println!("returned {key}; its server license is deleted");
            Ok(())
        }
        Command::Status { config, json } => {
            let config = load(&config)?;
            let state = build_state(&config, Arc::new(NoDongle)).await?;
            let report = status::status(&state.licensing).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                print!("{}", status::render(&report));
            }
            Ok(())
        }
        Command::Release {
            config,
            session,
            key,
        } => {
            let config = load(&config)?;
            let state = build_state(&config, Arc::new(NoDongle)).await?;
            let licensing = &state.licensing;
            // The session's own lease of each key served (or of the one named): one indexed
            // read per key, whatever the size of the pools.
            let keys: Vec<String> = match &key {
                Some(key) => vec![key.clone()],
                None => licensing
                    .license_server()
                    .map(|server| server.entries().into_iter().map(|(key, _)| key).collect())
                    .unwrap_or_default(),
            };
            let mut seats = Vec::new();
            for key in &keys {
                match licensing.license_seat(key, &session).await {
                    Ok(seat) if seat.state != "lapsed" => seats.push(seat),
                    Ok(_) | Err(licet_server::service::ServiceError::NotFound(_)) => {}
                    Err(error) => return Err(error.into()),
                }
            }
            let seat = match seats.as_slice() {
                [] => anyhow::bail!("session `{session}` holds no seat"),
                [seat] => seat,
                _ => anyhow::bail!(
                    "session `{session}` holds seats of several keys; name one with --key"
                ),
            };
            let (key, session) = (seat.license_key.clone(), seat.session.clone());
            let action = if seat.state == "borrowed" {
                Action::ReturnBorrowed {
                    key,
                    session,
                    certificate_serial: None,
                }
            } else {
                Action::Release { key, session }
            };
            let context = RequestContext {
                actor_label: "administrator:licet-server release (local)".to_owned(),
                ..RequestContext::default()
            };
            let outcome = licensing
                .decide(Actor::Administrator, action, context)
                .await?;
            let decision = outcome.decision;
            if !decision.is_allowed() {
                anyhow::bail!("{}: {}", decision.code.as_str(), decision.message);
            }
            println!("{}: {}", decision.code.as_str(), decision.message);
            Ok(())
        }
    }
}

fn load(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).with_context(|| format!("cannot read `{}`", path.display()))
}

/// The license server of a configuration, for the commands that exchange with the center: its
/// files only (a running server picks up what they change within seconds).
async fn license_server_tool(path: &Path) -> anyhow::Result<LicenseServer> {
    let config = load(path)?;
    if config.role != ServerRole::LicenseServer {
        anyhow::bail!(
            "`{}` configures an activation center; only a license server is activated, renewed and returned",
            path.display()
        );
    }
    Ok(open_license_server(&config, Arc::new(NoDongle), Arc::new(NativeIdentity), None).await?)
}

fn given(value: Option<String>) -> anyhow::Result<String> {
    value.context("--key and --edition are required here")
}

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now()
}

fn read(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read `{}`", path.display()))
}

fn write_request(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("cannot write `{}`", path.display()))?;
    println!(
        "wrote {}; take it to the activation center and load its answer with --load-response",
        path.display()
    );
    Ok(())
}

fn print_installed(served: &ServedLicense) {
    let claims = served.license.claims();
    println!(
        "installed the server license of {} ({} {} {}): {} seats, {}, revalidate by {}",
        claims.license_key,
        claims.product,
        claims.edition,
        claims.version,
        claims.seats,
        claims
            .expires_at
            .map_or_else(|| "perpetual".to_owned(), |end| format!("until {end}")),
        claims.offline_until
    );
}
