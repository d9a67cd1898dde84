//! Liveness and readiness: `/healthz` and `/readyz` answer without signing in or the access
//! code, `/readyz` names a failed check (Redis gone) with 503, and every response carries a
//! request id.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use crate::helpers::{TestApp, TestOptions};
use crate::recovery::start_process;

fn access_code(config: &mut loquat::Config) {
    config.access_code = Some(loquat_core::Secret::new("let-me-in"));
}

#[tokio::test]
async fn probes_need_neither_a_session_nor_the_access_code() {
    let options = TestOptions { configure: access_code, first_account: false, ..TestOptions::default() };
    let app = TestApp::spawn_with(options).await;
    let stranger = reqwest::Client::new();
    let live = stranger.get(app.url("/healthz")).send().await.expect("healthz");
    assert_eq!(live.status().as_u16(), 200);
    assert_eq!(live.text().await.expect("body"), "ok");
    let ready = stranger.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(body["status"], "ready");
    assert_eq!(body["checks"]["store"], "ok");
    assert_eq!(body["checks"]["redis"], "not configured");
    // The gate still guards everything else.
    let page = stranger.get(app.url("/settings")).send().await.expect("settings");
    assert_eq!(page.status().as_u16(), 401);
    app.cleanup().await;
}

#[tokio::test]
async fn readiness_fails_with_the_check_that_failed_when_redis_goes_away() {
    let redis = FakeRedis::start().await;
    let url = format!("redis://{}", redis.address);
    // The configure hook is a plain fn: it reads the URL from a task-local of this test.
    let options = TestOptions {
        configure: |config| config.redis_url = Some(loquat_core::Secret::new(FAKE_REDIS_URL.with(Clone::clone))),
        ..TestOptions::default()
    };
    let app = FAKE_REDIS_URL.scope(url, TestApp::spawn_with(options)).await;
    let ready = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(ready.status().as_u16(), 200);
    let body: Value = ready.json().await.expect("JSON");
    assert_eq!(body["checks"]["redis"], "ok", "{body}");

    redis.stop();
    let down = app.client.get(app.url("/readyz")).send().await.expect("readyz");
    assert_eq!(down.status().as_u16(), 503);
    let body: Value = down.json().await.expect("JSON");
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["failed"], serde_json::json!(["redis"]));
    assert_eq!(body["checks"]["store"], "ok");
    assert!(!body.to_string().contains("127.0.0.1"), "no addresses in the answer: {body}");
    app.cleanup().await;
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = TestApp::spawn().await;
    let fresh = app.client.get(app.url("/healthz")).send().await.expect("healthz");
    let id = fresh.headers()["x-request-id"].to_str().expect("ascii").to_owned();
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "a UUID when the caller sends none: {id}");
    let echoed = app.client.get(app.url("/healthz")).header("x-request-id", "lb-7f3a.2").send().await.expect("GET");
    assert_eq!(echoed.headers()["x-request-id"], "lb-7f3a.2");
    let unsafe_id = app.client.get(app.url("/healthz")).header("x-request-id", "a b{}").send().await.expect("GET");
    let replaced = unsafe_id.headers()["x-request-id"].to_str().expect("ascii");
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "an unsafe id is replaced: {replaced}");
    app.cleanup().await;
}

#[tokio::test]
async fn the_request_id_reaches_the_provider_with_the_answer_and_the_title() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.set_recording(true);
    let response = app
        .client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .header("x-request-id", "click-42")
        .form(&[("content", "Hello"), ("topic_id", "")])
        .send()
        .await
        .expect("send");
    let sent: Value = response.json().await.expect("JSON");
    let topic = sent["topic_id"].as_str().expect("topic").parse().expect("id");
    app.titled(topic).await;
    let calls = app.fake.requests();
    assert_eq!(calls.len(), 2, "the answer and the title");
    for call in &calls {
        assert_eq!(call.header("x-request-id"), Some("click-42"), "{}", call.path);
        assert_eq!(call.header("x-client-request-id"), Some("click-42"));
    }
    app.cleanup().await;
}

#[tokio::test]
async fn json_log_lines_carry_the_request_id() {
    let fake = loquat_test_support::fake_openai::FakeOpenAi::start().await;
    let data_dir = crate::helpers::temp_dir("request-id-log");
    let process = start_process(&data_dir, &fake, &[("LOQUAT_LOG", "debug".to_owned())]).await;
    let response = reqwest::Client::new()
        .get(format!("{}/readyz", process.base))
        .header("x-request-id", "trace-me-42")
        .send()
        .await
        .expect("readyz");
    assert_eq!(response.headers()["x-request-id"], "trace-me-42");
    let found = crate::helpers::eventually("a log line with the request id", || {
        let log = process.log.clone();
        async move {
            log.lock().expect("log").iter().any(|line| {
                serde_json::from_str::<Value>(line).is_ok_and(|entry| {
                    entry["span"]["request_id"] == "trace-me-42" && entry["span"]["route"] == "/readyz"
                })
            })
        }
    });
    found.await;
    drop(process);
    let _ = std::fs::remove_dir_all(&data_dir);
}

tokio::task_local! {
    static FAKE_REDIS_URL: String;
}

/// Just enough of Redis for the limiter to connect and ping: `SCRIPT LOAD` answers the digest,
/// `PING` answers `PONG`, anything else `OK`. `stop` closes the port and every connection.
struct FakeRedis {
    address: std::net::SocketAddr,
    stopped: Arc<AtomicBool>,
    server: tokio::task::JoinHandle<()>,
}

impl FakeRedis {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        let stopped = Arc::new(AtomicBool::new(false));
        let flag = stopped.clone();
        let server = tokio::spawn(async move {
            let mut connections = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                connections.push(tokio::spawn(serve_redis(stream, flag.clone())));
            }
        });
        Self { address, stopped, server }
    }

    fn stop(&self) {
        self.stopped.store(true, Ordering::SeqCst);
        self.server.abort();
    }
}

async fn serve_redis(stream: tokio::net::TcpStream, stopped: Arc<AtomicBool>) {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let Some(command) = read_command(&mut reader).await else { return };
        if stopped.load(Ordering::SeqCst) {
            return;
        }
        let reply = match command.first().map(|name| name.to_ascii_uppercase()).as_deref() {
            Some("PING") => "+PONG\r\n".to_owned(),
            // The client checks the digest: the script's SHA-1, as the redis crate computes it.
            Some("SCRIPT") => {
                let digest = redis::Script::new(command.get(2).map_or("", String::as_str)).get_hash().to_owned();
                format!("${}\r\n{digest}\r\n", digest.len())
            }
            _ => "+OK\r\n".to_owned(),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// One RESP array of bulk strings (`*N`, then `$len` and the bytes, N times).
async fn read_command(reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> Option<Vec<String>> {
    let mut line = String::new();
    reader.read_line(&mut line).await.ok().filter(|read| *read > 0)?;
    let count: usize = line.trim().strip_prefix('*')?.parse().ok()?;
    let mut parts = Vec::with_capacity(count);
    for _ in 0..count {
        line.clear();
        reader.read_line(&mut line).await.ok()?;
        let length: usize = line.trim().strip_prefix('$')?.parse().ok()?;
        let mut bytes = vec![0u8; length + 2];
        reader.read_exact(&mut bytes).await.ok()?;
        parts.push(String::from_utf8_lossy(&bytes[..length]).into_owned());
    }
    Some(parts)
}
