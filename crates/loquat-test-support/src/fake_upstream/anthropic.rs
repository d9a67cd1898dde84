//! Anthropic Messages: `POST /v1/messages` streamed as named SSE events — `message_start`,
//! per content block `content_block_start` / `content_block_delta` (`thinking_delta` then a
//! `signature_delta`, `text_delta`, `input_json_delta` pieces of a `tool_use`) /
//! `content_block_stop`, then `message_delta` (stop reason, `usage.output_tokens`) and
//! `message_stop` — with the awkward parts of the real stream: `ping` events between blocks
//! and every delta event cut in two TCP writes mid-JSON. Errors are
//! `{"type":"error","error":{"type","message"}}`, over HTTP or as an in-stream `event: error`.
//! `GET /v1/models` pages like the real one (`limit`, `after_id`, `has_more`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use serde_json::{Value, json};

use super::reply::{HttpError, Piece, Script};
use super::stream::{Out, Outcome, Render, ReplyStream, Whole, broken_body, play_whole};
use super::{KeyCheck, Shared, header, json_error, query_param};

/// The signature closing every thinking block the fake streams.
pub const THINKING_SIGNATURE: &str =
    "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds4FakeSignatureForLoquatTestsOnlyZ2l2ZSBpdCBiYWNr";

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/v1/messages", post(messages)).route("/v1/models", get(models)).fallback(unknown)
}

/// `event: {name}\ndata: {data}\n\n`.
fn event(name: &str, data: &Value) -> String {
    format!("event: {name}\ndata: {data}\n\n")
}

/// Anthropic's `stop_reason` for the script's (OpenAI-vocabulary) finish reason.
fn stop_reason(finish_reason: &str) -> &str {
    match finish_reason {
        "stop" => "end_turn",
        "length" => "max_tokens",
        "tool_calls" => "tool_use",
        "content_filter" => "refusal",
        other => other,
    }
}

fn tool_id(index: usize) -> String {
    format!("toolu_01Fake{index}")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Thinking,
    Text,
    Tool,
}

/// The event stream of one message.
struct EventRender {
    id: u64,
    model: String,
    /// The open content block and its index.
    block: Option<(Block, usize)>,
    next_index: usize,
}

impl EventRender {
    /// Closes the open block (a thinking block gets its signature first), then pings.
    fn close(&mut self, out: &mut Out) {
        let Some((block, index)) = self.block.take() else {
            return;
        };
        if block == Block::Thinking {
            let delta = json!({ "type": "signature_delta", "signature": THINKING_SIGNATURE });
            self.delta(index, delta, out);
        }
        out.push(event("content_block_stop", &json!({ "type": "content_block_stop", "index": index })));
        out.push(event("ping", &json!({ "type": "ping" })));
    }

    /// Opens a block of this kind unless one is open already; returns its index.
    fn enter(&mut self, block: Block, content_block: Value, out: &mut Out) -> usize {
        if let Some((open, index)) = self.block
            && open == block
            && block != Block::Tool
        {
            return index;
        }
        self.close(out);
        let index = self.next_index;
        self.next_index += 1;
        self.block = Some((block, index));
        let start = json!({ "type": "content_block_start", "index": index, "content_block": content_block });
        out.push(event("content_block_start", &start));
        index
    }

    fn delta(&self, index: usize, delta: Value, out: &mut Out) {
        let data = json!({ "type": "content_block_delta", "index": index, "delta": delta });
        out.push_split(event("content_block_delta", &data));
    }
}

impl Render for EventRender {
    fn open(&mut self, script: &Script, out: &mut Out) {
        let (prompt, _) = script.usage_or_default();
        let start = json!({ "type": "message_start", "message": {
            "id": format!("msg_01Fake{}", self.id), "type": "message", "role": "assistant", "model": self.model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": { "input_tokens": prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                       "output_tokens": 1 },
        }});
        out.push(event("message_start", &start));
        out.push(event("ping", &json!({ "type": "ping" })));
    }

