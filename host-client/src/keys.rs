//! Vendor key pairs: generating them and reading and writing key files.
//!
//! A key file holds one line: `licet-ed25519-secret:` or `licet-ed25519-public:` followed by the
//! 32 key bytes in base64. The secret key signs certificates and response files on the server; the
//! public key ships inside the product and is all a client needs to verify them offline.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};

const SECRET_PREFIX: &str = "licet-ed25519-secret:";
const PUBLIC_PREFIX: &str = "licet-ed25519-public:";

/// Why a key could not be generated, read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The operating system's random source failed.
    #[error("the system random source failed: {0}")]
    Random(String),
    /// A file could not be read or written.
    #[error("`{path}`")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file exists already and would be overwritten.
    #[error("`{0}` exists already; pass --force to replace it")]
    Exists(PathBuf),
    /// Key bytes or key text given in memory are not a usable key.
    #[error("the embedded vendor key is not a valid {kind} key")]
    MalformedEmbedded {
        /// `secret` or `public`.
        kind: &'static str,
    },
    /// A key file does not hold a key of the expected kind.
    #[error("`{path}` is not a licet {kind} key file")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// `secret` or `public`.
        kind: &'static str,
    },
}

/// A freshly generated vendor key pair.
#[derive(Debug)]
pub struct KeyPair {
    /// Signs certificates; keep it on the server only.
    pub signing: SigningKey,
}

impl KeyPair {
    /// Generates a key pair from the operating system's random source.
    pub fn generate() -> Result<KeyPair, KeyError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(|error| KeyError::Random(error.to_string()))?;
        Ok(KeyPair {
            signing: SigningKey::from_bytes(&seed),
        })
    }

    /// The public half.
    pub fn verifying(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }
}

/// The text of a public key file.
pub fn public_key_text(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}\n", STANDARD.encode(key.as_bytes()))
}

/// Writes `vendor.secret` (mode 0600) and `vendor.pub` into `dir`. Returns the two paths.
pub fn write_key_pair(
    dir: &Path,
    pair: &KeyPair,
    force: bool,
) -> Result<(PathBuf, PathBuf), KeyError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| KeyError::Io { path, source }
    };
    fs::create_dir_all(dir).map_err(io(dir))?;
    let secret_path = dir.join("vendor.secret");
    let public_path = dir.join("vendor.pub");
    for path in [&secret_path, &public_path] {
        if path.exists() && !force {
            return Err(KeyError::Exists(path.clone()));
        }
    }
    let secret = format!(
        "{SECRET_PREFIX}{}\n",
        STANDARD.encode(pair.signing.to_bytes())
    );
    write_private(&secret_path, secret.as_bytes()).map_err(io(&secret_path))?;
    fs::write(&public_path, public_key_text(&pair.verifying())).map_err(io(&public_path))?;
    Ok((secret_path, public_path))
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn read_key_bytes(path: &Path, prefix: &str, kind: &'static str) -> Result<[u8; 32], KeyError> {
    let text = fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let malformed = || KeyError::Malformed {
        path: path.to_path_buf(),
        kind,
    };
    let encoded = text.trim().strip_prefix(prefix).ok_or_else(malformed)?;
    let bytes = STANDARD.decode(encoded).map_err(|_| malformed())?;
    bytes.try_into().map_err(|_| malformed())
}

/// Reads a secret key file.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    read_key_bytes(path, SECRET_PREFIX, "secret").map(|bytes| SigningKey::from_bytes(&bytes))
}

/// Reads a public key file.
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let bytes = read_key_bytes(path, PUBLIC_PREFIX, "public")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::Malformed {
        path: path.to_path_buf(),
        kind: "public",
    })
}

/// The vendor's public key from its 32 bytes (compiled into the product).
pub fn verifying_key_from_bytes(bytes: &[u8; 32]) -> Result<VerifyingKey, KeyError> {
    VerifyingKey::from_bytes(bytes).map_err(|_| KeyError::MalformedEmbedded { kind: "public" })
}

/// The vendor's public key from the text of its key file (`licet-ed25519-public:...`), held in
/// memory.
pub fn parse_verifying_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let malformed = || KeyError::MalformedEmbedded { kind: "public" };
    let encoded = text
        .trim()
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or_else(malformed)?;
    let bytes: [u8; 32] = STANDARD
        .decode(encoded)
        .map_err(|_| malformed())?
        .try_into()
        .map_err(|_| malformed())?;
    verifying_key_from_bytes(&bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signer, Verifier};

    #[test]
    fn generated_pair_round_trips_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let pair = KeyPair::generate().unwrap();
        let (secret, public) = write_key_pair(dir.path(), &pair, false).unwrap();
        let signing = read_signing_key(&secret).unwrap();
        let verifying = read_verifying_key(&public).unwrap();
        let signature = signing.sign(b"licet");
        assert!(verifying.verify(b"licet", &signature).is_ok());
        assert_eq!(verifying, pair.verifying());
    }

    #[test]
    fn existing_files_are_kept_unless_forced() {
        let dir = tempfile::tempdir().unwrap();
        let first = KeyPair::generate().unwrap();
        write_key_pair(dir.path(), &first, false).unwrap();
        let second = KeyPair::generate().unwrap();
        assert!(matches!(
            write_key_pair(dir.path(), &second, false),
            Err(KeyError::Exists(_))
        ));
        let kept = read_verifying_key(&dir.path().join("vendor.pub")).unwrap();
        assert_eq!(kept, first.verifying());
        write_key_pair(dir.path(), &second, true).unwrap();
        assert_eq!(
            read_verifying_key(&dir.path().join("vendor.pub")).unwrap(),
            second.verifying()
        );
    }

    #[test]
    fn secret_file_is_private_and_kinds_are_not_confused() {
        let dir = tempfile::tempdir().unwrap();
        let (secret, public) =
            write_key_pair(dir.path(), &KeyPair::generate().unwrap(), false).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&secret).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(matches!(
            read_signing_key(&public),
            Err(KeyError::Malformed { .. })
        ));
        assert!(matches!(
            read_verifying_key(&secret),
            Err(KeyError::Malformed { .. })
        ));
        fs::write(&public, "licet-ed25519-public:AAAA\n").unwrap();
        assert!(matches!(
            read_verifying_key(&public),
            Err(KeyError::Malformed { .. })
        ));
    }
}
