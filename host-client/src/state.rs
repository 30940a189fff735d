//! The signed local state: what the client remembers between runs, tamper-evident.
//!
//! One file per product, `<product>.state`, in the state directory:
//!
//! ```text
//! LICET-STATE 1
//! machine: {"cpu":"…","mac":"…","machine-id":"…"}
//! mac: <64 hex digits: HMAC-SHA256>
//! {…the state as JSON…}
//! ```
//!
//! The MAC covers the first two lines and the JSON body exactly as stored. Its key is derived from
//! the product, the vendor's public key and the machine fingerprint on the `machine:` line; that
//! fingerprint must also match the current machine (k of n, as the policy says). Loading reads the
//! `machine:` line, derives the key and checks the MAC before the body is decoded.
//!
//! What this protects against: editing any byte, truncating the file or deleting part of it, and
//! copying it to another machine are all detected, and a state that does not verify grants
//! nothing. What it does not: the key derivation is in the shipped program, so a determined user
//! who reimplements it can write a state that verifies, and a user can restore an older copy of
//! their own file. Neither grants use: only the vendor-signed certificate does, and it carries its
//! own machine binding, expiry and offline period. The state holds the latest time seen (clock
//! rollback detection) and remembers returns and server denials.

use licet_engine::report::Report as _;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use licet_engine::exchange::ExchangeState;
use licet_engine::fingerprint::components_match;
use licet_engine::policy::FingerprintPolicy;
use licet_engine::{Code, Fingerprint};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::machine::{hex, unhex};

const HEADER: &str = "LICET-STATE 1\n";
const MACHINE_PREFIX: &str = "machine: ";
const MAC_PREFIX: &str = "mac: ";
/// The largest state file read, in bytes.
pub const MAX_STATE_BYTES: usize = 1024 * 1024;

type HmacSha256 = Hmac<Sha256>;

/// Everything the client remembers, as stored in the body of the state file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalState {
    /// The product the state belongs to.
    pub product: String,
    /// The latest time this client has seen; never moves back.
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
    /// The current certificate, armored, as the vendor (or a license server) signed it.
    #[serde(default)]
    pub certificate: Option<String>,
    /// The vendor-signed server license, armored, when the certificate was signed by a customer's
    /// license server; the certificate is then verified through it. Left out of the file when
    /// there is none, so states without one keep the layout of earlier versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_license: Option<String>,
    /// When the license was last validated online.
    #[serde(default)]
    pub last_validated: Option<DateTime<Utc>>,
    /// The language the end user chose.
    #[serde(default)]
    pub language: Option<String>,
    /// The license returned from this machine, when the last thing done was a return.
    #[serde(default)]
    pub returned: Option<ReturnedLicense>,
    /// A denial the server gave at the latest validation (revoked, expired, removed, ...).
    #[serde(default)]
    pub denial: Option<ServerDenial>,
    /// Manual activation and return: pending request files and the last response accepted.
    #[serde(default)]
    pub exchange: ExchangeState,
    /// The network seat this machine holds or borrowed, with the session that holds it.
    #[serde(default)]
    pub seat: Option<SeatSession>,
}

/// A network seat held (by heartbeats) or borrowed (until a date) by this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatSession {
    /// The license key of the seat pool.
    pub key: String,
    /// The session identifier the server knows the seat by.
    pub session: String,
    /// When the seat is borrowed, the end of the borrow.
    #[serde(default)]
    pub borrowed_until: Option<DateTime<Utc>>,
}

/// A license returned from this machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnedLicense {
    /// The license key.
    pub key: String,
    /// Edition of the returned license.
    pub edition: String,
    /// When it was returned.
    pub at: DateTime<Utc>,
}

/// What the server said when it refused to validate the license.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDenial {
    /// The engine code.
    pub code: Code,
    /// The server's sentence.
    pub message: String,
    /// When the server said it.
    pub at: DateTime<Utc>,
}

impl LocalState {
    /// An empty state for `product`.
    pub fn new(product: &str) -> Self {
        LocalState {
            product: product.to_owned(),
            ..LocalState::default()
        }
    }

    /// Moves `last_seen` forward to `now` (never back). Returns whether it changed.
    pub fn observe(&mut self, now: DateTime<Utc>) -> bool {
        match self.last_seen {
            Some(seen) if seen >= now => false,
            _ => {
                self.last_seen = Some(now);
                true
            }
        }
    }
}

