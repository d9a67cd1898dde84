//! The dispatcher: [`HttpClientSettings`] and the [`HttpChatClient`] that owns the pooled
//! `reqwest::Client`s (a trusted one for the administrator's providers and one behind the SSRF
//! guard for URLs users typed) and dispatches on [`Protocol`] to the protocol modules. The only
//! module that knows every protocol; the protocols' shared helpers are in `transport`.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use loquat_core::domain::Protocol;
use loquat_core::llm::{
    Audio, ChatClient, ChatRequest, ChatStream, Embeddings, Endpoint, GeneratedImage, ImageRequest, ModelDetails,
    ProviderError, ProviderErrorKind, PullStream, SpeechRequest, TranscriptionRequest,
};

use crate::retry::{self, RetryPolicy};
use crate::ssrf::{Guard, SsrfPolicy};
use crate::transport::Http;
use crate::{anthropic, azure, errors, gemini, ollama, openai};

/// How the shared HTTP client behaves. `Default` gives values suited to public LLM APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpClientSettings {
    /// TCP + TLS connection establishment.
    pub connect_timeout: Duration,
    /// Whole-request limit for calls that do not stream (`list_models`). Streams have none:
    /// the caller bounds them (first-event and idle timeouts) and cancels by dropping.
    pub request_timeout_for_non_streaming: Duration,
    /// Longest silence between two reads of any response body, for a consumer that applies no
    /// timeout of its own. `None` (the default): Loquat's consumers bound every stream
    /// themselves (first-event, idle and total timeouts of the generation job and the API), and
    /// this timer would be re-armed on every chunk of every stream.
    pub read_timeout: Option<Duration>,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// TCP keep-alive probes on pooled connections.
    pub tcp_keepalive: Option<Duration>,
    pub user_agent: String,
    /// How much of an error response body is read (the rest is ignored).
    pub max_error_body_bytes: usize,
    /// Retries before the first token (see `retry`).
    pub retry: RetryPolicy,
    /// An egress proxy for every provider request (`PROXY_URL`); `HTTPS_PROXY` and friends
    /// are honoured too when this is unset. Behind a proxy the SSRF guard cannot see the final
    /// address of a user's provider: the proxy must enforce egress (see `ssrf`).
    pub proxy_url: Option<String>,
    /// The administrator's exceptions to the SSRF guard for user-supplied provider URLs:
    /// `host` or `host:port` entries such as `127.0.0.1:11434`, `gpu-box.lan`, `10.0.0.5`,
    /// `[fd00::5]:8000` (see [`SsrfPolicy`]). Invalid entries fail [`HttpChatClient::new`].
    pub ssrf_allow: Vec<String>,
}

impl Default for HttpClientSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            request_timeout_for_non_streaming: Duration::from_secs(60),
            read_timeout: None,
            pool_idle_timeout: Duration::from_secs(90),
            tcp_keepalive: Some(Duration::from_secs(30)),
            user_agent: concat!("Loquat/", env!("CARGO_PKG_VERSION")).to_owned(),
            max_error_body_bytes: 64 * 1024,
            retry: RetryPolicy::default(),
            proxy_url: None,
            ssrf_allow: Vec::new(),
        }
    }
}

/// The HTTP client could not be created (e.g. the TLS configuration failed to load).
#[derive(Debug, Clone)]
pub struct ClientInitError(String);

impl fmt::Display for ClientInitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "could not create the HTTP client: {}", self.0)
    }
}

impl std::error::Error for ClientInitError {}

/// Loquat's [`ChatClient`]: pooled HTTP clients (rustls, HTTP/1.1 and HTTP/2) shared by all
/// requests, dispatching to the module of the endpoint's protocol. Trusted endpoints (the
/// administrator's) use the plain client; the others (`Endpoint::trusted == false`: a URL a
/// user typed) use the guarded one. Both share the settings. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpChatClient {
    trusted: Http,
    guarded: Http,
    guard: Arc<Guard>,
    retry: RetryPolicy,
}

