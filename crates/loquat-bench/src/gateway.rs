//! Process and HTTP figures of the real binary: start-up time and idle memory, the chat page for
//! long topics, and time to first token through Loquat against the fake upstream directly.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use loquat_core::id::{AssistantId, MessageId, TopicId};
use loquat_store::StoreOptions;
use loquat_test_support::fake_openai::{FakeOpenAi, Reply};
use serde_json::{Value, json};

use crate::{seed, server, stats, temp_dir};

const STARTS: usize = 7;

/// Start-to-ready (fresh data folder and existing one) and idle RSS.
pub async fn process(binary: &Path) -> Value {
    let mut fresh = Vec::new();
    let mut warm = Vec::new();
    let mut rss = 0;
    for _ in 0..STARTS {
        let dir = temp_dir("start");
        let loquat = server::start(binary, &dir, &[]).await;
        fresh.push(loquat.ready_after);
        loquat.stop().await;
        let loquat = server::start(binary, &dir, &[]).await;
        warm.push(loquat.ready_after);
        // Idle after serving one page, as after a user's first visit.
        let _ = reqwest::get(format!("{}/login", loquat.base)).await.and_then(|r| r.error_for_status());
        tokio::time::sleep(Duration::from_millis(300)).await;
        rss = rss.max(loquat.rss_kib());
        loquat.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    let fresh = stats::summarize(&mut fresh);
    let warm = stats::summarize(&mut warm);
    println!(
        "process: ready in {:.1} ms (new data folder, p50) / {:.1} ms (existing, p50); idle RSS {:.1} MiB",
        fresh.p50_ms,
        warm.p50_ms,
        rss as f64 / 1024.0
    );
    json!({
        "ready_new_data_dir": stats::json(fresh),
        "ready_existing_data_dir": stats::json(warm),
        "idle_rss_mib": stats::round(rss as f64 / 1024.0),
    })
}

/// The chat page of a 200- and a 2,000-message topic: bytes on the wire (brotli) and time.
pub async fn pages(binary: &Path) -> Value {
    let dir = temp_dir("pages");
    let (assistant, small, large) = {
        let store =
            loquat_store::open(&StoreOptions { database_url: None, data_dir: dir.clone() }).await.expect("store");
        let assistant = seed::local_user_and_assistant(&store).await;
        let small = seed::topic(&store, assistant, 200).await;
        let large = seed::topic(&store, assistant, 2_000).await;
        (assistant, small, large)
    };
    let loquat = server::start(binary, &dir, &[]).await;
    let client = reqwest::Client::builder().cookie_store(true).build().expect("client");
    sign_in(&client, &loquat.base).await;
    let mut result = json!({});
    for (name, topic, runs) in [("topic_200", small, 30), ("topic_2000", large, 10)] {
        let url = format!("{}/chat/{assistant}/{topic}", loquat.base);
        let mut times = Vec::new();
        let mut wire = 0;
        let mut plain = 0;
        for run in 0..=runs {
            let started = Instant::now();
            let response = client.get(&url).header("accept-encoding", "br, gzip").send().await.expect("page");
            assert!(response.status().is_success());
            let body = response.bytes().await.expect("body");
            if run > 0 {
                times.push(started.elapsed()); // the first request warms caches
            }
            wire = body.len();
        }
        let plain_body = client.get(&url).header("accept-encoding", "identity").send().await.expect("page");
        plain = plain.max(plain_body.bytes().await.expect("body").len());
        let summary = stats::summarize(&mut times);
        println!(
            "page {name}: {:.1} KB on the wire (brotli), {:.1} KB uncompressed, served in p50 {:.1} ms",
            wire as f64 / 1000.0,
            plain as f64 / 1000.0,
            summary.p50_ms
        );
        result[name] = json!({
            "wire_kb": stats::round(wire as f64 / 1000.0),
            "uncompressed_kb": stats::round(plain as f64 / 1000.0),
            "served": stats::json(summary),
        });
    }
    loquat.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Time to first token straight to the fake upstream and through Loquat's chat path (send, then
/// the answer's event stream until its first `render`), at several concurrencies.
pub async fn overhead(binary: &Path) -> Value {
    let fake = FakeOpenAi::start().await;
    fake.set_recording(false);
    fake.set_default_reply(Reply::tokens(100));
    let dir = temp_dir("gateway");
    let env = [("OPENAI_API_KEY", "sk-bench".to_owned()), ("OPENAI_PROXY_URL", fake.base_url())];
    let loquat = server::start(binary, &dir, &env).await;
    let client = reqwest::Client::builder().pool_max_idle_per_host(2_000).cookie_store(true).build().expect("client");
    let registered = client
        .post(format!("{}/register", loquat.base))
        .form(&[("name", "Bench"), ("email", seed::EMAIL), ("password", seed::PASSWORD)])
        .send()
        .await
        .expect("register");
    let assistant: AssistantId = registered.url().path().trim_start_matches("/chat/").parse().expect("assistant id");
    let mut result = json!({});
    for concurrency in [1usize, 100] {
        let rounds = if concurrency == 1 { 50 } else { 3 };
        // One topic per concurrent stream, created (and titled) before measuring.
        let mut topics = Vec::new();
        for _ in 0..concurrency {
            let (topic, answer) = send(&client, &loquat.base, assistant, None).await;
            wait_done(&client, &loquat.base, answer).await;
            topics.push(topic);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let topics = Arc::new(topics);
        let mut direct = Vec::new();
        let mut through = Vec::new();
        for _ in 0..rounds {
            direct.extend(run_concurrently(concurrency, |_| direct_ttft(client.clone(), fake.base_url())).await);
            let base = loquat.base.clone();
            through.extend(
                run_concurrently(concurrency, |index| {
                    loquat_ttft(client.clone(), base.clone(), assistant, topics[index])
                })
                .await,
            );
        }
        let direct = stats::summarize(&mut direct);
        let through = stats::summarize(&mut through);
        println!(
            "gateway c={concurrency}: TTFT direct p50 {:.2} ms p99 {:.2} ms; through Loquat p50 {:.2} ms p99 {:.2} ms; added p50 {:.2} ms p99 {:.2} ms",
            direct.p50_ms,
            direct.p99_ms,
            through.p50_ms,
            through.p99_ms,
            through.p50_ms - direct.p50_ms,
            through.p99_ms - direct.p99_ms
        );
        result[format!("concurrency_{concurrency}")] = json!({
            "direct_ttft": stats::json(direct),
            "loquat_ttft": stats::json(through),
            "added_p50_ms": stats::round(through.p50_ms - direct.p50_ms),
            "added_p99_ms": stats::round(through.p99_ms - direct.p99_ms),
        });
    }
    loquat.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

async fn run_concurrently<F, Fut>(concurrency: usize, task: F) -> Vec<Duration>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Duration> + Send + 'static,
{
    let handles: Vec<_> = (0..concurrency).map(|index| tokio::spawn(task(index))).collect();
    let mut samples = Vec::with_capacity(concurrency);
    for handle in handles {
        samples.push(handle.await.expect("task"));
    }
    samples
}

async fn direct_ttft(client: reqwest::Client, base_url: String) -> Duration {
    let started = Instant::now();
    let response = client
        .post(format!("{base_url}/chat/completions"))
        .json(&json!({ "model": "gpt-4.1", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .expect("direct request");
    let mut events = response.bytes_stream().eventsource();
    let mut first = None;
    while let Some(event) = events.next().await {
        let event = event.expect("SSE");
        if first.is_none() && event.data.contains("\"content\":\"L") {
            first = Some(started.elapsed());
        }
    }
    first.expect("a content chunk")
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    assistant: AssistantId,
    topic: Option<TopicId>,
) -> (TopicId, MessageId) {
    let topic_text = topic.map(|t| t.to_string()).unwrap_or_default();
    let response = client
        .post(format!("{base}/chat/{assistant}/send"))
        .header("accept", "application/json")
        .form(&[("content", "hi"), ("topic_id", topic_text.as_str())])
        .send()
        .await
        .expect("send");
    let json: Value = response.json().await.expect("JSON");
    let topic = json["topic_id"].as_str().unwrap_or_else(|| panic!("send failed: {json}")).parse().expect("topic id");
    let answer = json["answer_id"].as_str().expect("answer id").parse().expect("answer id");
    (topic, answer)
}

async fn wait_done(client: &reqwest::Client, base: &str, answer: MessageId) {
    let response = client.get(format!("{base}/messages/{answer}/events")).send().await.expect("events");
    let mut events = response.bytes_stream().eventsource();
    while let Some(event) = events.next().await {
        if event.map(|e| e.event == "done").unwrap_or(true) {
            return;
        }
    }
}

async fn loquat_ttft(client: reqwest::Client, base: String, assistant: AssistantId, topic: TopicId) -> Duration {
    let started = Instant::now();
    let (_, answer) = send(&client, &base, assistant, Some(topic)).await;
    let response = client.get(format!("{base}/messages/{answer}/events")).send().await.expect("events");
    let mut events = response.bytes_stream().eventsource();
    let mut first = None;
    while let Some(event) = events.next().await {
        let event = event.expect("SSE");
        if first.is_none() && event.event == "render" {
            first = Some(started.elapsed());
        }
        if event.event == "done" {
            break;
        }
    }
    first.unwrap_or_else(|| started.elapsed())
}

/// Signs in as the seeded account; the client keeps the session cookie.
async fn sign_in(client: &reqwest::Client, base: &str) {
    let response = client
        .post(format!("{base}/login"))
        .form(&[("email", seed::EMAIL), ("password", seed::PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert!(response.status().is_success(), "the bench account signs in");
}
