//! Signed license certificates.
//!
//! A certificate is the offline-verifiable result of an activation, a seat checkout, a borrow or a
//! trial: the canonical bytes of its [`CertificateClaims`] followed by an Ed25519 signature made
//! with the vendor's key. Verification needs only the vendor's public key.
//!
//! The encoding has exactly one byte string per value, and the signature is checked over the exact
//! bytes received *before* they are decoded, so nothing is ever re-serialized to be verified:
//!
//! ```text
//! "LICET-CERT" version:u8=2
//! kind:u8  serial license_key product edition version license_type:str  term:u8
//! features:map<str,bool>  counters:map<str,i64>  binding:(u8 tag, map<str,str> | str)
//! binding_rule:opt<(components:list<str> match_at_least:i64 salt_id:str)>
//! issued_at:i64  not_before:i64  expires_at:opt<i64>  validate_after:opt<i64>
//! offline_until:opt<i64>  rollback_tolerance_seconds:i64  policy_hash:[u8;32]
//! ```
//!
//! Strings are a big-endian `u32` length and UTF-8; integers and times (Unix seconds) big-endian
//! `i64`; booleans and option flags one byte, 0 or 1; maps a `u32` count then entries in strictly
//! ascending key order; lists a `u32` count then strictly ascending strings. Anything else is
//! rejected: a fingerprint binding must carry its rule and a dongle binding none, the rule must
//! ask for 1 to all of its components, and the rollback tolerance must not be negative. Claims
//! carry whole seconds.
//!
//! Everything the client decides offline comes from these signed claims, never from its local
//! policy file: how the machine is matched ([`BindingRule`]), when it must validate online, and
//! how far its clock may move back.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey, SIGNATURE_LENGTH};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::codec::{armor, unarmor, Reader, Writer};
use crate::signature::SignedKind;

const MAGIC: &[u8] = b"LICET-CERT";
const FORMAT_VERSION: u8 = 2;
/// The largest certificate accepted, in bytes.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// The most entries a map in a certificate may have.
pub const MAX_MAP_ENTRIES: usize = 1024;
const ARMOR_BEGIN: &str = "-----BEGIN LICET CERTIFICATE-----";
const ARMOR_END: &str = "-----END LICET CERTIFICATE-----";

/// What granted the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertificateKind {
    /// A license bound to a machine, a dongle or a license server.
    Activation = 1,
    /// A network seat held by heartbeats.
    Seat = 2,
    /// A network seat borrowed until a date.
    Borrow = 3,
    /// A trial.
    Trial = 4,
}

/// The license term recorded in a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TermKind {
    /// Never expires.
    Perpetual = 1,
    /// A service period.
    Rental = 2,
    /// A trial period.
    Trial = 3,
}

/// What a certificate (or an activation) is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binding {
    /// Machine fingerprint components (component name -> hashed value).
    Fingerprint(BTreeMap<String, String>),
    /// Serial number of a USB dongle.
    Dongle(String),
}

/// How a fingerprint binding is matched: at least `match_at_least` of `components` must be present
/// on the machine with the bound value, each value hashed under the salt `salt_id` names.
///
/// The rule is signed into certificates and server licenses, so the machine is matched with the
/// rule the vendor decided under, never with one from a local file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingRule {
    /// Component names, strictly ascending.
    pub components: Vec<String>,
    /// How many of them must match (1 to all).
    pub match_at_least: u32,
    /// Which salt the component values are hashed with (see
    /// [`crate::fingerprint::salt_id`]).
    pub salt_id: String,
}

impl BindingRule {
    /// Whether the `live` components match the `bound` ones under this rule.
    pub fn matches(
        &self,
        bound: &BTreeMap<String, String>,
        live: &BTreeMap<String, String>,
    ) -> bool {
        let matching = self
            .components
            .iter()
            .filter(|name| match (bound.get(*name), live.get(*name)) {
                (Some(bound), Some(live)) => bound == live,
                _ => false,
            })
            .count();
        u32::try_from(matching).unwrap_or(u32::MAX) >= self.match_at_least
    }
}

