//! Providers as the user sees them: where a model lives and how to reach it.

use serde::{Deserialize, Serialize};

use crate::id::{ProviderSettingId, UserId};
use crate::time::Timestamp;

/// The wire protocol spoken by a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OpenAI Chat Completions and every compatible server.
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini (`generateContent`).
    Gemini,
    /// Ollama's native API.
    Ollama,
    /// Azure OpenAI (deployments, `api-version`, `api-key`).
    Azure,
}

impl Protocol {
    pub const ALL: [Protocol; 5] =
        [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini, Protocol::Ollama, Protocol::Azure];

    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
            Protocol::Anthropic => "anthropic",
            Protocol::Gemini => "gemini",
            Protocol::Ollama => "ollama",
            Protocol::Azure => "azure",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Protocol::ALL.into_iter().find(|protocol| protocol.as_str() == text)
    }
}

/// A model as offered in the model picker, and what the model bank knows about it.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelCard {
    /// The id the user picks (and Loquat records).
    pub id: String,
    /// The name sent upstream, when it differs (Azure deployments: `id->deployment`).
    pub deployment: Option<String>,
    pub display_name: Option<String>,
    pub context_tokens: Option<u32>,
    pub function_calling: bool,
    pub vision: bool,
    pub reasoning: bool,
    pub search: bool,
    pub files: bool,
    /// The longest answer the model can give, in tokens.
    pub max_output_tokens: Option<u32>,
    /// Request parameters the model rejects (`temperature`, `top_p`, `presence_penalty`,
    /// `frequency_penalty`, `max_tokens`); they are never sent and the UI hides them.
    pub unsupported_params: Vec<String>,
    /// US dollars per million input / output tokens, when known.
    pub price_input: Option<f64>,
    pub price_output: Option<f64>,
}

impl ModelCard {
    pub fn plain(id: impl Into<String>) -> Self {
        Self { id: id.into(), ..Self::default() }
    }

    /// Whether the model accepts the request parameter `name`.
    pub fn supports_param(&self, name: &str) -> bool {
        !self.unsupported_params.iter().any(|param| param == name)
    }

    /// `params` without the ones this model rejects.
    pub fn accepted_params(&self, params: &super::ModelParams) -> super::ModelParams {
        let keep = |name: &str, value| if self.supports_param(name) { value } else { None };
        super::ModelParams {
            temperature: keep("temperature", params.temperature),
            top_p: keep("top_p", params.top_p),
            presence_penalty: keep("presence_penalty", params.presence_penalty),
            frequency_penalty: keep("frequency_penalty", params.frequency_penalty),
            max_tokens: if self.supports_param("max_tokens") { params.max_tokens } else { None },
        }
    }

    pub fn label(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.id)
    }

    /// The model name to send to the provider.
    pub fn upstream_name(&self) -> &str {
        self.deployment.as_deref().unwrap_or(&self.id)
    }
}

/// A provider added from the settings page; its key is stored encrypted.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderSetting {
    pub id: ProviderSettingId,
    pub user_id: UserId,
    pub name: String,
    pub protocol: Protocol,
    pub base_url: String,
    /// `hex(iv):hex(tag):hex(ciphertext)`; never decrypted outside the service.
    pub api_key_encrypted: Option<String>,
    /// In LobeChat's model-list language, e.g. `gpt-4o,my-agent=My Agent<32000:fc>`.
    pub model_list: String,
    /// Azure's `api-version`; empty for the default (and for other protocols).
    pub api_version: String,
    pub enabled: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A user's own key (and optionally base URL) for a provider the server configures, used
/// instead of the server's for that user when the instance allows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOverride {
    pub user_id: UserId,
    /// The catalogue id, e.g. `openai`.
    pub provider_id: String,
    /// `hex(iv):hex(tag):hex(ciphertext)`; `None` keeps the server's key.
    pub api_key_encrypted: Option<String>,
    /// Empty keeps the server's base URL.
    pub base_url: String,
    pub updated_at: Timestamp,
}

/// What the settings form submits.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderDraft {
    pub name: String,
    pub protocol: Protocol,
    pub base_url: String,
    /// `None` keeps the stored key; `Some("")` removes it.
    pub api_key: Option<crate::secret::Secret>,
    pub model_list: String,
    /// Azure's `api-version` (empty for the default).
    pub api_version: String,
    pub enabled: bool,
}
