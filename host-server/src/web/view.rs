//! Licenses, activations and seats as the pages show them.

use chrono::{DateTime, Utc};
use licet_engine::certificate::Binding;
use licet_engine::policy::{LicenseKind, Model};
use licet_engine::state::{LicenseStatus, Term};
use licet_engine::Policy;

use super::{day, time};
use crate::admin::{LicenseDetail, SeatView};
use crate::store::{LicenseRecord, OrderRecord};

/// One activation of a license.
#[derive(Debug, Clone)]
pub struct ActivationView {
    /// Stored identifier (the removal forms name it).
    pub id: i64,
    /// The machine or dongle, shortened.
    pub binding: String,
    /// When.
    pub activated_at: String,
}

/// One seat lease or borrow.
#[derive(Debug, Clone)]
pub struct SeatRow {
    /// The license key.
    pub key: String,
    /// The session holding it.
    pub session: String,
    /// The client machine, shortened.
    pub machine: String,
    /// When it was taken.
    pub leased_at: String,
    /// When it lapses or comes back.
    pub until: String,
    /// `held`, `borrowed` or `lapsed`.
    pub state: &'static str,
}

impl SeatRow {
    /// The row of a seat.
    pub fn new(seat: &SeatView) -> SeatRow {
        SeatRow {
            key: seat.license_key.clone(),
            session: seat.session.clone(),
            machine: binding_text(&seat.binding),
            leased_at: time(&seat.leased_at),
            until: time(&seat.borrowed_until.unwrap_or(seat.expires_at)),
            state: seat.state,
        }
    }
}

/// A license with everything a page says about it.
#[derive(Debug, Clone)]
pub struct LicenseView {
    /// The key.
    pub key: String,
    /// Product identifier.
    pub product: String,
    /// Product name.
    pub product_name: String,
    /// Stand-alone or network, with or without dongle.
    pub kind: &'static str,
    /// Whether it serves seats.
    pub network: bool,
    /// The license type's name.
    pub license_type: String,
    /// Edition.
    pub edition: String,
    /// Version.
    pub version: String,
    /// The product's languages.
    pub languages: String,
    /// Start of the service period.
    pub period_start: String,
    /// End of the service period, or that it has none.
    pub period_end: String,
    /// The service period in words.
    pub period: String,
    /// The expiry date as the extension form shows it (`YYYY-MM-DD`), empty when perpetual.
    pub expires_day: String,
    /// Valid, revoked, expired or not yet valid.
    pub status: &'static str,
    /// `ok` or `bad`, for the badge.
    pub status_class: &'static str,
    /// Seats of a network license.
    pub seats: String,
    /// Effective features.
    pub features: Vec<(String, bool)>,
    /// Effective counters.
    pub counters: Vec<(String, i64)>,
    /// The order, when any.
    pub order: String,
    /// The owning client, when any.
    pub owner: String,
    /// The dongle serial, when any.
    pub dongle: String,
    /// When it was issued.
    pub created: String,
    /// Whether its terms are fixed at first activation (limited licenses).
    pub limited: bool,
    /// Whether end users (and clients) may remove its activations.
    pub end_user_removal: bool,
    /// Its activations.
    pub activations: Vec<ActivationView>,
    /// How many activations the license allows, when the policy says.
    pub activation_limit: String,
    /// Its seats, lapsed ones included until they are swept.
    pub seat_rows: Vec<SeatRow>,
}

/// The kind of a license type, in words.
pub fn kind_label(kind: LicenseKind) -> &'static str {
    match kind {
        LicenseKind::Standalone => "Stand-alone",
        LicenseKind::Network => "Network",
        LicenseKind::StandaloneDongle => "Stand-alone, USB dongle",
        LicenseKind::NetworkDongle => "Network, USB dongle",
    }
}

