//! Gemini (`generativelanguage.googleapis.com/v1beta`): `POST models/{model}:streamGenerateContent`
//! streams whole `GenerateContentResponse` objects — with `?alt=sse` as `data:` events framed
//! with CRLF, as Google does, else as one JSON array written piece by piece — each with a
//! `candidates` array whose `content.parts` hold text, `thought: true` reasoning or
//! `functionCall`s (all calls in one event), `usageMetadata` on every event, and `finishReason`
//! riding on the last content event. `:generateContent` answers whole. Keys come in
//! `x-goog-api-key` (or `?key=`); a wrong key is a 400 `API_KEY_INVALID`, a missing one a 403.
//! Errors are `{"error":{"code","message","status","details"}}` (a 429 names the wait in a
//! `RetryInfo` detail, with no `Retry-After` header). Requests with fields Gemini does not know
//! or roles other than `user`/`model` are refused as the real API refuses them.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde_json::{Value, json};

use super::reply::{Ending, HttpError, Piece, Script};
use super::stream::{Out, Outcome, Render, ReplyStream, Whole, broken_body, play_whole};
use super::{KeyCheck, Shared, header, json_error, query_param, respond};

/// The `thoughtSignature` on the first function call of an answer that reasoned.
pub const THOUGHT_SIGNATURE: &str = "CiQB0e2Kb3FakeThoughtSignatureForLoquatTests";

const REQUEST_FIELDS: &[&str] = &[
    "contents",
    "tools",
    "toolConfig",
    "tool_config",
    "safetySettings",
    "safety_settings",
    "systemInstruction",
    "system_instruction",
    "generationConfig",
    "generation_config",
    "cachedContent",
    "cached_content",
];
const GENERATION_FIELDS: &[&str] = &[
    "stopSequences",
    "stop_sequences",
    "responseMimeType",
    "response_mime_type",
    "responseSchema",
    "response_schema",
    "responseJsonSchema",
    "response_json_schema",
    "responseModalities",
    "response_modalities",
    "candidateCount",
    "candidate_count",
    "maxOutputTokens",
    "max_output_tokens",
    "temperature",
    "topP",
    "top_p",
    "topK",
    "top_k",
    "seed",
    "presencePenalty",
    "presence_penalty",
    "frequencyPenalty",
    "frequency_penalty",
    "responseLogprobs",
    "response_logprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "speech_config",
    "thinkingConfig",
    "thinking_config",
    "mediaResolution",
    "media_resolution",
];

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v1beta/models", get(list_models))
        .route("/v1beta/models/{name}", get(get_model).post(generate))
        .fallback(unknown)
}

/// Gemini's `finishReason` for the script's (OpenAI-vocabulary) finish reason.
fn finish_reason(reason: &str) -> &'static str {
    match reason {
        "stop" | "tool_calls" => "STOP",
        "length" => "MAX_TOKENS",
        "content_filter" => "SAFETY",
        _ => "OTHER",
    }
}

/// `usageMetadata`: the prompt only until the end, then everything, the reasoning counted
/// apart (`candidatesTokenCount` excludes `thoughtsTokenCount`).
fn usage_metadata(script: &Script, complete: bool) -> Value {
    let (prompt, completion) = script.usage_or_default();
    let details = json!([{ "modality": "TEXT", "tokenCount": prompt }]);
    if !complete {
        return json!({ "promptTokenCount": prompt, "totalTokenCount": prompt, "promptTokensDetails": details });
    }
    let thoughts = script.reasoning_tokens().min(completion);
    let mut usage = json!({
        "promptTokenCount": prompt,
        "candidatesTokenCount": completion - thoughts,
        "totalTokenCount": u64::from(prompt) + u64::from(completion),
        "promptTokensDetails": details,
    });
    if thoughts > 0 {
        usage["thoughtsTokenCount"] = Value::from(thoughts);
    }
    usage
}

/// The `functionCall` parts of every tool call of the script.
fn call_parts(script: &Script) -> Vec<Value> {
    let mut parts: Vec<Value> = script
        .tool_calls
        .iter()
        .map(|call| json!({ "functionCall": { "name": call.name, "args": call.input } }))
        .collect();
    if let Some(first) = parts.first_mut().filter(|_| !script.reasoning.is_empty()) {
        first["thoughtSignature"] = Value::from(THOUGHT_SIGNATURE);
    }
    parts
}

