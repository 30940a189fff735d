//! License information: what `licet license info` shows and the C ABI returns as JSON, and what
//! `licet seat query` shows of a license server.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use licet_engine::certificate::CertificateKind;
use licet_engine::Code;
use serde::Serialize;

use crate::client::{CheckReport, Trust, RETURN_PENDING_RULE};
use crate::transport::SeatQuery;

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
            // The server refused a certificate that was given back (a copy kept after a return).
            Code::ExchangeSerialReturned | Code::BorrowSerialReturned => Status::Returned,
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
    /// The serial of the vendor-signed server license the certificate was served under, when a
    /// customer's license server signed it; none for the activation center's certificates.
    pub server_license: Option<String>,
    /// Whether the machine's identity can be trusted here: `trusted`, or `untrusted: ` and what
    /// was found (identity files that are bind mounts, a namespace that is not the machine's).
    pub environment: String,
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
        rows.push(("environment", self.environment.clone()));
        if let Some(serial) = &self.server_license {
            rows.push(("served under", format!("server license {serial}")));
        }
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

impl SeatQuery {
    /// A table for people: one line per license the server serves, under a header, in the
    /// columns product, edition, version, key, seats, free, borrowed, borrowing maximum, expiry
    /// and status. A server that serves nothing says so in a sentence.
    pub fn to_table(&self) -> String {
        if self.licenses.is_empty() {
            return "the license server serves no licenses\n".to_owned();
        }
        let header = [
            "PRODUCT",
            "EDITION",
            "VERSION",
            "KEY",
            "SEATS",
            "FREE",
            "BORROWED",
            "BORROW MAX",
            "EXPIRES",
            "STATUS",
        ]
        .map(str::to_owned);
        let mut rows = vec![header];
        for license in &self.licenses {
            rows.push([
                license.product.clone(),
                license.edition.clone(),
                license.version.clone(),
                license.key.clone(),
                license.seats.to_string(),
                license.free.to_string(),
                license.borrowed.to_string(),
                match license.borrow_max_days {
                    None => "-".to_owned(),
                    Some(1) => "1 day".to_owned(),
                    Some(days) => format!("{days} days"),
                },
                license.expires_at.map_or_else(
                    || "never".to_owned(),
                    |time| time.format("%Y-%m-%d %H:%M UTC").to_string(),
                ),
                license.status.clone(),
            ]);
        }
        let mut widths = [0usize; 10];
        for row in &rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &rows {
            let mut line = String::new();
            for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
                if index + 1 == row.len() {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::transport::ServedLicense;

    #[test]
    fn a_seat_query_reads_as_a_table() {
        let query = SeatQuery {
            licenses: vec![
                ServedLicense {
                    key: "GSTAR-NET-1".into(),
                    product: "gstarcad".into(),
                    edition: "professional".into(),
                    version: "2027".into(),
                    seats: 5,
                    free: 3,
                    borrowed: 1,
                    borrow_max_days: Some(30),
                    expires_at: Some("2027-07-01T00:00:00Z".parse().unwrap()),
                    status: "serving".into(),
                },
                ServedLicense {
                    key: "GSTAR-NET-2".into(),
                    product: "gstarcad".into(),
                    edition: "standard".into(),
                    version: "2027".into(),
                    seats: 10,
                    free: 0,
                    borrowed: 0,
                    borrow_max_days: None,
                    expires_at: None,
                    status: "SERVER_LICENSE_EXPIRED: revalidate with the activation center".into(),
                },
            ],
        };
        assert_eq!(
            query.to_table(),
            "\
PRODUCT   EDITION       VERSION  KEY          SEATS  FREE  BORROWED  BORROW MAX  EXPIRES               STATUS
gstarcad  professional  2027     GSTAR-NET-1  5      3     1         30 days     2027-07-01 00:00 UTC  serving
gstarcad  standard      2027     GSTAR-NET-2  10     0     0         -           never                 SERVER_LICENSE_EXPIRED: revalidate with the activation center
"
        );
        assert_eq!(
            SeatQuery { licenses: vec![] }.to_table(),
            "the license server serves no licenses\n"
        );
    }
}
