//! What the start-up check holds against the machine beyond the state file: the certificates it
//! saw revoked, the clock against the times the machine keeps for itself (the machine ledger,
//! [`crate::ledger`], and [`MachineClock`]), and an identity that cannot be trusted.
//!
//! All of it only refuses; nothing here grants anything.

use chrono::{DateTime, Duration, Utc};
use licet_engine::certificate::CertificateClaims;
use licet_engine::{Code, Decision};

use crate::ledger::{ClockMark, Ledger};
use crate::machine::{Environment, MachineClock};

/// How many starts in a row may find the wall clock standing still (not one second further than
/// at the previous start, while the machine's own time, its uptime or a reboot, says time
/// passed) before the start-up check answers `CLOCK_ROLLBACK`. A working clock never does it
/// once; a clock frozen by hand or by a library that fakes the process's time does it at every
/// start.
pub const FROZEN_CLOCK_STARTS: u32 = 3;

/// How much of the machine's own time (its uptime) must have passed between two starts of the
/// same boot for a wall clock that did not advance to count as standing still.
const STALL_UPTIME_MS: u64 = 2_000;

/// The rule of a denial for a certificate this machine saw revoked.
pub(super) const REVOKED_RULE: &str = "ledger.revoked";
/// The rule of a denial for a clock behind a time the machine has seen or keeps.
const CLOCK_RULE: &str = "clock.machine";
/// The rule of a denial in an untrusted environment.
const ENVIRONMENT_RULE: &str = "fingerprint.untrusted_environment";

/// What one start-up check sees of the machine besides its state: the ledger as loaded, the
/// machine's clock, and this start's mark of the clock.
pub(super) struct Seen<'a> {
    pub ledger: &'a Ledger,
    pub clock: &'a MachineClock,
    pub mark: &'a ClockMark,
}

/// This start's mark of the clock after `previous`: the boot and uptime read now, the wall
/// clock `now`, and how many starts in a row found the wall clock standing still while the
/// machine's own time moved on (a reboot, or at least [`STALL_UPTIME_MS`] of uptime in the same
/// boot).
pub(super) fn next_mark(
    previous: Option<&ClockMark>,
    clock: &MachineClock,
    now: DateTime<Utc>,
) -> ClockMark {
    let uptime_ms = clock
        .uptime
        .map(|uptime| u64::try_from(uptime.as_millis()).unwrap_or(u64::MAX));
    let stalls = previous.map_or(0, |previous| {
        let time_passed = match (&previous.boot_id, &clock.boot_id) {
            (Some(before), Some(current)) if before == current => {
                match (previous.uptime_ms, uptime_ms) {
                    (Some(before), Some(current)) => {
                        current.saturating_sub(before) >= STALL_UPTIME_MS
                    }
                    _ => false,
                }
            }
            (Some(_), Some(_)) => true,
            _ => false,
        };
        if time_passed && now <= previous.wall {
            previous.stalls.saturating_add(1)
        } else {
            0
        }
    });
    ClockMark {
        boot_id: clock.boot_id.clone(),
        uptime_ms,
        wall: now,
        stalls,
    }
}

/// Denies a clock that is more than `tolerance` behind a time the machine already reached (the
/// latest time the ledger saw, the newest certificate it saw issued, the kernel's clock, the
/// system's own files), or that stood still across [`FROZEN_CLOCK_STARTS`] starts.
pub(super) fn check_machine_clock(
    seen: &Seen<'_>,
    tolerance: Duration,
    now: DateTime<Utc>,
) -> Result<(), Decision> {
    let mut floors: Vec<(String, DateTime<Utc>)> = Vec::new();
    floors.extend(
        seen.ledger
            .last_seen
            .map(|at| ("the latest time this machine saw".to_owned(), at)),
    );
    floors.extend(
        seen.ledger
            .newest_issued_at
            .map(|at| ("the newest certificate this machine saw".to_owned(), at)),
    );
    floors.extend(
        seen.clock
            .floors
            .iter()
            .map(|floor| (floor.source.clone(), floor.at)),
    );
    if let Some((source, at)) = floors.into_iter().max_by_key(|(_, at)| *at) {
        if now + tolerance < at {
            return Err(Decision::deny(
                Code::ClockRollback,
                CLOCK_RULE,
                format!("the clock reads {now} but {source} is {at}: the clock was set back"),
            ));
        }
    }
    if seen.mark.stalls >= FROZEN_CLOCK_STARTS {
        return Err(Decision::deny(
            Code::ClockRollback,
            CLOCK_RULE,
            format!(
                "the clock stood still at {} across {} starts while the machine's own time moved on",
                seen.mark.wall.format("%Y-%m-%d %H:%M:%S UTC"),
                seen.mark.stalls
            ),
        ));
    }
    Ok(())
}

