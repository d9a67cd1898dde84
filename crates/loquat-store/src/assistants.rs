//! `AssistantStore` for `SqlStore`: the `assistants` table. The config is one JSON document;
//! deleting an assistant takes its topics and messages with it (foreign-key cascades).

use async_trait::async_trait;
use loquat_core::domain::{Assistant, AssistantConfig};
use loquat_core::id::{AssistantId, UserId};
use loquat_core::store::{AssistantStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{on_pool, store_error};
use crate::rows::{AssistantRow, config_json, convert_all};

#[async_trait]
impl AssistantStore for SqlStore {
    async fn insert_assistant(&self, assistant: &Assistant) -> StoreResult<()> {
        let config = config_json(&assistant.config)?;
        on_pool!(&self.pools, write, "insert_assistant", |pool| {
            sqlx::query(
                "INSERT INTO assistants (id, user_id, is_default, config, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(assistant.id.to_string())
            .bind(assistant.user_id.to_string())
            .bind(assistant.is_default)
            .bind(&config)
            .bind(assistant.created_at.as_millis())
            .bind(assistant.updated_at.as_millis())
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }

    async fn get_assistant(&self, user: UserId, id: AssistantId) -> StoreResult<Option<Assistant>> {
        let row = on_pool!(&self.pools, read, "get_assistant", |pool| {
            sqlx::query_as::<_, AssistantRow>(
                "SELECT id, user_id, is_default, config, created_at, updated_at FROM assistants \
                 WHERE id = $1 AND user_id = $2",
            )
            .bind(id.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(AssistantRow::into_domain).transpose()
    }

    async fn list_assistants(&self, user: UserId) -> StoreResult<Vec<Assistant>> {
        let rows = on_pool!(&self.pools, read, "list_assistants", |pool| {
            sqlx::query_as::<_, AssistantRow>(
                "SELECT id, user_id, is_default, config, created_at, updated_at FROM assistants \
                 WHERE user_id = $1 ORDER BY is_default DESC, created_at, id",
            )
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, AssistantRow::into_domain)
    }

    async fn update_assistant(
        &self,
        user: UserId,
        id: AssistantId,
        config: &AssistantConfig,
        updated_at: Timestamp,
    ) -> StoreResult<bool> {
        let config = config_json(config)?;
        let changed = on_pool!(&self.pools, write, "update_assistant", |pool| {
            sqlx::query("UPDATE assistants SET config = $1, updated_at = $2 WHERE id = $3 AND user_id = $4")
                .bind(&config)
                .bind(updated_at.as_millis())
                .bind(id.to_string())
                .bind(user.to_string())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(changed > 0)
    }

    async fn delete_assistant(&self, user: UserId, id: AssistantId) -> StoreResult<bool> {
        let deleted = on_pool!(&self.pools, write, "delete_assistant", |pool| {
            sqlx::query("DELETE FROM assistants WHERE id = $1 AND user_id = $2")
                .bind(id.to_string())
                .bind(user.to_string())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(deleted > 0)
    }
}
