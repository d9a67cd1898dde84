//! A fake OpenAI-compatible upstream (axum on 127.0.0.1) for tests and the benchmark: serves
//! `POST /v1/chat/completions` (streamed or not) and `GET /v1/models` from scripted [`Reply`]s,
//! records requests, and counts streams the client cancelled. Built for thousands of
//! concurrent streams: locks are held only briefly and never across an await.

mod reply;
mod stream;

use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::net::TcpSocket;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use reply::Ending;
pub use reply::Reply;
use stream::{Outcome, ReplyStream};

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// Header names are lowercase; repeated headers are joined with `, `.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `Null` when empty, a string when it was not JSON.
    pub body: Value,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// A running fake upstream; stops accepting connections when dropped.
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: JoinHandle<()>,
}

struct Shared {
    config: Mutex<Config>,
    requests: Mutex<Vec<RecordedRequest>>,
    received: watch::Sender<usize>,
    cancelled: watch::Sender<usize>,
    completed: AtomicUsize,
    next_id: AtomicU64,
}

struct Config {
    queue: VecDeque<Reply>,
    default_reply: Reply,
    models: Vec<String>,
    required_key: Option<String>,
    recording: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeOpenAi {
    /// Starts the fake on a free port of 127.0.0.1. Panics if it cannot listen.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(error) => panic!("the fake OpenAI upstream could not listen on 127.0.0.1: {error}"),
        }
    }

    pub async fn try_start() -> io::Result<Self> {
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
                models: vec!["gpt-4o-mini".to_owned(), "fake-reasoner".to_owned()],
                required_key: None,
                recording: true,
            }),
            requests: Mutex::new(Vec::new()),
            received: watch::Sender::new(0),
            cancelled: watch::Sender::new(0),
            completed: AtomicUsize::new(0),
            next_id: AtomicU64::new(1),
        });
        let app = Router::new()
            .route("/v1/chat/completions", post(chat_completions))
            .route("/v1/models", get(models))
            .fallback(unknown_url)
            .layer(DefaultBodyLimit::max(64 * 1024 * 1024))
            .with_state(Arc::clone(&shared));
        let listener = listener.tap_io(|tcp| {
            // Small SSE frames must not wait for Nagle.
            let _ = tcp.set_nodelay(true);
        });
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::warn!(%error, "the fake OpenAI upstream stopped");
            }
        });
        Ok(Self { addr, shared, server })
    }

    /// `http://127.0.0.1:<port>/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
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

    pub fn set_models<I>(&self, models: I)
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        lock(&self.shared.config).models = models.into_iter().map(Into::into).collect();
    }

    /// Answers 401 (OpenAI's `invalid_api_key` error) unless the bearer token is `key`.
    pub fn require_key(&self, key: impl Into<String>) {
        lock(&self.shared.config).required_key = Some(key.into());
    }

    /// Whether requests are kept for [`FakeOpenAi::requests`] (default true; a long benchmark
    /// may turn it off; counting continues).
    pub fn set_recording(&self, recording: bool) {
        lock(&self.shared.config).recording = recording;
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

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn wait_for(counter: &watch::Sender<usize>, n: usize, timeout: Duration) -> bool {
    let mut receiver = counter.subscribe();
    matches!(tokio::time::timeout(timeout, receiver.wait_for(|count| *count >= n)).await, Ok(Ok(_)))
}

impl Shared {
    /// Records the request (when recording) and counts it.
    fn record(&self, method: &Method, uri: &Uri, headers: &HeaderMap, body: Value) {
        if lock(&self.config).recording {
            let mut names = BTreeMap::<String, String>::new();
            for (name, value) in headers {
                let value = String::from_utf8_lossy(value.as_bytes());
                names
                    .entry(name.as_str().to_owned())
                    .and_modify(|all| *all += &format!(", {value}"))
                    .or_insert(value.into());
            }
            let request =
                RecordedRequest { method: method.to_string(), path: uri.path().to_owned(), headers: names, body };
            lock(&self.requests).push(request);
        }
        self.received.send_modify(|count| *count += 1);
    }

    /// Whether the request carries the required key (always, when none is required).
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let bearer = headers.get(AUTHORIZATION).and_then(|value| value.to_str().ok());
        let bearer = bearer.and_then(|value| value.strip_prefix("Bearer "));
        lock(&self.config).required_key.as_deref().is_none_or(|key| bearer == Some(key))
    }

    fn next_reply(&self) -> Reply {
        let mut config = lock(&self.config);
        config.queue.pop_front().unwrap_or_else(|| config.default_reply.clone())
    }
}

