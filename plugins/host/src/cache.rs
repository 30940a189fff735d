//! A host-owned cache of compiled plugins, so that a host started again does not compile the same
//! component again.
//!
//! # What is cached, and how it is checked
//!
//! One file per component and engine, `<wasm SHA-256>-<engine fingerprint>.cwasm`, holding
//!
//! ```text
//! "licet-cwasm-v1\n\0" (16 bytes) ‖ engine fingerprint (32) ‖ wasm SHA-256 (32)
//!   ‖ artifact length (8, little-endian) ‖ artifact ‖ HMAC-SHA256(cache key, all before)
//! ```
//!
//! where the artifact is what wasmtime's `Component::serialize` wrote, the wasm SHA-256 is the
//! one the vendor signed (the host verified the manifest's signature and the component's hash
//! before it asks the cache), and the engine fingerprint is a SHA-256 over wasmtime's own
//! compatibility hash (version, target, CPU features, compiler flags, tunables, enabled
//! proposals) and the host's engine settings. The cache key is 32 random bytes in `cache.key`,
//! created with the directory.
//!
//! An entry is loaded only when the whole file, read into memory, verifies under the key and
//! names this component and this engine; the bytes that are checked are the bytes loaded (never
//! a file mapped afresh). Anything else (a truncated, torn or tampered file, an entry of another
//! cache, another component or other engine settings) is counted in
//! [`CacheStats::rejected`], and the component is compiled from its verified `.wasm` and the
//! entry rewritten. Entries are written to a temporary file and renamed into place, so a reader
//! sees a whole entry or none; they are not synced to disk, since a torn entry fails its check.
//! A cache that cannot be written only costs the next start a compilation
//! ([`CacheStats::write_failures`]).
//!
//! # Why this is the one place with `unsafe`
//!
//! Loading precompiled code is `unsafe` in wasmtime (`Component::deserialize` and every other
//! way to load it): the bytes are native code that wasmtime trusts to be its own output. The
//! [`load_verified`] function is the only place of this crate that allows `unsafe`, and it takes
//! only a [`VerifiedArtifact`], which only [`CompiledCache::verify`] makes.
//!
//! # Threat model
//!
//! Someone who can write a verifying entry can run native code in the host's process. The key
//! and the entries live in a directory only the user running the host may write (created `0700`;
//! on Unix a directory writable by others, or not owned by this user, is refused, and so is a key
//! file others may read), so that is the user running the host. That user can already replace
//! native code in their own process (the binary, its libraries, `LD_PRELOAD`, a debugger): the
//! cache gives them nothing new, and in particular no way around the vendor's signature that
//! patching the binary does not give. What the check does stop is everything else: corruption,
//! truncation, a crash in the middle of a write, another user's files, an entry copied from
//! another installation or machine (another key), an entry of other engine settings or of
//! another component. A host that treats its own user's files as hostile leaves the cache off,
//! which is the default.

use std::fs;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use wasmtime::component::Component;
use wasmtime::Engine;

/// The cache key's file name in the cache directory.
pub const KEY_FILE: &str = "cache.key";
/// The extension of cache entries.
pub const ENTRY_EXTENSION: &str = "cwasm";

const MAGIC: &[u8; 16] = b"licet-cwasm-v1\n\0";
const HEADER_LEN: usize = MAGIC.len() + 32 + 32 + 8;
const MAC_LEN: usize = 32;
const KEY_LEN: usize = 32;
/// The largest entry read; a larger file is not an entry of this host.
const MAX_ENTRY_BYTES: u64 = 256 << 20;

type HmacSha256 = Hmac<Sha256>;

/// Why the compiled-module cache could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CacheError {
    /// The directory or its key could not be created or read.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// Other users may write the directory, or read or write the key.
    #[error("other users may write the cache directory or read its key (it must be private)")]
    NotPrivate,
    /// The directory or its key belongs to another user.
    #[error("the cache directory or its key belongs to another user")]
    OtherOwner,
    /// The system's random source failed while making a key.
    #[error("the system random source failed: {0}")]
    Random(String),
}

/// What the cache did since the host was built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Components loaded from a verified entry.
    pub hits: u64,
    /// Components compiled (no entry, or a rejected one).
    pub compiled: u64,
    /// Entries found but not used: their check failed, they name another component or engine, or
    /// they could not be read or loaded.
    pub rejected: u64,
    /// Entries written.
    pub written: u64,
    /// Entries that could not be written.
    pub write_failures: u64,
}

