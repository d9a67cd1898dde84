//! The Redis backend: an atomic GCRA in a Lua script (EVALSHA through `redis::Script`) keeping
//! each bucket's theoretical arrival time on the Redis server's clock, so every replica shares
//! one limit; a reconnecting `ConnectionManager`, and bounded waits that end in `Unavailable`.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, ErrorKind, RedisError, Script, ServerErrorKind};

use crate::{DEFAULT_PREFIX, Decision, LimitError, RateLimiter, Rule};

/// GCRA for one unit. KEYS[1]: the bucket; ARGV[1]: emission interval (µs); ARGV[2]: burst.
/// The bucket holds the theoretical arrival time (TAT) in µs on the server's clock (`TIME`, so
/// replicas with skewed clocks agree) and expires once it is in the past, when a missing key and
/// the stored one mean the same. Same algorithm as governor: tolerance = interval * (burst - 1).
/// Returns {1, 0} when allowed, {0, retry_after_us} when limited (nothing is written then).
const GCRA_SCRIPT: &str = r"
if redis.replicate_commands then redis.replicate_commands() end
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local interval = tonumber(ARGV[1])
local tolerance = interval * (tonumber(ARGV[2]) - 1)
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, allow_at - now}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return {1, 0}
";

/// Timeouts of the Redis backend.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// Bound on each connection attempt, and on the first contact in [`RedisLimiter::connect`].
    pub connect_timeout: Duration,
    /// Bound on one check or ping, including any wait for a reconnection; past it the call
    /// returns [`LimitError::Unavailable`]. This is the latency an outage adds to a request.
    pub op_timeout: Duration,
}

impl Default for RedisOptions {
    /// 2 s to connect, 500 ms per check (a healthy check takes well under a millisecond).
    fn default() -> Self {
        Self { connect_timeout: Duration::from_secs(2), op_timeout: Duration::from_millis(500) }
    }
}

/// Limits kept in Redis and shared by every process using the same server and prefix.
///
/// Keys are `<prefix>:rl:<rule name>:<key>` and expire by themselves. `redis://` and
/// `rediss://` (TLS via rustls, system roots) URLs are accepted. Errors follow the caller's
/// policy: [`LimitError::Unavailable`] while Redis is unreachable (the connection manager
/// reconnects in the background), [`LimitError::Backend`] for anything else Redis refuses.
pub struct RedisLimiter {
    conn: ConnectionManager,
    /// `<prefix>:rl:`
    key_prefix: String,
    script: Script,
    options: RedisOptions,
}

impl std::fmt::Debug for RedisLimiter {
    /// Shows the prefix but not the URL, which may hold a password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("key_prefix", &self.key_prefix)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl RedisLimiter {
    /// Connects to `url` and loads the script, within `options.connect_timeout`. An empty
    /// `prefix` means [`DEFAULT_PREFIX`]. Must run inside a Tokio runtime.
    ///
    /// # Errors
    /// [`LimitError::Config`] for a malformed URL, [`LimitError::Unavailable`] when Redis does
    /// not answer in time, [`LimitError::Backend`] when it refuses (authentication, ACL).
    pub async fn connect(url: &str, prefix: &str, options: RedisOptions) -> Result<Self, LimitError> {
        let limiter = Self::new_lazy(url, prefix, options)?;
        let mut conn = limiter.conn.clone();
        let load = limiter.script.load_async(&mut conn);
        match tokio::time::timeout(limiter.options.connect_timeout, load).await {
            Ok(Ok(_sha)) => Ok(limiter),
            Ok(Err(error)) => Err(classify(error)),
            Err(_) => Err(timed_out(limiter.options.connect_timeout)),
        }
    }

    /// Like [`RedisLimiter::connect`] but without touching the network: the first check
    /// connects. Must be called inside a Tokio runtime.
    ///
    /// # Errors
    /// [`LimitError::Config`] for a malformed URL.
    pub fn new_lazy(url: &str, prefix: &str, options: RedisOptions) -> Result<Self, LimitError> {
        let client = Client::open(url).map_err(|error| LimitError::Config(format!("Redis URL: {error}")))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(options.connect_timeout))
            .set_response_timeout(Some(options.op_timeout))
            // Give up a reconnection quickly: the next command starts another one.
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(classify)?;
        let prefix = if prefix.is_empty() { DEFAULT_PREFIX } else { prefix };
        Ok(Self { conn, key_prefix: format!("{prefix}:rl:"), script: Script::new(GCRA_SCRIPT), options })
    }

    /// The Redis key of `key`'s bucket under `rule`.
    pub fn bucket_key(&self, key: &str, rule: &Rule) -> String {
        format!("{}{}:{key}", self.key_prefix, rule.name)
    }

    /// Runs `request` on a clone of the connection, bounded by `op_timeout`.
    async fn bounded<T, F>(&self, request: F) -> Result<T, LimitError>
    where
        F: Future<Output = redis::RedisResult<T>>,
    {
        match tokio::time::timeout(self.options.op_timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(classify(error)),
            Err(_) => Err(timed_out(self.options.op_timeout)),
        }
    }
}

#[async_trait]
impl RateLimiter for RedisLimiter {
    async fn check(&self, key: &str, rule: &Rule) -> Result<Decision, LimitError> {
        rule.validate()?;
        // Validated: at most MAX_PERIOD, so it fits.
        let interval_us = u64::try_from(rule.emission_interval().as_micros()).unwrap_or(u64::MAX);
        let mut invocation = self.script.key(self.bucket_key(key, rule));
        invocation.arg(interval_us).arg(rule.burst);
        let mut conn = self.conn.clone();
        let (allowed, retry_after_us): (i64, i64) = self.bounded(invocation.invoke_async(&mut conn)).await?;
        Ok(if allowed == 1 {
            Decision::Allowed
        } else {
            Decision::Limited { retry_after: Duration::from_micros(u64::try_from(retry_after_us).unwrap_or(0)) }
        })
    }

    async fn ping(&self) -> Result<(), LimitError> {
        let mut conn = self.conn.clone();
        let _pong: String = self.bounded(redis::cmd("PING").query_async(&mut conn)).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "redis"
    }
}

/// No answer within the bound (Redis down, unreachable or reconnecting).
#[derive(Debug, thiserror::Error)]
#[error("no answer from Redis within {} ms", .0.as_millis())]
struct TimedOut(Duration);

fn timed_out(after: Duration) -> LimitError {
    LimitError::Unavailable(Box::new(TimedOut(after)))
}

/// Sorts a Redis error into "cannot reach it now" and "it refused".
fn classify(error: RedisError) -> LimitError {
    let unavailable = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_cluster_error()
        || matches!(
            error.kind(),
            ErrorKind::ClusterConnectionNotFound
                | ErrorKind::Server(
                    ServerErrorKind::BusyLoading | ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly
                )
        );
    if unavailable { LimitError::Unavailable(Box::new(error)) } else { LimitError::Backend(Box::new(error)) }
}
