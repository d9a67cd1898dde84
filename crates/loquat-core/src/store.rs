//! The store traits: one per aggregate, implemented for SQLite and PostgreSQL by `loquat-store`.
//! Every query that reads or changes a user's object takes the `UserId` and filters by it, so a
//! wrong id can at worst find nothing.

use async_trait::async_trait;

use crate::domain::{
    ApiToken, Assistant, AssistantConfig, AuditEvent, Identity, IngestState, Ingestion, Invite, KnowledgeBase, Locale,
    McpServerRecord, Message, MessageStatus, NewMessage, ProviderOverride, ProviderSetting, Quota, QuotaScope, Role,
    SearchHit, Session, Share, Source, StoredChunk, StoredFile, Theme, TokenUsage, ToolStep, Topic, TopicFeature,
    TopicSummary, UsageEvent, UsageGrouping, UsageRow, User,
};
use crate::id::{
    AssistantId, FileId, KnowledgeBaseId, McpServerId, MessageId, ProviderSettingId, ShareId, TopicId, UserId,
};
use crate::time::Timestamp;

/// The histogram of store round trips, by `query` (the store method, e.g. `get_topic`), waiting
/// for a connection included. Recorded by the store implementation.
pub const QUERY_DURATION_SECONDS: &str = "loquat_store_query_duration_seconds";

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

/// Why an account may be created: the store checks it in the transaction that creates it, so
/// two requests racing for one grant cannot both win.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountGrant<'a> {
    /// The instance's first account, which becomes an administrator. At most one account is
    /// ever created this way; it also takes over the data of the local user an instance had
    /// before accounts existed (moved to the new account's id).
    First,
    /// A single-use invitation (by code hash), still unused and unexpired at `now`: it is used
    /// by this account, which gets the invite's role.
    Invite { code_hash: &'a str, now: Timestamp },
    /// Nothing to check: open registration, an administrator, the command line.
    Granted,
}

/// Everything a new account is made of, written in one transaction.
#[derive(Debug, Clone, Copy)]
pub struct NewAccount<'a> {
    /// Its id is new; its role is the grant's for `First` (admin) and `Invite` (the invite's).
    pub user: &'a User,
    pub password_hash: Option<&'a str>,
    pub grant: AccountGrant<'a>,
    /// Stored unless the account already has a default assistant (a local user's, taken over).
    pub default_assistant: &'a Assistant,
    /// The SSO identity the account signs in with, linked at once.
    pub identity: Option<&'a Identity>,
}

/// Why the store refused a [`NewAccount`] (nothing was written).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountRefusal {
    EmailTaken,
    /// The invite is unknown, used (maybe a moment ago) or expired.
    InviteInvalid,
    /// The first account exists (maybe since a moment ago).
    FirstAccountTaken,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates an account in one transaction: checks and uses its grant, inserts the user, its
    /// default assistant and its SSO identity. Returns the stored user (with the role the grant
    /// gave) or why it was refused.
    async fn create_account(&self, account: &NewAccount<'_>) -> StoreResult<Result<User, AccountRefusal>>;
    /// Inserts the user unless a user with that id exists.
    async fn ensure_user(&self, user: &User) -> StoreResult<()>;
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;
    async fn update_user_preferences(&self, id: UserId, locale: Option<Locale>, theme: Theme) -> StoreResult<bool>;
    /// Inserts a new user with an optional password hash; a taken email is a `Conflict`.
    async fn insert_user(&self, user: &User, password_hash: Option<&str>) -> StoreResult<()>;
    /// The user with this email (compared lower-cased).
    async fn find_user_by_email(&self, email: &str) -> StoreResult<Option<User>>;
    async fn password_hash(&self, id: UserId) -> StoreResult<Option<String>>;
    async fn set_password_hash(&self, id: UserId, hash: &str) -> StoreResult<bool>;
    /// Users whose name or email contains `search` (case-insensitive; empty = all), newest
    /// first, paged.
    async fn list_users(&self, search: &str, limit: u32, offset: u32) -> StoreResult<Vec<User>>;
    /// Users that have an email (accounts), for "is this the first account?".
    async fn count_accounts(&self) -> StoreResult<u64>;
    async fn set_user_role(&self, id: UserId, role: Role) -> StoreResult<bool>;
    /// A member's named role (`None`: the member role's models, tools and quota).
    async fn set_user_named_role(&self, id: UserId, named_role: Option<&str>) -> StoreResult<bool>;
    async fn set_user_disabled(&self, id: UserId, disabled: bool) -> StoreResult<bool>;
    async fn set_user_name(&self, id: UserId, name: &str) -> StoreResult<bool>;
    async fn touch_user(&self, id: UserId, at: Timestamp) -> StoreResult<()>;
}