#[derive(Debug, Default)]
struct Counters {
    hits: AtomicU64,
    compiled: AtomicU64,
    rejected: AtomicU64,
    written: AtomicU64,
    write_failures: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The compiled-module cache of one host.
pub(crate) struct CompiledCache {
    dir: PathBuf,
    key: [u8; KEY_LEN],
    engine: [u8; 32],
    counters: Counters,
}

impl std::fmt::Debug for CompiledCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CompiledCache")
            .field("dir", &self.dir)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

/// Feeds what a `Hash` implementation writes into SHA-256.
struct DigestHasher(Sha256);

impl std::hash::Hasher for DigestHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0.update(bytes);
    }

    fn finish(&self) -> u64 {
        0
    }
}

/// The fingerprint of everything about `engine` that compiled code depends on: wasmtime's
/// compatibility hash and the host's own engine settings (`settings`).
pub(crate) fn engine_fingerprint(engine: &Engine, settings: &str) -> [u8; 32] {
    use std::hash::Hash as _;
    let mut hasher = DigestHasher(Sha256::new());
    hasher.0.update(b"licet-cwasm-engine-v1\0");
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hasher.0.update(b"\0");
    hasher.0.update(settings.as_bytes());
    hasher.0.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn random_bytes<const N: usize>() -> Result<[u8; N], CacheError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|error| CacheError::Random(error.to_string()))?;
    Ok(bytes)
}

/// Writes `bytes` to a fresh private file next to `path` and returns its path.
fn write_temporary(path: &Path, bytes: &[u8]) -> Result<PathBuf, CacheError> {
    let name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", hex(&random_bytes::<8>()?)));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temporary)
        .and_then(|mut file| file.write_all(bytes));
    match written {
        Ok(()) => Ok(temporary),
        Err(error) => {
            let _ = fs::remove_file(&temporary);
            Err(CacheError::Io(error))
        }
    }
}

/// Reads at most `limit` bytes; `None` if the file is larger.
fn read_limited(path: &Path, limit: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    Ok((bytes.len() as u64 <= limit).then_some(bytes))
}

