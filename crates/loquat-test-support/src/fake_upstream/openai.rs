//! OpenAI Chat Completions and its Azure dialect. OpenAI: `POST /v1/chat/completions` (SSE
//! `chat.completion.chunk`s ending with `data: [DONE]`, or a whole `chat.completion`),
//! `GET /v1/models`, `POST /v1/embeddings`, bearer keys. Azure: the same chunks under
//! `/openai/deployments/{deployment}/chat/completions?api-version=…`, opened by Azure's
//! `prompt_filter_results` chunk (empty `choices`), with `api-key` keys, Azure's error bodies and
//! `retry-after-ms`. The hot path (the benchmark's) only clones pre-rendered pieces. Media:
//! `/v1/audio/speech` (MP3 bytes: an ID3 header and the reply's text), `/v1/audio/transcriptions`
//! (the reply's text as the transcript) and `/v1/images/generations` (`n` small PNGs as base64,
//! the reply's text as the revised prompt); a queued HTTP error answers any of them.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::HeaderName;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::embeddings::{inputs_of, openai_answer};
use super::reply::{HttpError, Script, openai_call_id};
use super::stream::{Out, Outcome, Render, ReplyStream, Whole, broken_body, play_whole};
use super::{KeyCheck, Shared, bearer, header, json_error, query_param, respond, unix_now};

const ROLE: &[u8] =
    b"\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
const DELTA_OPEN: &[u8] = b"\"choices\":[{\"index\":0,\"delta\":{";
const DELTA_CLOSE: &[u8] = b"},\"finish_reason\":null}]}\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";
const SERVER_ERROR: &[u8] = b"data: {\"error\":{\"message\":\"The server had an error while processing your request. \
Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";
/// Azure's first chunk: the prompt's content-filter verdict, with no choice.
const AZURE_PROMPT_FILTER: &[u8] = b"data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\",\
\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":{\"filtered\":false,\
\"severity\":\"safe\"},\"jailbreak\":{\"filtered\":false,\"detected\":false},\"self_harm\":{\"filtered\":false,\
\"severity\":\"safe\"},\"sexual\":{\"filtered\":false,\"severity\":\"safe\"},\"violence\":{\"filtered\":false,\
\"severity\":\"safe\"}}}]}\n\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flavor {
    OpenAi,
    Azure,
}

pub(super) fn openai_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1/chat/completions", post(openai_chat))
        .route("/v1/models", get(openai_models))
        .route("/v1/embeddings", post(openai_embeddings))
        .route("/v1/audio/speech", post(speech))
        .route("/v1/audio/transcriptions", post(transcription))
        .route("/v1/images/generations", post(images))
        .fallback(openai_unknown)
}

pub(super) fn azure_routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/openai/deployments/{deployment}/chat/completions", post(azure_chat))
        .route("/openai/models", get(azure_models))
        .route("/openai/deployments/{deployment}/embeddings", post(azure_embeddings))
        .fallback(azure_unknown)
}

async fn openai_chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat(shared, Flavor::OpenAi, method, uri, headers, body).await
}

async fn azure_chat(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    chat(shared, Flavor::Azure, method, uri, headers, body).await
}

/// The SSE chunks of one answer. `head` is `data: {"id":…,"object":"chat.completion.chunk",
/// "created":…,"model":…,` for this request; every frame is the head plus shared pieces.
struct ChunkRender {
    head: Bytes,
    include_usage: bool,
    azure: bool,
}

impl Render for ChunkRender {
    fn open(&mut self, _script: &Script, out: &mut Out) {
        if self.azure {
            out.push_static(AZURE_PROMPT_FILTER);
        }
        out.push(self.head.clone());
        out.push_static(ROLE);
    }

    fn chunk(&mut self, script: &Script, index: usize, out: &mut Out) {
        for delta in script.openai_deltas(index) {
            out.push(self.head.clone());
            out.push_static(DELTA_OPEN);
            out.push(delta.clone());
            out.push_static(DELTA_CLOSE);
        }
    }

