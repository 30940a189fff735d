//! Hardware-check plugins: machine fingerprints from readings the host takes, dongle checks
//! through HID handles the host grants, verified by the host against its own challenge.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::bindings::hardware::exports::licet::plugin::check;
use crate::bindings::hardware::licet::plugin::types::PluginError as GuestError;
use crate::bindings::hardware::{HardwareCheck, HardwareCheckPre};
use crate::bindings::v0_1::hardware as v0_1;
use crate::call_state::CallState;
use crate::error::PluginError;
use crate::hid::HidBackend;
use crate::manifest::{Manifest, WitVersion};
use crate::runtime::{Runtime, Warm};
use licet_engine::dongle::{DongleProof, DongleProofError, CHALLENGE_LEN};
use licet_engine::Fingerprint;
use wasmtime::Store;

pub use crate::limits::MAX_COMPONENTS;
/// The most bytes read from any one machine file.
const MAX_READING_BYTES: u64 = 64 << 10;

/// One raw reading of the machine, such as the contents of `/etc/machine-id`: `kind` is what was
/// read (`machine-id`, `mac`, `cpu` or `disk`), `source` where it was read from, `value` the raw
/// value. It is the interface's own `reading` record, so a call passes the host's readings to
/// the plugin without copying them first.
pub use crate::bindings::hardware::exports::licet::plugin::check::Reading;

impl Reading {
    /// A reading.
    pub fn new(kind: &str, source: &str, value: &str) -> Reading {
        Reading {
            kind: kind.to_string(),
            source: source.to_string(),
            value: value.to_string(),
        }
    }
}

/// Why a dongle check's answer is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DongleRefusal {
    /// The answer is not a valid proof of presence for the challenge.
    #[error(transparent)]
    Proof(#[from] DongleProofError),
    /// The plugin claimed a serial that is not the one derived from the answering key.
    #[error("the plugin claims serial `{claimed}`, but the answering key's serial is `{derived}`")]
    SerialMismatch {
        /// The serial the plugin returned (at most its first 64 characters).
        claimed: String,
        /// The serial of the key that signed the challenge.
        derived: String,
    },
}

/// A dongle that proved its presence: it signed the verifier's challenge with the key its serial
/// is derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedDongle {
    /// The dongle's serial (`LD-` and 20 hex digits), derived from its public key.
    pub serial: String,
    /// Its answer to the challenge, for a verifier elsewhere (such as the server) to check again.
    pub proof: DongleProof,
}

fn read_text(path: &Path) -> Option<String> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .ok()?
        .take(MAX_READING_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn sorted_entries(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    entries
}

/// Takes this machine's raw readings: `/etc/machine-id`, `/sys/class/net/*/address` (all but
/// `lo`), the first processor of `/proc/cpuinfo` and the disk serials under `/sys/block`.
/// Unreadable sources are skipped; the plugin decides what is usable.
pub fn read_machine() -> Vec<Reading> {
    read_machine_at(Path::new("/"))
}

/// [`read_machine`] under another root directory (a copy of the files, for tests).
pub fn read_machine_at(root: &Path) -> Vec<Reading> {
    let mut readings = Vec::new();
    let mut push = |kind: &str, path: &Path, value: String| {
        let source = Path::new("/").join(path.strip_prefix(root).unwrap_or(path));
        readings.push(Reading::new(kind, &source.to_string_lossy(), &value));
    };
    let machine_id = root.join("etc/machine-id");
    if let Some(value) = read_text(&machine_id) {
        push("machine-id", &machine_id, value);
    }
    for interface in sorted_entries(&root.join("sys/class/net")) {
        if interface.file_name().is_some_and(|name| name == "lo") {
            continue;
        }
        let address = interface.join("address");
        if let Some(value) = read_text(&address) {
            push("mac", &address, value);
        }
    }
    let cpuinfo = root.join("proc/cpuinfo");
    if let Some(text) = read_text(&cpuinfo) {
        let first = text.split("\n\n").next().unwrap_or_default().to_string();
        push("cpu", &cpuinfo, first);
    }
    for disk in sorted_entries(&root.join("sys/block")) {
        let virtual_disk = disk.file_name().is_some_and(|name| {
            let name = name.to_string_lossy();
            ["loop", "ram", "zram", "dm-", "md", "sr", "nbd"]
                .iter()
                .any(|prefix| name.starts_with(prefix))
        });
        if virtual_disk {
            continue;
        }
        for file in ["device/serial", "serial", "device/wwid"] {
            let path = disk.join(file);
            if let Some(value) = read_text(&path) {
                push("disk", &path, value);
                break;
            }
        }
    }
    readings
}

/// A hardware-check component ready to instantiate, of the interface version it was built
/// against.
pub(crate) enum HardwarePres {
    V0_1(v0_1::HardwareCheckPre<CallState>),
    V0_2(HardwareCheckPre<CallState>),
}

impl HardwarePres {
    fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            HardwarePres::V0_1(pre) => Instance::V0_1(pre.instantiate(store)?),
            HardwarePres::V0_2(pre) => Instance::V0_2(pre.instantiate(store)?),
        })
    }
}

