//! `ProviderStore` for `SqlStore`: the `provider_settings` table (providers a user added) and
//! `provider_overrides` (a user's own key for a server provider). Keys arrive encrypted by the
//! service; the store never sees them in clear.

use async_trait::async_trait;
use loquat_core::domain::{ProviderOverride, ProviderSetting};
use loquat_core::id::{ProviderSettingId, UserId};
use loquat_core::store::{ProviderStore, StoreResult};

use crate::SqlStore;
use crate::pool::{on_pool, store_error};
use crate::rows::{OverrideRow, ProviderRow, convert_all};

#[async_trait]
impl ProviderStore for SqlStore {
    async fn insert_provider(&self, provider: &ProviderSetting) -> StoreResult<()> {
        on_pool!(&self.pools, write, "insert_provider", |pool| {
            sqlx::query(
                "INSERT INTO provider_settings (id, user_id, name, protocol, base_url, api_key_encrypted, model_list, \
                 enabled, created_at, updated_at, api_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
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
            .bind(&provider.api_version)
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
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
        let changed = on_pool!(&self.pools, write, "update_provider", |pool| {
            sqlx::query(
                "UPDATE provider_settings SET name = $1, protocol = $2, base_url = $3, api_key_encrypted = $4, \
                 model_list = $5, enabled = $6, updated_at = $7, api_version = $10 WHERE id = $8 AND user_id = $9",
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
            .bind(&provider.api_version)
            .execute(pool)
            .await
            .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(changed > 0)
    }

    async fn delete_provider(&self, user: UserId, id: ProviderSettingId) -> StoreResult<bool> {
        let deleted = on_pool!(&self.pools, write, "delete_provider", |pool| {
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
        on_pool!(&self.pools, write, "upsert_provider_override", |pool| {
            sqlx::query(
                "INSERT INTO provider_overrides (user_id, provider_id, api_key_encrypted, base_url, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id, provider_id) DO UPDATE SET \
                 api_key_encrypted = excluded.api_key_encrypted, base_url = excluded.base_url, \
                 updated_at = excluded.updated_at",
            )
            .bind(provider_override.user_id.to_string())
            .bind(&provider_override.provider_id)
            .bind(provider_override.api_key_encrypted.as_deref())
            .bind(&provider_override.base_url)
            .bind(provider_override.updated_at.as_millis())
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }

    async fn delete_provider_override(&self, user: UserId, provider_id: &str) -> StoreResult<bool> {
        let deleted = on_pool!(&self.pools, write, "delete_provider_override", |pool| {
            sqlx::query("DELETE FROM provider_overrides WHERE user_id = $1 AND provider_id = $2")
                .bind(user.to_string())
                .bind(provider_id)
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(deleted > 0)
    }
}