/// Sessions, SSO identities and pending SSO logins.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(&self, session: &Session) -> StoreResult<()>;
    /// The session with this token hash, if it has not expired at `now`.
    async fn get_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>>;
    /// The user of the session with this token hash, if it has not expired at `now`, with when
    /// the session was last seen — one query, for every signed-in request.
    async fn session_user(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<(Timestamp, User)>>;
    async fn touch_session(&self, token_hash: &str, at: Timestamp) -> StoreResult<()>;
    async fn delete_session(&self, token_hash: &str) -> StoreResult<bool>;
    /// Deletes every session of the user; returns how many.
    async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64>;
    /// The user's unexpired sessions, most recently seen first.
    async fn list_sessions(&self, user: UserId, now: Timestamp) -> StoreResult<Vec<Session>>;
    async fn find_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>>;
    async fn insert_identity(&self, identity: &Identity) -> StoreResult<()>;
    /// Remembers a pending SSO login (opaque JSON) under its `state`.
    async fn put_login_state(&self, state: &str, data: &str, created_at: Timestamp) -> StoreResult<()>;
    /// Takes (and deletes) a pending login: a state can be used once.
    async fn take_login_state(&self, state: &str) -> StoreResult<Option<(String, Timestamp)>>;
    /// Deletes sessions expired at `now` and pending logins created before `logins_before`;
    /// returns how many rows went.
    async fn purge_expired(&self, now: Timestamp, logins_before: Timestamp) -> StoreResult<u64>;
}

/// The owner of an API token, found with it.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenOwner {
    pub token_id: String,
    pub last_used_at: Option<Timestamp>,
    pub user: User,
}

/// Invitations and API tokens.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    async fn insert_invite(&self, invite: &Invite) -> StoreResult<()>;
    /// The invite if it is unused and unexpired at `now` (to show the registration form).
    async fn get_valid_invite(&self, code_hash: &str, now: Timestamp) -> StoreResult<Option<Invite>>;
    /// All invites, newest first.
    async fn list_invites(&self) -> StoreResult<Vec<Invite>>;
    async fn delete_invite(&self, code_hash: &str) -> StoreResult<bool>;
    async fn insert_api_token(&self, token: &ApiToken) -> StoreResult<()>;
    /// The unrevoked token with this hash.
    async fn find_api_token(&self, token_hash: &str) -> StoreResult<Option<ApiToken>>;
    /// The owner of the unrevoked token with this hash, with the token's id and when it was
    /// last used — one query, for every API request.
    async fn api_token_user(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>>;
    /// The user's tokens (revoked ones too), newest first.
    async fn list_api_tokens(&self, user: UserId) -> StoreResult<Vec<ApiToken>>;
    async fn revoke_api_token(&self, user: UserId, id: &str, at: Timestamp) -> StoreResult<bool>;
    /// Revokes every unrevoked token of the user; returns how many.
    async fn revoke_user_api_tokens(&self, user: UserId, at: Timestamp) -> StoreResult<u64>;
    async fn touch_api_token(&self, id: &str, at: Timestamp) -> StoreResult<()>;
}

