//! The server's dongle check: a network dongle license serves seats only while its dongle is
//! present on the license server.

use licet_engine::report::Report as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// Finds the USB dongle plugged into the server, if any.
pub trait DongleCheck: Send + Sync + std::fmt::Debug {
    /// The serial of the dongle present now, or `None`.
    fn present(&self) -> Option<String>;
}

/// A server without a dongle.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoDongle;

impl DongleCheck for NoDongle {
    fn present(&self) -> Option<String> {
        None
    }
}

/// A dongle that can be plugged in and pulled out by calls: the stand-in used by tests.
#[derive(Debug)]
pub struct SwitchableDongle {
    serial: Mutex<String>,
    plugged: AtomicBool,
}

impl SwitchableDongle {
    /// A plugged-in dongle with `serial`.
    pub fn plugged(serial: impl Into<String>) -> Self {
        SwitchableDongle {
            serial: Mutex::new(serial.into()),
            plugged: AtomicBool::new(true),
        }
    }

    /// Pulls the dongle out.
    pub fn unplug(&self) {
        self.plugged.store(false, Ordering::SeqCst);
    }

    /// Plugs the dongle back in.
    pub fn plug(&self) {
        self.plugged.store(true, Ordering::SeqCst);
    }

    /// Replaces the dongle with another one.
    pub fn replace(&self, serial: impl Into<String>) {
        let mut current = self
            .serial
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *current = serial.into();
    }
}

impl DongleCheck for SwitchableDongle {
    fn present(&self) -> Option<String> {
        if !self.plugged.load(Ordering::SeqCst) {
            return None;
        }
        let serial = self
            .serial
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Some(serial.clone())
    }
}

/// The dongle plugged into this server, checked by a background thread: every `interval` the
/// dongle must sign a fresh random challenge through the vendor-signed plugin, and
/// [`DongleCheck::present`] answers the serial of the last check that passed (`None` after one
/// that failed). Requests never wait for the USB device.
#[derive(Debug)]
pub struct PolledDongle {
    present: Mutex<Option<String>>,
}

impl PolledDongle {
    /// Checks the dongle once now, then every `interval` on a thread of its own for as long as the
    /// returned handle lives.
    pub fn start(
        reader: licet_plugin_host::DongleReader,
        interval: std::time::Duration,
    ) -> std::io::Result<std::sync::Arc<PolledDongle>> {
        let polled = std::sync::Arc::new(PolledDongle {
            present: Mutex::new(None),
        });
        polled.record(&reader);
        let watched = std::sync::Arc::downgrade(&polled);
        std::thread::Builder::new()
            .name("licet-dongle".to_owned())
            .spawn(move || loop {
                std::thread::sleep(interval);
                match watched.upgrade() {
                    Some(polled) => polled.record(&reader),
                    None => break,
                }
            })?;
        Ok(polled)
    }

    fn record(&self, reader: &licet_plugin_host::DongleReader) {
        let found = match reader.present() {
            Ok(verified) => Some(verified.serial),
            Err(error) => {
                tracing::debug!(%error, "no dongle answered");
                None
            }
        };
        let mut present = self
            .present
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if *present != found {
            tracing::info!(dongle = ?found, "the server's dongle changed");
        }
        *present = found;
    }
}

impl DongleCheck for PolledDongle {
    fn present(&self) -> Option<String> {
        self.present
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// How long a dongle challenge may be answered.
pub const CHALLENGE_LIFETIME_SECONDS: i64 = 120;

/// What a challenge's MAC covers before its expiry and nonce.
const CHALLENGE_CONTEXT: &[u8] = b"licet-server-dongle-challenge-v1\0";

/// Why a dongle proof sent with a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChallengeError {
    /// The challenge is not base64 of 32 bytes, or the proof not base64 of 96 bytes.
    #[error("the dongle proof is malformed: {0}")]
    Malformed(String),
    /// This server did not issue the challenge.
    #[error("the dongle challenge was not issued by this server")]
    Forged,
    /// The challenge is too old.
    #[error("the dongle challenge expired; ask for a new one")]
    Expired,
    /// The dongle's answer does not verify.
    #[error(transparent)]
    Proof(#[from] licet_engine::dongle::DongleProofError),
}

/// Issues and checks the challenges that client machines have their dongle sign, so a request for a
/// standalone dongle license proves the dongle is present instead of naming its serial.
///
/// A challenge is self-authenticating, so any server process sharing the vendor key accepts it:
/// 8 bytes of expiry (Unix seconds, big-endian), 8 random bytes and the first 16 bytes of an
/// HMAC-SHA256 over them, keyed with a key derived from the vendor's signing key. A challenge can
/// be answered until it expires; the signed answer proves the dongle was present when it signed.
#[derive(Clone)]
pub struct DongleChallenges {
    key: [u8; 32],
}

impl std::fmt::Debug for DongleChallenges {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("DongleChallenges")
    }
}

impl DongleChallenges {
    /// Challenges keyed from the vendor's signing key.
    pub fn from_signing_key(signing_key: &ed25519_dalek::SigningKey) -> DongleChallenges {
        use sha2::{Digest, Sha256};
        let key = Sha256::new()
            .chain_update(b"licet-server-dongle-challenge-key-v1\0")
            .chain_update(signing_key.to_bytes())
            .finalize()
            .into();
        DongleChallenges { key }
    }

