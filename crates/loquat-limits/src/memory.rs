//! The in-process backend: one governor keyed limiter (GCRA over a sharded map) per distinct
//! [`Rule`], created on first use. Stale buckets are swept on the check path, so memory stays
//! bounded by the keys active within a period plus a sweep interval's worth of new keys.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota};

use crate::{Decision, LimitError, RateLimiter, Rule};

/// Checks between two sweeps at least (a sweep also waits for as many checks as there were live
/// keys after the previous one, keeping its cost amortised to O(1) per check).
const DEFAULT_SWEEP_EVERY: usize = 1024;

type Keyed = DefaultKeyedRateLimiter<String>;

/// Limits held in this process: right for a single instance (and for tests); with several
/// replicas each enforces its own copy of every limit, so use [`crate::RedisLimiter`] there.
pub struct InMemoryLimiter {
    limiters: RwLock<HashMap<Rule, Arc<Keyed>>>,
    /// One clock (quanta) cloned into every limiter.
    clock: DefaultClock,
    checks_since_sweep: AtomicUsize,
    /// Live keys after the last sweep.
    live_after_sweep: AtomicUsize,
    sweep_every: usize,
}

impl std::fmt::Debug for InMemoryLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemoryLimiter").field("tracked_keys", &self.tracked_keys()).finish_non_exhaustive()
    }
}

impl Default for InMemoryLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl InMemoryLimiter {
    /// An empty limiter sweeping stale buckets every 1024 checks or more.
    pub fn new() -> Self {
        Self::with_sweep_every(DEFAULT_SWEEP_EVERY)
    }

    /// An empty limiter sweeping stale buckets after at least `checks` checks (minimum 1).
    pub fn with_sweep_every(checks: usize) -> Self {
        Self {
            limiters: RwLock::new(HashMap::new()),
            clock: DefaultClock::default(),
            checks_since_sweep: AtomicUsize::new(0),
            live_after_sweep: AtomicUsize::new(0),
            sweep_every: checks.max(1),
        }
    }

    /// Drops every bucket that is indistinguishable from a fresh one (its theoretical arrival
    /// time has passed). Called automatically from [`RateLimiter::check`]; public for tests
    /// and for callers that want to sweep on a timer.
    pub fn retain_recent(&self) {
        let limiters: Vec<Arc<Keyed>> = self.read().values().cloned().collect();
        let mut live = 0;
        for limiter in limiters {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            live += limiter.len();
        }
        self.live_after_sweep.store(live, Ordering::Relaxed);
    }

    /// The number of buckets held, over all rules (may include stale ones until the next sweep).
    pub fn tracked_keys(&self) -> usize {
        self.read().values().map(|limiter| limiter.len()).sum()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<Rule, Arc<Keyed>>> {
        self.limiters.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// The limiter for `rule`, created on first use. `rule` must be valid.
    fn limiter_for(&self, rule: &Rule) -> Result<Arc<Keyed>, LimitError> {
        if let Some(limiter) = self.read().get(rule) {
            return Ok(Arc::clone(limiter));
        }
        let invalid = || LimitError::InvalidRule { name: rule.name, reason: "governor rejected the quota" };
        let burst = NonZeroU32::new(rule.burst).ok_or_else(invalid)?;
        let quota = Quota::with_period(rule.emission_interval()).ok_or_else(invalid)?.allow_burst(burst);
        let mut limiters = self.limiters.write().unwrap_or_else(PoisonError::into_inner);
        let limiter =
            limiters.entry(*rule).or_insert_with(|| Arc::new(Keyed::dashmap_with_clock(quota, self.clock.clone())));
        Ok(Arc::clone(limiter))
    }

    /// Counts a check and sweeps when enough have passed since the last sweep.
    fn maybe_sweep(&self) {
        let due = self.sweep_every.max(self.live_after_sweep.load(Ordering::Relaxed));
        let checks = self.checks_since_sweep.fetch_add(1, Ordering::Relaxed) + 1;
        // Only the check that reaches `due` first resets the counter and sweeps.
        if checks >= due
            && self.checks_since_sweep.compare_exchange(checks, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            self.retain_recent();
        }
    }
}

#[async_trait]
impl RateLimiter for InMemoryLimiter {
    async fn check(&self, key: &str, rule: &Rule) -> Result<Decision, LimitError> {
        rule.validate()?;
        let limiter = self.limiter_for(rule)?;
        let outcome = limiter.check_key(&key.to_owned());
        self.maybe_sweep();
        Ok(match outcome {
            Ok(()) => Decision::Allowed,
            Err(not_until) => Decision::Limited { retry_after: not_until.wait_time_from(limiter.clock().now()) },
        })
    }

    fn backend(&self) -> &'static str {
        "memory"
    }
}