    fn finish(&mut self, script: &Script, out: &mut Out) {
        out.push(self.head.clone());
        out.push(script.openai.finish_frame.clone());
        if let Some(usage) = script.openai.usage_frame.as_ref().filter(|_| self.include_usage) {
            out.push(self.head.clone());
            out.push(usage.clone());
        }
        out.push_static(DONE);
    }

    fn fail(&mut self, _script: &Script, out: &mut Out) {
        out.push_static(SERVER_ERROR);
    }
}

async fn chat(
    shared: Arc<Shared>,
    flavor: Flavor,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.receive(&method, &uri, &headers, &body);
    if let Some(refusal) = refuse(&shared, flavor, &uri, &headers) {
        return refusal;
    }
    let Some(request) = parsed else {
        let message = "We could not parse the JSON body of your request.";
        return error(flavor, 400, message, "invalid_request_error", None, None);
    };
    if let Some(message) = invalid(&request) {
        return error(flavor, 400, &message, "invalid_request_error", None, None);
    }
    let model = match flavor {
        Flavor::OpenAi => request["model"].as_str().unwrap_or("fake-model").to_owned(),
        Flavor::Azure => uri.path().split('/').nth(3).unwrap_or_default().to_owned(),
    };
    let streamed = request["stream"].as_bool().unwrap_or(false);
    let include_usage = request["stream_options"]["include_usage"].as_bool().unwrap_or(false);
    let reply = shared.next_reply();
    if let Some(http_error) = &reply.0.http_error {
        return scripted_error(flavor, http_error, reply.0.retry_after, &model);
    }
    let id = shared.next_id();
    let created = unix_now();
    let outcome = Outcome::new(Arc::clone(&shared));
    if !streamed {
        return complete(flavor, &reply.0, outcome, id, created, &model).await;
    }
    let head = format!(
        "data: {{\"id\":\"chatcmpl-fake{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},",
        Value::from(model)
    );
    let render = ChunkRender { head: Bytes::from(head), include_usage, azure: flavor == Flavor::Azure };
    let content_type = if flavor == Flavor::Azure { "text/event-stream; charset=utf-8" } else { "text/event-stream" };
    ReplyStream::new(Arc::clone(&reply.0), render, outcome).into_response(content_type)
}

/// What the real API says about a malformed conversation, if this one is: arguments of tool
/// calls are JSON text, and a tool result answers a call made before it.
fn invalid(request: &Value) -> Option<String> {
    let mut calls: Vec<&str> = Vec::new();
    for (index, message) in request["messages"].as_array()?.iter().enumerate() {
        for (at, call) in message["tool_calls"].as_array().into_iter().flatten().enumerate() {
            if !call["function"]["arguments"].is_string() {
                return Some(format!(
                    "Invalid type for 'messages[{index}].tool_calls[{at}].function.arguments': expected a string, \
                     but got {} instead.",
                    if call["function"]["arguments"].is_object() { "an object" } else { "another type" }
                ));
            }
            calls.extend(call["id"].as_str());
        }
        if message["role"] == "tool" && !message["tool_call_id"].as_str().is_some_and(|id| calls.contains(&id)) {
            return Some(
                "Invalid parameter: messages with role 'tool' must be a response to a preceeding message with \
                 'tool_calls'."
                    .to_owned(),
            );
        }
    }
    None
}

