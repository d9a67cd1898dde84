//! The OpenAI protocol end to end: streaming, reasoning, usage, request mapping, every HTTP
//! error kind, in-stream failures, disconnects, stalls, cancellation, model lists, transport
//! failures, and that the API key never appears in an error.

use std::time::Duration;

use futures_util::StreamExt;
use loquat_core::Secret;
use loquat_core::domain::{ModelParams, Protocol, TokenUsage};
use loquat_core::llm::{
    ChatClient, ChatEvent, ChatMessage, ChatRequest, ChatRole, Endpoint, FinishReason, ProviderErrorKind,
};
use loquat_providers::{HttpChatClient, HttpClientSettings};
use loquat_test_support::fake_openai::{FakeOpenAi, Reply};
use serde_json::{Value, json};

use crate::{client, client_without_retries, collect, reasoning_of, text_of};

const KEY: &str = "sk-test-0123456789abcdef";
const WAIT: Duration = Duration::from_secs(5);

fn endpoint(fake: &FakeOpenAi) -> Endpoint {
    Endpoint::new(Protocol::OpenAi, fake.base_url(), Some(Secret::new(KEY)))
}

fn request() -> ChatRequest {
    ChatRequest {
        model: "gpt-4o-mini".to_owned(),
        messages: vec![ChatMessage::new(ChatRole::System, "Be brief."), ChatMessage::new(ChatRole::User, "Hi")],
        params: ModelParams::default(),
        ..ChatRequest::default()
    }
}

async fn stream_reply(reply: Reply) -> (Vec<ChatEvent>, Option<loquat_core::llm::ProviderError>) {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(reply);
    let stream = client().stream_chat(&endpoint(&fake), &request()).await.expect("the stream opens");
    collect(stream).await
}

#[tokio::test]
async fn streams_plain_text_with_finish_and_usage() {
    let (events, error) = stream_reply(Reply::text("Hello brave new world").usage(10, 4)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "Hello brave new world");
    assert!(events.iter().filter(|event| matches!(event, ChatEvent::Text(_))).count() >= 4, "several chunks");
    let usage = TokenUsage { prompt_tokens: 10, completion_tokens: 4, ..TokenUsage::default() };
    assert_eq!(events[events.len() - 2..], [ChatEvent::Finish(FinishReason::Stop), ChatEvent::Usage(usage)]);
}

#[tokio::test]
async fn streams_reasoning_before_text() {
    let (events, error) = stream_reply(Reply::text("42.").reasoning("Let me think hard").usage(5, 9)).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(reasoning_of(&events), "Let me think hard");
    assert_eq!(text_of(&events), "42.");
    let first_text = events.iter().position(|event| matches!(event, ChatEvent::Text(_)));
    let last_reasoning = events.iter().rposition(|event| matches!(event, ChatEvent::Reasoning(_)));
    assert!(last_reasoning < first_text);
    assert!(events.contains(&ChatEvent::Usage(TokenUsage {
        prompt_tokens: 5,
        completion_tokens: 9,
        reasoning_tokens: 4,
        ..TokenUsage::default()
    })));
}

#[tokio::test]
async fn reports_other_finish_reasons() {
    let (events, _) = stream_reply(Reply::text("cut").finish_reason("length")).await;
    assert_eq!(events.last(), Some(&ChatEvent::Finish(FinishReason::Length)));
}

