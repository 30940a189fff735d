//! Server licenses: what the vendor lets one customer's license server serve.
//!
//! A customer's license server never holds the vendor's key. When its network license key is
//! activated against the vendor's activation center, the center answers with a **server license**:
//! the vendor-signed terms of the pool (key, product, edition, version, seats, term and expiry, lease
//! length, borrowing maximum, features and counters), the binding of the license server (its
//! fingerprint or its network dongle), the license server's own Ed25519 public key, an offline
//! period, and the certificate kinds it may sign (seats and borrows only).
//!
//! The license server signs seat and borrow certificates with its own key and sends the server
//! license with them; a client verifies the chain vendor -> server license -> certificate with the
//! vendor's public key alone ([`verify_served`]), and refuses a certificate that falls outside the
//! server license ([`ServerLicense::admits`]).
//!
//! The signed bytes use the certificate's canonical encoding (see [`crate::certificate`]):
//!
//! ```text
//! "LICET-SERVER-LICENSE" version:u8=2
//! serial license_key product edition version license_type:str  term:u8
//! seats:i64  lease_seconds:i64  borrow_max_seconds:opt<i64>  kinds:u8 (bit 0 seat, bit 1 borrow)
//! features:map<str,bool>  counters:map<str,i64>  binding:(u8 tag, map<str,str> | str)
//! binding_rule:(as in a certificate)  server_key:[u8;32]  issued_at:i64  not_before:i64  expires_at:opt<i64>  offline_until:i64
//! policy_hash:[u8;32]
//! ```
//!
//! and are signed in the server-license context ([`SignedKind::ServerLicense`]).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use ed25519_dalek::{Signature, SigningKey, VerifyingKey, SIGNATURE_LENGTH};
use serde::{Deserialize, Serialize};

use crate::certificate::{
    verifying_key_from_bytes, Binding, BindingRule, Certificate, CertificateClaims,
    CertificateError, CertificateKind, TermKind, MAX_CERTIFICATE_BYTES,
};
use crate::codec::{armor, unarmor, Reader, Writer};
use crate::decision::Code;
use crate::policy::{Policy, DEFAULT_LEASE_SECONDS};
use crate::signature::SignedKind;
use crate::state::License;

/// How long before its start a server license is already in force.
pub const START_SKEW_SECONDS: i64 = 300;

const MAGIC: &[u8] = b"LICET-SERVER-LICENSE";
const FORMAT_VERSION: u8 = 2;
const ARMOR_BEGIN: &str = "-----BEGIN LICET SERVER LICENSE-----";
const ARMOR_END: &str = "-----END LICET SERVER LICENSE-----";
const KIND_SEAT: u8 = 1;
const KIND_BORROW: u8 = 2;

/// The certificate kinds a license server may sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedKinds {
    /// Seat certificates (checkout).
    pub seat: bool,
    /// Borrow certificates.
    pub borrow: bool,
}

impl ServedKinds {
    /// Whether a certificate of `kind` may be signed under the server license.
    pub fn allows(self, kind: CertificateKind) -> bool {
        match kind {
            CertificateKind::Seat => self.seat,
            CertificateKind::Borrow => self.borrow,
            CertificateKind::Activation | CertificateKind::Trial => false,
        }
    }

    fn bits(self) -> u8 {
        (if self.seat { KIND_SEAT } else { 0 }) | (if self.borrow { KIND_BORROW } else { 0 })
    }

    fn from_bits(bits: u8) -> Result<ServedKinds, CertificateError> {
        if bits & !(KIND_SEAT | KIND_BORROW) != 0 {
            return Err(CertificateError::InvalidTag {
                field: "kinds",
                tag: bits,
            });
        }
        Ok(ServedKinds {
            seat: bits & KIND_SEAT != 0,
            borrow: bits & KIND_BORROW != 0,
        })
    }
}

