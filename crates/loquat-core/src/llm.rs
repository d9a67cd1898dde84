//! The provider-neutral chat interface: what Loquat asks of any LLM, the events it gets back,
//! and one error vocabulary for every protocol. `loquat-providers` implements [`ChatClient`].

use std::pin::Pin;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::domain::{ModelParams, Protocol, TokenUsage};
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
    /// The result of a tool call (see [`ChatMessage::tool_result`]).
    Tool,
}

/// An image sent to a vision model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Image {
    /// A URL the provider fetches itself (OpenAI-compatible providers only; others need data).
    Url(String),
    /// The image's bytes, base64-encoded.
    Inline { mime_type: String, data_base64: String },
}

/// A tool the model may call: a name, what it does, and its arguments as JSON Schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    pub parameters: serde_json::Value,
}

/// A call the model made: `arguments` is the JSON text the model produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

/// Whether and which tool the model must call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ToolChoice {
    #[default]
    Auto,
    None,
    Required,
    Named(String),
}

/// The model's visible reasoning on an earlier turn, with the provider's signature when it
/// needs it back (Anthropic's extended thinking with tools).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thinking {
    pub text: String,
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
    /// Images of a user message.
    pub images: Vec<Image>,
    /// Tool calls of an assistant message.
    pub tool_calls: Vec<ToolCall>,
    /// For `ChatRole::Tool`: the call this answers (id, and tool name for protocols that want it).
    pub tool_call_id: Option<String>,
    pub tool_name: Option<String>,
    /// The reasoning that preceded an assistant message.
    pub thinking: Option<Thinking>,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            images: Vec::new(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            tool_name: None,
            thinking: None,
        }
    }

    /// The result of the tool call `call_id` of tool `name`.
    pub fn tool_result(call_id: impl Into<String>, name: impl Into<String>, content: impl Into<String>) -> Self {
        Self { tool_call_id: Some(call_id.into()), tool_name: Some(name.into()), ..Self::new(ChatRole::Tool, content) }
    }
}

/// How much the model should think (reasoning models).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReasoningEffort {
    Low,
    Medium,
    High,
}

impl ReasoningEffort {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasoningEffort::Low => "low",
            ReasoningEffort::Medium => "medium",
            ReasoningEffort::High => "high",
        }
    }

    /// A thinking budget in tokens for protocols that take one (Anthropic, Gemini).
    pub fn budget_tokens(self) -> u32 {
        match self {
            ReasoningEffort::Low => 2_048,
            ReasoningEffort::Medium => 8_192,
            ReasoningEffort::High => 24_576,
        }
    }
}

/// Reasoning options; `budget_tokens` wins over `effort` where a protocol takes a budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReasoningConfig {
    pub effort: Option<ReasoningEffort>,
    pub budget_tokens: Option<u32>,
}

impl ReasoningConfig {
    /// The budget to send to protocols that take one, if reasoning was asked for.
    pub fn budget(&self) -> Option<u32> {
        self.budget_tokens.or(self.effort.map(ReasoningEffort::budget_tokens))
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ChatRequest {
    /// The model name as the upstream knows it (an Azure deployment name for Azure).
    pub model: String,
    pub messages: Vec<ChatMessage>,
    /// Only parameters the model accepts: the service removes the ones the model bank marks
    /// unsupported before a request reaches a protocol.
    pub params: ModelParams,
    pub tools: Vec<ToolSpec>,
    pub tool_choice: ToolChoice,
    pub reasoning: Option<ReasoningConfig>,
}

/// Where and how to reach a provider for one request.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// Base URL: for OpenAI-compatible servers including the version path
    /// (`https://api.openai.com/v1`); Anthropic, Gemini and Ollama accept their host with or
    /// without it; for Azure the resource endpoint.
    pub base_url: String,
    pub api_key: Option<Secret>,
    /// More keys of the same provider, tried in order when `api_key` is refused (401) or
    /// rate limited (429).
    pub other_keys: Vec<Secret>,
    /// Azure's `api-version`.
    pub api_version: Option<String>,
    /// Whether the base URL comes from the server's administrator. A URL a user typed is not
    /// trusted: requests to it go through the SSRF guard (no private networks, no metadata).
    pub trusted: bool,
}

impl Endpoint {
    pub fn new(protocol: Protocol, base_url: impl Into<String>, api_key: Option<Secret>) -> Self {
        Self { protocol, base_url: base_url.into(), api_key, other_keys: Vec::new(), api_version: None, trusted: true }
    }

