//! Ollama's native API (`/api/chat`, `/api/tags`, `/api/pull`, `/api/show`, `/api/embed`),
//! streamed as NDJSON.
//! Sections, as in every protocol module: request mapping (`request`), calls, stream parsing
//! (`stream`, over the shared NDJSON framing), error mapping, tests.

mod request;
mod stream;

use std::pin::Pin;

use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use loquat_core::llm::{
    ChatRequest, ChatStream, Embeddings, Endpoint, ModelDetails, ProviderError, ProviderErrorKind, PullStream,
};
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use self::request::wire_request;
use self::stream::{ChatHandler, PullLines};
use crate::errors::{self, ErrorInfo};
use crate::stream::EventAdapter;
use crate::stream::ndjson::Lines;
use crate::transport::{Http, KeyHeader, join_url, read_bounded, with_key};

/// Where Ollama listens when no base URL is configured.
pub(crate) const DEFAULT_BASE_URL: &str = "http://127.0.0.1:11434";

/// `/api/tags` and `/api/show` answers may be this large (`/api/show` carries the license).
const MAX_JSON_BODY_BYTES: usize = 8 * 1024 * 1024;

const NDJSON: &str = "application/x-ndjson";

/// A response body as the line splitter reads it.
type Body = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

/// The server root: people paste the OpenAI-compatible URL (`…/v1`) or the API's (`…/api`).
fn base_url(endpoint: &Endpoint) -> String {
    let base = endpoint.base_url.trim().trim_end_matches('/');
    let lower = base.to_ascii_lowercase();
    let base = if lower.ends_with("/v1") || lower.ends_with("/api") { &base[..base.len() - 3] } else { base };
    let base = base.trim_end_matches('/');
    if base.is_empty() { DEFAULT_BASE_URL.to_owned() } else { base.to_owned() }
}

fn url(endpoint: &Endpoint, path: &str) -> String {
    join_url(&base_url(endpoint), path)
}

/// Ollama itself takes no key; one set is sent as a bearer token for a proxy in front of it.
fn authorize(builder: reqwest::RequestBuilder, endpoint: &Endpoint) -> Result<reqwest::RequestBuilder, ProviderError> {
    with_key(builder, endpoint, KeyHeader::Bearer)
}

// ---- Calls ----------------------------------------------------------------------------------

pub(crate) async fn stream_chat(
    http: &Http,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<ChatStream, ProviderError> {
    let builder = http.client.post(url(endpoint, "api/chat")).json(&wire_request(request));
    let lines = send_ndjson(http, authorize(builder, endpoint)?).await?;
    Ok(Box::pin(EventAdapter::new(lines, ChatHandler::default())))
}

/// Lists the models pulled onto the server (`GET /api/tags`), by name (`llama3.1:8b`).
pub(crate) async fn list_models(http: &Http, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
    let builder = http.client.get(url(endpoint, "api/tags")).timeout(http.non_streaming_timeout);
    let body = send_json(http, authorize(builder, endpoint)?, "model list").await?;
    model_names(&body)
}

/// Downloads a model (`POST /api/pull`). The body has no overall timeout, pulls take long; the
/// shared client's read timeout still bounds a silence between two reads.
/// The longest a model download may stay silent.
const PULL_SILENCE: std::time::Duration = std::time::Duration::from_secs(300);

pub(crate) async fn pull_model(http: &Http, endpoint: &Endpoint, model: &str) -> Result<PullStream, ProviderError> {
    let builder = http.client.post(url(endpoint, "api/pull")).json(&json!({ "model": model, "stream": true }));
    let lines = send_ndjson(http, authorize(builder, endpoint)?).await?;
    // A download reports progress all along; five silent minutes mean it is stuck.
    Ok(Box::pin(crate::transport::IdleTimeout::new(PullLines::new(lines), PULL_SILENCE)))
}

/// What the server knows of one model (`POST /api/show`): its context length.
pub(crate) async fn model_details(
    http: &Http,
    endpoint: &Endpoint,
    model: &str,
) -> Result<ModelDetails, ProviderError> {
    let builder = http
        .client
        .post(url(endpoint, "api/show"))
        .json(&json!({ "model": model }))
        .timeout(http.non_streaming_timeout);
    let body = send_json(http, authorize(builder, endpoint)?, "model description").await?;
    show_details(&body)
}

/// Embeds the inputs (`POST /api/embed`, one vector per input).
pub(crate) async fn embed(
    http: &Http,
    endpoint: &Endpoint,
    model: &str,
    inputs: &[String],
) -> Result<Embeddings, ProviderError> {
    let builder = http
        .client
        .post(url(endpoint, "api/embed"))
        .json(&json!({ "model": model, "input": inputs }))
        .timeout(http.non_streaming_timeout);
    let body = send_json(http, authorize(builder, endpoint)?, "embeddings").await?;
    embeddings(&body, inputs.len())
}

/// Sends a streaming request; a 2xx answer becomes the lines of its body.
async fn send_ndjson(http: &Http, builder: reqwest::RequestBuilder) -> Result<Lines<Body>, ProviderError> {
    let response = http.send(builder.header(ACCEPT, NDJSON)).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    Ok(Lines::new(Box::pin(response.bytes_stream().map_err(errors::body))))
}

/// Sends a request and reads its whole (bounded) 2xx body.
async fn send_json(http: &Http, builder: reqwest::RequestBuilder, what: &str) -> Result<Bytes, ProviderError> {
    let mut response = http.send(builder).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    let (body, cut) = read_bounded(&mut response, MAX_JSON_BODY_BYTES).await.map_err(errors::transport)?;
    if cut {
        return Err(errors::protocol(format!("the provider's {what} is too large")));
    }
    Ok(body)
}

// ---- Response mapping -----------------------------------------------------------------------

/// `models[].name` of an `/api/tags` answer (`model` for servers that only send that).
fn model_names(body: &[u8]) -> Result<Vec<String>, ProviderError> {
    #[derive(Deserialize)]
    struct Tags {
        models: Option<Vec<Tag>>,
    }
    #[derive(Deserialize)]
    struct Tag {
        name: Option<String>,
        model: Option<String>,
    }
    let tags: Tags = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the model list is not Ollama's format: {error}")))?;
    let names = tags.models.into_iter().flatten().filter_map(|tag| tag.name.or(tag.model));
    Ok(names.filter(|name| !name.is_empty()).collect())
}

/// `embeddings` and `prompt_eval_count` of an `/api/embed` answer.
fn embeddings(body: &[u8], inputs: usize) -> Result<Embeddings, ProviderError> {
    #[derive(Deserialize)]
    struct Embed {
        embeddings: Vec<Vec<f32>>,
        prompt_eval_count: Option<u32>,
    }
    let embed: Embed = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the embeddings are not Ollama's format: {error}")))?;
    if embed.embeddings.len() != inputs {
        let detail = format!("the provider sent {} embeddings for {inputs} inputs", embed.embeddings.len());
        return Err(errors::protocol(detail));
    }
    Ok(Embeddings { vectors: embed.embeddings, prompt_tokens: embed.prompt_eval_count.unwrap_or(0) })
}

/// The context length of an `/api/show` answer. `model_info` has what the model was trained for
/// (`<architecture>.context_length`); a `num_ctx` in the model's `parameters` is the window
/// Ollama actually runs it with, so when both are known the smaller one is reported. A server's
/// own default `num_ctx` (`OLLAMA_CONTEXT_LENGTH`) is not visible here.
fn show_details(body: &[u8]) -> Result<ModelDetails, ProviderError> {
    #[derive(Deserialize)]
    struct Show {
        model_info: Option<Map<String, Value>>,
        parameters: Option<String>,
    }
    let show: Show = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the model description is not Ollama's format: {error}")))?;
    let trained = show.model_info.as_ref().and_then(trained_context);
    let configured = show.parameters.as_deref().and_then(num_ctx);
    let tokens = match (trained, configured) {
        (Some(trained), Some(configured)) => Some(trained.min(configured)),
        (trained, configured) => trained.or(configured),
    };
    let context_tokens = tokens.filter(|tokens| *tokens > 0).map(|tokens| u32::try_from(tokens).unwrap_or(u32::MAX));
    Ok(ModelDetails { context_tokens })
}

fn trained_context(info: &Map<String, Value>) -> Option<u64> {
    let architecture = info.get("general.architecture").and_then(Value::as_str);
    architecture
        .and_then(|architecture| info.get(&format!("{architecture}.context_length")))
        .and_then(Value::as_u64)
        .or_else(|| info.iter().find(|(key, _)| key.ends_with(".context_length")).and_then(|(_, value)| value.as_u64()))
}

/// `num_ctx` of the `parameters` text (`num_ctx                        4096`).
fn num_ctx(parameters: &str) -> Option<u64> {
    parameters.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("num_ctx"), Some(value)) => value.parse().ok(),
            _ => None,
        }
    })
}

