//! Start-up recovery (the composition root's), and users' profiles and preferences (accounts).

use super::{Accounts, Services};
use crate::domain::{Locale, Theme, User};
use crate::error::{CoreError, CoreResult};
use crate::id::UserId;
use crate::time::Timestamp;

impl Services {
    /// Prepares the store for serving: recovers answers a previous process left generating.
    pub async fn bootstrap(&self) -> CoreResult<()> {
        let settings = self.generations.settings();
        let now = Timestamp::now();
        let stale_before = Timestamp(now.0 - settings.stale_after.as_millis() as i64);
        let interrupted = self.store.interrupt_generating(Some(&settings.node_id), stale_before, now).await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "answers left generating by a previous process were marked interrupted");
        }
        // Messages written before the search index, or cut off by a crash, become searchable
        // in the background.
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut total = 0;
            loop {
                match store.index_unindexed(500).await {
                    Ok(0) => break,
                    Ok(done) => total += done,
                    Err(error) => {
                        tracing::warn!(%error, "could not index messages for search");
                        break;
                    }
                }
            }
            if total > 0 {
                tracing::info!(messages = total, "messages indexed for search");
            }
        });
        Ok(())
    }

    /// Marks answers interrupted whose node stopped sending heartbeats (a replica that died);
    /// run periodically on every node.
    pub async fn interrupt_stale_generations(&self) -> CoreResult<u64> {
        let now = Timestamp::now();
        let stale_before = Timestamp(now.0 - self.generations.settings().stale_after.as_millis() as i64);
        let interrupted = self.store.interrupt_generating(None, stale_before, now).await?;
        if interrupted > 0 {
            // What they kept is searchable like any message.
            self.store.index_unindexed(interrupted.min(500) as u32).await?;
        }
        Ok(interrupted)
    }
}

impl Accounts {
    pub async fn user(&self, id: UserId) -> CoreResult<User> {
        self.store.get_user(id).await?.ok_or(CoreError::NotFound("user"))
    }

    pub async fn has_password(&self, id: UserId) -> CoreResult<bool> {
        Ok(self.store.password_hash(id).await?.is_some())
    }

    pub async fn rename_user(&self, id: UserId, name: &str) -> CoreResult<()> {
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(CoreError::invalid("name_length"));
        }
        self.store.set_user_name(id, name).await?;
        Ok(())
    }

    pub async fn update_preferences(&self, id: UserId, locale: Option<Locale>, theme: Theme) -> CoreResult<()> {
        if self.store.update_user_preferences(id, locale, theme).await? {
            Ok(())
        } else {
            Err(CoreError::NotFound("user"))
        }
    }
}