    /// An endpoint whose base URL a user supplied.
    pub fn untrusted(mut self) -> Self {
        self.trusted = false;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    Stop,
    Length,
    ContentFilter,
    ToolCalls,
    Other,
}

/// One piece of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatEvent {
    Text(String),
    Reasoning(String),
    /// The signature closing a reasoning block (Anthropic), to send back with it later.
    ReasoningSignature(String),
    /// A complete tool call (protocols assemble streamed argument pieces before emitting it).
    ToolCall(ToolCall),
    /// A call of an assistant's server tool that Loquat runs itself (the API's tool loop):
    /// shown to a caller that wants to see the steps, never for the caller to answer.
    Step(ToolCall),
    Usage(TokenUsage),
    Finish(FinishReason),
}

pub type ChatStream = Pin<Box<dyn Stream<Item = Result<ChatEvent, ProviderError>> + Send>>;

/// The user-facing classes of provider failure, the same for every protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderErrorKind {
    InvalidKey,
    RateLimited,
    QuotaExceeded,
    ModelNotFound,
    ContextTooLong,
    ContentFiltered,
    /// Connection refused, DNS failure, TLS failure.
    Unreachable,
    /// The provider accepted the request but stopped sending.
    Timeout,
    /// 5xx or a stream that ended without finishing.
    Unavailable,
    BadRequest,
    /// The provider answered with something that is not its protocol.
    Protocol,
}

impl ProviderErrorKind {
    /// A stable code stored with failed messages and used as the i18n key suffix.
    pub fn code(self) -> &'static str {
        match self {
            ProviderErrorKind::InvalidKey => "invalid_key",
            ProviderErrorKind::RateLimited => "rate_limited",
            ProviderErrorKind::QuotaExceeded => "quota_exceeded",
            ProviderErrorKind::ModelNotFound => "model_not_found",
            ProviderErrorKind::ContextTooLong => "context_too_long",
            ProviderErrorKind::ContentFiltered => "content_filtered",
            ProviderErrorKind::Unreachable => "unreachable",
            ProviderErrorKind::Timeout => "timeout",
            ProviderErrorKind::Unavailable => "unavailable",
            ProviderErrorKind::BadRequest => "bad_request",
            ProviderErrorKind::Protocol => "protocol",
        }
    }
}

/// A provider failure: a kind for the user, the provider's own words for the log.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind:?} (HTTP {status:?}): {detail}")]
pub struct ProviderError {
    pub kind: ProviderErrorKind,
    pub status: Option<u16>,
    /// The provider's message or the transport error; may be shown to the user after
    /// redaction but is mainly for the log.
    pub detail: String,
    /// How long the provider asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, status: None, detail: detail.into(), retry_after: None }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// Whether trying again (later, or with another key) may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ProviderErrorKind::RateLimited | ProviderErrorKind::Unreachable | ProviderErrorKind::Unavailable
        )
    }
}

/// Progress of a model download (Ollama's `/api/pull`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullProgress {
    pub status: String,
    pub completed: Option<u64>,
    pub total: Option<u64>,
}

pub type PullStream = Pin<Box<dyn Stream<Item = Result<PullProgress, ProviderError>> + Send>>;

