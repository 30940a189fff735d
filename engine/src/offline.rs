//! The offline check of a certificate: what a client does at start-up without a server.

use chrono::{DateTime, SubsecRound, Utc};

use crate::certificate::{Binding, CertificateClaims, CertificateKind};
use crate::decision::{Code, Decision};
use crate::fingerprint::{components_match, Fingerprint};
use crate::policy::Policy;

/// What the client knows about its machine and clock when it checks a certificate offline.
#[derive(Debug, Clone, Default)]
pub struct LocalFacts {
    /// The machine's current fingerprint.
    pub machine: Fingerprint,
    /// The serial of the dongle present, if any.
    pub dongle: Option<String>,
    /// The latest time the client has seen (from its signed local state).
    pub last_seen: Option<DateTime<Utc>>,
}

/// Decides whether a verified certificate lets the product run now, without a server.
///
/// Checks, in order: clock rollback, product and version, binding (fingerprint k of n, or dongle),
/// the validity window, expiry, and the offline period after which an online validation is due.
/// The certificate's signature must already have been verified.
pub fn check_certificate(
    policy: &Policy,
    claims: &CertificateClaims,
    facts: &LocalFacts,
    now: DateTime<Utc>,
) -> Decision {
    let now = now.trunc_subsecs(0);
    match run(policy, claims, facts, now) {
        Ok(decision) | Err(decision) => decision,
    }
}

fn run(
    policy: &Policy,
    claims: &CertificateClaims,
    facts: &LocalFacts,
    now: DateTime<Utc>,
) -> Result<Decision, Decision> {
    if let Some(last_seen) = facts.last_seen {
        if now + policy.clock.rollback_tolerance < last_seen {
            return Err(Decision::deny(
                Code::ClockRollback,
                "clock.rollback",
                format!("the clock reads {now} but {last_seen} was already seen"),
            ));
        }
    }
    if claims.product != policy.product.id || claims.version != policy.product.version {
        return Err(Decision::deny(
            Code::ProductMismatch,
            "certificate.product",
            format!(
                "the certificate is for {} {}, not this product",
                claims.product, claims.version
            ),
        ));
    }
    match &claims.binding {
        Binding::Fingerprint(components) => {
            if !components_match(components, &facts.machine.components, &policy.fingerprint) {
                return Err(Decision::deny(
                    Code::FingerprintMismatch,
                    "certificate.binding",
                    "the certificate belongs to another machine",
                ));
            }
        }
        Binding::Dongle(serial) => match &facts.dongle {
            None => {
                return Err(Decision::deny(
                    Code::DongleAbsent,
                    "dongle.present",
                    "the USB dongle is not present",
                ))
            }
            Some(present) if present != serial => {
                return Err(Decision::deny(
                    Code::DongleMismatch,
                    "dongle.serial",
                    format!("dongle `{present}` is not the certificate's dongle"),
                ))
            }
            Some(_) => {}
        },
    }
    if now < claims.not_before {
        return Err(Decision::deny(
            Code::NotYetValid,
            "license.window",
            format!("the certificate is valid from {}", claims.not_before),
        ));
    }
    if let Some(expires_at) = claims.expires_at {
        if now >= expires_at {
            let code = if claims.kind == CertificateKind::Trial {
                Code::TrialExpired
            } else {
                Code::Expired
            };
            return Err(Decision::deny(
                code,
                "license.expiry",
                format!("the certificate expired at {expires_at}"),
            ));
        }
    }
    if let Some(offline_until) = claims.offline_until {
        if now >= offline_until {
            return Err(Decision::deny(
                Code::ValidationRequired,
                "validation.offline_grace",
                format!("the license must be validated online; the offline period ended at {offline_until}"),
            ));
        }
    }
    Ok(Decision::allow(
        Code::Valid,
        "certificate.valid",
        "the certificate is valid",
        Vec::new(),
    ))
}
