//! `FileStore` for `SqlStore`: the `files` table, one row per uploaded file, at most one per
//! owner and content hash; an owner's inserts are serialized on their `users` row so a storage
//! quota holds when uploads race.

use async_trait::async_trait;
use loquat_core::domain::{StoredFile, User};
use loquat_core::id::{FileId, MessageId, TopicId, UserId};
use loquat_core::store::{FileInsert, FileStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::pool::{on_pool, store_error};
use crate::rows::{UserRow, convert_all, count, id};

/// The columns of a file, in `FileRow`'s order (a macro, so queries stay `&'static str`).
macro_rules! columns {
    () => {
        "id, user_id, name, mime, size, sha256, storage_key, created_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct FileRow {
    pub(crate) id: String,
    user_id: String,
    name: String,
    mime: String,
    size: i64,
    sha256: String,
    storage_key: String,
    created_at: i64,
}

impl FileRow {
    pub(crate) fn into_domain(self) -> StoreResult<StoredFile> {
        Ok(StoredFile {
            id: id("files", "id", self.id)?,
            user_id: id("files", "user_id", self.user_id)?,
            name: self.name,
            mime: self.mime,
            size: count("files", "size", self.size)?,
            sha256: self.sha256,
            storage_key: self.storage_key,
            created_at: Timestamp(self.created_at),
        })
    }
}

/// A file attached to a message.
#[derive(sqlx::FromRow)]
struct AttachedRow {
    message_id: String,
    #[sqlx(flatten)]
    file: FileRow,
}

/// The columns of a file joined as `f`, for the queries on attachments and knowledge bases.
macro_rules! joined_file_columns {
    () => {
        "f.id, f.user_id, f.name, f.mime, f.size, f.sha256, f.storage_key, f.created_at"
    };
}
pub(crate) use joined_file_columns;

/// An owner with how many files they keep and their size.
#[derive(sqlx::FromRow)]
struct OwnerTotalsRow {
    #[sqlx(flatten)]
    user: UserRow,
    files: i64,
    bytes: i64,
}

#[async_trait]
impl FileStore for SqlStore {
    async fn insert_file(&self, file: &StoredFile, quota_bytes: Option<u64>, ingest: bool) -> StoreResult<FileInsert> {
        let size = i64::try_from(file.size).unwrap_or(i64::MAX);
        let user = file.user_id.to_string();
        let outcome = on_pool!(&self.pools, write, "insert_file", |pool| async {
            let mut tx = pool.begin().await?;
            // Holds the owner's row until the end: on PostgreSQL, concurrent inserts of one
            // owner wait here and then see each other's files (SQLite has one writer anyway).
            sqlx::query("UPDATE users SET id = id WHERE id = $1").bind(&user).execute(&mut *tx).await?;
            let existing = sqlx::query_as::<_, FileRow>(concat!(
                "SELECT ",
                columns!(),
                " FROM files WHERE user_id = $1 AND sha256 = $2"
            ))
            .bind(&user)
            .bind(&file.sha256)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(existing) = existing {
                return Ok(Err(existing));
            }
            if let Some(quota) = quota_bytes {
                let used: i64 =
                    sqlx::query_scalar("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE user_id = $1")
                        .bind(&user)
                        .fetch_one(&mut *tx)
                        .await?;
                if u64::try_from(used).unwrap_or(u64::MAX).saturating_add(file.size) > quota {
                    return Ok(Ok(false));
                }
            }
            sqlx::query(concat!("INSERT INTO files (", columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"))
                .bind(file.id.to_string())
                .bind(&user)
                .bind(&file.name)
                .bind(&file.mime)
                .bind(size)
                .bind(&file.sha256)
                .bind(&file.storage_key)
                .bind(file.created_at.as_millis())
                .execute(&mut *tx)
                .await?;
            if ingest {
                sqlx::query(crate::knowledge::QUEUE_INGESTION)
                    .bind(file.id.to_string())
                    .bind(&user)
                    .bind(file.created_at.as_millis())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(Ok(true))
        }
        .await)
        .map_err(store_error)?;
        match outcome {
            Ok(true) => Ok(FileInsert::Inserted),
            Ok(false) => Ok(FileInsert::OverQuota),
            Err(row) => Ok(FileInsert::Existing(row.into_domain()?)),
        }
    }

    async fn get_file(&self, user: UserId, file: FileId) -> StoreResult<Option<StoredFile>> {
        let row = on_pool!(&self.pools, read, "get_file", |pool| {
            sqlx::query_as::<_, FileRow>(concat!("SELECT ", columns!(), " FROM files WHERE id = $1 AND user_id = $2"))
                .bind(file.to_string())
                .bind(user.to_string())
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(FileRow::into_domain).transpose()
    }

    async fn list_files(&self, user: UserId) -> StoreResult<Vec<StoredFile>> {
        let rows = on_pool!(&self.pools, read, "list_files", |pool| {
            sqlx::query_as::<_, FileRow>(concat!(
                "SELECT ",
                columns!(),
                " FROM files WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
            ))
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, FileRow::into_domain)
    }

    async fn delete_file(&self, user: UserId, file: FileId) -> StoreResult<Option<StoredFile>> {
        let row = on_pool!(&self.pools, write, "delete_file", |pool| async {
            let mut tx = pool.begin().await?;
            // Knowledge bases that held it change: their search indexes are rebuilt.
            sqlx::query(crate::knowledge::BUMP_BASES_OF_FILE).bind(file.to_string()).execute(&mut *tx).await?;
            let row = sqlx::query_as::<_, FileRow>(concat!(
                "DELETE FROM files WHERE id = $1 AND user_id = $2 RETURNING ",
                columns!()
            ))
            .bind(file.to_string())
            .bind(user.to_string())
            .fetch_optional(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(row)
        }
        .await)
        .map_err(store_error)?;
        row.map(FileRow::into_domain).transpose()
    }

    async fn user_file_bytes(&self, user: UserId) -> StoreResult<u64> {
        let total = on_pool!(&self.pools, read, "user_file_bytes", |pool| {
            sqlx::query_scalar::<_, i64>("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE user_id = $1")
                .bind(user.to_string())
                .fetch_one(pool)
                .await
        })
        .map_err(store_error)?;
        count("files", "size", total)
    }

    async fn file_totals_by_user(&self) -> StoreResult<Vec<(User, u64, u64)>> {
        let rows = on_pool!(&self.pools, read, "file_totals_by_user", |pool| {
            sqlx::query_as::<_, OwnerTotalsRow>(
                "SELECT u.id, u.name, u.email, u.role, u.disabled, u.locale, u.theme, u.created_at, \
                 u.last_active_at, u.named_role, t.files, t.bytes FROM (SELECT user_id, CAST(COUNT(*) AS BIGINT) AS files, \
                 CAST(SUM(size) AS BIGINT) AS bytes FROM files GROUP BY user_id) AS t \
                 JOIN users AS u ON u.id = t.user_id ORDER BY t.bytes DESC, u.id",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        rows.into_iter()
            .map(|row| {
                let files = count("files", "count", row.files)?;
                Ok((row.user.into_domain()?, files, count("files", "size", row.bytes)?))
            })
            .collect()
    }

    async fn topic_message_files(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<(MessageId, StoredFile)>> {
        let rows = on_pool!(&self.pools, read, "topic_message_files", |pool| {
            sqlx::query_as::<_, AttachedRow>(concat!(
                "SELECT mf.message_id, ",
                joined_file_columns!(),
                " FROM message_files AS mf JOIN messages AS m ON m.id = mf.message_id \
                 JOIN files AS f ON f.id = mf.file_id \
                 WHERE m.topic_id = $1 AND m.user_id = $2 AND mf.user_id = $2 AND f.user_id = $2 \
                 ORDER BY mf.message_id, mf.position"
            ))
            .bind(topic.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, |row| Ok((id("message_files", "message_id", row.message_id)?, row.file.into_domain()?)))
    }

    async fn message_files(&self, user: UserId, message: MessageId) -> StoreResult<Vec<StoredFile>> {
        let rows = on_pool!(&self.pools, read, "message_files", |pool| {
            sqlx::query_as::<_, FileRow>(concat!(
                "SELECT ",
                joined_file_columns!(),
                " FROM message_files AS mf JOIN files AS f ON f.id = mf.file_id \
                 WHERE mf.message_id = $1 AND mf.user_id = $2 AND f.user_id = $2 ORDER BY mf.position"
            ))
            .bind(message.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, FileRow::into_domain)
    }

    async fn file_message_counts(&self, user: UserId) -> StoreResult<Vec<(FileId, u64)>> {
        let rows: Vec<(String, i64)> = on_pool!(&self.pools, read, "file_message_counts", |pool| {
            sqlx::query_as(
                "SELECT file_id, CAST(COUNT(*) AS BIGINT) FROM message_files WHERE user_id = $1 GROUP BY file_id",
            )
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, |(file, uses)| {
            Ok((id("message_files", "file_id", file)?, count("message_files", "count", uses)?))
        })
    }
}