// ---- Error mapping --------------------------------------------------------------------------

/// Maps a non-2xx response, reading a bounded part of its body for Ollama's `{"error": "…"}`.
async fn error_response(http: &Http, mut response: reqwest::Response) -> ProviderError {
    let status = response.status();
    // Ollama sends none, but a proxy in front of it may rate limit.
    let retry_after = errors::retry_after(response.headers());
    let body = read_bounded(&mut response, http.max_error_body_bytes).await.map(|(body, _)| body).unwrap_or_default();
    error_from_body(status.as_u16(), status.canonical_reason(), &body).with_retry_after(retry_after)
}

fn error_from_body(status: u16, reason: Option<&str>, body: &[u8]) -> ProviderError {
    let message = match serde_json::from_slice::<Value>(body) {
        Ok(value) if value.get("error").is_some_and(|error| !error.is_null()) => error_text(&value["error"]),
        _ => {
            // Not Ollama's error shape (a proxy's HTML page, plain text): a readable excerpt.
            let text = String::from_utf8_lossy(body);
            let excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect();
            match (excerpt.is_empty(), reason) {
                (true, Some(reason)) => reason.to_owned(),
                _ => excerpt,
            }
        }
    };
    error_from(Some(status), message)
}

/// An `{"error": …}` line inside a stream.
pub(crate) fn in_stream_error(error: &Value) -> ProviderError {
    error_from(None, error_text(error))
}

fn error_text(error: &Value) -> String {
    match error {
        Value::String(text) => text.clone(),
        Value::Object(object) => match object.get("message") {
            Some(Value::String(text)) => text.clone(),
            _ => error.to_string(),
        },
        other => other.to_string(),
    }
}

/// The shared classification, plus Ollama's own wording of a missing model
/// (`model 'x' not found, try pulling it first`), which it also sends inside streams.
fn error_from(status: Option<u16>, message: String) -> ProviderError {
    let mut error = ErrorInfo { message, ..ErrorInfo::default() }.into_error(status);
    let lower = error.detail.to_lowercase();
    let missing_model =
        lower.contains("try pulling it first") || (lower.contains("model") && lower.contains("not found"));
    if missing_model && matches!(error.kind, ProviderErrorKind::BadRequest | ProviderErrorKind::Unavailable) {
        error.kind = ProviderErrorKind::ModelNotFound;
    }
    error
}

#[cfg(test)]
mod tests;
