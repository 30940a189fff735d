//! What the client knows about its machine: its fingerprint, whether that identity can be trusted
//! where the client runs, and the times the machine keeps for itself. (The dongle present proves
//! itself; see [`crate::dongle`].)
//!
//! A [`MachineProbe`] answers all three. [`NativeProbe`] reads the machine directly and hashes
//! every component with a per-product salt, so the raw identifiers never leave the machine and two
//! products see unrelated values. [`FixedProbe`] returns given values; tests and the WebAssembly
//! fingerprint plugin plug in through the same trait.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use licet_engine::Fingerprint;
use serde::Serialize;
use sha2::{Digest, Sha256};

#[cfg(target_os = "linux")]
mod linux;

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

/// Whether the machine's identity, as the probe reads it, can be trusted where the client runs.
///
/// It cannot when the identity files are not the machine's own (a bind mount or another file
/// system laid over `/etc/machine-id` or the `/sys` files read) or the client runs in a mount,
/// network or user namespace that is not the machine's: there anyone can present a fresh machine.
/// What an untrusted environment gets is the policy's `fingerprint.untrusted_environment`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// What was found, one sentence each; none when the environment is trusted.
    pub findings: Vec<String>,
}

impl Environment {
    /// A trusted environment.
    pub fn trusted() -> Self {
        Environment::default()
    }

    /// An untrusted environment, for `finding`.
    pub fn untrusted(finding: impl Into<String>) -> Self {
        Environment {
            findings: vec![finding.into()],
        }
    }

    /// Whether nothing was found.
    pub fn is_trusted(&self) -> bool {
        self.findings.is_empty()
    }

    /// `trusted`, or `untrusted: ` and the findings.
    pub fn summary(&self) -> String {
        if self.is_trusted() {
            "trusted".to_owned()
        } else {
            format!("untrusted: {}", self.findings.join("; "))
        }
    }
}

/// Times the machine keeps for itself, against which the client checks its clock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineClock {
    /// The kernel's id of the current boot (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: Option<String>,
    /// Time since boot, suspend included (`/proc/uptime`, `CLOCK_BOOTTIME`), which no one can
    /// set back.
    pub uptime: Option<std::time::Duration>,
    /// Times the clock is known to have reached, each with where it comes from: the kernel's own
    /// wall clock (boot time plus uptime, read from `/proc` and so untouched by a library that
    /// fakes the process's clock) and the modification times of files the system maintains.
    pub floors: Vec<ClockFloor>,
}

/// A time the clock has already reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClockFloor {
    /// Where it comes from, e.g. `the kernel's clock` or `/var/lib/dpkg/status`.
    pub source: String,
    /// The time.
    pub at: DateTime<Utc>,
}

/// Identifies the machine the client runs on.
pub trait MachineProbe: fmt::Debug {
    /// The machine's current fingerprint, components already hashed.
    fn fingerprint(&self) -> Result<Fingerprint, ProbeError>;

    /// Whether the identity read by [`MachineProbe::fingerprint`] can be trusted here. The
    /// default knows nothing against it.
    fn environment(&self) -> Environment {
        Environment::trusted()
    }

    /// The times the machine keeps for itself. The default knows none.
    fn clock(&self) -> MachineClock {
        MachineClock::default()
    }
}

/// A probe that returns a fixed fingerprint (and, when given, a fixed environment and clock).
#[derive(Debug, Clone, Default)]
pub struct FixedProbe {
    /// The fingerprint to report.
    pub fingerprint: Fingerprint,
    environment: Environment,
    clock: MachineClock,
}

impl FixedProbe {
    /// A probe reporting `fingerprint`, a trusted environment and no machine times.
    pub fn new(fingerprint: Fingerprint) -> Self {
        FixedProbe {
            fingerprint,
            ..FixedProbe::default()
        }
    }

    /// The same probe reporting `environment`.
    pub fn with_environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// The same probe reporting `clock` as the machine's times.
    pub fn with_clock(mut self, clock: MachineClock) -> Self {
        self.clock = clock;
        self
    }
}

