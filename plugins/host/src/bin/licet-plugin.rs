//! `licet-plugin`: sign and verify Licet plugins.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use licet_plugin_host::{
    read_signing_key, read_verifying_key, sign_plugin, verify_plugin, LoadedPlugin, PluginHost,
};

/// Sign and check Licet plugins.
#[derive(Debug, Parser)]
#[command(name = "licet-plugin", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Fill in the component's SHA-256 in `plugin.json` and sign the manifest (`plugin.sig`).
    Sign {
        /// The plugin directory (holding `plugin.json` and the component it names).
        dir: PathBuf,
        /// The vendor's secret key file (`licet keys generate` writes `vendor.secret`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Check the signature and hash, then compile and link the plugin as the host would.
    Verify {
        /// The plugin directory.
        dir: PathBuf,
        /// The vendor's public key file (`vendor.pub`).
        #[arg(long)]
        key: PathBuf,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Sign { dir, key } => {
            let key = read_signing_key(&key)?;
            let manifest = sign_plugin(&dir, &key)
                .with_context(|| format!("cannot sign `{}`", dir.display()))?;
            println!(
                "signed {} {} ({}, sha256 {})",
                manifest.name,
                manifest.version,
                manifest.world.name(),
                manifest.wasm_sha256
            );
        }
        Command::Verify { dir, key } => {
            let key = read_verifying_key(&key)?;
            verify_plugin(&dir, &key)?;
            let host = PluginHost::new(key)?;
            let plugin = host.load(&dir)?;
            let kind = match &plugin {
                LoadedPlugin::Transport(_) => "transport",
                LoadedPlugin::HardwareCheck(_) => "hardware-check",
                _ => "plugin",
            };
            let manifest = plugin.manifest();
            println!(
                "ok: {} {} is a signed {kind} plugin and loads",
                manifest.name, manifest.version
            );
        }
    }
    Ok(())
}
