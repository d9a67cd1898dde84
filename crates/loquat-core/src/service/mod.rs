//! The services: every rule of the product lives here, behind methods that take the acting
//! user. Pages and the API are thin callers; stores only store.

mod accounts;
mod admin;
mod assistants;
mod chat;
mod cli;
mod gateway;
mod provider_settings;
mod providers;
mod registration;
mod tokens;
mod topics;
mod usage;
mod users;

use std::sync::Arc;

pub use accounts::{ClientInfo, NewSession, Registration, RegistrationMode, SsoIdentity};
pub use admin::NewInvite;
pub use chat::{Attachment, Exchange, SendMessage};
pub use gateway::{
    ASSISTANT_PREFIX, ApiChat, ApiChatRequest, ApiChatStream, ApiModel, PreparedApiChat, assistant_slug,
};
pub use provider_settings::{ProviderSettingView, ServerProviderView};
pub use providers::{ProviderOption, ResolvedModel};
pub use tokens::TOKEN_PREFIX;
pub use topics::Conversation;
pub use usage::UsageLine;

use crate::catalogue::ServerProviders;
use crate::crypto::KeyVault;
use crate::generation::{GenerationSettings, Generations};
use crate::llm::ChatClient;
use crate::store::Store;

/// Limits the services enforce.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest message a user may send, in characters.
    pub max_message_chars: usize,
    /// Whether users may use their own keys for the server's providers (the admin can change
    /// it at run time).
    pub allow_user_keys: bool,
    /// Who may register when the admin has not chosen (the first account may always).
    pub registration: RegistrationMode,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_message_chars: 200_000, allow_user_keys: true, registration: RegistrationMode::Invite }
    }
}

/// Loquat's application core, shared by every front door.
#[derive(Clone)]
pub struct Services {
    store: Arc<dyn Store>,
    chat_client: Arc<dyn ChatClient>,
    vault: Arc<KeyVault>,
    server_providers: Arc<ServerProviders>,
    generations: Generations,
    limits: Limits,
    model_cache: Arc<providers::ModelCache>,
}

impl Services {
    pub fn new(
        store: Arc<dyn Store>,
        chat_client: Arc<dyn ChatClient>,
        vault: KeyVault,
        server_providers: ServerProviders,
        generation: GenerationSettings,
        limits: Limits,
        bus: Option<Arc<dyn crate::bus::EventBus>>,
    ) -> Self {
        Self {
            store,
            chat_client,
            vault: Arc::new(vault),
            server_providers: Arc::new(server_providers),
            generations: Generations::new(generation, bus),
            limits,
            model_cache: Arc::default(),
        }
    }

    /// The running generation jobs (for subscriptions, metrics and shutdown).
    pub fn generations(&self) -> &Generations {
        &self.generations
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}