    fn chunk(&mut self, script: &Script, index: usize, out: &mut Out) {
        match script.piece(index) {
            Some(Piece::Reasoning(text)) => {
                let block = self.enter(Block::Thinking, json!({ "type": "thinking", "thinking": "" }), out);
                self.delta(block, json!({ "type": "thinking_delta", "thinking": text }), out);
            }
            Some(Piece::Text(text)) => {
                let block = self.enter(Block::Text, json!({ "type": "text", "text": "" }), out);
                self.delta(block, json!({ "type": "text_delta", "text": text }), out);
            }
            Some(Piece::Tool(call_index, call)) => {
                let start = json!({ "type": "tool_use", "id": tool_id(call_index), "name": call.name, "input": {} });
                let block = self.enter(Block::Tool, start, out);
                self.delta(block, json!({ "type": "input_json_delta", "partial_json": "" }), out);
                for piece in &call.pieces {
                    self.delta(block, json!({ "type": "input_json_delta", "partial_json": piece }), out);
                }
            }
            None => {}
        }
    }

    fn finish(&mut self, script: &Script, out: &mut Out) {
        self.close(out);
        let (_, completion) = script.usage_or_default();
        let delta = json!({ "type": "message_delta",
            "delta": { "stop_reason": stop_reason(&script.finish_reason), "stop_sequence": null },
            "usage": { "output_tokens": completion } });
        out.push(event("message_delta", &delta));
        out.push(event("message_stop", &json!({ "type": "message_stop" })));
    }

    fn fail(&mut self, _script: &Script, out: &mut Out) {
        out.push(event("error", &error_body("overloaded_error", "Overloaded")));
    }
}

fn error_body(kind: &str, message: &str) -> Value {
    json!({ "type": "error", "error": { "type": kind, "message": message }, "request_id": "req_011CFakeRequest" })
}

fn error(status: u16, kind: &str, message: &str, retry_after: Option<u64>) -> Response {
    json_error(status, error_body(kind, message).to_string(), retry_after)
}

/// The refusal of a request without the right `x-api-key` (and `anthropic-version`).
fn refuse(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    match shared.check_key(header(headers, "x-api-key")) {
        KeyCheck::Missing => return Some(error(401, "authentication_error", "x-api-key header is required", None)),
        KeyCheck::Wrong => return Some(error(401, "authentication_error", "invalid x-api-key", None)),
        KeyCheck::Accepted => {}
    }
    let versioned = header(headers, "anthropic-version").is_some_and(|version| !version.is_empty());
    (shared.key_required() && !versioned)
        .then(|| error(400, "invalid_request_error", "anthropic-version: header is required", None))
}

/// What the real API says about a malformed request, if this one is.
fn invalid(request: &Value) -> Option<String> {
    for field in ["model", "max_tokens", "messages"] {
        if request.get(field).is_none_or(Value::is_null) {
            return Some(format!("{field}: Field required"));
        }
    }
    let messages = request["messages"].as_array()?;
    for (index, message) in messages.iter().enumerate() {
        match message["role"].as_str() {
            Some("user" | "assistant") => {}
            Some("system") => {
                return Some(
                    "messages: Unexpected role \"system\". The Messages API accepts a top-level `system` parameter, \
                     not \"system\" as an input message role."
                        .to_owned(),
                );
            }
            _ => return Some(format!("messages.{index}.role: Input should be 'user' or 'assistant'")),
        }
    }
    match &request["system"] {
        Value::Null | Value::String(_) => {}
        Value::Array(blocks) if blocks.iter().all(|block| block["type"] == "text") => {}
        _ => return Some("system: Input should be a valid list".to_owned()),
    }
    invalid_tool_turns(messages).or_else(|| invalid_thinking(request, messages))
}

fn blocks(message: &Value) -> impl Iterator<Item = &Value> {
    message["content"].as_array().into_iter().flatten()
}

