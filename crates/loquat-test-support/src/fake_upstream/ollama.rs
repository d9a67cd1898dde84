//! Ollama's native API: `POST /api/chat` streams NDJSON lines
//! `{"model","created_at","message":{"role":"assistant","content","thinking","tool_calls"},"done":false}`
//! (streaming unless `"stream": false`) and ends with `{"done":true,"done_reason",…,
//! "prompt_eval_count","eval_count"}` plus durations, that last line cut in two TCP writes.
//! `GET /api/tags` lists models with their tag (`:latest`), `POST /api/pull` streams progress
//! (`pulling manifest`, per layer `total`/`completed` — the first line without `completed` —,
//! `verifying sha256 digest`, `writing manifest`, `success`), `POST /api/show` reports
//! `model_info` with `<architecture>.context_length`, `POST /api/embed` answers `embeddings` for
//! a listed model. Errors are `{"error":"…"}`.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::stream;
use serde_json::{Value, json};

use super::embeddings::{inputs_of, ollama_answer};
use super::reply::{HttpError, Piece, Script};
use super::stream::{Out, Outcome, Render, ReplyStream, Whole, broken_body, play_whole};
use super::{KeyCheck, Shared, bearer, json_error, respond, same_model, with_tag};

const NDJSON: &str = "application/x-ndjson";
const DEFAULT_CONTEXT_LENGTH: u32 = 131_072;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", get(running))
        .route("/api/version", get(version))
        .route("/api/chat", post(chat))
        .route("/api/tags", get(tags))
        .route("/api/pull", post(pull))
        .route("/api/show", post(show))
        .route("/api/embed", post(embed))
        .fallback(unknown)
}

fn now() -> String {
    jiff::Timestamp::now().to_string()
}

fn error(status: u16, message: &str) -> Response {
    json_error(status, json!({ "error": message }).to_string(), None)
}

fn done_reason(finish_reason: &str) -> &'static str {
    if finish_reason == "length" { "length" } else { "stop" }
}

/// The model family (and GGUF architecture) a model name suggests.
fn architecture(model: &str) -> &'static str {
    let name = model.rsplit('/').next().unwrap_or(model);
    if name.starts_with("qwen3") {
        "qwen3"
    } else if name.starts_with("qwen") {
        "qwen2"
    } else if name.starts_with("gemma") {
        "gemma3"
    } else {
        "llama"
    }
}

