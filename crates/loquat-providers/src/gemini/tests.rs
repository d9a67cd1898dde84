//! Gemini stream, error and URL tests over transcripts written from Google's documented
//! examples (`streamGenerateContent?alt=sse` answers, error bodies, `models.list` pages).

use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, stream as futures_stream};
use loquat_core::Secret;
use loquat_core::domain::{Protocol, TokenUsage};
use loquat_core::llm::{ChatEvent, FinishReason, ProviderErrorKind, ToolCall};
use serde_json::{Value, json};

use super::error::GoogleError;
use super::*;
use crate::stream::EventAdapter;

/// Parses `reads` (each one a TCP read) and collects the events and the error that ends them.
async fn parse(reads: &[&[u8]]) -> (Vec<ChatEvent>, Option<ProviderError>) {
    let reads: Vec<Result<Bytes, ProviderError>> = reads.iter().map(|read| Ok(Bytes::copy_from_slice(read))).collect();
    let mut stream = EventAdapter::sse(futures_stream::iter(reads), ResponseHandler::new("t"));
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

/// One SSE event as Google sends it (CRLF line ends).
fn sse(response: &Value) -> String {
    format!("data: {response}\r\n\r\n")
}

/// A response with one candidate holding `parts`, and a finish reason when given.
fn response(parts: Value, finish: Option<&str>) -> Value {
    let mut candidate = json!({ "content": { "parts": parts, "role": "model" }, "index": 0 });
    if let Some(reason) = finish {
        candidate["finishReason"] = json!(reason);
    }
    json!({ "candidates": [candidate], "modelVersion": "gemini-2.5-flash", "responseId": "r1" })
}

fn text(value: &str) -> ChatEvent {
    ChatEvent::Text(value.to_owned())
}

fn usage(prompt: u32, completion: u32, reasoning: u32) -> ChatEvent {
    ChatEvent::Usage(TokenUsage {
        prompt_tokens: prompt,
        completion_tokens: completion,
        reasoning_tokens: reasoning,
        ..TokenUsage::default()
    })
}

#[tokio::test]
async fn text_over_several_events_split_across_reads_with_the_last_usage() {
    let mut first = response(json!([{ "text": "Hello" }]), None);
    first["usageMetadata"] = json!({ "promptTokenCount": 5, "candidatesTokenCount": 1, "totalTokenCount": 6 });
    let mut last = response(json!([{ "text": " wörld 👋" }]), Some("STOP"));
    last["usageMetadata"] = json!({
        "promptTokenCount": 5, "candidatesTokenCount": 4, "totalTokenCount": 9, "cachedContentTokenCount": 2,
        "promptTokensDetails": [{ "modality": "TEXT", "tokenCount": 5 }],
    });
    let whole = format!("{}{}", sse(&first), sse(&last));
    let bytes = whole.as_bytes();
    let emoji = whole.find('👋').expect("emoji") + 2; // inside the 4-byte character
    let (events, error) = parse(&[&bytes[..9], &bytes[9..60], &bytes[60..emoji], &bytes[emoji..]]).await;
    assert!(error.is_none(), "{error:?}");
    let usage = TokenUsage { prompt_tokens: 5, completion_tokens: 4, cache_read_tokens: 2, ..TokenUsage::default() };
    assert_eq!(
        events,
        vec![text("Hello"), text(" wörld 👋"), ChatEvent::Finish(FinishReason::Stop), ChatEvent::Usage(usage)]
    );
}

#[tokio::test]
async fn thought_parts_are_reasoning_and_thinking_counts_as_output() {
    let thought = response(json!([{ "text": "**Weighing** the options", "thought": true }]), None);
    let mut answer = response(json!([{ "text": "Take the train." }]), Some("STOP"));
    answer["usageMetadata"] = json!({
        "promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 30, "totalTokenCount": 44,
    });
    let body = format!("{}{}", sse(&thought), sse(&answer)).replace("\r\n", "\n");
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        vec![
            ChatEvent::Reasoning("**Weighing** the options".into()),
            text("Take the train."),
            ChatEvent::Finish(FinishReason::Stop),
            usage(10, 34, 30),
        ]
    );
}

