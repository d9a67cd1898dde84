//! `ShareStore` for `SqlStore`: the `shares` table. A link is found by its secret's hash (the
//! public page) or, for its owner's pages, by the owner's id.

use async_trait::async_trait;
use loquat_core::domain::Share;
use loquat_core::id::{ShareId, TopicId, UserId};
use loquat_core::store::{ShareStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{convert_all, id};

#[derive(sqlx::FromRow)]
struct ShareRow {
    id: String,
    user_id: String,
    topic_id: String,
    token: String,
    leaf_id: Option<String>,
    show_name: bool,
    created_at: i64,
    expires_at: Option<i64>,
}

impl ShareRow {
    fn into_domain(self) -> StoreResult<Share> {
        Ok(Share {
            id: id("shares", "id", self.id)?,
            user_id: id("shares", "user_id", self.user_id)?,
            topic_id: id("shares", "topic_id", self.topic_id)?,
            token: self.token,
            leaf_id: self.leaf_id.map(|leaf| id("shares", "leaf_id", leaf)).transpose()?,
            show_name: self.show_name,
            created_at: Timestamp(self.created_at),
            expires_at: self.expires_at.map(Timestamp),
        })
    }
}

macro_rules! columns {
    () => {
        "id, user_id, topic_id, token, leaf_id, show_name, created_at, expires_at"
    };
}

#[async_trait]
impl ShareStore for SqlStore {
    async fn insert_share(&self, share: &Share, token_hash: &str) -> StoreResult<bool> {
        // Only a topic of the same owner can be shared: the row is written only when it is.
        execute!(
            &self.pools,
            "insert_share",
            "INSERT INTO shares (id, token, token_hash, user_id, topic_id, leaf_id, show_name, created_at, \
             expires_at) SELECT $1, $2, $3, $4, id, $6, $7, $8, $9 FROM topics WHERE id = $5 AND user_id = $4",
            share.id.to_string(),
            &share.token,
            token_hash,
            share.user_id.to_string(),
            share.topic_id.to_string(),
            share.leaf_id.map(|leaf| leaf.to_string()),
            share.show_name,
            share.created_at.as_millis(),
            share.expires_at.map(Timestamp::as_millis),
        )
        .map(|inserted| inserted > 0)
    }

    async fn list_shares(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<Share>> {
        let rows = on_pool!(&self.pools, read, "list_shares", |pool| {
            sqlx::query_as::<_, ShareRow>(concat!(
                "SELECT ",
                columns!(),
                " FROM shares WHERE topic_id = $1 AND user_id = $2 ORDER BY created_at DESC, id"
            ))
            .bind(topic.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, ShareRow::into_domain)
    }

    async fn delete_share(&self, user: UserId, share: ShareId) -> StoreResult<bool> {
        let deleted = execute!(
            &self.pools,
            "delete_share",
            "DELETE FROM shares WHERE id = $1 AND user_id = $2",
            share.to_string(),
            user.to_string(),
        )?;
        Ok(deleted > 0)
    }

    async fn find_share(&self, token_hash: &str) -> StoreResult<Option<Share>> {
        let row = on_pool!(&self.pools, read, "find_share", |pool| {
            sqlx::query_as::<_, ShareRow>(concat!("SELECT ", columns!(), " FROM shares WHERE token_hash = $1"))
                .bind(token_hash)
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(ShareRow::into_domain).transpose()
    }
}
