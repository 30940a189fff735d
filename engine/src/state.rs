//! The state a decision is made on: what the host has stored about a license and a machine.
//!
//! Hosts load the records relevant to one request into a [`State`], call
//! [`decide`](crate::decide), and apply the returned effects in one transaction.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::certificate::{Binding, CertificateKind};

/// Everything the engine may look at for one request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    /// The license named by the request's key, when it exists.
    #[serde(default)]
    pub license: Option<License>,
    /// The order the license belongs to (standard model).
    #[serde(default)]
    pub order: Option<Order>,
    /// The license's current activations: all of them, or, when `activation_count` is given,
    /// those that may belong to the request's machine (sharing at least one fingerprint
    /// component with it, or its dongle).
    #[serde(default)]
    pub activations: Vec<Activation>,
    /// How many activations the license has, when the host counted them instead of loading
    /// every one; `None`: the engine counts `activations`.
    #[serde(default)]
    pub activation_count: Option<u64>,
    /// Seat leases and borrows of the license: all of them, or, when `held_seats` is given, the
    /// ones the request needs (the caller's own session, and for a borrow the seats borrowed
    /// out).
    #[serde(default)]
    pub leases: Vec<SeatLease>,
    /// How many seats of the license are held now (leases and borrows not ended), when the host
    /// counted them instead of loading every lease; `None`: the engine counts `leases`. The
    /// caller's own lease, when it has one, must be in `leases` as well.
    #[serde(default)]
    pub held_seats: Option<u64>,
    /// Trial records that may belong to the requesting machine.
    #[serde(default)]
    pub trials: Vec<TrialRecord>,
    /// When the license's past end-user removals and transfers happened.
    #[serde(default)]
    pub transfers: Vec<DateTime<Utc>>,
    /// The serial of the dongle the host's hardware check found, if any.
    #[serde(default)]
    pub dongle: Option<String>,
    /// The latest time this party has seen; a request before it (beyond tolerance) is refused.
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
    /// Returned certificates of the license (activations returned or transferred away, borrows
    /// returned early under `frees-seat`). A host may load only those whose serial the request
    /// presents.
    #[serde(default)]
    pub returned: Vec<ReturnedCertificate>,
}

impl State {
    /// How many activations the license has: the host's count when it gave one, else the
    /// activations counted.
    pub fn activations_total(&self) -> u64 {
        self.activation_count
            .unwrap_or_else(|| u64::try_from(self.activations.len()).unwrap_or(u64::MAX))
    }

    /// The seats of the license held at `now`: the host's count when it gave one, else the
    /// leases counted.
    pub fn seats_held(&self, now: DateTime<Utc>) -> u64 {
        self.held_seats.unwrap_or_else(|| {
            let held = self
                .leases
                .iter()
                .filter(|lease| lease.is_held(now))
                .count();
            u64::try_from(held).unwrap_or(u64::MAX)
        })
    }
}

/// An issued license (a license key or serial number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct License {
    /// The license key (serial number).
    pub key: String,
    /// Product identifier.
    pub product: String,
    /// License type name, a key of the policy's `license_types`.
    pub license_type: String,
    /// Edition the key is valid for.
    pub edition: String,
    /// Version the key is valid for.
    pub version: String,
    /// Perpetual or rental.
    #[serde(default)]
    pub term: Term,
    /// Seats of a network license (the type's default seats when absent).
    #[serde(default)]
    pub seats: Option<u32>,
    /// License-level custom features, the last level of the cascade.
    #[serde(default)]
    pub features: BTreeMap<String, bool>,
    /// License-level custom counters, the last level of the cascade.
    #[serde(default)]
    pub counters: BTreeMap<String, i64>,
    /// Enabled or revoked.
    #[serde(default)]
    pub status: LicenseStatus,
    /// For dongle licenses, the serial of the dongle the license lives on.
    #[serde(default)]
    pub dongle: Option<String>,
    /// The client that owns the license (standard model).
    #[serde(default)]
    pub client: Option<String>,
    /// Terms fixed at the first activation of a limited license.
    #[serde(default)]
    pub limited: Option<LimitedTerms>,
}

