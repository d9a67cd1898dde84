//! Streaming through Loquat against the fake upstream directly, in the same run: added time to
//! first token and added total time at several concurrencies (the chat path the UI uses), and
//! throughput with the CPU time Loquat's process spends per 1,000 upstream chunks.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use loquat_core::id::{AssistantId, MessageId, TopicId};
use loquat_core::llm::{ProviderError, ProviderErrorKind};
use loquat_providers::{SseEvent, SseFrames};
use loquat_test_support::fake_openai::{FakeOpenAi, Reply};
use serde_json::{Value, json};

use crate::server::Loquat;
use crate::{seed, server, stats, temp_dir};

/// Chunks per answer (0 ms apart).
pub const CHUNKS: usize = 100;

/// When the first token and the end of one stream arrived.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub first: Duration,
    pub total: Duration,
}

/// Loquat started against a fresh fake upstream, with an admin account signed in whose quota
/// allows any request rate. Requests carry made-up client addresses (`X-Forwarded-For`, trusted
/// here), as a crowd of users would, so the per-address limit does not throttle the harness.
pub struct Setup {
    pub fake: FakeOpenAi,
    pub loquat: Loquat,
    pub client: reqwest::Client,
    pub assistant: AssistantId,
    dir: std::path::PathBuf,
}

impl Setup {
    pub async fn start(binary: &Path, label: &str, extra_env: &[(&str, String)]) -> Self {
        let fake = FakeOpenAi::start().await;
        fake.set_recording(false);
        fake.set_default_reply(Reply::tokens(CHUNKS));
        let dir = temp_dir(label);
        let mut env = vec![
            ("OPENAI_API_KEY", "sk-bench".to_owned()),
            ("OPENAI_PROXY_URL", fake.base_url()),
            ("LOQUAT_TRUST_FORWARDED_FOR", "true".to_owned()),
            // One machine plays every client: no per-address limit on the chat pages.
            ("LOQUAT_LIMITS__CHAT_PER_ADDRESS_PER_MINUTE", "0".to_owned()),
        ];
        env.extend(extra_env.iter().cloned());
        let loquat = server::start(binary, &dir, &env).await;
        let client =
            reqwest::Client::builder().pool_max_idle_per_host(20_000).cookie_store(true).build().expect("client");
        let registered = client
            .post(format!("{}/register", loquat.base))
            .form(&[("name", "Bench"), ("email", seed::EMAIL), ("password", seed::PASSWORD)])
            .send()
            .await
            .expect("register");
        let assistant: AssistantId =
            registered.url().path().trim_start_matches("/chat/").parse().expect("assistant id");
        // The first account is the admin; lift the admins' request rate.
        let quota = client
            .post(format!("{}/admin/settings/quota-admin", loquat.base))
            .form(&[("tokens_per_day", ""), ("tokens_per_month", ""), ("requests_per_minute", "1000000")])
            .send()
            .await
            .expect("quota");
        assert!(quota.status().is_success(), "quota lifted: {}", quota.status());
        Self { fake, loquat, client, assistant, dir }
    }

    /// A new API token of the signed-in account, read off the account page that shows it once.
    pub async fn api_token(&self) -> String {
        let page = self
            .client
            .post(format!("{}/account/tokens", self.loquat.base))
            .form(&[("name", "bench")])
            .send()
            .await
            .expect("token created")
            .text()
            .await
            .expect("account page");
        let start = page.find("data-copy-value>").expect("the new token on the page") + "data-copy-value>".len();
        let end = start + page[start..].find('<').expect("the token's end");
        page[start..end].to_owned()
    }