#[cfg(unix)]
fn check_private(path: &Path, forbidden_mode: u32) -> Result<(), CacheError> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = fs::metadata(path)?;
    if metadata.mode() & forbidden_mode != 0 {
        return Err(CacheError::NotPrivate);
    }
    // The user this process runs as owns `/proc/self`.
    if let Ok(me) = fs::metadata("/proc/self") {
        if metadata.uid() != me.uid() {
            return Err(CacheError::OtherOwner);
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path, _forbidden_mode: u32) -> Result<(), CacheError> {
    Ok(())
}

/// Reads the cache key, or makes one. A key file of the wrong size is replaced (which only
/// invalidates the entries); two hosts making the first key at once agree on one.
fn read_or_create_key(dir: &Path) -> Result<[u8; KEY_LEN], CacheError> {
    let path = dir.join(KEY_FILE);
    match read_limited(&path, KEY_LEN as u64) {
        Ok(Some(bytes)) if bytes.len() == KEY_LEN => {
            check_private(&path, 0o077)?;
            let mut key = [0u8; KEY_LEN];
            key.copy_from_slice(&bytes);
            return Ok(key);
        }
        Ok(_) => {
            let key = random_bytes::<KEY_LEN>()?;
            let temporary = write_temporary(&path, &key)?;
            fs::rename(&temporary, &path).inspect_err(|_| {
                let _ = fs::remove_file(&temporary);
            })?;
            return Ok(key);
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(CacheError::Io(error)),
    }
    let key = random_bytes::<KEY_LEN>()?;
    let temporary = write_temporary(&path, &key)?;
    // A hard link publishes the key only if none exists yet, whole.
    let linked = fs::hard_link(&temporary, &path);
    let _ = fs::remove_file(&temporary);
    match linked {
        Ok(()) => Ok(key),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => read_or_create_key(dir),
        Err(error) => Err(CacheError::Io(error)),
    }
}

/// Bytes that verified as an entry of this cache, this engine and this component.
pub(crate) struct VerifiedArtifact<'a>(&'a [u8]);

impl CompiledCache {
    /// Opens (creating it if need be) the cache in `dir` for an engine with this fingerprint.
    pub(crate) fn open(dir: &Path, engine: [u8; 32]) -> Result<CompiledCache, CacheError> {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir)?;
        check_private(dir, 0o022)?;
        let key = read_or_create_key(dir)?;
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            key,
            engine,
            counters: Counters::default(),
        })
    }

    /// What the cache did so far.
    pub(crate) fn stats(&self) -> CacheStats {
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        CacheStats {
            hits: read(&self.counters.hits),
            compiled: read(&self.counters.compiled),
            rejected: read(&self.counters.rejected),
            written: read(&self.counters.written),
            write_failures: read(&self.counters.write_failures),
        }
    }

    /// Where the entry of the component with this SHA-256 is.
    pub(crate) fn entry_path(&self, wasm_sha256: &[u8; 32]) -> PathBuf {
        self.dir.join(format!(
            "{}-{}.{ENTRY_EXTENSION}",
            hex(wasm_sha256),
            hex(&self.engine[..16])
        ))
    }

    /// A MAC under the cache key (HMAC takes keys of any length, so there always is one).
    fn mac(&self) -> Option<HmacSha256> {
        HmacSha256::new_from_slice(&self.key).ok()
    }

    /// Checks an entry: the MAC over everything before it, then that it names this engine and
    /// this component, then its length.
    fn verify<'a>(&self, bytes: &'a [u8], wasm_sha256: &[u8; 32]) -> Option<VerifiedArtifact<'a>> {
        let body_len = bytes.len().checked_sub(MAC_LEN)?;
        if body_len < HEADER_LEN {
            return None;
        }
        let (body, tag) = bytes.split_at(body_len);
        let mut mac = self.mac()?;
        mac.update(body);
        mac.verify_slice(tag).ok()?;
        let (header, artifact) = body.split_at(HEADER_LEN);
        let (magic, rest) = header.split_at(MAGIC.len());
        let (engine, rest) = rest.split_at(32);
        let (wasm, length) = rest.split_at(32);
        let length = u64::from_le_bytes(length.try_into().ok()?);
        let matches = magic == MAGIC
            && engine == self.engine
            && wasm == wasm_sha256
            && u64::try_from(artifact.len()).ok()? == length;
        matches.then_some(VerifiedArtifact(artifact))
    }

    fn entry(&self, wasm_sha256: &[u8; 32], artifact: &[u8]) -> Option<Vec<u8>> {
        let mut bytes = Vec::with_capacity(HEADER_LEN + artifact.len() + MAC_LEN);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&self.engine);
        bytes.extend_from_slice(wasm_sha256);
        bytes.extend_from_slice(&(artifact.len() as u64).to_le_bytes());
        bytes.extend_from_slice(artifact);
        let mut mac = self.mac()?;
        mac.update(&bytes);
        bytes.extend_from_slice(&mac.finalize().into_bytes());
        Some(bytes)
    }

    fn write(&self, path: &Path, bytes: &[u8]) -> Result<(), CacheError> {
        let temporary = write_temporary(path, bytes)?;
        fs::rename(&temporary, path).map_err(|error| {
            let _ = fs::remove_file(&temporary);
            CacheError::Io(error)
        })
    }

    /// The compiled component of `wasm`, whose SHA-256 the vendor signed: from its verified
    /// entry, or compiled and written to the cache.
    pub(crate) fn component(
        &self,
        engine: &Engine,
        wasm_sha256: &[u8; 32],
        wasm: &[u8],
    ) -> wasmtime::Result<Component> {
        let path = self.entry_path(wasm_sha256);
        match read_limited(&path, MAX_ENTRY_BYTES) {
            Ok(Some(bytes)) => {
                let loaded = self
                    .verify(&bytes, wasm_sha256)
                    .and_then(|artifact| load_verified(engine, artifact).ok());
                match loaded {
                    Some(component) => {
                        bump(&self.counters.hits);
                        return Ok(component);
                    }
                    None => bump(&self.counters.rejected),
                }
            }
            Ok(None) => bump(&self.counters.rejected),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(_) => bump(&self.counters.rejected),
        }
        let component = Component::new(engine, wasm)?;
        bump(&self.counters.compiled);
        let written = component
            .serialize()
            .ok()
            .filter(|artifact| (artifact.len() as u64) < MAX_ENTRY_BYTES - 1024)
            .and_then(|artifact| self.entry(wasm_sha256, &artifact))
            .map(|entry| self.write(&path, &entry));
        match written {
            Some(Ok(())) => bump(&self.counters.written),
            _ => bump(&self.counters.write_failures),
        }
        Ok(component)
    }
}

