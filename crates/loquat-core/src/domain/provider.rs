//! Providers as the user sees them: where a model lives and how to reach it.

use serde::{Deserialize, Serialize};

use crate::id::{ProviderSettingId, UserId};
use crate::time::Timestamp;

/// The wire protocol spoken by a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// OpenAI Chat Completions and every compatible server.
    OpenAi,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::OpenAi => "openai",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "openai" => Some(Protocol::OpenAi),
            _ => None,
        }
    }
}

/// A model as offered in the model picker.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
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
}

impl ModelCard {
    pub fn plain(id: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            deployment: None,
            display_name: None,
            context_tokens: None,
            function_calling: false,
            vision: false,
            reasoning: false,
            search: false,
            files: false,
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
    pub enabled: bool,
    pub created_at: Timestamp,
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
    pub enabled: bool,
}
