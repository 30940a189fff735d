//! Bounded in-memory token buckets that slow down brute force of license keys: activation
//! attempts are limited per client address, failed attempts per license key and client address
//! (so that a stranger's failures never lock the key's owner out), and every unknown key, unknown
//! token and denied seat request costs the address.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Attempts allowed at once.
    pub burst: u32,
    /// Attempts regained per minute.
    pub per_minute: u32,
}

/// Limits of the activation attempts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimits {
    /// Failed attempts on one license key from one client address.
    pub per_key: Rate,
    /// Attempts from one client address.
    pub per_address: Rate,
    /// The most keys and addresses tracked at once (each table).
    pub max_tracked: usize,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            per_key: Rate {
                burst: 10,
                per_minute: 10,
            },
            per_address: Rate {
                burst: 60,
                per_minute: 60,
            },
            max_tracked: 100_000,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// A table of token buckets with at most `max` entries.
#[derive(Debug)]
struct Buckets {
    rate: Rate,
    max: usize,
    table: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    fn new(rate: Rate, max: usize) -> Self {
        Buckets {
            rate,
            max: max.max(1),
            table: Mutex::new(HashMap::new()),
        }
    }

    fn per_second(&self) -> f64 {
        f64::from(self.rate.per_minute) / 60.0
    }

    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * self.per_second()).min(f64::from(self.rate.burst));
        bucket.updated = now;
    }

    /// Seconds until one token is back.
    fn wait(&self, bucket: &Bucket) -> u64 {
        let missing = 1.0 - bucket.tokens;
        let per_second = self.per_second();
        if per_second <= 0.0 {
            return 3600;
        }
        // Bounded: missing <= 1, per_second >= 1/60.
        (missing / per_second).ceil().clamp(1.0, 3600.0) as u64
    }

    /// Takes `cost` tokens (0 only checks); `Err(seconds)` when the bucket is empty.
    fn take(&self, name: &str, cost: f64, now: Instant) -> Result<(), u64> {
        let mut table = self
            .table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !table.contains_key(name) {
            if cost == 0.0 {
                return Ok(());
            }
            if table.len() >= self.max {
                self.make_room(&mut table, now);
            }
            table.insert(
                name.to_owned(),
                Bucket {
                    tokens: f64::from(self.rate.burst),
                    updated: now,
                },
            );
        }
        let Some(bucket) = table.get_mut(name) else {
            return Ok(());
        };
        self.refill(bucket, now);
        if bucket.tokens < 1.0 {
            return Err(self.wait(bucket));
        }
        bucket.tokens -= cost;
        Ok(())
    }

    /// Drops buckets that refilled (they remember nothing), else the least recently used one.
    fn make_room(&self, table: &mut HashMap<String, Bucket>, now: Instant) {
        let full = f64::from(self.rate.burst);
        let per_second = self.per_second();
        table.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            bucket.tokens + elapsed * per_second < full
        });
        if table.len() >= self.max {
            if let Some(oldest) = table
                .iter()
                .min_by_key(|(_, bucket)| bucket.updated)
                .map(|(name, _)| name.clone())
            {
                table.remove(&oldest);
            }
        }
    }

    fn len(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}

/// Which limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    /// `key` or `address`.
    pub scope: &'static str,
    /// Seconds until an attempt may succeed.
    pub retry_after: u64,
}

/// The bucket an address is counted in: an IPv4 address (also when written as IPv4-mapped
/// IPv6) by itself, an IPv6 address by its /64 prefix (one subscriber's network), anything else
/// (e.g. `local`) as written.
pub fn address_bucket(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let [a, b, c, d, ..] = v6.segments();
                format!("{}/64", Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
            }
        },
        Err(_) => address.to_owned(),
    }
}

/// The bucket of the failed attempts on `key` from the address bucket `address`.
fn key_bucket(key: &str, address: &str) -> String {
    format!("{address} {key}")
}

/// The activation attempt limiter.
#[derive(Debug)]
pub struct RateLimiter {
    keys: Buckets,
    addresses: Buckets,
}

