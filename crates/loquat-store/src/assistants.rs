//! `AssistantStore` for `SqlStore`: the `assistants` table. The config is one JSON document;
//! deleting an assistant takes its topics and messages with it (foreign-key cascades).

use async_trait::async_trait;
use loquat_core::domain::{Assistant, AssistantConfig};
use loquat_core::id::{AssistantId, UserId};
use loquat_core::store::{AssistantStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{AssistantRow, config_json, convert_all};

#[async_trait]
impl AssistantStore for SqlStore {
    async fn insert_assistant(&self, assistant: &Assistant) -> StoreResult<()> {
        let config = config_json(&assistant.config)?;
        execute!(
            &self.pools,
            "insert_assistant",
            "INSERT INTO assistants (id, user_id, is_default, config, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            assistant.id.to_string(),
            assistant.user_id.to_string(),
            assistant.is_default,
            &config,
            assistant.created_at.as_millis(),
            assistant.updated_at.as_millis()
        )
        .map(|_| ())
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
        let changed = execute!(
            &self.pools,
            "update_assistant",
            "UPDATE assistants SET config = $1, updated_at = $2 WHERE id = $3 AND user_id = $4",
            &config,
            updated_at.as_millis(),
            id.to_string(),
            user.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn delete_assistant(&self, user: UserId, id: AssistantId) -> StoreResult<bool> {
        let deleted = execute!(
            &self.pools,
            "delete_assistant",
            "DELETE FROM assistants WHERE id = $1 AND user_id = $2",
            id.to_string(),
            user.to_string()
        )?;
        Ok(deleted > 0)
    }
}
