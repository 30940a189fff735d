//! What the client knows about its machine: its fingerprint. (The dongle present proves itself;
//! see [`crate::dongle`].)
//!
//! A [`MachineProbe`] answers it. [`NativeProbe`] reads the machine directly (machine id, MAC
//! addresses of physical network adapters, CPU model, disk serial) and hashes every component with
//! a per-product salt, so the raw identifiers never leave the machine and two products see
//! unrelated values. [`FixedProbe`] returns a given fingerprint; tests and the WebAssembly
//! fingerprint plugin plug in through the same trait.

use std::collections::BTreeMap;
use std::fmt;

use licet_engine::Fingerprint;
use sha2::{Digest, Sha256};

/// Why the machine could not be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// No fingerprint component could be read.
    #[error("no machine fingerprint component could be read")]
    NoComponents,
    /// A probe reported a problem of its own.
    #[error("machine probe failed: {0}")]
    Failed(String),
}

/// Identifies the machine the client runs on.
pub trait MachineProbe: fmt::Debug {
    /// The machine's current fingerprint, components already hashed.
    fn fingerprint(&self) -> Result<Fingerprint, ProbeError>;
}

/// A probe that returns a fixed fingerprint.
#[derive(Debug, Clone, Default)]
pub struct FixedProbe {
    /// The fingerprint to report.
    pub fingerprint: Fingerprint,
}

impl FixedProbe {
    /// A probe reporting `fingerprint`.
    pub fn new(fingerprint: Fingerprint) -> Self {
        FixedProbe { fingerprint }
    }
}

impl MachineProbe for FixedProbe {
    fn fingerprint(&self) -> Result<Fingerprint, ProbeError> {
        if self.fingerprint.components.is_empty() {
            return Err(ProbeError::NoComponents);
        }
        Ok(self.fingerprint.clone())
    }
}

/// Reads the machine's identifiers from the operating system and hashes them per product.
///
/// Components (named as in policies): `machine-id` (`/etc/machine-id`), `mac` (the sorted MAC
/// addresses of physical network adapters), `cpu` (the CPU model), `disk` (the serial of the first
/// disk that reports one). A component that cannot be read is left out; fuzzy matching in the
/// policy decides how many must agree. Only Linux is read natively today.
#[derive(Clone)]
pub struct NativeProbe {
    salt: [u8; 32],
}

impl fmt::Debug for NativeProbe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NativeProbe").finish_non_exhaustive()
    }
}

impl NativeProbe {
    /// A probe whose hashes are salted for `product` (the policy's product id).
    pub fn for_product(product: &str) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"licet-fingerprint-salt-v1\0");
        hasher.update(product.as_bytes());
        NativeProbe {
            salt: hasher.finalize().into(),
        }
    }

    /// The raw (unhashed) components this machine exposes.
    fn raw_components() -> BTreeMap<&'static str, String> {
        let mut raw = BTreeMap::new();
        #[cfg(target_os = "linux")]
        {
            if let Some(id) = linux::machine_id() {
                raw.insert("machine-id", id);
            }
            if let Some(macs) = linux::physical_macs() {
                raw.insert("mac", macs);
            }
            if let Some(cpu) = linux::cpu_model() {
                raw.insert("cpu", cpu);
            }
            if let Some(disk) = linux::disk_serial() {
                raw.insert("disk", disk);
            }
        }
        raw
    }
}

impl MachineProbe for NativeProbe {
    fn fingerprint(&self) -> Result<Fingerprint, ProbeError> {
        let components: BTreeMap<String, String> = Self::raw_components()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), hash_component(&self.salt, name, &value)))
            .collect();
        if components.is_empty() {
            return Err(ProbeError::NoComponents);
        }
        Ok(Fingerprint { components })
    }
}

/// The salted hash of one component: 32 hex digits of SHA-256 over salt, name and value.
pub fn hash_component(salt: &[u8; 32], name: &str, value: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(salt);
    hasher.update(name.as_bytes());
    hasher.update([0]);
    hasher.update(value.as_bytes());
    hex(&hasher.finalize()[..16])
}

/// Lowercase hexadecimal.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(target_os = "linux")]
mod linux {
    use std::fs;
    use std::io::{BufRead, BufReader};

    fn read_trimmed(path: &str) -> Option<String> {
        let text = fs::read_to_string(path).ok()?;
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    }

    pub(super) fn machine_id() -> Option<String> {
        read_trimmed("/etc/machine-id").or_else(|| read_trimmed("/var/lib/dbus/machine-id"))
    }

    /// MAC addresses of adapters backed by a device (not loopback, bridges or tunnels), sorted.
    pub(super) fn physical_macs() -> Option<String> {
        let mut macs: Vec<String> = fs::read_dir("/sys/class/net")
            .ok()?
            .flatten()
            .filter(|entry| entry.path().join("device").exists())
            .filter_map(|entry| fs::read_to_string(entry.path().join("address")).ok())
            .map(|mac| mac.trim().to_ascii_lowercase())
            .filter(|mac| !mac.is_empty() && mac.chars().any(|c| c != '0' && c != ':'))
            .collect();
        macs.sort();
        macs.dedup();
        (!macs.is_empty()).then(|| macs.join(","))
    }

    pub(super) fn cpu_model() -> Option<String> {
        let file = fs::File::open("/proc/cpuinfo").ok()?;
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                let (key, value) = line.split_once(':')?;
                let key = key.trim();
                let wanted = matches!(key, "model name" | "Hardware" | "cpu model" | "Model");
                let value = value.trim();
                (wanted && !value.is_empty()).then(|| value.to_owned())
            })
    }

    /// The serial of the first (by name) whole disk that reports one.
    pub(super) fn disk_serial() -> Option<String> {
        let mut disks: Vec<String> = fs::read_dir("/sys/block")
            .ok()?
            .flatten()
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| {
                !["loop", "ram", "zram", "dm-", "sr", "md", "nbd"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
            })
            .collect();
        disks.sort();
        disks.iter().find_map(|disk| {
            read_trimmed(&format!("/sys/block/{disk}/serial"))
                .or_else(|| read_trimmed(&format!("/sys/block/{disk}/device/serial")))
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn component_hashes_depend_on_product_name_and_value() {
        let gstar = NativeProbe::for_product("gstarcad").salt;
        let other = NativeProbe::for_product("gstarbim").salt;
        let base = hash_component(&gstar, "cpu", "AMD EPYC");
        assert_eq!(base.len(), 32);
        assert_eq!(base, hash_component(&gstar, "cpu", "AMD EPYC"));
        assert_ne!(base, hash_component(&other, "cpu", "AMD EPYC"));
        assert_ne!(base, hash_component(&gstar, "disk", "AMD EPYC"));
        assert_ne!(base, hash_component(&gstar, "cpu", "AMD EPYC 2"));
        assert!(!base.contains("AMD"));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn native_fingerprint_is_stable_and_hashed() {
        let probe = NativeProbe::for_product("gstarcad");
        let first = probe.fingerprint().unwrap();
        assert_eq!(first, probe.fingerprint().unwrap());
        for (name, value) in &first.components {
            assert!(["machine-id", "mac", "cpu", "disk"].contains(&name.as_str()));
            assert_eq!(value.len(), 32);
        }
    }

    #[test]
    fn a_fixed_probe_without_components_is_an_error() {
        assert_eq!(
            FixedProbe::default().fingerprint(),
            Err(ProbeError::NoComponents)
        );
    }
}