/// A machine or dongle binding, shortened for a table.
pub fn binding_text(binding: &Binding) -> String {
    match binding {
        Binding::Dongle(serial) => format!("dongle {serial}"),
        Binding::Fingerprint(components) => components
            .iter()
            .map(|(name, value)| {
                let short: String = value.chars().take(10).collect();
                if short.len() < value.len() {
                    format!("{name}={short}…")
                } else {
                    format!("{name}={short}")
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn end_of(record: &LicenseRecord) -> Option<DateTime<Utc>> {
    let rental = match record.license.term {
        Term::Rental { ends_at } => Some(ends_at),
        Term::Perpetual => None,
    };
    match &record.license.limited {
        Some(limited) => Some(rental.map_or(limited.expires_at, |end| end.min(limited.expires_at))),
        None => rental,
    }
}

impl LicenseView {
    /// The view of a license record (without activations and seats).
    pub fn of(
        policy: Option<&Policy>,
        record: &LicenseRecord,
        order: Option<&OrderRecord>,
        now: DateTime<Utc>,
    ) -> LicenseView {
        let license = &record.license;
        let license_type = policy.and_then(|policy| policy.license_type(&license.license_type));
        let kind = license_type.map(|t| t.kind);
        let start = license
            .limited
            .as_ref()
            .map_or(record.created_at, |limited| limited.not_before);
        let end = end_of(record);
        let not_yet = license
            .limited
            .as_ref()
            .is_some_and(|limited| limited.not_before > now);
        let (status, status_class) = match license.status {
            LicenseStatus::Revoked => ("Revoked", "bad"),
            LicenseStatus::Enabled if end.is_some_and(|end| end <= now) => ("Expired", "bad"),
            LicenseStatus::Enabled if not_yet => ("Not yet valid", "bad"),
            LicenseStatus::Enabled => ("Valid", "ok"),
        };
        let (features, counters) = match &license.limited {
            Some(limited) => (limited.features.clone(), limited.counters.clone()),
            None => {
                let mut features = policy
                    .map(|p| p.product.features.clone())
                    .unwrap_or_default();
                let mut counters = policy
                    .map(|p| p.product.counters.clone())
                    .unwrap_or_default();
                if let Some(order) = order {
                    features.extend(order.order.features.clone());
                    counters.extend(order.order.counters.clone());
                }
                features.extend(license.features.clone());
                counters.extend(license.counters.clone());
                (features, counters)
            }
        };
        let limited = license.limited.is_some() || policy.is_some_and(|p| p.limited.is_some());
        let network = kind.is_some_and(LicenseKind::is_network);
        let seats = if network {
            license
                .seats
                .or(license_type.and_then(|t| t.default_seats))
                .map_or_else(String::new, |seats| seats.to_string())
        } else {
            String::new()
        };
        let activation_limit = match (policy.map(|p| p.model), network) {
            (
                Some(Model::Web {
                    activations_per_serial,
                }),
                false,
            ) => activations_per_serial.to_string(),
            (Some(_), false) => "1".to_owned(),
            _ => String::new(),
        };
        LicenseView {
            key: license.key.clone(),
            product: license.product.clone(),
            product_name: policy
                .map_or_else(|| license.product.clone(), |p| p.product.name.clone()),
            kind: kind.map_or("Unknown", kind_label),
            network,
            license_type: license.license_type.clone(),
            edition: license.edition.clone(),
            version: license.version.clone(),
            languages: policy
                .map(|p| p.product.languages.join(", "))
                .filter(|text| !text.is_empty())
                .unwrap_or_else(|| "not recorded".to_owned()),
            period_start: day(&start),
            period_end: end.map_or_else(
                || "no end (perpetual)".to_owned(),
                |end| format!("until {}", day(&end)),
            ),
            period: match end {
                Some(end) => format!("from {} until {}", day(&start), day(&end)),
                None => format!("from {}, no end (perpetual)", day(&start)),
            },
            expires_day: end.map_or_else(String::new, |end| day(&end)),
            status,
            status_class,
            seats,
            features: features.into_iter().collect(),
            counters: counters.into_iter().collect(),
            order: record.order.clone().unwrap_or_default(),
            owner: license.client.clone().unwrap_or_default(),
            dongle: license.dongle.clone().unwrap_or_default(),
            created: time(&record.created_at),
            limited,
            end_user_removal: policy.is_some_and(|p| p.removal.by_end_user) && !limited,
            activations: Vec::new(),
            activation_limit,
            seat_rows: Vec::new(),
        }
    }

    /// The view of a license with its activations and seats.
    pub fn detail(
        policy: Option<&Policy>,
        detail: &LicenseDetail,
        order: Option<&OrderRecord>,
        now: DateTime<Utc>,
    ) -> LicenseView {
        let mut view = LicenseView::of(policy, &detail.record, order, now);
        view.owner = detail.owner.clone().unwrap_or_default();
        view.activations = detail
            .activations
            .iter()
            .map(|record| ActivationView {
                id: record.id,
                binding: binding_text(&record.activation.binding),
                activated_at: time(&record.activation.activated_at),
            })
            .collect();
        view.seat_rows = detail.seats.iter().map(SeatRow::new).collect();
        view
    }

    /// The seats borrowed now.
    pub fn borrowed(&self) -> Vec<&SeatRow> {
        self.seat_rows
            .iter()
            .filter(|seat| seat.state == "borrowed")
            .collect()
    }

    /// How many seats are held or borrowed now.
    pub fn seats_in_use(&self) -> usize {
        self.seat_rows
            .iter()
            .filter(|seat| seat.state != "lapsed")
            .count()
    }
}