/// One `GenerateContentResponse`.
fn response(script: &Script, parts: Vec<Value>, last: bool, model: &str, id: &str) -> Value {
    let mut candidate = json!({ "content": { "parts": parts, "role": "model" }, "index": 0 });
    if last {
        candidate["finishReason"] = Value::from(finish_reason(&script.finish_reason));
    }
    json!({ "candidates": [candidate], "usageMetadata": usage_metadata(script, last), "modelVersion": model,
            "responseId": id })
}

/// The events of one streamed answer.
struct EventRender {
    sse: bool,
    first: bool,
    finished: bool,
    model: String,
    id: String,
}

impl EventRender {
    fn frame(&mut self, value: &Value, out: &mut Out) {
        if self.sse {
            out.push(format!("data: {value}\r\n\r\n"));
        } else {
            out.push(format!("{}{value}", if self.first { "[" } else { ",\r\n" }));
        }
        self.first = false;
    }

    fn close(&mut self, out: &mut Out) {
        if !self.sse {
            out.push(if self.first { "[]" } else { "]" });
        }
    }
}

impl Render for EventRender {
    fn chunk(&mut self, script: &Script, index: usize, out: &mut Out) {
        let (parts, last) = match script.piece(index) {
            Some(Piece::Reasoning(text)) => {
                (vec![json!({ "text": text, "thought": true })], script.is_last_chunk(index))
            }
            Some(Piece::Text(text)) => (vec![json!({ "text": text })], script.is_last_chunk(index)),
            // Parallel calls come together, in one event.
            Some(Piece::Tool(0, _)) => (call_parts(script), script.ending == Ending::Complete),
            Some(Piece::Tool(..)) | None => return,
        };
        self.finished |= last;
        let event = response(script, parts, last, &self.model, &self.id);
        self.frame(&event, out);
    }

    fn finish(&mut self, script: &Script, out: &mut Out) {
        if !self.finished {
            let event = response(script, vec![json!({ "text": "" })], true, &self.model, &self.id);
            self.frame(&event, out);
        }
        self.close(out);
    }

    fn fail(&mut self, _script: &Script, out: &mut Out) {
        let message = "An internal error has occurred. Please retry or report in \
                       https://developers.generativeai.google/guide/troubleshooting";
        self.frame(&json!({ "error": { "code": 500, "message": message, "status": "INTERNAL" } }), out);
        self.close(out);
    }
}

fn error_value(code: u16, status: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message, "status": status } })
}

fn error(code: u16, status: &str, message: &str) -> Response {
    json_error(code, error_value(code, status, message).to_string(), None)
}

/// The refusal of a request without the right key.
fn refuse(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
    let key = header(headers, "x-goog-api-key").map(str::to_owned).or_else(|| query_param(uri.query(), "key"));
    match shared.check_key(key.as_deref()) {
        KeyCheck::Accepted => None,
        KeyCheck::Missing => Some(error(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). Please use API Key \
             or other form of API consumer identity to call this API.",
        )),
        KeyCheck::Wrong => {
            let message = "API key not valid. Please pass a valid API key.";
            let mut body = error_value(400, "INVALID_ARGUMENT", message);
            body["error"]["details"] = json!([
                { "@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID",
                  "domain": "googleapis.com", "metadata": { "service": "generativelanguage.googleapis.com" } },
                { "@type": "type.googleapis.com/google.rpc.LocalizedMessage", "locale": "en-US", "message": message },
            ]);
            Some(json_error(400, body.to_string(), None))
        }
    }
}

