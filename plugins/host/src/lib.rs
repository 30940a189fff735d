//! Licet's sandboxed WebAssembly plugin host.
//!
//! Transports (how a request reaches a server, and how the server accepts it) and hardware checks
//! (machine fingerprints, USB dongles) are WebAssembly components that target the worlds of
//! `plugins/wit` (`licet:plugin@0.2.0`; components built against `plugins/wit-0.1.0` still load,
//! see [`WitVersion`]). This crate is the only part of Licet that knows wasmtime. It
//!
//! - verifies each plugin's manifest against the vendor's Ed25519 key and the component against
//!   the SHA-256 in the manifest ([`signing`]), loads a plugin only into a slot that takes its
//!   signed world and name ([`Slot`]), and refuses components that import anything outside their
//!   world;
//! - compiles each plugin once per load into an `InstancePre` (or loads it from a verified
//!   entry of the host's compiled-module cache, [`cache`]) and runs every call in a fresh store
//!   (or a warm instance the host asked for) under one [`Limits`] value: fuel, a wall-clock
//!   deadline, memory, table, stack and payload limits;
//! - performs all I/O itself, only what the manifest allows: HTTP to the allowed URLs
//!   ([`HttpClient`]; [`HttpsClient`] speaks HTTPS, see [`http`]), request and response files at paths the host picks, HID devices with the
//!   allowed IDs ([`hid`]), machine readings ([`read_machine`]);
//! - verifies dongle answers itself: a dongle signs the host's challenge with its Ed25519 key,
//!   the host checks the signature and that the serial is the key's ([`DongleReader`]), so no
//!   verifier holds a secret.
#![deny(missing_docs)]

mod bindings;
pub mod cache;
mod call_state;
mod deadline;
pub mod dongle;
pub mod error;
pub mod hardware;
pub mod hid;
pub mod http;
pub mod limits;
pub mod manifest;
pub mod runtime;
pub mod signing;
#[cfg(feature = "test-support")]
pub mod test_support;
pub mod transport;

pub use cache::CacheStats;
pub use dongle::{hid_backend, DongleReader};
pub use error::PluginError;
pub use hardware::{
    read_machine, read_machine_at, DongleRefusal, HardwareCheckPlugin, Reading, VerifiedDongle,
    WarmHardwareCheck,
};
pub use hid::{
    parse_usb_id, DongleFileError, HidApiBackend, HidBackend, HidDevice, HidError, NoHid,
    SoftwareDongle, SoftwareDongleError, SoftwareDongleFile, DEFAULT_DONGLE_PRODUCT_ID,
    DEFAULT_DONGLE_VENDOR_ID,
};
pub use licet_engine::dongle::{DongleProof, DongleProofError};
pub use limits::Limits;
pub use manifest::{
    Allow, HidId, Manifest, Slot, WitVersion, World, DONGLE_PLUGIN, FINGERPRINT_PLUGIN,
};
pub use runtime::{Instances, LoadedPlugin, PluginHost, PluginHostBuilder};
pub use signing::{
    read_signing_key, read_verifying_key, sign_plugin, verify_plugin, verify_plugin_bytes,
    VerifiedPlugin,
};
pub use transport::{
    Answer, Destination, HttpClient, HttpsClient, TransportPlugin, WarmTransport, WireReply,
    WireRequest,
};
