//! A fake LLM upstream (axum on 127.0.0.1) that speaks the real wire format of one of the five
//! protocols Loquat supports — OpenAI Chat Completions, Anthropic Messages, Gemini, Ollama's
//! native API, Azure OpenAI — from one protocol-neutral script ([`Reply`]), so that one
//! conformance suite can run against every protocol. It records requests, checks keys the way
//! each service does, and counts streams the client cancelled. Built for thousands of
//! concurrent streams: locks are held only briefly and never across an await.
//!
//! One module per protocol (`openai` also serves Azure) turns the script into that protocol's
//! stream, whole answer, errors and model list; `stream` plays a script through any of them;
//! `embeddings` serves OpenAI's, Azure's and Ollama's embeddings (a queued reply's HTTP error
//! answers an embeddings request too).

mod anthropic;
mod embeddings;
mod gemini;
mod ollama;
mod openai;
mod reply;
mod stream;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::DefaultBodyLimit;
use axum::http::header::{CONTENT_TYPE, HeaderName, RETRY_AFTER};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use bytes::Bytes;
use loquat_core::domain::Protocol;
use serde_json::Value;
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use anthropic::THINKING_SIGNATURE as ANTHROPIC_THINKING_SIGNATURE;
pub use embeddings::{FAKE_DIMENSIONS, fake_embedding};
pub use reply::Reply;

/// The models a fake of `protocol` lists until [`FakeUpstream::set_models`].
fn default_models(protocol: Protocol) -> &'static [&'static str] {
    match protocol {
        Protocol::OpenAi | Protocol::Azure => &["gpt-4o-mini", "fake-reasoner"],
        Protocol::Anthropic => &["claude-sonnet-4-5", "claude-haiku-4-5"],
        Protocol::Gemini => &["gemini-2.5-flash", "gemini-2.5-pro"],
        Protocol::Ollama => &["llama3.2", "qwen3"],
    }
}

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw query string (without `?`), empty when there is none.
    pub query: String,
    /// Header names are lowercase; repeated headers are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `Null` when empty, a string when it was not JSON.
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }

    /// A query parameter, percent-decoded.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_param(Some(&self.query), name)
    }
}