/// What the real API says about a malformed request, if this one is.
fn invalid(request: &Value) -> Option<String> {
    let unknown =
        |object: &Value, known: &[&str]| object.as_object()?.keys().find(|key| !known.contains(&key.as_str())).cloned();
    if let Some(field) = unknown(request, REQUEST_FIELDS) {
        return Some(format!("Invalid JSON payload received. Unknown name \"{field}\": Cannot find field."));
    }
    let config = request.get("generationConfig").or_else(|| request.get("generation_config"));
    if let Some(field) = config.and_then(|config| unknown(config, GENERATION_FIELDS)) {
        return Some(format!(
            "Invalid JSON payload received. Unknown name \"{field}\" at 'generation_config': Cannot find field."
        ));
    }
    let contents = request["contents"].as_array().filter(|contents| !contents.is_empty());
    let Some(contents) = contents else {
        return Some("* GenerateContentRequest.contents: contents is not specified\n".to_owned());
    };
    let mut calls_before = 0;
    for (index, content) in contents.iter().enumerate() {
        if !matches!(content.get("role").and_then(Value::as_str), None | Some("user" | "model" | "function")) {
            return Some("Please use a valid role: user, model.".to_owned());
        }
        let Some(parts) = content["parts"].as_array().filter(|parts| !parts.is_empty()) else {
            return Some(format!(
                "* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.\n"
            ));
        };
        let field = |part: &'_ Value, camel: &str, snake: &str| part.get(camel).or_else(|| part.get(snake)).cloned();
        let (mut calls, mut responses) = (0, 0);
        for (at, part) in parts.iter().enumerate() {
            if let Some(call) = field(part, "functionCall", "function_call") {
                calls += 1;
                if !call["args"].is_object() && !call["args"].is_null() {
                    return Some(format!(
                        "Invalid value at 'contents[{index}].parts[{at}].function_call.args' \
                         (type.googleapis.com/google.protobuf.Struct), {}",
                        call["args"]
                    ));
                }
            }
            if let Some(response) = field(part, "functionResponse", "function_response") {
                responses += 1;
                if !response["response"].is_object() {
                    return Some(format!(
                        "Invalid value at 'contents[{index}].parts[{at}].function_response.response' \
                         (type.googleapis.com/google.protobuf.Struct), {}",
                        response["response"]
                    ));
                }
            }
        }
        if responses > 0 && calls_before == 0 {
            return Some(
                "Please ensure that function response turn comes immediately after a function call turn.".to_owned(),
            );
        }
        if responses > 0 && responses != calls_before {
            return Some(
                "Please ensure that the number of function response parts is equal to the number of function call \
                 parts of the function call turn."
                    .to_owned(),
            );
        }
        calls_before = calls;
    }
    None
}

async fn generate(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.receive(&method, &uri, &headers, &body);
    let name = uri.path().rsplit('/').next().unwrap_or_default().to_owned();
    let Some((model, action)) = name.split_once(':') else {
        return not_found_page(&uri);
    };
    let streamed = match action {
        "streamGenerateContent" => true,
        "generateContent" => false,
        _ => return not_found_page(&uri),
    };
    if let Some(refusal) = refuse(&shared, &uri, &headers) {
        return refusal;
    }
    let Some(request) = parsed else {
        return error(400, "INVALID_ARGUMENT", "Invalid JSON payload received. Unexpected token.");
    };
    if let Some(message) = invalid(&request) {
        return error(400, "INVALID_ARGUMENT", &message);
    }
    let reply = shared.next_reply();
    if let Some(http_error) = &reply.0.http_error {
        return scripted_error(http_error, reply.0.retry_after, model);
    }
    let id = format!("fakeResponse{}", shared.next_id());
    let outcome = Outcome::new(Arc::clone(&shared));
    if !streamed {
        return whole(&reply.0, outcome, model, &id).await;
    }
    let sse = query_param(uri.query(), "alt").as_deref() == Some("sse");
    let render = EventRender { sse, first: true, finished: false, model: model.to_owned(), id };
    let content_type = if sse { "text/event-stream" } else { "application/json; charset=UTF-8" };
    ReplyStream::new(Arc::clone(&reply.0), render, outcome).into_response(content_type)
}

/// A non-streamed `GenerateContentResponse`, after the time the stream would have taken.
async fn whole(script: &Script, mut outcome: Outcome, model: &str, id: &str) -> Response {
    match play_whole(script, &mut outcome).await {
        Whole::Complete => {}
        Whole::Failed => return error(500, "INTERNAL", "An internal error has occurred."),
        Whole::Disconnected => return broken_body(),
    }
    let mut parts = Vec::new();
    if !script.reasoning.is_empty() {
        parts.push(json!({ "text": script.reasoning.concat(), "thought": true }));
    }
    if !script.content.is_empty() {
        parts.push(json!({ "text": script.content.concat() }));
    }
    parts.extend(call_parts(script));
    axum::Json(response(script, parts, true, model, id)).into_response()
}

/// The scripted HTTP error: the body as given, or Gemini's own error for the status; a wait
/// goes into a `RetryInfo` detail.
fn scripted_error(http_error: &HttpError, retry_after: Option<u64>, model: &str) -> Response {
    let (status, mut body) = match http_error {
        HttpError::Body(status, body) => match serde_json::from_slice::<Value>(body) {
            Ok(value) if retry_after.is_some() && value["error"].is_object() => (*status, value),
            _ => return json_error(*status, body.clone(), None),
        },
        HttpError::Status(status) => (*status, status_error(*status, model, retry_after)),
    };
    if let Some(seconds) = retry_after {
        let info = json!({ "@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": format!("{seconds}s") });
        match body["error"]["details"].as_array_mut() {
            Some(details) => details.push(info),
            None => body["error"]["details"] = json!([info]),
        }
    }
    json_error(status, body.to_string(), None)
}

