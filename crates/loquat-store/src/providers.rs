//! `ProviderStore` for `SqlStore`: the `provider_settings` table (providers a user added, with
//! their key encrypted by the service; the store never sees it in clear).

use async_trait::async_trait;
use loquat_core::domain::ProviderSetting;
use loquat_core::id::{ProviderSettingId, UserId};
use loquat_core::store::{ProviderStore, StoreResult};

use crate::SqlStore;
use crate::pool::{on_pool, store_error};
use crate::rows::{ProviderRow, convert_all};

#[async_trait]
impl ProviderStore for SqlStore {
    async fn insert_provider(&self, provider: &ProviderSetting) -> StoreResult<()> {
        on_pool!(&self.pools, write, |pool| {
            sqlx::query(
                "INSERT INTO provider_settings (id, user_id, name, protocol, base_url, api_key_encrypted, model_list, \
                 enabled, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(provider.id.to_string())
            .bind(provider.user_id.to_string())
            .bind(&provider.name)
            .bind(provider.protocol.as_str())
            .bind(&provider.base_url)
            .bind(provider.api_key_encrypted.as_deref())
            .bind(&provider.model_list)
            .bind(provider.enabled)
            .bind(provider.created_at.as_millis())
            .bind(provider.updated_at.as_millis())
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }

    async fn get_provider(&self, user: UserId, id: ProviderSettingId) -> StoreResult<Option<ProviderSetting>> {
        let row = on_pool!(&self.pools, read, |pool| {
            sqlx::query_as::<_, ProviderRow>(
                "SELECT id, user_id, name, protocol, base_url, api_key_encrypted, model_list, enabled, created_at, \
                 updated_at FROM provider_settings WHERE id = $1 AND user_id = $2",
            )
            .bind(id.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(ProviderRow::into_domain).transpose()
    }

    async fn list_providers(&self, user: UserId) -> StoreResult<Vec<ProviderSetting>> {
        let rows = on_pool!(&self.pools, read, |pool| {
            sqlx::query_as::<_, ProviderRow>(
                "SELECT id, user_id, name, protocol, base_url, api_key_encrypted, model_list, enabled, created_at, \
                 updated_at FROM provider_settings WHERE user_id = $1 ORDER BY created_at, id",
            )
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, ProviderRow::into_domain)
    }

    async fn update_provider(&self, provider: &ProviderSetting) -> StoreResult<bool> {
        // Identity, owner and creation time never change.
        let changed = on_pool!(&self.pools, write, |pool| {
            sqlx::query(
                "UPDATE provider_settings SET name = $1, protocol = $2, base_url = $3, api_key_encrypted = $4, \
                 model_list = $5, enabled = $6, updated_at = $7 WHERE id = $8 AND user_id = $9",
            )
            .bind(&provider.name)
            .bind(provider.protocol.as_str())
            .bind(&provider.base_url)
            .bind(provider.api_key_encrypted.as_deref())
            .bind(&provider.model_list)
            .bind(provider.enabled)
            .bind(provider.updated_at.as_millis())
            .bind(provider.id.to_string())
            .bind(provider.user_id.to_string())
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(changed > 0)
    }

    async fn delete_provider(&self, user: UserId, id: ProviderSettingId) -> StoreResult<bool> {
        let deleted = on_pool!(&self.pools, write, |pool| {
            sqlx::query("DELETE FROM provider_settings WHERE id = $1 AND user_id = $2")
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