/// Everything a certificate asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateClaims {
    /// What granted it.
    pub kind: CertificateKind,
    /// Certificate id.
    pub serial: String,
    /// The license key; empty for a trial.
    pub license_key: String,
    /// Product identifier.
    pub product: String,
    /// Edition.
    pub edition: String,
    /// Version.
    pub version: String,
    /// License type name; empty for a trial.
    pub license_type: String,
    /// Perpetual, rental or trial.
    pub term: TermKind,
    /// Effective custom features.
    pub features: BTreeMap<String, bool>,
    /// Effective custom counters.
    pub counters: BTreeMap<String, i64>,
    /// What it is bound to.
    pub binding: Binding,
    /// How a fingerprint binding is matched; `None` for (and only for) a dongle binding.
    pub binding_rule: Option<BindingRule>,
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of validity; `None` for perpetual.
    pub expires_at: Option<DateTime<Utc>>,
    /// The client should validate online from this time on (the validation interval); `None`
    /// when no periodic validation is asked for.
    pub validate_after: Option<DateTime<Utc>>,
    /// The client must validate online before this time; `None` for no limit.
    pub offline_until: Option<DateTime<Utc>>,
    /// How far, in seconds, the client's clock may move back behind the latest time it has seen.
    pub rollback_tolerance_seconds: i64,
    /// SHA-256 of the policy the decision was made under.
    pub policy_hash: [u8; 32],
}

/// Why a certificate or key was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The input ends before the certificate does.
    #[error("certificate is truncated")]
    Truncated,
    /// The input is larger than any certificate.
    #[error("certificate is larger than {MAX_CERTIFICATE_BYTES} bytes")]
    TooLarge,
    /// The bytes do not start like a certificate.
    #[error("not a licet certificate")]
    BadMagic,
    /// A format version this build does not read.
    #[error("unsupported certificate format version `{0}`")]
    UnsupportedVersion(u8),
    /// An enumeration, boolean or option byte has no meaning.
    #[error("invalid value `{tag}` for `{field}`")]
    InvalidTag {
        /// The field.
        field: &'static str,
        /// The byte found.
        tag: u8,
    },
    /// A string is not UTF-8.
    #[error("`{field}` is not valid UTF-8")]
    InvalidUtf8 {
        /// The field.
        field: &'static str,
    },
    /// Map keys out of order, repeated, or too many.
    #[error("`{field}` is not a canonical map")]
    NonCanonicalMap {
        /// The field.
        field: &'static str,
    },
    /// A time outside the representable range.
    #[error("`{field}` is out of range")]
    TimestampOutOfRange {
        /// The field.
        field: &'static str,
    },
    /// A value is out of its range or contradicts another (a fingerprint binding without its
    /// rule, a rule asking for more components than it names, a negative tolerance).
    #[error("`{field}` has an invalid value")]
    InvalidValue {
        /// The field.
        field: &'static str,
    },
    /// Bytes follow the claims.
    #[error("{0} unexpected bytes after the certificate")]
    TrailingBytes(usize),
    /// The signature does not verify with the vendor key.
    #[error("certificate signature does not match the vendor key")]
    BadSignature,
    /// The text form is malformed.
    #[error("malformed certificate text: {0}")]
    Armor(&'static str),
    /// A key has the wrong length or is not a valid Ed25519 key.
    #[error("invalid {0} key")]
    InvalidKey(&'static str),
}

/// A certificate whose signature has been verified (or that was just signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    claims: CertificateClaims,
    signed_bytes: Vec<u8>,
    signature: Signature,
}

/// Signs `claims` with `key` (the vendor's, or for seats and borrows a license server's) in the
/// certificate context.
///
/// Claims whose encoding exceeds [`MAX_CERTIFICATE_BYTES`] (or whose maps exceed
/// [`MAX_MAP_ENTRIES`]) still sign, but no verifier will accept the result.
pub fn issue(claims: CertificateClaims, key: &SigningKey) -> Certificate {
    let signed_bytes = claims.to_canonical_bytes();
    let signature = SignedKind::Certificate.sign(&signed_bytes, key);
    Certificate {
        claims,
        signed_bytes,
        signature,
    }
}

