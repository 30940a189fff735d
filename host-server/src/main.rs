//! `licet-server`: the activation center and network license server.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use licet_server::config::Config;
use licet_server::server::{build_state, configured_dongle, init, serve, shutdown_signal};

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
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a server directory: vendor key, SQLite database, administrator token, configuration.
    Init {
        /// The directory.
        dir: PathBuf,
        /// Policy files (repeatable).
        #[arg(long = "policy", value_name = "FILE", required = true)]
        policies: Vec<PathBuf>,
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8440")]
        listen: String,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Init {
        dir,
        policies,
        listen,
    }) = &cli.command
    {
        let created = init(dir, policies, listen, false).await?;
        println!("created {}", created.config_path.display());
        println!("administrator token (shown once): {}", created.admin_token);
        return Ok(());
    }
    let config_path = match (&cli.config, &cli.demo) {
        (Some(path), None) => path.clone(),
        (None, Some(dir)) => {
            let path = dir.join("licet-server.yaml");
            if !path.exists() {
                let created = init(dir, &cli.policies, &cli.listen, true).await?;
                println!("created {}", created.config_path.display());
                println!("administrator token (shown once): {}", created.admin_token);
                for (license_type, key) in &created.example_keys {
                    println!("example {license_type} license key: {key}");
                }
            }
            path
        }
        _ => anyhow::bail!("give --config FILE, --demo DIR, or the init command; see --help"),
    };
    let config = Config::load(&config_path)?;
    let dongle = configured_dongle(&config)
        .with_context(|| format!("cannot start from `{}`", config_path.display()))?;
    let state = build_state(&config, dongle)
        .await
        .with_context(|| format!("cannot start from `{}`", config_path.display()))?;
    let listener = tokio::net::TcpListener::bind(&config.listen)
        .await
        .with_context(|| format!("cannot listen on `{}`", config.listen))?;
    let address = listener.local_addr()?;
    println!(
        "licet-server listening on http://{address} ({} storage)",
        state.licensing.store().backend_name()
    );
    serve(
        listener,
        state,
        Duration::from_secs(config.sweep_seconds),
        shutdown_signal(),
    )
    .await?;
    println!("licet-server stopped");
    Ok(())
}
