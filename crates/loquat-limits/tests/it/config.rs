//! `from_config`: which backend a configuration gives, and how a bad or unreachable Redis is
//! reported (these need no Redis server: port 1 on loopback refuses connections).

use std::time::{Duration, Instant};

use loquat_limits::{LimitError, RateLimiter, RedisLimiter, RedisOptions, Rule, from_config};

#[tokio::test]
async fn without_a_redis_url_limits_are_in_process() {
    for url in [None, Some(""), Some("  ")] {
        let limiter = from_config(url, "loquat").await.expect("in-process limiter");
        assert_eq!(limiter.backend(), "memory");
        limiter.ping().await.expect("always ready");
    }
}

#[tokio::test]
async fn a_malformed_redis_url_is_a_configuration_error() {
    let result = from_config(Some("not a url"), "loquat").await;
    assert!(matches!(result, Err(LimitError::Config(_))), "got {:?}", result.err());
}

#[tokio::test]
async fn an_unreachable_redis_is_unavailable_at_startup() {
    let started = Instant::now();
    let result = from_config(Some("redis://127.0.0.1:1"), "loquat").await;
    let error = result.err().expect("nothing listens on port 1");
    assert!(matches!(error, LimitError::Unavailable(_)), "got {error:?}");
    assert!(error.is_store_failure());
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn checks_against_an_unreachable_redis_fail_fast_with_unavailable() {
    let options = RedisOptions { connect_timeout: Duration::from_millis(500), op_timeout: Duration::from_millis(300) };
    let limiter = RedisLimiter::new_lazy("redis://127.0.0.1:1", "", options).expect("lazy limiter");
    let rule = Rule::new("chat-user", Duration::from_secs(60), 10);
    for _ in 0..3 {
        let started = Instant::now();
        let result = limiter.check("chat:user:1", &rule).await;
        assert!(matches!(result, Err(LimitError::Unavailable(_))), "got {result:?}");
        assert!(started.elapsed() < Duration::from_secs(1), "took {:?}", started.elapsed());
    }
    assert!(matches!(limiter.ping().await, Err(LimitError::Unavailable(_))));
    // The message names the cause, for the web layer's log line.
    let message = limiter.check("k", &rule).await.err().map(|error| error.to_string()).unwrap_or_default();
    assert!(message.starts_with("rate-limit store unavailable: "), "{message}");
}

#[tokio::test]
async fn a_rediss_url_builds_a_tls_client() {
    // The rustls client configuration is built before the TCP connection is refused: this
    // proves a crypto provider is available (rustls panics without one) and the URL is accepted.
    let options = RedisOptions { connect_timeout: Duration::from_millis(500), op_timeout: Duration::from_millis(300) };
    let result = RedisLimiter::connect("rediss://127.0.0.1:1", "", options).await;
    assert!(matches!(result, Err(LimitError::Unavailable(_))), "got {:?}", result.err());
}

#[tokio::test]
async fn an_empty_prefix_means_loquat() {
    let limiter = RedisLimiter::new_lazy("redis://127.0.0.1:1", "", RedisOptions::default()).expect("lazy limiter");
    let rule = Rule::new("login-ip", Duration::from_secs(60), 5);
    assert_eq!(limiter.bucket_key("login:ip:203.0.113.7", &rule), "loquat:rl:login-ip:login:ip:203.0.113.7");
}