/// Usage records, quotas, the audit log and instance-wide settings.
#[async_trait]
pub trait AdminStore: Send + Sync {
    async fn insert_usage(&self, event: &UsageEvent) -> StoreResult<()>;
    /// Prompt + completion tokens of the user since `since`.
    async fn user_tokens_since(&self, user: UserId, since: Timestamp) -> StoreResult<u64>;
    /// Sums in `[from, to)`, grouped; only `user`'s when given. Ordered by key.
    async fn usage_report(
        &self,
        grouping: UsageGrouping,
        from: Timestamp,
        to: Timestamp,
        user: Option<UserId>,
    ) -> StoreResult<Vec<UsageRow>>;
    async fn get_quota(&self, scope: &QuotaScope) -> StoreResult<Option<Quota>>;
    /// Every quota (per role and per user), for a cached snapshot.
    async fn list_quotas(&self) -> StoreResult<Vec<(QuotaScope, Quota)>>;
    async fn set_quota(&self, scope: &QuotaScope, quota: &Quota) -> StoreResult<()>;
    async fn delete_quota(&self, scope: &QuotaScope) -> StoreResult<bool>;
    async fn insert_audit(&self, event: &AuditEvent) -> StoreResult<()>;
    /// Newest first, paged; only events whose action is `action` when given.
    async fn list_audit(&self, filter: &AuditFilter, limit: u32, offset: u32) -> StoreResult<Vec<AuditEvent>>;
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Every instance setting, for a cached snapshot.
    async fn list_settings(&self) -> StoreResult<Vec<(String, String)>>;
    async fn set_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Sets `key` to `value` when it is unset or its value is at most `at_most` (values of one
    /// length, compared as text); true when it did. Of replicas racing for the same change,
    /// one wins (a schedule's next run).
    async fn advance_setting(&self, key: &str, at_most: &str, value: &str) -> StoreResult<bool>;
}

/// Which audit events to list: each part that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    pub action: Option<String>,
    /// Who acted.
    pub actor: Option<UserId>,
    /// From this time on (inclusive).
    pub since: Option<Timestamp>,
    /// Before this time.
    pub until: Option<Timestamp>,
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
    /// Turns one of its assistant's features off (or back on) for one of the user's topics;
    /// false when the topic is not theirs.
    async fn set_topic_feature(
        &self,
        user: UserId,
        topic: TopicId,
        feature: TopicFeature,
        on: bool,
    ) -> StoreResult<bool>;
    /// The features the topic turned off.
    async fn topic_features_off(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<TopicFeature>>;
    async fn get_topic(&self, user: UserId, id: TopicId) -> StoreResult<Option<Topic>>;
    /// Most recently active first.
    async fn list_topics(&self, user: UserId, assistant: AssistantId) -> StoreResult<Vec<Topic>>;
    async fn rename_topic(&self, user: UserId, id: TopicId, title: &str, updated_at: Timestamp) -> StoreResult<bool>;
    /// Pins or unpins a topic (its place in time stays as it was).
    async fn set_topic_pinned(&self, user: UserId, id: TopicId, pinned: bool) -> StoreResult<bool>;
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

/// One change of a topic's message tree. [`MessageStore::write_tree`] writes several at once,
/// all or none: an exchange is never half stored.
#[derive(Debug, Clone, Copy)]
pub enum TreeWrite<'a> {
    InsertTopic(&'a Topic),
    InsertMessage(&'a NewMessage),
    /// A whole message brought from elsewhere (an import): every field as given, its text
    /// searchable at once. A message whose status is `generating` is stored as `interrupted`.
    ImportMessage(&'a Message),
    SetActiveLeaf {
        topic: TopicId,
        leaf: Option<MessageId>,
        at: Timestamp,
    },
    /// The message and all its descendants.
    DeleteSubtree(MessageId),
    /// Attaches the user's file to a message, at `position` among its files (a file the user
    /// does not own is not attached: the write changes no row).
    AttachFile {
        message: MessageId,
        file: FileId,
        position: u32,
    },
    /// Records a numbered source of an answer.
    InsertSource {
        message: MessageId,
        source: &'a Source,
    },
}

#[async_trait]
pub trait MessageStore: Send + Sync {
    /// Writes the changes in order, in one transaction, each filtered by `user` (inserted rows
    /// carry `user` too). Returns how many rows each changed.
    async fn write_tree(&self, user: UserId, writes: &[TreeWrite<'_>]) -> StoreResult<Vec<u64>>;
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
    /// Marks as `interrupted` the messages still `generating` that nobody is generating any more:
    /// those of `node` (this process, restarted after a crash), those of no node, and those whose
    /// heartbeat (`updated_at`) is older than `stale_before` (a node that died). Returns how many.
    async fn interrupt_generating(
        &self,
        node: Option<&str>,
        stale_before: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64>;
    /// Marks one generating message `stopped`, keeping what was saved (a stop pressed on a node
    /// that does not run the job; that node notices at its next save). False when it was not
    /// generating.
    async fn mark_stopped(&self, user: UserId, id: MessageId, now: Timestamp) -> StoreResult<bool>;
    /// Whether an answer of the topic is generating (on any node).
    async fn topic_generating(&self, user: UserId, topic: TopicId) -> StoreResult<bool>;
    /// Inserts or replaces one tool call of the user's answer (by answer and `seq`); false when
    /// the answer is not the user's.
    async fn save_tool_step(&self, user: UserId, step: &ToolStep) -> StoreResult<bool>;
    /// The tool calls of one answer, in order.
    async fn message_tool_steps(&self, user: UserId, message: MessageId) -> StoreResult<Vec<ToolStep>>;
    /// The tool calls of the topic's answers, in one query: by answer, in order.
    async fn topic_tool_steps(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<ToolStep>>;
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

/// What [`FileStore::insert_file`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileInsert {
    Inserted,
    /// The owner already had a file with this content; nothing was written.
    Existing(StoredFile),
    /// The owner's files and this one would hold more than the quota; nothing was written.
    OverQuota,
}

/// Records of uploaded files (their bytes are in file storage).
#[async_trait]
pub trait FileStore: Send + Sync {
    /// Inserts `file` unless its owner already has a file with the same content, or (with
    /// `quota_bytes`) their files and this one would hold more than that. One owner's inserts
    /// are serialized, so uploads racing for the last of a quota cannot both pass it. On
    /// anything but `Inserted` the caller removes the bytes it just stored.
    /// With `ingest`, the file's reading is queued in the same transaction.
    async fn insert_file(&self, file: &StoredFile, quota_bytes: Option<u64>, ingest: bool) -> StoreResult<FileInsert>;
    async fn get_file(&self, user: UserId, id: FileId) -> StoreResult<Option<StoredFile>>;
    /// Newest first.
    async fn list_files(&self, user: UserId) -> StoreResult<Vec<StoredFile>>;
    /// Deletes the record and returns it (the caller removes its bytes).
    async fn delete_file(&self, user: UserId, id: FileId) -> StoreResult<Option<StoredFile>>;
    /// The bytes of all the user's files, for the storage quota.
    async fn user_file_bytes(&self, user: UserId) -> StoreResult<u64>;
    /// Per owner: how many files and how many bytes, the largest first (the admin's report).
    async fn file_totals_by_user(&self) -> StoreResult<Vec<(User, u64, u64)>>;
    /// The files attached to the topic's messages, in one query: by message, in the order
    /// they were attached.
    async fn topic_message_files(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<(MessageId, StoredFile)>>;
    /// The files attached to one message, in order.
    async fn message_files(&self, user: UserId, message: MessageId) -> StoreResult<Vec<StoredFile>>;
    /// For each of the user's files attached to messages: in how many.
    async fn file_message_counts(&self, user: UserId) -> StoreResult<Vec<(FileId, u64)>>;
}

/// Documents' reading: a queue of jobs any node may claim, and the chunks it writes. Every
/// method taking a user filters by them.
#[async_trait]
pub trait IngestStore: Send + Sync {
    /// Claims the oldest waiting reading for `node`: a queued one, or one whose node stopped
    /// beating before `stale_before`. At most one node gets each claim.
    async fn claim_ingestion(
        &self,
        node: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<Option<StoredFile>>;
    /// Records progress of a claimed reading (and beats its heart); false when the claim is
    /// no longer this node's.
    async fn update_ingestion(
        &self,
        file: FileId,
        node: &str,
        state: IngestState,
        progress: u8,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// Replaces the file's chunks and marks it ready, in one transaction, and moves on the
    /// revision of every knowledge base holding it; false (nothing written) when the claim is
    /// no longer this node's.
    async fn finish_ingestion(
        &self,
        file: FileId,
        node: &str,
        chunks: &[StoredChunk],
        pages: Option<u32>,
        embedding_model: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool>;
    async fn fail_ingestion(&self, file: FileId, node: &str, error: &str, now: Timestamp) -> StoreResult<bool>;
    /// Queues the user's file for reading again (a retry); false when it has no reading or is
    /// being read.
    async fn requeue_ingestion(&self, user: UserId, file: FileId, now: Timestamp) -> StoreResult<bool>;
    /// Queues every ready file whose vectors are not of `embedding_model` (the model changed).
    async fn requeue_other_embeddings(&self, embedding_model: Option<&str>, now: Timestamp) -> StoreResult<u64>;
    async fn ingestions(&self, user: UserId) -> StoreResult<Vec<Ingestion>>;
    /// A file's chunks in order.
    async fn file_chunks(&self, user: UserId, file: FileId) -> StoreResult<Vec<StoredChunk>>;
    /// How many documents are in each state, by the model of their vectors (the instance's).
    async fn ingestion_counts(&self) -> StoreResult<Vec<(IngestState, Option<String>, u64)>>;
}

/// Knowledge bases, their files and chunks, the assistants' knowledge and answers' sources.
/// Every method taking a user filters by them.
#[async_trait]
pub trait KnowledgeStore: Send + Sync {
    async fn insert_knowledge_base(&self, base: &KnowledgeBase) -> StoreResult<()>;
    async fn list_knowledge_bases(&self, user: UserId) -> StoreResult<Vec<KnowledgeBase>>;
    async fn get_knowledge_base(&self, user: UserId, id: KnowledgeBaseId) -> StoreResult<Option<KnowledgeBase>>;
    /// The user's knowledge bases and those shared with everyone or with `role`, by creation.
    async fn readable_knowledge_bases(&self, user: UserId, role: Role) -> StoreResult<Vec<KnowledgeBase>>;
    /// A knowledge base the user owns or that is shared with everyone or with `role`.
    async fn get_readable_knowledge_base(
        &self,
        user: UserId,
        role: Role,
        id: KnowledgeBaseId,
    ) -> StoreResult<Option<KnowledgeBase>>;
    /// Every knowledge base shared beyond its owner, whoever owns it (the administrator's list).
    async fn shared_knowledge_bases(&self) -> StoreResult<Vec<KnowledgeBase>>;
    /// Shares the owner's knowledge base (`everyone`, a role's code) or makes it private.
    async fn set_knowledge_sharing(
        &self,
        user: UserId,
        id: KnowledgeBaseId,
        shared_with: Option<&str>,
    ) -> StoreResult<bool>;
    async fn update_knowledge_base(
        &self,
        user: UserId,
        id: KnowledgeBaseId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<bool>;
    async fn delete_knowledge_base(&self, user: UserId, id: KnowledgeBaseId) -> StoreResult<bool>;
    /// Adds the user's file to their knowledge base (false: either is not theirs); queues the
    /// file's reading when it has none.
    async fn add_knowledge_file(
        &self,
        user: UserId,
        base: KnowledgeBaseId,
        file: FileId,
        now: Timestamp,
    ) -> StoreResult<bool>;
    async fn remove_knowledge_file(
        &self,
        user: UserId,
        base: KnowledgeBaseId,
        file: FileId,
        now: Timestamp,
    ) -> StoreResult<bool>;
    /// The knowledge base's files with their reading, newest first.
    async fn knowledge_files(
        &self,
        user: UserId,
        base: KnowledgeBaseId,
    ) -> StoreResult<Vec<(StoredFile, Option<Ingestion>)>>;
    /// Every chunk of the knowledge base's ready files, with its file's name.
    async fn knowledge_chunks(&self, user: UserId, base: KnowledgeBaseId) -> StoreResult<Vec<(StoredChunk, String)>>;
    /// The knowledge bases of an assistant.
    async fn assistant_knowledge(&self, user: UserId, assistant: AssistantId) -> StoreResult<Vec<KnowledgeBaseId>>;
    /// Sets them (only knowledge bases the user owns or that are shared with `role` are kept).
    async fn set_assistant_knowledge(
        &self,
        user: UserId,
        role: Role,
        assistant: AssistantId,
        bases: &[KnowledgeBaseId],
    ) -> StoreResult<()>;
    /// The sources of the topic's answers, by message, in number order.
    async fn topic_sources(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<(MessageId, Source)>>;
    async fn message_source(&self, user: UserId, message: MessageId, number: u32) -> StoreResult<Option<Source>>;
}

/// MCP servers added in the product. A member's are read and changed only with their id; the
/// shared ones (an administrator's for everyone) through the `shared` methods, which the
/// service calls only for administrators.
/// Topics' summaries of their older messages.
#[async_trait]
pub trait SummaryStore: Send + Sync {
    async fn topic_summary(&self, user: UserId, topic: TopicId) -> StoreResult<Option<TopicSummary>>;
    /// Writes (or replaces) the summary; false when the topic is not the user's.
    async fn keep_topic_summary(&self, user: UserId, summary: &TopicSummary) -> StoreResult<bool>;
}

/// Messages read aloud: the file holding each message's audio, per voice.
#[async_trait]
pub trait SpeechStore: Send + Sync {
    async fn message_speech(&self, user: UserId, message: MessageId, voice: &str) -> StoreResult<Option<FileId>>;
    /// Remembers the audio (replacing an older one of the same voice); false when the message
    /// or the file is not the user's.
    async fn keep_message_speech(
        &self,
        user: UserId,
        message: MessageId,
        voice: &str,
        file: FileId,
        at: Timestamp,
    ) -> StoreResult<bool>;
}

/// Read-only links to topics.
#[async_trait]
pub trait ShareStore: Send + Sync {
    /// False when the topic is not the share's owner's.
    async fn insert_share(&self, share: &Share, token_hash: &str) -> StoreResult<bool>;
    /// A topic's links, newest first.
    async fn list_shares(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<Share>>;
    async fn delete_share(&self, user: UserId, id: ShareId) -> StoreResult<bool>;
    /// The link whose secret hashes to `token_hash` (anyone may hold a link).
    async fn find_share(&self, token_hash: &str) -> StoreResult<Option<Share>>;
}

#[async_trait]
pub trait McpServerStore: Send + Sync {
    /// Stores a server; with `own_at_most`, only while its owner has fewer servers of their own
    /// (counted under a lock of the owner's row: additions at once cannot pass it together).
    /// False when the limit refused it.
    async fn insert_mcp_server(&self, server: &McpServerRecord, own_at_most: Option<u32>) -> StoreResult<bool>;
    /// A member's own server (never a shared one).
    async fn get_mcp_server(&self, user: UserId, id: McpServerId) -> StoreResult<Option<McpServerRecord>>;
    /// A member's own servers, oldest first.
    async fn list_mcp_servers(&self, user: UserId) -> StoreResult<Vec<McpServerRecord>>;
    async fn get_shared_mcp_server(&self, id: McpServerId) -> StoreResult<Option<McpServerRecord>>;
    /// The shared servers, oldest first.
    async fn list_shared_mcp_servers(&self) -> StoreResult<Vec<McpServerRecord>>;
    /// Writes a server's fields (not its owner or `shared`): the user's own when `shared` is
    /// false, a shared one when true.
    async fn update_mcp_server(&self, server: &McpServerRecord) -> StoreResult<bool>;
    /// Deletes a member's own server (`Some(user)`) or a shared one (`None`).
    async fn delete_mcp_server(&self, user: Option<UserId>, id: McpServerId) -> StoreResult<bool>;
}

/// Search across a person's messages. The store keeps the index in step with every write of a
/// message's final text (in the same transaction); these read it, and fill it for messages
/// written before it existed.
#[async_trait]
pub trait SearchStore: Send + Sync {
    /// The user's messages holding every one of `terms` (the search tokenizer's terms of the
    /// query), newest first, at most `limit`.
    async fn search_messages(&self, user: UserId, terms: &[String], limit: u32) -> StoreResult<Vec<SearchHit>>;
    /// The user's topics whose title holds `phrase` (case-insensitive for ASCII), most recent
    /// first, at most `limit`.
    async fn search_topic_titles(&self, user: UserId, phrase: &str, limit: u32) -> StoreResult<Vec<Topic>>;
    /// Indexes up to `limit` finished messages that are not indexed yet; how many it did.
    async fn index_unindexed(&self, limit: u32) -> StoreResult<u64>;
}

/// Everything Loquat persists, behind one object.
#[async_trait]
pub trait Store:
    UserStore
    + AssistantStore
    + TopicStore
    + MessageStore
    + ProviderStore
    + SessionStore
    + CredentialStore
    + AdminStore
    + FileStore
    + IngestStore
    + KnowledgeStore
    + McpServerStore
    + SearchStore
    + ShareStore
    + SpeechStore
    + SummaryStore
{
    /// Checks that the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// `sqlite` or `postgres`, for logs and diagnostics only.
    fn backend_name(&self) -> &'static str;
}