    pub async fn stop(self) {
        self.loquat.stop().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Time to first token and total time, direct, through the chat path and through
/// `/v1/chat/completions`, at 1, 100 and 1,000 concurrent streams; at 100 and 1,000 also chunks
/// per second and Loquat's CPU per 1,000 chunks on each path.
pub async fn overhead(binary: &Path) -> Value {
    let setup = Setup::start(binary, "gateway", &[]).await;
    let base = setup.loquat.base.clone();
    let token = setup.api_token().await;
    let mut result = json!({});
    for (concurrency, rounds) in [(1usize, 50usize), (100, 3), (1_000, 1)] {
        // One topic per concurrent stream, created (and titled) before measuring.
        let mut topics = Vec::new();
        for index in 0..concurrency {
            let (topic, answer) = send(&setup.client, &base, setup.assistant, None, index).await;
            wait_done(&setup.client, &base, answer).await;
            topics.push(topic);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let topics = Arc::new(topics);
        let mut direct = Vec::new();
        let mut chat = PathRun::default();
        let mut api = PathRun::default();
        for _ in 0..rounds {
            direct.extend(
                run_concurrently(concurrency, |_| direct_stream(setup.client.clone(), setup.fake.base_url())).await,
            );
            chat.measure(&setup.loquat, || {
                run_concurrently(concurrency, |index| {
                    chat_stream(setup.client.clone(), base.clone(), setup.assistant, topics[index], index)
                })
            })
            .await;
            api.measure(&setup.loquat, || {
                run_concurrently(concurrency, |index| {
                    api_stream(setup.client.clone(), base.clone(), token.clone(), index)
                })
            })
            .await;
        }
        let entry = &mut result[format!("concurrency_{concurrency}")];
        for (name, label, run) in [("chat_path", "chat path", &mut chat), ("api", "/v1 API", &mut api)] {
            entry[name] = compare(&format!("{label} c={concurrency}"), &mut direct, &mut run.timings);
            if concurrency > 1 {
                run.throughput(&format!("{label} c={concurrency}"), &mut entry[name]);
            }
        }
    }
    result["sustained_api_50"] = sustained(&setup, &token, 50, Duration::from_secs(6)).await;
    setup.stop().await;
    result
}

/// Answers per second when `concurrency` programs each ask for one streamed `/v1` answer after
/// another for `duration` (the way LiteLLM and Open WebUI were compared), and Loquat's CPU per
/// 1,000 chunks meanwhile; the same against the fake upstream directly, for reference.
async fn sustained(setup: &Setup, token: &str, concurrency: usize, duration: Duration) -> Value {
    let base = setup.loquat.base.clone();
    let loop_for = |through: bool| {
        let deadline = Instant::now() + duration;
        (0..concurrency)
            .map(|index| {
                let (client, base, token, fake) =
                    (setup.client.clone(), base.clone(), token.to_owned(), setup.fake.base_url());
                tokio::spawn(async move {
                    let mut answers = 0usize;
                    while Instant::now() < deadline {
                        if through {
                            api_stream(client.clone(), base.clone(), token.clone(), index).await;
                        } else {
                            direct_stream(client.clone(), fake.clone()).await;
                        }
                        answers += 1;
                    }
                    answers
                })
            })
            .collect::<Vec<_>>()
    };
    let mut figures = json!({});
    for (name, through) in [("direct", false), ("loquat", true)] {
        let cpu_before = setup.loquat.cpu_seconds();
        let started = Instant::now();
        let mut answers = 0;
        for task in loop_for(through) {
            answers += task.await.expect("a client task");
        }
        let seconds = started.elapsed().as_secs_f64();
        let per_second = answers as f64 / seconds;
        let cpu_ms_per_1000 = (setup.loquat.cpu_seconds() - cpu_before) / (answers * CHUNKS) as f64 * 1_000_000.0;
        if through {
            println!(
                "/v1 API sustained c={concurrency}: {per_second:.0} answers of {CHUNKS} chunks per second; \
                 {cpu_ms_per_1000:.1} ms of Loquat CPU per 1,000 chunks"
            );
        } else {
            println!("fake upstream alone, sustained c={concurrency}: {per_second:.0} answers per second");
        }
        figures[name] = json!({ "answers_per_second": stats::round(per_second),
                                "cpu_ms_per_1000_chunks": stats::round(cpu_ms_per_1000) });
    }
    figures
}

/// The timings of one path through Loquat, with the wall time and Loquat CPU time they took.
#[derive(Default)]
struct PathRun {
    timings: Vec<Timing>,
    busy: Duration,
    cpu_seconds: f64,
}

impl PathRun {
    async fn measure<F, Fut>(&mut self, loquat: &Loquat, run: F)
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Vec<Timing>>,
    {
        let cpu_before = loquat.cpu_seconds();
        let started = Instant::now();
        self.timings.extend(run().await);
        self.busy += started.elapsed();
        self.cpu_seconds += loquat.cpu_seconds() - cpu_before;
    }

    /// Prints and records upstream chunks per second and CPU milliseconds per 1,000 chunks.
    fn throughput(&self, label: &str, entry: &mut Value) {
        let chunks = (self.timings.len() * CHUNKS) as f64;
        let per_second = chunks / self.busy.as_secs_f64();
        let cpu_ms_per_1000 = self.cpu_seconds / chunks * 1_000_000.0;
        println!("{label}: {per_second:.0} upstream chunks/s; {cpu_ms_per_1000:.1} ms of Loquat CPU per 1,000 chunks");
        entry["chunks_per_second"] = json!(stats::round(per_second));
        entry["cpu_ms_per_1000_chunks"] = json!(stats::round(cpu_ms_per_1000));
    }
}

/// Prints and returns the direct and through figures and their differences.
pub fn compare(label: &str, direct: &mut [Timing], through: &mut [Timing]) -> Value {
    let first = |samples: &[Timing]| samples.iter().map(|t| t.first).collect::<Vec<_>>();
    let total = |samples: &[Timing]| samples.iter().map(|t| t.total).collect::<Vec<_>>();
    let direct_first = stats::summarize(&mut first(direct));
    let through_first = stats::summarize(&mut first(through));
    let direct_total = stats::summarize(&mut total(direct));
    let through_total = stats::summarize(&mut total(through));
    println!(
        "{label}: TTFT direct p50 {:.2} ms p99 {:.2} ms, through Loquat p50 {:.2} ms p99 {:.2} ms (added p50 {:+.2} ms, p99 {:+.2} ms); total added p50 {:+.2} ms, p99 {:+.2} ms",
        direct_first.p50_ms,
        direct_first.p99_ms,
        through_first.p50_ms,
        through_first.p99_ms,
        through_first.p50_ms - direct_first.p50_ms,
        through_first.p99_ms - direct_first.p99_ms,
        through_total.p50_ms - direct_total.p50_ms,
        through_total.p99_ms - direct_total.p99_ms,
    );
    json!({
        "samples": direct.len(),
        "direct_ttft": stats::json(direct_first),
        "loquat_ttft": stats::json(through_first),
        "added_ttft_p50_ms": stats::round(through_first.p50_ms - direct_first.p50_ms),
        "added_ttft_p99_ms": stats::round(through_first.p99_ms - direct_first.p99_ms),
        "direct_total": stats::json(direct_total),
        "loquat_total": stats::json(through_total),
        "added_total_p50_ms": stats::round(through_total.p50_ms - direct_total.p50_ms),
        "added_total_p99_ms": stats::round(through_total.p99_ms - direct_total.p99_ms),
    })
}

pub async fn run_concurrently<F, Fut>(concurrency: usize, task: F) -> Vec<Timing>
where
    F: Fn(usize) -> Fut,
    Fut: Future<Output = Timing> + Send + 'static,
{
    let handles: Vec<_> = (0..concurrency).map(|index| tokio::spawn(task(index))).collect();
    let mut samples = Vec::with_capacity(concurrency);
    for handle in handles {
        samples.push(handle.await.expect("task"));
    }
    samples
}

/// A made-up client address for the `index`th simulated user.
pub fn address(index: usize) -> String {
    format!("10.{}.{}.{}", (index >> 16) & 255, (index >> 8) & 255, index & 255)
}

/// One streamed completion straight from the fake upstream.
async fn direct_stream(client: reqwest::Client, base_url: String) -> Timing {
    let started = Instant::now();
    let response = client
        .post(format!("{base_url}/chat/completions"))
        .json(&json!({ "model": "gpt-4.1", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
        .expect("direct request");
    timed_stream(response, started, |event| event.data.contains("\"content\":\"L"), |_| false).await
}

/// The events of an SSE response, read with Loquat's own framing (linear in the bytes: the
/// harness must not be what limits throughput).
pub fn sse(
    response: reqwest::Response,
) -> SseFrames<impl futures_util::Stream<Item = Result<Bytes, ProviderError>> + Unpin> {
    let unavailable = |error: reqwest::Error| ProviderError::new(ProviderErrorKind::Unavailable, error.to_string());
    SseFrames::new(Box::pin(response.bytes_stream().map_err(unavailable)))
}

/// Reads an SSE response to its end (or `last`), noting the first event `first` accepts.
pub async fn timed_stream(
    response: reqwest::Response,
    started: Instant,
    first: impl Fn(&SseEvent) -> bool,
    last: impl Fn(&SseEvent) -> bool,
) -> Timing {
    assert!(response.status().is_success(), "stream refused: {}", response.status());
    let mut events = sse(response);
    let mut first_at = None;
    while let Some(event) = events.next().await {
        let event = event.expect("SSE");
        if first_at.is_none() && first(&event) {
            first_at = Some(started.elapsed());
        }
        if last(&event) {
            break;
        }
    }
    let total = started.elapsed();
    Timing { first: first_at.unwrap_or(total), total }
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    assistant: AssistantId,
    topic: Option<TopicId>,
    user_index: usize,
) -> (TopicId, MessageId) {
    let topic_text = topic.map(|t| t.to_string()).unwrap_or_default();
    let response = client
        .post(format!("{base}/chat/{assistant}/send"))
        .header("accept", "application/json")
        .header("x-forwarded-for", address(user_index))
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
    let mut events = sse(response);
    while let Some(event) = events.next().await {
        if event.map(|e| e.event == "done").unwrap_or(true) {
            return;
        }
    }
}

/// The UI's chat path: send, then the answer's event stream until its first `render` and its
/// `done`.
async fn chat_stream(
    client: reqwest::Client,
    base: String,
    assistant: AssistantId,
    topic: TopicId,
    user_index: usize,
) -> Timing {
    let started = Instant::now();
    let (_, answer) = send(&client, &base, assistant, Some(topic), user_index).await;
    let response = client.get(format!("{base}/messages/{answer}/events")).send().await.expect("events");
    timed_stream(response, started, |event| event.event == "render", |event| event.event == "done").await
}

/// A streamed `/v1/chat/completions` request, to its `[DONE]`.
pub async fn api_stream(client: reqwest::Client, base: String, token: String, user_index: usize) -> Timing {
    let started = Instant::now();
    let response = api_request(&client, &base, &token, user_index).await.expect("API request");
    timed_stream(response, started, |event| event.data.contains("\"content\":\"L"), |event| event.data == "[DONE]")
        .await
}

/// Sends a streamed chat completion for `openai/gpt-4.1` as the `user_index`th client address.
pub async fn api_request(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    user_index: usize,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(token)
        .header("x-forwarded-for", address(user_index))
        .json(&json!({ "model": "openai/gpt-4.1", "stream": true, "messages": [{ "role": "user", "content": "hi" }] }))
        .send()
        .await
}