#[tokio::test]
async fn function_calls_are_whole_with_generated_ids_and_the_first_signature() {
    let calls = response(
        json!([
            { "functionCall": { "name": "get_weather", "args": { "city": "Paris" } }, "thoughtSignature": "CiQB0e2Kb2s=" },
            { "functionCall": { "name": "get_time", "args": {} } },
        ]),
        Some("STOP"),
    );
    let (events, error) = parse(&[sse(&calls).as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    let call = |id: &str, name: &str, arguments: &str| {
        ChatEvent::ToolCall(ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() })
    };
    assert_eq!(
        events,
        vec![
            ChatEvent::ReasoningSignature("CiQB0e2Kb2s=".into()),
            call("call_t_0", "get_weather", r#"{"city":"Paris"}"#),
            call("call_t_1", "get_time", "{}"),
            ChatEvent::Finish(FinishReason::ToolCalls),
        ]
    );
    let tags = [ResponseHandler::fresh_id_tag(), ResponseHandler::fresh_id_tag()];
    assert_ne!(tags[0], tags[1]);
}

#[tokio::test]
async fn finish_reasons_map_to_ours() {
    let cases = [
        ("MAX_TOKENS", FinishReason::Length),
        ("MALFORMED_FUNCTION_CALL", FinishReason::Other),
        ("RECITATION", FinishReason::ContentFilter),
        ("SAFETY", FinishReason::ContentFilter),
        ("SOMETHING_NEW", FinishReason::Other),
    ];
    for (reason, expected) in cases {
        let (events, error) = parse(&[sse(&response(json!([{ "text": "partial" }]), Some(reason))).as_bytes()]).await;
        assert!(error.is_none(), "{reason}: {error:?}");
        assert_eq!(events, vec![text("partial"), ChatEvent::Finish(expected)], "{reason}");
    }
}

#[tokio::test]
async fn a_blocked_prompt_is_a_content_filtered_error() {
    let blocked = json!({
        "promptFeedback": { "blockReason": "SAFETY", "safetyRatings": [
            { "category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true },
        ]},
        "usageMetadata": { "promptTokenCount": 8, "totalTokenCount": 8 },
    });
    let (events, error) = parse(&[sse(&blocked).as_bytes()]).await;
    assert!(events.is_empty());
    let error = error.expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::ContentFiltered);
    assert_eq!(error.detail, "the provider's safety filters blocked the prompt (SAFETY)");
}

#[tokio::test]
async fn a_candidate_blocked_before_any_text_is_a_content_filtered_error() {
    let mut blocked = json!({ "candidates": [{ "finishReason": "SAFETY", "index": 0, "safetyRatings": [
        { "category": "HARM_CATEGORY_HARASSMENT", "probability": "MEDIUM", "blocked": true },
    ]}]});
    blocked["usageMetadata"] = json!({ "promptTokenCount": 8, "totalTokenCount": 8 });
    let thinking = response(json!([{ "text": "hm", "thought": true }]), None);
    let (events, error) = parse(&[sse(&thinking).as_bytes(), sse(&blocked).as_bytes()]).await;
    assert_eq!(events, vec![ChatEvent::Reasoning("hm".into())]);
    let error = error.expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::ContentFiltered);
    assert_eq!(error.detail, "the provider's safety filters blocked the answer (SAFETY)");
}

#[tokio::test]
async fn an_error_object_mid_stream_fails_after_the_partial_text() {
    let overloaded = json!({ "error": {
        "code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE",
    }});
    let body = format!("{}{}", sse(&response(json!([{ "text": "partial" }]), None)), sse(&overloaded));
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert_eq!(events, vec![text("partial")]);
    let error = error.expect("an error");
    assert_eq!((error.kind, error.status), (ProviderErrorKind::Unavailable, Some(503)));
    assert_eq!(error.detail, "The model is overloaded. Please try again later.");

    let limited = r#"[{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"7s"}]}}]"#;
    let (events, error) = parse(&[format!("event: error\ndata: {limited}\n\n").as_bytes()]).await;
    assert!(events.is_empty());
    let error = error.expect("an error");
    assert_eq!((error.kind, error.retry_after), (ProviderErrorKind::RateLimited, Some(Duration::from_secs(7))));
}

#[tokio::test]
async fn arrays_of_responses_and_error_members_in_the_stream_data() {
    let both = json!([response(json!([{ "text": "a" }]), None), response(json!([{ "text": "b" }]), Some("STOP"))]);
    let (events, error) = parse(&[sse(&both).as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, vec![text("a"), text("b"), ChatEvent::Finish(FinishReason::Stop)]);
    let failed = json!([response(json!([{ "text": "a" }]), None), { "error": "the backend went away" }]);
    let (events, error) = parse(&[sse(&failed).as_bytes()]).await;
    assert_eq!(events, vec![text("a")], "the events before the error come first");
    let error = error.expect("an error");
    assert_eq!((error.kind, error.detail.as_str()), (ProviderErrorKind::Unavailable, "the backend went away"));
    let (events, error) = parse(&[sse(&json!({ "error": null, "candidates": [] })).as_bytes()]).await;
    assert!(events.is_empty());
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::Unavailable), "no finish: cut short");
}

