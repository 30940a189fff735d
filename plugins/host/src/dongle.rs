//! Checking for a USB dongle the way a host does: a signed `dongle-hid` plugin, the machine's HID
//! devices (or a software dongle file during development) and a fresh challenge per check.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use licet_engine::dongle::CHALLENGE_LEN;

use crate::error::PluginError;
use crate::hardware::{HardwareCheckPlugin, VerifiedDongle};
use crate::hid::{HidApiBackend, HidBackend, NoHid, SoftwareDongleError, SoftwareDongleFile};
use crate::runtime::PluginHost;

/// A loaded dongle-check plugin and the HID devices it reaches: proves which dongle is present.
pub struct DongleReader {
    plugin: HardwareCheckPlugin,
    hid: Arc<dyn HidBackend>,
}

impl fmt::Debug for DongleReader {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DongleReader")
            .field("plugin", &self.plugin.manifest().name)
            .finish_non_exhaustive()
    }
}

impl DongleReader {
    /// Verifies and loads the dongle plugin in `plugin_dir` (signed with `vendor_key`'s secret
    /// half); its dongle checks go to `hid`. The slot takes only the `hardware-check` plugin
    /// named `plugin` (the shipped one is [`crate::DONGLE_PLUGIN`], `dongle-hid`): any other signed
    /// plugin, such as a transport or the fingerprint check, is refused before it is compiled
    /// ([`PluginError::WrongWorld`], [`PluginError::WrongPlugin`]).
    pub fn load(
        plugin_dir: &Path,
        plugin: &str,
        vendor_key: VerifyingKey,
        hid: Arc<dyn HidBackend>,
    ) -> Result<DongleReader, PluginError> {
        let plugin = PluginHost::new(vendor_key)?.load_hardware_check(plugin_dir, plugin)?;
        Ok(DongleReader::new(plugin, hid))
    }

    /// A reader over an already loaded plugin.
    pub fn new(plugin: HardwareCheckPlugin, hid: Arc<dyn HidBackend>) -> DongleReader {
        DongleReader { plugin, hid }
    }

    /// The plugin.
    pub fn plugin(&self) -> &HardwareCheckPlugin {
        &self.plugin
    }

    /// Has the dongle answer `challenge` and verifies the answer (see
    /// [`HardwareCheckPlugin::dongle_check`]). For a challenge a remote verifier chose.
    pub fn prove(&self, challenge: &[u8; CHALLENGE_LEN]) -> Result<VerifiedDongle, PluginError> {
        self.plugin.dongle_check(Arc::clone(&self.hid), challenge)
    }

    /// Proves which dongle is present now, over a fresh random challenge. A missing dongle is a
    /// [`PluginError::Plugin`] with code `device`.
    pub fn present(&self) -> Result<VerifiedDongle, PluginError> {
        let mut challenge = [0u8; CHALLENGE_LEN];
        getrandom::fill(&mut challenge).map_err(|error| PluginError::Random(error.to_string()))?;
        self.prove(&challenge)
    }
}

/// The HID devices dongle checks should use: the software dongle file `software_dongle` when one
/// is given (development and tests; read at every check, so removing the file unplugs it), else the machine's USB HID devices, else, where hidapi cannot
/// start (no device tree, as in many containers), no devices at all, so that the answer is "no
/// dongle" rather than a failure.
pub fn hid_backend(
    software_dongle: Option<&Path>,
) -> Result<Arc<dyn HidBackend>, SoftwareDongleError> {
    if let Some(path) = software_dongle {
        return Ok(Arc::new(SoftwareDongleFile::new(path)?));
    }
    Ok(match HidApiBackend::new() {
        Ok(backend) => Arc::new(backend),
        Err(_) => Arc::new(NoHid),
    })
}
