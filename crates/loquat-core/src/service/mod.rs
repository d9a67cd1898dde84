//! The services: every rule of the product lives here, behind methods that take the acting
//! user. Pages and the API are thin callers; stores only store.
//!
//! `Services` is the composition root: a few services, each holding only what it needs, that a
//! reader can take one at a time —
//! - [`Accounts`]: registration (one way for every door), sign-in, sessions, SSO, API tokens,
//!   a user's profile and preferences;
//! - [`Admin`]: people, invitations, instance settings, quotas, the audit log, the command line;
//! - [`Providers`]: which providers and models a user can use, endpoints and keys, the settings
//!   page's providers, model downloads;
//! - [`Assistants`]: assistants, topics and the branch of the message tree a user looks at;
//! - [`Chat`]: sending, regenerating, editing, deleting and stopping — generation jobs;
//! - [`Gateway`]: the OpenAI-compatible API's side;
//!
//! and two small shared parts: [`Usage`] (records and quotas) and [`Instance`] (the
//! administrator's run-time settings, cached). The audit log writer is internal.

mod accounts;
mod admin;
mod assistants;
mod chat;
mod cli;
mod composer;
mod files;
mod gateway;
mod instance;
mod knowledge;
mod materials;
mod media;
mod provider_settings;
mod providers;
mod registration;
mod search;
mod shares;
mod summaries;
mod tokens;
mod tool_servers;
mod topics;
mod transfer;
mod usage;
mod users;

use std::sync::Arc;

pub use accounts::{
    Accounts, ClientInfo, DIRECTORY_PROVIDER, Directory, DirectoryError, DirectoryPerson, NewSession, Registration,
    RegistrationMode, SsoIdentity,
};
pub use admin::{Admin, MAX_AUDIT_EXPORT, NewInvite};
pub use assistants::Assistants;
pub use chat::{Attachment, Chat, Exchange, SendMessage};
pub use composer::TokenEstimate;
pub use files::{FileContent, Files, content_type};
pub use gateway::{
    ASSISTANT_PREFIX, ApiChat, ApiChatRequest, ApiChatStream, ApiModel, Gateway, PreparedApiChat, assistant_slug,
};
pub use instance::{Instance, RequestAudit};
pub use knowledge::{BuiltIndex, EmbeddingChoice, EmbeddingModel, Hit, Knowledge, Passage, sources_prompt};
pub use materials::{document_format_name, is_document};
pub use media::{Drawing, IMAGE_SIZES, MAX_AUDIO_BYTES, MAX_IMAGES, Media, MediaModels};
pub use provider_settings::{ProviderSettingView, ServerProviderView};
pub use providers::{ProviderOption, Providers, ResolvedModel};
pub use search::{MAX_QUERY_CHARS, MessageResult, TopicResult};
pub use shares::{MAX_SHARE_DAYS, SharedConversation, Shares};
pub use tokens::TOKEN_PREFIX;
pub use tool_servers::{McpServerDraft, McpServerView, Tools, parse_secret_lines};
pub use topics::Conversation;
pub use transfer::{ImportReport, Labels, Skip, SkipReason, parse_agent};
pub use usage::{Usage, UsageLine};

use crate::catalogue::ServerProviders;
use crate::crypto::KeyVault;
use crate::domain::{AuditEvent, Role, User};
use crate::error::{CoreError, CoreResult};
use crate::generation::{GenerationSettings, Generations};
use crate::id::UserId;
use crate::llm::ChatClient;
use crate::store::Store;
use crate::time::Timestamp;

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
    /// The largest file a user may upload, in bytes.
    pub max_file_bytes: u64,
    /// The models that read aloud, transcribe and draw.
    pub media: MediaModels,
    /// Whether people may have and use passwords (false: identity providers only).
    pub passwords: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_message_chars: 200_000,
            allow_user_keys: true,
            registration: RegistrationMode::Invite,
            max_file_bytes: 100 * 1024 * 1024,
            media: MediaModels::default(),
            passwords: true,
        }
    }
}

/// Loquat's application core, shared by every front door. Cheap to clone.
#[derive(Clone)]
pub struct Services {
    pub accounts: Accounts,
    pub admin: Admin,
    pub providers: Providers,
    pub assistants: Assistants,
    pub chat: Chat,
    pub gateway: Gateway,
    pub usage: Usage,
    pub instance: Instance,
    pub files: Files,
    pub knowledge: Knowledge,
    pub tools: Tools,
    pub shares: Shares,
    pub media: Media,
    store: Arc<dyn Store>,
    generations: Generations,
}

/// Where an instance's data lives: the database, and file storage for files' bytes.
#[derive(Clone)]
pub struct DataStores {
    pub store: Arc<dyn Store>,
    pub blobs: loquat_files::Blobs,
    /// The public address of the files' bucket, when vision models should fetch images from
    /// it instead of receiving their bytes.
    pub public_image_base: Option<String>,
    /// The model that embeds documents for search by meaning (`DEFAULT_FILES_CONFIG`).
    pub embedding_model: Option<EmbeddingModel>,
}