/// Everything a server license asserts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerLicenseClaims {
    /// Server license id.
    pub serial: String,
    /// The network license key.
    pub license_key: String,
    /// Product identifier.
    pub product: String,
    /// Edition the pool serves.
    pub edition: String,
    /// Version the pool serves.
    pub version: String,
    /// License type name (a network kind).
    pub license_type: String,
    /// Perpetual or rental.
    pub term: TermKind,
    /// Seats of the pool.
    pub seats: u32,
    /// Length of a seat lease, in seconds.
    pub lease_seconds: i64,
    /// The longest borrow, in seconds; `None` when seats cannot be borrowed.
    pub borrow_max_seconds: Option<i64>,
    /// The certificate kinds the license server may sign.
    pub kinds: ServedKinds,
    /// Effective custom features of every seat.
    pub features: BTreeMap<String, bool>,
    /// Effective custom counters of every seat.
    pub counters: BTreeMap<String, i64>,
    /// The license server it is bound to: its fingerprint, or its network dongle.
    pub binding: Binding,
    /// How a fingerprint binding is matched; `None` for (and only for) a dongle binding.
    pub binding_rule: Option<BindingRule>,
    /// The license server's Ed25519 public key, which signs its seat and borrow certificates.
    pub server_key: [u8; 32],
    /// When it was issued.
    pub issued_at: DateTime<Utc>,
    /// Start of validity.
    pub not_before: DateTime<Utc>,
    /// End of the license's term; `None` for perpetual.
    pub expires_at: Option<DateTime<Utc>>,
    /// The license server must revalidate with the center before this time; certificates it
    /// signs later are refused.
    pub offline_until: DateTime<Utc>,
    /// SHA-256 of the policy the center decided under.
    pub policy_hash: [u8; 32],
}

/// Why a server license, or a certificate under it, is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServerLicenseError {
    /// The server license does not verify with the vendor key, or is malformed.
    #[error("the server license is not valid")]
    Invalid(#[source] CertificateError),
    /// The certificate does not verify with the license server's key.
    #[error("the certificate is not signed by the license server of its server license")]
    Certificate(#[source] CertificateError),
    /// The certificate grants something the server license does not.
    #[error("the certificate falls outside its server license: {0}")]
    Outside(String),
    /// The server license is bound to another license server.
    #[error("the server license is bound to another license server: {0}")]
    BoundElsewhere(String),
    /// The server license is not valid at this time.
    #[error("{0}")]
    NotInForce(String),
    /// The request to issue one is not for a network license.
    #[error("{0}")]
    NotNetwork(String),
}

impl ServerLicenseError {
    /// The stable code a client or license server reports for this refusal.
    pub fn code(&self) -> Code {
        match self {
            ServerLicenseError::Invalid(_) | ServerLicenseError::BoundElsewhere(_) => {
                Code::ServerLicenseInvalid
            }
            ServerLicenseError::Certificate(_) | ServerLicenseError::Outside(_) => {
                Code::CertificateOutsideServerLicense
            }
            ServerLicenseError::NotInForce(_) => Code::ServerLicenseExpired,
            ServerLicenseError::NotNetwork(_) => Code::WrongLicenseType,
        }
    }
}

/// A server license whose vendor signature has been verified (or that was just signed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLicense {
    claims: ServerLicenseClaims,
    signed_bytes: Vec<u8>,
    signature: Signature,
}

impl ServerLicenseClaims {
    /// The server license the center grants for an allowed activation (or validation) of a
    /// network license on a license server: the pool's terms from the policy and the license, the
    /// binding, expiry and offline period of the activation certificate the engine decided, and
    /// the license server's public key.
    pub fn grant(
        policy: &Policy,
        license: &License,
        activation: &CertificateClaims,
        server_key: [u8; 32],
    ) -> Result<ServerLicenseClaims, ServerLicenseError> {
        let license_type = policy
            .license_type(&license.license_type)
            .filter(|license_type| license_type.kind.is_network())
            .ok_or_else(|| {
                ServerLicenseError::NotNetwork(format!(
                    "license `{}` is not a network license; only network licenses activate a license server",
                    license.key
                ))
            })?;
        let offline_until = activation.offline_until.ok_or_else(|| {
            ServerLicenseError::NotInForce("the activation carries no offline period".to_owned())
        })?;
        let lease = license_type
            .lease
            .unwrap_or_else(|| Duration::seconds(DEFAULT_LEASE_SECONDS));
        let borrowing = license_type.borrowing;
        Ok(ServerLicenseClaims {
            serial: serial_for(&activation.serial),
            license_key: activation.license_key.clone(),
            product: activation.product.clone(),
            edition: activation.edition.clone(),
            version: activation.version.clone(),
            license_type: activation.license_type.clone(),
            term: activation.term,
            seats: license.seats.or(license_type.default_seats).unwrap_or(0),
            lease_seconds: lease.num_seconds(),
            borrow_max_seconds: borrowing.map(|borrowing| borrowing.max.num_seconds()),
            kinds: ServedKinds {
                seat: true,
                borrow: borrowing.is_some(),
            },
            features: activation.features.clone(),
            counters: activation.counters.clone(),
            binding: activation.binding.clone(),
            binding_rule: activation.binding_rule.clone(),
            server_key,
            issued_at: activation.issued_at,
            not_before: activation.not_before,
            expires_at: activation.expires_at,
            offline_until,
            policy_hash: activation.policy_hash,
        })
    }

