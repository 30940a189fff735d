//! Building and signing the guests in `plugins/guests`, for tests and benchmarks (feature
//! `test-support`).
//!
//! The guests are built once per process with
//! `cargo build --release --target wasm32-wasip2 --locked --manifest-path plugins/guests/Cargo.toml`
//! into `target/plugin-guests` of the main workspace (a target directory of its own, so the outer
//! build's lock is not in the way).

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ed25519_dalek::SigningKey;

use crate::manifest::{Allow, HidId, Manifest, World, MANIFEST_FILE};
use crate::signing::sign_plugin;

/// `plugins/guests`.
pub fn guests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../guests")
}

/// Where the guests are built.
pub fn guests_target_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/plugin-guests")
}

/// The vendor key tests sign plugins with.
pub fn test_key() -> SigningKey {
    SigningKey::from_bytes(&[0x4c; 32])
}

/// Builds all guests once per process; returns the directory holding the `.wasm` files.
pub fn build_guests() -> Result<&'static Path, String> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
            let target_dir = guests_target_dir();
            let output = Command::new(cargo)
                .args([
                    "build",
                    "--release",
                    "--locked",
                    "--target",
                    "wasm32-wasip2",
                ])
                .arg("--manifest-path")
                .arg(guests_dir().join("Cargo.toml"))
                .env("CARGO_TARGET_DIR", &target_dir)
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_ENCODED_RUSTFLAGS")
                .output()
                .map_err(|error| format!("cannot run cargo: {error}"))?;
            if !output.status.success() {
                return Err(format!(
                    "building the guests failed:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            Ok(target_dir.join("wasm32-wasip2/release"))
        })
        .as_ref()
        .map(PathBuf::as_path)
        .map_err(Clone::clone)
}

/// The built component of guest `guest` (its directory name, such as `transport-http`).
pub fn guest_wasm(guest: &str) -> Result<PathBuf, String> {
    let dir = build_guests()?;
    Ok(dir.join(format!("licet_plugin_{}.wasm", guest.replace('-', "_"))))
}

/// Installs guest `guest` as a plugin directory `into/<guest>` with this manifest content, signed
/// with `key`. Returns the plugin directory.
pub fn install_plugin(
    into: &Path,
    guest: &str,
    world: World,
    config: &[(&str, &str)],
    allow: Allow,
    key: &SigningKey,
) -> Result<PathBuf, String> {
    let wasm = guest_wasm(guest)?;
    let dir = into.join(guest);
    std::fs::create_dir_all(&dir).map_err(|error| error.report())?;
    let wasm_name = format!("{}.wasm", guest.replace('-', "_"));
    std::fs::copy(&wasm, dir.join(&wasm_name))
        .map_err(|error| format!("`{}`: {error}", wasm.display()))?;
    let manifest = Manifest {
        name: guest.to_string(),
        version: "0.1.0".to_string(),
        world,
        wasm: wasm_name,
        wasm_sha256: String::new(),
        config: config
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect::<BTreeMap<_, _>>(),
        allow,
    };
    let json = serde_json::to_vec_pretty(&manifest).map_err(|error| error.report())?;
    std::fs::write(dir.join(MANIFEST_FILE), json).map_err(|error| error.report())?;
    sign_plugin(&dir, key).map_err(|error| error.report())?;
    Ok(dir)
}

/// Installs the shipped `dongle-hid` plugin as `into/dongle-hid`, signed with `key`, for a dongle
/// with these USB IDs: the manifest's `config` names them (`vendor-id`, `product-id`, as
/// `0x1209`-style hex) and `allow.hid` lists exactly them. Returns the plugin directory.
pub fn install_dongle_plugin(
    into: &Path,
    key: &SigningKey,
    vendor_id: u16,
    product_id: u16,
) -> Result<PathBuf, String> {
    let vendor = format!("{vendor_id:#06x}");
    let product = format!("{product_id:#06x}");
    install_plugin(
        into,
        "dongle-hid",
        World::HardwareCheck,
        &[("vendor-id", &vendor), ("product-id", &product)],
        Allow {
            urls: Vec::new(),
            hid: vec![HidId {
                vendor_id,
                product_id,
            }],
        },
        key,
    )
}