#[tokio::test]
async fn sends_parameters_only_when_set_and_the_key_as_bearer() {
    let fake = FakeOpenAi::start().await;
    let client = client();
    collect(client.stream_chat(&endpoint(&fake), &request()).await.expect("opens")).await;
    let mut with_params = request();
    with_params.params = ModelParams {
        temperature: Some(0.5),
        top_p: Some(0.9),
        presence_penalty: Some(0.1),
        frequency_penalty: Some(-0.5),
        max_tokens: Some(256),
    };
    let keyless = Endpoint { api_key: None, ..endpoint(&fake) };
    collect(client.stream_chat(&keyless, &with_params).await.expect("opens")).await;
    assert!(fake.wait_for_requests(2, WAIT).await);
    let requests = fake.requests();

    let plain = &requests[0];
    assert_eq!(plain.method, "POST");
    assert_eq!(plain.path, "/v1/chat/completions");
    assert_eq!(plain.header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert!(plain.header("user-agent").is_some_and(|agent| agent.starts_with("Loquat/")));
    let expected = json!({
        "model": "gpt-4o-mini",
        "messages": [{ "role": "system", "content": "Be brief." }, { "role": "user", "content": "Hi" }],
        "stream": true,
        "stream_options": { "include_usage": true },
    });
    assert_eq!(plain.body, expected, "no sampling parameter when none is set");

    let tuned = &requests[1];
    assert_eq!(tuned.header("authorization"), None);
    for (field, value) in [("temperature", 0.5), ("top_p", 0.9), ("presence_penalty", 0.1), ("frequency_penalty", -0.5)]
    {
        let sent = tuned.body[field].as_f64().expect("a number");
        assert!((sent - value).abs() < 1e-6, "{field}: {sent}");
    }
    assert_eq!(tuned.body["max_tokens"], 256);
}

fn openai_error(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
}

#[tokio::test]
async fn maps_every_http_error_to_its_kind() {
    use ProviderErrorKind::*;
    let cases = [
        (401, openai_error("Incorrect API key provided", "invalid_request_error", Some("invalid_api_key")), InvalidKey),
        (403, openai_error("Country not supported", "invalid_request_error", None), InvalidKey),
        (429, openai_error("Rate limit reached for requests", "requests", Some("rate_limit_exceeded")), RateLimited),
        (
            429,
            openai_error("You exceeded your current quota", "insufficient_quota", Some("insufficient_quota")),
            QuotaExceeded,
        ),
        (
            404,
            openai_error("The model `gpt-9` does not exist", "invalid_request_error", Some("model_not_found")),
            ModelNotFound,
        ),
        (
            400,
            openai_error("This model's maximum context length is 128000 tokens.", "invalid_request_error", None),
            ContextTooLong,
        ),
        (400, openai_error("Too long", "invalid_request_error", Some("context_length_exceeded")), ContextTooLong),
        (
            400,
            openai_error("Flagged by the content filter", "invalid_request_error", Some("content_filter")),
            ContentFiltered,
        ),
        (400, openai_error("Invalid value for 'temperature'", "invalid_request_error", None), BadRequest),
        (500, openai_error("The server had an error", "server_error", None), Unavailable),
        (503, json!("upstream connect error or disconnect/reset before headers"), Unavailable),
    ];
    let fake = FakeOpenAi::start().await;
    let client = client_without_retries();
    for (status, body, kind) in cases {
        let message = body["error"]["message"].as_str().or(body.as_str()).unwrap_or_default().to_owned();
        fake.push_reply(Reply::http_error(status, body));
        let error = client.stream_chat(&endpoint(&fake), &request()).await.err().expect("an error");
        assert_eq!((error.kind, error.status), (kind, Some(status)), "{error}");
        assert!(error.detail.contains(&message), "the provider's message is kept: {error}");
    }
}

#[tokio::test]
async fn rate_limits_and_server_errors_before_the_first_token_are_retried() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::http_error(
        429,
        openai_error("Rate limit reached", "requests", Some("rate_limit_exceeded")),
    ));
    fake.push_reply(Reply::http_error(503, json!("upstream connect error")));
    fake.push_reply(Reply::text("third time lucky"));
    let stream = client().stream_chat(&endpoint(&fake), &request()).await.expect("retried until it answered");
    let (events, error) = collect(stream).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text_of(&events), "third time lucky");
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn an_error_inside_the_stream_comes_after_the_partial_text() {
    let (events, error) = stream_reply(Reply::tokens(6).fail_after(3)).await;
    assert_eq!(text_of(&events), "Lorem ipsum dolor");
    let error = error.expect("an error");
    assert_eq!((error.kind, error.status), (ProviderErrorKind::Unavailable, None));
    assert!(error.detail.contains("The server had an error"), "{}", error.detail);
}

#[tokio::test]
async fn an_abrupt_disconnect_is_unavailable() {
    let (events, error) = stream_reply(Reply::tokens(6).disconnect_after(2)).await;
    assert_eq!(text_of(&events), "Lorem ipsum");
    let error = error.expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unavailable);
    assert!(error.detail.starts_with("the provider closed the stream before finishing"), "{}", error.detail);
}

#[tokio::test]
async fn a_stalled_stream_is_cancelled_when_dropped() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::tokens(6).stall_after(1));
    let mut stream = client().stream_chat(&endpoint(&fake), &request()).await.expect("opens");
    let first = tokio::time::timeout(WAIT, stream.next()).await.expect("the first chunk arrives");
    assert_eq!(first.and_then(Result::ok), Some(ChatEvent::Text("Lorem".to_owned())));
    assert!(tokio::time::timeout(Duration::from_millis(300), stream.next()).await.is_err(), "nothing more");
    assert_eq!(fake.cancelled_streams(), 0);
    drop(stream);
    assert!(fake.wait_for_cancellation(WAIT).await, "dropping the stream closes the upstream request");
}

