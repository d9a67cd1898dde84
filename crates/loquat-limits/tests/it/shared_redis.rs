//! The Redis backend against `LOQUAT_TEST_REDIS_URL`: GCRA semantics, key layout and expiry,
//! one limit shared by two connections, by concurrent tasks and by two OS processes (this test
//! binary spawned twice), and failing fast while a private redis-server is down, then recovering.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use loquat_limits::{Decision, LimitError, RateLimiter, RedisLimiter, RedisOptions, Rule};

use crate::support::{self, REDIS_URL_VAR, TestPrefix};

const PROBE_HELPER: &str = "shared_redis::probe_helper";
const PROBE_PREFIX_VAR: &str = "LOQUAT_LIMITS_PROBE_PREFIX";
const PROBE_CHECKS_VAR: &str = "LOQUAT_LIMITS_PROBE_CHECKS";
const PROBE_START_VAR: &str = "LOQUAT_LIMITS_PROBE_START_MS";
/// Marks the helper's report (libtest prints `test … ` on the same line before it).
const PROBE_LINE: &str = "LOQUAT_PROBE_ALLOWED=";
const PROBE_RULE: Rule = Rule::new("probe", Duration::from_secs(60), 5);

async fn connect(url: &str, prefix: &str) -> RedisLimiter {
    RedisLimiter::connect(url, prefix, RedisOptions::default()).await.expect("connect to the test Redis")
}

#[tokio::test]
async fn a_burst_passes_then_requests_wait_for_retry_after() {
    let Some(url) = support::redis_url("shared_redis::a_burst_passes_then_requests_wait_for_retry_after") else {
        return;
    };
    let prefix = TestPrefix::new(&url);
    support::burst_then_limited_then_allowed(&connect(&url, &prefix.prefix).await).await;
}

#[tokio::test]
async fn keys_and_rules_have_their_own_buckets() {
    let Some(url) = support::redis_url("shared_redis::keys_and_rules_have_their_own_buckets") else { return };
    let prefix = TestPrefix::new(&url);
    support::keys_and_rules_are_independent(&connect(&url, &prefix.prefix).await).await;
}

#[tokio::test]
async fn buckets_live_under_the_prefix_and_expire() {
    let Some(url) = support::redis_url("shared_redis::buckets_live_under_the_prefix_and_expire") else { return };
    let prefix = TestPrefix::new(&url);
    let limiter = connect(&url, &prefix.prefix).await;
    limiter.ping().await.expect("ping");
    let rule = Rule::new("login-ip", Duration::from_secs(60), 5);
    assert_eq!(support::check(&limiter, "login:ip:203.0.113.7", &rule).await, Decision::Allowed);
    let key = format!("{}:rl:login-ip:login:ip:203.0.113.7", prefix.prefix);
    assert_eq!(prefix.keys(), vec![key.clone()]);
    let pttl = prefix.pttl(&key);
    assert!(pttl > 10_000 && pttl <= 12_000, "one 12 s interval taken: PTTL {pttl} ms");
}

#[tokio::test]
async fn two_connections_share_one_limit() {
    let Some(url) = support::redis_url("shared_redis::two_connections_share_one_limit") else { return };
    let prefix = TestPrefix::new(&url);
    // Two limiters, two ConnectionManagers: two replicas of the web layer.
    let replicas = [connect(&url, &prefix.prefix).await, connect(&url, &prefix.prefix).await];
    let mut allowed = [0, 0];
    for attempt in 0..10 {
        let replica = attempt % 2;
        match support::check(&replicas[replica], "chat:user:42", &PROBE_RULE).await {
            Decision::Allowed => allowed[replica] += 1,
            Decision::Limited { retry_after } => assert!(retry_after > Duration::ZERO),
        }
    }
    assert_eq!(allowed[0] + allowed[1], 5, "burst 5 across both replicas: {allowed:?}");
    assert!(allowed[0] > 0 && allowed[1] > 0, "interleaved, both took some: {allowed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_checks_take_exactly_the_burst() {
    let Some(url) = support::redis_url("shared_redis::concurrent_checks_take_exactly_the_burst") else { return };
    let prefix = TestPrefix::new(&url);
    let rule = Rule::new("concurrent", Duration::from_secs(60), 20);
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let limiter = std::sync::Arc::new(connect(&url, &prefix.prefix).await);
        for _ in 0..10 {
            let limiter = limiter.clone();
            tasks.push(tokio::spawn(async move { support::allowed_of(limiter.as_ref(), "api:key:1", &rule, 3).await }));
        }
    }
    let mut allowed = 0;
    for task in tasks {
        allowed += task.await.expect("task");
    }
    assert_eq!(allowed, 20, "120 concurrent checks over 4 connections, burst 20");
}