    /// The canonical encoding that is signed.
    pub fn to_canonical_bytes(&self) -> Vec<u8> {
        let mut out = Writer(Vec::with_capacity(320));
        out.bytes(MAGIC);
        out.u8(FORMAT_VERSION);
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
        out.i64(i64::from(self.seats));
        out.i64(self.lease_seconds);
        match self.borrow_max_seconds {
            Some(seconds) => {
                out.u8(1);
                out.i64(seconds);
            }
            None => out.u8(0),
        }
        out.u8(self.kinds.bits());
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
        out.bytes(&self.server_key);
        out.i64(self.issued_at.timestamp());
        out.i64(self.not_before.timestamp());
        out.optional_time(self.expires_at);
        out.i64(self.offline_until.timestamp());
        out.bytes(&self.policy_hash);
        out.0
    }

    /// Decodes canonical bytes, rejecting every non-canonical form.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<ServerLicenseClaims, CertificateError> {
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
        let serial = input.string("serial")?;
        let license_key = input.string("license_key")?;
        let product = input.string("product")?;
        let edition = input.string("edition")?;
        let version = input.string("version")?;
        let license_type = input.string("license_type")?;
        let term = input.term()?;
        let seats = u32::try_from(input.i64()?).map_err(|_| CertificateError::InvalidTag {
            field: "seats",
            tag: 0,
        })?;
        let lease_seconds = input.i64()?;
        let borrow_max_seconds = match input.u8()? {
            0 => None,
            1 => Some(input.i64()?),
            tag => {
                return Err(CertificateError::InvalidTag {
                    field: "borrow_max_seconds",
                    tag,
                })
            }
        };
        let kinds = ServedKinds::from_bits(input.u8()?)?;
        let features = input.map("features", |input| input.bool("features"))?;
        let counters = input.map("counters", Reader::i64)?;
        let binding = input.binding()?;
        let binding_rule = input.binding_rule(&binding)?;
        let server_key = input.array::<32>()?;
        let issued_at = input.time("issued_at")?;
        let not_before = input.time("not_before")?;
        let expires_at = input.optional_time("expires_at")?;
        let offline_until = input.time("offline_until")?;
        let policy_hash = input.array::<32>()?;
        if !input.0.is_empty() {
            return Err(CertificateError::TrailingBytes(input.0.len()));
        }
        Ok(ServerLicenseClaims {
            serial,
            license_key,
            product,
            edition,
            version,
            license_type,
            term,
            seats,
            lease_seconds,
            borrow_max_seconds,
            kinds,
            features,
            counters,
            binding,
            binding_rule,
            server_key,
            issued_at,
            not_before,
            expires_at,
            offline_until,
            policy_hash,
        })
    }
}

/// The serial of the server license granted for the activation certificate `activation_serial`
/// the engine decided: `sl-` and that serial. The activation center records it as the
/// activation's current serial, which the license server presents to return it.
pub fn serial_for(activation_serial: &str) -> String {
    format!("sl-{activation_serial}")
}

/// Signs `claims` with the vendor's key in the server-license context.
pub fn issue(claims: ServerLicenseClaims, vendor: &SigningKey) -> ServerLicense {
    let signed_bytes = claims.to_canonical_bytes();
    let signature = SignedKind::ServerLicense.sign(&signed_bytes, vendor);
    ServerLicense {
        claims,
        signed_bytes,
        signature,
    }
}

impl ServerLicense {
    /// The verified claims.
    pub fn claims(&self) -> &ServerLicenseClaims {
        &self.claims
    }