/// Why a state file on disk was not trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum StateProblem {
    /// The file does not have the state file's layout, or is too large.
    Malformed,
    /// The MAC does not match the contents: the file was edited or truncated.
    BadMac,
    /// The file was written on another machine.
    OtherMachine,
    /// The file belongs to another product.
    OtherProduct,
}

impl StateProblem {
    /// A plain sentence.
    pub fn sentence(self) -> &'static str {
        match self {
            StateProblem::Malformed => "the local license state is damaged",
            StateProblem::BadMac => "the local license state was altered",
            StateProblem::OtherMachine => "the local license state was copied from another machine",
            StateProblem::OtherProduct => "the local license state belongs to another product",
        }
    }
}

/// The outcome of reading the state file.
#[derive(Debug, Clone, PartialEq)]
pub enum StateLoad {
    /// There is no state file.
    Missing,
    /// The file verified.
    Trusted(Box<LocalState>),
    /// The file exists but did not verify; nothing in it is used.
    Untrusted(StateProblem),
}

/// Why the state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A file operation failed.
    #[error("`{path}`")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: io::Error,
    },
    /// The state could not be encoded.
    #[error("cannot encode the local state: {0}")]
    Encode(String),
}

/// How hard a write tries to survive a crash. Both are atomic: the file is complete and synced
/// before it replaces the old one, so a crash never leaves a damaged state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// The directory is synced too: once the write returns, the new state survives a crash.
    Durable,
    /// The directory is not synced: a crash right after may bring back the previous state. For
    /// updates whose loss is harmless, like moving `last_seen` forward.
    Atomic,
}

/// The state file of one product on one machine, with what is needed to sign and verify it.
#[derive(Debug, Clone)]
pub struct StateStore {
    path: PathBuf,
    product: String,
    vendor_key: [u8; 32],
}

impl StateStore {
    /// The store of `product`'s state in `dir`; `vendor_key` is the vendor's public key.
    pub fn new(dir: &Path, product: &str, vendor_key: [u8; 32]) -> Self {
        StateStore {
            path: dir.join(format!("{product}.state")),
            product: product.to_owned(),
            vendor_key,
        }
    }