fn status_error(status: u16, model: &str, retry_after: Option<u64>) -> Value {
    let (code, message) = match status {
        400 | 413 => ("INVALID_ARGUMENT", "Request contains an invalid argument.".to_owned()),
        401 => ("UNAUTHENTICATED", "Request had invalid authentication credentials.".to_owned()),
        403 => ("PERMISSION_DENIED", "The caller does not have permission".to_owned()),
        404 => (
            "NOT_FOUND",
            format!(
                "models/{model} is not found for API version v1beta, or is not supported for generateContent. \
                 Call ListModels to see the list of available models and their supported methods."
            ),
        ),
        // What the real API says when a per-minute limit is reached.
        429 => (
            "RESOURCE_EXHAUSTED",
            format!(
                "You exceeded your current quota, please check your plan and billing details. For more information \
                 on this error, head to: https://ai.google.dev/gemini-api/docs/rate-limits.\n* Quota exceeded for \
                 metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 10, model: \
                 {model}\nPlease retry in {}s.",
                retry_after.unwrap_or(30)
            ),
        ),
        503 => ("UNAVAILABLE", "The model is overloaded. Please try again later.".to_owned()),
        504 => ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete.".to_owned()),
        _ => ("INTERNAL", "An internal error has occurred.".to_owned()),
    };
    let mut body = error_value(status, code, &message);
    if status == 429 {
        body["error"]["details"] = json!([
            { "@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{
                "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                "quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
                "quotaDimensions": { "location": "global", "model": model }, "quotaValue": "10" }] },
            { "@type": "type.googleapis.com/google.rpc.Help",
              "links": [{ "description": "Learn more about Gemini API quotas",
                          "url": "https://ai.google.dev/gemini-api/docs/rate-limits" }] },
        ]);
    }
    body
}

fn model_entry(id: &str) -> Value {
    json!({
        "name": format!("models/{id}"), "version": "001", "displayName": id,
        "description": "A fake Gemini model.", "inputTokenLimit": 1_048_576, "outputTokenLimit": 65_536,
        "supportedGenerationMethods": ["generateContent", "countTokens", "createCachedContent", "batchGenerateContent"],
        "temperature": 1, "topP": 0.95, "topK": 64, "maxTemperature": 2, "thinking": true,
    })
}

/// `GET /v1beta/models`, paged by `pageSize` (default 50, at most 1000) and `pageToken`.
async fn list_models(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    if let Some(refusal) = refuse(&shared, &uri, &headers) {
        return refusal;
    }
    let models = shared.models();
    let size = query_param(uri.query(), "pageSize").and_then(|size| size.parse::<usize>().ok());
    let size = size.filter(|size| *size > 0).unwrap_or(50).min(1000);
    let start = match query_param(uri.query(), "pageToken").filter(|token| !token.is_empty()) {
        Some(token) => match token.strip_prefix("fakePage").and_then(|start| start.parse::<usize>().ok()) {
            Some(start) => start,
            None => return error(400, "INVALID_ARGUMENT", "Invalid page token."),
        },
        None => 0,
    };
    let page: Vec<Value> = models.iter().skip(start).take(size).map(|id| model_entry(id)).collect();
    let mut answer = json!({ "models": page });
    if start + size < models.len() {
        answer["nextPageToken"] = Value::from(format!("fakePage{}", start + size));
    }
    axum::Json(answer).into_response()
}

async fn get_model(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    if let Some(refusal) = refuse(&shared, &uri, &headers) {
        return refusal;
    }
    let name = uri.path().rsplit('/').next().unwrap_or_default();
    if shared.models().iter().any(|model| model == name) {
        axum::Json(model_entry(name)).into_response()
    } else {
        error(404, "NOT_FOUND", &format!("models/{name} is not found for API version v1beta"))
    }
}

async fn unknown(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    not_found_page(&uri)
}

/// Google's front end answers unknown URLs with an HTML page, not JSON.
fn not_found_page(uri: &Uri) -> Response {
    let page = format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  \
         <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{}</code> was not found on this \
         server.  <ins>That’s all we know.</ins>\n",
        uri.path()
    );
    respond(404, "text/html; charset=UTF-8", page, &[])
}
