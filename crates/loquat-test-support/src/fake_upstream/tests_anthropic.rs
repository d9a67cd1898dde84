//! Wire tests of the fake's Anthropic face: the event sequence (pings, signed thinking, tool
//! use in `input_json_delta` pieces, deltas cut across writes), errors, keys, the checks the
//! real API makes, and paged model lists.

use serde_json::{Value, json};

use super::tests::{reads, send, text};
use super::{ANTHROPIC_THINKING_SIGNATURE, FakeUpstream, Protocol, Reply};

const HEADERS: &[(&str, &str)] = &[("x-api-key", "sk-ant"), ("anthropic-version", "2023-06-01")];

fn request(stream: bool) -> Value {
    json!({ "model": "claude-x", "max_tokens": 1024, "stream": stream, "system": "Be brief.",
            "messages": [{ "role": "user", "content": "hi" }] })
}

/// `(event name, data)` of every event of an SSE body.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            let (name, data) = frame.split_once('\n').expect("an event line and a data line");
            let name = name.strip_prefix("event: ").expect("a named event").to_owned();
            (name, serde_json::from_str(data.strip_prefix("data: ").expect("data")).expect("JSON data"))
        })
        .collect()
}

async fn error_of(response: reqwest::Response) -> (u16, String, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["type"], "error");
    (status, body["error"]["type"].as_str().unwrap_or_default().to_owned(), body["error"]["message"].to_string())
}