/// Vectors for a list of inputs, in the inputs' order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Embeddings {
    pub vectors: Vec<Vec<f32>>,
    /// What the provider counted for the inputs (0 when it does not say).
    pub prompt_tokens: u32,
}

/// Text to be read aloud (OpenAI's `POST /audio/speech`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpeechRequest {
    pub model: String,
    pub input: String,
    pub voice: String,
}

/// Sound a provider made, and its media type.
#[derive(Debug, Clone, PartialEq)]
pub struct Audio {
    pub bytes: bytes::Bytes,
    pub mime: String,
}

/// Speech to be written down (OpenAI's `POST /audio/transcriptions`, Whisper-style).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptionRequest {
    pub model: String,
    pub audio: bytes::Bytes,
    /// A name with the format's extension (`speech.webm`): providers tell formats by it.
    pub file_name: String,
    /// An ISO-639-1 hint, when known.
    pub language: Option<String>,
}

/// Pictures to be drawn (OpenAI's `POST /images/generations`).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageRequest {
    pub model: String,
    pub prompt: String,
    /// `1024x1024`, `1536x1024`…
    pub size: String,
    pub count: u32,
}

/// One picture a provider drew: its bytes (fetched when the provider sent an address).
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedImage {
    pub bytes: bytes::Bytes,
    /// The prompt as the model rewrote it, when it says.
    pub revised_prompt: Option<String>,
}

/// What a provider says about one model (Ollama's `/api/show`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ModelDetails {
    pub context_tokens: Option<u32>,
}

#[async_trait]
pub trait ChatClient: Send + Sync {
    /// Starts a streamed chat completion. Returns once the answer's first visible output (text,
    /// reasoning or a tool call) has arrived, so a failure before it is this call's error and
    /// the caller may still ask another model. Dropping the stream cancels the upstream request.
    async fn stream_chat(&self, endpoint: &Endpoint, request: &ChatRequest) -> Result<ChatStream, ProviderError>;

    /// The model ids the provider reports (`GET /models` for OpenAI-compatible servers).
    async fn list_models(&self, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError>;

    /// Downloads a model onto the provider (Ollama); other protocols refuse.
    async fn pull_model(&self, endpoint: &Endpoint, model: &str) -> Result<PullStream, ProviderError> {
        let _ = (endpoint, model);
        Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider cannot download models"))
    }

    /// Embeds `inputs` with `model` (`POST /embeddings` for OpenAI-compatible servers); protocols
    /// without embeddings refuse.
    async fn embed(&self, endpoint: &Endpoint, model: &str, inputs: &[String]) -> Result<Embeddings, ProviderError> {
        let _ = (endpoint, model, inputs);
        Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider has no embeddings"))
    }

    /// Reads `request.input` aloud; protocols without speech refuse.
    async fn speech(&self, endpoint: &Endpoint, request: &SpeechRequest) -> Result<Audio, ProviderError> {
        let _ = (endpoint, request);
        Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider cannot read aloud"))
    }

    /// Writes down what `request.audio` says; protocols without transcription refuse.
    async fn transcribe(&self, endpoint: &Endpoint, request: &TranscriptionRequest) -> Result<String, ProviderError> {
        let _ = (endpoint, request);
        Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider cannot transcribe"))
    }

    /// Draws what `request.prompt` describes; protocols without image generation refuse.
    async fn generate_images(
        &self,
        endpoint: &Endpoint,
        request: &ImageRequest,
    ) -> Result<Vec<GeneratedImage>, ProviderError> {
        let _ = (endpoint, request);
        Err(ProviderError::new(ProviderErrorKind::BadRequest, "this provider cannot draw images"))
    }

    /// Details of one model (Ollama reports its context length); others know nothing extra.
    async fn model_details(&self, endpoint: &Endpoint, model: &str) -> Result<ModelDetails, ProviderError> {
        let _ = (endpoint, model);
        Ok(ModelDetails::default())
    }
}
