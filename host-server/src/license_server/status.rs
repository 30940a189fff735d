//! What a license server holds and serves: `licet-server status` (every server license with its
//! seats, holders and borrowed seats, or why it is refused) and the public `GET /v1/seats/query`.

use licet_engine::report::Report as _;
use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use licet_engine::certificate::Binding;
use serde::{Deserialize, Serialize};

use super::{Entry, LicenseServer};
use crate::admin::SeatView;
use crate::service::{Licensing, ServiceError};
use crate::store::{job, LeaseRecord};

/// The most holders the status report lists per server license (the first by session); the
/// others are counted in [`LicenseReport::more_holders`] and listed by
/// `GET /v1/admin/licenses/{key}/seats`.
pub const MAX_HOLDERS: i64 = 100;
/// The most borrowed seats counted per license: `borrowed` stops there whatever the pool.
pub const MAX_BORROWED_COUNTED: i64 = 1000;

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
    /// Who holds its seats, borrowed ones included: the first [`MAX_HOLDERS`] leases by
    /// session.
    pub holders: Vec<Holder>,
    /// How many seats are taken besides those of `holders`.
    #[serde(default)]
    pub more_holders: u32,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = SeatQuery)]
pub struct SeatQueryBody {
    /// One entry per network license.
    pub licenses: Vec<QueriedLicense>,
}

/// One network license on `GET /v1/seats/query`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    /// Seats free now (none while not serving): the pool less the seats held, as the store
    /// counts them.
    pub free: u32,
    /// Seats borrowed now, counted up to 1000 (`MAX_BORROWED_COUNTED`).
    pub borrowed: u32,
    /// The longest borrow, in days; `null` when seats cannot be borrowed.
    #[schema(required = true)]
    pub borrow_max_days: Option<u32>,
    /// End of the license's term; `null` for perpetual.
    #[schema(required = true)]
    pub expires_at: Option<DateTime<Utc>>,
    /// `serving`, or `CODE: why` (SERVER_LICENSE_INVALID, SERVER_LICENSE_EXPIRED, REVOKED).
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

fn count<N: TryInto<u32>>(n: N) -> u32 {
    n.try_into().unwrap_or(u32::MAX)
}

/// The seats taken now of one license: counts kept by the store and the first holders.
#[derive(Debug, Clone, Default)]
pub struct Taken {
    /// Seats held or borrowed now.
    pub used: u64,
    /// Seats borrowed now (counted up to [`MAX_BORROWED_COUNTED`]).
    pub borrowed: u64,
    /// The first seats taken, by session.
    pub holders: Vec<SeatView>,
}

/// The report of `server` at `now`, with the seats taken now of each license key.
pub fn report(
    server: &LicenseServer,
    mut taken: BTreeMap<String, Taken>,
    now: DateTime<Utc>,
) -> StatusReport {
    let licenses = server
        .entries()
        .into_iter()
        .map(|(key, entry)| {
            let taken = taken.remove(&key).unwrap_or_default();
            let more_holders = count(taken.used.saturating_sub(taken.holders.len() as u64));
            let holders = taken
                .holders
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
                    .map(|error| (error.code().as_str().to_owned(), error.report())),
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
                used: count(taken.used),
                borrowed: count(taken.borrowed),
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
                more_holders,
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

/// The seats taken of each license the server holds, with at most `holders` holders each: the
/// store's count of held seats, a bounded count of borrowed ones and the first leases by session,
/// whatever the size of the pools.
async fn taken(
    licensing: &Licensing,
    server: &LicenseServer,
    holders: i64,
) -> Result<BTreeMap<String, Taken>, ServiceError> {
    let now = licensing.now();
    let keys = server.entries().into_iter().map(|(key, _)| key).collect();
    let counted = licensing
        .store()
        .execute(CountTaken { keys, now, holders })
        .await?;
    Ok(counted
        .into_iter()
        .map(|(key, (used, borrowed, leases))| {
            let holders = leases
                .into_iter()
                .map(|lease| SeatView::new(lease, now))
                .filter(|seat| seat.state != "lapsed")
                .collect();
            let taken = Taken {
                used,
                borrowed,
                holders,
            };
            (key, taken)
        })
        .collect())
}

/// Per license key: the seats held, the seats borrowed (bounded count) and the first leases.
type Counted = BTreeMap<String, (u64, u64, Vec<LeaseRecord>)>;

job! {
    CountTaken { keys: Vec<String>, now: DateTime<Utc>, holders: i64 } -> Counted;
    |this, records| {
        let mut counted = BTreeMap::new();
        for key in this.keys {
            // The seat count is kept under the license's lock.
            if records.lock_license(&key).await?.is_none() {
                continue;
            }
            let used = records.held_seats(&key, this.now).await?;
            let borrowed = records.borrowed_seats(&key, this.now, MAX_BORROWED_COUNTED).await?;
            let leases = if this.holders > 0 {
                records.leases_page(&key, None, this.holders).await?
            } else {
                Vec::new()
            };
            let leases = leases
                .into_iter()
                .map(|lease| LeaseRecord { license_key: key.clone(), lease })
                .collect();
            counted.insert(key, (used, borrowed, leases));
        }
        Ok(counted)
    }
}

/// The report of the license server of `licensing`, reading the seats taken from the store.
pub async fn status(licensing: &Licensing) -> Result<StatusReport, ServiceError> {
    let server = licensing
        .license_server()
        .ok_or_else(|| ServiceError::Invalid("this server is not a license server".to_owned()))?;
    let taken = taken(licensing, server, MAX_HOLDERS).await?;
    Ok(report(server, taken, licensing.now()))
}

/// What `GET /v1/seats/query` answers: every server license with its free seats (an activation
/// center answers an empty list). Each license costs the same at any pool size: its seats held
/// are the store's count, its borrowed seats a bounded count, and no lease is listed.
pub async fn seat_query(licensing: &Licensing) -> Result<SeatQueryBody, ServiceError> {
    let Some(server) = licensing.license_server() else {
        return Ok(SeatQueryBody {
            licenses: Vec::new(),
        });
    };
    let taken = taken(licensing, server, 0).await?;
    let report = report(server, taken, licensing.now());
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
        let more = license.more_holders;
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
        if more > 0 {
            let _ = writeln!(
                out,
                "  and {more} more (licet-server admin seats list --license {})",
                license.key
            );
        }
    }
    out
}