#[tokio::test]
async fn streams_blocks_with_pings_signatures_and_split_deltas() {
    let fake = FakeUpstream::start(Protocol::Anthropic).await;
    assert_eq!(fake.base_url(), format!("http://{}", fake.addr()));
    fake.push_reply(Reply::text("Hi there").reasoning("Hm ok").tool_call("weather", r#"{"city":"Paris"}"#).usage(7, 9));
    let response = send(&fake, "/v1/messages", HEADERS, Some(request(true))).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    let reads = reads(response).await;
    assert!(reads.iter().any(|read| !read.ends_with(b"\n\n")), "some event is cut across reads");
    let events = events(&text(&reads));
    let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
    let delta = "content_block_delta";
    #[rustfmt::skip]
    let expected = [
        "message_start", "ping",
        "content_block_start", delta, delta, delta, "content_block_stop", "ping",
        "content_block_start", delta, delta, "content_block_stop", "ping",
        "content_block_start", delta, delta, delta, delta, "content_block_stop", "ping",
        "message_delta", "message_stop",
    ];
    assert_eq!(names, expected);
    for (name, data) in &events {
        assert_eq!(data["type"], *name, "the data names its event");
    }
    let data = |at: usize| &events[at].1;
    assert_eq!(data(0)["message"]["usage"]["input_tokens"], 7);
    assert_eq!(data(2)["content_block"], json!({ "type": "thinking", "thinking": "" }));
    assert_eq!(data(4)["delta"], json!({ "type": "thinking_delta", "thinking": " ok" }));
    assert_eq!(data(5)["delta"], json!({ "type": "signature_delta", "signature": ANTHROPIC_THINKING_SIGNATURE }));
    assert_eq!((data(8)["index"].clone(), data(9)["delta"]["text"].clone()), (json!(1), json!("Hi")));
    let tool = &data(13)["content_block"];
    assert_eq!(
        (tool["type"].clone(), tool["name"].clone(), tool["input"].clone()),
        (json!("tool_use"), json!("weather"), json!({}))
    );
    assert_eq!(data(14)["delta"], json!({ "type": "input_json_delta", "partial_json": "" }));
    let arguments: String = (15..18).filter_map(|at| data(at)["delta"]["partial_json"].as_str()).collect();
    assert_eq!(arguments, r#"{"city":"Paris"}"#);
    assert_eq!(data(20)["delta"]["stop_reason"], "tool_use");
    assert_eq!(data(20)["usage"], json!({ "output_tokens": 9 }));
}

#[tokio::test]
async fn fails_in_stream_and_over_http_in_anthropics_shape() {
    let fake = FakeUpstream::start(Protocol::Anthropic).await;
    fake.push_reply(Reply::tokens(4).fail_after(1));
    let events = events(&text(&reads(send(&fake, "/v1/messages", HEADERS, Some(request(true))).await).await));
    let (name, data) = events.last().expect("events");
    assert_eq!((name.as_str(), &data["error"]["type"]), ("error", &json!("overloaded_error")));

    fake.push_reply(Reply::error(429).retry_after_secs(4));
    let response = send(&fake, "/v1/messages", HEADERS, Some(request(true))).await;
    assert_eq!(response.headers()["retry-after"], "4");
    assert_eq!(error_of(response).await.1, "rate_limit_error");
    fake.push_reply(Reply::error(529));
    let response = send(&fake, "/v1/messages", HEADERS, Some(request(true))).await;
    assert_eq!(error_of(response).await.0, 529);

    fake.push_reply(Reply::text("Whole answer").reasoning("hm").finish_reason("length"));
    let whole: Value = send(&fake, "/v1/messages", HEADERS, Some(request(false))).await.json().await.expect("json");
    assert_eq!(whole["content"][0]["signature"], ANTHROPIC_THINKING_SIGNATURE);
    assert_eq!(
        (whole["content"][1]["text"].clone(), whole["stop_reason"].clone()),
        (json!("Whole answer"), json!("max_tokens"))
    );
}

#[tokio::test]
async fn keys_versions_and_malformed_requests_are_refused_as_anthropic_does() {
    let fake = FakeUpstream::start(Protocol::Anthropic).await;
    fake.require_key("sk-ant");
    let wrong =
        send(&fake, "/v1/messages", &[("x-api-key", "nope"), ("anthropic-version", "2023-06-01")], Some(request(true)));
    assert_eq!(error_of(wrong.await).await.1, "authentication_error");
    let bearer = send(&fake, "/v1/messages", &[("authorization", "Bearer sk-ant")], Some(request(true)));
    assert_eq!(error_of(bearer.await).await.0, 401);
    let unversioned = send(&fake, "/v1/messages", &[("x-api-key", "sk-ant")], Some(request(true))).await;
    assert!(error_of(unversioned).await.2.contains("anthropic-version"));

    let call =
        json!({ "role": "assistant", "content": [{ "type": "tool_use", "id": "toolu_1", "name": "f", "input": {} }] });
    let result =
        json!({ "role": "user", "content": [{ "type": "tool_result", "tool_use_id": "toolu_1", "content": "ok" }] });
    let question = json!({ "role": "user", "content": "hi" });
    let cases = [
        (json!({ "model": "m", "messages": [question] }), "max_tokens: Field required"),
        (
            json!({ "model": "m", "max_tokens": 9, "messages": [{ "role": "system", "content": "s" }] }),
            "top-level `system`",
        ),
        (json!({ "model": "m", "max_tokens": 9, "messages": [question, result] }), "unexpected `tool_use_id`"),
        (json!({ "model": "m", "max_tokens": 9, "messages": [question, call, question] }), "without `tool_result`"),
        (
            json!({ "model": "m", "max_tokens": 9000, "thinking": { "type": "enabled", "budget_tokens": 512 },
                    "messages": [question] }),
            "greater than or equal to 1024",
        ),
        (
            json!({ "model": "m", "max_tokens": 2000, "thinking": { "type": "enabled", "budget_tokens": 2048 },
                    "messages": [question] }),
            "`max_tokens` must be greater",
        ),
        (
            json!({ "model": "m", "max_tokens": 9000, "temperature": 0.2,
                    "thinking": { "type": "enabled", "budget_tokens": 2048 }, "messages": [question] }),
            "`temperature` may only be set to 1",
        ),
        (
            json!({ "model": "m", "max_tokens": 9000, "thinking": { "type": "enabled", "budget_tokens": 2048 },
                    "messages": [question, call, result] }),
            "must start with a thinking block",
        ),
    ];
    for (body, expected) in cases {
        let (status, kind, message) = error_of(send(&fake, "/v1/messages", HEADERS, Some(body.clone())).await).await;
        assert_eq!((status, kind.as_str()), (400, "invalid_request_error"), "{body}");
        assert!(message.contains(expected), "{message} should say {expected}");
    }
    let signed = json!({ "role": "assistant", "content": [
        { "type": "thinking", "thinking": "t", "signature": "sig" },
        { "type": "tool_use", "id": "toolu_1", "name": "f", "input": {} }] });
    let body = json!({ "model": "m", "max_tokens": 9000, "stream": true,
                       "thinking": { "type": "enabled", "budget_tokens": 2048 }, "messages": [question, signed, result] });
    assert_eq!(send(&fake, "/v1/messages", HEADERS, Some(body)).await.status(), 200);
}

#[tokio::test]
async fn models_come_in_pages() {
    let fake = FakeUpstream::start(Protocol::Anthropic).await;
    fake.set_models((0..25).map(|i| format!("claude-{i:02}")));
    let first: Value = send(&fake, "/v1/models", HEADERS, None).await.json().await.expect("json");
    assert_eq!((first["data"].as_array().map(Vec::len), first["has_more"].clone()), (Some(20), json!(true)));
    assert_eq!((first["data"][0]["type"].clone(), first["last_id"].clone()), (json!("model"), json!("claude-19")));
    let rest: Value =
        send(&fake, "/v1/models?limit=10&after_id=claude-19", HEADERS, None).await.json().await.expect("json");
    assert_eq!((rest["data"].as_array().map(Vec::len), rest["has_more"].clone()), (Some(5), json!(false)));
    assert_eq!(send(&fake, "/v1/nope", HEADERS, None).await.status(), 404);
}