impl RateLimiter {
    /// A limiter with `limits`.
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            keys: Buckets::new(limits.per_key, limits.max_tracked),
            addresses: Buckets::new(limits.per_address, limits.max_tracked),
        }
    }

    /// An activation attempt on `key` from `address`: costs the address one attempt, and is
    /// refused while the failed attempts on `key` from this address used up their bucket (see
    /// [`RateLimiter::fail`]).
    pub fn attempt(&self, address: &str, key: Option<&str>) -> Result<(), Limited> {
        let now = Instant::now();
        let address = address_bucket(address);
        self.addresses
            .take(&address, 1.0, now)
            .map_err(|retry_after| Limited {
                scope: "address",
                retry_after,
            })?;
        if let Some(key) = key {
            self.keys
                .take(&key_bucket(key, &address), 0.0, now)
                .map_err(|retry_after| Limited {
                    scope: "key",
                    retry_after,
                })?;
        }
        Ok(())
    }

    /// An attempt on `key` from `address` was denied: costs one failed attempt of the key's
    /// bucket of this address.
    pub fn fail(&self, address: &str, key: &str) {
        // An empty bucket stays empty; the next attempt is refused by `attempt`.
        let _ = self.keys.take(
            &key_bucket(key, &address_bucket(address)),
            1.0,
            Instant::now(),
        );
    }

    /// Whether `address` may try at all now (costs nothing).
    pub fn check(&self, address: &str) -> Result<(), Limited> {
        self.addresses
            .take(&address_bucket(address), 0.0, Instant::now())
            .map_err(|retry_after| Limited {
                scope: "address",
                retry_after,
            })
    }

    /// A request from `address` named a key that does not exist: costs one attempt.
    pub fn penalize(&self, address: &str) {
        // An empty bucket stays empty; the next request is refused by `check`.
        let _ = self
            .addresses
            .take(&address_bucket(address), 1.0, Instant::now());
    }

    /// How many keys and addresses are tracked.
    pub fn tracked(&self) -> (usize, usize) {
        (self.keys.len(), self.addresses.len())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn limits(burst: u32, max: usize) -> RateLimits {
        RateLimits {
            per_key: Rate {
                burst,
                per_minute: 1,
            },
            per_address: Rate {
                burst: burst * 10,
                per_minute: 1,
            },
            max_tracked: max,
        }
    }

    #[test]
    fn failures_on_a_key_are_counted_per_address() {
        let limiter = RateLimiter::new(limits(3, 100));
        // Attempts that succeed cost the key nothing.
        for _ in 0..5 {
            limiter.attempt("10.0.0.1", Some("KEY")).unwrap();
        }
        for _ in 0..3 {
            limiter.attempt("10.0.0.2", Some("KEY")).unwrap();
            limiter.fail("10.0.0.2", "KEY");
        }
        let refused = limiter.attempt("10.0.0.2", Some("KEY")).unwrap_err();
        assert_eq!(refused.scope, "key");
        assert!(refused.retry_after >= 1);
        // The stranger's failures do not lock the owner out, nor the stranger out of other keys.
        limiter.attempt("10.0.0.1", Some("KEY")).unwrap();
        limiter.attempt("10.0.0.2", Some("OTHER")).unwrap();
    }

    #[test]
    fn an_address_guessing_keys_is_refused() {
        let limiter = RateLimiter::new(limits(1, 100));
        for guess in 0..10 {
            limiter
                .attempt("10.0.0.9", Some(&format!("GUESS-{guess}")))
                .unwrap();
        }
        assert_eq!(
            limiter
                .attempt("10.0.0.9", Some("GUESS-X"))
                .unwrap_err()
                .scope,
            "address"
        );
        assert!(limiter.check("10.0.0.9").is_err());
        assert!(limiter.check("10.0.0.8").is_ok());
    }

    #[test]
    fn penalties_exhaust_the_address() {
        let limiter = RateLimiter::new(limits(1, 100));
        for _ in 0..10 {
            limiter.penalize("10.0.0.7");
        }
        assert!(limiter.check("10.0.0.7").is_err());
    }

    #[test]
    fn ipv6_addresses_share_the_bucket_of_their_64_prefix() {
        assert_eq!(address_bucket("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(address_bucket("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(address_bucket("192.0.2.7"), "192.0.2.7");
        assert_eq!(address_bucket("local"), "local");
        let limiter = RateLimiter::new(limits(1, 100));
        // Ten attempts from ten addresses of one /64 empty its one bucket.
        for host in 1..=10 {
            limiter
                .attempt(&format!("2001:db8:1:2::{host:x}"), None)
                .unwrap();
        }
        let refused = limiter.attempt("2001:db8:1:2:ffff::99", None).unwrap_err();
        assert_eq!(refused.scope, "address");
        assert!(limiter.check("2001:db8:1:2::1234").is_err());
        // Another /64 has its own bucket.
        limiter.attempt("2001:db8:1:3::1", None).unwrap();
        // An IPv4 address and its IPv4-mapped form are one client.
        for _ in 0..10 {
            limiter.attempt("192.0.2.7", None).unwrap();
        }
        assert!(limiter.check("::ffff:192.0.2.7").is_err());
        assert!(limiter.check("192.0.2.8").is_ok());
    }

    #[test]
    fn the_tables_stay_bounded() {
        let limiter = RateLimiter::new(limits(5, 8));
        for index in 0..100 {
            let _ = limiter.attempt(&format!("10.0.{index}.1"), Some(&format!("K{index}")));
            limiter.fail(&format!("10.0.{index}.1"), &format!("K{index}"));
        }
        let (keys, addresses) = limiter.tracked();
        assert!(
            keys <= 8 && addresses <= 8,
            "{keys} keys, {addresses} addresses"
        );
    }
}
