//! The vendor's product bundles: `licet bundle build` (with the vendor secret) makes the one
//! file a product ships; `licet bundle verify` reads one back with the vendor's public key.

use std::path::PathBuf;

use licet_engine::bundle::{PluginRole, ProductBundle};

use super::output::emit;
use super::{CliError, Outcome};
use crate::bundle::{build_bundle, BundleBuildError, BundleSpec};
use crate::keys::{read_signing_key, read_verifying_key};
use crate::ClientError;

/// The bundle commands.
#[derive(Debug, clap::Subcommand)]
pub(crate) enum BundleCommand {
    /// Build a signed product bundle from the policy, the vendor-signed plugins and the servers.
    Build {
        /// The product's policy file.
        #[arg(long, value_name = "FILE")]
        policy: PathBuf,
        /// The vendor's secret key file (`vendor.secret`), which signs the bundle.
        #[arg(long, value_name = "FILE")]
        vendor_secret: PathBuf,
        /// A plugin and its role: `fingerprint=DIR`, `dongle=DIR`, `online=DIR`, `files=DIR` or
        /// `text=DIR` (a vendor-signed plugin directory). Repeat for each role.
        #[arg(long = "plugin", value_name = "ROLE=DIR", value_parser = role_and_dir)]
        plugins: Vec<(PluginRole, PathBuf)>,
        /// A server address the product uses (`https://host:port` or `host:port`), the
        /// preferred one first. Repeat for more.
        #[arg(long = "server-address", value_name = "URL", value_parser = super::args::server_url)]
        servers: Vec<String>,
        /// A server certificate (PEM or DER) the product trusts instead of the public roots.
        #[arg(long, value_name = "FILE")]
        pin_certificate: Option<PathBuf>,
        /// Where to write the bundle.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Check a bundle with the vendor's public key and show what it holds.
    Verify {
        /// The bundle file.
        file: PathBuf,
        /// The vendor's public key file (`vendor.pub`).
        #[arg(long, value_name = "FILE")]
        vendor_key: PathBuf,
    },
}

/// `ROLE=DIR`, with a role the bundle knows.
fn role_and_dir(text: &str) -> Result<(PluginRole, PathBuf), String> {
    let (role, dir) = text
        .split_once('=')
        .ok_or_else(|| "expected ROLE=DIR".to_owned())?;
    let role = PluginRole::from_name(role).ok_or_else(|| {
        let roles: Vec<&str> = PluginRole::ALL.iter().map(|role| role.name()).collect();
        format!("unknown role `{role}`; the roles are {}", roles.join(", "))
    })?;
    if dir.is_empty() {
        return Err("the plugin directory is empty".to_owned());
    }
    Ok((role, PathBuf::from(dir)))
}

/// Runs a bundle command.
pub(crate) fn run(command: BundleCommand) -> Result<Outcome, CliError> {
    match command {
        BundleCommand::Build {
            policy,
            vendor_secret,
            plugins,
            servers,
            pin_certificate,
            out,
        } => {
            let key = read_signing_key(&vendor_secret).map_err(ClientError::from)?;
            let spec = BundleSpec {
                policy,
                servers,
                server_certificate: pin_certificate,
                plugins,
            };
            let bytes =
                build_bundle(&spec, &key).map_err(|error| CliError::Bundle(Box::new(error)))?;
            std::fs::write(&out, &bytes).map_err(CliError::file("write", &out))?;
            emit(&format!(
                "bundle written to {} ({} bytes)\n",
                out.display(),
                bytes.len()
            ));
            Ok(Outcome::Allowed)
        }
        BundleCommand::Verify { file, vendor_key } => {
            let key = read_verifying_key(&vendor_key).map_err(ClientError::from)?;
            let bytes = std::fs::read(&file).map_err(CliError::file("read", &file))?;
            let bundle = ProductBundle::verify(&bytes, &key)
                .map_err(|error| CliError::Bundle(Box::new(BundleBuildError::Bundle(error))))?;
            emit(&summary(&bundle));
            Ok(Outcome::Allowed)
        }
    }
}

/// What `licet bundle verify` prints.
fn summary(bundle: &ProductBundle) -> String {
    let mut text = format!(
        "ok: a signed product bundle of `{}`\nservers: {}\npinned certificate: {}\n",
        bundle.product,
        if bundle.servers.is_empty() {
            "none".to_owned()
        } else {
            bundle.servers.join(", ")
        },
        if bundle.server_certificate.is_some() {
            "yes"
        } else {
            "no"
        }
    );
    for (role, plugin) in &bundle.roles {
        let bytes = bundle
            .plugins
            .get(plugin)
            .map_or(0, |plugin| plugin.wasm.len());
        text.push_str(&format!("plugin {role}: {plugin} ({bytes} bytes)\n"));
    }
    text
}