/// The refusal of a request without the right key (or, on Azure, without an `api-version`).
fn refuse(shared: &Shared, flavor: Flavor, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    match flavor {
        Flavor::OpenAi => (shared.check_key(bearer(headers)) != KeyCheck::Accepted).then(|| {
            let message = "Incorrect API key provided. You can find your API key at \
                           https://platform.openai.com/account/api-keys.";
            error(flavor, 401, message, "invalid_request_error", Some("invalid_api_key"), None)
        }),
        Flavor::Azure => {
            if query_param(uri.query(), "api-version").is_none_or(|version| version.is_empty()) {
                return Some(azure_error(404, "404", "Resource not found", None));
            }
            (shared.check_key(header(headers, "api-key")) != KeyCheck::Accepted).then(|| {
                let message = "Access denied due to invalid subscription key or wrong API endpoint. Make sure to \
                               provide a valid key for an active subscription and use a correct regional API \
                               endpoint for your resource.";
                azure_error(401, "401", message, None)
            })
        }
    }
}

/// A non-streamed `chat.completion`, after the time the stream would have taken.
async fn complete(
    flavor: Flavor,
    script: &Script,
    mut outcome: Outcome,
    id: u64,
    created: u64,
    model: &str,
) -> Response {
    match play_whole(script, &mut outcome).await {
        Whole::Complete => {}
        Whole::Failed => return error(flavor, 500, SERVER_ERROR_MESSAGE, "server_error", None, None),
        Whole::Disconnected => return broken_body(),
    }
    let mut message = json!({ "role": "assistant", "content": script.content.concat() });
    if !script.reasoning.is_empty() {
        message["reasoning_content"] = Value::from(script.reasoning.concat());
    }
    if !script.tool_calls.is_empty() {
        let calls: Vec<Value> = script
            .tool_calls
            .iter()
            .enumerate()
            .map(|(index, call)| {
                json!({ "id": openai_call_id(index), "type": "function",
                        "function": { "name": call.name, "arguments": call.arguments } })
            })
            .collect();
        message["tool_calls"] = Value::Array(calls);
    }
    let mut answer = json!({
        "id": format!("chatcmpl-fake{id}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": script.finish_reason }],
    });
    if let Some(usage) = script.openai_usage_json() {
        answer["usage"] = usage;
    }
    axum::Json(answer).into_response()
}

const SERVER_ERROR_MESSAGE: &str = "The server had an error while processing your request. Sorry about that!";

/// The scripted HTTP error: the body as given, or the flavor's own error for the status.
fn scripted_error(flavor: Flavor, http_error: &HttpError, retry_after: Option<u64>, model: &str) -> Response {
    let status = http_error.status();
    if let HttpError::Body(_, body) = http_error {
        return with_retry_headers(flavor, status, body.clone(), retry_after);
    }
    if flavor == Flavor::Azure {
        let wait = retry_after.unwrap_or(1);
        let (code, message) = match status {
            400 => ("BadRequest", "Invalid value for 'messages': the messages are malformed.".to_owned()),
            401 => ("401", "Access denied due to invalid subscription key or wrong API endpoint.".to_owned()),
            403 => ("403", "Public access is disabled. Please configure private endpoint.".to_owned()),
            404 => (
                "DeploymentNotFound",
                "The API deployment for this resource does not exist. If you created the deployment within the \
                 last 5 minutes, please wait a moment and try again."
                    .to_owned(),
            ),
            429 => (
                "429",
                format!(
                    "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version 2024-10-21 have \
                     exceeded call rate limit of your current OpenAI S0 pricing tier. Please retry after {wait} \
                     seconds. Please go here: https://aka.ms/oai/quotaincrease if you would like to further increase \
                     the default rate limit."
                ),
            ),
            _ => ("InternalServerError", "The service is temporarily unable to process your request.".to_owned()),
        };
        return azure_error(status, code, &message, retry_after);
    }
    let (message, kind, code) = match status {
        400 => ("Invalid value for 'messages': the messages are malformed.".to_owned(), "invalid_request_error", None),
        401 => ("Incorrect API key provided.".to_owned(), "invalid_request_error", Some("invalid_api_key")),
        403 => ("Country, region, or territory not supported".to_owned(), "request_forbidden", None),
        404 => (
            format!("The model `{model}` does not exist or you do not have access to it."),
            "invalid_request_error",
            Some("model_not_found"),
        ),
        413 => ("Request too large.".to_owned(), "invalid_request_error", None),
        429 => (
            format!(
                "Rate limit reached for {model} in organization org-fake on requests per min (RPM): Limit 3, \
                 Used 3, Requested 1. Please try again in 20s."
            ),
            "requests",
            Some("rate_limit_exceeded"),
        ),
        503 => ("The engine is currently overloaded, please try again later".to_owned(), "server_error", None),
        _ => (SERVER_ERROR_MESSAGE.to_owned(), "server_error", None),
    };
    error(flavor, status, &message, kind, code, retry_after)
}

