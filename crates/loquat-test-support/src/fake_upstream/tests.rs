//! Tests of the fake upstream through a plain HTTP client, OpenAI and Azure: the exact wire
//! format, scripted
//! failures, delays, and the request/cancellation bookkeeping.

use std::time::Duration;

use serde_json::{Value, json};

use crate::fake_openai::FakeOpenAi;

use super::{FakeUpstream, Protocol, Reply};

const SECOND: Duration = Duration::from_secs(1);

async fn post(fake: &FakeOpenAi, body: Value) -> reqwest::Response {
    let client = reqwest::Client::new();
    let url = format!("{}/chat/completions", fake.base_url());
    client.post(url).bearer_auth("sk-test").json(&body).send().await.expect("the fake answers")
}

fn streamed(usage: bool) -> Value {
    json!({ "model": "m1", "messages": [{ "role": "user", "content": "hi" }], "stream": true,
            "stream_options": { "include_usage": usage } })
}

/// The JSON payloads of the `data:` lines.
fn frames(body: &str) -> Vec<String> {
    assert!(body.ends_with("\n\n"), "frames end with a blank line: {body:?}");
    body.split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| frame.trim_start_matches("data: ").to_owned())
        .collect()
}

#[tokio::test]
async fn streams_openai_chunks_then_done() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("Hello world").reasoning("Hm").usage(5, 3));
    let response = post(&fake, streamed(true)).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let frames = frames(&response.text().await.expect("body"));
    assert_eq!(frames.len(), 7, "{frames:#?}");
    let chunks: Vec<Value> = frames[..6].iter().map(|frame| serde_json::from_str(frame).expect("json")).collect();
    assert_eq!(chunks[0]["object"], "chat.completion.chunk");
    assert_eq!(chunks[0]["model"], "m1");
    assert_eq!(chunks[0]["choices"][0]["delta"], json!({ "role": "assistant", "content": "" }));
    assert_eq!(chunks[1]["choices"][0]["delta"]["reasoning_content"], "Hm");
    assert_eq!(chunks[2]["choices"][0]["delta"]["content"], "Hello");
    assert_eq!(chunks[3]["choices"][0]["delta"]["content"], " world");
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], Value::Null);
    assert_eq!(chunks[4]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[5]["choices"], json!([]));
    assert_eq!(chunks[5]["usage"]["total_tokens"], 8);
    assert_eq!(frames[6], "[DONE]");
    assert_eq!(fake.completed_streams(), 1);
    assert_eq!(fake.cancelled_streams(), 0);
}

#[tokio::test]
async fn usage_only_when_asked_and_queue_before_default() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("first").usage(1, 1));
    fake.set_default_reply(Reply::tokens(3));
    let first = frames(&post(&fake, streamed(false)).await.text().await.expect("body"));
    assert_eq!(first.len(), 4, "role, text, finish, [DONE]: {first:#?}");
    let second = frames(&post(&fake, streamed(true)).await.text().await.expect("body"));
    assert_eq!(second.len(), 6, "no usage was scripted: {second:#?}");
    assert!(fake.wait_for_requests(2, SECOND).await);
    let requests = fake.requests();
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(requests[0].header("Authorization"), Some("Bearer sk-test"));
    assert_eq!(requests[1].body["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn answers_without_streaming_when_not_asked_to() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("Hi there").reasoning("hm").usage(2, 2));
    let response = post(&fake, json!({ "model": "m", "messages": [] })).await;
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["object"], "chat.completion");
    assert_eq!(answer["choices"][0]["message"]["content"], "Hi there");
    assert_eq!(answer["choices"][0]["message"]["reasoning_content"], "hm");
    assert_eq!(answer["usage"]["prompt_tokens"], 2);
}

#[tokio::test]
async fn models_errors_and_keys() {
    let fake = FakeOpenAi::start().await;
    fake.set_models(["a", "b"]);
    fake.require_key("sk-other");
    assert_eq!(post(&fake, streamed(false)).await.status(), 401);
    let client = reqwest::Client::new();
    let models = client.get(format!("{}/models", fake.base_url())).bearer_auth("sk-other").send().await.expect("ok");
    let models: Value = models.json().await.expect("json");
    assert_eq!(models["data"][1]["id"], "b");
    fake.require_key("sk-test");
    fake.push_reply(Reply::http_error(
        429,
        json!({ "error": { "message": "slow down", "code": "rate_limit_exceeded" } }),
    ));
    let response = post(&fake, streamed(false)).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.json::<Value>().await.expect("json")["error"]["message"], "slow down");
    let unknown = client.get(format!("{}/nope", fake.base_url())).send().await.expect("ok");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn failures_disconnects_and_stalls() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::tokens(5).fail_after(2));
    let body = post(&fake, streamed(false)).await.text().await.expect("body");
    let frames = frames(&body);
    assert_eq!(frames.len(), 4, "role, two chunks, error: {frames:#?}");
    assert!(frames[3].contains("\"server_error\""));

    fake.push_reply(Reply::tokens(5).disconnect_after(1));
    assert!(post(&fake, streamed(false)).await.text().await.is_err(), "the body is cut");

    fake.push_reply(Reply::tokens(5).stall_after(1));
    let mut response = post(&fake, streamed(false)).await;
    let stalled = tokio::time::timeout(Duration::from_millis(200), async {
        while response.chunk().await.ok().flatten().is_some() {}
    });
    assert!(stalled.await.is_err(), "the stream stalls");
    drop(response);
    assert!(fake.wait_for_cancellation(Duration::from_secs(5)).await);
    assert_eq!(fake.completed_streams(), 2);
}

#[tokio::test]
async fn delays_are_honoured() {
    let fake = FakeOpenAi::start().await;
    let delay = Duration::from_millis(30);
    fake.push_reply(Reply::tokens(4).first_chunk_delay(delay).delay_between_chunks(delay));
    let started = std::time::Instant::now();
    post(&fake, streamed(false)).await.text().await.expect("body");
    assert!(started.elapsed() >= delay * 4, "{:?}", started.elapsed());
}