/// Spawns this test binary twice, each child running [`probe_helper`] against one prefix at one
/// agreed instant; their allowed counts must add up to the burst.
#[test]
fn two_processes_share_one_limit() {
    let Some(url) = support::redis_url("shared_redis::two_processes_share_one_limit") else { return };
    let prefix = TestPrefix::new(&url);
    let exe = std::env::current_exe().expect("the test binary");
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis();
    let start_ms = (now_ms + 1000).to_string();
    let children: Vec<Child> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", PROBE_HELPER, "--ignored", "--nocapture", "--test-threads=1"])
                .env(REDIS_URL_VAR, &url)
                .env(PROBE_PREFIX_VAR, &prefix.prefix)
                .env(PROBE_CHECKS_VAR, "10")
                .env(PROBE_START_VAR, &start_ms)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn the probe")
        })
        .collect();
    let mut counts = Vec::new();
    for child in children {
        let output = child.wait_with_output().expect("probe output");
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "probe failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        let lines: Vec<&str> =
            stdout.lines().filter_map(|line| line.split_once(PROBE_LINE).map(|(_, count)| count)).collect();
        assert_eq!(lines.len(), 1, "the probe must report once:\n{stdout}");
        counts.push(lines[0].trim().parse::<u32>().expect("a count"));
    }
    println!("two_processes_share_one_limit: allowed per process {counts:?}");
    assert_eq!(counts.iter().sum::<u32>(), PROBE_RULE.burst, "20 checks from two processes, burst 5: {counts:?}");
}

/// Half of [`two_processes_share_one_limit`]: does nothing unless spawned by it.
#[tokio::test]
#[ignore = "helper process of two_processes_share_one_limit"]
async fn probe_helper() {
    let (Ok(prefix), Ok(checks), Ok(start_ms)) =
        (std::env::var(PROBE_PREFIX_VAR), std::env::var(PROBE_CHECKS_VAR), std::env::var(PROBE_START_VAR))
    else {
        return;
    };
    let url = std::env::var(REDIS_URL_VAR).expect("the parent passes the Redis URL");
    let checks: u32 = checks.parse().expect("checks");
    let start = UNIX_EPOCH + Duration::from_millis(start_ms.parse().expect("start"));
    let limiter = connect(&url, &prefix).await;
    if let Ok(wait) = start.duration_since(SystemTime::now()) {
        tokio::time::sleep(wait).await;
    }
    let mut allowed = 0;
    for _ in 0..checks {
        allowed += u32::from(support::check(&limiter, "chat:user:42", &PROBE_RULE).await.is_allowed());
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    println!("{PROBE_LINE}{allowed}");
}

/// A redis-server of this test's own on a free loopback port, killed when dropped.
struct PrivateRedis {
    child: Child,
}

impl PrivateRedis {
    fn start(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(std::env::temp_dir())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        let server = Self { child };
        let url = format!("redis://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !Self::answers(&url) {
            assert!(Instant::now() < deadline, "redis-server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    fn answers(url: &str) -> bool {
        let ping = |client: redis::Client| redis::cmd("PING").query::<String>(&mut client.get_connection()?);
        redis::Client::open(url).is_ok_and(|client| ping(client).is_ok())
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
async fn checks_fail_fast_while_redis_is_down_and_recover_after() {
    let Some(_) = support::redis_url("shared_redis::checks_fail_fast_while_redis_is_down_and_recover_after") else {
        return;
    };
    if Command::new("redis-server").arg("--version").output().is_err() {
        assert!(!support::require_all(), "LOQUAT_TEST_REQUIRE_ALL=1 but redis-server is not installed");
        println!("checks_fail_fast_while_redis_is_down_and_recover_after: skipped (no redis-server)");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).expect("free port").port();
    let mut server = PrivateRedis::start(port);
    let url = format!("redis://127.0.0.1:{port}");
    let options = RedisOptions { connect_timeout: Duration::from_millis(500), op_timeout: Duration::from_millis(300) };
    let limiter = RedisLimiter::connect(&url, "loquat-test", options).await.expect("connect");
    let rule = Rule::new("chat-user", Duration::from_secs(60), 100);
    assert_eq!(support::check(&limiter, "chat:user:1", &rule).await, Decision::Allowed);

    server.stop();
    for _ in 0..5 {
        let started = Instant::now();
        let result = limiter.check("chat:user:1", &rule).await;
        assert!(matches!(result, Err(LimitError::Unavailable(_))), "Redis is down: {result:?}");
        assert!(started.elapsed() < Duration::from_millis(1500), "took {:?}", started.elapsed());
    }
    assert!(limiter.ping().await.is_err(), "not ready while Redis is down");

    let _server = PrivateRedis::start(port);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match limiter.check("chat:user:1", &rule).await {
            Ok(decision) => {
                assert_eq!(decision, Decision::Allowed, "a restarted Redis starts empty");
                break;
            }
            Err(LimitError::Unavailable(error)) if Instant::now() < deadline => {
                println!("still reconnecting: {error}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("no recovery after Redis came back: {error:?}"),
        }
    }
    limiter.ping().await.expect("ready again");
}
