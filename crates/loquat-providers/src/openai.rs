//! OpenAI Chat Completions, as spoken by OpenAI and every compatible server (DeepSeek, Qwen
//! compatible mode, vLLM, custom agents). Sections, as in every protocol module: request
//! mapping, calls, stream parsing (SSE chunks → [`ChatEvent`]s), response/error mapping, tests.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use eventsource_stream::{Event, EventStream, EventStreamError};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{
    ChatEvent, ChatMessage, ChatRequest, ChatRole, ChatStream, Endpoint, FinishReason, ProviderError, ProviderErrorKind,
};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::errors::{self, ErrorInfo};
use crate::http::{Http, join_url, read_bounded};

/// A whole (non-streamed) completion may be this large when a server ignores `stream: true`.
const MAX_JSON_BODY_BYTES: usize = 8 * 1024 * 1024;

// ---- Request mapping ------------------------------------------------------------------------

#[derive(Debug, Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

fn wire_request(request: &ChatRequest) -> WireRequest<'_> {
    let params = &request.params;
    WireRequest {
        model: &request.model,
        messages: request.messages.iter().map(wire_message).collect(),
        stream: true,
        stream_options: StreamOptions { include_usage: true },
        temperature: params.temperature,
        top_p: params.top_p,
        presence_penalty: params.presence_penalty,
        frequency_penalty: params.frequency_penalty,
        max_tokens: params.max_tokens,
    }
}

fn wire_message(message: &ChatMessage) -> WireMessage<'_> {
    let role = match message.role {
        ChatRole::System => "system",
        ChatRole::User => "user",
        ChatRole::Assistant => "assistant",
    };
    WireMessage { role, content: &message.content }
}

fn authorize(builder: reqwest::RequestBuilder, endpoint: &Endpoint) -> Result<reqwest::RequestBuilder, ProviderError> {
    let Some(key) = endpoint.api_key.as_ref().filter(|key| !key.is_empty()) else {
        return Ok(builder);
    };
    let mut value = HeaderValue::try_from(format!("Bearer {}", key.expose())).map_err(|_| {
        let detail = "the API key contains characters that cannot be sent in an HTTP header";
        ProviderError::new(ProviderErrorKind::InvalidKey, detail)
    })?;
    value.set_sensitive(true);
    Ok(builder.header(AUTHORIZATION, value))
}

// ---- Calls ----------------------------------------------------------------------------------

