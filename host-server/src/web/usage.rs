//! Usage, derived from the audit log: seats in use over time per network license (the peak of
//! each day) and denials by code, as tables and server-drawn SVG charts.
//!
//! Seats are replayed from the allowed seat decisions of the window (a bounded query): a checkout
//! or heartbeat holds the session's seat until its lease would lapse, a borrow until its end, a
//! release or early return frees it. The window starts earlier by the longest borrow any policy
//! allows, so seats borrowed before the first day shown are counted.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use licet_engine::policy::DEFAULT_LEASE_SECONDS;
use licet_engine::Action;
use serde::Deserialize;

use super::data::MAX_USAGE_EVENTS;
use crate::service::{Licensing, ServiceError};
use crate::store::{AuditEntry, DenialCount};

/// The longest window offered, in days.
pub const MAX_DAYS: i64 = 366;

/// A bar of a chart, in SVG user units.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Left (vertical bars) or top (horizontal bars).
    pub x: f64,
    /// Top (vertical bars) or left (horizontal bars).
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
    /// What the bar stands for (its tooltip).
    pub label: String,
    /// Its value.
    pub value: i64,
}

/// A label on an axis.
#[derive(Debug, Clone)]
pub struct AxisLabel {
    /// Where.
    pub x: f64,
    /// Where.
    pub y: f64,
    /// What it says.
    pub text: String,
}

/// A bar chart drawn as inline SVG by the page template.
#[derive(Debug, Clone)]
pub struct Chart {
    /// Drawing width.
    pub width: f64,
    /// Drawing height.
    pub height: f64,
    /// A sentence describing the chart (its accessible name).
    pub title: String,
    /// The bars.
    pub bars: Vec<Bar>,
    /// Axis labels.
    pub labels: Vec<AxisLabel>,
    /// The height of a limit line (the license's seats), when any.
    pub limit_y: Option<f64>,
    /// Left edge of the plot.
    pub left: f64,
    /// Right edge of the plot.
    pub right: f64,
    /// Bottom of the plot.
    pub bottom: f64,
}

/// Seats in use per day of one license.
#[derive(Debug, Clone)]
pub struct LicenseUsage {
    /// The license key.
    pub key: String,
    /// Its product.
    pub product: String,
    /// Its seats, when known.
    pub seats: Option<u32>,
    /// `(day, peak seats in use)`, every day of the window.
    pub days: Vec<(String, usize)>,
    /// The highest peak.
    pub peak: usize,
    /// Days on which every seat was in use.
    pub full_days: usize,
    /// The chart.
    pub chart: Chart,
}

/// The usage page's data.
#[derive(Debug, Clone)]
pub struct UsageReport {
    /// First day shown.
    pub from: String,
    /// Last day shown.
    pub to: String,
    /// Licenses with seat traffic in the window.
    pub licenses: Vec<LicenseUsage>,
    /// Denials by code.
    pub denials: Vec<DenialCount>,
    /// The denials chart.
    pub denial_chart: Chart,
    /// Whether the seat entries hit the query's bound (the oldest days may be incomplete).
    pub truncated: bool,
}

#[derive(Deserialize)]
struct Detail {
    request: Action,
}

/// Peak seats in use per day, by license.
pub type Peaks = BTreeMap<String, BTreeMap<NaiveDate, usize>>;

/// The days a replay keeps, and what it found.
struct Replay {
    first: NaiveDate,
    last: NaiveDate,
    peaks: Peaks,
}

impl Replay {
    fn note(&mut self, key: &str, day: NaiveDate, count: usize) {
        if day >= self.first && day <= self.last {
            let slot = self
                .peaks
                .entry(key.to_owned())
                .or_default()
                .entry(day)
                .or_insert(0);
            *slot = (*slot).max(count);
        }
    }

    /// Seats still held at the start of each day from `from` to `until` count for that day.
    fn carry(
        &mut self,
        key: &str,
        sessions: &BTreeMap<String, DateTime<Utc>>,
        from: NaiveDate,
        until: NaiveDate,
    ) {
        for day in from.iter_days().take_while(|day| *day <= until) {
            let Some(start) = day.and_hms_opt(0, 0, 0).map(|t| t.and_utc()) else {
                break;
            };
            let count = sessions.values().filter(|end| **end > start).count();
            if count == 0 {
                break;
            }
            self.note(key, day, count);
        }
    }
}