impl Certificate {
    /// The verified claims.
    pub fn claims(&self) -> &CertificateClaims {
        &self.claims
    }

    /// The exact bytes the signature covers.
    pub fn signed_bytes(&self) -> &[u8] {
        &self.signed_bytes
    }

    /// The vendor's signature.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The signed bytes followed by the 64-byte signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.signed_bytes.len() + SIGNATURE_LENGTH);
        bytes.extend_from_slice(&self.signed_bytes);
        bytes.extend_from_slice(&self.signature.to_bytes());
        bytes
    }

    /// Verifies the signature over the received bytes, then decodes the claims.
    pub fn from_bytes(bytes: &[u8], key: &VerifyingKey) -> Result<Certificate, CertificateError> {
        if bytes.len() > MAX_CERTIFICATE_BYTES {
            return Err(CertificateError::TooLarge);
        }
        let split = bytes
            .len()
            .checked_sub(SIGNATURE_LENGTH)
            .ok_or(CertificateError::Truncated)?;
        let (signed, signature) = bytes.split_at(split);
        let signature =
            Signature::from_slice(signature).map_err(|_| CertificateError::BadSignature)?;
        SignedKind::Certificate
            .verify(signed, &signature, key)
            .map_err(|_| CertificateError::BadSignature)?;
        let claims = CertificateClaims::from_canonical_bytes(signed)?;
        Ok(Certificate {
            claims,
            signed_bytes: signed.to_vec(),
            signature,
        })
    }

    /// The armored text form: base64 between BEGIN and END lines.
    pub fn to_armored(&self) -> String {
        armor(&self.to_bytes(), ARMOR_BEGIN, ARMOR_END)
    }

    /// Parses the armored text form and verifies it.
    ///
    /// Whitespace around the armor and `\r\n` line endings are accepted; anything else must be
    /// exactly as [`Certificate::to_armored`] writes it (BEGIN and END on their own lines, the
    /// base64 wrapped at 64 columns), so that no change to the text goes unnoticed.
    pub fn from_armored(text: &str, key: &VerifyingKey) -> Result<Certificate, CertificateError> {
        if text.len() > MAX_CERTIFICATE_BYTES * 2 {
            return Err(CertificateError::TooLarge);
        }
        let bytes = unarmor(text, ARMOR_BEGIN, ARMOR_END)?;
        Certificate::from_bytes(&bytes, key)
    }
}