impl MachineProbe for FixedProbe {
    fn fingerprint(&self) -> Result<Fingerprint, ProbeError> {
        if self.fingerprint.components.is_empty() {
            return Err(ProbeError::NoComponents);
        }
        Ok(self.fingerprint.clone())
    }

    fn environment(&self) -> Environment {
        self.environment.clone()
    }

    fn clock(&self) -> MachineClock {
        self.clock.clone()
    }
}

/// Reads the machine's identifiers from the operating system and hashes them per product.
///
/// Components (named as in policies), on Linux:
///
/// - `machine-id`: `/etc/machine-id` (or `/var/lib/dbus/machine-id`);
/// - `mac`: the sorted permanent MAC addresses of the Ethernet-type adapters that are not virtual
///   (no link kind: not a bridge, veth, tunnel, bond, dummy, ...), asked of the kernel over
///   netlink (`RTM_GETLINK`), so no file can stand in for them;
/// - `cpu`: the CPU model from `/proc/cpuinfo`;
/// - `disk`: the serial of the first whole disk reporting one, from the kernel's sysfs
///   attributes (`serial`, `device/serial`, or the cached SCSI INQUIRY page 0x80 `device/vpd_pg80`),
///   each read checked to come from the machine's own sysfs mount.
///
/// A component that cannot be read is left out; fuzzy matching in the policy decides how many
/// must agree. [`MachineProbe::environment`] reports identity files that are bind mounts and
/// namespaces that are not the machine's; [`MachineProbe::clock`] the boot id, the uptime, the
/// kernel's wall clock and a few system-maintained file times. Only Linux is read natively
/// today.
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
        NativeProbe {
            salt: licet_engine::fingerprint::product_salt(product),
        }
    }

    /// The raw (unhashed) components this machine exposes.
    fn raw_components() -> BTreeMap<&'static str, String> {
        #[cfg(target_os = "linux")]
        {
            linux::components()
        }
        #[cfg(not(target_os = "linux"))]
        {
            BTreeMap::new()
        }
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

    fn environment(&self) -> Environment {
        #[cfg(target_os = "linux")]
        {
            linux::environment()
        }
        #[cfg(not(target_os = "linux"))]
        {
            Environment::trusted()
        }
    }

    fn clock(&self) -> MachineClock {
        #[cfg(target_os = "linux")]
        {
            linux::clock()
        }
        #[cfg(not(target_os = "linux"))]
        {
            MachineClock::default()
        }
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

/// The 32 bytes of 64 lowercase hexadecimal digits (a MAC line), or `None`.
pub(crate) fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
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

    #[cfg(target_os = "linux")]
    #[test]
    fn the_native_clock_knows_the_boot_and_the_kernels_time() {
        let clock = NativeProbe::for_product("gstarcad").clock();
        assert!(clock.boot_id.is_some_and(|id| !id.is_empty()));
        assert!(clock.uptime.is_some());
        let kernel = clock
            .floors
            .iter()
            .find(|floor| floor.source == "the kernel's clock")
            .unwrap();
        // The kernel's clock (boot time plus uptime) is the process's clock, give or take the
        // rounding of the boot time and the margin the floor keeps.
        let gap = Utc::now() - kernel.at;
        assert!(
            gap >= chrono::Duration::zero() && gap < chrono::Duration::seconds(10),
            "{gap}"
        );
    }

    #[test]
    fn a_fixed_probe_without_components_is_an_error() {
        assert_eq!(
            FixedProbe::default().fingerprint(),
            Err(ProbeError::NoComponents)
        );
    }

    #[test]
    fn environments_say_what_was_found() {
        assert_eq!(Environment::trusted().summary(), "trusted");
        let untrusted = Environment::untrusted("`/etc/machine-id` is a mount point");
        assert!(!untrusted.is_trusted());
        assert_eq!(
            untrusted.summary(),
            "untrusted: `/etc/machine-id` is a mount point"
        );
    }
}