/// An instantiated hardware check; a 0.1.0 instance's values are converted into the 0.2.0
/// types here.
enum Instance {
    V0_1(v0_1::HardwareCheck),
    V0_2(HardwareCheck),
}

type Guest<T> = wasmtime::Result<Result<T, GuestError>>;
/// The manifest's config as the generated bindings take it.
type Config = Vec<(String, String)>;

fn from_v0_1_error(error: v0_1::licet::plugin::types::PluginError) -> GuestError {
    GuestError {
        code: error.code,
        message: error.message,
    }
}

// The generated bindings take the config as `&Vec`.
#[allow(clippy::ptr_arg)]
impl Instance {
    fn fingerprint(
        &self,
        store: &mut Store<CallState>,
        config: &Config,
        salt: &[u8],
        readings: &[Reading],
    ) -> Guest<Vec<check::Component>> {
        use v0_1::exports::licet::plugin::check as old;
        match self {
            Instance::V0_2(instance) => instance
                .licet_plugin_check()
                .call_fingerprint(store, config, salt, readings),
            Instance::V0_1(instance) => {
                let readings: Vec<old::Reading> = readings
                    .iter()
                    .map(|reading| old::Reading {
                        kind: reading.kind.clone(),
                        source: reading.source.clone(),
                        value: reading.value.clone(),
                    })
                    .collect();
                Ok(instance
                    .licet_plugin_check()
                    .call_fingerprint(store, config, salt, &readings)?
                    .map(|components| {
                        components
                            .into_iter()
                            .map(|component| check::Component {
                                name: component.name,
                                value: component.value,
                            })
                            .collect()
                    })
                    .map_err(from_v0_1_error))
            }
        }
    }

    fn dongle_check(
        &self,
        store: &mut Store<CallState>,
        config: &Config,
        challenge: &[u8],
    ) -> Guest<check::DongleProof> {
        match self {
            Instance::V0_2(instance) => instance
                .licet_plugin_check()
                .call_dongle_check(store, config, challenge),
            Instance::V0_1(instance) => Ok(instance
                .licet_plugin_check()
                .call_dongle_check(store, config, challenge)?
                .map(|proof| check::DongleProof {
                    serial: proof.serial,
                    response: proof.response,
                })
                .map_err(from_v0_1_error)),
        }
    }
}

/// A loaded hardware-check plugin.
pub struct HardwareCheckPlugin {
    runtime: Arc<Runtime>,
    manifest: Manifest,
    config: Vec<(String, String)>,
    pre: HardwarePres,
}

impl fmt::Debug for HardwareCheckPlugin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("HardwareCheckPlugin")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

fn guest_error(plugin: &str, error: GuestError) -> PluginError {
    PluginError::Plugin {
        plugin: plugin.to_string(),
        code: error.code,
        message: error.message,
    }
}

