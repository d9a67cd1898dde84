//! Domain types: what Loquat stores and reasons about. Plain data with validation at
//! construction; no persistence or wire concerns.

pub mod account;
pub mod assistant;
pub mod file;
pub mod knowledge;
pub mod message;
pub mod provider;
pub mod tool;
pub mod topic;
pub mod user;

pub use account::{
    ApiToken, AuditEvent, Identity, Invite, Quota, QuotaScope, Session, UsageEvent, UsageGrouping, UsageRow,
};
pub use assistant::{Assistant, AssistantConfig, AssistantDraft, ModelParams};
pub use file::StoredFile;
pub use knowledge::{IngestState, Ingestion, KnowledgeBase, Source, StoredChunk};
pub use message::{Message, MessageRole, MessageStatus, NewMessage, SearchHit, TokenUsage};
pub use provider::{ModelCard, Protocol, ProviderDraft, ProviderOverride, ProviderSetting};
pub use tool::{McpLaunch, McpServerRecord, McpTransport, StepStatus, ToolStep};
pub use topic::{Share, Topic, TopicFeature, TopicSummary};
pub use user::{Locale, MAX_NAMED_ROLE_CHARS, Policy, Role, Theme, User, valid_named_role};
