//! The store traits: one per aggregate, implemented for SQLite and PostgreSQL by `loquat-store`.
//! Every query that reads or changes a user's object takes the `UserId` and filters by it, so a
//! wrong id can at worst find nothing.

use async_trait::async_trait;

use crate::domain::{
    Assistant, AssistantConfig, Locale, Message, MessageStatus, NewMessage, ProviderOverride, ProviderSetting, Theme,
    TokenUsage, Topic, User,
};
use crate::id::{AssistantId, MessageId, ProviderSettingId, TopicId, UserId};
use crate::time::Timestamp;

/// A storage failure. Stores return `Ok(None)` / `Ok(false)` for missing rows; this is for
/// everything else.
#[derive(Debug, thiserror::Error)]
#[error("store error ({kind:?}): {source}")]
pub struct StoreError {
    pub kind: StoreErrorKind,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreErrorKind {
    /// The database cannot be reached or the pool is exhausted.
    Unavailable,
    /// A uniqueness or foreign-key rule was broken.
    Conflict,
    /// A row did not decode into a domain type (a bug or a manual edit).
    Corrupt,
    Other,
}

impl StoreError {
    pub fn new(kind: StoreErrorKind, source: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self { kind, source: source.into() }
    }

    pub fn is_unavailable(&self) -> bool {
        self.kind == StoreErrorKind::Unavailable
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Inserts the user unless a user with that id exists.
    async fn ensure_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn update_user_preferences(&self, id: UserId, locale: Option<Locale>, theme: Theme) -> StoreResult<bool>;
}

#[async_trait]
pub trait AssistantStore: Send + Sync {
    async fn insert_assistant(&self, assistant: &Assistant) -> StoreResult<()>;
    async fn get_assistant(&self, user: UserId, id: AssistantId) -> StoreResult<Option<Assistant>>;
    /// The default assistant first, then the others by creation time.
    async fn list_assistants(&self, user: UserId) -> StoreResult<Vec<Assistant>>;
    async fn update_assistant(
        &self,
        user: UserId,
        id: AssistantId,
        config: &AssistantConfig,
        updated_at: Timestamp,
    ) -> StoreResult<bool>;
    /// Deletes the assistant with its topics and messages.
    async fn delete_assistant(&self, user: UserId, id: AssistantId) -> StoreResult<bool>;
}

#[async_trait]
pub trait TopicStore: Send + Sync {
    async fn insert_topic(&self, topic: &Topic) -> StoreResult<()>;
    async fn get_topic(&self, user: UserId, id: TopicId) -> StoreResult<Option<Topic>>;
    /// Most recently active first.
    async fn list_topics(&self, user: UserId, assistant: AssistantId) -> StoreResult<Vec<Topic>>;
    async fn rename_topic(&self, user: UserId, id: TopicId, title: &str, updated_at: Timestamp) -> StoreResult<bool>;
    /// Sets the title only while it is still empty (auto-titling never overwrites a rename).
    async fn set_title_if_empty(&self, user: UserId, id: TopicId, title: &str) -> StoreResult<bool>;
    async fn set_active_leaf(
        &self,
        user: UserId,
        id: TopicId,
        leaf: Option<MessageId>,
        updated_at: Timestamp,
    ) -> StoreResult<bool>;
    /// Deletes the topic with its messages.
    async fn delete_topic(&self, user: UserId, id: TopicId) -> StoreResult<bool>;
}

/// The final state of an answer, written once when its generation ends.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishedAnswer {
    pub status: MessageStatus,
    pub content: String,
    pub reasoning: String,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub usage: Option<TokenUsage>,
    pub ttft_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub updated_at: Timestamp,
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    async fn insert_message(&self, message: &NewMessage) -> StoreResult<()>;
    async fn get_message(&self, user: UserId, id: MessageId) -> StoreResult<Option<Message>>;
    /// Every message of the topic in creation order, in one query.
    async fn list_messages(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<Message>>;
    /// Saves the growing answer of a generating message; does nothing once it has finished.
    async fn save_progress(
        &self,
        user: UserId,
        id: MessageId,
        content: &str,
        reasoning: &str,
        updated_at: Timestamp,
    ) -> StoreResult<bool>;
    /// Writes the final state of a generating message; does nothing once it has finished.
    async fn finish_message(&self, user: UserId, id: MessageId, answer: &FinishedAnswer) -> StoreResult<bool>;
    /// Deletes the message and all its descendants; returns how many were deleted.
    async fn delete_message_subtree(&self, user: UserId, id: MessageId) -> StoreResult<u64>;
    /// Marks every message still `generating` as `interrupted` (start-up recovery after a crash).
    async fn interrupt_generating(&self, updated_at: Timestamp) -> StoreResult<u64>;
}

#[async_trait]
pub trait ProviderStore: Send + Sync {
    async fn insert_provider(&self, provider: &ProviderSetting) -> StoreResult<()>;
    async fn get_provider(&self, user: UserId, id: ProviderSettingId) -> StoreResult<Option<ProviderSetting>>;
    async fn list_providers(&self, user: UserId) -> StoreResult<Vec<ProviderSetting>>;
    async fn update_provider(&self, provider: &ProviderSetting) -> StoreResult<bool>;
    async fn delete_provider(&self, user: UserId, id: ProviderSettingId) -> StoreResult<bool>;
    /// The user's override of a server provider, if any.
    async fn get_provider_override(&self, user: UserId, provider_id: &str) -> StoreResult<Option<ProviderOverride>>;
    /// All of a user's overrides, by provider id.
    async fn list_provider_overrides(&self, user: UserId) -> StoreResult<Vec<ProviderOverride>>;
    /// Inserts or replaces the override of `(user, provider_id)`.
    async fn upsert_provider_override(&self, provider_override: &ProviderOverride) -> StoreResult<()>;
    async fn delete_provider_override(&self, user: UserId, provider_id: &str) -> StoreResult<bool>;
}

/// Everything Loquat persists, behind one object.
#[async_trait]
pub trait Store: UserStore + AssistantStore + TopicStore + MessageStore + ProviderStore {
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// `sqlite` or `postgres`, for logs and diagnostics only.
    fn backend_name(&self) -> &'static str;
}
