//! OpenAI Chat Completions, as spoken by OpenAI and every compatible server (DeepSeek, Qwen
//! compatible mode, vLLM, custom agents). Sections, as in every protocol module: request
//! mapping (`request`), calls, stream parsing (`stream`), error mapping, tests; `embeddings`
//! for `POST /embeddings`. Azure reuses the request mapping, the stream parsing, the error
//! mapping and the embeddings' response mapping.

pub(crate) mod embeddings;
pub(crate) mod media;
pub(crate) mod request;
pub(crate) mod stream;

use loquat_core::llm::{ChatRequest, ChatStream, Endpoint, ProviderError};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::Value;

use self::request::{Dialect, wire_request};
use self::stream::{ChunkHandler, completion_events};
use crate::errors::{self, ErrorInfo};
use crate::stream::sse::sse_answer;
use crate::transport::{Http, KeyHeader, join_url, read_bounded, with_key};

/// A model list may be this large.
const MAX_JSON_BODY_BYTES: usize = 8 * 1024 * 1024;

fn authorize(builder: reqwest::RequestBuilder, endpoint: &Endpoint) -> Result<reqwest::RequestBuilder, ProviderError> {
    with_key(builder, endpoint, KeyHeader::Bearer)
}

/// OpenAI's own API wants `max_completion_tokens`; compatible servers mostly know `max_tokens`.
fn dialect(endpoint: &Endpoint) -> Dialect {
    Dialect { max_completion_tokens: endpoint.base_url.contains("api.openai.com"), model_in_body: true }
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
        .json(&wire_request(request, dialect(endpoint)));
    send_streaming(http, authorize(builder, endpoint)?).await
}

/// Sends a Chat Completions request and turns the answer into events: SSE chunks, or a whole
/// JSON completion from servers that ignore `stream: true`. Shared with Azure.
pub(crate) async fn send_streaming(http: &Http, builder: reqwest::RequestBuilder) -> Result<ChatStream, ProviderError> {
    let response = http.send(builder.header(ACCEPT, "text/event-stream")).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    sse_answer(response, ChunkHandler::default(), |body, _| completion_events(body)).await
}

pub(crate) async fn list_models(http: &Http, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
    let builder = http.client.get(join_url(&endpoint.base_url, "models")).timeout(http.non_streaming_timeout);
    let mut response = http.send(authorize(builder, endpoint)?).await?;
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

// ---- Response and error mapping -------------------------------------------------------------

/// Maps a non-2xx response, reading a bounded part of its body for the provider's message.
pub(crate) async fn error_response(http: &Http, mut response: reqwest::Response) -> ProviderError {
    let status = response.status();
    let retry_after = errors::retry_after(response.headers());
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
    info.into_error(Some(status.as_u16())).with_retry_after(retry_after)
}

/// An `event: error` SSE event: JSON in OpenAI's error shape, or plain text.
pub(crate) fn in_stream_error(data: &str) -> ProviderError {
    match serde_json::from_str::<Value>(data) {
        Ok(value) => error_info(&value).into_error(None),
        Err(_) => ErrorInfo { message: data.to_owned(), ..ErrorInfo::default() }.into_error(None),
    }
}

/// Reads OpenAI's error shape and the common variants: `{"error": {...}}`, `{"error": "text"}`,
/// a top-level `{"message", "type", "code"}` (vLLM), `{"detail": ...}` (FastAPI servers), and
/// a one-element array of these (Gemini's compatible endpoint).
pub(crate) fn error_info(value: &Value) -> ErrorInfo {
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
    use bytes::Bytes;
    use loquat_core::domain::TokenUsage;
    use loquat_core::llm::{ChatEvent, FinishReason, ProviderErrorKind, ToolCall};

    use futures_util::{StreamExt, stream as futures_stream};

    use super::stream::ChunkHandler;
    use super::*;
    use crate::stream::EventAdapter;

    /// Parses `reads` (each one a TCP read) and collects the events, stopping at the first error.
    async fn parse(reads: &[&[u8]]) -> (Vec<ChatEvent>, Option<ProviderError>) {
        let reads: Vec<Result<Bytes, ProviderError>> =
            reads.iter().map(|read| Ok(Bytes::copy_from_slice(read))).collect();
        let mut stream = EventAdapter::sse(futures_stream::iter(reads), ChunkHandler::default());
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
        let usage =
            TokenUsage { prompt_tokens: 12, completion_tokens: 30, reasoning_tokens: 20, ..TokenUsage::default() };
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
        let mut stream = EventAdapter::sse(futures_stream::iter(reads), ChunkHandler::default());
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
        let usage = TokenUsage { prompt_tokens: 1, completion_tokens: 2, ..TokenUsage::default() };
        assert_eq!(events[3], ChatEvent::Usage(usage));
    }

    #[tokio::test]
    async fn tool_calls_are_assembled_from_their_pieces() {
        let body = format!(
            "{}{}{}{}data: [DONE]\n\n",
            chunk(
                r#"{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"weather","arguments":""}}]}"#,
                "null"
            ),
            chunk(r#"{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\":"}}]}"#, "null"),
            chunk(
                r#"{"tool_calls":[{"index":0,"function":{"arguments":"\"Paris\"}"}},{"index":1,"id":"call_b","function":{"name":"time","arguments":"{}"}}]}"#,
                "null"
            ),
            chunk("{}", r#""tool_calls""#),
        );
        let (events, error) = parse(&[body.as_bytes()]).await;
        assert!(error.is_none(), "{error:?}");
        assert_eq!(
            events,
            vec![
                ChatEvent::ToolCall(ToolCall {
                    id: "call_a".into(),
                    name: "weather".into(),
                    arguments: r#"{"city":"Paris"}"#.into()
                }),
                ChatEvent::ToolCall(ToolCall { id: "call_b".into(), name: "time".into(), arguments: "{}".into() }),
                ChatEvent::Finish(FinishReason::ToolCalls),
            ]
        );
    }
}
