//! The USB dongle on the client's machine.
//!
//! A dongle proves it is present by signing a challenge (see [`licet_engine::dongle`]): the
//! start-up check draws a fresh random challenge and checks the answer before it trusts a
//! certificate bound to a dongle, and online requests for a standalone dongle license carry the
//! dongle's answer to a challenge the server issued. A [`DongleProver`] reaches the dongle; the
//! shipped one is the sandboxed `dongle-hid` plugin ([`licet_plugin_host::DongleReader`]), over
//! real USB HID devices or a software dongle file for development.

use licet_engine::report::Report as _;
use std::fmt;
use std::path::Path;

use ed25519_dalek::VerifyingKey;
use licet_engine::dongle::{DongleProof, DongleProofError, CHALLENGE_LEN};
use licet_plugin_host::{hid_backend, DongleReader, DONGLE_PLUGIN};

/// Why no dongle proved its presence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DongleError {
    /// No dongle answered (none plugged in, a device error, a refused plugin).
    #[error("no dongle answered: {0}")]
    Absent(String),
    /// A dongle answered, but its answer does not verify.
    #[error("the dongle's answer is not valid")]
    InvalidProof(#[from] DongleProofError),
    /// No random challenge could be drawn.
    #[error("no random challenge could be drawn: {0}")]
    Random(String),
    /// The dongle plugin or the software dongle file could not be loaded.
    #[error("the dongle reader cannot be loaded: {0}")]
    Reader(String),
}

/// Reaches the dongle on this machine.
pub trait DongleProver: fmt::Debug + Send + Sync {
    /// The dongle's answer to `challenge`. The caller verifies it.
    fn prove(&self, challenge: &[u8; CHALLENGE_LEN]) -> Result<DongleProof, DongleError>;
}

impl DongleProver for DongleReader {
    fn prove(&self, challenge: &[u8; CHALLENGE_LEN]) -> Result<DongleProof, DongleError> {
        DongleReader::prove(self, challenge)
            .map(|verified| verified.proof)
            .map_err(|error| DongleError::Absent(error.report()))
    }
}

/// The serial of the dongle present now: its answer to a fresh random challenge, verified.
pub fn present_serial(prover: &dyn DongleProver) -> Result<String, DongleError> {
    let mut challenge = [0u8; CHALLENGE_LEN];
    getrandom::fill(&mut challenge).map_err(|error| DongleError::Random(error.to_string()))?;
    Ok(prover.prove(&challenge)?.verify(&challenge)?)
}

/// Loads the vendor-signed dongle plugin in `plugin_dir` (see `docs/plugins.md`) over the
/// machine's USB HID devices, or over the software dongle file `software_dongle` (development).
/// Only the `dongle-hid` plugin loads there; any other signed plugin is refused.
pub fn load_reader(
    plugin_dir: &Path,
    vendor_key: VerifyingKey,
    software_dongle: Option<&Path>,
) -> Result<DongleReader, DongleError> {
    let hid = hid_backend(software_dongle).map_err(|error| DongleError::Reader(error.report()))?;
    DongleReader::load(plugin_dir, DONGLE_PLUGIN, vendor_key, hid)
        .map_err(|error| DongleError::Reader(error.report()))
}