fn error(flavor: Flavor, status: u16, message: &str, kind: &str, code: Option<&str>, retry: Option<u64>) -> Response {
    let body = json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    with_retry_headers(flavor, status, Bytes::from(body.to_string()), retry)
}

/// Azure's own error shape: `{"error":{"code":"…","message":"…"}}`.
fn azure_error(status: u16, code: &str, message: &str, retry_after: Option<u64>) -> Response {
    let body = json!({ "error": { "code": code, "message": message } });
    with_retry_headers(Flavor::Azure, status, Bytes::from(body.to_string()), retry_after)
}

fn with_retry_headers(flavor: Flavor, status: u16, body: Bytes, retry_after: Option<u64>) -> Response {
    match (flavor, retry_after) {
        (Flavor::Azure, Some(seconds)) => {
            let headers = [
                (HeaderName::from_static("retry-after"), seconds.to_string()),
                (HeaderName::from_static("retry-after-ms"), (seconds * 1000).to_string()),
            ];
            respond(status, "application/json", body, &headers)
        }
        _ => json_error(status, body, retry_after),
    }
}

async fn openai_models(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    models(shared, Flavor::OpenAi, method, uri, headers)
}

async fn azure_models(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    models(shared, Flavor::Azure, method, uri, headers)
}

fn models(shared: Arc<Shared>, flavor: Flavor, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    if let Some(refusal) = refuse(&shared, flavor, &uri, &headers) {
        return refusal;
    }
    let data: Vec<Value> = shared
        .models()
        .into_iter()
        .map(|id| match flavor {
            Flavor::OpenAi => json!({ "id": id, "object": "model", "created": 0, "owned_by": "loquat-fake" }),
            Flavor::Azure => json!({
                "id": id, "object": "model", "status": "succeeded", "created_at": 1_715_000_000,
                "capabilities": { "chat_completion": true, "completion": false, "embeddings": false,
                                  "fine_tune": false, "inference": true },
                "lifecycle_status": "generally-available",
                "deprecation": { "inference": 1_767_225_600 },
            }),
        })
        .collect();
    axum::Json(json!({ "object": "list", "data": data })).into_response()
}

async fn openai_embeddings(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    embeddings(shared, Flavor::OpenAi, method, uri, headers, body)
}

async fn azure_embeddings(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    embeddings(shared, Flavor::Azure, method, uri, headers, body)
}

/// Vectors for `input` (see `embeddings::fake_embedding`), after the key check; a queued
/// reply's HTTP error is sent instead.
fn embeddings(
    shared: Arc<Shared>,
    flavor: Flavor,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.receive(&method, &uri, &headers, &body);
    if let Some(refusal) = refuse(&shared, flavor, &uri, &headers) {
        return refusal;
    }
    let Some(request) = parsed else {
        let message = "We could not parse the JSON body of your request.";
        return error(flavor, 400, message, "invalid_request_error", None, None);
    };
    let model = match flavor {
        Flavor::OpenAi => request["model"].as_str().unwrap_or_default().to_owned(),
        Flavor::Azure => uri.path().split('/').nth(3).unwrap_or_default().to_owned(),
    };
    let Some(inputs) = inputs_of(&request).filter(|inputs| !inputs.is_empty() && !model.is_empty()) else {
        let message = "'input' must be a string or an array of strings, and 'model' is required.";
        return error(flavor, 400, message, "invalid_request_error", None, None);
    };
    let reply = shared.next_reply();
    if let Some(http_error) = &reply.0.http_error {
        return scripted_error(flavor, http_error, reply.0.retry_after, &model);
    }
    axum::Json(openai_answer(&model, &inputs, request["encoding_format"] == "base64")).into_response()
}