/// The sentence of a denial for a certificate of `claims` this machine saw revoked at `at`.
pub(super) fn revoked_sentence(claims: &CertificateClaims, at: DateTime<Utc>) -> String {
    let what = if claims.license_key.is_empty() {
        "the trial".to_owned()
    } else {
        format!("license `{}`", claims.license_key)
    };
    format!(
        "the server revoked {what} on {}; certificate `{}` is not accepted again on this machine",
        at.format("%Y-%m-%d"),
        claims.serial
    )
}

/// The denial of `what` (`a trial`, `use of the product`, ...) in an untrusted environment.
pub(super) fn untrusted_environment(environment: &Environment, what: &str) -> Decision {
    Decision::deny(
        Code::UntrustedEnvironment,
        ENVIRONMENT_RULE,
        format!(
            "the machine's identity cannot be trusted here ({}), so {what} is refused",
            environment.findings.join("; ")
        ),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::machine::ClockFloor;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + seconds, 0).unwrap()
    }

    fn clock(boot: &str, uptime_ms: u64) -> MachineClock {
        MachineClock {
            boot_id: Some(boot.to_owned()),
            uptime: Some(std::time::Duration::from_millis(uptime_ms)),
            floors: Vec::new(),
        }
    }

    #[test]
    fn a_clock_that_stands_still_while_uptime_passes_counts_stalls() {
        let first = next_mark(None, &clock("a", 10_000), at(0));
        assert_eq!(first.stalls, 0);
        let second = next_mark(Some(&first), &clock("a", 20_000), at(0));
        assert_eq!(second.stalls, 1);
        // A reboot is time passing too.
        let third = next_mark(Some(&second), &clock("b", 1_000), at(0));
        assert_eq!(third.stalls, 2);
        // Two quick starts in the same second are not a stall.
        let quick = next_mark(Some(&third), &clock("b", 1_500), at(0));
        assert_eq!(quick.stalls, 0);
        // A clock that moves resets the count.
        let moving = next_mark(Some(&third), &clock("b", 60_000), at(60));
        assert_eq!(moving.stalls, 0);
    }

    #[test]
    fn the_clock_is_checked_against_every_time_the_machine_reached() {
        let mut ledger = Ledger::new("gstarcad");
        ledger.observe(at(1_000), Some(at(500)));
        let mut machine = clock("a", 0);
        let mark = next_mark(None, &machine, at(0));
        let tolerance = Duration::seconds(60);
        let check = |ledger: &Ledger, machine: &MachineClock, now| {
            check_machine_clock(
                &Seen {
                    ledger,
                    clock: machine,
                    mark: &mark,
                },
                tolerance,
                now,
            )
        };
        assert!(check(&ledger, &machine, at(1_000)).is_ok());
        assert!(check(&ledger, &machine, at(950)).is_ok());
        let denied = check(&ledger, &machine, at(900)).unwrap_err();
        assert_eq!(denied.code, Code::ClockRollback);
        assert!(denied.message.contains("latest time"), "{}", denied.message);
        // A system file written later than the clock says is a floor too.
        machine.floors.push(ClockFloor {
            source: "`/var/lib/dpkg/status`".to_owned(),
            at: at(5_000),
        });
        let denied = check(&ledger, &machine, at(1_000)).unwrap_err();
        assert!(denied.message.contains("dpkg"), "{}", denied.message);
    }

    #[test]
    fn a_frozen_clock_is_denied_after_the_allowed_starts() {
        let ledger = Ledger::new("gstarcad");
        let machine = clock("a", 0);
        let mut mark = next_mark(None, &machine, at(0));
        mark.stalls = FROZEN_CLOCK_STARTS;
        let seen = Seen {
            ledger: &ledger,
            clock: &machine,
            mark: &mark,
        };
        let denied = check_machine_clock(&seen, Duration::zero(), at(0)).unwrap_err();
        assert_eq!(denied.code, Code::ClockRollback);
        assert!(denied.message.contains("stood still"));
    }
}
