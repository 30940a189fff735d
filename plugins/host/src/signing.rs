//! Signing plugins with the vendor key and verifying them before they load.
//!
//! The vendor key files are the ones `licet keys generate` writes: one line,
//! `licet-ed25519-secret:` or `licet-ed25519-public:` followed by the 32 key bytes in base64.

use licet_engine::report::Report as _;
use std::fs;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use licet_engine::signature::SignedKind;
use sha2::{Digest, Sha256};

use crate::error::PluginError;
use crate::manifest::{Manifest, MANIFEST_FILE, SIGNATURE_FILE};

const SECRET_PREFIX: &str = "licet-ed25519-secret:";
const PUBLIC_PREFIX: &str = "licet-ed25519-public:";

/// The largest component the host reads.
pub const MAX_WASM_BYTES: u64 = 16 << 20;
/// The largest manifest the host reads.
pub const MAX_MANIFEST_BYTES: u64 = 64 << 10;

/// A plugin whose signature and component hash verified.
#[derive(Debug, Clone)]
pub struct VerifiedPlugin {
    /// The plugin directory.
    pub dir: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// The component's bytes, exactly the ones the manifest's hash names.
    pub wasm: Vec<u8>,
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> PluginError {
    let path = path.to_path_buf();
    move |source| PluginError::Io { path, source }
}

/// Reads at most `limit` bytes of a file; a larger file is an error.
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, PluginError> {
    use std::io::Read;
    let file = fs::File::open(path).map_err(io_error(path))?;
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io_error(path))?;
    if bytes.len() as u64 > limit {
        return Err(PluginError::Io {
            path: path.to_path_buf(),
            source: std::io::Error::other(format!("larger than {limit} bytes")),
        });
    }
    Ok(bytes)
}

fn read_key_bytes(path: &Path, prefix: &str, kind: &'static str) -> Result<[u8; 32], PluginError> {
    let text = fs::read_to_string(path).map_err(io_error(path))?;
    let malformed = || PluginError::KeyFile {
        path: path.to_path_buf(),
        kind,
    };
    let encoded = text.trim().strip_prefix(prefix).ok_or_else(malformed)?;
    let bytes = STANDARD.decode(encoded).map_err(|_| malformed())?;
    bytes.try_into().map_err(|_| malformed())
}

/// Reads a vendor secret key file (`vendor.secret`).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, PluginError> {
    read_key_bytes(path, SECRET_PREFIX, "secret").map(|bytes| SigningKey::from_bytes(&bytes))
}

/// Reads a vendor public key file (`vendor.pub`).
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, PluginError> {
    let bytes = read_key_bytes(path, PUBLIC_PREFIX, "public")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| PluginError::KeyFile {
        path: path.to_path_buf(),
        kind: "public",
    })
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Signs the plugin in `dir`: fills the manifest's `wasm_sha256` with the hash of the component it
/// names, rewrites `plugin.json` and writes `plugin.sig`. Returns the signed manifest.
pub fn sign_plugin(dir: &Path, key: &SigningKey) -> Result<Manifest, PluginError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let bytes = read_limited(&manifest_path, MAX_MANIFEST_BYTES)?;
    let mut manifest = Manifest::from_json(&bytes, &manifest_path)?;
    let wasm_path = dir.join(&manifest.wasm);
    let wasm = read_limited(&wasm_path, MAX_WASM_BYTES)?;
    manifest.wasm_sha256 = sha256_hex(&wasm);
    let mut signed =
        serde_json::to_vec_pretty(&manifest).map_err(|error| PluginError::Manifest {
            path: manifest_path.clone(),
            reason: error.report(),
        })?;
    signed.push(b'\n');
    let signature = SignedKind::PluginManifest.sign(&signed, key);
    fs::write(&manifest_path, &signed).map_err(io_error(&manifest_path))?;
    let signature_path = dir.join(SIGNATURE_FILE);
    let text = format!("{}\n", STANDARD.encode(signature.to_bytes()));
    fs::write(&signature_path, text).map_err(io_error(&signature_path))?;
    Ok(manifest)
}

/// Verifies the plugin in `dir` against the vendor key: the signature over the manifest's exact
/// bytes first, then the component's hash. Nothing is parsed before the signature verifies.
pub fn verify_plugin(dir: &Path, key: &VerifyingKey) -> Result<VerifiedPlugin, PluginError> {
    let manifest_path = dir.join(MANIFEST_FILE);
    let signature_path = dir.join(SIGNATURE_FILE);
    let manifest_bytes = read_limited(&manifest_path, MAX_MANIFEST_BYTES)?;
    if !signature_path.exists() {
        return Err(PluginError::Unsigned {
            path: dir.to_path_buf(),
        });
    }
    let signature_text = read_limited(&signature_path, 1024)?;
    let signature = std::str::from_utf8(&signature_text)
        .ok()
        .and_then(|text| STANDARD.decode(text.trim()).ok())
        .ok_or_else(|| PluginError::BadSignature {
            path: dir.to_path_buf(),
        })?;
    let manifest = verified_manifest(dir, &manifest_bytes, &signature, key)?;
    let wasm_path = dir.join(&manifest.wasm);
    let wasm = read_limited(&wasm_path, MAX_WASM_BYTES)?;
    check_wasm_hash(manifest, wasm, dir.to_path_buf(), wasm_path)
}

