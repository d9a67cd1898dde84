//! Rate limiting for Loquat: the [`RateLimiter`] trait (GCRA semantics), an in-process backend
//! ([`InMemoryLimiter`], governor) for single-instance installs and a Redis backend
//! ([`RedisLimiter`]) whose limits are shared by every replica; [`from_config`] picks one.

mod memory;
mod redis_store;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use memory::InMemoryLimiter;
pub use redis_store::{RedisLimiter, RedisOptions};

/// The Redis key prefix used when none is configured (`REDIS_PREFIX`, as in LobeChat).
pub const DEFAULT_PREFIX: &str = "loquat";

/// The longest [`Rule::per`] accepted (366 days): keeps the Redis script's microsecond
/// arithmetic exact in Lua's doubles and covers monthly quotas.
pub const MAX_PERIOD: Duration = Duration::from_secs(366 * 24 * 60 * 60);

/// A limit: at most `burst` requests per `per`, replenished evenly (one every `per / burst`).
///
/// Buckets are per (`name`, caller key). Rules may share a name while their numbers vary per key
/// (e.g. `"chat-user"` with each user's own quota): the Redis backend keys buckets by name and
/// key only, so a bucket keeps its state when its numbers change; the in-process backend keeps
/// one limiter per distinct (`name`, `per`, `burst`). Unrelated limits need distinct names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rule {
    /// A stable name such as `"login-ip"`; part of every bucket's key.
    pub name: &'static str,
    /// The period in which `burst` requests are allowed.
    pub per: Duration,
    /// The maximum number of requests per period, and the largest burst.
    pub burst: u32,
}

impl Rule {
    /// A rule allowing `burst` requests per `per`.
    pub const fn new(name: &'static str, per: Duration, burst: u32) -> Self {
        Self { name, per, burst }
    }

    /// The average time between two requests (`per / burst`), once the burst is spent.
    pub fn emission_interval(&self) -> Duration {
        self.per.checked_div(self.burst).unwrap_or(Duration::ZERO)
    }

    /// Checks that both backends can enforce the rule.
    ///
    /// # Errors
    /// [`LimitError::InvalidRule`] for an empty name, a zero burst, a period above
    /// [`MAX_PERIOD`] or an emission interval below one microsecond.
    pub fn validate(&self) -> Result<(), LimitError> {
        let reason = if self.name.is_empty() {
            "the name is empty"
        } else if self.burst == 0 {
            "burst must be at least 1"
        } else if self.per > MAX_PERIOD {
            "the period is longer than 366 days"
        } else if self.emission_interval() < Duration::from_micros(1) {
            "per / burst must be at least one microsecond"
        } else {
            return Ok(());
        };
        Err(LimitError::InvalidRule { name: self.name, reason })
    }
}

/// The outcome of one [`RateLimiter::check`].
#[must_use]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The request conforms; one unit was taken from the bucket.
    Allowed,
    /// The bucket is empty; nothing was taken. The same request would be allowed after
    /// `retry_after` (if nothing else takes the unit first).
    Limited {
        /// How long to wait; the web layer rounds it up for a `Retry-After` header.
        retry_after: Duration,
    },
}

impl Decision {
    /// Whether the request may proceed.
    pub fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed)
    }
}

/// A boxed error kept as the source of [`LimitError`] variants.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why a limiter could not decide.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LimitError {
    /// The rule cannot be enforced (see [`Rule::validate`]): a programming error.
    #[error("invalid rate-limit rule {name:?}: {reason}")]
    InvalidRule {
        /// The rule's name.
        name: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The configuration is unusable, e.g. a malformed Redis URL.
    #[error("invalid rate-limit configuration: {0}")]
    Config(String),
    /// The shared store cannot be reached (connection refused or dropped, timeout, loading,
    /// failover). The caller decides: fail open for chat (and log), fail closed where abuse
    /// matters more than availability.
    #[error("rate-limit store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The store answered, but not as expected (script error, wrong key type, authentication):
    /// treat like [`LimitError::Unavailable`], but it needs an operator rather than patience.
    #[error("rate-limit store error: {0}")]
    Backend(#[source] BoxError),
}

impl LimitError {
    /// Whether the error means "could not decide" because of the store (as opposed to a bad
    /// rule or configuration), i.e. a case where the caller's fail-open/closed policy applies.
    pub fn is_store_failure(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Backend(_))
    }
}