pub(crate) async fn stream_chat(
    http: &Http,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<ChatStream, ProviderError> {
    let builder = http
        .client
        .post(join_url(&endpoint.base_url, "chat/completions"))
        .header(ACCEPT, "text/event-stream")
        .json(&wire_request(request));
    let mut response = authorize(builder, endpoint)?.send().await.map_err(errors::transport)?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    if is_json(&response) {
        // A server that ignored `stream: true` (or reports an error with a 2xx status).
        let (body, cut) = read_bounded(&mut response, MAX_JSON_BODY_BYTES).await.map_err(errors::body)?;
        if cut {
            return Err(errors::protocol("the provider's JSON answer is too large"));
        }
        let events = completion_events(&body)?;
        return Ok(Box::pin(stream::iter(events.into_iter().map(Ok))));
    }
    let bytes = response.bytes_stream().map_err(errors::body);
    Ok(Box::pin(ChunkStream::new(Box::pin(bytes))))
}

pub(crate) async fn list_models(http: &Http, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
    let builder = http.client.get(join_url(&endpoint.base_url, "models")).timeout(http.non_streaming_timeout);
    let mut response = authorize(builder, endpoint)?.send().await.map_err(errors::transport)?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    let (body, cut) = read_bounded(&mut response, MAX_JSON_BODY_BYTES).await.map_err(errors::transport)?;
    if cut {
        return Err(errors::protocol("the provider's model list is too large"));
    }
    #[derive(Deserialize)]
    struct Models {
        data: Vec<Model>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    let models: Models = serde_json::from_slice(&body)
        .map_err(|error| errors::protocol(format!("the model list is not OpenAI's format: {error}")))?;
    Ok(models.data.into_iter().map(|model| model.id).collect())
}

fn is_json(response: &reqwest::Response) -> bool {
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok());
    content_type.is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

// ---- Stream parsing -------------------------------------------------------------------------

/// Turns an SSE byte stream into chat events. Ends after `data: [DONE]`; a stream that ends
/// before `[DONE]` and before any `finish_reason` ends with an `Unavailable` error.
pub(crate) struct ChunkStream<S> {
    /// `None` once the stream is over; dropping it releases the HTTP response.
    events: Option<EventStream<S>>,
    /// Events of the last chunk not yet handed out (a chunk can carry several).
    pending: VecDeque<ChatEvent>,
    finished: bool,
}

impl<S> ChunkStream<S> {
    pub(crate) fn new(bytes: S) -> Self {
        Self { events: Some(EventStream::new(bytes)), pending: VecDeque::with_capacity(4), finished: false }
    }

    /// Queues the events of one SSE event; returns whether the stream is over (`[DONE]`).
    fn handle(&mut self, event: &Event) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if event.event == "error" {
            return Err(in_stream_error(data));
        }
        if data.is_empty() {
            return Ok(false);
        }
        if data == "[DONE]" {
            return Ok(true);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|error| {
            errors::protocol(format!("the provider sent a chunk that is not OpenAI's format: {error}"))
        })?;
        if let Some(error) = chunk.error {
            return Err(error_info(&error).into_error(None));
        }
        if let Some(choice) = chunk.choices.into_iter().flatten().next() {
            if let Some(delta) = choice.delta {
                let reasoning = delta.reasoning_content.filter(|text| !text.is_empty()).or(delta.reasoning);
                if let Some(text) = reasoning.filter(|text| !text.is_empty()) {
                    self.pending.push_back(ChatEvent::Reasoning(text));
                }
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    self.pending.push_back(ChatEvent::Text(text));
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|_| !self.finished) {
                self.finished = true;
                self.pending.push_back(ChatEvent::Finish(finish_reason(&reason)));
            }
        }
        if let Some(usage) = chunk.usage {
            self.pending.push_back(ChatEvent::Usage(usage.into()));
        }
        Ok(false)
    }
}

impl<S> Stream for ChunkStream<S>
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Unpin,
{
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            let Some(events) = this.events.as_mut() else {
                return Poll::Ready(None);
            };
            let failure = match ready!(events.poll_next_unpin(cx)) {
                Some(Ok(event)) => match this.handle(&event) {
                    Ok(false) => continue,
                    Ok(true) => None,
                    Err(error) => Some(error),
                },
                // After a finish_reason the answer is complete; a broken connection only costs
                // the usage chunk.
                Some(Err(EventStreamError::Transport(error))) => Some(error).filter(|_| !this.finished),
                Some(Err(EventStreamError::Utf8(error))) => {
                    Some(errors::protocol(format!("the provider sent invalid UTF-8: {error}")))
                }
                Some(Err(EventStreamError::Parser(error))) => {
                    Some(errors::protocol(format!("the provider sent invalid server-sent events: {error}")))
                }
                None => Some(errors::closed_early(None)).filter(|_| !this.finished),
            };
            this.events = None;
            if let Some(error) = failure {
                this.pending.clear();
                return Poll::Ready(Some(Err(error)));
            }
        }
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    /// Empty on usage-only chunks; some servers send `null`.
    choices: Option<Vec<Choice>>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    content: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    completion_tokens_details: Option<UsageDetails>,
}

#[derive(Debug, Deserialize)]
struct UsageDetails {
    reasoning_tokens: Option<u64>,
}

impl From<Usage> for TokenUsage {
    fn from(usage: Usage) -> Self {
        let clamp = |count: Option<u64>| u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX);
        TokenUsage {
            prompt_tokens: clamp(usage.prompt_tokens),
            completion_tokens: clamp(usage.completion_tokens),
            reasoning_tokens: clamp(usage.completion_tokens_details.and_then(|details| details.reasoning_tokens)),
        }
    }
}

fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" | "end_turn" | "eos" => FinishReason::Stop,
        "length" | "max_tokens" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        _ => FinishReason::Other,
    }
}

// ---- Response and error mapping -------------------------------------------------------------

/// Events of a whole `chat.completion` object (a server that did not stream).
fn completion_events(body: &[u8]) -> Result<Vec<ChatEvent>, ProviderError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the provider's answer is not JSON: {error}")))?;
    if let Some(error) = value.get("error").filter(|error| !error.is_null()) {
        return Err(error_info(error).into_error(None));
    }
    let choice = value
        .get("choices")
        .and_then(|choices| choices.get(0))
        .ok_or_else(|| errors::protocol("the provider's answer has no choices"))?;
    let message = &choice["message"];
    let text = |field: &str| message.get(field).and_then(Value::as_str).filter(|text| !text.is_empty());
    let mut events = Vec::with_capacity(4);
    if let Some(reasoning) = text("reasoning_content").or_else(|| text("reasoning")) {
        events.push(ChatEvent::Reasoning(reasoning.to_owned()));
    }
    if let Some(content) = text("content") {
        events.push(ChatEvent::Text(content.to_owned()));
    }
    events.push(ChatEvent::Finish(finish_reason(choice["finish_reason"].as_str().unwrap_or("stop"))));
    if let Some(usage) = value.get("usage").and_then(|usage| Usage::deserialize(usage).ok()) {
        events.push(ChatEvent::Usage(usage.into()));
    }
    Ok(events)
}

/// Maps a non-2xx response, reading a bounded part of its body for the provider's message.
async fn error_response(http: &Http, mut response: reqwest::Response) -> ProviderError {
    let status = response.status();
    let body = read_bounded(&mut response, http.max_error_body_bytes).await.map(|(body, _)| body).unwrap_or_default();
    let mut info = serde_json::from_slice::<Value>(&body).map(|value| error_info(&value)).unwrap_or_default();
    if info.message.trim().is_empty() && info.code.is_none() {
        // Not OpenAI's error shape (a proxy's HTML page, plain text): keep a readable excerpt.
        let text = String::from_utf8_lossy(&body);
        let excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect();
        info.message = match (excerpt.is_empty(), status.canonical_reason()) {
            (true, Some(reason)) => reason.to_owned(),
            _ => excerpt,
        };
    }
    info.into_error(Some(status.as_u16()))
}

/// An `event: error` SSE event: JSON in OpenAI's error shape, or plain text.
fn in_stream_error(data: &str) -> ProviderError {
    match serde_json::from_str::<Value>(data) {
        Ok(value) => error_info(&value).into_error(None),
        Err(_) => ErrorInfo { message: data.to_owned(), ..ErrorInfo::default() }.into_error(None),
    }
}

/// Reads OpenAI's error shape and the common variants: `{"error": {...}}`, `{"error": "text"}`,
/// a top-level `{"message", "type", "code"}` (vLLM), `{"detail": ...}` (FastAPI servers), and
/// a one-element array of these (Gemini's compatible endpoint).
fn error_info(value: &Value) -> ErrorInfo {
    let value = match value {
        Value::Array(items) => items.first().unwrap_or(&Value::Null),
        other => other,
    };
    let object = match value.get("error") {
        Some(Value::String(message)) => return ErrorInfo { message: message.clone(), ..ErrorInfo::default() },
        Some(inner @ Value::Object(_)) => inner,
        _ => value,
    };
    let text = |field: &str| match object.get(field) {
        Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
        Some(Value::Number(number)) => Some(number.to_string()),
        _ => None,
    };
    let message = text("message").or_else(|| match object.get("detail") {
        Some(Value::String(detail)) => Some(detail.clone()),
        Some(detail @ (Value::Array(_) | Value::Object(_))) => Some(detail.to_string()),
        _ => None,
    });
    ErrorInfo { message: message.unwrap_or_default(), code: text("code"), kind: text("type") }
}

#[cfg(test)]
mod tests {
    use loquat_core::domain::ModelParams;

    use super::*;