impl HttpChatClient {
    /// The clients for `settings`, the SSRF allow-list parsed from `settings.ssrf_allow`.
    pub fn new(settings: &HttpClientSettings) -> Result<Self, ClientInitError> {
        let policy = SsrfPolicy::from_entries(&settings.ssrf_allow)
            .map_err(|error| ClientInitError(format!("the SSRF allow-list is invalid: {error}")))?;
        Self::new_with_policy(settings, policy)
    }

    /// The clients for `settings` with this SSRF policy (`settings.ssrf_allow` is ignored).
    pub fn new_with_policy(settings: &HttpClientSettings, policy: SsrfPolicy) -> Result<Self, ClientInitError> {
        let guard = Arc::new(Guard::new(policy, settings.proxy_url.as_deref()));
        let http = |client, guard| Http {
            client,
            non_streaming_timeout: settings.request_timeout_for_non_streaming,
            max_error_body_bytes: settings.max_error_body_bytes,
            guard,
        };
        let trusted = http(build_client(settings, None)?, None);
        let guarded = http(build_client(settings, Some(&guard))?, Some(Arc::clone(&guard)));
        Ok(Self { retry: settings.retry, trusted, guarded, guard })
    }

    /// The same clients for fetching what tools need (search APIs, web pages).
    pub fn web(&self) -> crate::web::WebClient {
        crate::web::WebClient { trusted: self.trusted.clone(), guarded: self.guarded.clone() }
    }

    /// The SSRF policy of the guarded client (e.g. to check a URL when a user saves it).
    pub fn ssrf_policy(&self) -> &SsrfPolicy {
        self.guard.policy()
    }

    /// The client for requests to `endpoint`: guarded unless the endpoint is trusted.
    fn http_for(&self, endpoint: &Endpoint) -> &Http {
        if endpoint.trusted { &self.trusted } else { &self.guarded }
    }

    /// One attempt: dispatch to the protocol module; every error leaves redacted.
    async fn open_stream(&self, endpoint: &Endpoint, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let key = endpoint.api_key.clone();
        let http = self.http_for(endpoint);
        let opened = match endpoint.protocol {
            Protocol::OpenAi => openai::stream_chat(http, endpoint, request).await,
            Protocol::Anthropic => anthropic::stream_chat(http, endpoint, request).await,
            Protocol::Gemini => gemini::stream_chat(http, endpoint, request).await,
            Protocol::Ollama => ollama::stream_chat(http, endpoint, request).await,
            Protocol::Azure => azure::stream_chat(http, endpoint, request).await,
        };
        match opened {
            Ok(stream) => {
                // Every error of every protocol leaves through here, redacted.
                let stream = stream.map(move |item| item.map_err(|error| errors::sanitize(error, key.as_ref())));
                Ok(Box::pin(stream))
            }
            Err(error) => Err(log(errors::sanitize(error, key.as_ref()))),
        }
    }
}

/// A client on `settings`; with `guard`, behind the SSRF guard.
fn build_client(settings: &HttpClientSettings, guard: Option<&Guard>) -> Result<reqwest::Client, ClientInitError> {
    let mut builder = reqwest::Client::builder()
        .connect_timeout(settings.connect_timeout)
        .pool_idle_timeout(settings.pool_idle_timeout)
        .tcp_keepalive(settings.tcp_keepalive)
        .tcp_nodelay(true)
        .user_agent(settings.user_agent.clone());
    if let Some(read_timeout) = settings.read_timeout {
        builder = builder.read_timeout(read_timeout);
    }
    if let Some(proxy_url) = settings.proxy_url.as_deref().filter(|url| !url.trim().is_empty()) {
        let proxy = reqwest::Proxy::all(proxy_url.trim())
            .map_err(|error| ClientInitError(format!("PROXY_URL is not a valid proxy URL: {error}")))?;
        builder = builder.proxy(proxy);
    }
    if let Some(guard) = guard {
        builder = guard.configure(builder);
    }
    builder.build().map_err(|error| ClientInitError(error.to_string()))
}

#[async_trait]
impl ChatClient for HttpChatClient {
    async fn stream_chat(&self, endpoint: &Endpoint, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        retry::open_with_retries(
            endpoint,
            self.retry,
            |endpoint| async move { self.open_stream(&endpoint, request).await },
        )
        .await
    }