#[tokio::test]
async fn an_early_end_is_unavailable_but_a_cut_after_the_finish_is_not() {
    let (events, error) = parse(&[sse(&response(json!([{ "text": "cut" }]), None)).as_bytes()]).await;
    assert_eq!(events, vec![text("cut")]);
    let error = error.expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unavailable);
    assert_eq!(error.detail, "the provider closed the stream before finishing");

    let done = sse(&response(json!([{ "text": "done" }]), Some("STOP")));
    let reads = vec![Ok(Bytes::from(done)), Err(errors::closed_early(Some("reset")))];
    let mut stream = EventAdapter::sse(futures_stream::iter(reads), ResponseHandler::new("t"));
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        events.push(item.expect("no error after the finish"));
    }
    assert_eq!(events, vec![text("done"), ChatEvent::Finish(FinishReason::Stop)]);

    let reads =
        vec![Ok(Bytes::from(sse(&response(json!([{ "text": "a" }]), None)))), Err(errors::closed_early(Some("reset")))];
    let mut stream = EventAdapter::sse(futures_stream::iter(reads), ResponseHandler::new("t"));
    assert_eq!(stream.next().await.map(Result::ok), Some(Some(text("a"))));
    let error = stream.next().await.and_then(Result::err).expect("an error");
    assert!(error.detail.ends_with(": reset"), "{}", error.detail);
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn non_json_data_is_a_protocol_error() {
    let (_, error) = parse(&[b"data: <html>oops</html>\n\n"]).await;
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::Protocol));
    // A proxy's `[DONE]` and keep-alive comments are not.
    let done = format!(": keep-alive\n\n{}data: [DONE]\n\n", sse(&response(json!([{ "text": "ok" }]), Some("STOP"))));
    let (events, error) = parse(&[done.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, vec![text("ok"), ChatEvent::Finish(FinishReason::Stop)]);
}

#[test]
fn a_whole_json_answer_becomes_the_same_events() {
    let answer = json!([
        response(json!([{ "text": "Hi" }]), None),
        { "candidates": [{ "content": { "parts": [{ "text": " there" }], "role": "model" }, "finishReason": "STOP" }],
          "usageMetadata": { "promptTokenCount": 2, "candidatesTokenCount": 2 } },
    ]);
    let events = whole_answer_events(answer.to_string().as_bytes(), ResponseHandler::new("t")).expect("events");
    assert_eq!(events, vec![text("Hi"), text(" there"), ChatEvent::Finish(FinishReason::Stop), usage(2, 2, 0)]);
    let error = whole_answer_events(b"[]", ResponseHandler::new("t")).expect_err("no finish");
    assert_eq!(error.kind, ProviderErrorKind::Unavailable);
}