/// Verifies a plugin held in memory (a product bundle's): the vendor's `signature` (64 raw bytes)
/// over the exact `manifest` bytes first, then the hash of `wasm`. `origin` names the plugin in
/// errors and in [`VerifiedPlugin::dir`], such as `product.bundle/fingerprint`.
pub fn verify_plugin_bytes(
    origin: &Path,
    manifest: &[u8],
    signature: &[u8],
    wasm: Vec<u8>,
    key: &VerifyingKey,
) -> Result<VerifiedPlugin, PluginError> {
    if manifest.len() as u64 > MAX_MANIFEST_BYTES || wasm.len() as u64 > MAX_WASM_BYTES {
        return Err(PluginError::Io {
            path: origin.to_path_buf(),
            source: std::io::Error::other("the manifest or the component is too large"),
        });
    }
    let manifest = verified_manifest(origin, manifest, signature, key)?;
    let wasm_path = origin.join(&manifest.wasm);
    check_wasm_hash(manifest, wasm, origin.to_path_buf(), wasm_path)
}

/// The manifest, parsed only after `signature` verified over its exact bytes.
fn verified_manifest(
    origin: &Path,
    manifest_bytes: &[u8],
    signature: &[u8],
    key: &VerifyingKey,
) -> Result<Manifest, PluginError> {
    let bad_signature = || PluginError::BadSignature {
        path: origin.to_path_buf(),
    };
    let signature = Signature::from_slice(signature).map_err(|_| bad_signature())?;
    SignedKind::PluginManifest
        .verify(manifest_bytes, &signature, key)
        .map_err(|_| bad_signature())?;
    Manifest::from_json(manifest_bytes, &origin.join(MANIFEST_FILE))
}

fn check_wasm_hash(
    manifest: Manifest,
    wasm: Vec<u8>,
    dir: PathBuf,
    wasm_path: PathBuf,
) -> Result<VerifiedPlugin, PluginError> {
    if sha256_hex(&wasm) != manifest.wasm_sha256 {
        return Err(PluginError::HashMismatch {
            plugin: manifest.name,
            wasm: wasm_path,
        });
    }
    Ok(VerifiedPlugin {
        dir,
        manifest,
        wasm,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn plugin_dir() -> (tempfile::TempDir, SigningKey) {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("p.wasm"), b"\0asm not really").unwrap();
        fs::write(
            dir.path().join(MANIFEST_FILE),
            r#"{"name":"p","version":"1","world":"transport","wasm":"p.wasm"}"#,
        )
        .unwrap();
        (dir, SigningKey::from_bytes(&[7; 32]))
    }

    #[test]
    fn signed_plugins_verify_and_any_change_is_refused() {
        let (dir, key) = plugin_dir();
        let signed = sign_plugin(dir.path(), &key).unwrap();
        assert_eq!(signed.wasm_sha256, sha256_hex(b"\0asm not really"));
        let verified = verify_plugin(dir.path(), &key.verifying_key()).unwrap();
        assert_eq!(verified.manifest, signed);

        let other = SigningKey::from_bytes(&[8; 32]).verifying_key();
        assert!(matches!(
            verify_plugin(dir.path(), &other),
            Err(PluginError::BadSignature { .. })
        ));

        let manifest_path = dir.path().join(MANIFEST_FILE);
        let original = fs::read(&manifest_path).unwrap();
        let widened = String::from_utf8(original.clone())
            .unwrap()
            .replace("\"p\"", "\"q\"");
        fs::write(&manifest_path, widened).unwrap();
        assert!(matches!(
            verify_plugin(dir.path(), &key.verifying_key()),
            Err(PluginError::BadSignature { .. })
        ));
        fs::write(&manifest_path, original).unwrap();

        fs::write(dir.path().join("p.wasm"), b"\0asm not really!").unwrap();
        assert!(matches!(
            verify_plugin(dir.path(), &key.verifying_key()),
            Err(PluginError::HashMismatch { .. })
        ));

        fs::remove_file(dir.path().join(SIGNATURE_FILE)).unwrap();
        assert!(matches!(
            verify_plugin(dir.path(), &key.verifying_key()),
            Err(PluginError::Unsigned { .. })
        ));
    }

    #[test]
    fn key_files_of_the_wrong_kind_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[9; 32]);
        let secret = dir.path().join("vendor.secret");
        let public = dir.path().join("vendor.pub");
        fs::write(
            &secret,
            format!("{SECRET_PREFIX}{}\n", STANDARD.encode(key.to_bytes())),
        )
        .unwrap();
        fs::write(
            &public,
            format!(
                "{PUBLIC_PREFIX}{}\n",
                STANDARD.encode(key.verifying_key().as_bytes())
            ),
        )
        .unwrap();
        assert_eq!(
            read_signing_key(&secret).unwrap().to_bytes(),
            key.to_bytes()
        );
        assert_eq!(read_verifying_key(&public).unwrap(), key.verifying_key());
        assert!(matches!(
            read_signing_key(&public),
            Err(PluginError::KeyFile { .. })
        ));
        assert!(matches!(
            read_verifying_key(&secret),
            Err(PluginError::KeyFile { .. })
        ));
    }
}