/// A stable fake sha256 for a name.
fn digest(name: &str) -> String {
    (0..4u64)
        .map(|round| {
            let mut hasher = DefaultHasher::new();
            (round, name).hash(&mut hasher);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// The message of a streamed line or a whole answer.
fn message(content: &str, thinking: &str, tool_calls: Vec<Value>) -> Value {
    let mut message = json!({ "role": "assistant", "content": content });
    if !thinking.is_empty() {
        message["thinking"] = Value::from(thinking);
    }
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    message
}

fn tool_call(index: usize, name: &str, arguments: &Value) -> Value {
    json!({ "function": { "index": index, "name": name, "arguments": arguments } })
}

/// The last line's fields: the end, the counts and the (nanosecond) durations.
fn done_fields(script: &Script, line: &mut Value) {
    let (prompt, completion) = script.usage_or_default();
    line["done"] = Value::from(true);
    line["done_reason"] = Value::from(done_reason(&script.finish_reason));
    line["total_duration"] = Value::from(4_883_583_458_u64);
    line["load_duration"] = Value::from(1_334_875_u64);
    line["prompt_eval_count"] = Value::from(prompt);
    line["prompt_eval_duration"] = Value::from(342_546_000_u64);
    line["eval_count"] = Value::from(completion);
    line["eval_duration"] = Value::from(4_535_599_000_u64);
}

struct LineRender {
    model: String,
}

impl LineRender {
    fn line(&self, message: Value) -> Value {
        json!({ "model": self.model, "created_at": now(), "message": message, "done": false })
    }
}

impl Render for LineRender {
    fn chunk(&mut self, script: &Script, index: usize, out: &mut Out) {
        let message = match script.piece(index) {
            Some(Piece::Reasoning(text)) => message("", text, Vec::new()),
            Some(Piece::Text(text)) => message(text, "", Vec::new()),
            Some(Piece::Tool(call_index, call)) => {
                message("", "", vec![tool_call(call_index, &call.name, &call.input)])
            }
            None => return,
        };
        out.push(format!("{}\n", self.line(message)));
    }

    fn finish(&mut self, script: &Script, out: &mut Out) {
        let mut last = self.line(message("", "", Vec::new()));
        done_fields(script, &mut last);
        out.push_split(format!("{last}\n"));
    }

    fn fail(&mut self, _script: &Script, out: &mut Out) {
        let error = json!({ "error": "an error was encountered while running the model: unexpected EOF" });
        out.push(format!("{error}\n"));
    }
}

/// The refusal of a request without the right bearer token (Ollama behind a proxy, or cloud).
fn refuse(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    (shared.check_key(bearer(headers)) != KeyCheck::Accepted).then(|| error(401, "unauthorized"))
}

/// The model a request names (`model`, or the older `name`).
fn model_of(request: &Value) -> Option<&str> {
    request["model"].as_str().or(request["name"].as_str()).filter(|model| !model.is_empty())
}

/// What Ollama says about a malformed chat (its Go JSON decoding errors), if this one is.
fn invalid(request: &Value) -> Option<String> {
    for message in request["messages"].as_array().into_iter().flatten() {
        if !matches!(message["role"].as_str(), Some("system" | "user" | "assistant" | "tool")) {
            return Some(format!("invalid role: {}", message["role"].as_str().unwrap_or_default()));
        }
        let calls = message["tool_calls"].as_array().into_iter().flatten();
        if calls.into_iter().any(|call| !call["function"]["arguments"].is_object()) {
            return Some(
                "json: cannot unmarshal string into Go struct field ToolCallFunction.messages.tool_calls.function.\
                 arguments of type api.ToolCallFunctionArguments"
                    .to_owned(),
            );
        }
        let images = &message["images"];
        if !images.is_null() && !images.as_array().is_some_and(|images| images.iter().all(Value::is_string)) {
            return Some(
                "json: cannot unmarshal object into Go struct field Message.messages.images of type \
                         api.ImageData"
                    .to_owned(),
            );
        }
    }
    None
}

async fn chat(
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
        return error(400, "invalid character 'x' looking for beginning of value");
    };
    let Some(model) = model_of(&request).map(str::to_owned) else {
        return error(400, "model is required");
    };
    if let Some(message) = invalid(&request) {
        return error(400, &message);
    }
    let reply = shared.next_reply();
    if let Some(http_error) = &reply.0.http_error {
        return scripted_error(http_error, reply.0.retry_after, &model);
    }
    let outcome = Outcome::new(Arc::clone(&shared));
    if request["stream"].as_bool() == Some(false) {
        return whole(&reply.0, outcome, &model).await;
    }
    ReplyStream::new(Arc::clone(&reply.0), LineRender { model }, outcome).into_response(NDJSON)
}

/// Vectors for `input` from a listed model; a queued reply's HTTP error is sent instead.
async fn embed(
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
        return error(400, "invalid character 'x' looking for beginning of value");
    };
    let Some(model) = model_of(&request).map(str::to_owned) else {
        return error(400, "model is required");
    };
    let Some(inputs) = inputs_of(&request) else {
        return error(400, "invalid input type");
    };
    let reply = shared.next_reply();
    if let Some(http_error) = &reply.0.http_error {
        return scripted_error(http_error, reply.0.retry_after, &model);
    }
    if !shared.models().iter().any(|known| same_model(known, &model)) {
        return error(404, &format!("model \"{model}\" not found, try pulling it first"));
    }
    axum::Json(ollama_answer(&model, &inputs)).into_response()
}

/// A non-streamed answer, after the time the stream would have taken.
async fn whole(script: &Script, mut outcome: Outcome, model: &str) -> Response {
    match play_whole(script, &mut outcome).await {
        Whole::Complete => {}
        Whole::Failed => return error(500, "an error was encountered while running the model: unexpected EOF"),
        Whole::Disconnected => return broken_body(),
    }
    let calls = script.tool_calls.iter().enumerate().map(|(index, call)| tool_call(index, &call.name, &call.input));
    let message = message(&script.content.concat(), &script.reasoning.concat(), calls.collect());
    let mut answer = json!({ "model": model, "created_at": now(), "message": message });
    done_fields(script, &mut answer);
    axum::Json(answer).into_response()
}

/// The scripted HTTP error: the body as given, or Ollama's `{"error":…}` for the status.
fn scripted_error(http_error: &HttpError, retry_after: Option<u64>, model: &str) -> Response {
    let status = match http_error {
        HttpError::Body(status, body) => return json_error(*status, body.clone(), retry_after),
        HttpError::Status(status) => *status,
    };
    let message = match status {
        400 => "invalid message format".to_owned(),
        401 => "unauthorized".to_owned(),
        403 => "forbidden".to_owned(),
        404 => format!("model \"{model}\" not found, try pulling it first"),
        429 => "rate limit exceeded, please try again later".to_owned(),
        503 => "server busy, please try again.  maximum pending requests exceeded".to_owned(),
        _ => "llama runner process has terminated: exit status 2".to_owned(),
    };
    json_error(status, json!({ "error": message }).to_string(), retry_after)
}

async fn tags(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    if let Some(refusal) = refuse(&shared, &headers) {
        return refusal;
    }
    let models: Vec<Value> = shared
        .models()
        .iter()
        .map(|model| {
            let (name, family) = (with_tag(model), architecture(model));
            json!({
                "name": name, "model": name, "modified_at": "2025-05-04T17:37:44.706015396-07:00",
                "size": 2_019_393_189_u64, "digest": digest(&name),
                "details": { "parent_model": "", "format": "gguf", "family": family, "families": [family],
                             "parameter_size": "3.2B", "quantization_level": "Q4_K_M" },
            })
        })
        .collect();
    axum::Json(json!({ "models": models })).into_response()
}

/// `POST /api/pull`: progress lines, then `success` (the model is then listed), or Ollama's
/// error line for a model the registry does not have.
async fn pull(
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
    let Some(model) = parsed.as_ref().and_then(model_of).map(str::to_owned) else {
        return error(400, "model is required");
    };
    let mut lines = vec![json!({ "status": "pulling manifest" })];
    let found = shared.pullable(&model);
    if found {
        for (layer, total) in [("model", 2_019_377_376_u64), ("license", 1_429)] {
            let digest = digest(&format!("{model}/{layer}"));
            let status = format!("pulling {}", &digest[..12]);
            let digest = format!("sha256:{digest}");
            lines.push(json!({ "status": status, "digest": digest, "total": total }));
            for part in 1..=4 {
                lines
                    .push(json!({ "status": status, "digest": digest, "total": total, "completed": total * part / 4 }));
            }
        }
        for status in ["verifying sha256 digest", "writing manifest", "success"] {
            lines.push(json!({ "status": status }));
        }
    } else {
        lines.push(json!({ "error": "pull model manifest: file does not exist" }));
    }
    if parsed.as_ref().is_some_and(|request| request["stream"].as_bool() == Some(false)) {
        if found {
            shared.add_model(&model);
        }
        return match lines.pop() {
            Some(last) if found => axum::Json(last).into_response(),
            Some(last) => json_error(500, last.to_string(), None),
            None => error(500, "nothing to pull"),
        };
    }
    let lines: Vec<Bytes> = lines.into_iter().map(|line| Bytes::from(format!("{line}\n"))).collect();
    let outcome = Outcome::new(Arc::clone(&shared));
    let progress = stream::unfold((lines.into_iter(), outcome, shared, model), move |state| async move {
        let (mut lines, mut outcome, shared, model) = state;
        let Some(line) = lines.next() else {
            outcome.finish();
            if found {
                shared.add_model(&model);
            }
            return None;
        };
        // One write per line.
        tokio::task::yield_now().await;
        Some((Ok::<Bytes, std::io::Error>(line), (lines, outcome, shared, model)))
    });
    respond(200, NDJSON, Bytes::new(), &[]).map(|_| Body::from_stream(progress))
}

/// `POST /api/show`: details and `model_info` of a listed model.
async fn show(
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
    let Some(model) = parsed.as_ref().and_then(model_of).map(str::to_owned) else {
        return error(400, "model is required");
    };
    let models = shared.models();
    let Some(known) = models.iter().find(|listed| same_model(listed, &model)) else {
        return error(404, &format!("model '{model}' not found"));
    };
    let context = shared.context_length(known).or_else(|| shared.context_length(&model));
    let arch = architecture(&model);
    let mut info = json!({
        "general.architecture": arch, "general.file_type": 15, "general.parameter_count": 3_212_749_888_u64,
        "general.quantization_version": 2, "tokenizer.ggml.model": "gpt2",
    });
    info[format!("{arch}.context_length")] = Value::from(context.unwrap_or(DEFAULT_CONTEXT_LENGTH));
    info[format!("{arch}.embedding_length")] = Value::from(3072);
    info[format!("{arch}.block_count")] = Value::from(28);
    axum::Json(json!({
        "license": "LLAMA 3.2 COMMUNITY LICENSE AGREEMENT",
        "modelfile": format!("# Modelfile generated by \"ollama show\"\nFROM {}\n", with_tag(&model)),
        "parameters": "stop                           \"<|eot_id|>\"",
        "template": "{{ .Prompt }}",
        "details": { "parent_model": "", "format": "gguf", "family": arch, "families": [arch],
                     "parameter_size": "3.2B", "quantization_level": "Q4_K_M" },
        "model_info": info,
        "capabilities": ["completion", "tools"],
        "modified_at": "2025-05-04T17:37:44.706015396-07:00",
    }))
    .into_response()
}

async fn running() -> Response {
    respond(200, "text/plain; charset=utf-8", "Ollama is running", &[])
}

async fn version() -> Response {
    axum::Json(json!({ "version": "0.12.6" })).into_response()
}

async fn unknown(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.receive(&method, &uri, &headers, &Bytes::new());
    respond(404, "text/plain", "404 page not found", &[])
}