async fn chat_completions(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let parsed = if body.is_empty() { Ok(Value::Null) } else { serde_json::from_slice::<Value>(&body) };
    let request = parsed.as_ref().ok();
    let model = request.and_then(|body| body["model"].as_str()).unwrap_or("fake-model").to_owned();
    let streamed = request.and_then(|body| body["stream"].as_bool()).unwrap_or(false);
    let include_usage = request.and_then(|body| body["stream_options"]["include_usage"].as_bool()).unwrap_or(false);
    let json_ok = parsed.is_ok();
    let recorded = parsed.unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
    shared.record(&method, &uri, &headers, recorded);
    if !shared.authorized(&headers) {
        return invalid_key();
    }
    if !json_ok {
        let message = "We could not parse the JSON body of your request.";
        return openai_error(StatusCode::BAD_REQUEST, message, "invalid_request_error", None);
    }
    let reply = shared.next_reply();
    if let Some((status, body)) = &reply.0.http_error {
        let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, [(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.clone()).into_response();
    }
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.as_secs()).unwrap_or(0);
    let outcome = Outcome::new(Arc::clone(&shared));
    if !streamed {
        return complete(reply, outcome, id, created, &model).await;
    }
    let head = format!(
        "data: {{\"id\":\"chatcmpl-fake{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},",
        Value::from(model)
    );
    let stream = ReplyStream::new(Arc::clone(&reply.0), Bytes::from(head), include_usage, outcome);
    let mut response = Body::from_stream(stream).into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// A non-streamed `chat.completion`, after the time the stream would have taken.
async fn complete(reply: Reply, mut outcome: Outcome, id: u64, created: u64, model: &str) -> Response {
    let script = &reply.0;
    let chunks = u32::try_from(script.deltas.len()).unwrap_or(u32::MAX);
    tokio::time::sleep(script.first_chunk_delay + script.delay_between_chunks * chunks.saturating_sub(1)).await;
    match script.ending {
        Ending::StallAfter(_) => return std::future::pending().await,
        Ending::FailAfter(_) => {
            outcome.finish();
            let message = "The server had an error while processing your request. Sorry about that!";
            return openai_error(StatusCode::INTERNAL_SERVER_ERROR, message, "server_error", None);
        }
        Ending::DisconnectAfter(_) => {
            outcome.finish();
            let abort = io::Error::new(io::ErrorKind::ConnectionAborted, "scripted disconnect");
            return Body::from_stream(futures_util::stream::iter([Err::<Bytes, _>(abort)])).into_response();
        }
        Ending::Complete => outcome.finish(),
    }
    let mut message = json!({ "role": "assistant", "content": reply.content() });
    if !script.reasoning.is_empty() {
        message["reasoning_content"] = Value::from(reply.reasoning_text());
    }
    let mut answer = json!({
        "id": format!("chatcmpl-fake{id}"),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{ "index": 0, "message": message, "finish_reason": script.finish_reason }],
    });
    if let Some(usage) = script.usage_json() {
        answer["usage"] = usage;
    }
    axum::Json(answer).into_response()
}

async fn models(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.record(&method, &uri, &headers, Value::Null);
    if !shared.authorized(&headers) {
        return invalid_key();
    }
    let models = lock(&shared.config).models.clone();
    let data: Vec<Value> = models
        .into_iter()
        .map(|id| json!({ "id": id, "object": "model", "created": 0, "owned_by": "loquat-fake" }))
        .collect();
    axum::Json(json!({ "object": "list", "data": data })).into_response()
}

async fn unknown_url(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    shared.record(&method, &uri, &headers, Value::Null);
    let message = format!("Unknown request URL: {method} {}.", uri.path());
    openai_error(StatusCode::NOT_FOUND, &message, "invalid_request_error", Some("unknown_url"))
}

fn invalid_key() -> Response {
    let message =
        "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.";
    openai_error(StatusCode::UNAUTHORIZED, message, "invalid_request_error", Some("invalid_api_key"))
}

fn openai_error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({ "error": { "message": message, "type": kind, "param": null, "code": code } });
    (status, axum::Json(body)).into_response()
}

#[cfg(test)]
mod tests;
