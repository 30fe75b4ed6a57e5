//! Rate limits (GCRA, `governor`): each client's own `rate_limit` (requests per hour), and throttling of
//! failed authentications that cannot lock the owner out:
//!
//! - per (client id, source address) and per source address: hard — while throttled, even a correct
//!   secret from there waits (`check_not_throttled`);
//! - per client id across all addresses: a bounded backoff (at most [`MAX_CLIENT_BACKOFF`]) that turns
//!   further *wrong* secrets into 429s but lets a correct secret from an unthrottled address pass
//!   (`client_backed_off`), so an attacker guessing from many addresses cannot lock the owner out.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};

/// How many failed authentications are tolerated before a key is throttled, and how fast it recovers.
#[derive(Debug, Clone, Copy)]
pub struct FailureQuota {
    pub burst: u32,
    /// One more failure is tolerated per this period.
    pub replenish_every: Duration,
}

impl FailureQuota {
    fn quota(self) -> Quota {
        let burst = NonZeroU32::new(self.burst.max(1)).unwrap_or(NonZeroU32::MIN);
        Quota::with_period(self.replenish_every.max(Duration::from_millis(1)))
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }
}

/// The longest a client id is backed off after failures from many addresses.
pub const MAX_CLIENT_BACKOFF: Duration = Duration::from_secs(30);

/// Limits on failed authentication.
#[derive(Debug, Clone, Copy)]
pub struct ThrottleSettings {
    /// Per claimed client id, across addresses (soft: a correct secret still passes).
    pub per_client: FailureQuota,
    /// Per source address.
    pub per_source: FailureQuota,
    /// Per (claimed client id, source address).
    pub per_pair: FailureQuota,
}

impl Default for ThrottleSettings {
    fn default() -> Self {
        Self {
            per_client: FailureQuota {
                burst: 20,
                replenish_every: Duration::from_secs(3),
            },
            per_source: FailureQuota {
                burst: 10,
                replenish_every: Duration::from_secs(6),
            },
            per_pair: FailureQuota {
                burst: 10,
                replenish_every: Duration::from_secs(6),
            },
        }
    }
}

/// Every limiter of one server instance.
pub struct Limits {
    per_client: DashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>,
    failures_by_client: DefaultKeyedRateLimiter<String>,
    failures_by_source: DefaultKeyedRateLimiter<String>,
    failures_by_pair: DefaultKeyedRateLimiter<String>,
    /// Keys (`client:…`, `source:…`, `pair:…`) throttled until the given instant.
    blocked: DashMap<String, Instant>,
    clock: DefaultClock,
}

impl Limits {
    pub fn new(settings: ThrottleSettings) -> Self {
        Self {
            per_client: DashMap::new(),
            failures_by_client: DefaultKeyedRateLimiter::dashmap(settings.per_client.quota()),
            failures_by_source: DefaultKeyedRateLimiter::dashmap(settings.per_source.quota()),
            failures_by_pair: DefaultKeyedRateLimiter::dashmap(settings.per_pair.quota()),
            blocked: DashMap::new(),
            clock: DefaultClock::default(),
        }
    }

    /// Takes one request from the client's allowance of `per_hour` requests per hour (burst: one hour's
    /// worth). `Err` carries how long to wait.
    pub fn check_client(&self, client_id: &str, per_hour: i64) -> Result<(), Duration> {
        let per_hour = u32::try_from(per_hour.max(1)).unwrap_or(u32::MAX);
        let limiter = match self.per_client.get(client_id) {
            Some(entry) if entry.0 == per_hour => Arc::clone(&entry.1),
            _ => {
                let quota = Quota::per_hour(NonZeroU32::new(per_hour).unwrap_or(NonZeroU32::MIN));
                let limiter = Arc::new(DefaultDirectRateLimiter::direct(quota));
                self.per_client
                    .insert(client_id.to_owned(), (per_hour, Arc::clone(&limiter)));
                limiter
            }
        };
        limiter
            .check()
            .map_err(|not_until| not_until.wait_time_from(self.clock.now()))
    }

