//! Changes of a topic's message tree (`TreeWrite`): the statements behind `insert_topic`,
//! `insert_message`, `set_active_leaf` and `delete_message_subtree`, and
//! [`MessageStore::write_tree`](loquat_core::store::MessageStore::write_tree), which runs several
//! in one transaction (a question, its answer and the topic's new leaf are stored together or
//! not at all).

use loquat_core::id::UserId;
use loquat_core::store::{StoreResult, TreeWrite};

use crate::SqlStore;
use crate::pool::{on_pool, store_error};

pub(crate) const INSERT_TOPIC: &str = "INSERT INTO topics (id, user_id, assistant_id, title, active_leaf_id, \
    created_at, updated_at, pinned) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub(crate) const INSERT_MESSAGE: &str = "INSERT INTO messages (id, user_id, topic_id, parent_id, role, content, \
    reasoning, status, provider, model, created_at, updated_at, generating_by) \
    VALUES ($1, $2, $3, $4, $5, $6, '', $7, $8, $9, $10, $10, $11)";
pub(crate) const IMPORT_MESSAGE: &str = "INSERT INTO messages (id, user_id, topic_id, parent_id, role, content, \
    reasoning, status, error_kind, error_message, provider, model, prompt_tokens, completion_tokens, \
    reasoning_tokens, ttft_ms, duration_ms, created_at, updated_at) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";
pub(crate) const SET_ACTIVE_LEAF: &str =
    "UPDATE topics SET active_leaf_id = $1, updated_at = $2 WHERE id = $3 AND user_id = $4";
/// One statement: the parent_id foreign key is checked at its end, when the whole subtree is
/// gone. UNION (not UNION ALL) ends the walk even on a (corrupt) cycle.
pub(crate) const DELETE_SUBTREE: &str = "WITH RECURSIVE subtree (id) AS ( \
        SELECT id FROM messages WHERE id = $1 AND user_id = $2 \
        UNION \
        SELECT child.id FROM messages AS child JOIN subtree ON child.parent_id = subtree.id \
        WHERE child.user_id = $2 \
    ) \
    DELETE FROM messages WHERE user_id = $2 AND id IN (SELECT id FROM subtree)";

/// Only a file of the same owner is attached.
pub(crate) const ATTACH_FILE: &str = "INSERT INTO message_files (message_id, file_id, user_id, position) \
    SELECT $1, id, user_id, $3 FROM files WHERE id = $2 AND user_id = $4";

pub(crate) const INSERT_SOURCE: &str = "INSERT INTO message_sources (message_id, number, user_id, file_id, \
    file_name, page, page_end, headings, text, url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/// Whether a new message's text is final, and so searchable at once.
pub(crate) fn indexed_at_insert(message: &loquat_core::domain::NewMessage) -> bool {
    message.status != loquat_core::domain::MessageStatus::Generating && !message.content.is_empty()
}