impl CertificateClaims {
    /// The canonical encoding that is signed.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(256));
        out.bytes(MAGIC);
        out.u8(FORMAT_VERSION);
        out.u8(self.kind as u8);
        for text in [
            &self.serial,
            &self.license_key,
            &self.product,
            &self.edition,
            &self.version,
            &self.license_type,
        ] {
            out.string(text);
        }
        out.u8(self.term as u8);
        out.len(self.features.len());
        for (name, value) in &self.features {
            out.string(name);
            out.u8(u8::from(*value));
        }
        out.len(self.counters.len());
        for (name, value) in &self.counters {
            out.string(name);
            out.i64(*value);
        }
        out.binding(&self.binding);
        out.binding_rule(self.binding_rule.as_ref());
        out.i64(self.issued_at.timestamp());
        out.i64(self.not_before.timestamp());
        out.optional_time(self.expires_at);
        out.optional_time(self.validate_after);
        out.optional_time(self.offline_until);
        out.i64(self.rollback_tolerance_seconds);
        out.bytes(&self.policy_hash);
        out.0
    }

    /// Decodes canonical bytes, rejecting every non-canonical form.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<CertificateClaims, CertificateError> {
        if bytes.len() > MAX_CERTIFICATE_BYTES {
            return Err(CertificateError::TooLarge);
        }
        let mut input = Reader(bytes);
        if input.take(MAGIC.len())? != MAGIC {
            return Err(CertificateError::BadMagic);
        }
        let version = input.u8()?;
        if version != FORMAT_VERSION {
            return Err(CertificateError::UnsupportedVersion(version));
        }
        let kind = match input.u8()? {
            1 => CertificateKind::Activation,
            2 => CertificateKind::Seat,
            3 => CertificateKind::Borrow,
            4 => CertificateKind::Trial,
            tag => return Err(CertificateError::InvalidTag { field: "kind", tag }),
        };
        let serial = input.string("serial")?;
        let license_key = input.string("license_key")?;
        let product = input.string("product")?;
        let edition = input.string("edition")?;
        let version = input.string("version")?;
        let license_type = input.string("license_type")?;
        let term = input.term()?;
        let features = input.map("features", |input| input.bool("features"))?;
        let counters = input.map("counters", Reader::i64)?;
        let binding = input.binding()?;
        let binding_rule = input.binding_rule(&binding)?;
        let issued_at = input.time("issued_at")?;
        let not_before = input.time("not_before")?;
        let expires_at = input.optional_time("expires_at")?;
        let validate_after = input.optional_time("validate_after")?;
        let offline_until = input.optional_time("offline_until")?;
        let rollback_tolerance_seconds = input.i64()?;
        if rollback_tolerance_seconds < 0 {
            return Err(CertificateError::InvalidValue {
                field: "rollback_tolerance_seconds",
            });
        }
        let policy_hash = input
            .take(32)?
            .try_into()
            .map_err(|_| CertificateError::Truncated)?;
        if !input.0.is_empty() {
            return Err(CertificateError::TrailingBytes(input.0.len()));
        }
        Ok(CertificateClaims {
            kind,
            serial,
            license_key,
            product,
            edition,
            version,
            license_type,
            term,
            features,
            counters,
            binding,
            binding_rule,
            issued_at,
            not_before,
            expires_at,
            validate_after,
            offline_until,
            rollback_tolerance_seconds,
            policy_hash,
        })
    }
}

/// SHA-256 of a policy's source, recorded in certificates.
pub fn policy_hash(source: &[u8]) -> [u8; 32] {
    Sha256::digest(source).into()
}

/// A signing key from its 32 secret bytes.
pub fn signing_key_from_bytes(bytes: &[u8]) -> Result<SigningKey, CertificateError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| CertificateError::InvalidKey("signing"))?;
    Ok(SigningKey::from_bytes(&bytes))
}

