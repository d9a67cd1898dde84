//! Test helpers: whether Redis tests run (`LOQUAT_TEST_REDIS_URL`, `LOQUAT_TEST_REQUIRE_ALL`),
//! a random key prefix per test whose keys are deleted afterwards (SCAN + DEL, even on panic),
//! and the shared assertions both backends must pass.

use std::time::Duration;

use loquat_limits::{Decision, RateLimiter, Rule};

pub const REDIS_URL_VAR: &str = "LOQUAT_TEST_REDIS_URL";
pub const REQUIRE_ALL_VAR: &str = "LOQUAT_TEST_REQUIRE_ALL";

/// Whether a missing service must fail the test rather than skip it (CI).
pub fn require_all() -> bool {
    std::env::var(REQUIRE_ALL_VAR).is_ok_and(|value| value.trim() == "1")
}

/// The Redis URL for tests, or `None` (after printing that `test` skipped) to skip.
///
/// # Panics
/// When the URL is missing and `LOQUAT_TEST_REQUIRE_ALL=1`.
pub fn redis_url(test: &str) -> Option<String> {
    let url = std::env::var(REDIS_URL_VAR).ok().map(|url| url.trim().to_owned()).filter(|url| !url.is_empty());
    if url.is_none() {
        assert!(
            !require_all(),
            "{REQUIRE_ALL_VAR}=1 but {REDIS_URL_VAR} is not set: Redis tests cannot be skipped \
             (e.g. {REDIS_URL_VAR}=redis://127.0.0.1:6379)"
        );
        println!("{test}: skipped ({REDIS_URL_VAR} is not set)");
    }
    url
}

/// A random prefix owning every key a test writes; dropping it deletes them.
pub struct TestPrefix {
    pub url: String,
    pub prefix: String,
}

impl TestPrefix {
    pub fn new(url: &str) -> Self {
        Self { url: url.to_owned(), prefix: format!("loquat-test-{:016x}", rand::random::<u64>()) }
    }

    /// The keys under the prefix (SCAN, synchronous connection).
    pub fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url.as_str()).expect("redis url");
        let mut conn = client.get_connection().expect("connect to redis");
        let mut cursor = 0_u64;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(format!("{}:*", self.prefix))
                .arg("COUNT")
                .arg(500)
                .query(&mut conn)
                .expect("SCAN");
            keys.extend(batch);
            if next == 0 {
                return keys;
            }
            cursor = next;
        }
    }

    /// The remaining time to live of `key`, in milliseconds (-2: missing, -1: no expiry).
    pub fn pttl(&self, key: &str) -> i64 {
        let client = redis::Client::open(self.url.as_str()).expect("redis url");
        let mut conn = client.get_connection().expect("connect to redis");
        redis::cmd("PTTL").arg(key).query(&mut conn).expect("PTTL")
    }

    fn delete_all(&self) -> redis::RedisResult<()> {
        let keys = self.keys();
        if keys.is_empty() {
            return Ok(());
        }
        let client = redis::Client::open(self.url.as_str())?;
        let mut conn = client.get_connection()?;
        redis::cmd("DEL").arg(&keys).query::<i64>(&mut conn).map(drop)
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        if let Err(error) = self.delete_all() {
            eprintln!("could not delete the keys under {}: {error}", self.prefix);
        }
    }
}

pub async fn check(limiter: &dyn RateLimiter, key: &str, rule: &Rule) -> Decision {
    limiter.check(key, rule).await.expect("the limiter decides")
}

/// How many of `n` checks in a row are allowed.
pub async fn allowed_of(limiter: &dyn RateLimiter, key: &str, rule: &Rule, n: u32) -> u32 {
    let mut allowed = 0;
    for _ in 0..n {
        allowed += u32::from(check(limiter, key, rule).await.is_allowed());
    }
    allowed
}

/// A full burst passes, the next request is limited with a retry_after of at most one emission
/// interval, and once that has passed one more request is allowed (and only one).
pub async fn burst_then_limited_then_allowed(limiter: &dyn RateLimiter) {
    // 3 per 1.5 s: one every 500 ms, so a slow machine cannot refill the bucket mid-burst.
    let rule = Rule::new("burst", Duration::from_millis(1500), 3);
    for attempt in 1..=3 {
        assert_eq!(check(limiter, "k", &rule).await, Decision::Allowed, "request {attempt} of the burst");
    }
    let Decision::Limited { retry_after } = check(limiter, "k", &rule).await else {
        panic!("the request after the burst must be limited");
    };
    assert!(
        retry_after > Duration::from_millis(300) && retry_after <= rule.emission_interval(),
        "retry_after {retry_after:?} should be a little under the 500 ms interval"
    );
    tokio::time::sleep(retry_after + Duration::from_millis(20)).await;
    assert_eq!(check(limiter, "k", &rule).await, Decision::Allowed, "allowed again after retry_after");
    assert!(!check(limiter, "k", &rule).await.is_allowed(), "but only one unit came back");
}

/// Buckets are per (rule, key): other keys and other rules are untouched by a spent bucket.
pub async fn keys_and_rules_are_independent(limiter: &dyn RateLimiter) {
    let login = Rule::new("login-ip", Duration::from_secs(60), 2);
    let chat = Rule::new("chat-ip", Duration::from_secs(60), 2);
    let ip_a = "ip:203.0.113.7";
    let ip_b = "ip:203.0.113.8";
    assert_eq!(allowed_of(limiter, ip_a, &login, 5).await, 2);
    assert_eq!(allowed_of(limiter, ip_b, &login, 5).await, 2, "another key has its own bucket");
    assert_eq!(allowed_of(limiter, ip_a, &chat, 5).await, 2, "another rule has its own bucket");
    assert!(!check(limiter, ip_a, &login).await.is_allowed(), "the first bucket is still empty");
}
