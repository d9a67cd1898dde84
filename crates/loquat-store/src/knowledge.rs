//! `KnowledgeStore` for `SqlStore`: knowledge bases, their files and chunks, the assistants'
//! knowledge and answers' sources; and the rows the reading queue (`ingest.rs`) shares.

use async_trait::async_trait;
use loquat_core::domain::{IngestState, Ingestion, KnowledgeBase, Role, Source, StoredChunk, StoredFile};
use loquat_core::id::{AssistantId, FileId, KnowledgeBaseId, MessageId, TopicId, UserId};
use loquat_core::store::{KnowledgeStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::files::{FileRow, joined_file_columns};
use crate::pool::{execute, on_pool, store_error};
use crate::rows::{convert_all, count, id};

/// Queues a file's reading (`$1` file, `$2` user, `$3` now); nothing when it has one.
pub(crate) const QUEUE_INGESTION: &str = "INSERT INTO file_ingest (file_id, user_id, state, updated_at) \
    VALUES ($1, $2, 'queued', $3) ON CONFLICT (file_id) DO NOTHING";
/// Moves on the revision of the knowledge bases holding file `$1`.
pub(crate) const BUMP_BASES_OF_FILE: &str = "UPDATE knowledge_bases SET revision = revision + 1 \
    WHERE id IN (SELECT knowledge_base_id FROM knowledge_base_files WHERE file_id = $1)";

macro_rules! chunk_columns {
    () => {
        "c.id, c.file_id, c.user_id, c.seq, c.text, c.headings, c.page_start, c.page_end, c.tokens, c.embedding"
    };
}
pub(crate) use chunk_columns;

#[derive(sqlx::FromRow)]
pub(crate) struct IngestRow {
    file_id: String,
    state: String,
    error: Option<String>,
    progress: i64,
    pages: Option<i64>,
    chunks: i64,
    embedding_model: Option<String>,
    updated_at: i64,
}

impl IngestRow {
    pub(crate) fn into_domain(self) -> StoreResult<Ingestion> {
        Ok(Ingestion {
            file_id: id("file_ingest", "file_id", self.file_id)?,
            state: IngestState::parse(&self.state)
                .ok_or_else(|| crate::rows::corrupt("file_ingest", "state", &self.state))?,
            error: self.error,
            progress: count("file_ingest", "progress", self.progress.clamp(0, 100))?,
            pages: self.pages.map(|pages| count("file_ingest", "pages", pages)).transpose()?,
            chunks: count("file_ingest", "chunks", self.chunks)?,
            embedding_model: self.embedding_model,
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct ChunkRow {
    id: String,
    file_id: String,
    user_id: String,
    seq: i64,
    text: String,
    headings: String,
    page_start: Option<i64>,
    page_end: Option<i64>,
    tokens: i64,
    embedding: Option<Vec<u8>>,
}

impl ChunkRow {
    pub(crate) fn into_domain(self) -> StoreResult<StoredChunk> {
        let page = |value: Option<i64>| value.map(|page| count("chunks", "page", page)).transpose();
        Ok(StoredChunk {
            id: id("chunks", "id", self.id)?,
            file_id: id("chunks", "file_id", self.file_id)?,
            user_id: id("chunks", "user_id", self.user_id)?,
            seq: count("chunks", "seq", self.seq)?,
            text: self.text,
            headings: self.headings,
            page_start: page(self.page_start)?,
            page_end: page(self.page_end)?,
            tokens: count("chunks", "tokens", self.tokens)?,
            embedding: self.embedding.map(|bytes| decode_vector(&bytes)),
        })
    }
}

#[derive(sqlx::FromRow)]
struct NamedChunkRow {
    #[sqlx(flatten)]
    chunk: ChunkRow,
    file_name: String,
}

#[derive(sqlx::FromRow)]
struct BaseRow {
    id: String,
    user_id: String,
    name: String,
    description: String,
    revision: i64,
    shared_with: Option<String>,
    created_at: i64,
    updated_at: i64,
}

/// The columns of a knowledge base, in `BaseRow`'s order.
macro_rules! base_columns {
    () => {
        "id, user_id, name, description, revision, shared_with, created_at, updated_at"
    };
}

impl BaseRow {
    fn into_domain(self) -> StoreResult<KnowledgeBase> {
        Ok(KnowledgeBase {
            id: id("knowledge_bases", "id", self.id)?,
            user_id: id("knowledge_bases", "user_id", self.user_id)?,
            name: self.name,
            description: self.description,
            revision: self.revision,
            shared_with: self.shared_with,
            created_at: Timestamp(self.created_at),
            updated_at: Timestamp(self.updated_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    message_id: String,
    number: i64,
    file_id: Option<String>,
    file_name: String,
    page: Option<i64>,
    page_end: Option<i64>,
    headings: String,
    text: String,
    url: Option<String>,
}

impl SourceRow {
    fn into_domain(self) -> StoreResult<(MessageId, Source)> {
        let source = Source {
            number: count("message_sources", "number", self.number)?,
            file_id: self.file_id.map(|file| id("message_sources", "file_id", file)).transpose()?,
            file_name: self.file_name,
            page: self.page.map(|page| count("message_sources", "page", page)).transpose()?,
            page_end: self.page_end.map(|page| count("message_sources", "page_end", page)).transpose()?,
            headings: self.headings,
            text: self.text,
            url: self.url,
        };
        Ok((id("message_sources", "message_id", self.message_id)?, source))
    }
}

#[derive(sqlx::FromRow)]
struct FileWithIngestRow {
    #[sqlx(flatten)]
    file: FileRow,
    state: Option<String>,
    error: Option<String>,
    progress: Option<i64>,
    pages: Option<i64>,
    chunks: Option<i64>,
    embedding_model: Option<String>,
    ingest_updated_at: Option<i64>,
}

/// Vectors are stored as little-endian f32s.
pub(crate) fn encode_vector(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|value| value.to_le_bytes()).collect()
}

fn decode_vector(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|four| f32::from_le_bytes([four[0], four[1], four[2], four[3]])).collect()
}

#[async_trait]
impl KnowledgeStore for SqlStore {
    async fn insert_knowledge_base(&self, base: &KnowledgeBase) -> StoreResult<()> {
        execute!(
            &self.pools,
            "insert_knowledge_base",
            "INSERT INTO knowledge_bases (id, user_id, name, description, revision, shared_with, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            base.id.to_string(),
            base.user_id.to_string(),
            &base.name,
            &base.description,
            base.revision,
            base.shared_with.as_deref(),
            base.created_at.as_millis(),
            base.updated_at.as_millis(),
        )?;
        Ok(())
    }

    async fn list_knowledge_bases(&self, user: UserId) -> StoreResult<Vec<KnowledgeBase>> {
        let rows = on_pool!(&self.pools, read, "list_knowledge_bases", |pool| {
            sqlx::query_as::<_, BaseRow>(concat!(
                "SELECT ",
                base_columns!(),
                " FROM knowledge_bases WHERE user_id = $1 ORDER BY created_at, id"
            ))
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, BaseRow::into_domain)
    }

    async fn get_knowledge_base(&self, user: UserId, base: KnowledgeBaseId) -> StoreResult<Option<KnowledgeBase>> {
        let row = on_pool!(&self.pools, read, "get_knowledge_base", |pool| {
            sqlx::query_as::<_, BaseRow>(concat!(
                "SELECT ",
                base_columns!(),
                " FROM knowledge_bases WHERE id = $1 AND user_id = $2"
            ))
            .bind(base.to_string())
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(BaseRow::into_domain).transpose()
    }

    async fn readable_knowledge_bases(&self, user: UserId, role: Role) -> StoreResult<Vec<KnowledgeBase>> {
        let rows = on_pool!(&self.pools, read, "readable_knowledge_bases", |pool| {
            sqlx::query_as::<_, BaseRow>(concat!(
                "SELECT ",
                base_columns!(),
                " FROM knowledge_bases WHERE user_id = $1 OR shared_with = 'everyone' OR shared_with = $2 \
                 ORDER BY created_at, id"
            ))
            .bind(user.to_string())
            .bind(role.as_str())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, BaseRow::into_domain)
    }

    async fn get_readable_knowledge_base(
        &self,
        user: UserId,
        role: Role,
        base: KnowledgeBaseId,
    ) -> StoreResult<Option<KnowledgeBase>> {
        let row = on_pool!(&self.pools, read, "get_readable_knowledge_base", |pool| {
            sqlx::query_as::<_, BaseRow>(concat!(
                "SELECT ",
                base_columns!(),
                " FROM knowledge_bases WHERE id = $1 AND (user_id = $2 OR shared_with = 'everyone' OR shared_with = $3)"
            ))
            .bind(base.to_string())
            .bind(user.to_string())
            .bind(role.as_str())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        row.map(BaseRow::into_domain).transpose()
    }

    async fn shared_knowledge_bases(&self) -> StoreResult<Vec<KnowledgeBase>> {
        let rows = on_pool!(&self.pools, read, "shared_knowledge_bases", |pool| {
            sqlx::query_as::<_, BaseRow>(concat!(
                "SELECT ",
                base_columns!(),
                " FROM knowledge_bases WHERE shared_with IS NOT NULL ORDER BY created_at, id"
            ))
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, BaseRow::into_domain)
    }

    async fn set_knowledge_sharing(
        &self,
        user: UserId,
        base: KnowledgeBaseId,
        shared_with: Option<&str>,
    ) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "set_knowledge_sharing",
            "UPDATE knowledge_bases SET shared_with = $1 WHERE id = $2 AND user_id = $3",
            shared_with,
            base.to_string(),
            user.to_string(),
        )?;
        Ok(changed > 0)
    }

    async fn update_knowledge_base(
        &self,
        user: UserId,
        base: KnowledgeBaseId,
        name: &str,
        description: &str,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "update_knowledge_base",
            "UPDATE knowledge_bases SET name = $1, description = $2, updated_at = $3 WHERE id = $4 AND user_id = $5",
            name,
            description,
            now.as_millis(),
            base.to_string(),
            user.to_string(),
        )?;
        Ok(changed > 0)
    }

    async fn delete_knowledge_base(&self, user: UserId, base: KnowledgeBaseId) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "delete_knowledge_base",
            "DELETE FROM knowledge_bases WHERE id = $1 AND user_id = $2",
            base.to_string(),
            user.to_string(),
        )?;
        Ok(changed > 0)
    }

    async fn add_knowledge_file(
        &self,
        user: UserId,
        base: KnowledgeBaseId,
        file: FileId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (user, base, file) = (user.to_string(), base.to_string(), file.to_string());
        on_pool!(&self.pools, write, "add_knowledge_file", |pool| async {
            let mut tx = pool.begin().await?;
            // Both must be the user's: the insert selects them.
            let added = sqlx::query(
                "INSERT INTO knowledge_base_files (knowledge_base_id, file_id, user_id, added_at) \
                 SELECT k.id, f.id, f.user_id, $1 FROM knowledge_bases AS k JOIN files AS f ON f.user_id = k.user_id \
                 WHERE k.id = $2 AND f.id = $3 AND k.user_id = $4 ON CONFLICT DO NOTHING",
            )
            .bind(now.as_millis())
            .bind(&base)
            .bind(&file)
            .bind(&user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if added > 0 {
                sqlx::query(QUEUE_INGESTION).bind(&file).bind(&user).bind(now.as_millis()).execute(&mut *tx).await?;
                sqlx::query("UPDATE knowledge_bases SET revision = revision + 1, updated_at = $1 WHERE id = $2")
                    .bind(now.as_millis())
                    .bind(&base)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(added > 0)
        }
        .await)
        .map_err(store_error)
    }

    async fn remove_knowledge_file(
        &self,
        user: UserId,
        base: KnowledgeBaseId,
        file: FileId,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let (user, base, file) = (user.to_string(), base.to_string(), file.to_string());
        on_pool!(&self.pools, write, "remove_knowledge_file", |pool| async {
            let mut tx = pool.begin().await?;
            let removed = sqlx::query(
                "DELETE FROM knowledge_base_files WHERE knowledge_base_id = $1 AND file_id = $2 AND user_id = $3",
            )
            .bind(&base)
            .bind(&file)
            .bind(&user)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if removed > 0 {
                sqlx::query("UPDATE knowledge_bases SET revision = revision + 1, updated_at = $1 WHERE id = $2")
                    .bind(now.as_millis())
                    .bind(&base)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(removed > 0)
        }
        .await)
        .map_err(store_error)
    }

    async fn knowledge_files(
        &self,
        user: UserId,
        base: KnowledgeBaseId,
    ) -> StoreResult<Vec<(StoredFile, Option<Ingestion>)>> {
        let rows = on_pool!(&self.pools, read, "knowledge_files", |pool| {
            sqlx::query_as::<_, FileWithIngestRow>(concat!(
                "SELECT ",
                joined_file_columns!(),
                ", i.state, i.error, i.progress, i.pages, i.chunks, i.embedding_model, i.updated_at AS ingest_updated_at \
                 FROM knowledge_base_files AS kf JOIN files AS f ON f.id = kf.file_id \
                 LEFT JOIN file_ingest AS i ON i.file_id = f.id \
                 WHERE kf.knowledge_base_id = $1 AND kf.user_id = $2 AND f.user_id = $2 \
                 ORDER BY kf.added_at DESC, f.id"
            ))
            .bind(base.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, |row| {
            let file_id = row.file.id.clone();
            let ingestion = match (row.state, row.ingest_updated_at) {
                (Some(state), Some(updated_at)) => Some(
                    IngestRow {
                        file_id,
                        state,
                        error: row.error,
                        progress: row.progress.unwrap_or(0),
                        pages: row.pages,
                        chunks: row.chunks.unwrap_or(0),
                        embedding_model: row.embedding_model,
                        updated_at,
                    }
                    .into_domain()?,
                ),
                _ => None,
            };
            Ok((row.file.into_domain()?, ingestion))
        })
    }

    async fn knowledge_chunks(&self, user: UserId, base: KnowledgeBaseId) -> StoreResult<Vec<(StoredChunk, String)>> {
        let rows = on_pool!(&self.pools, read, "knowledge_chunks", |pool| {
            sqlx::query_as::<_, NamedChunkRow>(concat!(
                "SELECT ",
                chunk_columns!(),
                ", f.name AS file_name FROM knowledge_base_files AS kf JOIN files AS f ON f.id = kf.file_id \
                 JOIN chunks AS c ON c.file_id = f.id \
                 WHERE kf.knowledge_base_id = $1 AND kf.user_id = $2 AND c.user_id = $2 ORDER BY c.file_id, c.seq"
            ))
            .bind(base.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, |row| Ok((row.chunk.into_domain()?, row.file_name)))
    }

    async fn assistant_knowledge(&self, user: UserId, assistant: AssistantId) -> StoreResult<Vec<KnowledgeBaseId>> {
        let rows: Vec<String> = on_pool!(&self.pools, read, "assistant_knowledge", |pool| {
            sqlx::query_scalar(
                "SELECT knowledge_base_id FROM assistant_knowledge WHERE assistant_id = $1 AND user_id = $2 \
                 ORDER BY knowledge_base_id",
            )
            .bind(assistant.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, |base| id("assistant_knowledge", "knowledge_base_id", base))
    }

    async fn set_assistant_knowledge(
        &self,
        user: UserId,
        role: Role,
        assistant: AssistantId,
        bases: &[KnowledgeBaseId],
    ) -> StoreResult<()> {
        let (user, assistant) = (user.to_string(), assistant.to_string());
        on_pool!(&self.pools, write, "set_assistant_knowledge", |pool| async {
            let mut tx = pool.begin().await?;
            sqlx::query("DELETE FROM assistant_knowledge WHERE assistant_id = $1 AND user_id = $2")
                .bind(&assistant)
                .bind(&user)
                .execute(&mut *tx)
                .await?;
            for base in bases {
                sqlx::query(
                    "INSERT INTO assistant_knowledge (assistant_id, knowledge_base_id, user_id) \
                     SELECT a.id, k.id, a.user_id FROM assistants AS a JOIN knowledge_bases AS k \
                     ON (k.user_id = a.user_id OR k.shared_with = 'everyone' OR k.shared_with = $4) \
                     WHERE a.id = $1 AND k.id = $2 AND a.user_id = $3 ON CONFLICT DO NOTHING",
                )
                .bind(&assistant)
                .bind(base.to_string())
                .bind(&user)
                .bind(role.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok::<_, sqlx::Error>(())
        }
        .await)
        .map_err(store_error)
    }

    async fn topic_sources(&self, user: UserId, topic: TopicId) -> StoreResult<Vec<(MessageId, Source)>> {
        let rows = on_pool!(&self.pools, read, "topic_sources", |pool| {
            sqlx::query_as::<_, SourceRow>(
                "SELECT s.message_id, s.number, s.file_id, s.file_name, s.page, s.page_end, s.headings, s.text, s.url \
                 FROM message_sources AS s JOIN messages AS m ON m.id = s.message_id \
                 WHERE m.topic_id = $1 AND m.user_id = $2 AND s.user_id = $2 ORDER BY s.message_id, s.number",
            )
            .bind(topic.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, SourceRow::into_domain)
    }

    async fn message_source(&self, user: UserId, message: MessageId, number: u32) -> StoreResult<Option<Source>> {
        let row = on_pool!(&self.pools, read, "message_source", |pool| {
            sqlx::query_as::<_, SourceRow>(
                "SELECT message_id, number, file_id, file_name, page, page_end, headings, text, url FROM message_sources \
                 WHERE message_id = $1 AND number = $2 AND user_id = $3",
            )
            .bind(message.to_string())
            .bind(i64::from(number))
            .bind(user.to_string())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        Ok(row.map(SourceRow::into_domain).transpose()?.map(|(_, source)| source))
    }
}