/// Peak seats in use per day, per license, replayed from allowed seat decisions (oldest first).
/// `lease` gives each license's lease length; only days from `first` to `last` are kept.
pub fn peaks(
    events: &[AuditEntry],
    lease: impl Fn(&str) -> Duration,
    first: NaiveDate,
    last: NaiveDate,
) -> Peaks {
    let mut held: BTreeMap<String, BTreeMap<String, DateTime<Utc>>> = BTreeMap::new();
    let mut cursor: BTreeMap<String, NaiveDate> = BTreeMap::new();
    let mut replay = Replay {
        first,
        last,
        peaks: Peaks::new(),
    };
    for event in events {
        let Some(key) = event.license_key.as_deref() else {
            continue;
        };
        let Ok(detail) = serde_json::from_str::<Detail>(&event.detail) else {
            continue;
        };
        let at = event.at;
        let today = at.date_naive();
        let sessions = held.entry(key.to_owned()).or_default();
        if let Some(next) = cursor.get(key).and_then(|day| day.succ_opt()) {
            if today >= next {
                replay.carry(key, sessions, next, today);
            }
        }
        cursor.insert(key.to_owned(), today);
        match detail.request {
            Action::Checkout { session, .. } | Action::Heartbeat { session, .. } => {
                sessions.insert(session, at + lease(key));
            }
            Action::Borrow { session, until, .. } => {
                sessions.insert(session, until);
            }
            Action::Release { session, .. } | Action::ReturnBorrowed { session, .. } => {
                sessions.remove(&session);
            }
            _ => continue,
        }
        sessions.retain(|_, end| *end > at);
        let count = sessions.len();
        replay.note(key, today, count);
    }
    for (key, sessions) in &held {
        if let Some(next) = cursor.get(key).and_then(|day| day.succ_opt()) {
            replay.carry(key, sessions, next, last);
        }
    }
    replay.peaks
}

fn bar_chart(title: String, values: &[(String, usize)], limit: Option<u32>) -> Chart {
    let (width, height, left, bottom, top) = (720.0, 200.0, 40.0, 170.0, 12.0);
    let right = width - 10.0;
    let peak = values.iter().map(|(_, v)| *v).max().unwrap_or(0);
    let max = peak.max(limit.map_or(0, |l| l as usize)).max(1) as f64;
    let count = values.len().max(1) as f64;
    let slot = (right - left) / count;
    let scale = |v: f64| bottom - (bottom - top) * v / max;
    let bars = values
        .iter()
        .enumerate()
        .map(|(index, (day, value))| {
            let y = scale(*value as f64);
            Bar {
                x: left + slot * index as f64 + slot * 0.1,
                y,
                w: (slot * 0.8).max(1.0),
                h: bottom - y,
                label: format!("{day}: {value}"),
                value: i64::try_from(*value).unwrap_or(i64::MAX),
            }
        })
        .collect();
    let mut labels = vec![
        AxisLabel {
            x: left - 6.0,
            y: bottom,
            text: "0".into(),
        },
        AxisLabel {
            x: left - 6.0,
            y: top + 8.0,
            text: format!("{max}"),
        },
    ];
    let picks: BTreeSet<usize> = [0, values.len() / 2, values.len().saturating_sub(1)]
        .into_iter()
        .filter(|index| *index < values.len())
        .collect();
    for index in picks {
        labels.push(AxisLabel {
            x: left + slot * index as f64 + slot / 2.0,
            y: height - 8.0,
            text: values[index].0.clone(),
        });
    }
    Chart {
        width,
        height,
        title,
        bars,
        labels,
        limit_y: limit.map(|l| scale(f64::from(l))),
        left,
        right,
        bottom,
    }
}

fn denial_chart(denials: &[DenialCount]) -> Chart {
    let row = 28.0;
    let (left, right) = (250.0, 700.0);
    let height = (denials.len().max(1) as f64) * row + 10.0;
    let max = denials.iter().map(|d| d.count).max().unwrap_or(1).max(1) as f64;
    let mut labels = Vec::new();
    let bars = denials
        .iter()
        .enumerate()
        .map(|(index, denial)| {
            let y = 5.0 + row * index as f64;
            labels.push(AxisLabel {
                x: left - 8.0,
                y: y + 18.0,
                text: denial.code.clone(),
            });
            Bar {
                x: left,
                y: y + 3.0,
                w: ((right - left) * denial.count as f64 / max).max(2.0),
                h: row - 6.0,
                label: format!("{}: {}", denial.code, denial.count),
                value: denial.count,
            }
        })
        .collect();
    Chart {
        width: 760.0,
        height,
        title: "Denials by code".into(),
        bars,
        labels,
        limit_y: None,
        left,
        right,
        bottom: height,
    }
}

