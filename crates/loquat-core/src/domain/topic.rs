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
    /// Kept at the top of the topic list by its owner.
    pub pinned: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A feature of its assistant a topic can turn off (each is on by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicFeature {
    /// Searching the assistant's knowledge bases for each question.
    Knowledge,
    /// The assistant's tools.
    Tools,
}

impl TopicFeature {
    pub fn as_str(self) -> &'static str {
        match self {
            TopicFeature::Knowledge => "knowledge",
            TopicFeature::Tools => "tools",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "knowledge" => Some(TopicFeature::Knowledge),
            "tools" => Some(TopicFeature::Tools),
            _ => None,
        }
    }
}

/// A topic's older messages summarised by a model, sent instead of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicSummary {
    pub topic_id: TopicId,
    pub content: String,
    /// The last message the summary covers.
    pub upto: MessageId,
    /// The model that wrote it (`provider::model`).
    pub model: String,
    pub updated_at: Timestamp,
}

/// A read-only link to a topic's branch as it was when shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    pub id: crate::id::ShareId,
    pub user_id: UserId,
    pub topic_id: TopicId,
    /// The link's secret (the last part of `/share/<token>`); looked up by its hash.
    pub token: String,
    /// The leaf of the branch shared; `None` for an empty topic.
    pub leaf_id: Option<MessageId>,
    /// Whether the page names the person who shared it.
    pub show_name: bool,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

impl Share {
    /// Whether the link still opens at `now` (it has no end, or its end is later).
    pub fn opens_at(&self, now: Timestamp) -> bool {
        self.expires_at.is_none_or(|end| end > now)
    }
}
