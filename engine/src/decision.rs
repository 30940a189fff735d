//! Decisions: the verdict, a stable code, the deciding rule, a sentence and the effects to apply.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::certificate::{Binding, CertificateClaims, CertificateKind};

/// Allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The request is granted; apply the effects.
    Allow,
    /// The request is refused; nothing changes.
    Deny,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, $allowed:literal; )*) => {
        /// A stable, machine-readable outcome code. Never renamed once released.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[non_exhaustive]
        pub enum Code {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant),*];

            /// The code as written in APIs, logs and scenario files.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $name, )* }
            }

            /// Whether the code accompanies an allowed request.
            pub fn is_allowed(self) -> bool {
                match self { $( Code::$variant => $allowed, )* }
            }

            /// The code called `name`.
            pub fn from_name(name: &str) -> Option<Code> {
                match name { $( $name => Some(Code::$variant), )* _ => None }
            }
        }
    };
}

codes! {
    /// The license (or trial) is valid; a fresh certificate is issued.
    Valid = "VALID", true;
    /// The license key is now bound to the machine, dongle or server.
    Activated = "ACTIVATED", true;
    /// The trial started, or a running trial resumed with its original end.
    TrialStarted = "TRIAL_STARTED", true;
    /// A seat was granted (or the session's own seat given back after a reconnect).
    SeatGranted = "SEAT_GRANTED", true;
    /// The seat lease was renewed.
    LeaseRenewed = "LEASE_RENEWED", true;
    /// The seat went back to the pool.
    SeatReleased = "SEAT_RELEASED", true;
    /// A seat was borrowed until the requested date.
    Borrowed = "BORROWED", true;
    /// A borrowed seat went back to the pool early.
    BorrowReturned = "BORROW_RETURNED", true;
    /// The activation was removed; the key can be activated elsewhere.
    Returned = "RETURNED", true;
    /// The activation moved to another machine.
    Transferred = "TRANSFERRED", true;
    /// An administrator changed expiry, features or counters.
    Extended = "EXTENDED", true;
    /// An administrator revoked the license.
    RevocationApplied = "REVOCATION_APPLIED", true;

    /// The system clock is behind the latest time already seen.
    ClockRollback = "CLOCK_ROLLBACK", false;
    /// The request names another product than the policy's.
    ProductMismatch = "PRODUCT_MISMATCH", false;
    /// The request or key is for another version.
    VersionMismatch = "VERSION_MISMATCH", false;
    /// The key is for another edition, or the edition does not exist.
    EditionMismatch = "EDITION_MISMATCH", false;
    /// No license has this key.
    LicenseNotFound = "LICENSE_NOT_FOUND", false;
    /// The license names a type the policy does not declare.
    UnknownLicenseType = "UNKNOWN_LICENSE_TYPE", false;
    /// The actor may not act on this license.
    AccessDenied = "ACCESS_DENIED", false;
    /// Only administrators may do this.
    AdminRequired = "ADMIN_REQUIRED", false;
    /// The license was revoked.
    Revoked = "REVOKED", false;
    /// The license type does not support this request.
    WrongLicenseType = "WRONG_LICENSE_TYPE", false;
    /// Online or manual is not allowed for this request by the license type.
    MethodNotAllowed = "METHOD_NOT_ALLOWED", false;
    /// The license's term (perpetual/rental) is not allowed for its type.
    TermNotAllowed = "TERM_NOT_ALLOWED", false;
    /// The dongle is not present.
    DongleAbsent = "DONGLE_ABSENT", false;
    /// A dongle is present but it is not the license's dongle.
    DongleMismatch = "DONGLE_MISMATCH", false;
    /// The fixed date window has not started yet.
    NotYetValid = "NOT_YET_VALID", false;
    /// The license expired.
    Expired = "EXPIRED", false;
    /// A custom rule of the policy denied the request.
    RuleDenied = "RULE_DENIED", false;
    /// A custom rule failed to evaluate; failing closed.
    RuleError = "RULE_ERROR", false;
    /// The license has no activation on this machine.
    NotActivated = "NOT_ACTIVATED", false;
    /// The license is activated on another machine.
    FingerprintMismatch = "FINGERPRINT_MISMATCH", false;
    /// Every activation the license grants is in use.
    ActivationLimitReached = "ACTIVATION_LIMIT_REACHED", false;
    /// Every seat of the pool is taken.
    SeatsExhausted = "SEATS_EXHAUSTED", false;
    /// The license has no seats.
    NoSeats = "NO_SEATS", false;
    /// No seat lease for this session.
    LeaseNotFound = "LEASE_NOT_FOUND", false;
    /// The seat lease lapsed; check out again.
    LeaseExpired = "LEASE_EXPIRED", false;
    /// The license type cannot be borrowed.
    NotBorrowable = "NOT_BORROWABLE", false;
    /// The borrow would last longer than the policy allows.
    BorrowTooLong = "BORROW_TOO_LONG", false;
    /// No borrowed seat for this session.
    BorrowNotFound = "BORROW_NOT_FOUND", false;
    /// The policy (or a limited license) does not let this actor remove the license.
    RemovalForbidden = "REMOVAL_FORBIDDEN", false;
    /// The license was transferred as often as the policy allows in this period.
    TransferLimitReached = "TRANSFER_LIMIT_REACHED", false;
    /// The policy does not allow extensions.
    ExtensionDisabled = "EXTENSION_DISABLED", false;
    /// The product offers no trial (or not for this edition).
    TrialNotOffered = "TRIAL_NOT_OFFERED", false;
    /// This machine already had its trial.
    TrialAlreadyUsed = "TRIAL_ALREADY_USED", false;
    /// The trial ended.
    TrialExpired = "TRIAL_EXPIRED", false;
    /// No trial was started on this machine.
    TrialNotStarted = "TRIAL_NOT_STARTED", false;
    /// The machine's identity cannot be trusted (identity files that are bind mounts, a mount,
    /// network or user namespace that is not the machine's) and the policy's
    /// `fingerprint.untrusted_environment` refuses what was asked.
    UntrustedEnvironment = "UNTRUSTED_ENVIRONMENT", false;
    /// The certificate's offline period ended; validate online.
    ValidationRequired = "VALIDATION_REQUIRED", false;
    /// The request itself is malformed (a date in the past, an unknown feature, ...).
    InvalidRequest = "INVALID_REQUEST", false;
    /// A request or response file is not a well-formed exchange file of the expected kind.
    ExchangeMalformed = "EXCHANGE_MALFORMED", false;
    /// A response file's signature fails, or its readable fields or layout were changed.
    ExchangeTampered = "EXCHANGE_TAMPERED", false;
    /// A response file was issued for another machine.
    ExchangeWrongMachine = "EXCHANGE_WRONG_MACHINE", false;
    /// A response file answers no pending request of this machine (unknown or already used).
    ExchangeUnknownRequest = "EXCHANGE_UNKNOWN_REQUEST", false;
    /// A response file is older than the last one accepted for the license.
    ExchangeStale = "EXCHANGE_STALE", false;
    /// A return response arrived for a license that has no pending return.
    ExchangeReturnNotPending = "EXCHANGE_RETURN_NOT_PENDING", false;
    /// A certificate serial presented to the server belongs to a returned activation.
    ExchangeSerialReturned = "EXCHANGE_SERIAL_RETURNED", false;
    /// A certificate serial presented to the server belongs to a borrow that was returned early
    /// (a borrowed state kept or restored after its return); flagged for administrators.
    BorrowSerialReturned = "BORROW_SERIAL_RETURNED", false;
    /// A return presents no certificate serial, or not the serial of the current certificate of
    /// the activation (or borrow) it would end.
    CertificateNotCurrent = "CERTIFICATE_NOT_CURRENT", false;
    /// A server license is missing, of another vendor, tampered, or bound to another license server.
    ServerLicenseInvalid = "SERVER_LICENSE_INVALID", false;
    /// A server license expired, has not started, or was not revalidated within its offline period.
    ServerLicenseExpired = "SERVER_LICENSE_EXPIRED", false;
    /// A network license's seats are served by someone else: the license server it is activated on,
    /// or the activation center while it leases seats of it.
    ServedElsewhere = "SERVED_ELSEWHERE", false;
    /// A certificate from a license server is not signed by it or grants more than its server license.
    CertificateOutsideServerLicense = "CERTIFICATE_OUTSIDE_SERVER_LICENSE", false;
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change the host applies, in order, in one transaction, when the request is allowed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Effect {
    /// Record a new activation of the license.
    CreateActivation {
        /// What it is bound to.
        binding: Binding,
        /// When.
        activated_at: DateTime<Utc>,
    },
    /// Replace the current binding of an activation whose machine drifted within tolerance of
    /// its anchor; the anchor (the binding recorded at activation) is kept.
    RebindActivation {
        /// The stored current binding.
        from: Binding,
        /// The machine's current binding.
        to: Binding,
    },
    /// Record `serial` as the current certificate of the activation whose current binding is
    /// `binding` (a later return must present it).
    SetCurrentCertificate {
        /// The activation's current binding.
        binding: Binding,
        /// The serial of the certificate issued with this decision.
        serial: String,
    },
    /// Remove the activation bound to `binding`.
    RemoveActivation {
        /// The stored binding of the activation.
        binding: Binding,
    },
    /// Record the terms of a limited license at its first activation.
    FixLimitedTerms {
        /// Start of the fixed date window.
        not_before: DateTime<Utc>,
        /// Expiry.
        expires_at: DateTime<Utc>,
        /// Features.
        features: BTreeMap<String, bool>,
        /// Counters.
        counters: BTreeMap<String, i64>,
    },
    /// Lease a seat to a session.
    LeaseSeat {
        /// The session.
        session: String,
        /// The client machine.
        binding: Binding,
        /// When the lease lapses without a heartbeat.
        expires_at: DateTime<Utc>,
    },
    /// Extend a session's seat lease.
    RenewLease {
        /// The session.
        session: String,
        /// The new lapse time.
        expires_at: DateTime<Utc>,
    },
    /// Free a session's seat.
    ReleaseSeat {
        /// The session.
        session: String,
    },
    /// Mark a session's seat borrowed until a date (leasing it first if needed).
    BorrowSeat {
        /// The session.
        session: String,
        /// The client machine.
        binding: Binding,
        /// When the seat comes back by itself.
        until: DateTime<Utc>,
        /// The serial of the borrow certificate issued with this decision.
        serial: String,
    },
    /// End a session's borrow early under `holds-seat`: the seat stays counted until the
    /// borrow's end date.
    EndBorrow {
        /// The session.
        session: String,
        /// When it was returned.
        at: DateTime<Utc>,
    },
    /// Record the serial of a certificate that was given back; a later request presenting it is
    /// refused.
    RecordReturnedCertificate {
        /// The certificate's serial.
        serial: String,
        /// An activation or a borrow.
        kind: CertificateKind,
        /// When.
        at: DateTime<Utc>,
    },
    /// Record a trial on a machine.
    RecordTrial {
        /// The machine.
        binding: Binding,
        /// The edition tried.
        edition: String,
        /// Start.
        started_at: DateTime<Utc>,
        /// End.
        ends_at: DateTime<Utc>,
    },
    /// Record an end-user removal or transfer, counted against the transfer limit.
    RecordTransfer {
        /// When.
        at: DateTime<Utc>,
    },
    /// Change the license's expiry, features or counters.
    UpdateLicense {
        /// New rental end or limited expiry, when it changes.
        expires_at: Option<DateTime<Utc>>,
        /// Features to set on the license.
        features: BTreeMap<String, bool>,
        /// Counters to set on the license.
        counters: BTreeMap<String, i64>,
        /// The new seat count of a network license, when it changes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seats: Option<u32>,
    },
    /// Mark the license revoked.
    RevokeLicense,
    /// Sign and hand out this certificate.
    IssueCertificate(Box<CertificateClaims>),
}

/// The outcome of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Allowed or denied.
    pub verdict: Verdict,
    /// The stable outcome code.
    pub code: Code,
    /// The rule that decided, e.g. `license.expiry` or `rules.education-no-borrow`.
    pub rule: String,
    /// A plain sentence for people.
    pub message: String,
    /// What the host applies when allowed; empty when denied.
    pub effects: Vec<Effect>,
}

impl Decision {
    /// An allowed decision.
    pub fn allow(
        code: Code,
        rule: impl Into<String>,
        message: impl Into<String>,
        effects: Vec<Effect>,
    ) -> Self {
        Decision {
            verdict: Verdict::Allow,
            code,
            rule: rule.into(),
            message: message.into(),
            effects,
        }
    }

    /// A denied decision; denials carry no effects.
    pub fn deny(code: Code, rule: impl Into<String>, message: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Deny,
            code,
            rule: rule.into(),
            message: message.into(),
            effects: Vec::new(),
        }
    }

    /// Whether the request is allowed.
    pub fn is_allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }

    /// The certificate to issue, if any.
    pub fn certificate(&self) -> Option<&CertificateClaims> {
        self.effects.iter().find_map(|effect| match effect {
            Effect::IssueCertificate(claims) => Some(claims.as_ref()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_by_name_and_are_unique() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            assert_eq!(Code::from_name(code.as_str()), Some(*code));
            assert!(seen.insert(code.as_str()), "duplicate code {code}");
        }
        assert_eq!(Code::from_name("NOPE"), None);
    }
}
