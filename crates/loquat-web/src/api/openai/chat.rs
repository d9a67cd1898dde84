//! `POST /v1/chat/completions`: parse, rate-limit, one `Services::api_chat` call, then either a
//! whole `chat.completion` or the stream of chunks (`chunks`). The hot path stays lean: no
//! markdown, no store writes per chunk, every upstream event written through as it arrives.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use loquat_core::llm::{ChatEvent, FinishReason, ToolCall};
use loquat_core::service::ApiChat;
use serde_json::{Value, json};

use super::caller::ApiCaller;
use super::chunks::{ChunkStream, finish_reason, usage_json};
use super::error::ApiError;
use super::request::{RawBody, parse_chat};
use crate::AppState;
use crate::i18n::Tr;

/// `X-Loquat-Save: topic` stores the exchange as a topic of the caller.
pub const SAVE_HEADER: &str = "x-loquat-save";
/// The id of the topic the exchange is saved to (answers to requests with `X-Loquat-Save`).
pub const TOPIC_HEADER: HeaderName = HeaderName::from_static("x-loquat-topic");

pub async fn create_chat_completion(
    caller: ApiCaller,
    State(state): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Response, ApiError> {
    let tr = caller.tr();
    let save = match headers.get(SAVE_HEADER).map(|value| value.to_str().unwrap_or_default().trim()) {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("topic") => true,
        Some(_) => {
            return Err(ApiError::invalid_param(SAVE_HEADER, "X-Loquat-Save takes one value: 'topic'."));
        }
    };
    let parsed = parse_chat(&body, save, caller.0.locale().code())?;
    let model = parsed.request.model.clone();
    let fail = |error| ApiError::from_core(error, &model, tr);
    // The rate limit is decided while the service reads what it needs; nothing reaches the
    // provider before both are through.
    let services = &state.services;
    let (admitted, prepared) =
        tokio::join!(state.allow_chat(&caller.0), services.gateway.prepare_api_chat(&caller.0.user, parsed.request));
    admitted.map_err(ApiError::from_web)?;
    let chat = services.gateway.start_api_chat(prepared.map_err(fail)?).await.map_err(fail)?;
    let topic = chat.saved_topic.and_then(|topic| HeaderValue::try_from(topic.to_string()).ok());
    let mut response =
        if parsed.stream { stream(chat, &model, parsed.include_usage, tr) } else { complete(chat, &model, tr).await? };
    if let Some(topic) = topic {
        response.headers_mut().insert(TOPIC_HEADER, topic);
    }
    Ok(response)
}

fn stream(chat: ApiChat, model: &str, include_usage: bool, tr: Tr) -> Response {
    let created = chat.created.as_millis() / 1000;
    let chunks = ChunkStream::new(chat.events, &chat.id, created, model, include_usage, tr);
    let headers = [
        (header::CONTENT_TYPE, "text/event-stream"),
        (header::CACHE_CONTROL, "no-cache"),
        // Reverse proxies (nginx) must not hold the chunks back either.
        (HeaderName::from_static("x-accel-buffering"), "no"),
    ];
    (headers, Body::from_stream(chunks)).into_response()
}

/// The whole answer as one `chat.completion`; the usage and a saved topic are written before
/// it is sent.
async fn complete(mut chat: ApiChat, model: &str, tr: Tr) -> Result<Response, ApiError> {
    let (mut content, mut reasoning) = (String::new(), String::new());
    let mut tool_calls: Vec<ToolCall> = Vec::new();
    let (mut finish, mut usage) = (None, None);
    while let Some(item) = chat.events.next().await {
        match item {
            Ok(ChatEvent::Text(text)) => content.push_str(&text),
            Ok(ChatEvent::Reasoning(text)) => reasoning.push_str(&text),
            Ok(ChatEvent::ToolCall(call)) => tool_calls.push(call),
            Ok(ChatEvent::Finish(reason)) => finish = finish.or(Some(reason)),
            Ok(ChatEvent::Usage(reported)) => usage = Some(reported),
            // A non-streamed answer holds only the result of the steps.
            Ok(ChatEvent::ReasoningSignature(_) | ChatEvent::Step(_)) => {}
            Err(error) => {
                chat.events.finish().await;
                return Err(ApiError::from_provider(&error, tr));
            }
        }
    }
    chat.events.finish().await;
    let mut message = json!({
        "role": "assistant",
        "content": if content.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::from(content) },
        "refusal": null,
    });
    if !reasoning.is_empty() {
        message["reasoning_content"] = Value::from(reasoning);
    }
    if !tool_calls.is_empty() {
        let calls = tool_calls.iter().enumerate().map(|(index, call)| {
            let id = if call.id.is_empty() { format!("call_{index}") } else { call.id.clone() };
            json!({ "id": id, "type": "function", "function": { "name": call.name, "arguments": call.arguments } })
        });
        message["tool_calls"] = Value::Array(calls.collect());
    }
    let reason = finish_reason(finish.unwrap_or(FinishReason::Stop), !tool_calls.is_empty());
    let completion = json!({
        "id": format!("chatcmpl-{}", chat.id),
        "object": "chat.completion",
        "created": chat.created.as_millis() / 1000,
        "model": model,
        "system_fingerprint": null,
        "choices": [{ "index": 0, "message": message, "logprobs": null, "finish_reason": reason }],
        "usage": usage_json(usage.unwrap_or_default()),
    });
    Ok(axum::Json(completion).into_response())
}