/// A rate limiter shared by the web layer (per user and per IP on chat, login and API routes)
/// and quotas. Keys are composed by the caller, e.g. `login:ip:203.0.113.7` or
/// `chat:user:<uuid>`; buckets are per (rule name, key).
///
/// # When the store fails
/// The limiter never guesses: with Redis down, [`RateLimiter::check`] returns
/// [`LimitError::Unavailable`] within [`RedisOptions::op_timeout`] and the caller applies its
/// policy. Chat fails open (serve the request, log a warning): an outage of the limiter must not
/// take chat down. Whether login fails open too is the web layer's call.
#[async_trait]
pub trait RateLimiter: Send + Sync {
    /// Takes one unit from `key`'s bucket under `rule`; `Ok(Allowed)` or
    /// `Ok(Limited { retry_after })`.
    ///
    /// # Errors
    /// [`LimitError::InvalidRule`] for a rule failing [`Rule::validate`]; with a shared store,
    /// [`LimitError::Unavailable`] or [`LimitError::Backend`] when it cannot decide.
    async fn check(&self, key: &str, rule: &Rule) -> Result<Decision, LimitError>;

    /// Readiness: whether the limiter can decide right now (in-process: always).
    ///
    /// # Errors
    /// As for [`RateLimiter::check`], when the shared store is unreachable.
    async fn ping(&self) -> Result<(), LimitError> {
        Ok(())
    }

    /// A short name for logs: `"memory"` or `"redis"`.
    fn backend(&self) -> &'static str;
}

/// The limiter for a deployment: Redis when `redis_url` is set (and not blank), otherwise the
/// in-process limiter (limits then hold per process only: fine for one instance, too loose for
/// several replicas). An empty `prefix` means [`DEFAULT_PREFIX`]; Redis keys are
/// `<prefix>:rl:<rule name>:<key>`.
///
/// With Redis this connects (and pings) before returning, so a wrong URL or a down server is
/// reported at startup; use [`RedisLimiter::new_lazy`] to start without Redis instead.
///
/// # Errors
/// [`LimitError::Config`] for a malformed URL, [`LimitError::Unavailable`] when Redis cannot be
/// reached within [`RedisOptions::connect_timeout`], [`LimitError::Backend`] when it refuses us.
///
/// # Example
/// ```no_run
/// use std::time::Duration;
/// use loquat_limits::{Decision, Rule, from_config};
///
/// const CHAT_USER: Rule = Rule::new("chat-user", Duration::from_secs(60), 20);
///
/// # async fn handler(user: &str) -> Result<(), loquat_limits::LimitError> {
/// let limiter = from_config(Some("redis://127.0.0.1:6379"), "loquat").await?;
/// match limiter.check(&format!("chat:user:{user}"), &CHAT_USER).await {
///     Ok(Decision::Allowed) => { /* serve */ }
///     Ok(Decision::Limited { retry_after }) => { /* 429 with Retry-After: retry_after */ }
///     Err(error) => { /* chat fails open: log `error`, serve */ }
/// }
/// # Ok(()) }
/// ```
pub async fn from_config(redis_url: Option<&str>, prefix: &str) -> Result<Arc<dyn RateLimiter>, LimitError> {
    match redis_url.map(str::trim).filter(|url| !url.is_empty()) {
        Some(url) => Ok(Arc::new(RedisLimiter::connect(url, prefix, RedisOptions::default()).await?)),
        None => Ok(Arc::new(InMemoryLimiter::new())),
    }
}
