//! `IngestStore` for `SqlStore`: the reading queue (`file_ingest`) and documents' chunks.
//!
//! The queue is claimed by a conditional update: a node takes the oldest waiting job (or one
//! whose node stopped beating) only if it is still waiting when the update runs, so two nodes
//! never both take it; every later write of the job checks that the claim is still the node's.

use async_trait::async_trait;
use loquat_core::domain::{IngestState, Ingestion, StoredChunk, StoredFile};
use loquat_core::id::{FileId, UserId};
use loquat_core::store::{IngestStore, StoreResult};
use loquat_core::time::Timestamp;

use crate::SqlStore;
use crate::files::{FileRow, joined_file_columns};
use crate::knowledge::{BUMP_BASES_OF_FILE, ChunkRow, IngestRow, chunk_columns, encode_vector};
use crate::pool::{execute, on_pool, store_error};
use crate::rows::convert_all;

/// Waiting: queued, or claimed by a node whose heartbeat is older than `$3`.
macro_rules! waiting {
    () => {
        "(state = 'queued' OR (state IN ('reading', 'indexing') AND heartbeat_at < $3))"
    };
}

macro_rules! ingest_columns {
    () => {
        "file_id, state, error, progress, pages, chunks, embedding_model, updated_at"
    };
}

fn optional_i64(value: Option<u32>) -> Option<i64> {
    value.map(i64::from)
}

#[async_trait]
impl IngestStore for SqlStore {
    async fn claim_ingestion(
        &self,
        node: &str,
        now: Timestamp,
        stale_before: Timestamp,
    ) -> StoreResult<Option<StoredFile>> {
        let claimed: Option<String> = on_pool!(&self.pools, write, "claim_ingestion", |pool| {
            sqlx::query_scalar(concat!(
                "UPDATE file_ingest SET state = 'reading', progress = 0, error = NULL, node = $1, heartbeat_at = $2, \
                 updated_at = $2 WHERE file_id = (SELECT file_id FROM file_ingest WHERE ",
                waiting!(),
                " ORDER BY updated_at, file_id LIMIT 1) AND ",
                waiting!(),
                " RETURNING file_id"
            ))
            .bind(node)
            .bind(now.as_millis())
            .bind(stale_before.as_millis())
            .fetch_optional(pool)
            .await
        })
        .map_err(store_error)?;
        let Some(file) = claimed else { return Ok(None) };
        let row = on_pool!(&self.pools, write, "claim_ingestion", |pool| {
            sqlx::query_as::<_, FileRow>(concat!("SELECT ", joined_file_columns!(), " FROM files AS f WHERE f.id = $1"))
                .bind(&file)
                .fetch_optional(pool)
                .await
        })
        .map_err(store_error)?;
        row.map(FileRow::into_domain).transpose()
    }