    /// The signed bytes followed by the 64-byte signature.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.signed_bytes.len() + SIGNATURE_LENGTH);
        bytes.extend_from_slice(&self.signed_bytes);
        bytes.extend_from_slice(&self.signature.to_bytes());
        bytes
    }

    /// Verifies the vendor's signature over the received bytes, then decodes the claims.
    pub fn from_bytes(
        bytes: &[u8],
        vendor: &VerifyingKey,
    ) -> Result<ServerLicense, CertificateError> {
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
        SignedKind::ServerLicense
            .verify(signed, &signature, vendor)
            .map_err(|_| CertificateError::BadSignature)?;
        let claims = ServerLicenseClaims::from_canonical_bytes(signed)?;
        Ok(ServerLicense {
            claims,
            signed_bytes: signed.to_vec(),
            signature,
        })
    }

    /// The armored text form.
    pub fn to_armored(&self) -> String {
        armor(&self.to_bytes(), ARMOR_BEGIN, ARMOR_END)
    }

    /// Parses the armored text form and verifies it with the vendor key.
    pub fn from_armored(
        text: &str,
        vendor: &VerifyingKey,
    ) -> Result<ServerLicense, CertificateError> {
        if text.len() > MAX_CERTIFICATE_BYTES * 2 {
            return Err(CertificateError::TooLarge);
        }
        let bytes = unarmor(text, ARMOR_BEGIN, ARMOR_END)?;
        ServerLicense::from_bytes(&bytes, vendor)
    }

    /// The license server's public key, which signs the certificates served under it.
    pub fn server_key(&self) -> Result<VerifyingKey, ServerLicenseError> {
        verifying_key_from_bytes(&self.claims.server_key).map_err(ServerLicenseError::Invalid)
    }

    /// Whether the server license is in force at `now`: started (up to [`START_SKEW_SECONDS`]
    /// early: a center's clock a little ahead of the license server's, or a second that turned
    /// while the answer travelled), not expired, and revalidated within its offline period.
    pub fn check_in_force(&self, now: DateTime<Utc>) -> Result<(), ServerLicenseError> {
        let claims = &self.claims;
        if now + Duration::seconds(START_SKEW_SECONDS) < claims.not_before {
            return Err(ServerLicenseError::NotInForce(format!(
                "the server license of `{}` starts at {}",
                claims.license_key, claims.not_before
            )));
        }
        if let Some(expires_at) = claims.expires_at {
            if now >= expires_at {
                return Err(ServerLicenseError::NotInForce(format!(
                    "the server license of `{}` expired at {expires_at}",
                    claims.license_key
                )));
            }
        }
        if now >= claims.offline_until {
            return Err(ServerLicenseError::NotInForce(format!(
                "the server license of `{}` was not revalidated with the activation center by {}",
                claims.license_key, claims.offline_until
            )));
        }
        Ok(())
    }

    /// Whether the live fingerprint components of a license server match the server license's
    /// fingerprint binding under its signed binding rule (never a local policy's); `false` for a
    /// dongle binding.
    pub fn matches_machine(&self, live: &BTreeMap<String, String>) -> bool {
        match (&self.claims.binding, &self.claims.binding_rule) {
            (Binding::Fingerprint(bound), Some(rule)) => rule.matches(bound, live),
            _ => false,
        }
    }

    /// Whether the server license is bound to a license server with `public_key` and, for a
    /// fingerprint binding, a fingerprint matching `matches`.
    pub fn check_bound_to(
        &self,
        public_key: &VerifyingKey,
        machine_matches: impl FnOnce(&Binding) -> bool,
    ) -> Result<(), ServerLicenseError> {
        if self.claims.server_key != public_key.to_bytes() {
            return Err(ServerLicenseError::BoundElsewhere(
                "it names another license server's key".to_owned(),
            ));
        }
        if !machine_matches(&self.claims.binding) {
            return Err(ServerLicenseError::BoundElsewhere(
                match &self.claims.binding {
                    Binding::Fingerprint(_) => "it is bound to another machine".to_owned(),
                    Binding::Dongle(serial) => format!("it is bound to dongle `{serial}`"),
                },
            ));
        }
        Ok(())
    }

    /// Whether `claims` (of a certificate signed by the license server) fall inside the server
    /// license: an allowed kind, the same key, product, edition, version, type, features and
    /// counters, issued while the server license was in force, expiring no later than it, and a
    /// borrow no longer than its maximum.
    pub fn admits(&self, claims: &CertificateClaims) -> Result<(), ServerLicenseError> {
        let license = &self.claims;
        let outside = |what: String| Err(ServerLicenseError::Outside(what));
        if !license.kinds.allows(claims.kind) {
            return outside(format!(
                "a license server may not sign {} certificates",
                kind_name(claims.kind)
            ));
        }
        for (what, certificate, served) in [
            ("license key", &claims.license_key, &license.license_key),
            ("product", &claims.product, &license.product),
            ("edition", &claims.edition, &license.edition),
            ("version", &claims.version, &license.version),
            ("license type", &claims.license_type, &license.license_type),
        ] {
            if certificate != served {
                return outside(format!("its {what} is `{certificate}`, not `{served}`"));
            }
        }
        if claims.term != license.term {
            return outside("its term differs".to_owned());
        }
        if claims.features != license.features || claims.counters != license.counters {
            return outside("its features or counters differ".to_owned());
        }
        if claims.policy_hash != license.policy_hash {
            return outside("it was decided under another policy".to_owned());
        }
        if claims.issued_at < license.not_before
            || claims.issued_at >= license.offline_until
            || license
                .expires_at
                .is_some_and(|end| claims.issued_at >= end)
        {
            return outside(format!(
                "it was issued at {}, when the server license was not in force",
                claims.issued_at
            ));
        }
        if claims.not_before < license.not_before {
            return outside("it starts before the server license".to_owned());
        }
        let Some(cert_end) = claims.expires_at else {
            return outside("it never expires".to_owned());
        };
        if license.expires_at.is_some_and(|end| cert_end > end) {
            return outside(format!(
                "it expires at {cert_end}, after the server license"
            ));
        }
        let longest = match claims.kind {
            CertificateKind::Borrow => license.borrow_max_seconds,
            _ => Some(license.lease_seconds),
        };
        let longest = longest.map(Duration::seconds).unwrap_or_default();
        if cert_end > claims.issued_at + longest {
            return outside(format!(
                "it lasts until {cert_end}, longer than the server license allows"
            ));
        }
        if claims
            .offline_until
            .is_some_and(|offline| offline > claims.issued_at + longest)
        {
            return outside(
                "its offline period is longer than the server license allows".to_owned(),
            );
        }
        Ok(())
    }
}

