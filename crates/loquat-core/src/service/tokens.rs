//! Personal API tokens for the OpenAI-compatible API: created by their owner, shown once,
//! stored as a hash, revocable.

use super::Accounts;
use super::accounts::ClientInfo;
use crate::crypto::{new_token, token_hash};
use crate::domain::{ApiToken, User};
use crate::error::{CoreError, CoreResult};
use crate::id::UserId;
use crate::secret::Secret;
use crate::time::Timestamp;

/// Tokens start with this, so a leaked one is recognisable (and secret scanners can match it).
pub const TOKEN_PREFIX: &str = "lq_";

impl Accounts {
    /// Creates a token; the returned secret is the only time it can be seen.
    pub async fn create_api_token(
        &self,
        user: UserId,
        name: &str,
        client: &ClientInfo,
    ) -> CoreResult<(Secret, ApiToken)> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::invalid("name_length"));
        }
        let secret = new_token(TOKEN_PREFIX);
        let token = ApiToken {
            id: uuid::Uuid::now_v7().to_string(),
            user_id: user,
            name: name.to_owned(),
            token_hash: token_hash(secret.expose()),
            prefix: secret.expose().chars().take(TOKEN_PREFIX.len() + 6).collect(),
            created_at: Timestamp::now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.store.insert_api_token(&token).await?;
        self.audit.record(Some(user), "token_created", &token.id, name, client).await;
        Ok((secret, token))
    }

    pub async fn api_tokens(&self, user: UserId) -> CoreResult<Vec<ApiToken>> {
        Ok(self.store.list_api_tokens(user).await?)
    }

    pub async fn revoke_api_token(&self, user: UserId, id: &str, client: &ClientInfo) -> CoreResult<()> {
        if !self.store.revoke_api_token(user, id, Timestamp::now()).await? {
            return Err(CoreError::NotFound("token"));
        }
        self.audit.record(Some(user), "token_revoked", id, "", client).await;
        Ok(())
    }

    /// The user a bearer token belongs to, if the token is valid and the user enabled.
    pub async fn api_token_user(&self, token: &str) -> CoreResult<Option<User>> {
        if !token.starts_with(TOKEN_PREFIX) {
            return Ok(None);
        }
        let Some(found) = self.store.api_token_user(&token_hash(token)).await? else { return Ok(None) };
        if found.user.disabled {
            return Ok(None);
        }
        let now = Timestamp::now();
        if found.last_used_at.is_none_or(|at| now.0 - at.0 > 60_000) {
            // Off the request's path: when the token was last used is for its owner's page.
            let (store, id) = (self.store.clone(), found.token_id);
            tokio::spawn(async move {
                if let Err(error) = store.touch_api_token(&id, now).await {
                    tracing::warn!(%error, "could not record an API token's use");
                }
            });
        }
        Ok(Some(found.user))
    }
}
