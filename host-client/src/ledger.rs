//! The machine ledger: what the client must not forget when its state file is deleted or an older
//! copy of it is put back.
//!
//! It holds the certificates this machine saw revoked, the latest time seen, the newest
//! certificate issue time seen, and a mark of the clock (the boot, the uptime and the wall clock
//! at the last start, and how many starts in a row found the clock standing still). It is kept in
//! two places, `<state-dir>/<product>.ledger` and a per-machine directory outside the state
//! directory ([`default_machine_dir`]); loading merges every copy that verifies (the union of the
//! revocations, the latest of the times), and saving writes the merge to both, so it only ever
//! grows. A copy that does not verify is ignored and replaced.
//!
//! Each copy is `LICET-LEDGER 1`, a `mac:` line and a JSON body; the MAC (HMAC-SHA256) is keyed,
//! like the state's, from public data (the product and the vendor's public key): it detects
//! editing and damage, not a determined user who reimplements it. Nothing is granted from the
//! ledger; it only refuses (a revoked certificate, a clock behind a time seen). A user who wipes
//! both copies and the state only loses those refusals; what then still holds is each
//! certificate's own signed offline period.

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::machine::{hex, unhex};
use crate::state::{replace_file, StateError};

const HEADER: &str = "LICET-LEDGER 1\n";
const MAC_PREFIX: &str = "mac: ";
/// The largest ledger read, in bytes.
pub const MAX_LEDGER_BYTES: usize = 256 * 1024;
/// The most revoked certificates remembered (the oldest are dropped past it).
pub const MAX_REVOKED: usize = 1000;

type HmacSha256 = Hmac<Sha256>;

/// A certificate this machine saw revoked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Revoked {
    /// The license key it was for; empty for a trial.
    pub license_key: String,
    /// When the server said so (this machine's clock).
    pub at: DateTime<Utc>,
}

/// The clock as the client last saw it at a start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockMark {
    /// The boot it was seen in.
    #[serde(default)]
    pub boot_id: Option<String>,
    /// The machine's uptime then, in milliseconds.
    #[serde(default)]
    pub uptime_ms: Option<u64>,
    /// The wall clock then.
    pub wall: DateTime<Utc>,
    /// How many starts in a row found the wall clock not advancing while the machine's own time
    /// did.
    #[serde(default)]
    pub stalls: u32,
}

/// What the ledger holds.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ledger {
    /// The product.
    pub product: String,
    /// Certificates seen revoked, by serial.
    #[serde(default)]
    pub revoked: BTreeMap<String, Revoked>,
    /// The latest time seen.
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
    /// The newest certificate issue time seen.
    #[serde(default)]
    pub newest_issued_at: Option<DateTime<Utc>>,
    /// The clock at the last start.
    #[serde(default)]
    pub clock: Option<ClockMark>,
}

impl Ledger {
    /// An empty ledger for `product`.
    pub fn new(product: &str) -> Self {
        Ledger {
            product: product.to_owned(),
            ..Ledger::default()
        }
    }

    /// Adds what `other` knows: its revocations, its later times, and its clock mark when it is
    /// newer.
    pub fn merge(&mut self, other: Ledger) {
        for (serial, revoked) in other.revoked {
            self.revoked.entry(serial).or_insert(revoked);
        }
        self.last_seen = self.last_seen.max(other.last_seen);
        self.newest_issued_at = self.newest_issued_at.max(other.newest_issued_at);
        self.clock = match (self.clock.take(), other.clock) {
            (Some(mine), Some(theirs)) => Some(newer_mark(mine, theirs)),
            (mine, theirs) => mine.or(theirs),
        };
        self.trim();
    }

    /// Records that the certificate `serial` of `license_key` was revoked at `at`.
    pub fn revoke(&mut self, serial: &str, license_key: &str, at: DateTime<Utc>) {
        self.revoked.entry(serial.to_owned()).or_insert(Revoked {
            license_key: license_key.to_owned(),
            at,
        });
        self.trim();
    }

    /// Whether a certificate (`serial`, of `license_key`, issued at `issued_at`) is one this
    /// machine saw revoked: the same serial, or a certificate of a revoked license key issued no
    /// later than `skew` after its revocation (a certificate the server issued after that, when
    /// an administrator restored the license, is not).
    pub fn is_revoked(
        &self,
        serial: &str,
        license_key: &str,
        issued_at: DateTime<Utc>,
        skew: chrono::Duration,
    ) -> Option<&Revoked> {
        if let Some(revoked) = self.revoked.get(serial) {
            return Some(revoked);
        }
        if license_key.is_empty() {
            return None;
        }
        self.revoked
            .values()
            .filter(|revoked| revoked.license_key == license_key)
            .find(|revoked| issued_at <= revoked.at + skew)
    }

    /// Moves the times seen forward (never back).
    pub fn observe(&mut self, now: DateTime<Utc>, issued_at: Option<DateTime<Utc>>) {
        self.last_seen = self.last_seen.max(Some(now));
        self.newest_issued_at = self.newest_issued_at.max(issued_at);
    }