fn kind_name(kind: CertificateKind) -> &'static str {
    match kind {
        CertificateKind::Activation => "activation",
        CertificateKind::Seat => "seat",
        CertificateKind::Borrow => "borrow",
        CertificateKind::Trial => "trial",
    }
}

/// Verifies a certificate served by a license server: the server license with the vendor key, the
/// certificate with the server license's key, then that the certificate falls inside the server
/// license. The certificate's own checks against the machine and the clock follow as for any
/// certificate ([`crate::offline::check_certificate`]).
pub fn verify_served(
    certificate: &str,
    server_license: &str,
    vendor: &VerifyingKey,
) -> Result<(Certificate, ServerLicense), ServerLicenseError> {
    let server_license =
        ServerLicense::from_armored(server_license, vendor).map_err(ServerLicenseError::Invalid)?;
    let server_key = server_license.server_key()?;
    let certificate = Certificate::from_armored(certificate, &server_key)
        .map_err(ServerLicenseError::Certificate)?;
    server_license.admits(certificate.claims())?;
    Ok((certificate, server_license))
}

#[cfg(test)]
mod start_tests {
    #![allow(clippy::unwrap_used)]

    use chrono::TimeZone;

    use super::*;
    use crate::certificate::{policy_hash, Binding, TermKind};

    fn starting_at(not_before: DateTime<Utc>) -> ServerLicense {
        let claims = ServerLicenseClaims {
            serial: "sl-1".to_owned(),
            license_key: "GCAD-NET-0001".to_owned(),
            product: "gstarcad".to_owned(),
            edition: "professional".to_owned(),
            version: "2027".to_owned(),
            license_type: "network".to_owned(),
            term: TermKind::Perpetual,
            seats: 5,
            lease_seconds: 900,
            borrow_max_seconds: None,
            kinds: ServedKinds {
                seat: true,
                borrow: false,
            },
            features: BTreeMap::new(),
            counters: BTreeMap::new(),
            binding: Binding::Dongle("SN-1".to_owned()),
            binding_rule: None,
            server_key: SigningKey::from_bytes(&[0x53; 32])
                .verifying_key()
                .to_bytes(),
            issued_at: not_before,
            not_before,
            expires_at: None,
            offline_until: not_before + Duration::days(30),
            policy_hash: policy_hash(b"policy"),
        };
        issue(claims, &SigningKey::from_bytes(&[0x11; 32]))
    }

    #[test]
    fn a_server_license_is_in_force_a_little_before_its_start_and_not_earlier() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 7, 17, 59).unwrap();
        assert!(starting_at(now).check_in_force(now).is_ok());
        // Issued by a center whose second had already turned.
        assert!(starting_at(now + Duration::seconds(1))
            .check_in_force(now)
            .is_ok());
        let skew = Duration::seconds(START_SKEW_SECONDS);
        assert!(starting_at(now + skew).check_in_force(now).is_ok());
        assert!(matches!(
            starting_at(now + skew + Duration::seconds(1)).check_in_force(now),
            Err(ServerLicenseError::NotInForce(_))
        ));
    }
}