/// A running fake upstream; stops accepting connections when dropped.
pub struct FakeUpstream {
    protocol: Protocol,
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

pub(super) struct Shared {
    config: Mutex<Config>,
    requests: Mutex<Vec<RecordedRequest>>,
    received: watch::Sender<usize>,
    pub(super) cancelled: watch::Sender<usize>,
    pub(super) completed: AtomicUsize,
    next_id: AtomicU64,
}

struct Config {
    queue: VecDeque<Reply>,
    default_reply: Reply,
    models: Vec<String>,
    required_key: Option<String>,
    recording: bool,
    context_lengths: HashMap<String, u32>,
    registry: Option<Vec<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeUpstream {
    /// Starts a fake of `protocol` on a free port of 127.0.0.1. Panics if it cannot listen.
    /// Its routes and key checks are the protocol's:
    /// - OpenAI: `POST /v1/chat/completions` (SSE chunks), `GET /v1/models`; `Authorization: Bearer`.
    /// - Anthropic: `POST /v1/messages` (SSE events), `GET /v1/models`; `x-api-key` +
    ///   `anthropic-version`.
    /// - Gemini: `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` (and
    ///   `:generateContent`), `GET /v1beta/models`; `x-goog-api-key` (or `?key=`).
    /// - Ollama: `POST /api/chat` (NDJSON), `GET /api/tags`, `POST /api/pull`, `POST /api/show`.
    /// - Azure: `POST /openai/deployments/{deployment}/chat/completions?api-version=…`,
    ///   `GET /openai/models?api-version=…`; `api-key`.
    pub async fn start(protocol: Protocol) -> Self {
        match Self::try_start(protocol).await {
            Ok(fake) => fake,
            Err(error) => panic!("the fake {} upstream could not listen on 127.0.0.1: {error}", protocol.as_str()),
        }
    }

    pub async fn try_start(protocol: Protocol) -> io::Result<Self> {
        let socket = TcpSocket::new_v4()?;
        socket.set_reuseaddr(true)?;
        socket.bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
        // A deep backlog: the benchmark opens thousands of connections at once.
        let listener = socket.listen(8192)?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            config: Mutex::new(Config {
                queue: VecDeque::new(),
                default_reply: Reply::text("Hello from the fake upstream."),
                models: default_models(protocol).iter().map(|model| (*model).to_owned()).collect(),
                required_key: None,
                recording: true,
                context_lengths: HashMap::new(),
                registry: None,
            }),
            requests: Mutex::new(Vec::new()),
            received: watch::Sender::new(0),
            cancelled: watch::Sender::new(0),
            completed: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        });
        let routes = match protocol {
            Protocol::OpenAi => openai::openai_routes(),
            Protocol::Azure => openai::azure_routes(),
            Protocol::Anthropic => anthropic::routes(),
            Protocol::Gemini => gemini::routes(),
            Protocol::Ollama => ollama::routes(),
        };
        let app = routes.layer(DefaultBodyLimit::max(64 * 1024 * 1024)).with_state(Arc::clone(&shared));
        let listener = listener.tap_io(|tcp| {
            // Small frames must not wait for Nagle.
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the fake upstream stopped");
            }
        });
        Ok(Self { protocol, addr, shared, server })
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// What Loquat's `Endpoint.base_url` should be: `http://127.0.0.1:<port>/v1` for OpenAI,
    /// `…/v1beta` for Gemini, the bare `http://127.0.0.1:<port>` for Anthropic, Ollama and Azure.
    pub fn base_url(&self) -> String {
        match self.protocol {
            Protocol::OpenAi => format!("http://{}/v1", self.addr),
            Protocol::Gemini => format!("http://{}/v1beta", self.addr),
            Protocol::Anthropic | Protocol::Ollama | Protocol::Azure => format!("http://{}", self.addr),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a reply; queued replies are used in order, then the default one.
    pub fn push_reply(&self, reply: Reply) {
        lock(&self.shared.config).queue.push_back(reply);
    }

    /// The reply used when the queue is empty (initially a short text).
    pub fn set_default_reply(&self, reply: Reply) {
        lock(&self.shared.config).default_reply = reply;
    }

    /// The models listed (and, for Ollama, shown). Ollama lists them with `:latest` when they
    /// have no tag; Gemini as `models/<name>`.
    pub fn set_models<I>(&self, models: I)
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        lock(&self.shared.config).models = models.into_iter().map(Into::into).collect();
    }

    /// Refuses requests without this key, as the protocol does: a bearer token (OpenAI,
    /// Ollama), `x-api-key` plus an `anthropic-version` header (Anthropic), `x-goog-api-key`
    /// or `?key=` (Gemini, which answers 400 `API_KEY_INVALID` to a wrong key), `api-key` (Azure).
    pub fn require_key(&self, key: impl Into<String>) {
        lock(&self.shared.config).required_key = Some(key.into());
    }

    /// Whether requests are kept for [`FakeUpstream::requests`] (default true; a long benchmark
    /// may turn it off; counting continues).
    pub fn set_recording(&self, recording: bool) {
        lock(&self.shared.config).recording = recording;
    }

    /// Ollama: the `<architecture>.context_length` `/api/show` reports (default 131072).
    pub fn set_context_length(&self, model: impl Into<String>, tokens: u32) {
        lock(&self.shared.config).context_lengths.insert(model.into(), tokens);
    }

    /// Ollama: the models `/api/pull` can download (default: any); pulling another one ends
    /// with Ollama's `{"error":"pull model manifest: file does not exist"}`.
    pub fn set_registry<I>(&self, models: I)
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        lock(&self.shared.config).registry = Some(models.into_iter().map(Into::into).collect());
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests arrived (recorded or not).
    pub fn request_count(&self) -> usize {
        *self.shared.received.borrow()
    }

    /// Waits until at least `n` requests arrived; false on timeout.
    pub async fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        wait_for(&self.shared.received, n, timeout).await
    }

    /// Streams (and non-streamed answers) dropped by the client before their script finished.
    pub fn cancelled_streams(&self) -> usize {
        *self.shared.cancelled.borrow()
    }

    /// Scripts played to their end, including scripted failures and disconnects.
    pub fn completed_streams(&self) -> usize {
        self.shared.completed.load(Ordering::Relaxed)
    }

    /// Waits until at least one stream was cancelled; false on timeout.
    pub async fn wait_for_cancellation(&self, timeout: Duration) -> bool {
        self.wait_for_cancellations(1, timeout).await
    }

