//! Anthropic stream parsing over wire transcripts written from the documented examples (text,
//! pings, thinking with signatures, tool use, cache usage, stop reasons, errors, early ends),
//! and the mapping of error bodies, in-stream errors and `retry-after`.

use bytes::Bytes;
use futures_util::{StreamExt, stream as futures_stream};
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ProviderError, ProviderErrorKind, ToolCall};
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use super::stream::{MessageHandler, message_events};
use super::*;
use crate::stream::EventAdapter;

/// Parses `reads` (each one a TCP read) and collects the events, stopping at the first error.
async fn parse(reads: &[&[u8]]) -> (Vec<ChatEvent>, Option<ProviderError>) {
    let reads: Vec<Result<Bytes, ProviderError>> = reads.iter().map(|read| Ok(Bytes::copy_from_slice(read))).collect();
    let mut stream = EventAdapter::sse(futures_stream::iter(reads), MessageHandler::default());
    let (mut events, mut error) = (Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(failure) => {
                assert!(stream.next().await.is_none(), "the stream ends after an error");
                error = Some(failure);
            }
        }
    }
    (events, error)
}

/// One SSE event as Anthropic frames it: the type as `event:` and again inside the JSON.
fn sse(data: &str) -> String {
    let value: Value = serde_json::from_str(data).expect("json");
    let kind = value["type"].as_str().expect("a type");
    format!("event: {kind}\ndata: {data}\n\n")
}

fn message_start(usage: &str) -> String {
    sse(&format!(
        r#"{{"type":"message_start","message":{{"id":"msg_01","type":"message","role":"assistant","content":[],"model":"claude-sonnet-4-5","stop_reason":null,"stop_sequence":null,"usage":{usage}}}}}"#
    ))
}

