//! Machine fingerprint: normalizes the host's raw readings and hashes each component with the
//! per-product salt.
//!
//! Components: `machine-id` (`/etc/machine-id`), `mac` (lowest globally administered address of
//! the network adapters), `cpu` (vendor and model name from `/proc/cpuinfo`), `disk` (lowest disk
//! serial). Each is `hex(SHA-256(salt || 0 || name || 0 || normalized value))`. A component whose
//! readings are all missing or unusable is left out; the engine matches k of n, so one changed or
//! missing part does not break a license. Config: `components`, a comma-separated subset.
#![no_std]

extern crate alloc;

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use licet_plugin_sdk::{config_value, hex};
use sha2::{Digest, Sha256};

wit_bindgen::generate!({ world: "hardware-check", path: "../../wit" });

use exports::licet::plugin::check::{Component, DongleProof, Guest, Reading};
use licet::plugin::types::PluginError;

/// Component names in output order.
const COMPONENTS: [&str; 4] = ["machine-id", "mac", "cpu", "disk"];

struct Fingerprint;

fn error(code: &str, message: &str) -> PluginError {
    PluginError {
        code: code.to_string(),
        message: message.to_string(),
    }
}

/// `/etc/machine-id`: 32 hex digits.
fn machine_id(value: &str) -> Option<String> {
    let id = value.trim().to_ascii_lowercase();
    (id.len() == 32
        && id.bytes().all(|byte| byte.is_ascii_hexdigit())
        && id.bytes().any(|b| b != b'0'))
    .then_some(id)
}

/// A MAC address as 12 lowercase hex digits; `None` for zero, multicast and locally administered
/// (virtual) addresses.
fn mac(value: &str) -> Option<String> {
    let digits: String = value
        .trim()
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | '.'))
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if digits.len() != 12 || !digits.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return None;
    }
    let first = u8::from_str_radix(&digits[..2], 16).ok()?;
    let virtual_or_group = first & 0x03 != 0;
    (!virtual_or_group && digits != "000000000000").then_some(digits)
}

/// Vendor and model name of the first processor in `/proc/cpuinfo`, whitespace collapsed.
fn cpu(value: &str) -> Option<String> {
    let field = |name: &str| {
        value.lines().find_map(|line| {
            let (key, rest) = line.split_once(':')?;
            (key.trim() == name).then(|| rest.split_whitespace().collect::<Vec<_>>().join(" "))
        })
    };
    let vendor = field("vendor_id").unwrap_or_default();
    let model = field("model name").unwrap_or_default();
    let identity = [vendor, model]
        .into_iter()
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (!identity.is_empty()).then_some(identity)
}

/// A disk serial, trimmed and uppercased.
fn disk(value: &str) -> Option<String> {
    let serial = value.trim().to_ascii_uppercase();
    (!serial.is_empty() && serial.bytes().any(|b| b != b'0')).then_some(serial)
}

fn normalized(name: &str, readings: &[Reading]) -> Option<String> {
    let normalize: fn(&str) -> Option<String> = match name {
        "machine-id" => machine_id,
        "mac" => mac,
        "cpu" => cpu,
        "disk" => disk,
        _ => return None,
    };
    readings
        .iter()
        .filter(|reading| reading.kind == name)
        .filter_map(|reading| normalize(&reading.value))
        .min()
}

fn hashed(salt: &[u8], name: &str, value: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update([0]);
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    hex(&hasher.finalize())
}

impl Guest for Fingerprint {
    fn fingerprint(
        config: Vec<(String, String)>,
        salt: Vec<u8>,
        readings: Vec<Reading>,
    ) -> Result<Vec<Component>, PluginError> {
        if salt.len() < 8 {
            return Err(error(
                "bad-config",
                "the product salt must be at least 8 bytes",
            ));
        }
        let wanted: Vec<&str> = match config_value(&config, "components") {
            Some(list) => list.split(',').map(str::trim).collect(),
            None => COMPONENTS.to_vec(),
        };
        if let Some(unknown) = wanted.iter().find(|name| !COMPONENTS.contains(name)) {
            return Err(PluginError {
                code: "bad-config".to_string(),
                message: alloc::format!("unknown fingerprint component `{unknown}`"),
            });
        }
        Ok(COMPONENTS
            .iter()
            .filter(|name| wanted.contains(name))
            .filter_map(|name| {
                normalized(name, &readings).map(|value| Component {
                    name: name.to_string(),
                    value: hashed(&salt, name, &value),
                })
            })
            .collect())
    }

    fn dongle_check(
        _config: Vec<(String, String)>,
        _challenge: Vec<u8>,
    ) -> Result<DongleProof, PluginError> {
        Err(error("unsupported", "this plugin reads no dongles"))
    }
}

export!(Fingerprint);