    /// `Err(wait)` while the source address, or this client id from this address, is throttled after
    /// failed authentications (hard: checked before the credentials).
    pub fn check_not_throttled(
        &self,
        client_id: Option<&str>,
        source: &str,
    ) -> Result<(), Duration> {
        let keys = [
            client_id.map(|id| pair_key(id, source)),
            Some(source_key(source)),
        ];
        let wait = keys
            .into_iter()
            .flatten()
            .filter_map(|key| self.blocked_for(&key))
            .max()
            .unwrap_or(Duration::ZERO);
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    /// `Some(wait)` while the client id is backed off after failures from many addresses (soft: only
    /// wrong credentials are refused with it).
    pub fn client_backed_off(&self, client_id: &str) -> Option<Duration> {
        self.blocked_for(&client_key(client_id))
    }

    fn blocked_for(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        let until = self.blocked.get(key).map(|entry| *entry)?;
        if until > now {
            Some(until - now)
        } else {
            self.blocked.remove(key);
            None
        }
    }

    /// Counts one failed authentication. `Err(wait)` when this failure exhausted an allowance: the key is
    /// throttled from now on for `wait`.
    pub fn record_failure(&self, client_id: Option<&str>, source: &str) -> Result<(), Duration> {
        let mut wait = Duration::ZERO;
        if let Some(client_id) = client_id {
            if let Err(not_until) = self.failures_by_client.check_key(&client_id.to_owned()) {
                let until = not_until
                    .wait_time_from(self.clock.now())
                    .min(MAX_CLIENT_BACKOFF);
                self.block(client_key(client_id), until);
                wait = wait.max(until);
            }
            if let Err(not_until) = self
                .failures_by_pair
                .check_key(&pair_key(client_id, source))
            {
                let until = not_until.wait_time_from(self.clock.now());
                self.block(pair_key(client_id, source), until);
                wait = wait.max(until);
            }
        }
        if let Err(not_until) = self.failures_by_source.check_key(&source.to_owned()) {
            let until = not_until.wait_time_from(self.clock.now());
            self.block(source_key(source), until);
            wait = wait.max(until);
        }
        if self.blocked.len() > 100_000 {
            self.housekeeping();
        }
        if wait.is_zero() { Ok(()) } else { Err(wait) }
    }

    fn block(&self, key: String, wait: Duration) {
        let until = Instant::now() + wait.max(Duration::from_secs(1));
        self.blocked.insert(key, until);
    }

    /// Forgets state that no longer limits anybody (called periodically).
    pub fn housekeeping(&self) {
        let now = Instant::now();
        self.blocked.retain(|_, until| *until > now);
        self.failures_by_client.retain_recent();
        self.failures_by_source.retain_recent();
        self.failures_by_pair.retain_recent();
        self.failures_by_pair.shrink_to_fit();
        self.failures_by_client.shrink_to_fit();
        self.failures_by_source.shrink_to_fit();
    }

    /// Drops a client's limiter (after its limit changed or it was removed).
    pub fn forget_client(&self, client_id: &str) {
        self.per_client.remove(client_id);
    }
}

fn client_key(client_id: &str) -> String {
    format!("client:{client_id}")
}

fn source_key(source: &str) -> String {
    format!("source:{source}")
}

fn pair_key(client_id: &str, source: &str) -> String {
    format!("pair:{client_id}|{source}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_hourly_allowance_then_a_retry_time() {
        let limits = Limits::new(ThrottleSettings::default());
        for _ in 0..3 {
            assert!(limits.check_client("c1", 3).is_ok());
        }
        let wait = limits.check_client("c1", 3).unwrap_err();
        assert!(wait > Duration::from_secs(1000) && wait <= Duration::from_secs(1200));
        assert!(
            limits.check_client("c2", 3).is_ok(),
            "limits are per client"
        );
    }

    #[test]
    fn failures_throttle_the_source_and_the_client() {
        let settings = ThrottleSettings {
            per_client: FailureQuota {
                burst: 5,
                replenish_every: Duration::from_secs(60),
            },
            per_source: FailureQuota {
                burst: 2,
                replenish_every: Duration::from_secs(60),
            },
            per_pair: FailureQuota {
                burst: 2,
                replenish_every: Duration::from_secs(60),
            },
        };
        let limits = Limits::new(settings);
        assert!(limits.record_failure(Some("c1"), "10.0.0.1").is_ok());
        assert!(limits.record_failure(Some("c1"), "10.0.0.1").is_ok());
        assert!(limits.check_not_throttled(Some("c1"), "10.0.0.1").is_ok());
        assert!(limits.record_failure(Some("c1"), "10.0.0.1").is_err());
        assert!(
            limits
                .check_not_throttled(Some("other"), "10.0.0.1")
                .is_err()
        );
        assert!(limits.check_not_throttled(Some("c1"), "10.0.0.2").is_ok());
    }

    #[test]
    fn failures_from_many_addresses_back_the_client_off_but_only_softly_and_boundedly() {
        let limits = Limits::new(ThrottleSettings::default());
        for n in 0..40 {
            let _ = limits.record_failure(Some("c1"), &format!("10.1.0.{n}"));
        }
        let backoff = limits.client_backed_off("c1").expect("backed off");
        assert!(backoff <= MAX_CLIENT_BACKOFF);
        // A fresh address is not hard-throttled for c1: its correct secret may be checked.
        assert!(limits.check_not_throttled(Some("c1"), "10.2.0.1").is_ok());
    }
}