async fn openai_unknown(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    let message = format!("Unknown request URL: {method} {}.", uri.path());
    let body = json!({ "error": { "message": message, "type": "invalid_request_error", "param": null,
                                  "code": "unknown_url" } });
    json_error(404, body.to_string(), None)
}

async fn azure_unknown(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    azure_error(404, "404", "Resource not found", None)
}

/// A 1×1 PNG.
const PIXEL_PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9C, 0x63, 0xF8, 0xCF, 0xC0, 0xF0, 0x1F, 0x00, 0x05, 0x00, 0x01, 0xFF, 0x89, 0x99, 0x3D,
    0x1D, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// The key check and the next reply of a media request, or the response refusing it.
fn media_reply(
    shared: &Shared,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<String, Box<Response>> {
    shared.receive(method, uri, headers, body);
    if let Some(refusal) = refuse(shared, Flavor::OpenAi, uri, headers) {
        return Err(Box::new(refusal));
    }
    let reply = shared.next_reply();
    if let Some(http_error) = &reply.0.http_error {
        return Err(Box::new(scripted_error(Flavor::OpenAi, http_error, reply.0.retry_after, "media")));
    }
    Ok(reply.content())
}

async fn speech(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = match media_reply(&shared, &method, &uri, &headers, &body) {
        Ok(text) => text,
        Err(refusal) => return *refusal,
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    if request["input"].as_str().is_none_or(str::is_empty) || request["voice"].as_str().is_none() {
        return error(Flavor::OpenAi, 400, "'input' and 'voice' are required.", "invalid_request_error", None, None);
    }
    let mut audio = b"ID3\x04\x00\x00\x00\x00\x00\x00".to_vec();
    audio.extend_from_slice(text.as_bytes());
    ([(axum::http::header::CONTENT_TYPE, "audio/mpeg")], audio).into_response()
}

async fn transcription(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = match media_reply(&shared, &method, &uri, &headers, &body) {
        Ok(text) => text,
        Err(refusal) => return *refusal,
    };
    let multipart =
        headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("multipart/"));
    let has_file = body.windows(b"name=\"file\"".len()).any(|window| window == b"name=\"file\"");
    if !multipart || !has_file {
        return error(Flavor::OpenAi, 400, "A file is required.", "invalid_request_error", None, None);
    }
    axum::Json(json!({ "text": text })).into_response()
}

async fn images(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    use base64::Engine;
    let revised = match media_reply(&shared, &method, &uri, &headers, &body) {
        Ok(text) => text,
        Err(refusal) => return *refusal,
    };
    let request: Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(prompt) = request["prompt"].as_str().filter(|prompt| !prompt.is_empty()) else {
        return error(Flavor::OpenAi, 400, "'prompt' is required.", "invalid_request_error", None, None);
    };
    let count = request["n"].as_u64().unwrap_or(1).clamp(1, 10);
    let revised = if revised.is_empty() { prompt.to_owned() } else { revised };
    // Each picture its own bytes (a byte after the image's end, which readers ignore).
    let image = |place: u64| base64::engine::general_purpose::STANDARD.encode([PIXEL_PNG, &[place as u8]].concat());
    let data: Vec<Value> =
        (0..count).map(|place| json!({ "b64_json": image(place), "revised_prompt": revised })).collect();
    axum::Json(json!({ "created": unix_now(), "data": data })).into_response()
}
