//! Why loading or calling a plugin failed.

use std::path::PathBuf;

/// Why a plugin could not be loaded, signed or called.
///
/// Every failure of a plugin call leaves the host able to serve the next call: each call runs in a
/// fresh store, so nothing a plugin did survives its failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PluginError {
    /// A file could not be read or written.
    #[error("`{path}`")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file does not hold a key of the expected kind.
    #[error("`{path}` is not a licet {kind} key file")]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// `secret` or `public`.
        kind: &'static str,
    },
    /// The plugin directory has no signature.
    #[error("plugin `{path}` is not signed: `plugin.sig` is missing")]
    Unsigned {
        /// The plugin directory.
        path: PathBuf,
    },
    /// The manifest's signature does not verify with the vendor key.
    #[error("plugin `{path}`: the manifest signature does not verify with the vendor key")]
    BadSignature {
        /// The plugin directory.
        path: PathBuf,
    },
    /// The manifest is malformed or asks for something the host does not allow.
    #[error("plugin manifest `{path}`: {reason}")]
    Manifest {
        /// The manifest file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The WebAssembly file is not the one the signed manifest names.
    #[error("plugin `{plugin}`: `{wasm}` does not match the SHA-256 in its signed manifest")]
    HashMismatch {
        /// The plugin's name.
        plugin: String,
        /// The WebAssembly file.
        wasm: PathBuf,
    },
    /// The plugin targets another world than the slot it was put in.
    #[error("plugin `{plugin}` is a `{found}` plugin, not a `{expected}` plugin")]
    WrongWorld {
        /// The plugin's name.
        plugin: String,
        /// The world the caller asked for.
        expected: &'static str,
        /// The world in the manifest.
        found: &'static str,
    },
    /// The plugin is of the slot's world but not the plugin the slot takes.
    #[error(
        "plugin `{path}` is the `{world}` plugin `{found}`, but this slot takes only `{expected}`"
    )]
    WrongPlugin {
        /// The plugin directory.
        path: PathBuf,
        /// The slot's world.
        world: &'static str,
        /// The name the slot takes.
        expected: String,
        /// The name in the signed manifest.
        found: String,
    },
    /// The component imports an interface outside its world.
    #[error("plugin `{plugin}` imports `{import}`, which its world `{world}` does not allow")]
    ForbiddenImport {
        /// The plugin's name.
        plugin: String,
        /// The world.
        world: &'static str,
        /// The offending import.
        import: String,
    },
    /// The WebAssembly could not be compiled or linked.
    #[error("plugin `{plugin}` cannot be loaded: {reason}")]
    Load {
        /// The plugin's name.
        plugin: String,
        /// The compiler's or linker's message.
        reason: String,
    },
    /// A server was given a transport without a server side: one built against an interface
    /// version that has no `accept` (0.1.0).
    #[error(
        "plugin `{plugin}` is built against licet:plugin@{version}, which has no server side of \
         transports (`accept`); build it against licet:plugin@0.2.0"
    )]
    NoServerSide {
        /// The plugin's name.
        plugin: String,
        /// The interface version it was built against.
        version: &'static str,
    },
    /// The plugin ran out of fuel (an endless or overly long computation).
    #[error("plugin `{plugin}` exceeded its fuel of {fuel} units")]
    OutOfFuel {
        /// The plugin's name.
        plugin: String,
        /// The fuel each call gets.
        fuel: u64,
    },
    /// The plugin tried to grow its memory past the limit.
    #[error("plugin `{plugin}` exceeded its memory limit of {limit} bytes")]
    MemoryLimit {
        /// The plugin's name.
        plugin: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The plugin spent longer than its budget waiting on HID devices.
    #[error("plugin `{plugin}` waited on HID devices for longer than {limit_ms} ms")]
    HidTimeLimit {
        /// The plugin's name.
        plugin: String,
        /// The budget of one call, in milliseconds.
        limit_ms: u128,
    },
    /// The call ran past its wall-clock bound ([`crate::Limits::call_time`]): a computation that
    /// fuel does not bound in time, or a wait in a host call.
    #[error("plugin `{plugin}` ran longer than its time limit of {limit_ms} ms")]
    Timeout {
        /// The plugin's name.
        plugin: String,
        /// The bound of one call, in milliseconds.
        limit_ms: u128,
    },
    /// The plugin recursed too deeply.
    #[error("plugin `{plugin}` overflowed its stack")]
    StackOverflow {
        /// The plugin's name.
        plugin: String,
    },
    /// The plugin passed the host more bytes than the host accepts.
    #[error("plugin `{plugin}` passed {size} bytes in {what}, more than the limit of {limit}")]
    PayloadTooLarge {
        /// The plugin's name.
        plugin: String,
        /// What carried the bytes.
        what: &'static str,
        /// The size passed.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The plugin asked for something its manifest does not allow.
    #[error("plugin `{plugin}` is not allowed to use {what}")]
    NotAllowed {
        /// The plugin's name.
        plugin: String,
        /// What it asked for, in backticks.
        what: String,
    },
    /// All instance slots are in use; try again when a call finishes.
    #[error("plugin `{plugin}` cannot start: {concurrent_calls} plugin calls are already running")]
    Busy {
        /// The plugin's name.
        plugin: String,
        /// The host's limit on calls at once.
        concurrent_calls: u32,
    },
    /// The plugin trapped (a panic, an invalid operation).
    #[error("plugin `{plugin}` trapped: {reason}")]
    Trapped {
        /// The plugin's name.
        plugin: String,
        /// The trap.
        reason: String,
    },
    /// The plugin returned an error.
    #[error("plugin `{plugin}` failed ({code}): {message}")]
    Plugin {
        /// The plugin's name.
        plugin: String,
        /// The plugin's stable error code.
        code: String,
        /// The plugin's message.
        message: String,
    },
    /// A dongle check's answer does not prove that the dongle is present: it does not verify over
    /// the challenge, or the plugin named another serial than the answering key's.
    #[error("plugin `{plugin}`: the dongle's answer is refused: {reason}")]
    DongleProof {
        /// The plugin's name.
        plugin: String,
        /// Why the answer is refused.
        reason: crate::hardware::DongleRefusal,
    },
    /// The host's [`crate::Limits`] are not usable.
    #[error("plugin host limits: `{field}` {reason}")]
    Limits {
        /// The field.
        field: &'static str,
        /// What it must be.
        reason: &'static str,
    },
    /// The compiled-module cache directory cannot be used.
    #[error("compiled plugin cache `{path}`")]
    Cache {
        /// The cache directory.
        path: PathBuf,
        /// Why.
        source: crate::cache::CacheError,
    },
    /// The system's random source failed.
    #[error("the system random source failed: {0}")]
    Random(String),
    /// The host's side of a transport (HTTP, files) failed.
    #[error("transport: {0}")]
    Transport(String),
    /// An HTTP exchange of a transport failed.
    #[error("http")]
    Http(#[from] crate::http::HttpError),
    /// A HID device could not be used.
    #[error("hid")]
    Hid(#[from] crate::hid::HidError),
}
