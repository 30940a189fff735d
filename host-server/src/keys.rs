//! The keys the server signs with (the vendor's key on an activation center, the license server's
//! own key on a license server), the vendor's public key, and administrator and client API tokens.
//!
//! Key files use the format of `licet keys generate`: one line, `licet-ed25519-secret:` or
//! `licet-ed25519-public:` and the 32 key bytes in base64. Tokens are 32 random bytes in hex with a
//! prefix; only their SHA-256 is stored.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::StartError;

const SECRET_PREFIX: &str = "licet-ed25519-secret:";
const PUBLIC_PREFIX: &str = "licet-ed25519-public:";

/// Random bytes from the operating system.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], getrandom::Error> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes)?;
    Ok(bytes)
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// A new API token: `prefix` followed by 64 hex digits.
pub fn new_token(prefix: &str) -> Result<String, getrandom::Error> {
    Ok(format!("{prefix}{}", hex(&random_bytes::<32>()?)))
}

/// The SHA-256 of a token, in hex: what the store keeps.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Reads a secret key file (the vendor's, or a license server's own).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, StartError> {
    let text = fs::read_to_string(path).map_err(|source| StartError::Io {
        path: path.to_owned(),
        source,
    })?;
    let malformed = |message: &str| StartError::Key {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let encoded = text
        .trim()
        .strip_prefix(SECRET_PREFIX)
        .ok_or_else(|| malformed("not a licet secret key file"))?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| malformed("the key is not base64"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| malformed("the key is not 32 bytes"))?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// Reads a public key file (`licet-ed25519-public:` and the 32 key bytes in base64).
pub fn read_verifying_key(path: &Path) -> Result<VerifyingKey, StartError> {
    let text = fs::read_to_string(path).map_err(|source| StartError::Io {
        path: path.to_owned(),
        source,
    })?;
    let malformed = |message: &str| StartError::Key {
        path: path.to_owned(),
        message: message.to_owned(),
    };
    let encoded = text
        .trim()
        .strip_prefix(PUBLIC_PREFIX)
        .ok_or_else(|| malformed("not a licet public key file"))?;
    let bytes = STANDARD
        .decode(encoded)
        .map_err(|_| malformed("the key is not base64"))?;
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| malformed("the key is not 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| malformed("not a valid Ed25519 public key"))
}

/// The public key file line of `key`: `licet-ed25519-public:<base64>`.
pub fn public_key_line(key: &VerifyingKey) -> String {
    format!("{PUBLIC_PREFIX}{}", STANDARD.encode(key.as_bytes()))
}

/// Generates a vendor key pair and writes `vendor.secret` (mode 0600) and `vendor.pub` in `dir`.
pub fn generate_key_files(dir: &Path) -> Result<SigningKey, StartError> {
    generate_key_pair(dir, "vendor")
}

/// Generates a key pair and writes `NAME.secret` (mode 0600) and `NAME.pub` in `dir`.
pub fn generate_key_pair(dir: &Path, name: &str) -> Result<SigningKey, StartError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| StartError::Io { path, source }
    };
    let seed = random_bytes::<32>().map_err(|error| StartError::Key {
        path: dir.to_owned(),
        message: format!("the system random source failed: {error}"),
    })?;
    let key = SigningKey::from_bytes(&seed);
    let secret_path = dir.join(format!("{name}.secret"));
    let public_path = dir.join(format!("{name}.pub"));
    let secret = format!("{SECRET_PREFIX}{}\n", STANDARD.encode(key.to_bytes()));
    write_private(&secret_path, secret.as_bytes()).map_err(io(&secret_path))?;
    let public = format!("{}\n", public_key_line(&key.verifying_key()));
    fs::write(&public_path, public).map_err(io(&public_path))?;
    Ok(key)
}

/// Writes a file readable by its owner only.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}
