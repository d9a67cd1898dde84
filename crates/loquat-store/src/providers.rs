//! `ProviderStore` for `SqlStore`: the `provider_settings` table (providers a user added) and
//! `provider_overrides` (a user's own key for a server provider). Keys arrive encrypted by the
//! service; the store never sees them in clear.

use async_trait::async_trait;
use loquat_core::domain::{ProviderOverride, ProviderSetting};
use loquat_core::id::{ProviderSettingId, UserId};
use loquat_core::store::{ProviderStore, StoreResult};

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{OverrideRow, ProviderRow, convert_all};

#[async_trait]
impl ProviderStore for SqlStore {
    async fn insert_provider(&self, provider: &ProviderSetting) -> StoreResult<()> {
        execute!(
            &self.pools,
            "insert_provider",
            "INSERT INTO provider_settings (id, user_id, name, protocol, base_url, api_key_encrypted, model_list, \
                 enabled, created_at, updated_at, api_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            provider.id.to_string(),
            provider.user_id.to_string(),
            &provider.name,
            provider.protocol.as_str(),
            &provider.base_url,
            provider.api_key_encrypted.as_deref(),
            &provider.model_list,
            provider.enabled,
            provider.created_at.as_millis(),
            provider.updated_at.as_millis(),
            &provider.api_version
        )
        .map(|_| ())
    }

    async fn get_provider(&self, user: UserId, id: ProviderSettingId) -> StoreResult<Option<ProviderSetting>> {
        let row = on_pool!(&self.pools, read, "get_provider", |pool| {
            sqlx::query_as::<_, ProviderRow>(
                "SELECT id, user_id, name, protocol, base_url, api_key_encrypted, model_list, api_version, enabled, \
                 created_at, updated_at FROM provider_settings WHERE id = $1 AND user_id = $2",
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
        let rows = on_pool!(&self.pools, read, "list_providers", |pool| {
            sqlx::query_as::<_, ProviderRow>(
                "SELECT id, user_id, name, protocol, base_url, api_key_encrypted, model_list, api_version, enabled, \
                 created_at, updated_at FROM provider_settings WHERE user_id = $1 ORDER BY created_at, id",
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
        let changed = execute!(
            &self.pools,
            "update_provider",
            "UPDATE provider_settings SET name = $1, protocol = $2, base_url = $3, api_key_encrypted = $4, \
                 model_list = $5, enabled = $6, updated_at = $7, api_version = $10 WHERE id = $8 AND user_id = $9",
            &provider.name,
            provider.protocol.as_str(),
            &provider.base_url,
            provider.api_key_encrypted.as_deref(),
            &provider.model_list,
            provider.enabled,
            provider.updated_at.as_millis(),
            provider.id.to_string(),
            provider.user_id.to_string(),
            &provider.api_version
        )?;
        Ok(changed > 0)
    }

    async fn delete_provider(&self, user: UserId, id: ProviderSettingId) -> StoreResult<bool> {
        let deleted = execute!(
            &self.pools,
            "delete_provider",
            "DELETE FROM provider_settings WHERE id = $1 AND user_id = $2",
            id.to_string(),
            user.to_string()
        )?;
        Ok(deleted > 0)
    }

    async fn get_provider_override(&self, user: UserId, provider_id: &str) -> StoreResult<Option<ProviderOverride>> {
        let row = on_pool!(&self.pools, read, "get_provider_override", |pool| {
            sqlx::query_as::<_, OverrideRow>(
                "SELECT user_id, provider_id, api_key_encrypted, base_url, updated_at FROM provider_overrides \
                 WHERE user_id = $1 AND provider_id = $2",
            )
            .bind(user.to_string())
            .bind(provider_id)
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(OverrideRow::into_domain).transpose()
    }

    async fn list_provider_overrides(&self, user: UserId) -> StoreResult<Vec<ProviderOverride>> {
        let rows = on_pool!(&self.pools, read, "list_provider_overrides", |pool| {
            sqlx::query_as::<_, OverrideRow>(
                "SELECT user_id, provider_id, api_key_encrypted, base_url, updated_at FROM provider_overrides \
                 WHERE user_id = $1 ORDER BY provider_id",
            )
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, OverrideRow::into_domain)
    }

    async fn upsert_provider_override(&self, provider_override: &ProviderOverride) -> StoreResult<()> {
        execute!(
            &self.pools,
            "upsert_provider_override",
            "INSERT INTO provider_overrides (user_id, provider_id, api_key_encrypted, base_url, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, provider_id) DO UPDATE SET \
                 api_key_encrypted = excluded.api_key_encrypted, base_url = excluded.base_url, \
                 updated_at = excluded.updated_at",
            provider_override.user_id.to_string(),
            &provider_override.provider_id,
            provider_override.api_key_encrypted.as_deref(),
            &provider_override.base_url,
            provider_override.updated_at.as_millis()
        )
        .map(|_| ())
    }

    async fn delete_provider_override(&self, user: UserId, provider_id: &str) -> StoreResult<bool> {
        let deleted = execute!(
            &self.pools,
            "delete_provider_override",
            "DELETE FROM provider_overrides WHERE user_id = $1 AND provider_id = $2",
            user.to_string(),
            provider_id
        )?;
        Ok(deleted > 0)
    }
}
