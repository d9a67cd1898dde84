//! Tests of the fake upstream through a plain HTTP client, OpenAI and Azure: the exact wire
//! format, tool calls, scripted failures, delays, keys and API versions, and the
//! request/cancellation bookkeeping; plus the helpers the other protocols' tests share.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::fake_openai::FakeOpenAi;

use super::{FakeUpstream, Protocol, Reply};

pub(super) const SECOND: Duration = Duration::from_secs(1);

/// Sends a request to `path` (with its query) of the fake, with these headers and JSON body.
pub(super) async fn send(
    fake: &FakeUpstream,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> reqwest::Response {
    let client = reqwest::Client::new();
    let url = format!("http://{}{path}", fake.addr());
    let mut builder = if body.is_some() { client.post(url) } else { client.get(url) };
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    if let Some(body) = body {
        builder = builder.json(&body);
    }
    builder.send().await.expect("the fake answers")
}

/// The body as the client read it, one item per read.
pub(super) async fn reads(mut response: reqwest::Response) -> Vec<Bytes> {
    let mut reads = Vec::new();
    while let Some(chunk) = response.chunk().await.expect("the body reads") {
        reads.push(chunk);
    }
    reads
}

pub(super) fn text(reads: &[Bytes]) -> String {
    String::from_utf8(reads.concat()).expect("UTF-8")
}

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

#[tokio::test]
async fn tool_calls_stream_as_a_named_call_then_argument_pieces() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::text("Checking.").tool_call("weather", r#"{"city":"Paris"}"#).tool_call("time", "{}"));
    let frames = frames(&post(&fake, streamed(false)).await.text().await.expect("body"));
    let chunks: Vec<Value> =
        frames[..frames.len() - 1].iter().map(|frame| serde_json::from_str(frame).expect("json")).collect();
    let calls: Vec<&Value> = chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"].get("tool_calls")).collect();
    assert_eq!(calls.len(), 4 + 3, "name and three pieces, then name and two pieces: {calls:#?}");
    assert_eq!(
        calls[0][0],
        json!({ "index": 0, "id": "call_fake0", "type": "function",
                                    "function": { "name": "weather", "arguments": "" } })
    );
    let arguments: String = calls[1..4].iter().filter_map(|call| call[0]["function"]["arguments"].as_str()).collect();
    assert_eq!(arguments, r#"{"city":"Paris"}"#);
    assert_eq!(calls[4][0]["index"], 1);
    assert_eq!(chunks.last().map(|chunk| &chunk["choices"][0]["finish_reason"]), Some(&json!("tool_calls")));

    fake.push_reply(Reply::text("x").tool_call("weather", "{}"));
    let answer: Value = post(&fake, json!({ "model": "m", "messages": [] })).await.json().await.expect("json");
    assert_eq!(answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "weather");
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn scripted_statuses_and_orphan_tool_results_get_openais_errors() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::error(429).retry_after_secs(3));
    let response = post(&fake, streamed(false)).await;
    assert_eq!((response.status().as_u16(), response.headers()["retry-after"].to_str().ok()), (429, Some("3")));
    assert_eq!(response.json::<Value>().await.expect("json")["error"]["code"], "rate_limit_exceeded");
    fake.push_reply(Reply::error(404));
    let body: Value = post(&fake, streamed(false)).await.json().await.expect("json");
    assert_eq!(body["error"]["code"], "model_not_found");
    assert!(body["error"]["message"].as_str().is_some_and(|message| message.contains("`m1`")));
    let orphan = json!({ "model": "m", "messages": [{ "role": "tool", "tool_call_id": "call_x", "content": "18" }] });
    let response = post(&fake, orphan).await;
    assert_eq!(response.status(), 400);
    let message = response.json::<Value>().await.expect("json")["error"]["message"].to_string();
    assert!(message.contains("must be a response to a preceeding message with 'tool_calls'"), "{message}");
}

#[tokio::test]
async fn azure_opens_with_the_prompt_filter_and_wants_its_key_and_version() {
    let fake = FakeUpstream::start(Protocol::Azure).await;
    assert_eq!(fake.base_url(), format!("http://{}", fake.addr()));
    fake.require_key("azure-key");
    let path = "/openai/deployments/prod-4o/chat/completions?api-version=2024-10-21";
    let body = streamed(true);
    let refused = send(&fake, path, &[("authorization", "Bearer azure-key")], Some(body.clone())).await;
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.json::<Value>().await.expect("json")["error"]["code"], "401");
    let unversioned =
        send(&fake, "/openai/deployments/prod-4o/chat/completions", &[("api-key", "azure-key")], Some(body.clone()));
    assert_eq!(unversioned.await.status(), 404);

    fake.push_reply(Reply::text("Hi there").usage(2, 2));
    let response = send(&fake, path, &[("api-key", "azure-key")], Some(body.clone())).await;
    let frames = frames(&text(&reads(response).await));
    let first: Value = serde_json::from_str(&frames[0]).expect("json");
    assert_eq!(
        (first["choices"].clone(), first["prompt_filter_results"][0]["prompt_index"].clone()),
        (json!([]), json!(0))
    );
    let second: Value = serde_json::from_str(&frames[1]).expect("json");
    assert_eq!(second["model"], "prod-4o", "the deployment answers");
    assert_eq!(frames.last().map(String::as_str), Some("[DONE]"));

    fake.push_reply(Reply::error(429).retry_after_secs(2));
    let limited = send(&fake, path, &[("api-key", "azure-key")], Some(body)).await;
    assert_eq!(limited.headers()["retry-after-ms"], "2000");
    let error = limited.json::<Value>().await.expect("json");
    assert!(error["error"]["message"].as_str().is_some_and(|message| message.contains("retry after 2 seconds")));
    let models = send(&fake, "/openai/models?api-version=2024-10-21", &[("api-key", "azure-key")], None).await;
    let models: Value = models.json().await.expect("json");
    assert_eq!(
        (models["data"][0]["id"].clone(), models["data"][0]["status"].clone()),
        (json!("gpt-4o-mini"), json!("succeeded"))
    );
    assert_eq!(fake.requests()[2].query_param("api-version").as_deref(), Some("2024-10-21"));
}
