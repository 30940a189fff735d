//! `licet-plugin`: sign and verify Licet plugins, make software dongles for development.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use licet_plugin_host::{
    parse_usb_id, read_signing_key, read_verifying_key, sign_plugin, verify_plugin, LoadedPlugin,
    PluginHost, Slot, SoftwareDongle, World, DEFAULT_DONGLE_PRODUCT_ID, DEFAULT_DONGLE_VENDOR_ID,
};

/// Sign and check Licet plugins, make software dongles.
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
        /// Check it as a slot of this world would (`transport` or `hardware-check`)
        /// [default: the manifest's].
        #[arg(long, value_parser = world)]
        world: Option<World>,
        /// Check it as a slot that takes only the plugin of this name would (the dongle slot
        /// takes `dongle-hid`).
        #[arg(long)]
        name: Option<String>,
    },
    /// Software dongles for development and tests.
    #[command(subcommand)]
    Dongle(DongleCommand),
}

#[derive(Debug, Subcommand)]
enum DongleCommand {
    /// Make a software dongle with a fresh Ed25519 key and write it to a file (mode 0600).
    Create {
        /// The file to write.
        #[arg(long)]
        out: PathBuf,
        /// The USB vendor ID it presents, hex (`0x1209`) or decimal [default: 0x1209].
        #[arg(long, value_parser = usb_id)]
        vendor_id: Option<u16>,
        /// The USB product ID it presents, hex (`0x4c43`) or decimal [default: 0x4c43].
        #[arg(long, value_parser = usb_id)]
        product_id: Option<u16>,
        /// Replace the file if it exists.
        #[arg(long)]
        force: bool,
    },
    /// Print the serial of a software dongle file.
    Serial {
        /// The software dongle file.
        file: PathBuf,
    },
}

fn world(text: &str) -> Result<World, String> {
    match text {
        "transport" => Ok(World::Transport),
        "hardware-check" => Ok(World::HardwareCheck),
        _ => Err(format!(
            "`{text}` is not a world (`transport` or `hardware-check`)"
        )),
    }
}

fn usb_id(text: &str) -> Result<u16, String> {
    parse_usb_id(text).ok_or_else(|| format!("`{text}` is not a USB ID (`0x1209` or decimal)"))
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
        Command::Verify {
            dir,
            key,
            world,
            name,
        } => {
            let key = read_verifying_key(&key)?;
            let verified = verify_plugin(&dir, &key)?;
            let world = world.unwrap_or(verified.manifest.world);
            let slot = match &name {
                Some(name) => Slot::named(world, name),
                None => Slot::of_world(world),
            };
            let host = PluginHost::new(key)?;
            let plugin = host.load(&dir, slot)?;
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
        Command::Dongle(DongleCommand::Create {
            out,
            vendor_id,
            product_id,
            force,
        }) => {
            let dongle = SoftwareDongle::generate(
                vendor_id.unwrap_or(DEFAULT_DONGLE_VENDOR_ID),
                product_id.unwrap_or(DEFAULT_DONGLE_PRODUCT_ID),
            )?;
            if force {
                dongle.overwrite_file(&out)?;
            } else {
                dongle.write_file(&out)?;
            }
            println!("serial: {}", dongle.serial());
        }
        Command::Dongle(DongleCommand::Serial { file }) => {
            println!("{}", SoftwareDongle::read_file(&file)?.serial());
        }
    }
    Ok(())
}