    /// The state file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn mac(&self, machine_line: &str, body: &[u8], machine: &Fingerprint) -> Option<HmacSha256> {
        let mut key = Sha256::new();
        key.update(b"licet-state-key-v1\0");
        for part in [self.product.as_bytes(), &self.vendor_key[..]] {
            key.update((part.len() as u64).to_be_bytes());
            key.update(part);
        }
        for (name, value) in &machine.components {
            key.update((name.len() as u64).to_be_bytes());
            key.update(name.as_bytes());
            key.update((value.len() as u64).to_be_bytes());
            key.update(value.as_bytes());
        }
        let key: [u8; 32] = key.finalize().into();
        // HMAC accepts keys of any length.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).ok()?;
        mac.update(HEADER.as_bytes());
        mac.update(machine_line.as_bytes());
        mac.update(b"\n");
        mac.update(body);
        Some(mac)
    }

    /// Reads and verifies the state file for the current machine.
    pub fn load(
        &self,
        current: &Fingerprint,
        policy: &FingerprintPolicy,
    ) -> Result<StateLoad, StateError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(StateLoad::Missing),
            Err(source) => {
                return Err(StateError::Io {
                    path: self.path.clone(),
                    source,
                })
            }
        };
        Ok(self.verify(&bytes, current, policy))
    }

    fn verify(&self, bytes: &[u8], current: &Fingerprint, policy: &FingerprintPolicy) -> StateLoad {
        match self.verify_bytes(bytes, current, policy) {
            Ok(state) => StateLoad::Trusted(Box::new(state)),
            Err(problem) => StateLoad::Untrusted(problem),
        }
    }

    fn verify_bytes(
        &self,
        bytes: &[u8],
        current: &Fingerprint,
        policy: &FingerprintPolicy,
    ) -> Result<LocalState, StateProblem> {
        if bytes.len() > MAX_STATE_BYTES {
            return Err(StateProblem::Malformed);
        }
        let rest = bytes
            .strip_prefix(HEADER.as_bytes())
            .ok_or(StateProblem::Malformed)?;
        let (machine_line, rest) = split_line(rest).ok_or(StateProblem::Malformed)?;
        let (mac_line, body) = split_line(rest).ok_or(StateProblem::Malformed)?;
        let machine_line =
            std::str::from_utf8(machine_line).map_err(|_| StateProblem::Malformed)?;
        let machine_json = machine_line
            .strip_prefix(MACHINE_PREFIX)
            .ok_or(StateProblem::Malformed)?;
        let machine: Fingerprint =
            serde_json::from_str(machine_json).map_err(|_| StateProblem::Malformed)?;
        let expected = std::str::from_utf8(mac_line)
            .ok()
            .and_then(|line| line.strip_prefix(MAC_PREFIX))
            .and_then(unhex)
            .ok_or(StateProblem::Malformed)?;
        self.mac(machine_line, body, &machine)
            .ok_or(StateProblem::Malformed)?
            .verify_slice(&expected)
            .map_err(|_| StateProblem::BadMac)?;
        if !components_match(&machine.components, &current.components, policy) {
            return Err(StateProblem::OtherMachine);
        }
        let state: LocalState =
            serde_json::from_slice(body).map_err(|_| StateProblem::Malformed)?;
        if state.product != self.product {
            return Err(StateProblem::OtherProduct);
        }
        Ok(state)
    }

    /// The bytes of the state file for `state` written on `machine`.
    pub fn encode(&self, state: &LocalState, machine: &Fingerprint) -> Result<Vec<u8>, StateError> {
        let encode = |error: serde_json::Error| StateError::Encode(error.report());
        let machine_line = format!(
            "{MACHINE_PREFIX}{}",
            serde_json::to_string(machine).map_err(encode)?
        );
        let mut body = serde_json::to_vec_pretty(state).map_err(encode)?;
        body.push(b'\n');
        let tag = self
            .mac(&machine_line, &body, machine)
            .ok_or_else(|| StateError::Encode("cannot key the state MAC".to_owned()))?
            .finalize()
            .into_bytes();
        let mut bytes = Vec::with_capacity(body.len() + 256);
        bytes.extend_from_slice(HEADER.as_bytes());
        bytes.extend_from_slice(machine_line.as_bytes());
        bytes.push(b'\n');
        bytes.extend_from_slice(format!("{MAC_PREFIX}{}\n", hex(&tag)).as_bytes());
        bytes.extend_from_slice(&body);
        Ok(bytes)
    }

    /// Signs and writes the state atomically and durably: a temporary file, fsync, rename, fsync
    /// of the directory. A crash leaves either the old file or the new one.
    pub fn save(&self, state: &LocalState, machine: &Fingerprint) -> Result<(), StateError> {
        self.save_with(state, machine, Durability::Durable)
    }

    /// Signs and writes the state atomically, with the given durability.
    pub fn save_with(
        &self,
        state: &LocalState,
        machine: &Fingerprint,
        durability: Durability,
    ) -> Result<(), StateError> {
        let bytes = self.encode(state, machine)?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StateError::Io { path, source }
        };
        fs::create_dir_all(dir).map_err(io(dir))?;
        replace_file(&self.path, &bytes).map_err(io(&self.path))?;
        match durability {
            Durability::Durable => sync_dir(dir).map_err(io(dir)),
            Durability::Atomic => Ok(()),
        }
    }

    /// Removes the state file, if any.
    pub fn remove(&self) -> Result<(), StateError> {
        match fs::remove_file(&self.path) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => Err(StateError::Io {
                path: self.path.clone(),
                source: error,
            }),
            _ => Ok(()),
        }
    }
}

fn split_line(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let end = bytes.iter().position(|&byte| byte == b'\n')?;
    Some((&bytes[..end], &bytes[end + 1..]))
}

