//! `SpeechStore` and `SummaryStore` for `SqlStore`: the `message_speech` table, each row tying a
//! message and a voice to the file holding its audio (written only when both belong to the user),
//! and `topic_summaries`, one summary of a topic's older messages (written only for its owner).

use async_trait::async_trait;
use loquat_core::id::{FileId, MessageId, UserId};
use loquat_core::store::{SpeechStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::id;

#[async_trait]
impl SpeechStore for SqlStore {
    async fn message_speech(&self, user: UserId, message: MessageId, voice: &str) -> StoreResult<Option<FileId>> {
        let found: Option<String> = on_pool!(&self.pools, read, "message_speech", |pool| {
            sqlx::query_scalar(
                "SELECT file_id FROM message_speech WHERE message_id = $1 AND voice = $2 AND user_id = $3",
            )
            .bind(message.to_string())
            .bind(voice)
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        found.map(|file| id("message_speech", "file_id", file)).transpose()
    }

    async fn keep_message_speech(
        &self,
        user: UserId,
        message: MessageId,
        voice: &str,
        file: FileId,
        at: Timestamp,
    ) -> StoreResult<bool> {
        let kept = execute!(
            &self.pools,
            "keep_message_speech",
            "INSERT INTO message_speech (message_id, voice, user_id, file_id, created_at) \
             SELECT m.id, $2, m.user_id, f.id, $5 FROM messages AS m JOIN files AS f ON f.user_id = m.user_id \
             WHERE m.id = $1 AND m.user_id = $3 AND f.id = $4 \
             ON CONFLICT (message_id, voice) DO UPDATE SET file_id = excluded.file_id, created_at = excluded.created_at",
            message.to_string(),
            voice,
            user.to_string(),
            file.to_string(),
            at.as_millis(),
        )?;
        Ok(kept > 0)
    }
}

#[derive(sqlx::FromRow)]
struct SummaryRow {
    topic_id: String,
    content: String,
    upto_message_id: String,
    model: String,
    updated_at: i64,
}

#[async_trait]
impl loquat_core::store::SummaryStore for SqlStore {
    async fn topic_summary(
        &self,
        user: UserId,
        topic: loquat_core::id::TopicId,
    ) -> StoreResult<Option<loquat_core::domain::TopicSummary>> {
        let row = on_pool!(&self.pools, read, "topic_summary", |pool| {
            sqlx::query_as::<_, SummaryRow>(
                "SELECT topic_id, content, upto_message_id, model, updated_at FROM topic_summaries \
                 WHERE topic_id = $1 AND user_id = $2",
            )
            .bind(topic.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(|row| {
            Ok(loquat_core::domain::TopicSummary {
                topic_id: id("topic_summaries", "topic_id", row.topic_id)?,
                content: row.content,
                upto: id("topic_summaries", "upto_message_id", row.upto_message_id)?,
                model: row.model,
                updated_at: Timestamp(row.updated_at),
            })
        })
        .transpose()
    }

    async fn keep_topic_summary(&self, user: UserId, summary: &loquat_core::domain::TopicSummary) -> StoreResult<bool> {
        let kept = execute!(
            &self.pools,
            "keep_topic_summary",
            "INSERT INTO topic_summaries (topic_id, user_id, content, upto_message_id, model, updated_at) \
             SELECT id, user_id, $3, $4, $5, $6 FROM topics WHERE id = $1 AND user_id = $2 \
             ON CONFLICT (topic_id) DO UPDATE SET content = excluded.content, \
             upto_message_id = excluded.upto_message_id, model = excluded.model, updated_at = excluded.updated_at",
            summary.topic_id.to_string(),
            user.to_string(),
            &summary.content,
            summary.upto.to_string(),
            &summary.model,
            summary.updated_at.as_millis(),
        )?;
        Ok(kept > 0)
    }
}