    fn trim(&mut self) {
        while self.revoked.len() > MAX_REVOKED {
            let oldest = self
                .revoked
                .iter()
                .min_by_key(|(_, revoked)| revoked.at)
                .map(|(serial, _)| serial.clone());
            match oldest {
                Some(serial) => self.revoked.remove(&serial),
                None => break,
            };
        }
    }
}

/// The later of two marks: in the same boot the one with the longer uptime, else the one with the
/// later wall clock.
fn newer_mark(a: ClockMark, b: ClockMark) -> ClockMark {
    let b_newer = if a.boot_id.is_some() && a.boot_id == b.boot_id {
        b.uptime_ms > a.uptime_ms
    } else {
        b.wall > a.wall
    };
    if b_newer {
        b
    } else {
        a
    }
}

/// The per-machine directory of the second ledger copy: `/var/lib/licet` when it exists and can
/// be written, else `/var/tmp/licet` (created, sticky and writable by every user like `/var/tmp`,
/// which survives reboots). `None` where there is no such place.
pub fn default_machine_dir() -> Option<PathBuf> {
    #[cfg(unix)]
    {
        let system = Path::new("/var/lib/licet");
        if system.is_dir() && is_writable(system) {
            return Some(system.to_path_buf());
        }
        let shared = Path::new("/var/tmp/licet");
        if !shared.is_dir() {
            use std::os::unix::fs::PermissionsExt;
            fs::create_dir_all(shared).ok()?;
            fs::set_permissions(shared, fs::Permissions::from_mode(0o1777)).ok()?;
        }
        Some(shared.to_path_buf())
    }
    #[cfg(not(unix))]
    {
        None
    }
}

#[cfg(unix)]
fn is_writable(dir: &Path) -> bool {
    // Creating and removing a probe file is the only portable answer that also covers
    // read-only mounts.
    let probe = dir.join(format!(".licet-write-{}", std::process::id()));
    let written = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    written
}

/// The copies of one product's ledger.
#[derive(Debug, Clone)]
pub struct LedgerStore {
    product: String,
    vendor_key: [u8; 32],
    /// The copy in the state directory.
    local: PathBuf,
    /// The copy in the machine directory, when there is one.
    machine: Option<PathBuf>,
}

impl LedgerStore {
    /// The ledger of `product` under `vendor_key`: in `state_dir`, and in `machine_dir` when
    /// given.
    pub fn new(
        state_dir: &Path,
        machine_dir: Option<&Path>,
        product: &str,
        vendor_key: [u8; 32],
    ) -> Self {
        LedgerStore {
            product: product.to_owned(),
            vendor_key,
            local: state_dir.join(format!("{product}.ledger")),
            machine: machine_dir.map(|dir| dir.join(machine_file_name(product, &vendor_key))),
        }
    }

    /// The same ledger with its machine copy in `machine_dir` (or none).
    pub fn with_machine_dir(mut self, machine_dir: Option<&Path>) -> Self {
        self.machine =
            machine_dir.map(|dir| dir.join(machine_file_name(&self.product, &self.vendor_key)));
        self
    }

    /// The paths of the copies.
    pub fn paths(&self) -> Vec<&Path> {
        let mut paths = vec![self.local.as_path()];
        paths.extend(self.machine.as_deref());
        paths
    }

    /// Every copy that verifies, merged; an empty ledger when none does.
    pub fn load(&self) -> Ledger {
        let mut ledger = Ledger::new(&self.product);
        for path in self.paths() {
            if let Some(copy) = self.read(path) {
                ledger.merge(copy);
            }
        }
        ledger
    }

    fn read(&self, path: &Path) -> Option<Ledger> {
        let bytes = fs::read(path).ok()?;
        if bytes.len() > MAX_LEDGER_BYTES {
            return None;
        }
        #[cfg(target_os = "linux")]
        if Some(path) == self.machine.as_deref() && !owned_by_me(path) {
            // Another user's file in the shared directory says nothing about this user.
            return None;
        }
        let rest = bytes.strip_prefix(HEADER.as_bytes())?;
        let end = rest.iter().position(|&byte| byte == b'\n')?;
        let (mac_line, body) = (&rest[..end], &rest[end + 1..]);
        let tag = std::str::from_utf8(mac_line)
            .ok()?
            .strip_prefix(MAC_PREFIX)
            .and_then(unhex)?;
        self.mac(body)?.verify_slice(&tag).ok()?;
        let ledger: Ledger = serde_json::from_slice(body).ok()?;
        (ledger.product == self.product).then_some(ledger)
    }

