//! Topics: conversations inside an assistant.

use crate::id::{AssistantId, MessageId, TopicId, UserId};
use crate::time::Timestamp;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub id: TopicId,
    pub user_id: UserId,
    pub assistant_id: AssistantId,
    /// Empty until the first exchange has been titled.
    pub title: String,
    /// The leaf of the branch the user looks at; `None` for an empty topic.
    pub active_leaf_id: Option<MessageId>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}
