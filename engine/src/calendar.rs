//! Date arithmetic for limited licenses.

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use crate::policy::LimitedPolicy;

/// The fixed date window `(not_before, expires_at)` of a limited license activated at `activated_at`.
///
/// The expiry is the activation time plus the validity period, moved forward to the policy's day of
/// the month when it has one (clamped to the month's last day, so 31 means "end of month"). With a
/// fixed window the license is valid from the start of the day before activation, which absorbs
/// time-zone differences between the client and the server.
pub fn limited_window(
    activated_at: DateTime<Utc>,
    policy: &LimitedPolicy,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let base = activated_at + policy.validity;
    let expires_at = match policy.day_of_month {
        Some(day) => snap_to_day_of_month(base, day),
        None => base,
    };
    let not_before = if policy.fixed_window {
        start_of_day(activated_at - Duration::days(1))
    } else {
        activated_at
    };
    (not_before, expires_at)
}

/// The first instant at or after `moment` that falls on `day` of a month, at the same time of day.
pub fn snap_to_day_of_month(moment: DateTime<Utc>, day: u32) -> DateTime<Utc> {
    let date = moment.date_naive();
    let this_month = clamped_date(date.year(), date.month(), day);
    let target = match this_month {
        Some(candidate) if candidate >= date => Some(candidate),
        _ => {
            let (year, month) = if date.month() == 12 {
                (date.year() + 1, 1)
            } else {
                (date.year(), date.month() + 1)
            };
            clamped_date(year, month, day)
        }
    };
    match target {
        Some(target) => Utc.from_utc_datetime(&target.and_time(moment.time())),
        None => moment,
    }
}

fn clamped_date(year: i32, month: u32, day: u32) -> Option<NaiveDate> {
    (1..=day.min(31))
        .rev()
        .find_map(|candidate| NaiveDate::from_ymd_opt(year, month, candidate))
}

fn start_of_day(moment: DateTime<Utc>) -> DateTime<Utc> {
    Utc.from_utc_datetime(&moment.date_naive().and_time(chrono::NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn snaps_forward_within_the_month_or_to_the_next() {
        assert_eq!(
            snap_to_day_of_month(at("2027-03-10T12:00:00Z"), 15),
            at("2027-03-15T12:00:00Z")
        );
        assert_eq!(
            snap_to_day_of_month(at("2027-03-15T12:00:00Z"), 15),
            at("2027-03-15T12:00:00Z")
        );
        assert_eq!(
            snap_to_day_of_month(at("2027-03-16T12:00:00Z"), 15),
            at("2027-04-15T12:00:00Z")
        );
        assert_eq!(
            snap_to_day_of_month(at("2027-12-20T00:00:00Z"), 1),
            at("2028-01-01T00:00:00Z")
        );
    }

    #[test]
    fn day_31_means_the_last_day_of_short_months() {
        assert_eq!(
            snap_to_day_of_month(at("2027-02-03T08:00:00Z"), 31),
            at("2027-02-28T08:00:00Z")
        );
        assert_eq!(
            snap_to_day_of_month(at("2028-02-29T08:00:00Z"), 30),
            at("2028-02-29T08:00:00Z")
        );
    }

    #[test]
    fn window_starts_the_day_before_activation() {
        let policy = LimitedPolicy {
            validity: Duration::days(30),
            day_of_month: Some(1),
            fixed_window: true,
        };
        let (not_before, expires_at) = limited_window(at("2027-01-10T15:30:00Z"), &policy);
        assert_eq!(not_before, at("2027-01-09T00:00:00Z"));
        assert_eq!(expires_at, at("2027-03-01T15:30:00Z"));
    }
}
