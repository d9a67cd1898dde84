//! One provider conformance suite, written once and run against every protocol: each test
//! below takes the protocol, and `matrix!` instantiates it as `conformance::<protocol>::<test>`
//! for OpenAI, Anthropic, Gemini, Ollama and Azure, so that a failure names its protocol. Each
//! test drives `HttpChatClient` against `FakeUpstream`, which renders the same protocol-neutral
//! `Reply` in each protocol's real wire format (its framing, error bodies and awkward parts).
//!
//! What every protocol must do: stream text chunk by chunk with one `Finish` and the usage
//! after it; stream reasoning before text (Anthropic: with the thinking block's signature);
//! assemble tool calls with their names and arguments intact and finish with `ToolCalls`;
//! translate finish reasons and token counts; fail after the partial answer on an in-stream
//! error or a cut connection; map HTTP errors to kinds, a 429 with the provider's wait in
//! `retry_after` (and retry it when the wait is short, see `retry.rs`); refuse a wrong key as
//! `InvalidKey`; let a caller's timeout cut a stalled stream and cancel the upstream request
//! when the stream is dropped; list models (across pages); send the protocol's request shape
//! (auth header, system placement, token limits, API version), tool results, reasoning settings
//! with signed thinking, and images (`requests`); and download models where it can (Ollama).

use std::fmt;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use loquat_core::Secret;
use loquat_core::domain::{Protocol, TokenUsage};
use loquat_core::llm::{
    ChatClient, ChatEvent, ChatMessage, ChatRequest, ChatRole, ChatStream, Endpoint, FinishReason, ProviderError,
    ProviderErrorKind, ToolSpec,
};
use loquat_test_support::fake_upstream::{ANTHROPIC_THINKING_SIGNATURE, FakeUpstream, RecordedRequest, Reply};
use serde_json::{Value, json};

use crate::{client, client_without_retries, collect, reasoning_of, text_of};

mod requests;

use requests::{
    lists_models_across_pages, pulls_and_describes_models_where_the_protocol_can, sends_images_in_the_protocols_shape,
    sends_reasoning_settings_and_signed_thinking_back, sends_the_protocols_request_shape,
    sends_tool_results_back_in_the_protocols_shape,
};

const KEY: &str = "sk-conformance-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(10);
const AZURE_DEPLOYMENT: &str = "chat-deployment";