    fn mac(&self, expiry_and_nonce: &[u8]) -> Result<[u8; 16], ChallengeError> {
        use hmac::{Hmac, Mac};
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&self.key)
            .map_err(|error| ChallengeError::Malformed(error.report()))?;
        mac.update(CHALLENGE_CONTEXT);
        mac.update(expiry_and_nonce);
        let digest = mac.finalize().into_bytes();
        let mut truncated = [0u8; 16];
        truncated.copy_from_slice(&digest[..16]);
        Ok(truncated)
    }

    /// A new challenge answerable until `now + CHALLENGE_LIFETIME_SECONDS`, with `nonce` (random).
    pub fn issue(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        nonce: [u8; 8],
    ) -> Result<([u8; 32], chrono::DateTime<chrono::Utc>), ChallengeError> {
        let expires_at = now + chrono::Duration::seconds(CHALLENGE_LIFETIME_SECONDS);
        let mut challenge = [0u8; 32];
        challenge[..8].copy_from_slice(&expires_at.timestamp().to_be_bytes());
        challenge[8..16].copy_from_slice(&nonce);
        let mac = self.mac(&challenge[..16])?;
        challenge[16..].copy_from_slice(&mac);
        Ok((challenge, expires_at))
    }

    /// Checks that this server issued `challenge`, that it has not expired at `now`, and that
    /// `proof` is a dongle's answer to it; returns that dongle's serial.
    pub fn verify(
        &self,
        challenge: &[u8],
        proof: &[u8],
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<String, ChallengeError> {
        let challenge: [u8; 32] = challenge.try_into().map_err(|_| {
            ChallengeError::Malformed(format!("a challenge is 32 bytes, not {}", challenge.len()))
        })?;
        let proof = licet_engine::dongle::DongleProof::from_bytes(proof)?;
        let expected = self.mac(&challenge[..16])?;
        let difference = expected
            .iter()
            .zip(&challenge[16..])
            .fold(0u8, |difference, (a, b)| difference | (a ^ b));
        if difference != 0 {
            return Err(ChallengeError::Forged);
        }
        let mut expiry = [0u8; 8];
        expiry.copy_from_slice(&challenge[..8]);
        if now.timestamp() > i64::from_be_bytes(expiry) {
            return Err(ChallengeError::Expired);
        }
        Ok(proof.verify(&challenge)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::{Duration, TimeZone, Utc};
    use ed25519_dalek::{Signer, SigningKey};
    use licet_engine::dongle::{dongle_serial, signed_message, DongleProof};

    fn answer(dongle: &SigningKey, challenge: &[u8; 32]) -> Vec<u8> {
        DongleProof {
            public_key: dongle.verifying_key().to_bytes(),
            signature: dongle.sign(&signed_message(challenge)).to_bytes(),
        }
        .to_bytes()
    }

    #[test]
    fn a_dongle_answering_a_fresh_challenge_proves_its_serial() {
        let challenges = DongleChallenges::from_signing_key(&SigningKey::from_bytes(&[1; 32]));
        let dongle = SigningKey::from_bytes(&[2; 32]);
        let now = Utc.with_ymd_and_hms(2027, 3, 1, 12, 0, 0).unwrap();
        let (challenge, expires_at) = challenges.issue(now, [9; 8]).unwrap();
        assert_eq!(
            expires_at,
            now + Duration::seconds(CHALLENGE_LIFETIME_SECONDS)
        );
        let proof = answer(&dongle, &challenge);
        assert_eq!(
            challenges.verify(&challenge, &proof, expires_at).unwrap(),
            dongle_serial(&dongle.verifying_key().to_bytes())
        );
        // Too late, from another server, altered, or answered by nobody: refused.
        assert_eq!(
            challenges.verify(&challenge, &proof, expires_at + Duration::seconds(1)),
            Err(ChallengeError::Expired)
        );
        let other = DongleChallenges::from_signing_key(&SigningKey::from_bytes(&[3; 32]));
        assert_eq!(
            other.verify(&challenge, &proof, now),
            Err(ChallengeError::Forged)
        );
        let mut later = challenge;
        later[7] ^= 1;
        assert_eq!(
            challenges.verify(&later, &answer(&dongle, &later), now),
            Err(ChallengeError::Forged)
        );
        let mut proof_altered = proof.clone();
        proof_altered[40] ^= 1;
        assert!(matches!(
            challenges.verify(&challenge, &proof_altered, now),
            Err(ChallengeError::Proof(_))
        ));
        assert!(matches!(
            challenges.verify(&challenge[..31], &proof, now),
            Err(ChallengeError::Malformed(_))
        ));
        assert!(matches!(
            challenges.verify(&challenge, &proof[..90], now),
            Err(ChallengeError::Proof(_))
        ));
    }
}