/// Perpetual or rental.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Term {
    /// Never expires.
    #[default]
    Perpetual,
    /// A service period ending at `ends_at`.
    Rental {
        /// End of the service period.
        ends_at: DateTime<Utc>,
    },
}

/// Whether a license may be used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LicenseStatus {
    /// In use.
    #[default]
    Enabled,
    /// Revoked by an administrator.
    Revoked,
}

/// The terms of a limited license, fixed when it is first activated and kept on reactivation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitedTerms {
    /// Start of the fixed date window.
    pub not_before: DateTime<Utc>,
    /// Expiry.
    pub expires_at: DateTime<Utc>,
    /// Features at first activation (or as an administrator set them later).
    pub features: BTreeMap<String, bool>,
    /// Counters at first activation (or as an administrator set them later).
    pub counters: BTreeMap<String, i64>,
}

/// An order of the standard model: one client, one product, several licenses.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Order {
    /// Order identifier.
    pub id: String,
    /// Owning client.
    pub client: String,
    /// Order-level custom features, the middle level of the cascade.
    #[serde(default)]
    pub features: BTreeMap<String, bool>,
    /// Order-level custom counters, the middle level of the cascade.
    #[serde(default)]
    pub counters: BTreeMap<String, i64>,
}

/// A license bound to a machine, a dongle or a network license server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Activation {
    /// What the activation is bound to now (the machine's components after accepted drift).
    pub binding: Binding,
    /// When it was made.
    pub activated_at: DateTime<Utc>,
    /// The binding recorded at activation, which drift is measured against; the same as
    /// `binding` when absent (records made before anchors were kept).
    #[serde(default)]
    pub anchor: Option<Binding>,
    /// The serial of the latest certificate (or server license) issued for it: a return must
    /// present it.
    #[serde(default)]
    pub certificate_serial: Option<String>,
}

impl Activation {
    /// A new activation bound (and anchored) to `binding`, with no certificate yet.
    pub fn new(binding: Binding, activated_at: DateTime<Utc>) -> Activation {
        Activation {
            anchor: Some(binding.clone()),
            binding,
            activated_at,
            certificate_serial: None,
        }
    }

    /// The binding drift is measured against.
    pub fn anchor(&self) -> &Binding {
        self.anchor.as_ref().unwrap_or(&self.binding)
    }
}

/// A certificate of the license that was given back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReturnedCertificate {
    /// Its serial.
    pub serial: String,
    /// An activation (or a license server's server license) or a borrow.
    pub kind: CertificateKind,
    /// When it was returned.
    pub returned_at: DateTime<Utc>,
}

/// A seat held by a client session, leased by heartbeats or borrowed until a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeatLease {
    /// The session holding the seat.
    pub session: String,
    /// The client machine.
    pub binding: Binding,
    /// When the seat was taken.
    pub leased_at: DateTime<Utc>,
    /// When the lease lapses without a heartbeat.
    pub expires_at: DateTime<Utc>,
    /// When a borrowed seat comes back by itself.
    #[serde(default)]
    pub borrowed_until: Option<DateTime<Utc>>,
    /// The serial of the borrow certificate, which an early return must present.
    #[serde(default)]
    pub certificate_serial: Option<String>,
    /// When a borrow was returned early under `holds-seat`: ended on the client, its seat still
    /// counted until `borrowed_until`.
    #[serde(default)]
    pub returned_at: Option<DateTime<Utc>>,
}

impl SeatLease {
    /// Whether the seat is taken at `now`.
    pub fn is_held(&self, now: DateTime<Utc>) -> bool {
        match self.borrowed_until {
            Some(until) => until > now,
            None => self.expires_at > now,
        }
    }

    /// Whether the seat is borrowed (and the borrow has not ended) at `now`.
    pub fn is_borrowed(&self, now: DateTime<Utc>) -> bool {
        self.borrowed_until.is_some_and(|until| until > now)
    }

    /// Whether the seat is borrowed at `now` and was not returned early: the borrower still has it.
    pub fn is_borrowed_out(&self, now: DateTime<Utc>) -> bool {
        self.is_borrowed(now) && self.returned_at.is_none()
    }
}

/// A trial started on a machine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrialRecord {
    /// The machine.
    pub binding: Binding,
    /// The edition tried.
    pub edition: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ends.
    pub ends_at: DateTime<Utc>,
}
