//! `SearchStore` for `SqlStore`: search across a person's messages. A message's search terms
//! are its owner's token (`u<id>`, so a search only ever meets its own person's messages, and
//! the index narrows to them first) and the terms of `loquat-docs`' tokenizer (stemmed English
//! words, CJK character pairs: a Chinese query finds Chinese text without spaces). They are
//! written with every write of a message's final text, in its transaction (`index_message!`);
//! deletes take them along (a trigger on SQLite, a cascade on PostgreSQL). SQLite keeps them in
//! FTS5, PostgreSQL in a `tsvector` with a GIN index. Results come newest first, as people
//! look for a conversation they remember (and a common word then costs no ranking of every
//! message holding it).

use async_trait::async_trait;
use loquat_core::domain::{MessageRole, SearchHit, Topic};
use loquat_core::id::UserId;
use loquat_core::store::{SearchStore, StoreResult};
use loquat_core::time::Timestamp;
use loquat_docs::search::Tokenizer;

use crate::SqlStore;
use crate::pool::{on_pool, store_error};
use crate::rows::{TopicRow, convert_all, corrupt, id};

/// The most terms of a query used (a 10,000-character query costs no more than this).
pub(crate) const MAX_QUERY_TERMS: usize = 24;
/// How many of a person's newest messages the first pass of a PostgreSQL search reads.
pub(crate) const RECENT_WINDOW: i64 = 20_000;

/// The statements of each backend.
pub(crate) struct Sql {
    /// `$1` terms, `$2` message id, `$3` user id.
    pub index: &'static str,
    /// `$1` message id, `$2` user id.
    pub forget: &'static str,
    /// `$1` the query (see [`Sql::query`]), `$2` user id, `$3` limit.
    pub search: &'static str,
    /// `$1` limit: finished messages with text and no terms.
    pub unindexed: &'static str,
    /// Like `search`, among the person's newest [`RECENT_WINDOW`] messages only: a common word
    /// is answered there at once; when it finds fewer than the limit, `search` runs (the
    /// terms are then rare, and the index's matches few). `None`: `search` is fast as it is.
    pub recent: Option<&'static str>,
    pub postgres: bool,
}

impl Sql {
    /// The match expression of `terms` for `user`: every term required.
    pub fn query(&self, user: UserId, terms: &[String]) -> String {
        let owner = owner_term(user);
        let all = std::iter::once(owner.as_str()).chain(terms.iter().map(String::as_str).take(MAX_QUERY_TERMS));
        if self.postgres {
            all.map(|term| format!("'{}'", term.replace('\'', "''"))).collect::<Vec<_>>().join(" & ")
        } else {
            all.map(|term| format!("\"{}\"", term.replace('"', "\"\""))).collect::<Vec<_>>().join(" ")
        }
    }
}

pub(crate) trait SearchSql {
    const SQL: Sql;
}

impl SearchSql for sqlx::Sqlite {
    const SQL: Sql = Sql {
        index: "INSERT INTO message_search (rowid, terms) SELECT rowid, $1 FROM messages WHERE id = $2 AND user_id = $3",
        forget: "DELETE FROM message_search WHERE rowid = (SELECT rowid FROM messages WHERE id = $1 AND user_id = $2)",
        search: "SELECT m.id, m.topic_id, t.assistant_id, t.title, m.role, m.content, m.created_at \
                 FROM message_search s JOIN messages m ON m.rowid = s.rowid JOIN topics t ON t.id = m.topic_id \
                 WHERE message_search MATCH $1 AND m.user_id = $2 ORDER BY s.rowid DESC LIMIT $3",
        unindexed: "SELECT m.id, m.user_id, m.content FROM messages m \
                    WHERE m.status <> 'generating' AND m.content <> '' \
                    AND NOT EXISTS (SELECT 1 FROM message_search s WHERE s.rowid = m.rowid) LIMIT $1",
        recent: None,
        postgres: false,
    };
}

impl SearchSql for sqlx::Postgres {
    const SQL: Sql = Sql {
        index: "INSERT INTO message_search (message_id, user_id, created_at, terms) \
                SELECT id, user_id, created_at, to_tsvector('simple', $1) FROM messages \
                WHERE id = $2 AND user_id = $3 ON CONFLICT (message_id) DO UPDATE SET terms = excluded.terms",
        forget: "DELETE FROM message_search WHERE message_id = $1 AND user_id = $2",
        search: "SELECT m.id, m.topic_id, t.assistant_id, t.title, m.role, m.content, m.created_at \
                 FROM message_search s JOIN messages m ON m.id = s.message_id JOIN topics t ON t.id = m.topic_id \
                 WHERE s.terms @@ to_tsquery('simple', $1) AND s.user_id = $2 \
                 ORDER BY s.created_at DESC LIMIT $3",
        unindexed: "SELECT m.id, m.user_id, m.content FROM messages m \
                    WHERE m.status <> 'generating' AND m.content <> '' \
                    AND NOT EXISTS (SELECT 1 FROM message_search s WHERE s.message_id = m.id) LIMIT $1",
        recent: Some(
            "SELECT m.id, m.topic_id, t.assistant_id, t.title, m.role, m.content, m.created_at \
             FROM (SELECT message_id, created_at, terms FROM message_search WHERE user_id = $2 \
                   ORDER BY created_at DESC LIMIT $4) s \
             JOIN messages m ON m.id = s.message_id JOIN topics t ON t.id = m.topic_id \
             WHERE s.terms @@ to_tsquery('simple', $1) ORDER BY s.created_at DESC LIMIT $3",
        ),
        postgres: true,
    };
}