/// Loads a compiled component from bytes that verified as this cache's entry for this engine and
/// this component. The only `unsafe` code of the crate.
#[allow(unsafe_code)]
fn load_verified(engine: &Engine, artifact: VerifiedArtifact<'_>) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime requires that the bytes be its own serialization of a component, for an
    // engine compatible with this one, unchanged. `artifact` verified under this cache's key
    // (held only in the user's private cache directory) as an entry this host wrote with
    // `Component::serialize` for an engine with the same fingerprint (which covers wasmtime's
    // compatibility hash) and for the component the vendor signed; the bytes checked are the
    // bytes loaded, copied by `deserialize` before use. wasmtime checks the format and the
    // engine compatibility again itself. See the module documentation for the threat model.
    unsafe { Component::deserialize(engine, artifact.0) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn cache(dir: &Path, engine: u8) -> CompiledCache {
        CompiledCache::open(dir, [engine; 32]).unwrap()
    }

    #[test]
    fn an_entry_verifies_only_for_its_key_engine_and_component() {
        let dir = tempfile::tempdir().unwrap();
        let one = cache(dir.path(), 1);
        let entry = one.entry(&[7; 32], b"compiled code").unwrap();
        assert_eq!(one.verify(&entry, &[7; 32]).unwrap().0, b"compiled code");
        // Another component, another engine.
        assert!(one.verify(&entry, &[8; 32]).is_none());
        assert!(cache(dir.path(), 2).verify(&entry, &[7; 32]).is_none());
        // Another cache (another key).
        let elsewhere = tempfile::tempdir().unwrap();
        assert!(cache(elsewhere.path(), 1)
            .verify(&entry, &[7; 32])
            .is_none());
        // Any changed, missing or added byte.
        for index in [0, HEADER_LEN - 1, HEADER_LEN, entry.len() - 1] {
            let mut tampered = entry.clone();
            tampered[index] ^= 1;
            assert!(one.verify(&tampered, &[7; 32]).is_none(), "{index}");
        }
        for length in [0, MAC_LEN, HEADER_LEN + MAC_LEN - 1, entry.len() - 1] {
            assert!(one.verify(&entry[..length], &[7; 32]).is_none(), "{length}");
        }
        let mut longer = entry.clone();
        longer.push(0);
        assert!(one.verify(&longer, &[7; 32]).is_none());
    }

    #[test]
    fn the_key_is_made_once_kept_private_and_replaced_when_damaged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache");
        let first = cache(&path, 1).key;
        assert_eq!(cache(&path, 1).key, first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&path), 0o700);
            assert_eq!(mode(&path.join(KEY_FILE)), 0o600);
            fs::set_permissions(&path, fs::Permissions::from_mode(0o777)).unwrap();
            assert!(matches!(
                CompiledCache::open(&path, [1; 32]),
                Err(CacheError::NotPrivate)
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
            fs::set_permissions(path.join(KEY_FILE), fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                CompiledCache::open(&path, [1; 32]),
                Err(CacheError::NotPrivate)
            ));
            fs::set_permissions(path.join(KEY_FILE), fs::Permissions::from_mode(0o600)).unwrap();
        }
        fs::write(path.join(KEY_FILE), b"short").unwrap();
        let replaced = cache(&path, 1).key;
        assert_ne!(replaced, first);
        assert_eq!(cache(&path, 1).key, replaced);
    }

    #[test]
    fn unsafe_code_is_allowed_in_one_function_only() {
        let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut allowed = Vec::new();
        let mut pending = vec![sources];
        while let Some(dir) = pending.pop() {
            for entry in fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|extension| extension == "rs") {
                    let text = fs::read_to_string(&path).unwrap();
                    let needle = ["allow(", "unsafe_code)"].concat();
                    for _ in text.matches(&needle) {
                        allowed.push(path.file_name().unwrap().to_string_lossy().into_owned());
                    }
                }
            }
        }
        assert_eq!(allowed, ["cache.rs"]);
    }
}