    pub async fn wait_for_cancellations(&self, n: usize, timeout: Duration) -> bool {
        wait_for(&self.shared.cancelled, n, timeout).await
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn wait_for(counter: &watch::Sender<usize>, n: usize, timeout: Duration) -> bool {
    let mut receiver = counter.subscribe();
    matches!(tokio::time::timeout(timeout, receiver.wait_for(|count| *count >= n)).await, Ok(Ok(_)))
}

/// How a request's key compares with the required one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum KeyCheck {
    /// No key is required, or the right one was given.
    Accepted,
    Missing,
    Wrong,
}

impl Shared {
    /// Records the request (when recording) and counts it; returns the body parsed as JSON
    /// (`Null` when empty), or `None` when it is not JSON.
    pub(super) fn receive(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: &Bytes) -> Option<Value> {
        let parsed = if body.is_empty() { Ok(Value::Null) } else { serde_json::from_slice::<Value>(body) };
        if lock(&self.config).recording {
            let mut names = BTreeMap::<String, String>::new();
            for (name, value) in headers {
                let value = String::from_utf8_lossy(value.as_bytes());
                names
                    .entry(name.as_str().to_owned())
                    .and_modify(|all| *all += &format!(", {value}"))
                    .or_insert(value.into());
            }
            let recorded = match &parsed {
                Ok(value) => value.clone(),
                Err(_) => Value::String(String::from_utf8_lossy(body).into_owned()),
            };
            let request = RecordedRequest {
                method: method.to_string(),
                path: uri.path().to_owned(),
                query: uri.query().unwrap_or_default().to_owned(),
                headers: names,
                body: recorded,
            };
            lock(&self.requests).push(request);
        }
        self.received.send_modify(|count| *count += 1);
        parsed.ok()
    }

    pub(super) fn check_key(&self, given: Option<&str>) -> KeyCheck {
        match (lock(&self.config).required_key.as_deref(), given.filter(|key| !key.is_empty())) {
            (None, _) => KeyCheck::Accepted,
            (Some(_), None) => KeyCheck::Missing,
            (Some(required), Some(given)) if required == given => KeyCheck::Accepted,
            (Some(_), Some(_)) => KeyCheck::Wrong,
        }
    }

    pub(super) fn key_required(&self) -> bool {
        lock(&self.config).required_key.is_some()
    }

    pub(super) fn next_reply(&self) -> Reply {
        let mut config = lock(&self.config);
        config.queue.pop_front().unwrap_or_else(|| config.default_reply.clone())
    }

    pub(super) fn models(&self) -> Vec<String> {
        lock(&self.config).models.clone()
    }

    pub(super) fn context_length(&self, model: &str) -> Option<u32> {
        lock(&self.config).context_lengths.get(model).copied()
    }

    /// Whether `/api/pull` can download `model`.
    pub(super) fn pullable(&self, model: &str) -> bool {
        let config = lock(&self.config);
        config.registry.as_ref().is_none_or(|registry| registry.iter().any(|known| same_model(known, model)))
    }

    /// Lists `model` (after an Ollama pull) unless it is listed already.
    pub(super) fn add_model(&self, model: &str) {
        let mut config = lock(&self.config);
        if !config.models.iter().any(|known| same_model(known, model)) {
            config.models.push(model.to_owned());
        }
    }

    pub(super) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }
}

/// Whether two Ollama model names are the same model (`llama3.2` is `llama3.2:latest`).
pub(super) fn same_model(a: &str, b: &str) -> bool {
    with_tag(a) == with_tag(b)
}

/// An Ollama model name with its tag (`:latest` when it has none).
pub(super) fn with_tag(model: &str) -> String {
    if model.rsplit('/').next().is_some_and(|name| name.contains(':')) {
        model.to_owned()
    } else {
        format!("{model}:latest")
    }
}

/// A header's value as text.
pub(super) fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The bearer token of an `Authorization` header.
pub(super) fn bearer(headers: &HeaderMap) -> Option<&str> {
    header(headers, "authorization").and_then(|value| value.strip_prefix("Bearer "))
}

/// A query parameter of a raw query string, percent-decoded.
pub(super) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find_map(|(key, value)| (percent_decode(key) == name).then(|| percent_decode(value)))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|byte| char::from(*byte).to_digit(16));
        match bytes[i] {
            b'%' if hex(i + 1).is_some() && hex(i + 2).is_some() => {
                let value = hex(i + 1).unwrap_or(0) * 16 + hex(i + 2).unwrap_or(0);
                decoded.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                decoded.push(b' ');
                i += 1;
            }
            byte => {
                decoded.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Seconds since the Unix epoch.
pub(super) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0)
}

/// A response with this status, content type, body and extra headers.
pub(super) fn respond(
    status: u16,
    content_type: &'static str,
    body: impl Into<Bytes>,
    headers: &[(HeaderName, String)],
) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, [(CONTENT_TYPE, HeaderValue::from_static(content_type))], body.into()).into_response();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::try_from(value.as_str()) {
            response.headers_mut().insert(name.clone(), value);
        }
    }
    response
}

/// A JSON error response, with `Retry-After` when the script asks the client to wait.
pub(super) fn json_error(status: u16, body: impl Into<Bytes>, retry_after: Option<u64>) -> Response {
    let headers: Vec<(HeaderName, String)> =
        retry_after.map(|seconds| (RETRY_AFTER, seconds.to_string())).into_iter().collect();
    respond(status, "application/json", body, &headers)
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_anthropic;
#[cfg(test)]
mod tests_gemini;
#[cfg(test)]
mod tests_ollama;
