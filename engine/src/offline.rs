//! The offline check of a certificate: what a client does at start-up without a server.
//!
//! Everything that decides what the certificate grants comes from its signed claims: the machine
//! is matched with the claims' binding rule, the clock with the claims' rollback tolerance, and a
//! certificate decided under another policy than the loaded one is sent back to the server for a
//! fresh one (`VALIDATION_REQUIRED`, rule `certificate.policy`). The local policy file only says
//! which product this is; editing it widens nothing.

use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::certificate::{Binding, CertificateClaims, CertificateKind};
use crate::decision::{Code, Decision};
use crate::fingerprint::Fingerprint;
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
    /// The id of the salt the machine probe hashed `machine` with
    /// ([`crate::fingerprint::salt_id`]), when it knows it; a certificate whose binding rule names
    /// another salt does not match.
    pub salt_id: Option<String>,
}

/// Decides whether a verified certificate lets the product run now, without a server.
///
/// Checks, in order: clock rollback (with the claims' tolerance), product and version, binding
/// (fingerprint k of n under the claims' binding rule, or dongle), the validity window, expiry,
/// the policy it was decided under (the loaded one, else an online validation is due), and the
/// offline period after which an online validation is due. The certificate's signature must
/// already have been verified.
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
    let tolerance = Duration::try_seconds(claims.rollback_tolerance_seconds).unwrap_or_default();
    if let Some(last_seen) = facts.last_seen {
        if now + tolerance < last_seen {
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
            let matches = claims.binding_rule.as_ref().is_some_and(|rule| {
                facts
                    .salt_id
                    .as_ref()
                    .is_none_or(|salt| *salt == rule.salt_id)
                    && rule.matches(components, &facts.machine.components)
            });
            if !matches {
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
    if claims.policy_hash != policy.hash {
        return Err(Decision::deny(
            Code::ValidationRequired,
            "certificate.policy",
            "the certificate was decided under another policy than this product's; validate online to get one under the current policy",
        ));
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
