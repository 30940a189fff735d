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

// Each normalization writes the normalized value into `out` (empty on entry) and says whether the
// reading is usable. The call reuses two buffers for all readings, so normalizing allocates
// nothing after the first few readings.

/// `/etc/machine-id`: 32 hex digits, lowercased.
fn machine_id(value: &str, out: &mut String) -> bool {
    let id = value.trim();
    if id.len() != 32 || !id.bytes().all(|byte| byte.is_ascii_hexdigit()) {
        return false;
    }
    out.extend(id.chars().map(|c| c.to_ascii_lowercase()));
    id.bytes().any(|b| b != b'0')
}

/// A MAC address as 12 lowercase hex digits; unusable for zero, multicast and locally
/// administered (virtual) addresses.
fn mac(value: &str, out: &mut String) -> bool {
    let mut digits = [0u8; 12];
    let mut count = 0;
    for byte in value.trim().bytes() {
        if matches!(byte, b':' | b'-' | b'.') {
            continue;
        }
        // Anything but a hex digit (a byte of a non-ASCII character included) is unusable.
        if count == digits.len() || !byte.is_ascii_hexdigit() {
            return false;
        }
        digits[count] = byte.to_ascii_lowercase();
        count += 1;
    }
    if count != digits.len() {
        return false;
    }
    let first = (hex_value(digits[0]) << 4) | hex_value(digits[1]);
    let virtual_or_group = first & 0x03 != 0;
    if virtual_or_group || digits.iter().all(|&digit| digit == b'0') {
        return false;
    }
    out.extend(digits.iter().map(|&digit| char::from(digit)));
    true
}

/// The value of one hex digit.
fn hex_value(digit: u8) -> u8 {
    match digit {
        b'0'..=b'9' => digit - b'0',
        b'a'..=b'f' => digit - b'a' + 10,
        b'A'..=b'F' => digit - b'A' + 10,
        _ => 0,
    }
}

/// Vendor and model name of the first processor in `/proc/cpuinfo`, whitespace collapsed.
fn cpu(value: &str, out: &mut String) -> bool {
    let mut vendor = None;
    let mut model = None;
    // Lines and the key's colon found byte by byte (both are ASCII, so every cut is a character
    // boundary); a line's trailing `\r` only ever ends up in `rest`, where it is whitespace.
    let mut start = 0;
    while start < value.len() {
        let end = value.as_bytes()[start..]
            .iter()
            .position(|&byte| byte == b'\n')
            .map_or(value.len(), |at| start + at);
        let line = &value[start..end];
        start = end + 1;
        let Some(colon) = line.bytes().position(|byte| byte == b':') else {
            continue;
        };
        let (key, rest) = (&line[..colon], &line[colon + 1..]);
        match key.trim() {
            "vendor_id" if vendor.is_none() => vendor = Some(rest),
            "model name" if model.is_none() => model = Some(rest),
            _ => continue,
        }
        if vendor.is_some() && model.is_some() {
            break;
        }
    }
    for part in [vendor, model].into_iter().flatten() {
        let mut words = part.split_whitespace().peekable();
        if words.peek().is_some() && !out.is_empty() {
            out.push(' ');
        }
        for (index, word) in words.enumerate() {
            if index > 0 {
                out.push(' ');
            }
            out.push_str(word);
        }
    }
    !out.is_empty()
}

/// A disk serial, trimmed and uppercased.
fn disk(value: &str, out: &mut String) -> bool {
    let serial = value.trim();
    out.extend(serial.chars().map(|c| c.to_ascii_uppercase()));
    !serial.is_empty() && serial.bytes().any(|b| b != b'0')
}

/// The least usable normalized value of the readings of component `name`, in `best`; `scratch`
/// is a second buffer. False if no reading is usable.
fn normalized(name: &str, readings: &[Reading], best: &mut String, scratch: &mut String) -> bool {
    let normalize: fn(&str, &mut String) -> bool = match name {
        "machine-id" => machine_id,
        "mac" => mac,
        "cpu" => cpu,
        "disk" => disk,
        _ => return false,
    };
    let mut found = false;
    for reading in readings.iter().filter(|reading| reading.kind == name) {
        scratch.clear();
        if normalize(&reading.value, scratch) && (!found || *scratch < *best) {
            core::mem::swap(best, scratch);
            found = true;
        }
    }
    found
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

/// The components `config` asks for, as flags in the order of [`COMPONENTS`].
fn wanted(config: &[(String, String)]) -> Result<[bool; 4], PluginError> {
    let Some(list) = config_value(config, "components") else {
        return Ok([true; 4]);
    };
    let mut wanted = [false; 4];
    for name in list.split(',').map(str::trim) {
        match COMPONENTS.iter().position(|known| *known == name) {
            Some(index) => wanted[index] = true,
            None => {
                return Err(PluginError {
                    code: "bad-config".to_string(),
                    message: alloc::format!("unknown fingerprint component `{name}`"),
                })
            }
        }
    }
    Ok(wanted)
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
        let wanted = wanted(&config)?;
        let mut best = String::with_capacity(128);
        let mut scratch = String::with_capacity(128);
        let mut components = Vec::with_capacity(COMPONENTS.len());
        for (name, _) in COMPONENTS.iter().zip(wanted).filter(|(_, wanted)| *wanted) {
            if normalized(name, &readings, &mut best, &mut scratch) {
                components.push(Component {
                    name: name.to_string(),
                    value: hashed(&salt, name, &best),
                });
            }
        }
        Ok(components)
    }

    fn dongle_check(
        _config: Vec<(String, String)>,
        _challenge: Vec<u8>,
    ) -> Result<DongleProof, PluginError> {
        Err(error("unsupported", "this plugin reads no dongles"))
    }
}

export!(Fingerprint);