fn block_start(index: usize, block: &str) -> String {
    sse(&format!(r#"{{"type":"content_block_start","index":{index},"content_block":{block}}}"#))
}

fn delta(index: usize, delta: &str) -> String {
    sse(&format!(r#"{{"type":"content_block_delta","index":{index},"delta":{delta}}}"#))
}

fn text_delta(index: usize, text: &str) -> String {
    delta(index, &format!(r#"{{"type":"text_delta","text":{}}}"#, serde_json::to_string(text).expect("json")))
}

fn block_stop(index: usize) -> String {
    sse(&format!(r#"{{"type":"content_block_stop","index":{index}}}"#))
}

fn message_delta(stop_reason: &str, output_tokens: u32) -> String {
    sse(&format!(
        r#"{{"type":"message_delta","delta":{{"stop_reason":"{stop_reason}","stop_sequence":null}},"usage":{{"output_tokens":{output_tokens}}}}}"#
    ))
}

fn message_stop() -> String {
    sse(r#"{"type":"message_stop"}"#)
}

fn ping() -> String {
    sse(r#"{"type": "ping"}"#)
}

fn text(value: &str) -> ChatEvent {
    ChatEvent::Text(value.to_owned())
}

fn usage(prompt: u32, completion: u32) -> ChatEvent {
    ChatEvent::Usage(TokenUsage { prompt_tokens: prompt, completion_tokens: completion, ..TokenUsage::default() })
}

/// The documented basic stream: "Hello" "!" with a ping in between.
fn hello() -> String {
    [
        message_start(r#"{"input_tokens":25,"output_tokens":1}"#),
        block_start(0, r#"{"type":"text","text":""}"#),
        ping(),
        text_delta(0, "Hello"),
        text_delta(0, "! héllo 👋"),
        block_stop(0),
        message_delta("end_turn", 15),
        message_stop(),
    ]
    .concat()
}

#[tokio::test]
async fn plain_text_with_finish_and_usage() {
    let (events, error) = parse(&[hello().as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, vec![text("Hello"), text("! héllo 👋"), ChatEvent::Finish(FinishReason::Stop), usage(25, 15)]);
}

#[tokio::test]
async fn pings_crlf_and_json_split_across_reads() {
    let whole = hello().replace('\n', "\r\n");
    let bytes = whole.as_bytes();
    let emoji = whole.find('👋').expect("emoji") + 2; // inside the 4-byte character
    let reads: Vec<&[u8]> = vec![&bytes[..9], &bytes[9..200], &bytes[200..emoji], &bytes[emoji..]];
    let (events, error) = parse(&reads).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events[..2], [text("Hello"), text("! héllo 👋")]);
    assert_eq!(events.len(), 4);
}

#[tokio::test]
async fn thinking_with_its_signature_then_text() {
    let body = [
        message_start(r#"{"input_tokens":12,"output_tokens":1}"#),
        block_start(0, r#"{"type":"thinking","thinking":""}"#),
        delta(0, r#"{"type":"thinking_delta","thinking":"Let me solve this step by step:\n\n1. 27 * 453"}"#),
        delta(0, r#"{"type":"thinking_delta","thinking":"\n2. 453 = 400 + 50 + 3"}"#),
        delta(0, r#"{"type":"signature_delta","signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3h"}"#),
        block_stop(0),
        block_start(1, r#"{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"}"#),
        block_stop(1),
        block_start(2, r#"{"type":"text","text":""}"#),
        text_delta(2, "27 * 453 = 12,231"),
        block_stop(2),
        message_delta("end_turn", 120),
        message_stop(),
    ]
    .concat();
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        vec![
            ChatEvent::Reasoning("Let me solve this step by step:\n\n1. 27 * 453".into()),
            ChatEvent::Reasoning("\n2. 453 = 400 + 50 + 3".into()),
            ChatEvent::ReasoningSignature("EqQBCgIYAhIM1gbcDa9GJwZA2b3h".into()),
            text("27 * 453 = 12,231"),
            ChatEvent::Finish(FinishReason::Stop),
            usage(12, 120),
        ]
    );
}

#[tokio::test]
async fn tool_use_is_assembled_from_its_json_pieces_and_emitted_at_the_block_end() {
    let json = |piece: &str| {
        let piece = serde_json::to_string(piece).expect("json");
        format!(r#"{{"type":"input_json_delta","partial_json":{piece}}}"#)
    };
    let body = [
        message_start(r#"{"input_tokens":472,"output_tokens":2}"#),
        block_start(0, r#"{"type":"text","text":""}"#),
        text_delta(0, "Okay, let me check."),
        block_stop(0),
        block_start(1, r#"{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}"#),
        delta(1, &json("")),
        delta(1, &json(r#"{"location":"#)),
        delta(1, &json(r#" "San Francisco, CA""#)),
        delta(1, &json(r#", "unit": "fahrenheit"}"#)),
        block_stop(1),
        block_start(2, r#"{"type":"tool_use","id":"toolu_02","name":"get_time","input":{}}"#),
        block_stop(2),
        message_delta("tool_use", 89),
        message_stop(),
    ]
    .concat();
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        vec![
            text("Okay, let me check."),
            ChatEvent::ToolCall(ToolCall {
                id: "toolu_01T1x1fJ34qAmk2tNTrN7Up6".into(),
                name: "get_weather".into(),
                arguments: r#"{"location": "San Francisco, CA", "unit": "fahrenheit"}"#.into(),
            }),
            ChatEvent::ToolCall(ToolCall { id: "toolu_02".into(), name: "get_time".into(), arguments: "{}".into() }),
            ChatEvent::Finish(FinishReason::ToolCalls),
            usage(472, 89),
        ]
    );
}

#[tokio::test]
async fn cache_tokens_count_as_prompt_tokens() {
    let body = [
        message_start(
            r#"{"input_tokens":10,"cache_creation_input_tokens":2000,"cache_read_input_tokens":3000,"output_tokens":1}"#,
        ),
        block_start(0, r#"{"type":"text","text":""}"#),
        text_delta(0, "ok"),
        block_stop(0),
        message_delta("end_turn", 7),
        message_stop(),
    ]
    .concat();
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    let expected = TokenUsage {
        prompt_tokens: 5010,
        completion_tokens: 7,
        reasoning_tokens: 0,
        cache_read_tokens: 3000,
        cache_write_tokens: 2000,
    };
    assert_eq!(events.last(), Some(&ChatEvent::Usage(expected)));
}

#[tokio::test]
async fn stop_reasons_map_to_finish_reasons() {
    let cases = [
        ("end_turn", FinishReason::Stop),
        ("stop_sequence", FinishReason::Stop),
        ("max_tokens", FinishReason::Length),
        ("tool_use", FinishReason::ToolCalls),
        ("refusal", FinishReason::ContentFilter),
        ("pause_turn", FinishReason::Other),
    ];
    for (reason, expected) in cases {
        let body = [message_start(r#"{"input_tokens":1}"#), message_delta(reason, 3), message_stop()].concat();
        let (events, error) = parse(&[body.as_bytes()]).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(events, vec![ChatEvent::Finish(expected), usage(1, 3)], "{reason}");
    }
}

#[tokio::test]
async fn an_error_event_fails_after_the_partial_text() {
    let body = [
        message_start(r#"{"input_tokens":5}"#),
        block_start(0, r#"{"type":"text","text":""}"#),
        text_delta(0, "partial"),
        sse(r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#),
        text_delta(0, "ignored"),
    ]
    .concat();
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert_eq!(events, vec![text("partial")]);
    let error = error.expect("an error");
    assert_eq!((error.kind, error.detail.as_str(), error.status), (ProviderErrorKind::Unavailable, "Overloaded", None));
    assert!(error.is_retryable());
    let (_, error) = parse(&[b"event: error\ndata: upstream went away\n\n"]).await;
    assert_eq!(
        error.map(|error| (error.kind, error.detail)),
        Some((ProviderErrorKind::Unavailable, "upstream went away".into()))
    );
    let rate = sse(r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#);
    let (_, error) = parse(&[rate.as_bytes()]).await;
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::RateLimited));
}

#[tokio::test]
async fn an_early_end_is_unavailable_unless_a_stop_reason_arrived() {
    let cut =
        [message_start(r#"{"input_tokens":5}"#), block_start(0, r#"{"type":"text","text":""}"#), text_delta(0, "cut")]
            .concat();
    let (events, error) = parse(&[cut.as_bytes()]).await;
    assert_eq!(events, vec![text("cut")]);
    let error = error.expect("an error");
    assert_eq!(
        (error.kind, error.detail.as_str()),
        (ProviderErrorKind::Unavailable, "the provider closed the stream before finishing")
    );

    let stopped = format!("{cut}{}{}", block_stop(0), message_delta("max_tokens", 4));
    let (events, error) = parse(&[stopped.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, vec![text("cut"), ChatEvent::Finish(FinishReason::Length), usage(5, 4)]);

    let reads = vec![Ok(Bytes::from(stopped)), Err(errors::closed_early(Some("reset")))];
    let events: Vec<_> = EventAdapter::sse(futures_stream::iter(reads), MessageHandler::default()).collect().await;
    assert!(events.iter().all(Result::is_ok), "a broken connection after the stop reason is no failure");
    assert_eq!(events.len(), 3);
}

#[tokio::test]
async fn a_transport_error_before_the_end_is_that_error_and_data_after_message_stop_is_ignored() {
    let reads = vec![Ok(Bytes::from(text_delta(0, "a"))), Err(errors::closed_early(Some("reset")))];
    let mut stream = EventAdapter::sse(futures_stream::iter(reads), MessageHandler::default());
    assert_eq!(stream.next().await.map(Result::ok), Some(Some(text("a"))));
    let error = stream.next().await.and_then(Result::err).expect("an error");
    assert!(error.detail.ends_with(": reset"), "{}", error.detail);
    assert!(stream.next().await.is_none());

    let body = format!("{}{}", hello(), text_delta(0, "late"));
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none());
    assert!(!events.contains(&text("late")));
}

#[tokio::test]
async fn unknown_events_are_skipped_and_non_json_is_a_protocol_error() {
    let body =
        [sse(r#"{"type":"future_event","x":1}"#), delta(0, r#"{"type":"citations_delta","citation":{}}"#), hello()]
            .concat();
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events.len(), 4);
    let (_, error) = parse(&[b"data: <html>oops</html>\n\n"]).await;
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::Protocol));
}

#[test]
fn a_whole_message_becomes_events() {
    let body = br#"{"id":"msg_1","type":"message","role":"assistant","content":[{"type":"thinking","thinking":"hm","signature":"sig"},{"type":"text","text":"hi"},{"type":"tool_use","id":"toolu_1","name":"f","input":{"a":1}}],"stop_reason":"tool_use","usage":{"input_tokens":3,"output_tokens":4}}"#;
    let events = message_events(body).expect("events");
    assert_eq!(
        events,
        vec![
            ChatEvent::Reasoning("hm".into()),
            ChatEvent::ReasoningSignature("sig".into()),
            text("hi"),
            ChatEvent::ToolCall(ToolCall { id: "toolu_1".into(), name: "f".into(), arguments: r#"{"a":1}"#.into() }),
            ChatEvent::Finish(FinishReason::ToolCalls),
            usage(3, 4),
        ]
    );
    let error = message_events(br#"{"type":"error","error":{"type":"api_error","message":"boom"}}"#);
    assert_eq!(error.err().map(|error| error.kind), Some(ProviderErrorKind::Unavailable));
}

#[test]
fn error_bodies_map_to_kinds() {
    use ProviderErrorKind::*;
    let body = |kind: &str, message: &str| {
        format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"{message}"}},"request_id":"req_1"}}"#)
    };
    let cases = [
        (401, body("authentication_error", "invalid x-api-key"), InvalidKey),
        (403, body("permission_error", "Your API key does not have permission"), InvalidKey),
        (404, body("not_found_error", "model: claude-nope"), ModelNotFound),
        (429, body("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"), RateLimited),
        (529, body("overloaded_error", "Overloaded"), Unavailable),
        (500, body("api_error", "Internal server error"), Unavailable),
        (400, body("invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"), ContextTooLong),
        (
            400,
            body("invalid_request_error", "input length and `max_tokens` exceed context limit: 197000 + 8192 > 200000"),
            ContextTooLong,
        ),
        (413, body("request_too_large", "Request exceeds the maximum allowed number of bytes."), ContextTooLong),
        (400, body("invalid_request_error", "Your credit balance is too low to access the Anthropic API."), QuotaExceeded),
        (402, body("billing_error", "Payment required"), QuotaExceeded),
        (400, body("invalid_request_error", "messages: roles must alternate"), BadRequest),
        (
            429,
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"spend limit","details":{"error_code":"enforced_spend_limit_reached"}}}"#.to_owned(),
            QuotaExceeded,
        ),
    ];
    for (status, body, expected) in cases {
        let error = into_error(body_error_info(body.as_bytes(), None), Some(status));
        assert_eq!((error.kind, error.status), (expected, Some(status)), "{body}");
    }
    let error =
        into_error(body_error_info(&body("not_found_error", "model: claude-nope").into_bytes(), None), Some(404));
    assert_eq!(error.detail, "model: claude-nope");
}

#[test]
fn bodies_that_are_not_anthropic_errors_keep_a_readable_excerpt() {
    let info = body_error_info(b"<html>\n  <body>Bad   Gateway</body>\n</html>", Some("Bad Gateway"));
    assert_eq!(info.message, "<html> <body>Bad Gateway</body> </html>");
    assert_eq!(body_error_info(b"", Some("Bad Gateway")).message, "Bad Gateway");
    let error = into_error(body_error_info(b"", Some("Bad Gateway")), Some(502));
    assert_eq!(error.kind, ProviderErrorKind::Unavailable);
}

#[test]
fn rate_limits_and_overloads_carry_retry_after() {
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, HeaderValue::from_static("17"));
    let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"Rate limited"}}"#;
    let error = http_error(429, Some("Too Many Requests"), body, errors::retry_after(&headers));
    assert_eq!((error.kind, error.retry_after), (ProviderErrorKind::RateLimited, Some(Duration::from_secs(17))));
    assert!(error.is_retryable());
    let body = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
    let error = http_error(529, None, body, None);
    assert_eq!((error.kind, error.status, error.retry_after), (ProviderErrorKind::Unavailable, Some(529), None));
    assert!(error.is_retryable());
}

#[test]
fn urls_accept_the_host_or_the_v1_base() {
    assert_eq!(api_url("https://api.anthropic.com", "messages"), "https://api.anthropic.com/v1/messages");
    assert_eq!(api_url("https://api.anthropic.com/", "messages"), "https://api.anthropic.com/v1/messages");
    assert_eq!(api_url("https://proxy.example/v1/ ", "models"), "https://proxy.example/v1/models");
    assert_eq!(api_url("https://proxy.example/anthropic", "messages"), "https://proxy.example/anthropic/v1/messages");
}

#[test]
fn the_key_goes_in_a_sensitive_x_api_key_header_with_the_version() {
    use loquat_core::Secret;
    use loquat_core::domain::Protocol;

    let endpoint = Endpoint::new(Protocol::Anthropic, "https://api.anthropic.com", Some(Secret::new("sk-ant-123")));
    let builder = reqwest::Client::new().post(api_url(&endpoint.base_url, "messages"));
    let request = authorize(builder, &endpoint).expect("headers").build().expect("a request");
    let key = request.headers().get("x-api-key").expect("the key header");
    assert!(key.is_sensitive());
    assert_eq!(key.to_str().ok(), Some("sk-ant-123"));
    assert_eq!(request.headers().get("anthropic-version").and_then(|v| v.to_str().ok()), Some(API_VERSION));
    assert!(request.headers().get("authorization").is_none());
    assert!(!format!("{:?}", request.headers()).contains("sk-ant-123"));
    let keyless = Endpoint::new(Protocol::Anthropic, "http://localhost:8080/v1", None);
    let request = authorize(reqwest::Client::new().get("http://localhost:8080/v1/models"), &keyless)
        .expect("headers")
        .build()
        .expect("a request");
    assert!(request.headers().get("x-api-key").is_none());
    let bad = Endpoint::new(Protocol::Anthropic, "http://h", Some(Secret::new("bad\nkey")));
    let error = authorize(reqwest::Client::new().get("http://h"), &bad).err().map(|error| (error.kind, error.detail));
    assert!(matches!(error, Some((ProviderErrorKind::InvalidKey, detail)) if !detail.contains("bad")));
}