/// Each `tool_use` is answered by a `tool_result` in the next message, and only so.
fn invalid_tool_turns(messages: &[Value]) -> Option<String> {
    for (index, message) in messages.iter().enumerate() {
        let uses: Vec<&str> =
            blocks(message).filter(|block| block["type"] == "tool_use").filter_map(|b| b["id"].as_str()).collect();
        if let Some(block) = blocks(message).find(|block| block["type"] == "tool_use" && !block["input"].is_object()) {
            let at = blocks(message).position(|candidate| candidate == block).unwrap_or(0);
            return Some(format!("messages.{index}.content.{at}.tool_use.input: Input should be a valid dictionary"));
        }
        let previous_uses: Vec<&str> = index
            .checked_sub(1)
            .and_then(|previous| messages.get(previous))
            .into_iter()
            .flat_map(blocks)
            .filter(|block| block["type"] == "tool_use")
            .filter_map(|block| block["id"].as_str())
            .collect();
        let results = blocks(message).filter(|block| block["type"] == "tool_result");
        if let Some(orphan) =
            results.filter_map(|block| block["tool_use_id"].as_str()).find(|id| !previous_uses.contains(id))
        {
            return Some(format!(
                "messages.{index}.content.0: unexpected `tool_use_id` found in `tool_result` blocks: {orphan}. Each \
                 `tool_result` block must have a corresponding `tool_use` block in the previous message."
            ));
        }
        let Some(next) = messages.get(index + 1) else { continue };
        let answered: Vec<&str> = blocks(next).filter_map(|block| block["tool_use_id"].as_str()).collect();
        if let Some(unanswered) = uses.iter().find(|id| !answered.contains(id)) {
            return Some(format!(
                "messages.{index}: `tool_use` ids were found without `tool_result` blocks immediately after: \
                 {unanswered}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."
            ));
        }
    }
    None
}

/// Extended thinking's rules: a budget of at least 1024 below `max_tokens`, no temperature
/// but 1, and a tool-use turn being answered opens with its signed thinking.
fn invalid_thinking(request: &Value, messages: &[Value]) -> Option<String> {
    let thinking = request.get("thinking").filter(|thinking| !thinking.is_null())?;
    match thinking["type"].as_str() {
        Some("enabled") => {
            let Some(budget) = thinking["budget_tokens"].as_u64() else {
                return Some("thinking.enabled.budget_tokens: Field required".to_owned());
            };
            if budget < 1024 {
                return Some(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024".to_owned(),
                );
            }
            if request["max_tokens"].as_u64().is_some_and(|max_tokens| max_tokens <= budget) {
                return Some(
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our \
                             documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
                        .to_owned(),
                );
            }
        }
        Some("adaptive") => {}
        Some("disabled") => return None,
        _ => {
            return Some(
                "thinking: Input tag does not match any of the expected tags: 'enabled', 'disabled'".to_owned(),
            );
        }
    }
    if request["temperature"].as_f64().is_some_and(|temperature| (temperature - 1.0).abs() > 1e-9) {
        return Some(
            "`temperature` may only be set to 1 when thinking is enabled or in redacted thinking mode. Please \
                     consult our documentation at https://docs.claude.com/en/docs/build-with-claude/extended-thinking"
                .to_owned(),
        );
    }
    let (index, last) = messages.iter().enumerate().rev().find(|(_, message)| message["role"] == "assistant")?;
    if !blocks(last).any(|block| block["type"] == "tool_use") || index + 2 != messages.len() {
        return None;
    }
    let first = blocks(last).next().unwrap_or(&Value::Null);
    match first["type"].as_str() {
        Some("thinking") if first["signature"].as_str().is_none_or(str::is_empty) => {
            Some(format!("messages.{index}.content.0.thinking.signature: Field required"))
        }
        Some("thinking" | "redacted_thinking") => None,
        other => Some(format!(
            "messages.{index}.content.0.type: Expected `thinking` or `redacted_thinking`, but found `{}`. When \
             `thinking` is enabled, a final `assistant` message must start with a thinking block (preceeding the \
             lastmost set of `tool_use` and `tool_result` blocks). We recommend you include thinking blocks from \
             previous turns. To avoid this requirement, disable `thinking`.",
            other.unwrap_or("text")
        )),
    }
}

async fn messages(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = shared.receive(&method, &uri, &headers, &body);
    if let Some(refusal) = refuse(&shared, &headers) {
        return refusal;
    }
    let Some(request) = parsed else {
        return error(400, "invalid_request_error", "There was an issue with the JSON body of your request.", None);
    };
    if let Some(message) = invalid(&request) {
        return error(400, "invalid_request_error", &message, None);
    }
    let model = request["model"].as_str().unwrap_or("claude-fake").to_owned();
    let reply = shared.next_reply();
    if let Some(http_error) = &reply.0.http_error {
        return scripted_error(http_error, reply.0.retry_after, &model);
    }
    let id = shared.next_id();
    let outcome = Outcome::new(Arc::clone(&shared));
    if request["stream"].as_bool() != Some(true) {
        return whole_message(&reply.0, outcome, id, &model).await;
    }
    let render = EventRender { id, model, block: None, next_index: 0 };
    ReplyStream::new(Arc::clone(&reply.0), render, outcome).into_response("text/event-stream; charset=utf-8")
}

