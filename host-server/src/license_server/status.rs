//! What a license server holds and serves: `licet-server status` (every server license with its
//! seats, holders and borrowed seats, or why it is refused) and the public `GET /v1/seats/query`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use licet_engine::certificate::Binding;
use serde::{Deserialize, Serialize};

use super::{Entry, LicenseServer};
use crate::admin::SeatView;
use crate::service::{Licensing, ServiceError};

/// `licet-server status`: the license server and its server licenses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// The server's own public key (`licet-ed25519-public:...`), which its server licenses name.
    pub server_key: String,
    /// The activation center, when configured.
    pub center: Option<String>,
    /// One entry per key the server holds a server license of (or refused one of).
    pub licenses: Vec<LicenseReport>,
}

/// One server license on `licet-server status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LicenseReport {
    /// The network license key.
    pub key: String,
    /// The server license's serial, when its signature verified.
    pub serial: Option<String>,
    /// Product identifier.
    pub product: Option<String>,
    /// Edition served.
    pub edition: Option<String>,
    /// Version served.
    pub version: Option<String>,
    /// Seats of the pool.
    pub seats: Option<u32>,
    /// Seats taken now (held and borrowed).
    pub used: u32,
    /// Seats borrowed now.
    pub borrowed: u32,
    /// Length of a seat lease, in seconds.
    pub lease_seconds: Option<i64>,
    /// The longest borrow, in days; `None` when seats cannot be borrowed.
    pub borrow_max_days: Option<u32>,
    /// End of the license's term; `None` for perpetual.
    pub expires_at: Option<DateTime<Utc>>,
    /// When the server license must have been revalidated with the center.
    pub offline_until: Option<DateTime<Utc>>,
    /// Whether seats are served now.
    pub serving: bool,
    /// `serving`, or `CODE: why`.
    pub status: String,
    /// The code seats are refused with, when not serving.
    pub code: Option<String>,
    /// Who holds its seats, borrowed ones included.
    pub holders: Vec<Holder>,
}

/// A seat taken now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The client session.
    pub session: String,
    /// The client machine, shortened: a fingerprint component's first digits or the dongle.
    pub machine: String,
    /// When the seat was taken.
    pub since: DateTime<Utc>,
    /// When the lease lapses without a heartbeat (the borrow's end for a borrowed seat).
    pub expires_at: DateTime<Utc>,
    /// When a borrowed seat comes back.
    pub borrowed_until: Option<DateTime<Utc>>,
}

/// `GET /v1/seats/query`: what the license server serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeatQueryBody {
    /// One entry per network license.
    pub licenses: Vec<QueriedLicense>,
}

/// One network license on `GET /v1/seats/query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueriedLicense {
    /// The network license key.
    pub key: String,
    /// Product identifier (empty when the server license cannot be read).
    pub product: String,
    /// Edition.
    pub edition: String,
    /// Version.
    pub version: String,
    /// Seats of the pool.
    pub seats: u32,
    /// Seats free now (none while not serving).
    pub free: u32,
    /// Seats borrowed now.
    pub borrowed: u32,
    /// The longest borrow, in days; `null` when seats cannot be borrowed.
    pub borrow_max_days: Option<u32>,
    /// End of the license's term; `null` for perpetual.
    pub expires_at: Option<DateTime<Utc>>,
    /// `serving`, or `CODE: why`.
    pub status: String,
}

