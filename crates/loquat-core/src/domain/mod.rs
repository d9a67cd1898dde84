//! Domain types: what Loquat stores and reasons about. Plain data with validation at
//! construction; no persistence or wire concerns.

pub mod assistant;
pub mod message;
pub mod provider;
pub mod topic;
pub mod user;

pub use assistant::{Assistant, AssistantConfig, AssistantDraft, ModelParams};
pub use message::{Message, MessageRole, MessageStatus, NewMessage, TokenUsage};
pub use provider::{ModelCard, Protocol, ProviderDraft, ProviderOverride, ProviderSetting};
pub use topic::Topic;
pub use user::{Locale, Theme, User};
