//! Topics and the branch of the message tree a user looks at.

use std::collections::HashMap;

use super::Assistants;
use crate::domain::{Message, Source, StoredFile, Topic};
use crate::error::{CoreError, CoreResult};
use crate::id::{AssistantId, MessageId, TopicId, UserId};
use crate::time::Timestamp;
use crate::tree::{BranchEntry, MessageTree};

/// A topic with the branch to show.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub topic: Topic,
    pub branch: Vec<BranchEntry>,
    /// The files attached to the topic's messages, by message, in order.
    pub files: HashMap<MessageId, Vec<StoredFile>>,
    /// The numbered sources of the topic's answers, by message.
    pub sources: HashMap<MessageId, Vec<Source>>,
    /// The tool calls of the topic's answers, by message, in order.
    pub steps: HashMap<MessageId, Vec<crate::domain::ToolStep>>,
    /// What of its assistant the topic turned off (knowledge, tools).
    pub features_off: Vec<crate::domain::TopicFeature>,
    /// The summary of its older messages, when its assistant compresses history.
    pub summary: Option<crate::domain::TopicSummary>,
}

impl Assistants {
    pub async fn list_topics(&self, user: UserId, assistant: AssistantId) -> CoreResult<Vec<Topic>> {
        Ok(self.store.list_topics(user, assistant).await?)
    }

    pub async fn topic(&self, user: UserId, id: TopicId) -> CoreResult<Topic> {
        self.store.get_topic(user, id).await?.ok_or(CoreError::NotFound("topic"))
    }

    /// Every message of the topic (all branches), in creation order.
    pub async fn topic_messages(&self, user: UserId, id: TopicId) -> CoreResult<Vec<Message>> {
        self.topic(user, id).await?;
        Ok(self.store.list_messages(user, id).await?)
    }

    /// The topic with its active branch, the messages' files, sources and tool calls, each
    /// loaded in one query.
    pub async fn conversation(&self, user: UserId, id: TopicId) -> CoreResult<Conversation> {
        let topic = self.topic(user, id).await?;
        let (messages, files, sources, steps, features_off, summary) = tokio::join!(
            self.store.list_messages(user, id),
            self.store.topic_message_files(user, id),
            self.store.topic_sources(user, id),
            self.store.topic_tool_steps(user, id),
            self.store.topic_features_off(user, id),
            self.store.topic_summary(user, id)
        );
        let branch = MessageTree::new(&messages?).branch(topic.active_leaf_id);
        let (files, sources) = (super::materials::by_message(files?), super::materials::by_message(sources?));
        let steps = super::materials::by_message(steps?.into_iter().map(|step| (step.message_id, step)).collect());
        Ok(Conversation { topic, branch, files, sources, steps, features_off: features_off?, summary: summary? })
    }

    pub async fn rename_topic(&self, user: UserId, id: TopicId, title: &str) -> CoreResult<()> {
        let title = title.trim();
        if title.is_empty() || title.chars().count() > 200 {
            return Err(CoreError::invalid("topic_title"));
        }
        if self.store.rename_topic(user, id, title, Timestamp::now()).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound("topic"))
        }
    }

    /// Pins a topic to the top of its list, or unpins it.
    pub async fn set_topic_pinned(&self, user: UserId, id: TopicId, pinned: bool) -> CoreResult<()> {
        if self.store.set_topic_pinned(user, id, pinned).await? { Ok(()) } else { Err(CoreError::NotFound("topic")) }
    }

    pub async fn delete_topic(&self, user: UserId, id: TopicId) -> CoreResult<()> {
        self.stop_topic_generations(user, id).await?;
        if self.store.delete_topic(user, id).await? { Ok(()) } else { Err(CoreError::NotFound("topic")) }
    }

    /// Shows the branch through `message` (a sibling the user switched to), down to its newest
    /// leaf. Returns the topic.
    pub async fn switch_branch(&self, user: UserId, message: MessageId) -> CoreResult<Topic> {
        let target = self.message(user, message).await?;
        let messages = self.store.list_messages(user, target.topic_id).await?;
        let leaf = MessageTree::new(&messages).latest_leaf_under(message);
        self.store.set_active_leaf(user, target.topic_id, Some(leaf), Timestamp::now()).await?;
        self.topic(user, target.topic_id).await
    }

    pub async fn message(&self, user: UserId, id: MessageId) -> CoreResult<Message> {
        self.store.get_message(user, id).await?.ok_or(CoreError::NotFound("message"))
    }

    /// Turns one of its assistant's features off (or back on) for one topic.
    pub async fn set_topic_feature(
        &self,
        user: UserId,
        topic: TopicId,
        feature: crate::domain::TopicFeature,
        on: bool,
    ) -> CoreResult<()> {
        if self.store.set_topic_feature(user, topic, feature, on).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound("topic"))
        }
    }

    /// The tool calls of one of the user's answers, in order.
    pub async fn message_steps(&self, user: UserId, id: MessageId) -> CoreResult<Vec<crate::domain::ToolStep>> {
        Ok(self.store.message_tool_steps(user, id).await?)
    }

    /// Stops running answers of a topic before it (or its assistant) is deleted, and waits
    /// until they have ended so their final write does not race the delete.
    pub(crate) async fn stop_topic_generations(&self, user: UserId, topic: TopicId) -> CoreResult<()> {
        for message in self.store.list_messages(user, topic).await? {
            if let Some(mut subscription) = self.generations.subscribe(user, message.id) {
                self.generations.stop(user, message.id);
                while subscription.snapshot.finished.is_none() {
                    match subscription.events.recv().await {
                        Ok(crate::generation::GenerationEvent::Finished(_)) | Err(_) => break,
                        Ok(_) => {}
                    }
                }
            }
        }
        Ok(())
    }
}
