//! `UserStore` for `SqlStore`: the `users` table (identity and interface preferences).

use async_trait::async_trait;
use loquat_core::domain::{Locale, Theme, User};
use loquat_core::id::UserId;
use loquat_core::store::{StoreResult, UserStore};

use crate::SqlStore;
use crate::pool::{on_pool, store_error};
use crate::rows::{UserRow, locale_code};

#[async_trait]
impl UserStore for SqlStore {
    async fn ensure_user(&self, user: &User) -> StoreResult<()> {
        on_pool!(&self.pools, write, |pool| {
            sqlx::query(
                "INSERT INTO users (id, name, locale, theme, created_at) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (id) DO NOTHING",
            )
            .bind(user.id.to_string())
            .bind(&user.name)
            .bind(locale_code(user.locale))
            .bind(user.theme.code())
            .bind(user.created_at.as_millis())
            .execute(pool)
            .await
            .map(|_| ())
        })
        .map_err(store_error)
    }

    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>> {
        let row = on_pool!(&self.pools, read, |pool| {
            sqlx::query_as::<_, UserRow>("SELECT id, name, locale, theme, created_at FROM users WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(UserRow::into_domain).transpose()
    }

    async fn update_user_preferences(&self, id: UserId, locale: Option<Locale>, theme: Theme) -> StoreResult<bool> {
        let changed = on_pool!(&self.pools, write, |pool| {
            sqlx::query("UPDATE users SET locale = $1, theme = $2 WHERE id = $3")
                .bind(locale_code(locale))
                .bind(theme.code())
                .bind(id.to_string())
                .execute(pool)
                .await
                .map(|done| done.rows_affected())
        })
        .map_err(store_error)?;
        Ok(changed > 0)
    }
}