fn google_error(status: u16, json: &str) -> ProviderError {
    GoogleError::parse(&serde_json::from_str(json).expect("json")).into_error(Some(status), None)
}

#[test]
fn error_bodies_map_to_kinds() {
    use ProviderErrorKind::*;
    let cases: &[(u16, &str, ProviderErrorKind)] = &[
        (
            400,
            r#"{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}"#,
            InvalidKey,
        ),
        (
            403,
            r#"{"error":{"code":403,"message":"Method doesn't allow unregistered callers.","status":"PERMISSION_DENIED"}}"#,
            InvalidKey,
        ),
        (
            404,
            r#"{"error":{"code":404,"message":"models/gemini-9 is not found for API version v1beta, or is not supported for generateContent.","status":"NOT_FOUND"}}"#,
            ModelNotFound,
        ),
        (
            400,
            r#"{"error":{"code":400,"message":"The input token count (1500000) exceeds the maximum number of tokens allowed (1048576).","status":"INVALID_ARGUMENT"}}"#,
            ContextTooLong,
        ),
        (
            400,
            r#"{"error":{"code":400,"message":"User location is not supported for the API use.","status":"FAILED_PRECONDITION"}}"#,
            BadRequest,
        ),
        (
            400,
            r#"{"error":{"code":400,"message":"* GenerateContentRequest.contents: contents is not specified","status":"INVALID_ARGUMENT"}}"#,
            BadRequest,
        ),
        (500, r#"{"error":{"code":500,"message":"An internal error has occurred.","status":"INTERNAL"}}"#, Unavailable),
        (503, r#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#, Unavailable),
        (
            429,
            r#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED"}}"#,
            RateLimited,
        ),
    ];
    for (status, body, expected) in cases {
        let error = google_error(*status, body);
        assert_eq!((error.kind, error.status), (*expected, Some(*status)), "{body}");
    }
    assert_eq!(
        google_error(503, r#"[{"error":{"code":503,"message":"The model is overloaded.","status":"UNAVAILABLE"}}]"#)
            .detail,
        "The model is overloaded."
    );
    assert_eq!(google_error(502, "{}").detail, "the provider answered HTTP 502 without an error message");
}

#[test]
fn per_minute_limits_are_rate_limits_and_spent_quotas_are_not() {
    let per_minute = r#"{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[
        {"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":"GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
        {"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},
        {"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"19.5s"}]}}"#;
    let error = google_error(429, per_minute);
    assert_eq!((error.kind, error.retry_after), (ProviderErrorKind::RateLimited, Some(Duration::from_millis(19_500))));

    let per_day = per_minute.replace("PerMinute", "PerDay");
    assert_eq!(google_error(429, &per_day).kind, ProviderErrorKind::QuotaExceeded);

    let no_free_tier = r#"{"error":{"code":429,"message":"You exceeded your current quota.\n* Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-3-pro\nPlease retry in 45.578569677s.","status":"RESOURCE_EXHAUSTED"}}"#;
    let error = google_error(429, no_free_tier);
    assert_eq!(error.kind, ProviderErrorKind::QuotaExceeded);
    assert_eq!(error.retry_after, Some(Duration::from_nanos(45_578_569_677)));
    let limit_ten = no_free_tier.replace("limit: 0,", "limit: 10,");
    assert_eq!(google_error(429, &limit_ten).kind, ProviderErrorKind::RateLimited);

    // Without RetryInfo, the Retry-After header.
    let bare = r#"{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}"#;
    let error = GoogleError::parse(&serde_json::from_str(bare).expect("json"))
        .into_error(Some(429), Some(Duration::from_secs(3)));
    assert_eq!(error.retry_after, Some(Duration::from_secs(3)));
}

#[test]
fn urls_take_the_version_and_the_model_prefix_into_account() {
    let google = "https://generativelanguage.googleapis.com/v1beta";
    assert_eq!(api_base(""), google);
    assert_eq!(api_base(" https://generativelanguage.googleapis.com/ "), google);
    assert_eq!(api_base("https://generativelanguage.googleapis.com/v1beta/"), google);
    assert_eq!(
        api_base("https://generativelanguage.googleapis.com/v1"),
        "https://generativelanguage.googleapis.com/v1"
    );
    assert_eq!(api_base("https://api-proxy.me/gemini"), "https://api-proxy.me/gemini/v1beta");
    assert_eq!(api_base("http://localhost:8080"), "http://localhost:8080/v1beta");
    assert_eq!(api_base("http://localhost:8080/v1alpha"), "http://localhost:8080/v1alpha");
    assert_eq!(
        api_base("https://gateway.ai.cloudflare.com/v1/acct/gw/google-ai-studio"),
        "https://gateway.ai.cloudflare.com/v1/acct/gw/google-ai-studio/v1beta"
    );
    assert!(!is_version("video") && !is_version("v") && !is_version("v1-beta") && is_version("v1beta3"));

    assert_eq!(model_path("gemini-2.5-flash"), "models/gemini-2.5-flash");
    assert_eq!(model_path("models/gemini-2.5-flash"), "models/gemini-2.5-flash");
    assert_eq!(model_path("tunedModels/my-model-42"), "tunedModels/my-model-42");
    assert_eq!(model_path("odd/name ü?"), "models/odd%2Fname%20%C3%BC%3F");
    let endpoint = Endpoint::new(Protocol::Gemini, "https://api-proxy.me/gemini/", Some(Secret::new("k")));
    assert_eq!(
        stream_url(&endpoint, "models/gemini-2.5-pro"),
        "https://api-proxy.me/gemini/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
    );
}

#[test]
fn the_key_goes_in_a_sensitive_header_and_never_in_the_url() {
    let key = "AIzaSy-secret-key";
    let endpoint = Endpoint::new(Protocol::Gemini, "", Some(Secret::new(key)));
    let client = reqwest::Client::new();
    let request = authorize(client.post(stream_url(&endpoint, "gemini-2.5-flash")), &endpoint)
        .expect("a valid key")
        .build()
        .expect("a request");
    let header = request.headers().get("x-goog-api-key").expect("the key header");
    assert!(header.is_sensitive());
    assert_eq!(header.to_str().ok(), Some(key));
    assert!(!request.url().as_str().contains(key));
    let bad = Endpoint::new(Protocol::Gemini, "", Some(Secret::new("bad\nkey")));
    let error = authorize(client.get("http://h/"), &bad).expect_err("an error");
    assert_eq!(error.kind, ProviderErrorKind::InvalidKey);
    assert!(!error.detail.contains("bad"));
}

#[test]
fn model_pages_keep_chat_models_without_the_prefix() {
    let page = br#"{"models":[
        {"name":"models/gemini-2.5-flash","displayName":"Gemini 2.5 Flash","supportedGenerationMethods":["generateContent","countTokens","createCachedContent"]},
        {"name":"models/text-embedding-004","supportedGenerationMethods":["embedContent"]},
        {"name":"models/gemini-2.5-pro","supportedGenerationMethods":["generateContent"]},
        {"name":"proxy-model"}
    ],"nextPageToken":"Ch5tb2RlbHM"}"#;
    let page = model_page(page).expect("a page");
    assert_eq!(page.names, ["gemini-2.5-flash", "gemini-2.5-pro", "proxy-model"]);
    assert_eq!(page.next_page_token.as_deref(), Some("Ch5tb2RlbHM"));
    assert_eq!(model_page(b"{}").expect("an empty page"), ModelPage { names: Vec::new(), next_page_token: None });
    assert_eq!(model_page(b"<html>").map_err(|error| error.kind).err(), Some(ProviderErrorKind::Protocol));
}