    fn mac(&self, body: &[u8]) -> Option<HmacSha256> {
        let mut key = Sha256::new();
        key.update(b"licet-ledger-key-v1\0");
        for part in [self.product.as_bytes(), &self.vendor_key[..]] {
            key.update((part.len() as u64).to_be_bytes());
            key.update(part);
        }
        let key: [u8; 32] = key.finalize().into();
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&key).ok()?;
        mac.update(HEADER.as_bytes());
        mac.update(body);
        Some(mac)
    }

    /// Writes `ledger` (merged with what the copies hold now) to every copy, atomically. A
    /// failure to write the state directory's copy is an error; the machine copy is written when
    /// it can be.
    pub fn save(&self, ledger: &Ledger) -> Result<(), StateError> {
        let mut merged = self.load();
        merged.merge(ledger.clone());
        // The caller's mark is the latest start's, stall count included.
        if ledger.clock.is_some() {
            merged.clock.clone_from(&ledger.clock);
        }
        let encode = |error: serde_json::Error| StateError::Encode(error.report());
        let mut body = serde_json::to_vec_pretty(&merged).map_err(encode)?;
        body.push(b'\n');
        let tag = self
            .mac(&body)
            .ok_or_else(|| StateError::Encode("cannot key the ledger MAC".to_owned()))?
            .finalize()
            .into_bytes();
        let mut bytes = Vec::with_capacity(body.len() + 96);
        bytes.extend_from_slice(HEADER.as_bytes());
        bytes.extend_from_slice(format!("{MAC_PREFIX}{}\n", hex(&tag)).as_bytes());
        bytes.extend_from_slice(&body);
        write_copy(&self.local, &bytes).map_err(|source| StateError::Io {
            path: self.local.clone(),
            source,
        })?;
        if let Some(machine) = &self.machine {
            let _ = write_copy(machine, &bytes);
        }
        Ok(())
    }
}

/// `<product>-<16 hex digits of the vendor key's SHA-256>-<user id>.ledger`: one file per
/// product, vendor and user in the shared machine directory.
fn machine_file_name(product: &str, vendor_key: &[u8; 32]) -> String {
    let digest = Sha256::digest(vendor_key);
    let user = {
        #[cfg(target_os = "linux")]
        {
            rustix::process::getuid().as_raw().to_string()
        }
        #[cfg(not(target_os = "linux"))]
        {
            "user".to_owned()
        }
    };
    format!("{product}-{}-{user}.ledger", hex(&digest[..8]))
}

#[cfg(target_os = "linux")]
fn owned_by_me(path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let me = rustix::process::getuid().as_raw();
    fs::symlink_metadata(path).is_ok_and(|metadata| metadata.uid() == me && metadata.is_file())
}

/// Writes one copy, creating its directory first.
fn write_copy(path: &Path, bytes: &[u8]) -> io::Result<()> {
    fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    replace_file(path, bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    #[test]
    fn both_copies_are_merged_and_one_is_enough() {
        let state = tempfile::tempdir().unwrap();
        let machine = tempfile::tempdir().unwrap();
        let store = LedgerStore::new(state.path(), Some(machine.path()), "gstarcad", [1; 32]);
        let mut ledger = store.load();
        assert_eq!(ledger, Ledger::new("gstarcad"));
        ledger.revoke("S-1", "K-1", at(0));
        ledger.observe(at(100), Some(at(50)));
        store.save(&ledger).unwrap();
        assert_eq!(store.load(), ledger);

        // The state directory wiped: the machine copy remembers.
        fs::remove_dir_all(state.path()).unwrap();
        assert_eq!(store.load(), ledger);
        // An older copy put back does not make it forget.
        let older = LedgerStore::new(state.path(), None, "gstarcad", [1; 32]);
        older.save(&Ledger::new("gstarcad")).unwrap();
        assert_eq!(store.load(), ledger);
        // Another vendor's or an edited copy is ignored.
        let path = store.paths()[1].to_path_buf();
        let text = fs::read_to_string(&path).unwrap().replace("S-1", "S-2");
        fs::write(&path, text).unwrap();
        assert!(store.load().revoked.is_empty());
        let other = LedgerStore::new(state.path(), Some(machine.path()), "gstarcad", [2; 32]);
        assert!(other.load().revoked.is_empty());
    }

    #[test]
    fn revocations_cover_the_serial_and_older_certificates_of_the_key() {
        let mut ledger = Ledger::new("gstarcad");
        ledger.revoke("S-1", "K-1", at(1000));
        let skew = chrono::Duration::seconds(300);
        assert!(ledger.is_revoked("S-1", "K-1", at(0), skew).is_some());
        assert!(ledger.is_revoked("S-0", "K-1", at(0), skew).is_some());
        assert!(ledger.is_revoked("S-9", "K-1", at(5000), skew).is_none());
        assert!(ledger.is_revoked("S-0", "K-2", at(0), skew).is_none());
        assert!(ledger.is_revoked("S-0", "", at(0), skew).is_none());
    }

    #[test]
    fn marks_keep_the_latest_of_a_boot() {
        let mark = |boot: &str, uptime: u64, wall: i64, stalls: u32| ClockMark {
            boot_id: Some(boot.to_owned()),
            uptime_ms: Some(uptime),
            wall: at(wall),
            stalls,
        };
        let newer = newer_mark(mark("a", 10, 100, 2), mark("a", 20, 50, 0));
        assert_eq!((newer.uptime_ms, newer.stalls), (Some(20), 0));
        let newer = newer_mark(mark("a", 10, 100, 0), mark("b", 5, 200, 1));
        assert_eq!(newer.boot_id.as_deref(), Some("b"));
    }
}