/// A verifying (public) key from its 32 bytes; invalid and weak keys are rejected.
pub fn verifying_key_from_bytes(bytes: &[u8]) -> Result<VerifyingKey, CertificateError> {
    let bytes: [u8; 32] = bytes
        .try_into()
        .map_err(|_| CertificateError::InvalidKey("public"))?;
    let key =
        VerifyingKey::from_bytes(&bytes).map_err(|_| CertificateError::InvalidKey("public"))?;
    if key.is_weak() {
        return Err(CertificateError::InvalidKey("public"));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[7u8; 32])
    }

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn claims() -> CertificateClaims {
        CertificateClaims {
            kind: CertificateKind::Activation,
            serial: "3f2a9c0d11e4b7a85c6d0e12".into(),
            license_key: "GCAD-PRO-0001".into(),
            product: "gstarcad".into(),
            edition: "professional".into(),
            version: "2027".into(),
            license_type: "standalone-key".into(),
            term: TermKind::Rental,
            features: BTreeMap::from([("drawing".into(), true), ("lisp".into(), false)]),
            counters: BTreeMap::from([("plot-sheets".into(), 250)]),
            binding: Binding::Fingerprint(BTreeMap::from([
                ("cpu".into(), "c1".into()),
                ("machine-id".into(), "m1".into()),
            ])),
            binding_rule: Some(BindingRule {
                components: vec!["cpu".into(), "machine-id".into()],
                match_at_least: 2,
                salt_id: "0123456789abcdef".into(),
            }),
            issued_at: at("2027-01-04T09:00:00Z"),
            not_before: at("2027-01-04T09:00:00Z"),
            expires_at: Some(at("2028-01-04T09:00:00Z")),
            validate_after: Some(at("2027-01-05T09:00:00Z")),
            offline_until: Some(at("2027-01-19T09:00:00Z")),
            rollback_tolerance_seconds: 3600,
            policy_hash: [9u8; 32],
        }
    }

    #[test]
    fn round_trips_through_bytes_and_text() {
        let certificate = issue(claims(), &key());
        let public = key().verifying_key();
        let from_bytes = Certificate::from_bytes(&certificate.to_bytes(), &public).unwrap();
        assert_eq!(from_bytes.claims(), &claims());
        let from_text = Certificate::from_armored(&certificate.to_armored(), &public).unwrap();
        assert_eq!(from_text, certificate);
        let crlf = certificate.to_armored().replace('\n', "\r\n");
        assert!(Certificate::from_armored(&format!("\n  {crlf}\n"), &public).is_ok());
    }

    #[test]
    fn every_single_byte_change_is_rejected() {
        let bytes = issue(claims(), &key()).to_bytes();
        let public = key().verifying_key();
        for index in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[index] ^= 0x01;
            assert!(
                Certificate::from_bytes(&tampered, &public).is_err(),
                "byte {index}"
            );
        }
    }

    #[test]
    fn every_changed_character_of_the_text_is_rejected() {
        let text = issue(claims(), &key()).to_armored();
        let public = key().verifying_key();
        let body_start = ARMOR_BEGIN.len() + 1;
        let body_end = text.len() - ARMOR_END.len() - 2;
        for index in body_start..body_end {
            let original = text.as_bytes()[index];
            if original == b'\n' || original == b'=' {
                continue;
            }
            let replacement = if original == b'A' { 'B' } else { 'A' };
            let mut tampered = text.clone();
            tampered.replace_range(index..=index, &replacement.to_string());
            assert!(
                Certificate::from_armored(&tampered, &public).is_err(),
                "char {index}"
            );
        }
    }

    #[test]
    fn another_vendor_key_is_rejected() {
        let bytes = issue(claims(), &key()).to_bytes();
        let other = SigningKey::from_bytes(&[8u8; 32]).verifying_key();
        assert_eq!(
            Certificate::from_bytes(&bytes, &other),
            Err(CertificateError::BadSignature)
        );
    }

    #[test]
    fn truncation_and_trailing_bytes_are_rejected() {
        let canonical = claims().to_canonical_bytes();
        for len in 0..canonical.len() {
            assert!(
                CertificateClaims::from_canonical_bytes(&canonical[..len]).is_err(),
                "length {len}"
            );
        }
        let mut longer = canonical.clone();
        longer.push(0);
        assert_eq!(
            CertificateClaims::from_canonical_bytes(&longer),
            Err(CertificateError::TrailingBytes(1))
        );
        let bytes = issue(claims(), &key()).to_bytes();
        let public = key().verifying_key();
        for len in 0..bytes.len() {
            assert!(Certificate::from_bytes(&bytes[..len], &public).is_err());
        }
    }

    #[test]
    fn hostile_lengths_fail_without_allocating() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([FORMAT_VERSION, 1]);
        bytes.extend(u32::MAX.to_be_bytes());
        assert_eq!(
            CertificateClaims::from_canonical_bytes(&bytes),
            Err(CertificateError::Truncated)
        );
    }

    #[test]
    fn non_canonical_forms_are_rejected_even_when_signed() {
        let canonical = claims().to_canonical_bytes();
        // Swap the two feature entries ("drawing", "lisp") so the keys are out of order.
        let drawing = [&7u32.to_be_bytes()[..], b"drawing", &[1]].concat();
        let lisp = [&4u32.to_be_bytes()[..], b"lisp", &[0]].concat();
        let in_order = [drawing.clone(), lisp.clone()].concat();
        let swapped = [lisp, drawing].concat();
        let start = canonical
            .windows(in_order.len())
            .position(|w| w == in_order.as_slice())
            .unwrap();
        let mut bytes = canonical.clone();
        bytes[start..start + in_order.len()].copy_from_slice(&swapped);
        let signature = SignedKind::Certificate.sign(&bytes, &key());
        let signed = [bytes, signature.to_bytes().to_vec()].concat();
        assert_eq!(
            Certificate::from_bytes(&signed, &key().verifying_key()),
            Err(CertificateError::NonCanonicalMap { field: "features" })
        );
        // A boolean that is neither 0 nor 1.
        let mut two = canonical.clone();
        two[start + 4 + 7] = 2;
        assert_eq!(
            CertificateClaims::from_canonical_bytes(&two),
            Err(CertificateError::InvalidTag {
                field: "features",
                tag: 2
            })
        );
    }

    #[test]
    fn malformed_armor_is_rejected() {
        let public = key().verifying_key();
        let text = issue(claims(), &key()).to_armored();
        assert!(Certificate::from_armored("", &public).is_err());
        assert!(Certificate::from_armored(&text.replace(ARMOR_END, ""), &public).is_err());
        assert!(Certificate::from_armored(&format!("junk{text}"), &public).is_err());
        assert!(Certificate::from_armored(&text.replacen('\n', "", 2), &public).is_err());
        assert!(
            Certificate::from_armored(&"A".repeat(MAX_CERTIFICATE_BYTES * 3), &public).is_err()
        );
    }

    #[test]
    fn armor_layout_changes_are_rejected() {
        let public = key().verifying_key();
        let text = issue(claims(), &key()).to_armored();
        let last = text.len() - 1;
        // Only whitespace around the armor and CRLF line endings are tolerated: deleting any byte
        // of the armor itself, or adding a line break or space inside it, is rejected.
        for index in 0..last {
            let mut deleted = text.clone();
            deleted.remove(index);
            assert!(
                Certificate::from_armored(&deleted, &public).is_err(),
                "delete {index}"
            );
        }
        for index in 1..last {
            for extra in ['\n', '\r', ' '] {
                if extra == '\r' && text.as_bytes()[index] == b'\n' {
                    continue; // a CRLF line ending
                }
                let mut inserted = text.clone();
                inserted.insert(index, extra);
                assert!(
                    Certificate::from_armored(&inserted, &public).is_err(),
                    "insert {extra:?} at {index}"
                );
            }
        }
    }

    #[test]
    fn keys_are_checked() {
        assert!(signing_key_from_bytes(&[1u8; 31]).is_err());
        assert!(verifying_key_from_bytes(&[0u8; 32]).is_err());
        let public = key().verifying_key();
        assert_eq!(verifying_key_from_bytes(public.as_bytes()).unwrap(), public);
    }

    #[test]
    fn the_binding_rule_is_checked_when_decoded() {
        let decode = |claims: CertificateClaims| {
            CertificateClaims::from_canonical_bytes(&claims.to_canonical_bytes())
        };
        let invalid = |field| Err(CertificateError::InvalidValue { field });
        let mut no_rule = claims();
        no_rule.binding_rule = None;
        assert_eq!(decode(no_rule), invalid("binding_rule"));
        let mut dongle_with_rule = claims();
        dongle_with_rule.binding = Binding::Dongle("LD-1".into());
        assert_eq!(decode(dongle_with_rule), invalid("binding_rule"));
        for at_least in [0, 3] {
            let mut wrong = claims();
            if let Some(rule) = &mut wrong.binding_rule {
                rule.match_at_least = at_least;
            }
            assert_eq!(decode(wrong), invalid("binding_rule"), "{at_least}");
        }
        let mut unordered = claims();
        if let Some(rule) = &mut unordered.binding_rule {
            rule.components.reverse();
        }
        assert_eq!(
            decode(unordered),
            Err(CertificateError::NonCanonicalMap {
                field: "binding_rule"
            })
        );
        let mut negative = claims();
        negative.rollback_tolerance_seconds = -1;
        assert_eq!(decode(negative), invalid("rollback_tolerance_seconds"));
        let mut version_one = claims().to_canonical_bytes();
        version_one[MAGIC.len()] = 1;
        assert_eq!(
            CertificateClaims::from_canonical_bytes(&version_one),
            Err(CertificateError::UnsupportedVersion(1))
        );
    }

    #[test]
    fn the_rule_counts_only_its_own_components() {
        let rule = BindingRule {
            components: vec!["disk".into(), "machine-id".into()],
            match_at_least: 2,
            salt_id: String::new(),
        };
        let bound = BTreeMap::from([
            ("cpu".to_owned(), "c".to_owned()),
            ("disk".to_owned(), "d".to_owned()),
            ("machine-id".to_owned(), "m".to_owned()),
        ]);
        let mut live = bound.clone();
        assert!(rule.matches(&bound, &live));
        live.insert("cpu".into(), "other".into());
        assert!(rule.matches(&bound, &live));
        live.insert("disk".into(), "other".into());
        assert!(!rule.matches(&bound, &live));
        live.remove("disk");
        assert!(!rule.matches(&bound, &live));
    }

    #[test]
    fn armored_text_is_stable() {
        insta::assert_snapshot!(issue(claims(), &key()).to_armored());
    }

    fn time() -> impl Strategy<Value = DateTime<Utc>> {
        (0i64..4_102_444_800).prop_map(|seconds| DateTime::from_timestamp(seconds, 0).unwrap())
    }

    fn arbitrary_claims() -> impl Strategy<Value = CertificateClaims> {
        let strings = proptest::collection::vec(".{0,12}", 6);
        let features = proptest::collection::btree_map(".{0,8}", any::<bool>(), 0..4);
        let counters = proptest::collection::btree_map(".{0,8}", any::<i64>(), 0..4);
        let rule = (
            proptest::collection::btree_set(".{0,8}", 1..5),
            any::<u32>(),
            ".{0,16}",
        )
            .prop_map(|(components, at_least, salt_id)| {
                let count = u32::try_from(components.len()).unwrap();
                BindingRule {
                    components: components.into_iter().collect(),
                    match_at_least: 1 + at_least % count,
                    salt_id,
                }
            });
        let binding = prop_oneof![
            (
                proptest::collection::btree_map(".{0,8}", ".{0,8}", 0..5),
                rule
            )
                .prop_map(|(components, rule)| (Binding::Fingerprint(components), Some(rule))),
            ".{0,16}".prop_map(|serial| (Binding::Dongle(serial), None)),
        ];
        let kind = prop_oneof![
            Just(CertificateKind::Activation),
            Just(CertificateKind::Seat),
            Just(CertificateKind::Borrow),
            Just(CertificateKind::Trial)
        ];
        let term = prop_oneof![
            Just(TermKind::Perpetual),
            Just(TermKind::Rental),
            Just(TermKind::Trial)
        ];
        let times = (
            time(),
            time(),
            proptest::option::of(time()),
            proptest::option::of(time()),
            proptest::option::of(time()),
            0i64..i64::MAX,
        );
        (
            kind,
            strings,
            term,
            features,
            counters,
            binding,
            times,
            any::<[u8; 32]>(),
        )
            .prop_map(
                |(kind, strings, term, features, counters, binding, times, policy_hash)| {
                    let [serial, license_key, product, edition, version, license_type]: [String;
                        6] = strings.try_into().unwrap();
                    CertificateClaims {
                        kind,
                        serial,
                        license_key,
                        product,
                        edition,
                        version,
                        license_type,
                        term,
                        features,
                        counters,
                        binding: binding.0,
                        binding_rule: binding.1,
                        issued_at: times.0,
                        not_before: times.1,
                        expires_at: times.2,
                        validate_after: times.3,
                        offline_until: times.4,
                        rollback_tolerance_seconds: times.5,
                        policy_hash,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn canonical_bytes_round_trip(claims in arbitrary_claims()) {
            let bytes = claims.to_canonical_bytes();
            prop_assert_eq!(CertificateClaims::from_canonical_bytes(&bytes).unwrap(), claims);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = CertificateClaims::from_canonical_bytes(&bytes);
            let mut prefixed = MAGIC.to_vec();
            prefixed.push(FORMAT_VERSION);
            prefixed.extend(&bytes);
            let _ = CertificateClaims::from_canonical_bytes(&prefixed);
        }
    }
}
