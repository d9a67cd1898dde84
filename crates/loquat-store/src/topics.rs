//! `TopicStore` for `SqlStore`: the `topics` table. Deleting a topic takes its messages with it
//! (foreign-key cascade); the active leaf is a plain column, not a foreign key.

use async_trait::async_trait;
use loquat_core::domain::{Topic, TopicFeature};
use loquat_core::id::{AssistantId, MessageId, TopicId, UserId};
use loquat_core::store::{StoreResult, TopicStore, TreeWrite};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{TopicRow, convert_all};

#[async_trait]
impl TopicStore for SqlStore {
    async fn insert_topic(&self, topic: &Topic) -> StoreResult<()> {
        self.write_one(topic.user_id, TreeWrite::InsertTopic(topic), "insert_topic").await.map(|_| ())
    }

    async fn set_topic_feature(
        &self,
        user: UserId,
        topic: TopicId,
        feature: TopicFeature,
        on: bool,
    ) -> StoreResult<bool> {
        let (user, topic) = (user.to_string(), topic.to_string());
        let owned: Option<String> = on_pool!(&self.pools, read, "set_topic_feature", |pool| {
            sqlx::query_scalar("SELECT id FROM topics WHERE id = $1 AND user_id = $2")
                .bind(&topic)
                .bind(&user)
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        if owned.is_none() {
            return Ok(false);
        }
        if on {
            execute!(
                &self.pools,
                "set_topic_feature",
                "DELETE FROM topic_features_off WHERE topic_id = $1 AND user_id = $2 AND feature = $3",
                &topic,
                &user,
                feature.as_str(),
            )?;
        } else {
            // The insert checks the owner again: a topic deleted meanwhile gets no row.
            execute!(
                &self.pools,
                "set_topic_feature",
                "INSERT INTO topic_features_off (topic_id, user_id, feature) SELECT id, user_id, $3 FROM topics \
                 WHERE id = $1 AND user_id = $2 ON CONFLICT DO NOTHING",
                &topic,
                &user,
                feature.as_str(),
            )?;
        }
        Ok(true)
    }

    async fn topic_features_off(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<TopicFeature>> {
        let off: Vec<String> = on_pool!(&self.pools, read, "topic_features_off", |pool| {
            sqlx::query_scalar("SELECT feature FROM topic_features_off WHERE topic_id = $1 AND user_id = $2")
                .bind(topic.to_string())
                .bind(user.to_string())
                .fetch_all(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(off.iter().filter_map(|feature| TopicFeature::parse(feature)).collect())
    }

    async fn get_topic(&self, user: UserId, id: TopicId) -> StoreResult<Option<Topic>> {
        let row = on_pool!(&self.pools, read, "get_topic", |pool| {
            sqlx::query_as::<_, TopicRow>(
                "SELECT id, user_id, assistant_id, title, active_leaf_id, pinned, created_at, updated_at FROM topics \
                 WHERE id = $1 AND user_id = $2",
            )
            .bind(id.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(TopicRow::into_domain).transpose()
    }

    async fn list_topics(&self, user: UserId, assistant: AssistantId) -> StoreResult<Vec<Topic>> {
        let rows = on_pool!(&self.pools, read, "list_topics", |pool| {
            sqlx::query_as::<_, TopicRow>(
                "SELECT id, user_id, assistant_id, title, active_leaf_id, pinned, created_at, updated_at FROM topics \
                 WHERE user_id = $1 AND assistant_id = $2 ORDER BY updated_at DESC, id DESC",
            )
            .bind(user.to_string())
            .bind(assistant.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, TopicRow::into_domain)
    }

    async fn set_topic_pinned(&self, user: UserId, id: TopicId, pinned: bool) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "set_topic_pinned",
            "UPDATE topics SET pinned = $1 WHERE id = $2 AND user_id = $3",
            pinned,
            id.to_string(),
            user.to_string(),
        )?;
        Ok(changed > 0)
    }

    async fn rename_topic(&self, user: UserId, id: TopicId, title: &str, updated_at: Timestamp) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "rename_topic",
            "UPDATE topics SET title = $1, updated_at = $2 WHERE id = $3 AND user_id = $4",
            title,
            updated_at.as_millis(),
            id.to_string(),
            user.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn set_title_if_empty(&self, user: UserId, id: TopicId, title: &str) -> StoreResult<bool> {
        // Titling is not activity: `updated_at` (the list order) stays as it is.
        let changed = execute!(
            &self.pools,
            "set_title_if_empty",
            "UPDATE topics SET title = $1 WHERE id = $2 AND user_id = $3 AND title = ''",
            title,
            id.to_string(),
            user.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn set_active_leaf(
        &self,
        user: UserId,
        id: TopicId,
        leaf: Option<MessageId>,
        updated_at: Timestamp,
    ) -> StoreResult<bool> {
        let write = TreeWrite::SetActiveLeaf { topic: id, leaf, at: updated_at };
        Ok(self.write_one(user, write, "set_active_leaf").await? > 0)
    }

    async fn delete_topic(&self, user: UserId, id: TopicId) -> StoreResult<bool> {
        let deleted = execute!(
            &self.pools,
            "delete_topic",
            "DELETE FROM topics WHERE id = $1 AND user_id = $2",
            id.to_string(),
            user.to_string()
        )?;
        Ok(deleted > 0)
    }
}