/// Runs one [`TreeWrite`] for `$user` on `$executor` (a pool or a transaction of either
/// backend); evaluates to `Result<u64, sqlx::Error>`, the rows it changed.
macro_rules! execute_tree_write {
    ($executor:expr, $user:expr, $write:expr) => {{
        use $crate::tree::*;
        let user = $user.to_string();
        let done = match $write {
            TreeWrite::InsertTopic(topic) => {
                sqlx::query(INSERT_TOPIC)
                    .bind(topic.id.to_string())
                    .bind(user)
                    .bind(topic.assistant_id.to_string())
                    .bind(&topic.title)
                    .bind(topic.active_leaf_id.map(|leaf| leaf.to_string()))
                    .bind(topic.created_at.as_millis())
                    .bind(topic.updated_at.as_millis())
                    .bind(topic.pinned)
                    .execute($executor)
                    .await
            }
            TreeWrite::InsertMessage(message) => {
                let inserted = sqlx::query(INSERT_MESSAGE)
                    .bind(message.id.to_string())
                    .bind(user)
                    .bind(message.topic_id.to_string())
                    .bind(message.parent_id.map(|parent| parent.to_string()))
                    .bind(message.role.as_str())
                    .bind(&message.content)
                    .bind(message.status.as_str())
                    .bind(message.provider.as_deref())
                    .bind(message.model.as_deref())
                    .bind(message.created_at.as_millis())
                    .bind(message.generating_by.as_deref())
                    .execute($executor)
                    .await;
                // A message with its final text is searchable from the start (an answer being
                // written is indexed when it finishes).
                match inserted {
                    Ok(done) if indexed_at_insert(message) => {
                        $crate::search::index_message!($executor, message.user_id, message.id, &message.content)
                            .map(|()| done)
                    }
                    other => other,
                }
            }
            TreeWrite::ImportMessage(message) => {
                let status = match message.status {
                    loquat_core::domain::MessageStatus::Generating => loquat_core::domain::MessageStatus::Interrupted,
                    status => status,
                };
                let [prompt, completion, reasoning] = $crate::rows::usage_columns(message.usage);
                let inserted = sqlx::query(IMPORT_MESSAGE)
                    .bind(message.id.to_string())
                    .bind(user)
                    .bind(message.topic_id.to_string())
                    .bind(message.parent_id.map(|parent| parent.to_string()))
                    .bind(message.role.as_str())
                    .bind(&message.content)
                    .bind(&message.reasoning)
                    .bind(status.as_str())
                    .bind(message.error_kind.as_deref())
                    .bind(message.error_message.as_deref())
                    .bind(message.provider.as_deref())
                    .bind(message.model.as_deref())
                    .bind(prompt)
                    .bind(completion)
                    .bind(reasoning)
                    .bind(message.ttft_ms)
                    .bind(message.duration_ms)
                    .bind(message.created_at.as_millis())
                    .bind(message.updated_at.as_millis())
                    .execute($executor)
                    .await;
                match inserted {
                    Ok(done) if !message.content.is_empty() => {
                        $crate::search::index_message!($executor, message.user_id, message.id, &message.content)
                            .map(|()| done)
                    }
                    other => other,
                }
            }
            TreeWrite::SetActiveLeaf { topic, leaf, at } => {
                sqlx::query(SET_ACTIVE_LEAF)
                    .bind(leaf.map(|leaf| leaf.to_string()))
                    .bind(at.as_millis())
                    .bind(topic.to_string())
                    .bind(user)
                    .execute($executor)
                    .await
            }
            TreeWrite::DeleteSubtree(id) => {
                sqlx::query(DELETE_SUBTREE).bind(id.to_string()).bind(user).execute($executor).await
            }
            TreeWrite::InsertSource { message, source } => {
                sqlx::query(INSERT_SOURCE)
                    .bind(message.to_string())
                    .bind(i64::from(source.number))
                    .bind(user)
                    .bind(source.file_id.map(|file| file.to_string()))
                    .bind(&source.file_name)
                    .bind(source.page.map(i64::from))
                    .bind(source.page_end.filter(|end| Some(*end) != source.page).map(i64::from))
                    .bind(&source.headings)
                    .bind(&source.text)
                    .bind(source.url.as_deref())
                    .execute($executor)
                    .await
            }
            TreeWrite::AttachFile { message, file, position } => {
                sqlx::query(ATTACH_FILE)
                    .bind(message.to_string())
                    .bind(file.to_string())
                    .bind(i64::from(position))
                    .bind(user)
                    .execute($executor)
                    .await
            }
        };
        done.map(|done| done.rows_affected())
    }};
}

impl SqlStore {
    /// One tree write on its own (a single statement needs no transaction; a message with its
    /// search terms is two, written together).
    pub(crate) async fn write_one(&self, user: UserId, write: TreeWrite<'_>, query: &'static str) -> StoreResult<u64> {
        if needs_transaction(&write) {
            return Ok(self.in_transaction(user, &[write], query).await?[0]);
        }
        on_pool!(&self.pools, write, query, |pool| execute_tree_write!(pool, user, write)).map_err(store_error)
    }

    /// [`MessageStore::write_tree`](loquat_core::store::MessageStore::write_tree).
    pub(crate) async fn write_tree_in_transaction(
        &self,
        user: UserId,
        writes: &[TreeWrite<'_>],
    ) -> StoreResult<Vec<u64>> {
        if let [write] = writes
            && !needs_transaction(write)
        {
            return Ok(vec![self.write_one(user, *write, "write_tree").await?]);
        }
        self.in_transaction(user, writes, "write_tree").await
    }

    async fn in_transaction(
        &self,
        user: UserId,
        writes: &[TreeWrite<'_>],
        query: &'static str,
    ) -> StoreResult<Vec<u64>> {
        on_pool!(&self.pools, write, query, |pool| async {
            let mut tx = pool.begin().await?;
            let mut changed = Vec::with_capacity(writes.len());
            for write in writes {
                changed.push(execute_tree_write!(&mut *tx, user, *write)?);
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(changed)
        }
        .await)
        .map_err(store_error)
    }
}

/// A write of more than one statement.
fn needs_transaction(write: &TreeWrite<'_>) -> bool {
    match write {
        TreeWrite::InsertMessage(message) => indexed_at_insert(message),
        TreeWrite::ImportMessage(message) => !message.content.is_empty(),
        _ => false,
    }
}