    /// Parses `reads` (each one a TCP read) and collects the events, stopping at the first error.
    async fn parse(reads: &[&[u8]]) -> (Vec<ChatEvent>, Option<ProviderError>) {
        let reads: Vec<Result<Bytes, ProviderError>> =
            reads.iter().map(|read| Ok(Bytes::copy_from_slice(read))).collect();
        let mut stream = ChunkStream::new(stream::iter(reads));
        let (mut events, mut error) = (Vec::new(), None);
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => events.push(event),
                Err(failure) => error = Some(failure),
            }
        }
        (events, error)
    }

    fn chunk(delta: &str, finish: &str) -> String {
        format!(
            "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{delta},\"finish_reason\":{finish}}}]}}\n\n"
        )
    }

    fn text(value: &str) -> ChatEvent {
        ChatEvent::Text(value.to_owned())
    }

    #[tokio::test]
    async fn json_split_across_reads_and_multibyte_characters() {
        let whole =
            format!("{}{}data: [DONE]\n\n", chunk(r#"{"content":"héllo 👋"}"#, "null"), chunk("{}", r#""stop""#));
        let bytes = whole.as_bytes();
        let emoji = whole.find('👋').expect("emoji") + 2; // inside the 4-byte character
        let reads: Vec<&[u8]> = vec![&bytes[..7], &bytes[7..40], &bytes[40..emoji], &bytes[emoji..]];
        let (events, error) = parse(&reads).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(events, vec![text("héllo 👋"), ChatEvent::Finish(FinishReason::Stop)]);
    }

    #[tokio::test]
    async fn done_ends_the_stream_and_later_data_is_ignored() {
        let body =
            format!("{}data: [DONE]\n\n{}", chunk(r#"{"content":"a"}"#, "null"), chunk(r#"{"content":"b"}"#, "null"));
        let (events, error) = parse(&[body.as_bytes()]).await;
        assert!(error.is_none(), "[DONE] without finish_reason is a clean end");
        assert_eq!(events, vec![text("a")]);
    }

    #[tokio::test]
    async fn keep_alive_comments_crlf_and_empty_deltas_are_skipped() {
        let role = chunk(r#"{"role":"assistant","content":""}"#, "null");
        let body = format!(
            ": keep-alive\n\n: OPENROUTER PROCESSING\r\n\r\n{role}{}data: [DONE]\r\n\r\n",
            chunk(r#"{"content":"x"}"#, r#""length""#).replace("\n\n", "\r\n\r\n")
        );
        let (events, error) = parse(&[body.as_bytes()]).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(events, vec![text("x"), ChatEvent::Finish(FinishReason::Length)]);
    }

    #[tokio::test]
    async fn reasoning_then_text_then_usage_on_a_chunk_with_empty_choices() {
        let usage = r#"data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":30,"total_tokens":42,"completion_tokens_details":{"reasoning_tokens":20}}}"#;
        let body = format!(
            "{}{}{}{}{usage}\n\ndata: [DONE]\n\n",
            chunk(r#"{"reasoning_content":"think"}"#, "null"),
            chunk(r#"{"reasoning":"ing","content":null}"#, "null"),
            chunk(r#"{"content":"answer"}"#, "null"),
            chunk("{}", r#""stop""#),
        );
        let (events, error) = parse(&[body.as_bytes()]).await;
        assert!(error.is_none(), "{error:?}");
        let usage = TokenUsage { prompt_tokens: 12, completion_tokens: 30, reasoning_tokens: 20 };
        assert_eq!(
            events,
            vec![
                ChatEvent::Reasoning("think".into()),
                ChatEvent::Reasoning("ing".into()),
                text("answer"),
                ChatEvent::Finish(FinishReason::Stop),
                ChatEvent::Usage(usage),
            ]
        );
    }

    #[tokio::test]
    async fn an_error_object_in_the_stream_fails_after_the_partial_text() {
        let error = r#"data: {"error":{"message":"The server had an error","type":"server_error"}}"#;
        let body = format!("{}{error}\n\n", chunk(r#"{"content":"partial"}"#, "null"));
        let (events, error) = parse(&[body.as_bytes()]).await;
        assert_eq!(events, vec![text("partial")]);
        let error = error.expect("an error");
        assert_eq!((error.kind, error.detail.as_str()), (ProviderErrorKind::Unavailable, "The server had an error"));
    }

    #[tokio::test]
    async fn an_early_end_is_unavailable_but_an_end_after_finish_is_not() {
        let (events, error) = parse(&[chunk(r#"{"content":"cut"}"#, "null").as_bytes()]).await;
        assert_eq!(events, vec![text("cut")]);
        let error = error.expect("an error");
        assert_eq!(error.kind, ProviderErrorKind::Unavailable);
        assert_eq!(error.detail, "the provider closed the stream before finishing");
        let (events, error) = parse(&[chunk("{}", r#""stop""#).as_bytes()]).await;
        assert!(error.is_none());
        assert_eq!(events, vec![ChatEvent::Finish(FinishReason::Stop)]);
    }

    #[tokio::test]
    async fn a_transport_error_mid_stream_ends_with_that_error() {
        let reads =
            vec![Ok(Bytes::from(chunk(r#"{"content":"a"}"#, "null"))), Err(errors::closed_early(Some("reset")))];
        let mut stream = ChunkStream::new(stream::iter(reads));
        assert_eq!(stream.next().await.map(Result::ok), Some(Some(text("a"))));
        let error = stream.next().await.and_then(Result::err).expect("an error");
        assert!(error.detail.ends_with(": reset"), "{}", error.detail);
        assert!(stream.next().await.is_none());
    }

    #[tokio::test]
    async fn non_json_chunks_are_protocol_errors() {
        let (_, error) = parse(&[b"data: <html>oops</html>\n\n"]).await;
        assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::Protocol));
    }

    #[test]
    fn error_bodies_in_their_various_shapes() {
        let parse = |json: &str| error_info(&serde_json::from_str(json).expect("json"));
        let openai = parse(
            r#"{"error":{"message":"Incorrect API key","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        assert_eq!(openai.message, "Incorrect API key");
        assert_eq!(openai.code.as_deref(), Some("invalid_api_key"));
        assert_eq!(
            parse(r#"{"object":"error","message":"m","type":"BadRequestError","code":400}"#).code.as_deref(),
            Some("400")
        );
        assert_eq!(parse(r#"{"error":"plain"}"#).message, "plain");
        assert_eq!(parse(r#"{"detail":"Not Found"}"#).message, "Not Found");
        assert_eq!(parse(r#"[{"error":{"code":429,"message":"slow","status":"RESOURCE_EXHAUSTED"}}]"#).message, "slow");
    }

    #[test]
    fn a_whole_completion_becomes_events() {
        let body = br#"{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi","reasoning_content":"hm"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        let events = completion_events(body).expect("events");
        assert_eq!(events[..3], [ChatEvent::Reasoning("hm".into()), text("hi"), ChatEvent::Finish(FinishReason::Stop)]);
        let usage = TokenUsage { prompt_tokens: 1, completion_tokens: 2, reasoning_tokens: 0 };
        assert_eq!(events[3], ChatEvent::Usage(usage));
    }

    #[test]
    fn the_request_body_omits_unset_parameters() {
        let mut request = ChatRequest {
            model: "m".into(),
            messages: vec![ChatMessage::new(ChatRole::System, "s"), ChatMessage::new(ChatRole::User, "u")],
            params: ModelParams::default(),
        };
        let body = serde_json::to_value(wire_request(&request)).expect("json");
        let expected = r#"{"messages":[{"content":"s","role":"system"},{"content":"u","role":"user"}],"model":"m","stream":true,"stream_options":{"include_usage":true}}"#;
        assert_eq!(body.to_string(), expected);
        request.params = ModelParams { temperature: Some(0.7), max_tokens: Some(5), ..ModelParams::default() };
        // The wire text, as reqwest sends it: f32 values are written as typed (not widened).
        let body = serde_json::to_string(&wire_request(&request)).expect("json");
        assert!(body.ends_with(r#""temperature":0.7,"max_tokens":5}"#), "{body}");
    }
}