/// A non-streamed `message`, after the time the stream would have taken.
async fn whole_message(script: &Script, mut outcome: Outcome, id: u64, model: &str) -> Response {
    match play_whole(script, &mut outcome).await {
        Whole::Complete => {}
        Whole::Failed => return error(529, "overloaded_error", "Overloaded", None),
        Whole::Disconnected => return broken_body(),
    }
    let mut content = Vec::new();
    if !script.reasoning.is_empty() {
        content.push(json!({ "type": "thinking", "thinking": script.reasoning.concat(),
                             "signature": THINKING_SIGNATURE }));
    }
    if !script.content.is_empty() {
        content.push(json!({ "type": "text", "text": script.content.concat() }));
    }
    for (index, call) in script.tool_calls.iter().enumerate() {
        content.push(json!({ "type": "tool_use", "id": tool_id(index), "name": call.name, "input": call.input }));
    }
    let (prompt, completion) = script.usage_or_default();
    axum::Json(json!({
        "id": format!("msg_01Fake{id}"), "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop_reason(&script.finish_reason), "stop_sequence": null,
        "usage": { "input_tokens": prompt, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                   "output_tokens": completion },
    }))
    .into_response()
}

/// The scripted HTTP error: the body as given, or Anthropic's own error for the status.
fn scripted_error(http_error: &HttpError, retry_after: Option<u64>, model: &str) -> Response {
    let status = match http_error {
        HttpError::Body(status, body) => return json_error(*status, body.clone(), retry_after),
        HttpError::Status(status) => *status,
    };
    let (kind, message) = match status {
        400 => ("invalid_request_error", "messages.0.content: Input should be a valid list".to_owned()),
        401 => ("authentication_error", "invalid x-api-key".to_owned()),
        403 => ("permission_error", "Your API key does not have permission to use the specified resource.".to_owned()),
        404 => ("not_found_error", format!("model: {model}")),
        413 => ("request_too_large", "Request exceeds the maximum allowed number of bytes.".to_owned()),
        429 => (
            "rate_limit_error",
            "This request would exceed the rate limit for your organization (fake-org) of 50 requests per minute. \
             For details, refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers \
             for current usage. Please reduce the prompt length or the maximum tokens requested, or try again later."
                .to_owned(),
        ),
        529 => ("overloaded_error", "Overloaded".to_owned()),
        _ => ("api_error", "Internal server error".to_owned()),
    };
    error(status, kind, &message, retry_after)
}

/// `GET /v1/models`: newest first in the real API; here in the configured order, paged by
/// `limit` (default 20, at most 1000) and `after_id`.
async fn models(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    if let Some(refusal) = refuse(&shared, &headers) {
        return refusal;
    }
    let models = shared.models();
    let limit = query_param(uri.query(), "limit").and_then(|limit| limit.parse::<usize>().ok()).unwrap_or(20);
    if !(1..=1000).contains(&limit) {
        return error(400, "invalid_request_error", "limit: Input should be less than or equal to 1000", None);
    }
    let start = match query_param(uri.query(), "after_id") {
        Some(after) => models.iter().position(|model| *model == after).map_or(models.len(), |at| at + 1),
        None => 0,
    };
    let page: Vec<&String> = models.iter().skip(start).take(limit).collect();
    let data: Vec<Value> = page
        .iter()
        .map(|id| json!({ "type": "model", "id": id, "display_name": id, "created_at": "2025-09-29T00:00:00Z" }))
        .collect();
    axum::Json(json!({
        "data": data,
        "has_more": start + page.len() < models.len(),
        "first_id": page.first(),
        "last_id": page.last(),
    }))
    .into_response()
}

async fn unknown(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    error(404, "not_found_error", "Not Found", None)
}
