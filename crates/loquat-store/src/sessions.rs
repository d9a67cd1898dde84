//! `SessionStore` for `SqlStore`: the `sessions` table (signed-in browsers, by token hash),
//! `identities` (SSO identities linked to users) and `login_states` (pending SSO logins, each
//! taken once).

use async_trait::async_trait;
use loquat_core::domain::{Identity, Session, User};
use loquat_core::id::UserId;
use loquat_core::store::{SessionStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{IdentityRow, SessionRow, UserRow, convert_all};

/// When a session was last seen, with its user.
#[derive(sqlx::FromRow)]
struct SessionUserRow {
    session_last_seen_at: i64,
    #[sqlx(flatten)]
    user: UserRow,
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn insert_session(&self, session: &Session) -> StoreResult<()> {
        execute!(
            &self.pools,
            "insert_session",
            "INSERT INTO sessions (token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &session.token_hash,
            session.user_id.to_string(),
            session.created_at.as_millis(),
            session.expires_at.as_millis(),
            session.last_seen_at.as_millis(),
            &session.ip,
            &session.user_agent
        )
        .map(|_| ())
    }

    async fn get_session(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<Session>> {
        let row = on_pool!(&self.pools, read, "get_session", |pool| {
            sqlx::query_as::<_, SessionRow>(
                "SELECT token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent FROM sessions \
                 WHERE token_hash = $1 AND expires_at > $2",
            )
            .bind(token_hash)
            .bind(now.as_millis())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(SessionRow::into_domain).transpose()
    }

    async fn session_user(&self, token_hash: &str, now: Timestamp) -> StoreResult<Option<(Timestamp, User)>> {
        let row = on_pool!(&self.pools, read, "session_user", |pool| {
            sqlx::query_as::<_, SessionUserRow>(
                "SELECT s.last_seen_at AS session_last_seen_at, u.id, u.name, u.email, u.role, u.disabled, \
                 u.locale, u.theme, u.created_at, u.last_active_at, u.named_role FROM sessions AS s \
                 JOIN users AS u ON u.id = s.user_id WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now.as_millis())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(|row| Ok((Timestamp(row.session_last_seen_at), row.user.into_domain()?))).transpose()
    }

    async fn touch_session(&self, token_hash: &str, at: Timestamp) -> StoreResult<()> {
        execute!(
            &self.pools,
            "touch_session",
            "UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2",
            at.as_millis(),
            token_hash
        )
        .map(|_| ())
    }

    async fn delete_session(&self, token_hash: &str) -> StoreResult<bool> {
        let deleted =
            execute!(&self.pools, "delete_session", "DELETE FROM sessions WHERE token_hash = $1", token_hash)?;
        Ok(deleted > 0)
    }

    async fn delete_user_sessions(&self, user: UserId) -> StoreResult<u64> {
        execute!(&self.pools, "delete_user_sessions", "DELETE FROM sessions WHERE user_id = $1", user.to_string())
    }

    async fn list_sessions(&self, user: UserId, now: Timestamp) -> StoreResult<Vec<Session>> {
        let rows = on_pool!(&self.pools, read, "list_sessions", |pool| {
            sqlx::query_as::<_, SessionRow>(
                "SELECT token_hash, user_id, created_at, expires_at, last_seen_at, ip, user_agent FROM sessions \
                 WHERE user_id = $1 AND expires_at > $2 ORDER BY last_seen_at DESC, created_at DESC, token_hash",
            )
            .bind(user.to_string())
            .bind(now.as_millis())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, SessionRow::into_domain)
    }

    async fn find_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<Identity>> {
        let row = on_pool!(&self.pools, read, "find_identity", |pool| {
            sqlx::query_as::<_, IdentityRow>(
                "SELECT provider, subject, user_id, email, created_at FROM identities \
                 WHERE provider = $1 AND subject = $2",
            )
            .bind(provider)
            .bind(subject)
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(IdentityRow::into_domain).transpose()
    }

    async fn insert_identity(&self, identity: &Identity) -> StoreResult<()> {
        execute!(
            &self.pools,
            "insert_identity",
            "INSERT INTO identities (provider, subject, user_id, email, created_at) VALUES ($1, $2, $3, $4, $5)",
            &identity.provider,
            &identity.subject,
            identity.user_id.to_string(),
            identity.email.as_deref(),
            identity.created_at.as_millis()
        )
        .map(|_| ())
    }

    async fn put_login_state(&self, state: &str, data: &str, created_at: Timestamp) -> StoreResult<()> {
        execute!(
            &self.pools,
            "put_login_state",
            "INSERT INTO login_states (state, data, created_at) VALUES ($1, $2, $3)",
            state,
            data,
            created_at.as_millis()
        )
        .map(|_| ())
    }

    async fn take_login_state(&self, state: &str) -> StoreResult<Option<(String, Timestamp)>> {
        // One statement: of two callbacks racing with the same state, only one gets a row.
        let taken: Option<(String, i64)> = on_pool!(&self.pools, write, "take_login_state", |pool| {
            sqlx::query_as("DELETE FROM login_states WHERE state = $1 RETURNING data, created_at")
                .bind(state)
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        Ok(taken.map(|(data, created_at)| (data, Timestamp(created_at))))
    }

    async fn purge_expired(&self, now: Timestamp, logins_before: Timestamp) -> StoreResult<u64> {
        let sessions =
            execute!(&self.pools, "purge_expired", "DELETE FROM sessions WHERE expires_at <= $1", now.as_millis())?;
        let logins = execute!(
            &self.pools,
            "purge_expired",
            "DELETE FROM login_states WHERE created_at < $1",
            logins_before.as_millis()
        )?;
        Ok(sessions + logins)
    }
}
