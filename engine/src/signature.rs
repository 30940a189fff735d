//! Signature contexts: every kind of signed document signs its own context prefix.
//!
//! One Ed25519 key (the vendor's) signs certificates, server licenses, manual exchange responses and
//! plugin manifests and product bundles, and dongles sign challenges with theirs. So that bytes signed for one purpose
//! can never be presented as another, each kind signs `context || bytes`, where the context is a
//! fixed, NUL-terminated label of its own; no label is a prefix of another, so the signed messages of
//! two kinds never coincide. Verification rebuilds the message with the context the verifier
//! expects, never one named by the input.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// The kinds of signed document, each with its own context.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignedKind {
    /// A certificate: what an activation, a checkout, a borrow or a trial grants.
    Certificate,
    /// A server license: what a license server may serve, and the key it signs seats with.
    ServerLicense,
    /// A manual activation or return response file.
    ExchangeResponse,
    /// A plugin manifest (the plugin's name, world, hash and capabilities).
    PluginManifest,
    /// A dongle's answer to a challenge.
    DongleProof,
    /// A product bundle: the policy, plugins, servers and pinned certificate a product ships.
    ProductBundle,
}

impl SignedKind {
    /// Every kind, for tests that cross-feed them.
    pub const ALL: [SignedKind; 6] = [
        SignedKind::Certificate,
        SignedKind::ServerLicense,
        SignedKind::ExchangeResponse,
        SignedKind::PluginManifest,
        SignedKind::DongleProof,
        SignedKind::ProductBundle,
    ];

    /// The context prefix this kind signs.
    pub const fn context(self) -> &'static [u8] {
        match self {
            SignedKind::Certificate => b"licet-certificate-v1\0",
            SignedKind::ServerLicense => b"licet-server-license-v1\0",
            SignedKind::ExchangeResponse => b"licet-exchange-response-v1\0",
            SignedKind::PluginManifest => b"licet-plugin-manifest-v1\0",
            SignedKind::DongleProof => b"licet-dongle-challenge-v1\0",
            SignedKind::ProductBundle => b"licet-product-bundle-v1\0",
        }
    }

    /// The message that is signed for `bytes`: the context, then the bytes.
    pub fn message(self, bytes: &[u8]) -> Vec<u8> {
        let context = self.context();
        let mut message = Vec::with_capacity(context.len() + bytes.len());
        message.extend_from_slice(context);
        message.extend_from_slice(bytes);
        message
    }

    /// Signs `bytes` as this kind.
    pub fn sign(self, bytes: &[u8], key: &SigningKey) -> Signature {
        key.sign(&self.message(bytes))
    }

    /// Verifies `signature` over `bytes` as this kind (strict Ed25519 verification).
    pub fn verify(
        self,
        bytes: &[u8],
        signature: &Signature,
        key: &VerifyingKey,
    ) -> Result<(), BadSignature> {
        key.verify_strict(&self.message(bytes), signature)
            .map_err(|_| BadSignature)
    }
}

/// A signature that does not verify for the expected kind and key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the signature does not verify")]
pub struct BadSignature;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn no_context_is_a_prefix_of_another() {
        for a in SignedKind::ALL {
            for b in SignedKind::ALL {
                if a != b {
                    assert!(!a.context().starts_with(b.context()), "{a:?} / {b:?}");
                }
            }
        }
    }

    #[test]
    fn bytes_signed_as_one_kind_verify_as_no_other() {
        let key = SigningKey::from_bytes(&[9; 32]);
        let bytes = b"the same bytes";
        for signed_as in SignedKind::ALL {
            let signature = signed_as.sign(bytes, &key);
            for verified_as in SignedKind::ALL {
                let result = verified_as.verify(bytes, &signature, &key.verifying_key());
                assert_eq!(
                    result.is_ok(),
                    signed_as == verified_as,
                    "{signed_as:?} as {verified_as:?}"
                );
            }
        }
    }
}
