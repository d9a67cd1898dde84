//! Assistants ("agents" in LobeChat): who the model should be and how it should be called.

use serde::{Deserialize, Serialize};

use crate::error::CoreError;
use crate::id::{AssistantId, UserId};
use crate::time::Timestamp;

/// Sampling parameters. `None` means "do not send; let the provider decide".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ModelParams {
    pub temperature: Option<f32>,
    pub top_p: Option<f32>,
    pub presence_penalty: Option<f32>,
    pub frequency_penalty: Option<f32>,
    /// Sent only when set (LobeChat's `enableMaxTokens`).
    pub max_tokens: Option<u32>,
}

/// Everything about an assistant except its identity; stored as one JSON document so that
/// new settings do not need a migration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AssistantConfig {
    pub title: String,
    pub description: String,
    /// An emoji.
    pub avatar: String,
    pub system_role: String,
    /// Provider id (a catalogue id such as `openai`, or a custom provider's id); empty = default.
    pub provider: String,
    /// Model id; empty = the provider's first model.
    pub model: String,
    /// Tried when the model fails before answering anything; empty = no fallback.
    pub fallback_provider: String,
    pub fallback_model: String,
    pub params: ModelParams,
    /// How hard a reasoning model thinks; sent only to models the bank marks as reasoning.
    pub reasoning_effort: Option<crate::llm::ReasoningEffort>,
    /// How many previous messages to send; `None` sends the whole branch.
    pub history_limit: Option<u32>,
    /// Wraps what the user types; `{{text}}` is replaced by it.
    pub input_template: String,
    pub opening_message: String,
    pub opening_questions: Vec<String>,
    /// The tools its model may call, by name (the server's tools; see `tools::ToolShelf`).
    pub tools: Vec<String>,
    /// Words to find it by (LobeChat's agent tags).
    pub tags: Vec<String>,
    /// Kept at the top of its owner's list (after the default assistant).
    pub pinned: bool,
    /// Its place in its owner's list (lower first; equal places keep creation order).
    pub position: u32,
    /// The voice its answers are read aloud in (`alloy`, `nova`…); empty for the server's.
    pub voice: String,
    /// With a history limit: the messages past it are summarised, and the summary is sent
    /// instead of them (LobeChat's history compression).
    pub compress_history: bool,
    /// The model that writes the summary (`provider::model`); empty for its own model.
    pub summary_model: String,
}

impl Default for AssistantConfig {
    fn default() -> Self {
        Self {
            title: String::new(),
            description: String::new(),
            avatar: "🤖".to_owned(),
            system_role: String::new(),
            provider: String::new(),
            model: String::new(),
            fallback_provider: String::new(),
            fallback_model: String::new(),
            params: ModelParams { temperature: Some(0.7), ..ModelParams::default() },
            reasoning_effort: None,
            history_limit: None,
            input_template: String::new(),
            opening_message: String::new(),
            opening_questions: Vec::new(),
            tools: Vec::new(),
            tags: Vec::new(),
            pinned: false,
            position: 0,
            voice: String::new(),
            compress_history: false,
            summary_model: String::new(),
        }
    }
}

impl AssistantConfig {
    /// Checks ranges the providers would otherwise reject with an opaque error.
    pub fn validate(&self) -> Result<(), CoreError> {
        let params = &self.params;
        let check = |value: Option<f32>, low: f32, high: f32, name: &str| match value {
            Some(v) if !(low..=high).contains(&v) || v.is_nan() => {
                Err(CoreError::invalid_with("param_range", format!("{name} ({low} – {high})")))
            }
            _ => Ok(()),
        };
        check(params.temperature, 0.0, 2.0, "temperature")?;
        check(params.top_p, 0.0, 1.0, "top_p")?;
        check(params.presence_penalty, -2.0, 2.0, "presence_penalty")?;
        check(params.frequency_penalty, -2.0, 2.0, "frequency_penalty")?;
        if params.max_tokens == Some(0) {
            return Err(CoreError::invalid("max_tokens"));
        }
        if self.title.chars().count() > 200 {
            return Err(CoreError::invalid("assistant_title"));
        }
        if self.opening_questions.len() > 20 {
            return Err(CoreError::invalid("opening_questions"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Assistant {
    pub id: AssistantId,
    pub user_id: UserId,
    /// The assistant every user starts with; it cannot be deleted.
    pub is_default: bool,
    pub config: AssistantConfig,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// What a user submits to create or change an assistant.
#[derive(Debug, Clone, PartialEq)]
pub struct AssistantDraft {
    pub config: AssistantConfig,
}
