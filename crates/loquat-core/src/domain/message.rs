//! Messages: nodes of a topic's message tree. Regenerating or editing adds a sibling under the
//! same parent, so every earlier answer stays reachable.

use serde::{Deserialize, Serialize};

use crate::id::{AssistantId, MessageId, TopicId, UserId};
use crate::time::Timestamp;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageRole {
    User,
    Assistant,
}

impl MessageRole {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageRole::User => "user",
            MessageRole::Assistant => "assistant",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(MessageRole::User),
            "assistant" => Some(MessageRole::Assistant),
            _ => None,
        }
    }
}

/// Where an answer is in its life. Only `Generating` changes; every other state is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageStatus {
    Complete,
    Generating,
    /// The user pressed stop; what arrived is kept.
    Stopped,
    /// The upstream failed; what arrived is kept, with the error.
    Error,
    /// The process ended while generating; what was persisted is kept.
    Interrupted,
}

impl MessageStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Complete => "complete",
            MessageStatus::Generating => "generating",
            MessageStatus::Stopped => "stopped",
            MessageStatus::Error => "error",
            MessageStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "complete" => Some(MessageStatus::Complete),
            "generating" => Some(MessageStatus::Generating),
            "stopped" => Some(MessageStatus::Stopped),
            "error" => Some(MessageStatus::Error),
            "interrupted" => Some(MessageStatus::Interrupted),
            _ => None,
        }
    }
}

/// Token counts reported by the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub reasoning_tokens: u32,
    /// Prompt tokens served from the provider's cache (included in `prompt_tokens`).
    pub cache_read_tokens: u32,
    /// Prompt tokens written to the provider's cache (included in `prompt_tokens`).
    pub cache_write_tokens: u32,
}

/// Usage of several requests of one answer (tool rounds): the sum.
impl std::ops::Add for TokenUsage {
    type Output = TokenUsage;

    fn add(self, more: TokenUsage) -> TokenUsage {
        TokenUsage {
            prompt_tokens: self.prompt_tokens + more.prompt_tokens,
            completion_tokens: self.completion_tokens + more.completion_tokens,
            reasoning_tokens: self.reasoning_tokens + more.reasoning_tokens,
            cache_read_tokens: self.cache_read_tokens + more.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens + more.cache_write_tokens,
        }
    }
}

impl TokenUsage {
    pub fn total(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub id: MessageId,
    pub user_id: UserId,
    pub topic_id: TopicId,
    pub parent_id: Option<MessageId>,
    pub role: MessageRole,
    pub content: String,
    /// The model's visible reasoning ("thinking"), if any.
    pub reasoning: String,
    pub status: MessageStatus,
    /// For `Error`: the user-facing kind (see `ProviderErrorKind::code`).
    pub error_kind: Option<String>,
    /// For `Error`: a short user-facing explanation.
    pub error_message: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub usage: Option<TokenUsage>,
    /// Milliseconds from request to first token.
    pub ttft_ms: Option<i64>,
    /// Milliseconds from request to the end of the answer.
    pub duration_ms: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A message found by a search across a person's topics.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchHit {
    pub message_id: MessageId,
    pub topic_id: TopicId,
    pub assistant_id: AssistantId,
    pub topic_title: String,
    pub role: MessageRole,
    pub content: String,
    pub created_at: Timestamp,
}

/// A message about to be inserted; the service fills ids and times.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMessage {
    pub id: MessageId,
    pub user_id: UserId,
    pub topic_id: TopicId,
    pub parent_id: Option<MessageId>,
    pub role: MessageRole,
    pub content: String,
    pub status: MessageStatus,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub created_at: Timestamp,
    /// For a generating answer: the node (process) generating it.
    pub generating_by: Option<String>,
}

impl NewMessage {
    /// The message as the store returns it once inserted.
    pub fn stored(&self) -> Message {
        Message {
            id: self.id,
            user_id: self.user_id,
            topic_id: self.topic_id,
            parent_id: self.parent_id,
            role: self.role,
            content: self.content.clone(),
            reasoning: String::new(),
            status: self.status,
            error_kind: None,
            error_message: None,
            provider: self.provider.clone(),
            model: self.model.clone(),
            usage: None,
            ttft_ms: None,
            duration_ms: None,
            created_at: self.created_at,
            updated_at: self.created_at,
        }
    }
}

impl Message {
    /// Tokens per second of the answer, when the provider reported usage.
    pub fn tokens_per_second(&self) -> Option<f64> {
        let usage = self.usage?;
        let generating_ms = self.duration_ms? - self.ttft_ms.unwrap_or(0);
        (generating_ms > 0 && usage.completion_tokens > 0)
            .then(|| f64::from(usage.completion_tokens) * 1000.0 / generating_ms as f64)
    }
}