#[tokio::test]
async fn dropping_a_stream_cancels_the_upstream_request() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::tokens(10_000).delay_between_chunks(Duration::from_millis(2)));
    let mut stream = client().stream_chat(&endpoint(&fake), &request()).await.expect("opens");
    for _ in 0..3 {
        assert!(matches!(stream.next().await, Some(Ok(ChatEvent::Text(_)))));
    }
    drop(stream);
    assert!(fake.wait_for_cancellation(WAIT).await);
    assert_eq!(fake.completed_streams(), 0);
}

#[tokio::test]
async fn a_silent_provider_times_out_with_the_read_timeout() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::tokens(3).stall_after(1));
    let settings =
        HttpClientSettings { read_timeout: Some(Duration::from_millis(200)), ..HttpClientSettings::default() };
    let client = HttpChatClient::new(&settings).expect("builds");
    let (events, error) = collect(client.stream_chat(&endpoint(&fake), &request()).await.expect("opens")).await;
    assert_eq!(text_of(&events), "Lorem");
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::Timeout));
}

#[tokio::test]
async fn lists_models_in_the_providers_order() {
    let fake = FakeOpenAi::start().await;
    fake.set_models(["gpt-4o", "deepseek-chat", "a-model"]);
    let models = client().list_models(&endpoint(&fake)).await.expect("models");
    assert_eq!(models, ["gpt-4o", "deepseek-chat", "a-model"]);
    assert!(fake.wait_for_requests(1, WAIT).await);
    assert_eq!(fake.requests()[0].path, "/v1/models");

    fake.require_key("sk-another-key");
    let error = client().list_models(&endpoint(&fake)).await.expect_err("wrong key");
    assert_eq!((error.kind, error.status), (ProviderErrorKind::InvalidKey, Some(401)));
    assert!(error.detail.contains("Incorrect API key provided"));
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let port = listener.local_addr().expect("an address").port();
    drop(listener);
    let endpoint =
        Endpoint::new(Protocol::OpenAi, format!("http://user:{KEY}@127.0.0.1:{port}/v1"), Some(Secret::new(KEY)));
    let client = client();
    let error = client.stream_chat(&endpoint, &request()).await.err().expect("an error");
    assert_eq!((error.kind, error.status), (ProviderErrorKind::Unreachable, None), "{error}");
    assert!(!error.detail.contains(KEY), "{}", error.detail);
    let error = client.list_models(&endpoint).await.expect_err("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unreachable);
    assert!(!error.detail.contains(KEY), "{}", error.detail);
}

#[tokio::test]
async fn the_api_key_never_appears_in_an_error() {
    let fake = FakeOpenAi::start().await;
    let echoed = format!("Incorrect API key provided: {KEY}.");
    fake.push_reply(Reply::http_error(401, openai_error(&echoed, "invalid_request_error", Some("invalid_api_key"))));
    let error = client().stream_chat(&endpoint(&fake), &request()).await.err().expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::InvalidKey);
    assert_eq!(error.detail, "Incorrect API key provided: ***.");
    assert!(!format!("{error} {error:?}").contains(KEY));

    let wrong_key = Endpoint { base_url: format!("{}/", fake.base_url()), ..endpoint(&fake) };
    fake.require_key("sk-the-right-one");
    let error = client().list_models(&wrong_key).await.expect_err("an error");
    assert!(!format!("{error} {error:?}").contains(KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_concurrent_streams_share_one_client() {
    let streams: usize = std::env::var("LOQUAT_IT_STREAMS").ok().and_then(|n| n.parse().ok()).unwrap_or(200);
    let fake = FakeOpenAi::start().await;
    fake.set_recording(false);
    fake.set_default_reply(Reply::tokens(50).first_chunk_delay(Duration::from_millis(50)).usage(3, 50));
    let client = client();
    let endpoint = endpoint(&fake);
    let tasks: Vec<_> = (0..streams)
        .map(|_| {
            let (client, endpoint) = (client.clone(), endpoint.clone());
            tokio::spawn(async move {
                let (events, error) = collect(client.stream_chat(&endpoint, &request()).await.expect("opens")).await;
                assert!(error.is_none(), "{error:?}");
                text_of(&events).len()
            })
        })
        .collect();
    let expected = Reply::tokens(50).content().len();
    for task in tasks {
        assert_eq!(task.await.expect("the task runs"), expected);
    }
    assert_eq!((fake.request_count(), fake.completed_streams(), fake.cancelled_streams()), (streams, streams, 0));
    assert!(fake.requests().is_empty(), "recording was off");
}
