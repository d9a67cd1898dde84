//! The provider-neutral chat interface: what Loquat asks of any LLM, the events it gets back,
//! and one error vocabulary for every protocol. `loquat-providers` implements [`ChatClient`].

use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;

use crate::domain::{ModelParams, Protocol, TokenUsage};
use crate::secret::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: ChatRole, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The model name as the upstream knows it.
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub params: ModelParams,
}

/// Where and how to reach a provider for one request.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub protocol: Protocol,
    /// Base URL including the version path, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    pub api_key: Option<Secret>,
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
}

impl ProviderError {
    pub fn new(kind: ProviderErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, status: None, detail: detail.into() }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }
}

#[async_trait]
pub trait ChatClient: Send + Sync {
    /// Starts a streamed chat completion. Dropping the stream cancels the upstream request.
    async fn stream_chat(&self, endpoint: &Endpoint, request: &ChatRequest) -> Result<ChatStream, ProviderError>;

    /// The model ids the provider reports (`GET /models` for OpenAI-compatible servers).
    async fn list_models(&self, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError>;
}
