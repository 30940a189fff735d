//! License information: what `licet license info` shows and the C ABI returns as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use licet_engine::certificate::CertificateKind;
use licet_engine::Code;
use serde::Serialize;

use crate::client::{CheckReport, Trust, RETURN_PENDING_RULE};

/// The license's status as the end user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum Status {
    /// Nothing is installed.
    NotActivated,
    /// An activated license key, valid.
    Enabled,
    /// A running trial.
    Trial,
    /// A network seat borrowed for offline use.
    Borrowed,
    /// A network seat held from the license server.
    CheckedOut,
    /// The license was returned from this machine.
    Returned,
    /// A return request was written; the license is not used until its response is loaded.
    ReturnPending,
    /// The license expired.
    Expired,
    /// The trial ended.
    TrialExpired,
    /// The license was revoked.
    Revoked,
    /// The offline period ended; validate online.
    ValidationRequired,
    /// The clock was moved back.
    ClockRollback,
    /// The license belongs to another machine or dongle.
    OtherMachine,
    /// The local state did not verify.
    Untrusted,
    /// The license cannot be used for another reason; see the code.
    Invalid,
}

impl Status {
    /// The status for a start-up check's report.
    pub fn from_report(report: &CheckReport, returned: bool) -> Status {
        if let Trust::Untrusted(_) = report.trust {
            return Status::Untrusted;
        }
        match report.decision.code {
            Code::Valid => match report.claims.as_ref().map(|claims| claims.kind) {
                Some(CertificateKind::Trial) => Status::Trial,
                Some(CertificateKind::Borrow) => Status::Borrowed,
                Some(CertificateKind::Seat) => Status::CheckedOut,
                _ => Status::Enabled,
            },
            Code::NotActivated if report.decision.rule == RETURN_PENDING_RULE => {
                Status::ReturnPending
            }
            Code::NotActivated if returned => Status::Returned,
            Code::NotActivated | Code::TrialNotStarted | Code::LicenseNotFound => {
                Status::NotActivated
            }
            Code::Expired => Status::Expired,
            Code::TrialExpired => Status::TrialExpired,
            Code::Revoked | Code::RevocationApplied => Status::Revoked,
            Code::ValidationRequired => Status::ValidationRequired,
            Code::ClockRollback => Status::ClockRollback,
            Code::FingerprintMismatch | Code::DongleAbsent | Code::DongleMismatch => {
                Status::OtherMachine
            }
            _ => Status::Invalid,
        }
    }

    /// The name shown to people and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::NotActivated => "not-activated",
            Status::Enabled => "enabled",
            Status::Trial => "trial",
            Status::Borrowed => "borrowed",
            Status::CheckedOut => "checked-out",
            Status::Returned => "returned",
            Status::ReturnPending => "return-pending",
            Status::Expired => "expired",
            Status::TrialExpired => "trial-expired",
            Status::Revoked => "revoked",
            Status::ValidationRequired => "validation-required",
            Status::ClockRollback => "clock-rollback",
            Status::OtherMachine => "other-machine",
            Status::Untrusted => "untrusted",
            Status::Invalid => "invalid",
        }
    }
}

/// Everything the end user may want to know about the license on this machine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LicenseInfo {
    /// Product identifier.
    pub product: String,
    /// Product display name.
    pub product_name: String,
    /// Edition of the installed (or returned) license.
    pub edition: Option<String>,
    /// Product version.
    pub version: String,
    /// The language chosen, else the product's first.
    pub language: Option<String>,
    /// The license key; none for a trial.
    pub license_key: Option<String>,
    /// The license type.
    pub license_type: Option<String>,
    /// The status.
    pub status: Status,
    /// The start-up check's code.
    pub code: Code,
    /// The start-up check's sentence.
    pub message: String,
    /// When the license or trial ends; none for perpetual.
    pub expires_at: Option<DateTime<Utc>>,
    /// When an online validation becomes mandatory.
    pub offline_until: Option<DateTime<Utc>>,
    /// The last successful online validation (or the certificate's issue time).
    pub last_validated: Option<DateTime<Utc>>,
    /// Whether a periodic validation is due.
    pub validation_due: bool,
    /// Whether the local state verified.
    pub trusted: bool,
    /// `verified`, `absent` or `untrusted`.
    pub trust: String,
    /// Effective custom features.
    pub features: BTreeMap<String, bool>,
    /// Effective custom counters.
    pub counters: BTreeMap<String, i64>,
}

impl LicenseInfo {
    /// A two-column table for people.
    pub fn to_table(&self) -> String {
        let none = || "-".to_owned();
        let time = |time: Option<DateTime<Utc>>| {
            time.map_or_else(none, |t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        };
        let mut rows: Vec<(&str, String)> = vec![
            (
                "product",
                format!("{} ({})", self.product_name, self.product),
            ),
            ("edition", self.edition.clone().unwrap_or_else(none)),
            ("version", self.version.clone()),
            ("language", self.language.clone().unwrap_or_else(none)),
            ("license key", self.license_key.clone().unwrap_or_else(none)),
            (
                "license type",
                self.license_type.clone().unwrap_or_else(none),
            ),
            ("status", self.status.as_str().to_owned()),
            ("check", format!("{}: {}", self.code, self.message)),
            (
                "expires",
                match (
                    self.expires_at,
                    self.license_key.is_some() || self.edition.is_some(),
                ) {
                    (None, true) => "never".to_owned(),
                    (other, _) => time(other),
                },
            ),
            ("validate before", time(self.offline_until)),
            ("last validated", time(self.last_validated)),
            (
                "validation due",
                if self.validation_due { "yes" } else { "no" }.to_owned(),
            ),
            (
                "trusted",
                format!(
                    "{} ({})",
                    if self.trusted { "yes" } else { "no" },
                    self.trust
                ),
            ),
        ];
        if !self.features.is_empty() {
            let features: Vec<String> = self
                .features
                .iter()
                .map(|(name, on)| format!("{name}={}", if *on { "on" } else { "off" }))
                .collect();
            rows.push(("features", features.join(", ")));
        }
        if !self.counters.is_empty() {
            let counters: Vec<String> = self
                .counters
                .iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect();
            rows.push(("counters", counters.join(", ")));
        }
        let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
        let mut out = String::new();
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<width$}  {value}");
        }
        out
    }
}
