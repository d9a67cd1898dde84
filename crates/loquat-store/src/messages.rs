//! `MessageStore` for `SqlStore`: the `messages` table, a tree per topic. Only a `generating`
//! message changes; a subtree is deleted with one recursive statement.

use async_trait::async_trait;
use loquat_core::domain::{Message, NewMessage, ToolStep};
use loquat_core::id::{MessageId, TopicId, UserId};
use loquat_core::store::{FinishedAnswer, MessageStore, StoreResult, TreeWrite};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{MessageRow, convert_all, usage_columns};

/// The columns a `MessageRow` reads, as a literal the queries `concat!` (never built at run
/// time).
macro_rules! message_columns {
    () => {
        "SELECT id, user_id, topic_id, parent_id, role, content, reasoning, status, error_kind, error_message, \
         provider, model, prompt_tokens, completion_tokens, reasoning_tokens, ttft_ms, duration_ms, created_at, \
         updated_at"
    };
}

#[async_trait]
impl MessageStore for SqlStore {
    async fn insert_message(&self, message: &NewMessage) -> StoreResult<()> {
        self.write_one(message.user_id, TreeWrite::InsertMessage(message), "insert_message").await.map(|_| ())
    }

    async fn write_tree(&self, user: UserId, writes: &[TreeWrite<'_>]) -> StoreResult<Vec<u64>> {
        self.write_tree_in_transaction(user, writes).await
    }

    async fn get_message(&self, user: UserId, id: MessageId) -> StoreResult<Option<Message>> {
        let row = on_pool!(&self.pools, read, "get_message", |pool| {
            sqlx::query_as::<_, MessageRow>(concat!(
                message_columns!(),
                " FROM messages WHERE id = $1 AND user_id = $2"
            ))
            .bind(id.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(MessageRow::into_domain).transpose()
    }

    async fn list_messages(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<Message>> {
        // Served by the (topic_id, created_at, id) index, already in order.
        let rows = on_pool!(&self.pools, read, "list_messages", |pool| {
            sqlx::query_as::<_, MessageRow>(concat!(
                message_columns!(),
                " FROM messages WHERE topic_id = $1 AND user_id = $2 ORDER BY created_at, id"
            ))
            .bind(topic.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, MessageRow::into_domain)
    }

    async fn save_progress(
        &self,
        user: UserId,
        id: MessageId,
        content: &str,
        reasoning: &str,
        updated_at: Timestamp,
    ) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "save_progress",
            "UPDATE messages SET content = $1, reasoning = $2, updated_at = $3 \
                 WHERE id = $4 AND user_id = $5 AND status = 'generating'",
            content,
            reasoning,
            updated_at.as_millis(),
            id.to_string(),
            user.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn finish_message(&self, user: UserId, id: MessageId, answer: &FinishedAnswer) -> StoreResult<bool> {
        let [prompt_tokens, completion_tokens, reasoning_tokens] = usage_columns(answer.usage);
        // A missing provider or model keeps the one recorded when the answer was created. The
        // final text and its search terms are written together.
        on_pool!(&self.pools, write, "finish_message", |pool| async {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE messages SET status = $1, content = $2, reasoning = $3, error_kind = $4, error_message = $5, \
                 provider = COALESCE($6, provider), model = COALESCE($7, model), prompt_tokens = $8, \
                 completion_tokens = $9, reasoning_tokens = $10, ttft_ms = $11, duration_ms = $12, updated_at = $13 \
                 WHERE id = $14 AND user_id = $15 AND status = 'generating'",
            )
            .bind(answer.status.as_str())
            .bind(&answer.content)
            .bind(&answer.reasoning)
            .bind(answer.error_kind.as_deref())
            .bind(answer.error_message.as_deref())
            .bind(answer.provider.as_deref())
            .bind(answer.model.as_deref())
            .bind(prompt_tokens)
            .bind(completion_tokens)
            .bind(reasoning_tokens)
            .bind(answer.ttft_ms)
            .bind(answer.duration_ms)
            .bind(answer.updated_at.as_millis())
            .bind(id.to_string())
            .bind(user.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed > 0 {
                crate::search::index_message!(&mut *tx, user, id, &answer.content)?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(changed > 0)
        }
        .await)
        .map_err(store_error)
    }

    async fn delete_message_subtree(&self, user: UserId, id: MessageId) -> StoreResult<u64> {
        self.write_one(user, TreeWrite::DeleteSubtree(id), "delete_message_subtree").await
    }

    async fn interrupt_generating(
        &self,
        node: Option<&str>,
        stale_before: Timestamp,
        now: Timestamp,
    ) -> StoreResult<u64> {
        execute!(
            &self.pools,
            "interrupt_generating",
            "UPDATE messages SET status = 'interrupted', updated_at = $1 WHERE status = 'generating' \
                 AND (generating_by IS NULL OR generating_by = $2 OR updated_at < $3)",
            now.as_millis(),
            node.unwrap_or(""),
            stale_before.as_millis()
        )
    }

    async fn mark_stopped(&self, user: UserId, id: MessageId, now: Timestamp) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "mark_stopped",
            "UPDATE messages SET status = 'stopped', updated_at = $1 \
                 WHERE id = $2 AND user_id = $3 AND status = 'generating'",
            now.as_millis(),
            id.to_string(),
            user.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn topic_generating(&self, user: UserId, topic: TopicId) -> StoreResult<bool> {
        let found: Option<i32> = on_pool!(&self.pools, read, "topic_generating", |pool| {
            sqlx::query_scalar(
                "SELECT 1 FROM messages WHERE status = 'generating' AND topic_id = $1 AND user_id = $2 LIMIT 1",
            )
            .bind(topic.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(found.is_some())
    }

    async fn save_tool_step(&self, user: UserId, step: &ToolStep) -> StoreResult<bool> {
        crate::tool_steps::save(self, user, step).await
    }

    async fn message_tool_steps(&self, user: UserId, message: MessageId) -> StoreResult<Vec<ToolStep>> {
        crate::tool_steps::of_message(self, user, message).await
    }

    async fn topic_tool_steps(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<ToolStep>> {
        crate::tool_steps::of_topic(self, user, topic).await
    }
}