/// The usage of the last `days` days (today included), optionally of one license or product.
pub async fn report(
    licensing: &Licensing,
    days: i64,
    license_key: Option<&str>,
    product: Option<&str>,
) -> Result<UsageReport, ServiceError> {
    let days = days.clamp(1, MAX_DAYS);
    let now = licensing.now();
    let last = now.date_naive();
    let first = last - Duration::days(days - 1);
    let from = first
        .and_hms_opt(0, 0, 0)
        .map_or(now - Duration::days(days), |t| t.and_utc());
    let lookback = licensing
        .policies()
        .values()
        .flat_map(|policy| policy.license_types.values())
        .filter_map(|t| t.borrowing.map(|b| b.max))
        .max()
        .unwrap_or(Duration::days(1))
        .clamp(Duration::days(1), Duration::days(90));
    let end = now + Duration::seconds(1);
    let events = licensing
        .seat_events(from - lookback, end, license_key, MAX_USAGE_EVENTS)
        .await?;
    let truncated = i64::try_from(events.len()).unwrap_or(i64::MAX) >= MAX_USAGE_EVENTS;
    let keys: BTreeSet<String> = events
        .iter()
        .filter_map(|event| event.license_key.clone())
        .collect();
    let records = licensing
        .licenses_by_key(keys.into_iter().collect())
        .await?;
    let lease = |key: &str| {
        records
            .get(key)
            .and_then(|record| {
                let policy = licensing.policies().get(&record.license.product)?;
                policy.license_type(&record.license.license_type)?.lease
            })
            .unwrap_or(Duration::seconds(DEFAULT_LEASE_SECONDS))
    };
    let all_days: Vec<NaiveDate> = first.iter_days().take_while(|day| *day <= last).collect();
    let mut licenses = Vec::new();
    for (key, peaks) in peaks(&events, lease, first, last) {
        let record = records.get(&key);
        let record_product = record
            .map(|r| r.license.product.clone())
            .unwrap_or_default();
        if product.is_some_and(|product| product != record_product) {
            continue;
        }
        let seats = record.and_then(|record| {
            record.license.seats.or_else(|| {
                licensing
                    .policies()
                    .get(&record.license.product)
                    .and_then(|policy| policy.license_type(&record.license.license_type))
                    .and_then(|t| t.default_seats)
            })
        });
        let values: Vec<(String, usize)> = all_days
            .iter()
            .map(|day| (day.to_string(), peaks.get(day).copied().unwrap_or(0)))
            .collect();
        let peak = values.iter().map(|(_, v)| *v).max().unwrap_or(0);
        let full_days = match seats {
            Some(seats) => values
                .iter()
                .filter(|(_, v)| *v >= seats as usize && seats > 0)
                .count(),
            None => 0,
        };
        let chart = bar_chart(
            format!("Peak seats in use per day of license {key}"),
            &values,
            seats,
        );
        licenses.push(LicenseUsage {
            key,
            product: record_product,
            seats,
            days: values,
            peak,
            full_days,
            chart,
        });
    }
    licenses.sort_by(|a, b| b.peak.cmp(&a.peak).then_with(|| a.key.cmp(&b.key)));
    licenses.truncate(50);
    let denials = licensing.denial_counts(from, end, license_key).await?;
    let denial_chart = denial_chart(&denials);
    Ok(UsageReport {
        from: first.to_string(),
        to: last.to_string(),
        licenses,
        denials,
        denial_chart,
        truncated,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use chrono::TimeZone;

    fn entry(at: DateTime<Utc>, action: serde_json::Value) -> AuditEntry {
        AuditEntry {
            id: 0,
            at,
            actor: "end-user".into(),
            action: String::new(),
            license_key: Some("K".into()),
            verdict: "allow".into(),
            code: String::new(),
            rule: String::new(),
            message: String::new(),
            detail: serde_json::json!({ "request": action }).to_string(),
        }
    }

    #[test]
    fn peaks_follow_checkouts_releases_lapses_and_borrows() {
        let day1 = Utc.with_ymd_and_hms(2027, 3, 1, 9, 0, 0).unwrap();
        let target = serde_json::json!({"product": "p", "edition": "e", "version": "1"});
        let machine = serde_json::json!({"machine-id": "m"});
        let checkout = |session: &str| serde_json::json!({"checkout": {"key": "K", "target": target, "machine": machine, "session": session}});
        let events = vec![
            entry(day1, checkout("a")),
            entry(day1 + Duration::minutes(1), checkout("b")),
            entry(
                day1 + Duration::minutes(2),
                serde_json::json!({"release": {"key": "K", "session": "a"}}),
            ),
            // b lapses after five minutes without a heartbeat; c borrows over two days.
            entry(
                day1 + Duration::hours(1),
                serde_json::json!({"borrow": {"key": "K", "target": target, "machine": machine,
                    "session": "c", "until": "2027-03-03T12:00:00Z"}}),
            ),
        ];
        let first = day1.date_naive();
        let last = first + Duration::days(3);
        let peaks = peaks(&events, |_| Duration::minutes(5), first, last);
        let k = &peaks["K"];
        assert_eq!(k[&first], 2);
        assert_eq!(k[&(first + Duration::days(1))], 1);
        assert_eq!(k[&(first + Duration::days(2))], 1);
        assert_eq!(k.get(&(first + Duration::days(3))), None);
    }
}