impl Services {
    #[expect(clippy::too_many_arguments, reason = "the composition root receives every part from outside")]
    pub fn new(
        data: DataStores,
        chat_client: Arc<dyn ChatClient>,
        vault: KeyVault,
        server_providers: ServerProviders,
        generation: GenerationSettings,
        limits: Limits,
        bus: Option<Arc<dyn crate::bus::EventBus>>,
        tools: crate::tools::ToolShelf,
    ) -> Self {
        let DataStores { store, blobs, public_image_base, embedding_model } = data;
        let node_id = generation.node_id.clone();
        let generations = Generations::new(generation, bus);
        let audit = Audit { store: store.clone() };
        let instance = Instance::new(store.clone(), limits.clone());
        let usage = Usage::new(store.clone(), instance.clone());
        let accounts = Accounts::new(store.clone(), audit.clone(), instance.clone());
        let vault = Arc::new(vault);
        let providers = Providers::new(
            store.clone(),
            chat_client.clone(),
            vault.clone(),
            Arc::new(server_providers),
            instance.clone(),
            audit.clone(),
        );
        let assistants = Assistants::new(store.clone(), generations.clone());
        let knowledge = Knowledge::new(
            store.clone(),
            blobs.clone(),
            providers.clone(),
            chat_client.clone(),
            embedding_model,
            instance.clone(),
            node_id,
        );
        let tools = Tools::new(store.clone(), vault, instance.clone(), audit.clone(), tools, knowledge.clone());
        let admin = Admin::new(store.clone(), audit.clone(), instance.clone(), accounts.clone(), knowledge.clone());
        let chat = Chat::new(
            store.clone(),
            chat_client.clone(),
            generations.clone(),
            providers.clone(),
            assistants.clone(),
            usage.clone(),
            materials::Reader::new(blobs.clone(), public_image_base),
            knowledge.clone(),
            tools.clone(),
            instance.clone(),
            limits.max_message_chars,
        );
        let gateway = Gateway::new(
            store.clone(),
            chat_client.clone(),
            generations.clone(),
            providers.clone(),
            assistants.clone(),
            usage.clone(),
            tools.clone(),
            instance.clone(),
        );
        let files = Files::new(store.clone(), blobs, limits.max_file_bytes, instance.clone(), knowledge.waker());
        let shares = Shares::new(store.clone(), instance.clone());
        let media = Media::new(
            store.clone(),
            chat_client.clone(),
            providers.clone(),
            assistants.clone(),
            files.clone(),
            usage.clone(),
            limits.media.clone(),
        );
        Self {
            accounts,
            admin,
            providers,
            assistants,
            chat,
            gateway,
            usage,
            instance,
            files,
            knowledge,
            tools,
            shares,
            media,
            store,
            generations,
        }
    }

    /// People sign in with a directory's accounts too (LDAP).
    pub fn with_directory(mut self, directory: Arc<dyn Directory>) -> Self {
        self.accounts.directory = Some(directory.clone());
        self.admin.accounts.directory = Some(directory);
        self
    }

    /// The running generation jobs (for subscriptions, metrics and shutdown).
    pub fn generations(&self) -> &Generations {
        &self.generations
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// The user `actor`, if they are an enabled administrator; anybody else learns nothing about
/// admin pages (`NotFound`).
pub(crate) async fn admin_user(store: &dyn Store, actor: UserId) -> CoreResult<User> {
    match store.get_user(actor).await? {
        Some(user) if user.role == Role::Admin && !user.disabled => Ok(user),
        _ => Err(CoreError::NotFound("page")),
    }
}

/// The user `id`, or `NotFound`.
pub(crate) async fn existing_user(store: &dyn Store, id: UserId) -> CoreResult<User> {
    store.get_user(id).await?.ok_or(CoreError::NotFound("user"))
}

/// Writes the audit log of security-relevant actions.
#[derive(Clone)]
pub(crate) struct Audit {
    store: Arc<dyn Store>,
}

impl Audit {
    /// Records an action. Failures are logged, never fatal to the action.
    pub(crate) async fn record(
        &self,
        actor: Option<UserId>,
        action: &str,
        target: &str,
        detail: &str,
        client: &ClientInfo,
    ) {
        let event = AuditEvent {
            id: uuid::Uuid::now_v7().to_string(),
            actor,
            action: action.to_owned(),
            target: target.chars().take(300).collect(),
            detail: detail.chars().take(1000).collect(),
            ip: client.ip.chars().take(64).collect(),
            created_at: Timestamp::now(),
        };
        if let Err(error) = self.store.insert_audit(&event).await {
            tracing::error!(%error, action, "could not write the audit log");
        }
    }
}
