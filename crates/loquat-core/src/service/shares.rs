//! Sharing a topic: a read-only link (`/share/<token>`, 256 random bits) to the branch as it was
//! when shared. Its owner lists and revokes links; a link may expire; the administrator can turn
//! sharing off (links stop opening). Opening a link reveals the branch, the assistant's name and
//! — only if the owner chose — the owner's name; a missing, revoked, expired or switched-off link
//! is the same "not found", found by the secret's hash, never by comparing the secret itself.

use std::sync::Arc;

use super::Instance;
use crate::crypto::{new_token, token_hash};
use crate::domain::{Message, Share};
use crate::error::{CoreError, CoreResult};
use crate::id::{ShareId, TopicId, UserId};
use crate::store::Store;
use crate::time::Timestamp;
use crate::tree::MessageTree;

/// The most links one topic may have at once.
pub const MAX_SHARES_PER_TOPIC: usize = 20;
/// The longest a link may be set to last.
pub const MAX_SHARE_DAYS: u32 = 365;
const DAY_MS: i64 = 86_400_000;

#[derive(Clone)]
pub struct Shares {
    store: Arc<dyn Store>,
    instance: Instance,
}

/// What a shared link shows.
#[derive(Debug, Clone)]
pub struct SharedConversation {
    pub title: String,
    pub assistant_title: String,
    pub assistant_avatar: String,
    /// The owner's name, when they chose to show it.
    pub author: Option<String>,
    pub messages: Vec<Message>,
    pub shared_at: Timestamp,
}

impl Shares {
    pub fn new(store: Arc<dyn Store>, instance: Instance) -> Self {
        Self { store, instance }
    }

    /// Whether people may share (the pages hide the button when not).
    pub async fn enabled(&self) -> CoreResult<bool> {
        self.instance.sharing_enabled().await
    }

    /// A new link to the topic's shown branch.
    pub async fn create(&self, user: UserId, topic: TopicId, days: Option<u32>, show_name: bool) -> CoreResult<Share> {
        if !self.enabled().await? {
            return Err(CoreError::invalid("sharing_off"));
        }
        let found = self.store.get_topic(user, topic).await?.ok_or(CoreError::NotFound("topic"))?;
        let leaf = found.active_leaf_id.ok_or(CoreError::invalid("share_empty"))?;
        if self.store.list_shares(user, topic).await?.len() >= MAX_SHARES_PER_TOPIC {
            return Err(CoreError::invalid("share_limit"));
        }
        let days = days.filter(|days| *days > 0).map(|days| days.min(MAX_SHARE_DAYS));
        let now = Timestamp::now();
        let token = new_token("");
        let share = Share {
            id: ShareId::new(),
            user_id: user,
            topic_id: topic,
            token: token.expose().to_owned(),
            leaf_id: Some(leaf),
            show_name,
            created_at: now,
            expires_at: days.map(|days| Timestamp(now.as_millis() + i64::from(days) * DAY_MS)),
        };
        if !self.store.insert_share(&share, &token_hash(token.expose())).await? {
            return Err(CoreError::NotFound("topic"));
        }
        Ok(share)
    }

    /// The topic's links, newest first.
    pub async fn list(&self, user: UserId, topic: TopicId) -> CoreResult<Vec<Share>> {
        self.store.get_topic(user, topic).await?.ok_or(CoreError::NotFound("topic"))?;
        Ok(self.store.list_shares(user, topic).await?)
    }

    /// Ends a link at once.
    pub async fn revoke(&self, user: UserId, id: ShareId) -> CoreResult<()> {
        if self.store.delete_share(user, id).await? { Ok(()) } else { Err(CoreError::NotFound("share")) }
    }

    /// What the link `token` shows, to anyone who has it.
    pub async fn open(&self, token: &str) -> CoreResult<SharedConversation> {
        let missing = || CoreError::NotFound("share");
        // Hashed before anything else: every token costs the same lookup.
        let hash = token_hash(token);
        let share = self.store.find_share(&hash).await?;
        let share = share.filter(|_| token.len() <= 100).ok_or_else(missing)?;
        if !self.enabled().await? || !share.opens_at(Timestamp::now()) {
            return Err(missing());
        }
        let owner = share.user_id;
        let topic = self.store.get_topic(owner, share.topic_id).await?.ok_or_else(missing)?;
        let messages = self.store.list_messages(owner, topic.id).await?;
        let tree = MessageTree::new(&messages);
        // The shared branch, up to the shared leaf (what came later is not shared).
        let leaf = share.leaf_id.filter(|leaf| tree.get(*leaf).is_some()).ok_or_else(missing)?;
        let messages = tree.branch(Some(leaf)).into_iter().map(|entry| entry.message).collect();
        let assistant = self.store.get_assistant(owner, topic.assistant_id).await?;
        let author = match share.show_name {
            true => self.store.get_user(owner).await?.map(|user| user.name),
            false => None,
        };
        let (assistant_title, assistant_avatar) =
            assistant.map(|a| (a.config.title, a.config.avatar)).unwrap_or_default();
        Ok(SharedConversation {
            title: topic.title,
            assistant_title,
            assistant_avatar,
            author,
            messages,
            shared_at: share.created_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_stops_opening_when_it_expires() {
        let share = Share {
            id: ShareId::new(),
            user_id: UserId::new(),
            topic_id: TopicId::new(),
            token: "t".into(),
            leaf_id: None,
            show_name: false,
            created_at: Timestamp(1_000),
            expires_at: Some(Timestamp(2_000)),
        };
        assert!(share.opens_at(Timestamp(1_999)));
        assert!(!share.opens_at(Timestamp(2_000)));
        assert!(Share { expires_at: None, ..share }.opens_at(Timestamp(i64::MAX)));
    }
}
