//! Assistants: create, change, delete; every user has one default assistant.

use std::sync::Arc;

use crate::domain::{Assistant, AssistantConfig};
use crate::error::{CoreError, CoreResult};
use crate::generation::Generations;
use crate::id::{AssistantId, UserId};
use crate::store::Store;
use crate::time::Timestamp;

/// A user's default assistant as it starts: no title, the default configuration.
pub(crate) fn new_default_assistant(user: UserId, now: Timestamp) -> Assistant {
    let config = AssistantConfig { title: String::new(), ..AssistantConfig::default() };
    Assistant { id: AssistantId::new(), user_id: user, is_default: true, config, created_at: now, updated_at: now }
}

/// Assistants, topics and the branch of the message tree a user looks at (`topics.rs`). Cheap
/// to clone.
#[derive(Clone)]
pub struct Assistants {
    pub(super) store: Arc<dyn Store>,
    pub(super) generations: Generations,
}

impl Assistants {
    pub(crate) fn new(store: Arc<dyn Store>, generations: Generations) -> Self {
        Self { store, generations }
    }

    /// The user's assistants as their list shows them: the default one, the pinned ones, then
    /// the rest, each group in the order the user gave it (else creation order).
    pub async fn list_assistants(&self, user: UserId) -> CoreResult<Vec<Assistant>> {
        let mut assistants = self.store.list_assistants(user).await?;
        assistants.sort_by_key(|a| (!a.is_default, !a.config.pinned, a.config.position));
        Ok(assistants)
    }

    /// Pins an assistant to the top of the list, or unpins it.
    pub async fn set_assistant_pinned(&self, user: UserId, id: AssistantId, pinned: bool) -> CoreResult<()> {
        let assistant = self.assistant(user, id).await?;
        let config = AssistantConfig { pinned, ..assistant.config };
        self.store_config(user, id, &config).await
    }

    /// Moves an assistant one place up or down its group of the list (pinned or not; the
    /// default assistant stays first).
    pub async fn move_assistant(&self, user: UserId, id: AssistantId, up: bool) -> CoreResult<()> {
        let list = self.list_assistants(user).await?;
        let at = list.iter().position(|a| a.id == id).ok_or(CoreError::NotFound("assistant"))?;
        let group = |a: &Assistant| (a.is_default, a.config.pinned);
        let neighbour = if up { at.checked_sub(1) } else { Some(at + 1) };
        let Some(other) = neighbour.filter(|other| list.get(*other).is_some_and(|o| group(o) == group(&list[at])))
        else {
            return Ok(()); // already at the end of its group
        };
        // Places as the list shows them now, with the two swapped.
        let mut order: Vec<&Assistant> = list.iter().collect();
        order.swap(at, other);
        for (place, assistant) in order.into_iter().enumerate() {
            let place = u32::try_from(place).unwrap_or(u32::MAX);
            if assistant.config.position != place {
                let config = AssistantConfig { position: place, ..assistant.config.clone() };
                self.store_config(user, assistant.id, &config).await?;
            }
        }
        Ok(())
    }

    async fn store_config(&self, user: UserId, id: AssistantId, config: &AssistantConfig) -> CoreResult<()> {
        if self.store.update_assistant(user, id, config, Timestamp::now()).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound("assistant"))
        }
    }

    pub async fn assistant(&self, user: UserId, id: AssistantId) -> CoreResult<Assistant> {
        self.store.get_assistant(user, id).await?.ok_or(CoreError::NotFound("assistant"))
    }

    /// The user's default assistant, created on first use.
    pub async fn default_assistant(&self, user: UserId) -> CoreResult<Assistant> {
        let assistants = self.store.list_assistants(user).await?;
        if let Some(default) = assistants.into_iter().find(|a| a.is_default) {
            return Ok(default);
        }
        let assistant = new_default_assistant(user, Timestamp::now());
        self.store.insert_assistant(&assistant).await?;
        Ok(assistant)
    }

    pub async fn create_assistant(&self, user: UserId, config: AssistantConfig) -> CoreResult<Assistant> {
        config.validate()?;
        self.insert_assistant(user, config, false).await
    }

    async fn insert_assistant(&self, user: UserId, config: AssistantConfig, is_default: bool) -> CoreResult<Assistant> {
        let now = Timestamp::now();
        let assistant =
            Assistant { id: AssistantId::new(), user_id: user, is_default, config, created_at: now, updated_at: now };
        self.store.insert_assistant(&assistant).await?;
        Ok(assistant)
    }

    pub async fn update_assistant(
        &self,
        user: UserId,
        id: AssistantId,
        config: AssistantConfig,
    ) -> CoreResult<Assistant> {
        config.validate()?;
        // Its place in the list is not the form's to change.
        let current = self.assistant(user, id).await?;
        let config = AssistantConfig { pinned: current.config.pinned, position: current.config.position, ..config };
        self.store_config(user, id, &config).await?;
        self.assistant(user, id).await
    }

    /// Deletes an assistant with its topics. The default assistant cannot be deleted.
    pub async fn delete_assistant(&self, user: UserId, id: AssistantId) -> CoreResult<()> {
        let assistant = self.assistant(user, id).await?;
        if assistant.is_default {
            return Err(CoreError::invalid("default_assistant"));
        }
        for topic in self.store.list_topics(user, id).await? {
            self.stop_topic_generations(user, topic.id).await?;
        }
        self.store.delete_assistant(user, id).await?;
        Ok(())
    }
}