/// Replaces the file at `path` with `bytes` atomically: a private temporary file beside it,
/// written and synced, then renamed over it (the temporary file is removed when that fails). The
/// directory must exist; it is not synced.
pub(crate) fn replace_file(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|name| name.to_str())
        .unwrap_or("file");
    let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = write_synced(&temporary, bytes).and_then(|()| fs::rename(&temporary, path));
    if written.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    written
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn policy() -> FingerprintPolicy {
        FingerprintPolicy {
            components: ["machine-id", "mac", "cpu", "disk"]
                .map(String::from)
                .to_vec(),
            match_at_least: 3,
        }
    }

    fn office() -> Fingerprint {
        Fingerprint::from_pairs([
            ("machine-id", "a"),
            ("mac", "b"),
            ("cpu", "c"),
            ("disk", "d"),
        ])
    }

    fn sample() -> LocalState {
        let mut state = LocalState::new("gstarcad");
        state.observe(DateTime::from_timestamp(1_800_000_000, 0).unwrap());
        state.certificate = Some("-----BEGIN LICET CERTIFICATE-----\n".into());
        state
    }

    fn store(dir: &Path) -> StateStore {
        StateStore::new(dir, "gstarcad", [7; 32])
    }

    #[test]
    fn a_saved_state_loads_back_on_the_same_machine() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        assert_eq!(
            store.load(&office(), &policy()).unwrap(),
            StateLoad::Missing
        );
        store.save(&sample(), &office()).unwrap();
        assert_eq!(
            store.load(&office(), &policy()).unwrap(),
            StateLoad::Trusted(Box::new(sample()))
        );
        // One replaced component is still the same machine.
        let mut drifted = office();
        drifted.components.insert("mac".into(), "new".into());
        assert_eq!(
            store.load(&drifted, &policy()).unwrap(),
            StateLoad::Trusted(Box::new(sample()))
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let bytes = store.encode(&sample(), &office()).unwrap();
        for index in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[index] ^= 0x01;
            assert!(
                matches!(
                    store.verify(&flipped, &office(), &policy()),
                    StateLoad::Untrusted(_)
                ),
                "flip at {index}"
            );
        }
        for len in 0..bytes.len() {
            assert!(
                matches!(
                    store.verify(&bytes[..len], &office(), &policy()),
                    StateLoad::Untrusted(_)
                ),
                "truncate to {len}"
            );
        }
    }

    #[test]
    fn a_state_from_another_machine_or_vendor_is_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = store(dir.path()).encode(&sample(), &office()).unwrap();
        let other = Fingerprint::from_pairs([("machine-id", "x"), ("mac", "y"), ("cpu", "c")]);
        assert_eq!(
            store(dir.path()).verify(&bytes, &other, &policy()),
            StateLoad::Untrusted(StateProblem::OtherMachine)
        );
        let other_vendor = StateStore::new(dir.path(), "gstarcad", [8; 32]);
        assert_eq!(
            other_vendor.verify(&bytes, &office(), &policy()),
            StateLoad::Untrusted(StateProblem::BadMac)
        );
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_verify_and_never_panic(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
            keep_header in proptest::prelude::any::<bool>(),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = store(dir.path());
            let mut input = if keep_header { HEADER.as_bytes().to_vec() } else { Vec::new() };
            input.extend(bytes);
            proptest::prop_assert!(matches!(
                store.verify(&input, &office(), &policy()),
                StateLoad::Untrusted(_)
            ));
        }
    }

    #[test]
    fn states_without_a_server_license_keep_their_layout_and_old_files_load() {
        let old = r#"{
  "product": "gstarcad",
  "last_seen": "2027-01-07T09:00:00Z",
  "certificate": "-----BEGIN LICET CERTIFICATE-----\n",
  "last_validated": null,
  "language": null,
  "returned": null,
  "denial": null,
  "exchange": { "pending": {}, "update_counters": {} },
  "seat": { "key": "NET-1", "session": "s", "borrowed_until": null }
}"#;
        let state: LocalState = serde_json::from_str(old).unwrap();
        assert_eq!(state.server_license, None);
        assert_eq!(
            state.seat.as_ref().map(|seat| seat.key.as_str()),
            Some("NET-1")
        );
        let written = serde_json::to_string(&state).unwrap();
        assert!(!written.contains("server_license"), "{written}");

        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path());
        let mut served = sample();
        served.server_license = Some("-----BEGIN LICET SERVER LICENSE-----\n".into());
        store.save(&served, &office()).unwrap();
        assert_eq!(
            store.load(&office(), &policy()).unwrap(),
            StateLoad::Trusted(Box::new(served))
        );
    }

    #[test]
    fn last_seen_only_moves_forward() {
        let mut state = LocalState::new("p");
        let later = DateTime::from_timestamp(2_000, 0).unwrap();
        let earlier = DateTime::from_timestamp(1_000, 0).unwrap();
        assert!(state.observe(later));
        assert!(!state.observe(earlier));
        assert_eq!(state.last_seen, Some(later));
    }
}