    async fn list_models(&self, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
        let http = self.http_for(endpoint);
        let listed = match endpoint.protocol {
            Protocol::OpenAi => openai::list_models(http, endpoint).await,
            Protocol::Anthropic => anthropic::list_models(http, endpoint).await,
            Protocol::Gemini => gemini::list_models(http, endpoint).await,
            Protocol::Ollama => ollama::list_models(http, endpoint).await,
            Protocol::Azure => azure::list_models(http, endpoint).await,
        };
        listed.map_err(|error| log(errors::sanitize(error, endpoint.api_key.as_ref())))
    }

    async fn pull_model(&self, endpoint: &Endpoint, model: &str) -> Result<PullStream, ProviderError> {
        let key = endpoint.api_key.clone();
        let pulling = match endpoint.protocol {
            Protocol::Ollama => ollama::pull_model(self.http_for(endpoint), endpoint, model).await,
            _ => Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider cannot download models")),
        };
        match pulling {
            Ok(stream) => {
                Ok(Box::pin(stream.map(move |item| item.map_err(|error| errors::sanitize(error, key.as_ref())))))
            }
            Err(error) => Err(log(errors::sanitize(error, key.as_ref()))),
        }
    }

    /// One attempt, no retries: embeddings are not a stream whose first token is awaited.
    async fn embed(&self, endpoint: &Endpoint, model: &str, inputs: &[String]) -> Result<Embeddings, ProviderError> {
        let http = self.http_for(endpoint);
        let embedded = match endpoint.protocol {
            Protocol::OpenAi => openai::embeddings::embed(http, endpoint, model, inputs).await,
            Protocol::Azure => azure::embed(http, endpoint, model, inputs).await,
            Protocol::Ollama => ollama::embed(http, endpoint, model, inputs).await,
            Protocol::Anthropic | Protocol::Gemini => {
                Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider has no embeddings"))
            }
        };
        embedded.map_err(|error| log(errors::sanitize(error, endpoint.api_key.as_ref())))
    }

    async fn speech(&self, endpoint: &Endpoint, request: &SpeechRequest) -> Result<Audio, ProviderError> {
        let made = match endpoint.protocol {
            Protocol::OpenAi => openai::media::speech(self.http_for(endpoint), endpoint, request).await,
            _ => Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider cannot read aloud")),
        };
        made.map_err(|error| log(errors::sanitize(error, endpoint.api_key.as_ref())))
    }

    async fn transcribe(&self, endpoint: &Endpoint, request: &TranscriptionRequest) -> Result<String, ProviderError> {
        let written = match endpoint.protocol {
            Protocol::OpenAi => openai::media::transcribe(self.http_for(endpoint), endpoint, request).await,
            _ => Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider cannot transcribe")),
        };
        written.map_err(|error| log(errors::sanitize(error, endpoint.api_key.as_ref())))
    }

    async fn generate_images(
        &self,
        endpoint: &Endpoint,
        request: &ImageRequest,
    ) -> Result<Vec<GeneratedImage>, ProviderError> {
        let drawn = match endpoint.protocol {
            Protocol::OpenAi => openai::media::generate_images(self.http_for(endpoint), endpoint, request).await,
            _ => Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider cannot draw images")),
        };
        drawn.map_err(|error| log(errors::sanitize(error, endpoint.api_key.as_ref())))
    }

    async fn model_details(&self, endpoint: &Endpoint, model: &str) -> Result<ModelDetails, ProviderError> {
        let details = match endpoint.protocol {
            Protocol::Ollama => ollama::model_details(self.http_for(endpoint), endpoint, model).await,
            _ => Ok(ModelDetails::default()),
        };
        details.map_err(|error| log(errors::sanitize(error, endpoint.api_key.as_ref())))
    }
}

/// Logs an already-sanitized error at debug level (callers log failures with context).
fn log(error: ProviderError) -> ProviderError {
    tracing::debug!(kind = error.kind.code(), status = error.status, detail = %error.detail, "provider call failed");
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_settings_build_a_client() {
        assert!(HttpChatClient::new(&HttpClientSettings::default()).is_ok());
    }
}