/// The statements of the backend an executor (a pool or a transaction's connection) speaks.
pub(crate) fn sql_of<'c, E>(_executor: &E) -> &'static Sql
where
    E: sqlx::Executor<'c>,
    E::Database: SearchSql,
{
    &<E::Database as SearchSql>::SQL
}

fn owner_term(user: UserId) -> String {
    format!("u{}", user.as_uuid().simple())
}

/// A message's search terms: its owner's, then its text's.
pub(crate) fn terms_of(user: UserId, content: &str) -> String {
    let mut terms = owner_term(user);
    Tokenizer::default().terms(content, |term| {
        terms.push(' ');
        terms.push_str(term);
    });
    terms
}

/// Writes (again) the search terms of message `$id` of `$user` with text `$content`, on
/// `$executor` (a pool or a transaction of either backend); evaluates to `Result<(), sqlx::Error>`.
macro_rules! index_message {
    ($executor:expr, $user:expr, $id:expr, $content:expr) => {{
        let sql = $crate::search::sql_of(&$executor);
        let (user, id) = ($user.to_string(), $id.to_string());
        let terms = $crate::search::terms_of($user, $content);
        async {
            // SQLite's rows cannot be replaced in place: the old terms go first.
            sqlx::query(sql.forget).bind(&id).bind(&user).execute($executor).await?;
            sqlx::query(sql.index).bind(terms).bind(&id).bind(&user).execute($executor).await?;
            Ok::<(), sqlx::Error>(())
        }
        .await
    }};
}
pub(crate) use index_message;

#[derive(sqlx::FromRow)]
struct HitRow {
    id: String,
    topic_id: String,
    assistant_id: String,
    title: String,
    role: String,
    content: String,
    created_at: i64,
}

impl HitRow {
    fn into_domain(self) -> StoreResult<SearchHit> {
        Ok(SearchHit {
            message_id: id("messages", "id", self.id)?,
            topic_id: id("messages", "topic_id", self.topic_id)?,
            assistant_id: id("topics", "assistant_id", self.assistant_id)?,
            topic_title: self.title,
            role: MessageRole::parse(&self.role).ok_or_else(|| corrupt("messages", "role", &self.role))?,
            content: self.content,
            created_at: Timestamp(self.created_at),
        })
    }
}

#[async_trait]
impl SearchStore for SqlStore {
    async fn search_messages(&self, user: UserId, terms: &[String], limit: u32) -> StoreResult<Vec<SearchHit>> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let rows = on_pool!(&self.pools, read, "search_messages", |pool| async {
            let sql = sql_of(&pool);
            let query = sql.query(user, terms);
            if let Some(recent) = sql.recent {
                let found = sqlx::query_as::<_, HitRow>(recent)
                    .bind(&query)
                    .bind(user.to_string())
                    .bind(i64::from(limit))
                    .bind(RECENT_WINDOW)
                    .fetch_all(pool)
                    .await?;
                if found.len() >= limit as usize {
                    return Ok(found);
                }
            }
            sqlx::query_as::<_, HitRow>(sql.search)
                .bind(&query)
                .bind(user.to_string())
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await
        }
        .await)
        .map_err(store_error)?;
        convert_all(rows, HitRow::into_domain)
    }

    async fn search_topic_titles(&self, user: UserId, phrase: &str, limit: u32) -> StoreResult<Vec<Topic>> {
        let escaped: String = phrase
            .to_lowercase()
            .chars()
            .flat_map(|c| if matches!(c, '%' | '_' | '\\') { vec!['\\', c] } else { vec![c] })
            .collect();
        let rows = on_pool!(&self.pools, read, "search_topic_titles", |pool| {
            sqlx::query_as::<_, TopicRow>(
                "SELECT id, user_id, assistant_id, title, active_leaf_id, pinned, created_at, updated_at FROM topics \
                 WHERE user_id = $1 AND LOWER(title) LIKE $2 ESCAPE '\\' ORDER BY updated_at DESC, id DESC LIMIT $3",
            )
            .bind(user.to_string())
            .bind(format!("%{escaped}%"))
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, TopicRow::into_domain)
    }

    async fn index_unindexed(&self, limit: u32) -> StoreResult<u64> {
        let pending: Vec<(String, String, String)> = on_pool!(&self.pools, read, "unindexed_messages", |pool| {
            sqlx::query_as(sql_of(&pool).unindexed).bind(i64::from(limit)).fetch_all(pool).await
        })
        .map_err(store_error)?;
        let mut done = 0;
        for (message, user, content) in pending {
            let user: UserId = id("messages", "user_id", user)?;
            on_pool!(&self.pools, write, "index_message", |pool| index_message!(pool, user, message, &content))
                .map_err(store_error)?;
            done += 1;
        }
        Ok(done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_quote_every_term_and_require_the_owner() {
        let user = UserId::new();
        let owner = owner_term(user);
        let terms = vec!["grow".to_owned(), "研发".to_owned(), "a\"b'c".to_owned()];
        let sqlite = <sqlx::Sqlite as SearchSql>::SQL.query(user, &terms);
        assert_eq!(sqlite, format!("\"{owner}\" \"grow\" \"研发\" \"a\"\"b'c\""));
        let postgres = <sqlx::Postgres as SearchSql>::SQL.query(user, &terms);
        assert_eq!(postgres, format!("'{owner}' & 'grow' & '研发' & 'a\"b''c'"));
        let many: Vec<String> = (0..100).map(|n| format!("t{n}")).collect();
        assert_eq!(<sqlx::Sqlite as SearchSql>::SQL.query(user, &many).matches(' ').count(), MAX_QUERY_TERMS);
        assert!(terms_of(user, "Spending grows: 研发投入").ends_with(" spend grow 研发 发投 投入"));
    }
}
