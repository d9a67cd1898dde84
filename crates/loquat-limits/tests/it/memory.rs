//! The in-process backend: GCRA semantics (burst, retry_after, refill), independent keys and
//! rules, rule validation, and bounded memory (stale buckets are swept).

use std::time::Duration;

use loquat_limits::{Decision, InMemoryLimiter, LimitError, RateLimiter, Rule};

use crate::support;

#[tokio::test]
async fn a_burst_passes_then_requests_wait_for_retry_after() {
    support::burst_then_limited_then_allowed(&InMemoryLimiter::new()).await;
}

#[tokio::test]
async fn keys_and_rules_have_their_own_buckets() {
    support::keys_and_rules_are_independent(&InMemoryLimiter::new()).await;
}

#[tokio::test]
async fn rules_with_one_name_but_other_numbers_get_their_own_limiter() {
    let limiter = InMemoryLimiter::new();
    let two = Rule::new("api", Duration::from_secs(60), 2);
    let four = Rule::new("api", Duration::from_secs(60), 4);
    assert_eq!(support::allowed_of(&limiter, "k", &two, 10).await, 2);
    assert_eq!(support::allowed_of(&limiter, "k", &four, 10).await, 4);
}

#[tokio::test]
async fn invalid_rules_are_refused() {
    let limiter = InMemoryLimiter::new();
    let cases = [
        Rule::new("zero-burst", Duration::from_secs(1), 0),
        Rule::new("zero-period", Duration::ZERO, 5),
        Rule::new("", Duration::from_secs(1), 5),
        Rule::new("too-fine", Duration::from_micros(10), 100),
        Rule::new("too-long", Duration::from_secs(400 * 24 * 60 * 60), 5),
    ];
    for rule in cases {
        let result = limiter.check("k", &rule).await;
        assert!(matches!(result, Err(LimitError::InvalidRule { .. })), "{rule:?} gave {result:?}");
    }
    assert!(Rule::new("ok", Duration::from_secs(30 * 24 * 60 * 60), 1000).validate().is_ok(), "a monthly quota");
}

#[tokio::test]
async fn one_limiter_is_shared_by_concurrent_tasks() {
    let limiter = std::sync::Arc::new(InMemoryLimiter::new());
    let rule = Rule::new("concurrent", Duration::from_secs(60), 25);
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { support::allowed_of(limiter.as_ref(), "shared", &rule, 10).await })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.expect("task");
    }
    assert_eq!(allowed, 25, "80 checks over 8 tasks, burst 25");
}

#[tokio::test]
async fn stale_buckets_are_swept() {
    let limiter = InMemoryLimiter::new();
    let rule = Rule::new("sweep", Duration::from_millis(20), 1);
    for ip in 0..100 {
        assert_eq!(support::check(&limiter, &format!("ip:{ip}"), &rule).await, Decision::Allowed);
    }
    assert_eq!(limiter.tracked_keys(), 100);
    limiter.retain_recent();
    assert!(limiter.tracked_keys() > 0, "buckets spent within the period are kept");
    tokio::time::sleep(Duration::from_millis(50)).await;
    limiter.retain_recent();
    assert_eq!(limiter.tracked_keys(), 0, "buckets back to full are dropped");
}

#[tokio::test]
async fn checks_sweep_by_themselves_so_memory_stays_bounded() {
    let limiter = InMemoryLimiter::with_sweep_every(16);
    let rule = Rule::new("bounded", Duration::from_millis(5), 1);
    for ip in 0..300 {
        let _ = support::check(&limiter, &format!("ip:{ip}"), &rule).await;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let tracked = limiter.tracked_keys();
    assert!(tracked <= 40, "300 distinct keys over 300 ms, a 5 ms period: {tracked} buckets kept");
}