/// `conformance::<protocol>::<test>` for every protocol and every test named.
macro_rules! matrix {
    ($($test:ident),* $(,)?) => {
        mod openai { $( #[tokio::test] async fn $test() { super::$test(super::Protocol::OpenAi).await } )* }
        mod anthropic { $( #[tokio::test] async fn $test() { super::$test(super::Protocol::Anthropic).await } )* }
        mod gemini { $( #[tokio::test] async fn $test() { super::$test(super::Protocol::Gemini).await } )* }
        mod ollama { $( #[tokio::test] async fn $test() { super::$test(super::Protocol::Ollama).await } )* }
        mod azure { $( #[tokio::test] async fn $test() { super::$test(super::Protocol::Azure).await } )* }
    };
}

matrix!(
    streams_text_then_finish_and_usage,
    streams_reasoning_before_text,
    assembles_tool_calls,
    translates_finish_reasons,
    reports_token_usage,
    an_error_inside_the_stream_follows_the_partial_text,
    a_cut_connection_follows_the_partial_text,
    maps_http_errors_to_kinds,
    a_rate_limit_carries_the_providers_wait,
    a_short_rate_limit_wait_is_retried,
    a_wrong_key_is_an_invalid_key,
    a_stalled_stream_is_cut_by_the_callers_timeout_and_cancelled,
    dropping_the_stream_cancels_the_upstream_request,
    lists_models_across_pages,
    sends_the_protocols_request_shape,
    sends_tool_results_back_in_the_protocols_shape,
    sends_reasoning_settings_and_signed_thinking_back,
    sends_images_in_the_protocols_shape,
    pulls_and_describes_models_where_the_protocol_can,
);

/// One cell of the matrix: a fake speaking `wire`, and how Loquat addresses it.
struct Row {
    wire: Protocol,
    fake: FakeUpstream,
}

impl fmt::Display for Row {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire.as_str())
    }
}

impl Row {
    async fn start(wire: Protocol) -> Self {
        Self { wire, fake: FakeUpstream::start(wire).await }
    }

    fn endpoint(&self) -> Endpoint {
        self.endpoint_with_key(KEY)
    }

    fn endpoint_with_key(&self, key: &str) -> Endpoint {
        Endpoint::new(self.wire, self.fake.base_url(), Some(Secret::new(key)))
    }

    /// The model as the protocol names it (Azure: the deployment).
    fn model(&self) -> &'static str {
        match self.wire {
            Protocol::OpenAi => "gpt-4o-mini",
            Protocol::Anthropic => "claude-sonnet-4-5",
            Protocol::Gemini => "gemini-2.5-flash",
            Protocol::Ollama => "llama3.2",
            Protocol::Azure => AZURE_DEPLOYMENT,
        }
    }

    fn request(&self) -> ChatRequest {
        ChatRequest {
            model: self.model().to_owned(),
            messages: vec![ChatMessage::new(ChatRole::System, "Be brief."), ChatMessage::new(ChatRole::User, "Hi")],
            ..ChatRequest::default()
        }
    }

    async fn open(&self, request: &ChatRequest) -> ChatStream {
        let opened = tokio::time::timeout(WAIT, client().stream_chat(&self.endpoint(), request)).await;
        match opened {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => panic!("{self}: the stream does not open: {error}"),
            Err(_) => panic!("{self}: the stream did not open within {WAIT:?}"),
        }
    }

    /// Plays `reply` through the client: the events before the first error, and that error.
    async fn play(&self, reply: Reply, request: &ChatRequest) -> (Vec<ChatEvent>, Option<ProviderError>) {
        self.fake.push_reply(reply);
        let stream = self.open(request).await;
        match tokio::time::timeout(WAIT, collect(stream)).await {
            Ok(collected) => collected,
            Err(_) => panic!("{self}: the stream did not end within {WAIT:?}"),
        }
    }

    /// Plays `reply` and asserts it ran to its end without an error.
    async fn play_ok(&self, reply: Reply) -> Vec<ChatEvent> {
        let (events, error) = self.play(reply, &self.request()).await;
        assert!(error.is_none(), "{self}: unexpected error {error:?} after {events:?}");
        events
    }

    /// The error opening a stream with a client that does not retry.
    async fn open_error(&self, reply: Reply) -> ProviderError {
        self.fake.push_reply(reply);
        let (client, endpoint, request) = (client_without_retries(), self.endpoint(), self.request());
        match tokio::time::timeout(WAIT, client.stream_chat(&endpoint, &request)).await {
            Ok(Ok(_)) => panic!("{self}: the stream opened despite the scripted HTTP error"),
            Ok(Err(error)) => error,
            Err(_) => panic!("{self}: no answer within {WAIT:?}"),
        }
    }

    async fn last_request(&self) -> RecordedRequest {
        let count = self.fake.request_count();
        assert!(self.fake.wait_for_requests(count, WAIT).await);
        match self.fake.requests().pop() {
            Some(request) => request,
            None => panic!("{self}: the fake received no request"),
        }
    }
}

fn position(events: &[ChatEvent], wanted: impl Fn(&ChatEvent) -> bool) -> Option<usize> {
    events.iter().position(wanted)
}

fn last_position(events: &[ChatEvent], wanted: impl Fn(&ChatEvent) -> bool) -> Option<usize> {
    events.iter().rposition(wanted)
}

fn is_text(event: &ChatEvent) -> bool {
    matches!(event, ChatEvent::Text(_))
}

fn finishes(events: &[ChatEvent]) -> Vec<FinishReason> {
    events.iter().filter_map(|event| if let ChatEvent::Finish(reason) = event { Some(*reason) } else { None }).collect()
}

fn last_usage(events: &[ChatEvent]) -> Option<TokenUsage> {
    events.iter().rev().find_map(|event| if let ChatEvent::Usage(usage) = event { Some(*usage) } else { None })
}

async fn streams_text_then_finish_and_usage(wire: Protocol) {
    let row = Row::start(wire).await;
    let text = "Hello brave new wörld 👋 again";
    let events = row.play_ok(Reply::text(text).usage(10, 6)).await;
    assert_eq!(text_of(&events), text, "{row}: {events:?}");
    let texts = events.iter().filter(|event| is_text(event)).count();
    assert!(texts >= 6, "{row}: the text is streamed chunk by chunk, not gathered: {events:?}");
    let stray = events.iter().find(|event| matches!(event, ChatEvent::Reasoning(_) | ChatEvent::ToolCall(_)));
    assert!(stray.is_none(), "{row}: {stray:?} in a plain answer");
    assert_eq!(finishes(&events), [FinishReason::Stop], "{row}: one finish: {events:?}");
    let last_text = last_position(&events, is_text);
    let finish = position(&events, |event| matches!(event, ChatEvent::Finish(_)));
    let usage = last_position(&events, |event| matches!(event, ChatEvent::Usage(_)));
    assert!(finish > last_text && usage > last_text, "{row}: finish and usage come after the text: {events:?}");
    let expected = TokenUsage { prompt_tokens: 10, completion_tokens: 6, ..TokenUsage::default() };
    assert_eq!(last_usage(&events), Some(expected), "{row}: {events:?}");
}

async fn streams_reasoning_before_text(wire: Protocol) {
    let row = Row::start(wire).await;
    let events = row.play_ok(Reply::text("42.").reasoning("Let me think hard")).await;
    assert_eq!(reasoning_of(&events), "Let me think hard", "{row}: {events:?}");
    assert_eq!(text_of(&events), "42.", "{row}: {events:?}");
    let last_reasoning = last_position(&events, |event| matches!(event, ChatEvent::Reasoning(_)));
    let first_text = position(&events, is_text);
    assert!(last_reasoning < first_text, "{row}: reasoning comes before the text: {events:?}");
    let signatures: Vec<(usize, &String)> = events
        .iter()
        .enumerate()
        .filter_map(|(at, event)| if let ChatEvent::ReasoningSignature(sig) = event { Some((at, sig)) } else { None })
        .collect();
    if wire == Protocol::Anthropic {
        assert_eq!(signatures.len(), 1, "{row}: the thinking block's signature, once: {events:?}");
        let (at, signature) = signatures[0];
        assert_eq!(signature, ANTHROPIC_THINKING_SIGNATURE, "{row}");
        assert!(Some(at) > last_reasoning && Some(at) < first_text, "{row}: signed between blocks: {events:?}");
    }
    assert_eq!(finishes(&events), [FinishReason::Stop], "{row}: {events:?}");
}

async fn assembles_tool_calls(wire: Protocol) {
    let row = Row::start(wire).await;
    let mut request = row.request();
    request.tools = vec![
        ToolSpec {
            name: "get_weather".into(),
            description: "Weather by city".into(),
            parameters: json!({ "type": "object", "properties": { "city": { "type": "string" },
                                "unit": { "type": "string" } }, "required": ["city"] }),
        },
        ToolSpec {
            name: "get_time".into(),
            description: "Time in a zone".into(),
            parameters: json!({ "type": "object", "properties": { "zone": { "type": "string" } } }),
        },
    ];
    let weather = r#"{"city":"Paris","unit":"celsius","days":[1,2,3]}"#;
    let time = r#"{"zone":"Europe/Paris"}"#;
    let reply = Reply::text("Let me check.").tool_call("get_weather", weather).tool_call("get_time", time);
    let (events, error) = row.play(reply, &request).await;
    assert!(error.is_none(), "{row}: {error:?} after {events:?}");
    assert_eq!(text_of(&events), "Let me check.", "{row}: {events:?}");
    let calls: Vec<_> = events
        .iter()
        .filter_map(|event| if let ChatEvent::ToolCall(call) = event { Some(call) } else { None })
        .collect();
    let names: Vec<&str> = calls.iter().map(|call| call.name.as_str()).collect();
    assert_eq!(names, ["get_weather", "get_time"], "{row}: {events:?}");
    for (call, expected) in calls.iter().zip([weather, time]) {
        let arguments: Value = serde_json::from_str(&call.arguments)
            .unwrap_or_else(|error| panic!("{row}: arguments {:?} are not JSON: {error}", call.arguments));
        let expected: Value = serde_json::from_str(expected).expect("json");
        assert_eq!(arguments, expected, "{row}: the arguments of {}", call.name);
        assert!(!call.id.is_empty(), "{row}: every call has an id: {call:?}");
    }
    assert_ne!(calls[0].id, calls[1].id, "{row}: ids are distinct");
    assert_eq!(finishes(&events), [FinishReason::ToolCalls], "{row}: an answer ending in calls: {events:?}");
    let last_call = last_position(&events, |event| matches!(event, ChatEvent::ToolCall(_)));
    let finish = position(&events, |event| matches!(event, ChatEvent::Finish(_)));
    assert!(last_call < finish, "{row}: the calls come before the finish: {events:?}");
}

async fn translates_finish_reasons(wire: Protocol) {
    let row = Row::start(wire).await;
    let events = row.play_ok(Reply::text("cut short").finish_reason("length")).await;
    assert_eq!(finishes(&events), [FinishReason::Length], "{row}: {events:?}");
    let events = row.play_ok(Reply::text("done.")).await;
    assert_eq!(finishes(&events), [FinishReason::Stop], "{row}: {events:?}");
}

async fn reports_token_usage(wire: Protocol) {
    let row = Row::start(wire).await;
    let events = row.play_ok(Reply::text("Forty-two.").reasoning("one two three").usage(1234, 567)).await;
    // The reasoning tokens (three reasoning chunks) where the protocol reports them apart.
    let reasoning_tokens = match wire {
        Protocol::OpenAi | Protocol::Azure | Protocol::Gemini => 3,
        Protocol::Anthropic | Protocol::Ollama => 0,
    };
    let expected =
        TokenUsage { prompt_tokens: 1234, completion_tokens: 567, reasoning_tokens, ..TokenUsage::default() };
    assert_eq!(last_usage(&events), Some(expected), "{row}: {events:?}");
}

async fn an_error_inside_the_stream_follows_the_partial_text(wire: Protocol) {
    let row = Row::start(wire).await;
    let (events, error) = row.play(Reply::tokens(6).fail_after(3), &row.request()).await;
    assert_eq!(text_of(&events), "Lorem ipsum dolor", "{row}: {events:?}");
    assert!(finishes(&events).is_empty(), "{row}: no finish: {events:?}");
    let error = error.unwrap_or_else(|| panic!("{row}: the stream ends with an error"));
    assert_eq!(error.kind, ProviderErrorKind::Unavailable, "{row}: {error}");
}

async fn a_cut_connection_follows_the_partial_text(wire: Protocol) {
    let row = Row::start(wire).await;
    let (events, error) = row.play(Reply::tokens(6).disconnect_after(2), &row.request()).await;
    assert_eq!(text_of(&events), "Lorem ipsum", "{row}: {events:?}");
    let error = error.unwrap_or_else(|| panic!("{row}: a cut stream ends with an error"));
    assert_eq!(error.kind, ProviderErrorKind::Unavailable, "{row}: {error}");
}

async fn maps_http_errors_to_kinds(wire: Protocol) {
    use ProviderErrorKind::*;
    let row = Row::start(wire).await;
    let cases = [
        (401, InvalidKey),
        (403, InvalidKey),
        (404, ModelNotFound),
        (400, BadRequest),
        (500, Unavailable),
        (503, Unavailable),
    ];
    for (status, kind) in cases {
        let error = row.open_error(Reply::error(status)).await;
        assert_eq!((error.kind, error.status), (kind, Some(status)), "{row}: HTTP {status}: {error}");
        assert!(!error.detail.is_empty(), "{row}: the provider's words are kept");
    }
    let error = row.open_error(Reply::error(429)).await;
    assert_eq!((error.kind, error.status), (RateLimited, Some(429)), "{row}: HTTP 429: {error}");
}

async fn a_rate_limit_carries_the_providers_wait(wire: Protocol) {
    let row = Row::start(wire).await;
    let error = row.open_error(Reply::error(429).retry_after_secs(7)).await;
    assert_eq!((error.kind, error.status), (ProviderErrorKind::RateLimited, Some(429)), "{row}: {error}");
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)), "{row}: the provider's wait: {error}");
}

/// The retry layer (`retry.rs`) waits the provider's short `Retry-After` and tries again before
/// the first token: the caller sees the second attempt's answer.
async fn a_short_rate_limit_wait_is_retried(wire: Protocol) {
    let row = Row::start(wire).await;
    row.fake.push_reply(Reply::error(429).retry_after_secs(1));
    row.fake.set_default_reply(Reply::text("Second time lucky."));
    let started = Instant::now();
    let stream = row.open(&row.request()).await;
    let (events, error) = collect(stream).await;
    assert!(error.is_none(), "{row}: {error:?}");
    assert_eq!(text_of(&events), "Second time lucky.", "{row}");
    assert_eq!(row.fake.request_count(), 2, "{row}: one retry");
    assert!(started.elapsed() >= Duration::from_millis(950), "{row}: waited {:?}", started.elapsed());
}

async fn a_wrong_key_is_an_invalid_key(wire: Protocol) {
    let row = Row::start(wire).await;
    row.fake.require_key("sk-the-right-one");
    let wrong = row.endpoint();
    let opened = tokio::time::timeout(WAIT, client().stream_chat(&wrong, &row.request())).await;
    let error = match opened {
        Ok(Err(error)) => error,
        Ok(Ok(_)) => panic!("{row}: a wrong key was accepted"),
        Err(_) => panic!("{row}: no answer within {WAIT:?}"),
    };
    assert_eq!(error.kind, ProviderErrorKind::InvalidKey, "{row}: {error}");
    assert!(!format!("{error} {error:?}").contains(KEY), "{row}: the key never appears in an error");
    let error = client().list_models(&wrong).await.expect_err("a wrong key lists nothing");
    assert_eq!(error.kind, ProviderErrorKind::InvalidKey, "{row}: listing: {error}");
    let right = row.endpoint_with_key("sk-the-right-one");
    let stream = client().stream_chat(&right, &row.request()).await;
    let (events, error) = collect(stream.unwrap_or_else(|error| panic!("{row}: the right key: {error}"))).await;
    assert!(error.is_none() && !text_of(&events).is_empty(), "{row}: the right key works: {error:?}");
    let models = client().list_models(&right).await;
    assert!(models.is_ok_and(|models| !models.is_empty()), "{row}: the right key lists models");
}

async fn a_stalled_stream_is_cut_by_the_callers_timeout_and_cancelled(wire: Protocol) {
    let row = Row::start(wire).await;
    row.fake.push_reply(Reply::tokens(6).stall_after(2));
    let mut stream = row.open(&row.request()).await;
    let mut text = String::new();
    while text != "Lorem ipsum" {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Ok(ChatEvent::Text(piece)))) => text.push_str(&piece),
            Ok(Some(Ok(_))) => {}
            other => panic!("{row}: expected the first two chunks, got {other:?} after {text:?}"),
        }
    }
    let silence = tokio::time::timeout(Duration::from_millis(300), stream.next()).await;
    assert!(silence.is_err(), "{row}: the stalled stream yields nothing: {silence:?}");
    assert_eq!(row.fake.cancelled_streams(), 0, "{row}");
    drop(stream);
    assert!(row.fake.wait_for_cancellation(WAIT).await, "{row}: dropping the stream closes the upstream request");
}

async fn dropping_the_stream_cancels_the_upstream_request(wire: Protocol) {
    let row = Row::start(wire).await;
    row.fake.push_reply(Reply::tokens(10_000).delay_between_chunks(Duration::from_millis(2)));
    let mut stream = row.open(&row.request()).await;
    let mut texts = 0;
    while texts < 3 {
        match tokio::time::timeout(WAIT, stream.next()).await {
            Ok(Some(Ok(event))) => texts += usize::from(is_text(&event)),
            other => panic!("{row}: expected text, got {other:?}"),
        }
    }
    drop(stream);
    assert!(row.fake.wait_for_cancellation(WAIT).await, "{row}: the upstream request is cancelled");
    assert_eq!(row.fake.completed_streams(), 0, "{row}");
}