fn short_machine(binding: &Binding) -> String {
    match binding {
        Binding::Fingerprint(components) => components
            .get("machine-id")
            .or_else(|| components.values().next())
            .map(|value| value.chars().take(8).collect())
            .unwrap_or_else(|| "-".to_owned()),
        Binding::Dongle(serial) => format!("dongle {serial}"),
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The report of `server` at `now`, with the seats taken now.
pub fn report(server: &LicenseServer, seats: Vec<SeatView>, now: DateTime<Utc>) -> StatusReport {
    let mut by_key: BTreeMap<String, Vec<SeatView>> = BTreeMap::new();
    for seat in seats {
        if seat.state != "lapsed" {
            by_key
                .entry(seat.license_key.clone())
                .or_default()
                .push(seat);
        }
    }
    let licenses = server
        .entries()
        .into_iter()
        .map(|(key, entry)| {
            let taken = by_key.remove(&key).unwrap_or_default();
            let borrowed = taken.iter().filter(|seat| seat.state == "borrowed").count();
            let holders = taken
                .iter()
                .map(|seat| Holder {
                    session: seat.session.clone(),
                    machine: short_machine(&seat.binding),
                    since: seat.leased_at,
                    expires_at: seat.expires_at,
                    borrowed_until: seat.borrowed_until,
                })
                .collect();
            let refused = match &entry {
                Entry::Served(served) => served
                    .license
                    .check_in_force(now)
                    .err()
                    .map(|error| (error.code().as_str().to_owned(), error.to_string())),
                Entry::Refused(refusal) => {
                    Some((refusal.code.as_str().to_owned(), refusal.reason.clone()))
                }
            };
            let claims = entry.claims();
            LicenseReport {
                serial: claims.map(|claims| claims.serial.clone()),
                product: claims.map(|claims| claims.product.clone()),
                edition: claims.map(|claims| claims.edition.clone()),
                version: claims.map(|claims| claims.version.clone()),
                seats: claims.map(|claims| claims.seats),
                used: count(taken.len()),
                borrowed: count(borrowed),
                lease_seconds: claims.map(|claims| claims.lease_seconds),
                borrow_max_days: claims.and_then(|claims| {
                    claims
                        .borrow_max_seconds
                        .filter(|_| claims.kinds.borrow)
                        .map(|seconds| u32::try_from(seconds / 86_400).unwrap_or(u32::MAX))
                }),
                expires_at: claims.and_then(|claims| claims.expires_at),
                offline_until: claims.map(|claims| claims.offline_until),
                serving: refused.is_none(),
                status: match &refused {
                    None => "serving".to_owned(),
                    Some((code, reason)) => format!("{code}: {reason}"),
                },
                code: refused.map(|(code, _)| code),
                holders,
                key,
            }
        })
        .collect();
    StatusReport {
        server_key: crate::keys::public_key_line(&server.public_key()),
        center: server.center().map(str::to_owned),
        licenses,
    }
}

/// The report of the license server of `licensing`, reading the seats taken from the store.
pub async fn status(licensing: &Licensing) -> Result<StatusReport, ServiceError> {
    let server = licensing
        .license_server()
        .ok_or_else(|| ServiceError::Invalid("this server is not a license server".to_owned()))?;
    let seats = licensing.held_seats(None).await?;
    Ok(report(server, seats, licensing.now()))
}

/// What `GET /v1/seats/query` answers: every server license with its free seats (an activation
/// center answers an empty list).
pub async fn seat_query(licensing: &Licensing) -> Result<SeatQueryBody, ServiceError> {
    if licensing.license_server().is_none() {
        return Ok(SeatQueryBody {
            licenses: Vec::new(),
        });
    }
    let report = status(licensing).await?;
    let licenses = report
        .licenses
        .into_iter()
        .map(|license| {
            let seats = license.seats.unwrap_or(0);
            QueriedLicense {
                free: if license.serving {
                    seats.saturating_sub(license.used)
                } else {
                    0
                },
                key: license.key,
                product: license.product.unwrap_or_default(),
                edition: license.edition.unwrap_or_default(),
                version: license.version.unwrap_or_default(),
                seats,
                borrowed: license.borrowed,
                borrow_max_days: license.borrow_max_days,
                expires_at: license.expires_at,
                status: license.status,
            }
        })
        .collect();
    Ok(SeatQueryBody { licenses })
}

fn time(at: Option<DateTime<Utc>>, none: &str) -> String {
    at.map_or_else(
        || none.to_owned(),
        |at| at.format("%Y-%m-%d %H:%M:%SZ").to_string(),
    )
}

/// The report as text for people.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "license server key: {}", report.server_key);
    let _ = writeln!(
        out,
        "activation center: {}",
        report
            .center
            .as_deref()
            .unwrap_or("none (request and response files)")
    );
    if report.licenses.is_empty() {
        let _ = writeln!(out, "no server license (licet-server activate)");
    }
    for license in &report.licenses {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}  {} {} {}",
            license.key,
            license.product.as_deref().unwrap_or("?"),
            license.edition.as_deref().unwrap_or("?"),
            license.version.as_deref().unwrap_or("?"),
        );
        let _ = writeln!(out, "  status:    {}", license.status);
        let _ = writeln!(
            out,
            "  seats:     {} of {} in use, {} borrowed",
            license.used,
            license
                .seats
                .map_or_else(|| "?".to_owned(), |seats| seats.to_string()),
            license.borrowed
        );
        let _ = writeln!(
            out,
            "  expires:   {}   revalidate by: {}",
            time(license.expires_at, "never"),
            time(license.offline_until, "-")
        );
        if let Some(days) = license.borrow_max_days {
            let _ = writeln!(out, "  borrowing: up to {days} days");
        }
        for holder in &license.holders {
            match holder.borrowed_until {
                Some(until) => {
                    let _ = writeln!(
                        out,
                        "  borrowed   session {}  machine {}  since {}  until {}",
                        holder.session,
                        holder.machine,
                        time(Some(holder.since), "-"),
                        time(Some(until), "-")
                    );
                }
                None => {
                    let _ = writeln!(
                        out,
                        "  held       session {}  machine {}  since {}  lease until {}",
                        holder.session,
                        holder.machine,
                        time(Some(holder.since), "-"),
                        time(Some(holder.expires_at), "-")
                    );
                }
            }
        }
    }
    out
}