    async fn update_ingestion(
        &self,
        file: FileId,
        node: &str,
        state: IngestState,
        progress: u8,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "update_ingestion",
            "UPDATE file_ingest SET state = $1, progress = $2, heartbeat_at = $3, updated_at = $3 \
             WHERE file_id = $4 AND node = $5 AND state IN ('reading', 'indexing')",
            state.as_str(),
            i64::from(progress),
            now.as_millis(),
            file.to_string(),
            node,
        )?;
        Ok(changed > 0)
    }

    async fn finish_ingestion(
        &self,
        file: FileId,
        node: &str,
        chunks: &[StoredChunk],
        pages: Option<u32>,
        embedding_model: Option<&str>,
        now: Timestamp,
    ) -> StoreResult<bool> {
        let file_id = file.to_string();
        on_pool!(&self.pools, write, "finish_ingestion", |pool| async {
            let mut tx = pool.begin().await?;
            let claimed = sqlx::query(
                "UPDATE file_ingest SET state = 'ready', progress = 100, error = NULL, pages = $1, chunks = $2, \
                 embedding_model = $3, node = NULL, heartbeat_at = NULL, updated_at = $4 \
                 WHERE file_id = $5 AND node = $6 AND state IN ('reading', 'indexing')",
            )
            .bind(optional_i64(pages))
            .bind(chunks.len() as i64)
            .bind(embedding_model)
            .bind(now.as_millis())
            .bind(&file_id)
            .bind(node)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if claimed == 0 {
                return Ok(false);
            }
            sqlx::query("DELETE FROM chunks WHERE file_id = $1").bind(&file_id).execute(&mut *tx).await?;
            for chunk in chunks {
                sqlx::query(
                    "INSERT INTO chunks (id, file_id, user_id, seq, text, headings, page_start, page_end, tokens, \
                     embedding) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(chunk.id.to_string())
                .bind(&file_id)
                .bind(chunk.user_id.to_string())
                .bind(i64::from(chunk.seq))
                .bind(&chunk.text)
                .bind(&chunk.headings)
                .bind(optional_i64(chunk.page_start))
                .bind(optional_i64(chunk.page_end))
                .bind(i64::from(chunk.tokens))
                .bind(chunk.embedding.as_deref().map(encode_vector))
                .execute(&mut *tx)
                .await?;
            }
            sqlx::query(BUMP_BASES_OF_FILE).bind(&file_id).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(true)
        }
        .await)
        .map_err(store_error)
    }

    async fn fail_ingestion(&self, file: FileId, node: &str, error: &str, now: Timestamp) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "fail_ingestion",
            "UPDATE file_ingest SET state = 'failed', error = $1, node = NULL, heartbeat_at = NULL, updated_at = $2 \
             WHERE file_id = $3 AND node = $4 AND state IN ('reading', 'indexing')",
            error,
            now.as_millis(),
            file.to_string(),
            node,
        )?;
        Ok(changed > 0)
    }

    async fn requeue_ingestion(&self, user: UserId, file: FileId, now: Timestamp) -> StoreResult<bool> {
        let changed = execute!(
            &self.pools,
            "requeue_ingestion",
            "UPDATE file_ingest SET state = 'queued', error = NULL, progress = 0, updated_at = $1 \
             WHERE file_id = $2 AND user_id = $3 AND state IN ('failed', 'ready')",
            now.as_millis(),
            file.to_string(),
            user.to_string(),
        )?;
        Ok(changed > 0)
    }

    async fn requeue_other_embeddings(&self, embedding_model: Option<&str>, now: Timestamp) -> StoreResult<u64> {
        execute!(
            &self.pools,
            "requeue_other_embeddings",
            "UPDATE file_ingest SET state = 'queued', progress = 0, updated_at = $1 WHERE state = 'ready' \
             AND chunks > 0 AND COALESCE(embedding_model, '') <> COALESCE($2, '')",
            now.as_millis(),
            embedding_model,
        )
    }

    async fn ingestions(&self, user: UserId) -> StoreResult<Vec<Ingestion>> {
        let rows = on_pool!(&self.pools, read, "ingestions", |pool| {
            sqlx::query_as::<_, IngestRow>(concat!(
                "SELECT ",
                ingest_columns!(),
                " FROM file_ingest WHERE user_id = $1"
            ))
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, IngestRow::into_domain)
    }

    async fn file_chunks(&self, user: UserId, file: FileId) -> StoreResult<Vec<StoredChunk>> {
        let rows = on_pool!(&self.pools, read, "file_chunks", |pool| {
            sqlx::query_as::<_, ChunkRow>(concat!(
                "SELECT ",
                chunk_columns!(),
                " FROM chunks AS c WHERE c.file_id = $1 AND c.user_id = $2 ORDER BY c.seq"
            ))
            .bind(file.to_string())
            .bind(user.to_string())
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        convert_all(rows, ChunkRow::into_domain)
    }

    async fn ingestion_counts(&self) -> StoreResult<Vec<(IngestState, Option<String>, u64)>> {
        let rows: Vec<(String, Option<String>, i64)> = on_pool!(&self.pools, read, "ingestion_counts", |pool| {
            sqlx::query_as(
                "SELECT state, embedding_model, COUNT(*) FROM file_ingest GROUP BY state, embedding_model \
                 ORDER BY state, embedding_model",
            )
            .fetch_all(pool)
            .await
        })
        .map_err(store_error)?;
        rows.into_iter()
            .map(|(state, model, count)| {
                let state =
                    IngestState::parse(&state).ok_or_else(|| crate::rows::corrupt("file_ingest", "state", &state))?;
                Ok((state, model, count.max(0) as u64))
            })
            .collect()
    }
}
