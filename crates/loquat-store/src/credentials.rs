//! `CredentialStore` for `SqlStore`: the `invites` table (single-use invitation codes, by hash)
//! and `api_tokens` (personal API tokens, by hash; revoked ones are kept for the user's list).

use async_trait::async_trait;
use loquat_core::domain::{ApiToken, Invite};
use loquat_core::id::UserId;
use loquat_core::store::{CredentialStore, StoreResult, TokenOwner};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{ApiTokenRow, InviteRow, UserRow, convert_all};

/// A token's id and last use with its owner.
#[derive(sqlx::FromRow)]
struct TokenUserRow {
    token_id: String,
    token_last_used_at: Option<i64>,
    #[sqlx(flatten)]
    user: UserRow,
}

#[async_trait]
impl CredentialStore for SqlStore {
    async fn insert_invite(&self, invite: &Invite) -> StoreResult<()> {
        execute!(
            &self.pools,
            "insert_invite",
            "INSERT INTO invites (code_hash, created_by, role, created_at, expires_at, used_by, used_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &invite.code_hash,
            invite.created_by.to_string(),
            invite.role.as_str(),
            invite.created_at.as_millis(),
            invite.expires_at.as_millis(),
            invite.used_by.map(|user| user.to_string()),
            invite.used_at.map(Timestamp::as_millis)
        )
        .map(|_| ())
    }

    async fn get_valid_invite(&self, code_hash: &str, now: Timestamp) -> StoreResult<Option<Invite>> {
        let row = on_pool!(&self.pools, read, "get_valid_invite", |pool| {
            sqlx::query_as::<_, InviteRow>(
                "SELECT code_hash, created_by, role, created_at, expires_at, used_by, used_at FROM invites \
                 WHERE code_hash = $1 AND used_by IS NULL AND expires_at > $2",
            )
            .bind(code_hash)
            .bind(now.as_millis())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(InviteRow::into_domain).transpose()
    }

    async fn list_invites(&self) -> StoreResult<Vec<Invite>> {
        let rows = on_pool!(&self.pools, read, "list_invites", |pool| {
            sqlx::query_as::<_, InviteRow>(
                "SELECT code_hash, created_by, role, created_at, expires_at, used_by, used_at FROM invites \
                 ORDER BY created_at DESC, code_hash DESC",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, InviteRow::into_domain)
    }

    async fn delete_invite(&self, code_hash: &str) -> StoreResult<bool> {
        let deleted = execute!(&self.pools, "delete_invite", "DELETE FROM invites WHERE code_hash = $1", code_hash)?;
        Ok(deleted > 0)
    }

    async fn insert_api_token(&self, token: &ApiToken) -> StoreResult<()> {
        execute!(
            &self.pools,
            "insert_api_token",
            "INSERT INTO api_tokens (id, user_id, name, token_hash, prefix, created_at, last_used_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &token.id,
            token.user_id.to_string(),
            &token.name,
            &token.token_hash,
            &token.prefix,
            token.created_at.as_millis(),
            token.last_used_at.map(Timestamp::as_millis),
            token.revoked_at.map(Timestamp::as_millis)
        )
        .map(|_| ())
    }

    async fn find_api_token(&self, token_hash: &str) -> StoreResult<Option<ApiToken>> {
        let row = on_pool!(&self.pools, read, "find_api_token", |pool| {
            sqlx::query_as::<_, ApiTokenRow>(
                "SELECT id, user_id, name, token_hash, prefix, created_at, last_used_at, revoked_at FROM api_tokens \
                 WHERE token_hash = $1 AND revoked_at IS NULL",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(ApiTokenRow::into_domain).transpose()
    }

    async fn api_token_user(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>> {
        let row = on_pool!(&self.pools, read, "api_token_user", |pool| {
            sqlx::query_as::<_, TokenUserRow>(
                "SELECT t.id AS token_id, t.last_used_at AS token_last_used_at, u.id, u.name, u.email, u.role, \
                 u.disabled, u.locale, u.theme, u.created_at, u.last_active_at, u.named_role FROM api_tokens AS t \
                 JOIN users AS u ON u.id = t.user_id WHERE t.token_hash = $1 AND t.revoked_at IS NULL",
            )
            .bind(token_hash)
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(|row| {
            Ok(TokenOwner {
                token_id: row.token_id,
                last_used_at: row.token_last_used_at.map(Timestamp),
                user: row.user.into_domain()?,
            })
        })
        .transpose()
    }

    async fn list_api_tokens(&self, user: UserId) -> StoreResult<Vec<ApiToken>> {
        let rows = on_pool!(&self.pools, read, "list_api_tokens", |pool| {
            sqlx::query_as::<_, ApiTokenRow>(
                "SELECT id, user_id, name, token_hash, prefix, created_at, last_used_at, revoked_at FROM api_tokens \
                 WHERE user_id = $1 ORDER BY created_at DESC, id DESC",
            )
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, ApiTokenRow::into_domain)
    }

    async fn revoke_api_token(&self, user: UserId, id: &str, at: Timestamp) -> StoreResult<bool> {
        // A revoked token keeps its first revocation time.
        let changed = execute!(
            &self.pools,
            "revoke_api_token",
            "UPDATE api_tokens SET revoked_at = $1 WHERE id = $2 AND user_id = $3 AND revoked_at IS NULL",
            at.as_millis(),
            id,
            user.to_string()
        )?;
        Ok(changed > 0)
    }

    async fn revoke_user_api_tokens(&self, user: UserId, at: Timestamp) -> StoreResult<u64> {
        execute!(
            &self.pools,
            "revoke_user_api_tokens",
            "UPDATE api_tokens SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
            at.as_millis(),
            user.to_string()
        )
    }

    async fn touch_api_token(&self, id: &str, at: Timestamp) -> StoreResult<()> {
        execute!(
            &self.pools,
            "touch_api_token",
            "UPDATE api_tokens SET last_used_at = $1 WHERE id = $2",
            at.as_millis(),
            id
        )
        .map(|_| ())
    }
}
