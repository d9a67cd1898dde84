//! Anthropic Messages API (`POST /v1/messages`, streamed). Sections, as in every protocol
//! module: request mapping (`request`), calls, stream parsing (`stream`), error mapping,
//! tests. The base URL may be the host (`https://api.anthropic.com`) or end with `/v1`.

mod request;
mod stream;
#[cfg(test)]
mod tests;

use std::time::Duration;

use loquat_core::llm::{ChatRequest, ChatStream, Endpoint, ProviderError, ProviderErrorKind};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::Value;

use self::request::wire_request;
use self::stream::{MessageHandler, message_events};
use crate::errors::{self, ErrorInfo};
use crate::stream::sse::sse_answer;
use crate::transport::{Http, KeyHeader, join_url, read_bounded, with_key};

const API_VERSION: &str = "2023-06-01";
/// A model list page may be this large.
const MAX_JSON_BODY_BYTES: usize = 8 * 1024 * 1024;
/// `GET /v1/models` pages of this size, at most this many pages.
const MODELS_PAGE_SIZE: &str = "1000";
const MAX_MODEL_PAGES: usize = 20;

/// `{base}/v1/{path}`, whether or not the base already ends with `/v1`.
fn api_url(base_url: &str, path: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    if base.ends_with("/v1") { join_url(base, path) } else { join_url(base, &format!("v1/{path}")) }
}

/// The version header and, when there is a key, `x-api-key` (marked sensitive).
fn authorize(builder: reqwest::RequestBuilder, endpoint: &Endpoint) -> Result<reqwest::RequestBuilder, ProviderError> {
    with_key(builder.header("anthropic-version", API_VERSION), endpoint, KeyHeader::Named("x-api-key"))
}

// ---- Calls ----------------------------------------------------------------------------------

pub(crate) async fn stream_chat(
    http: &Http,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<ChatStream, ProviderError> {
    let builder = http
        .client
        .post(api_url(&endpoint.base_url, "messages"))
        .header(ACCEPT, "text/event-stream")
        .json(&wire_request(request));
    let response = http.send(authorize(builder, endpoint)?).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    sse_answer(response, MessageHandler::default(), |body, _| message_events(body)).await
}

/// The model ids of `GET /v1/models`, following its pages (`has_more`, `after_id`).
pub(crate) async fn list_models(http: &Http, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
    #[derive(Deserialize)]
    struct Page {
        data: Vec<Model>,
        #[serde(default)]
        has_more: bool,
        last_id: Option<String>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    let mut models = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..MAX_MODEL_PAGES {
        let mut query = vec![("limit", MODELS_PAGE_SIZE.to_owned())];
        query.extend(after.take().map(|id| ("after_id", id)));
        let builder =
            http.client.get(api_url(&endpoint.base_url, "models")).query(&query).timeout(http.non_streaming_timeout);
        let mut response = http.send(authorize(builder, endpoint)?).await?;
        if !response.status().is_success() {
            return Err(error_response(http, response).await);
        }
        let (body, cut) = read_bounded(&mut response, MAX_JSON_BODY_BYTES).await.map_err(errors::transport)?;
        if cut {
            return Err(errors::protocol("the provider's model list is too large"));
        }
        let page: Page = serde_json::from_slice(&body)
            .map_err(|error| errors::protocol(format!("the model list is not Anthropic's format: {error}")))?;
        models.extend(page.data.into_iter().map(|model| model.id));
        match page.last_id.filter(|_| page.has_more) {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    Ok(models)
}

// ---- Error mapping --------------------------------------------------------------------------

/// Maps a non-2xx response, reading a bounded part of its body for the provider's message and
/// the `retry-after` header for how long to wait.
async fn error_response(http: &Http, mut response: reqwest::Response) -> ProviderError {
    let status = response.status();
    let wait = errors::retry_after(response.headers());
    let body = read_bounded(&mut response, http.max_error_body_bytes).await.map(|(body, _)| body).unwrap_or_default();
    http_error(status.as_u16(), status.canonical_reason(), &body, wait)
}

fn http_error(status: u16, reason: Option<&str>, body: &[u8], wait: Option<Duration>) -> ProviderError {
    into_error(body_error_info(body, reason), Some(status)).with_retry_after(wait)
}

/// Anthropic's error body, or a readable excerpt of whatever else came (a proxy's HTML page).
fn body_error_info(body: &[u8], reason: Option<&str>) -> ErrorInfo {
    let mut info = serde_json::from_slice::<Value>(body).map(|value| error_info(&value)).unwrap_or_default();
    if info.message.trim().is_empty() && info.kind.is_none() {
        let text = String::from_utf8_lossy(body);
        let excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect();
        info.message = match (excerpt.is_empty(), reason) {
            (true, Some(reason)) => reason.to_owned(),
            _ => excerpt,
        };
    }
    info
}

/// An `event: error` whose data is JSON in Anthropic's shape, or plain text.
fn in_stream_error(data: &str) -> ProviderError {
    let info = match serde_json::from_str::<Value>(data) {
        Ok(value) => error_info(&value),
        Err(_) => ErrorInfo { message: data.to_owned(), ..ErrorInfo::default() },
    };
    into_error(info, None)
}

/// Reads `{"type":"error","error":{"type","message","details":{"error_code"}}}`; the inner
/// object alone and `{"error":"text"}` are accepted too.
fn error_info(value: &Value) -> ErrorInfo {
    let object = match value.get("error") {
        Some(Value::String(message)) => return ErrorInfo { message: message.clone(), ..ErrorInfo::default() },
        Some(inner @ Value::Object(_)) => inner,
        _ => value,
    };
    let text = |value: Option<&Value>| value.and_then(Value::as_str).filter(|text| !text.is_empty()).map(str::to_owned);
    ErrorInfo {
        message: text(object.get("message")).unwrap_or_default(),
        code: text(object.pointer("/details/error_code")),
        kind: text(object.get("type")).filter(|kind| kind != "error"),
    }
}

/// The shared mapping, corrected where Anthropic's types say more than the status.
fn into_error(info: ErrorInfo, status: Option<u16>) -> ProviderError {
    let correction = anthropic_kind(&info, status);
    let mut error = info.into_error(status);
    if let Some(kind) = correction {
        error.kind = kind;
    }
    error
}

fn anthropic_kind(info: &ErrorInfo, status: Option<u16>) -> Option<ProviderErrorKind> {
    let kind = info.kind.as_deref().unwrap_or_default();
    let code = info.code.as_deref().unwrap_or_default();
    let message = info.message.to_lowercase();
    let said = |needles: &[&str]| needles.iter().any(|needle| message.contains(needle));
    if kind == "billing_error"
        || code.contains("spend_limit")
        || said(&["credit balance is too low", "api usage limits", "spend limit"])
    {
        Some(ProviderErrorKind::QuotaExceeded)
    } else if kind == "request_too_large"
        || status == Some(413)
        || said(&["exceed context limit", "prompt is too long"])
    {
        Some(ProviderErrorKind::ContextTooLong)
    } else if kind == "overloaded_error" {
        Some(ProviderErrorKind::Unavailable)
    } else {
        None
    }
}