impl HardwareCheckPlugin {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        manifest: Manifest,
        pre: HardwarePres,
    ) -> HardwareCheckPlugin {
        HardwareCheckPlugin {
            runtime,
            config: manifest.config_pairs(),
            manifest,
            pre,
        }
    }

    /// The plugin's signed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn name(&self) -> &str {
        &self.manifest.name
    }

    /// The version of the `licet:plugin` interface the component was built against.
    pub fn wit_version(&self) -> WitVersion {
        match self.pre {
            HardwarePres::V0_1(_) => WitVersion::V0_1,
            HardwarePres::V0_2(_) => WitVersion::V0_2,
        }
    }

    /// The machine's fingerprint from `readings`, hashed with the per-product `salt`, in a fresh
    /// instance.
    pub fn fingerprint(
        &self,
        salt: &[u8],
        readings: &[Reading],
    ) -> Result<Fingerprint, PluginError> {
        let mut store = self.runtime.store(&self.manifest, None)?;
        let components = self.runtime.run(self.name(), &mut store, |store| {
            self.pre
                .instantiate(&mut *store)?
                .fingerprint(store, &self.config, salt, readings)
        })?;
        self.finish_fingerprint(components)
    }

    /// An instance kept warm for repeated fingerprints (a client that re-checks the machine
    /// periodically). Each call gets the full fuel and a fresh deadline again; after a failed
    /// call the instance is unusable and a new one must be made. It holds one of the host's
    /// [`crate::Limits::concurrent_calls`] instance slots while it lives.
    pub fn warm_instance(&self) -> Result<WarmHardwareCheck<'_>, PluginError> {
        let warm = Warm::new(&self.runtime, &self.manifest, |store| {
            self.pre.instantiate(store)
        })?;
        Ok(WarmHardwareCheck { plugin: self, warm })
    }

    fn finish_fingerprint(
        &self,
        components: Result<Vec<check::Component>, GuestError>,
    ) -> Result<Fingerprint, PluginError> {
        let components = components.map_err(|error| guest_error(self.name(), error))?;
        let size = components
            .iter()
            .map(|component| component.name.len() + component.value.len())
            .sum();
        self.runtime
            .check_size(self.name(), "a fingerprint", size)?;
        let limit = self.runtime.limits().fingerprint_components;
        if components.len() > limit {
            return Err(PluginError::PayloadTooLarge {
                plugin: self.name().to_string(),
                what: "fingerprint components",
                size: components.len(),
                limit,
            });
        }
        Ok(Fingerprint::from_pairs(
            components
                .into_iter()
                .map(|component| (component.name, component.value)),
        ))
    }

    /// Sends `challenge` to the dongle through `hid` (only the devices the manifest allows) and
    /// checks its answer: the signature must verify over `challenge` with the public key in the
    /// answer, and the serial the plugin names must be the one derived from that key. The plugin
    /// only moves bytes; it cannot vouch for a dongle that did not sign.
    ///
    /// Draw a fresh random challenge for every check (see [`crate::DongleReader::present`]), or
    /// take it from the verifier that asked (a server binding a license to the dongle).
    pub fn dongle_check(
        &self,
        hid: Arc<dyn HidBackend>,
        challenge: &[u8; CHALLENGE_LEN],
    ) -> Result<VerifiedDongle, PluginError> {
        let mut store = self.runtime.store(&self.manifest, Some(hid))?;
        let answer = self.runtime.run(self.name(), &mut store, |store| {
            self.pre
                .instantiate(&mut *store)?
                .dongle_check(store, &self.config, challenge)
        })?;
        let answer = answer.map_err(|error| guest_error(self.name(), error))?;
        self.runtime.check_size(
            self.name(),
            "a dongle proof",
            answer.serial.len() + answer.response.len(),
        )?;
        let refused = |reason: DongleRefusal| PluginError::DongleProof {
            plugin: self.name().to_string(),
            reason,
        };
        let proof = DongleProof::from_bytes(&answer.response)
            .map_err(|error| refused(DongleRefusal::Proof(error)))?;
        let serial = proof
            .verify(challenge)
            .map_err(|error| refused(DongleRefusal::Proof(error)))?;
        if answer.serial != serial {
            return Err(refused(DongleRefusal::SerialMismatch {
                claimed: answer.serial.chars().take(64).collect(),
                derived: serial,
            }));
        }
        Ok(VerifiedDongle { serial, proof })
    }
}

/// A hardware-check instance kept for repeated fingerprints; see
/// [`HardwareCheckPlugin::warm_instance`].
pub struct WarmHardwareCheck<'a> {
    plugin: &'a HardwareCheckPlugin,
    warm: Warm<Instance>,
}

impl fmt::Debug for WarmHardwareCheck<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WarmHardwareCheck")
            .field("plugin", &self.plugin.manifest.name)
            .field("failed", &self.warm.failed())
            .finish_non_exhaustive()
    }
}

impl WarmHardwareCheck<'_> {
    /// Like [`HardwareCheckPlugin::fingerprint`], in this instance.
    pub fn fingerprint(
        &mut self,
        salt: &[u8],
        readings: &[Reading],
    ) -> Result<Fingerprint, PluginError> {
        let plugin = self.plugin;
        let components = self
            .warm
            .call(&plugin.runtime, plugin.name(), |bindings, store| {
                bindings.fingerprint(store, &plugin.config, salt, readings)
            })?;
        plugin.finish_fingerprint(components)
    }
}
