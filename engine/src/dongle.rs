//! USB dongle identities and proofs of presence.
//!
//! A licet dongle holds an Ed25519 key pair that never leaves the device. Its **serial** is derived
//! from its public key ([`dongle_serial`]), so a license bound to a serial is bound to that key: a
//! dongle proves it is present by signing a fresh 32-byte challenge chosen by the verifier
//! (the client's start-up check, or the server before it binds a license to the dongle), and
//! [`DongleProof::verify`] checks the signature and that the public key is the serial's.
//! Nobody but the dongle holds a secret, so neither the client nor the server can be mined for one,
//! and an emulator would need a key whose public half hashes to the serial.
//!
//! Pure functions: the verifier picks the challenge, the host moves the bytes.

use ed25519_dalek::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::signature::SignedKind;

/// The length of a challenge, in bytes.
pub const CHALLENGE_LEN: usize = 32;
/// The length of a proof's public key, in bytes.
pub const PUBLIC_KEY_LEN: usize = 32;
/// The length of a proof's signature, in bytes.
pub const SIGNATURE_LEN: usize = 64;
/// What a dongle signs before the challenge, so its signatures cannot be used for anything else.
pub const CHALLENGE_CONTEXT: &[u8] = SignedKind::DongleProof.context();
/// What is hashed before a public key to derive its serial.
const SERIAL_CONTEXT: &[u8] = b"licet-dongle-serial-v1\0";
/// How many bytes of the hash the serial shows (80 bits).
const SERIAL_BYTES: usize = 10;

/// The serial of the dongle with `public_key`: `LD-` and 20 upper-case hex digits of the SHA-256
/// of the public key.
pub fn dongle_serial(public_key: &[u8; PUBLIC_KEY_LEN]) -> String {
    let digest = Sha256::new()
        .chain_update(SERIAL_CONTEXT)
        .chain_update(public_key)
        .finalize();
    let mut serial = String::with_capacity(3 + 2 * SERIAL_BYTES);
    serial.push_str("LD-");
    for byte in &digest[..SERIAL_BYTES] {
        serial.push_str(&format!("{byte:02X}"));
    }
    serial
}

/// The bytes a dongle signs to answer `challenge`.
pub fn signed_message(challenge: &[u8; CHALLENGE_LEN]) -> Vec<u8> {
    SignedKind::DongleProof.message(challenge)
}

/// Why a dongle's answer does not prove its presence.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DongleProofError {
    /// The answer has the wrong length.
    #[error("a dongle answer is {PUBLIC_KEY_LEN} bytes of public key and {SIGNATURE_LEN} of signature, not {0} bytes")]
    Length(usize),
    /// The public key is not a valid Ed25519 point.
    #[error("the dongle's public key is not valid")]
    PublicKey,
    /// The signature does not verify over the challenge.
    #[error("the dongle's signature does not answer the challenge")]
    Signature,
}

/// A dongle's answer to a challenge: its public key and its signature of the challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DongleProof {
    /// The dongle's Ed25519 public key.
    pub public_key: [u8; PUBLIC_KEY_LEN],
    /// Its signature of [`signed_message`] for the challenge.
    pub signature: [u8; SIGNATURE_LEN],
}

impl DongleProof {
    /// Reads the wire form: the public key followed by the signature (96 bytes).
    pub fn from_bytes(bytes: &[u8]) -> Result<DongleProof, DongleProofError> {
        if bytes.len() != PUBLIC_KEY_LEN + SIGNATURE_LEN {
            return Err(DongleProofError::Length(bytes.len()));
        }
        let (public_key, signature) = bytes.split_at(PUBLIC_KEY_LEN);
        let mut proof = DongleProof {
            public_key: [0; PUBLIC_KEY_LEN],
            signature: [0; SIGNATURE_LEN],
        };
        proof.public_key.copy_from_slice(public_key);
        proof.signature.copy_from_slice(signature);
        Ok(proof)
    }

    /// The wire form: the public key followed by the signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(PUBLIC_KEY_LEN + SIGNATURE_LEN);
        bytes.extend_from_slice(&self.public_key);
        bytes.extend_from_slice(&self.signature);
        bytes
    }

    /// The serial of the dongle that claims to have answered.
    pub fn serial(&self) -> String {
        dongle_serial(&self.public_key)
    }

    /// Checks that the proof answers `challenge` (strict Ed25519 verification) and returns the
    /// serial of the dongle that answered.
    pub fn verify(&self, challenge: &[u8; CHALLENGE_LEN]) -> Result<String, DongleProofError> {
        let key =
            VerifyingKey::from_bytes(&self.public_key).map_err(|_| DongleProofError::PublicKey)?;
        if key.is_weak() {
            return Err(DongleProofError::PublicKey);
        }
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&signed_message(challenge), &signature)
            .map_err(|_| DongleProofError::Signature)?;
        Ok(self.serial())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn answer(key: &SigningKey, challenge: &[u8; 32]) -> DongleProof {
        DongleProof {
            public_key: key.verifying_key().to_bytes(),
            signature: key.sign(&signed_message(challenge)).to_bytes(),
        }
    }

    #[test]
    fn a_dongle_proves_its_serial_for_the_challenge_it_signed() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let proof = answer(&key, &[1; 32]);
        let serial = proof.verify(&[1; 32]).unwrap();
        assert_eq!(serial, dongle_serial(&key.verifying_key().to_bytes()));
        assert_eq!(serial.len(), 23);
        assert!(serial.starts_with("LD-"));
        assert_eq!(DongleProof::from_bytes(&proof.to_bytes()).unwrap(), proof);
    }

    #[test]
    fn a_replayed_forged_or_truncated_answer_is_refused() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let proof = answer(&key, &[1; 32]);
        assert_eq!(proof.verify(&[2; 32]), Err(DongleProofError::Signature));
        let mut bytes = proof.to_bytes();
        for index in 0..bytes.len() {
            bytes[index] ^= 1;
            let changed = DongleProof::from_bytes(&bytes).unwrap();
            // A flipped public-key bit either makes an invalid point or another key (and so
            // another serial whose signature does not verify).
            assert!(changed.verify(&[1; 32]).is_err(), "byte {index}");
            bytes[index] ^= 1;
        }
        assert_eq!(
            DongleProof::from_bytes(&bytes[..95]),
            Err(DongleProofError::Length(95))
        );
        // Another dongle's valid answer proves that dongle's serial, not this one's.
        let other = answer(&SigningKey::from_bytes(&[8; 32]), &[1; 32]);
        assert_ne!(other.verify(&[1; 32]).unwrap(), proof.serial());
    }
}
