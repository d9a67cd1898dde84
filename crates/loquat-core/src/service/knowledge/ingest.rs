//! Reading documents in the background: any node claims the oldest waiting document (one node
//! per document; a node that stops beating loses its claims after `STALE_AFTER`), extracts
//! its text, cuts it into chunks, embeds them when an embedding model is configured, and
//! stores the chunks and the state `ready` together — or `failed` with the reason. A restart
//! resumes: queued documents wait in the store, and claims of the dead process go stale.

use std::sync::Arc;
use std::time::Duration;

use loquat_docs::extract::{Format, Limits};
use loquat_docs::{ChunkOptions, chunk_document};
use tokio::sync::Semaphore;

use super::{EmbeddingModel, Knowledge};
use crate::domain::{IngestState, StoredChunk, StoredFile};
use crate::error::CoreError;
use crate::id::ChunkId;
use crate::service::materials::extract_error;
use crate::time::Timestamp;

/// Documents read at once by one node.
const CONCURRENCY: usize = 2;
/// How often a running reading tells the store it is alive.
const HEARTBEAT: Duration = Duration::from_secs(15);
/// A claim whose node has been silent this long is taken over.
const STALE_AFTER: Duration = Duration::from_secs(120);
/// How often the queue is looked at when nobody wakes the worker.
const POLL: Duration = Duration::from_secs(5);
/// The longest one document's text extraction may take.
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Chunks embedded per request.
const EMBED_BATCH: usize = 64;

/// Why a reading failed, as stored (a code the pages translate).
struct Failure(String);

impl From<CoreError> for Failure {
    fn from(error: CoreError) -> Self {
        match error {
            CoreError::Invalid { code, .. } => Failure(code.to_owned()),
            CoreError::Provider(_) => Failure("embedding_failed".to_owned()),
            CoreError::Files(_) => Failure("storage_failed".to_owned()),
            other => Failure(format!("internal: {other}")),
        }
    }
}

impl Knowledge {
    /// Runs the reading worker until the task is dropped.
    pub async fn run_ingestion(self) {
        let permits = Arc::new(Semaphore::new(CONCURRENCY));
        // The embedding model this node last queued documents for (`None` before the first look).
        let mut embedding_for: Option<Option<String>> = None;
        loop {
            self.follow_embedding_model(&mut embedding_for).await;
            let Ok(permit) = permits.clone().acquire_owned().await else { return };
            let now = Timestamp::now();
            let stale_before = Timestamp(now.as_millis() - STALE_AFTER.as_millis() as i64);
            match self.store.claim_ingestion(&self.node, now, stale_before).await {
                Ok(Some(file)) => {
                    let worker = self.clone();
                    tokio::spawn(async move {
                        worker.ingest(file).await;
                        drop(permit);
                    });
                }
                Ok(None) => {
                    drop(permit);
                    let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
                }
                Err(error) => {
                    drop(permit);
                    tracing::warn!(%error, "could not look for documents to read");
                    tokio::time::sleep(POLL).await;
                }
            }
        }
    }

    /// When the embedding model is not the one this node last saw (at start, or after the
    /// administrator changed it here or on another node), queues the documents embedded with
    /// another model. Every node does it once per change; the queueing is idempotent.
    async fn follow_embedding_model(&self, last: &mut Option<Option<String>>) {
        let current = match self.embedding_model().await {
            Ok(model) => model.as_ref().map(EmbeddingModel::name),
            Err(error) => {
                tracing::warn!(%error, "could not read the embedding model");
                return;
            }
        };
        if last.as_ref() == Some(&current) {
            return;
        }
        match self.requeue_for_embedding_model().await {
            Ok(0) => {}
            Ok(queued) => tracing::info!(queued, model = ?current, "documents queued to be embedded again"),
            Err(error) => {
                tracing::warn!(%error, "could not queue documents to embed again");
                return;
            }
        }
        *last = Some(current);
    }

    /// Reads one claimed document, beating its heart until done.
    async fn ingest(&self, file: StoredFile) {
        let started = std::time::Instant::now();
        let heart = {
            let store = self.store.clone();
            let (node, id) = (self.node.clone(), file.id);
            tokio::spawn(async move {
                let mut beat = tokio::time::interval(HEARTBEAT);
                beat.tick().await;
                loop {
                    beat.tick().await;
                    // Progress is written by the reading; this only keeps the claim alive.
                    let _ = store.update_ingestion(id, &node, IngestState::Indexing, 50, Timestamp::now()).await;
                }
            })
        };
        let outcome = self.read(&file).await;
        heart.abort();
        let now = Timestamp::now();
        let written = match outcome {
            Ok((chunks, pages, model)) => {
                let count = chunks.len();
                let written =
                    self.store.finish_ingestion(file.id, &self.node, &chunks, pages, model.as_deref(), now).await;
                tracing::info!(file = %file.id, chunks = count, elapsed_ms = started.elapsed().as_millis() as u64, "document read");
                // The model may have changed while this document was read, after the change
                // queued the others: read the setting now, and queue this one again if so.
                if written.is_ok() && self.model_changed_since(model.as_deref()).await {
                    let _ = self.requeue_for_embedding_model().await;
                }
                written
            }
            Err(Failure(reason)) => {
                tracing::info!(file = %file.id, %reason, "a document could not be read");
                self.store.fail_ingestion(file.id, &self.node, &reason, now).await
            }
        };
        if let Err(error) = written {
            tracing::warn!(file = %file.id, %error, "could not record a document's reading");
        }
    }

    async fn model_changed_since(&self, used: Option<&str>) -> bool {
        match self.instance.reload().await {
            Ok(snapshot) => self.model_in(&snapshot).as_ref().map(EmbeddingModel::name).as_deref() != used,
            Err(_) => false,
        }
    }

    async fn read(&self, file: &StoredFile) -> Result<(Vec<StoredChunk>, Option<u32>, Option<String>), Failure> {
        let progress = |state, percent| async move {
            let _ = self.store.update_ingestion(file.id, &self.node, state, percent, Timestamp::now()).await;
        };
        let format = Format::of(&file.mime, &file.name).ok_or_else(|| Failure("file_unreadable".into()))?;
        progress(IngestState::Reading, 5).await;
        let bytes = self.blobs.read(&file.storage_key).await.map_err(|_| Failure("storage_failed".into()))?;
        let name = file.name.clone();
        let reading = tokio::task::spawn_blocking(move || {
            let document = loquat_docs::extract(&bytes, format, &Limits::default())?;
            let pieces = chunk_document(&document, ChunkOptions::default());
            Ok::<_, loquat_docs::ExtractError>((document.pages, pieces))
        });
        // A crafted file that keeps the reader busy forever fails instead of holding a permit
        // (its thread is left to finish on its own).
        let (document, pieces) = tokio::time::timeout(READ_TIMEOUT, reading)
            .await
            .map_err(|_| Failure("file_unreadable".into()))?
            .map_err(|_| Failure("file_unreadable".into()))?
            .map_err(|error| Failure::from(extract_error(error, &name)))?;
        progress(IngestState::Indexing, 40).await;
        let mut chunks: Vec<StoredChunk> = pieces
            .into_iter()
            .enumerate()
            .map(|(seq, piece)| StoredChunk {
                id: ChunkId::new(),
                file_id: file.id,
                user_id: file.user_id,
                seq: seq as u32,
                text: piece.text,
                headings: piece.headings,
                page_start: piece.page_start,
                page_end: piece.page_end,
                tokens: piece.tokens as u32,
                embedding: None,
            })
            .collect();
        let Some(model) = self.embedding_model().await? else { return Ok((chunks, document, None)) };
        // Embedded with the owner's reach: their role's providers and their own keys.
        let owner = crate::service::existing_user(self.store.as_ref(), file.user_id).await?;
        let reach = self.providers.choices(&owner).await?.reach;
        let total = chunks.len().max(1);
        for start in (0..chunks.len()).step_by(EMBED_BATCH) {
            let end = (start + EMBED_BATCH).min(chunks.len());
            let inputs: Vec<String> = chunks[start..end].iter().map(StoredChunk::indexed_text).collect();
            let vectors = self.embed(&reach, &model, &inputs).await?;
            for (chunk, vector) in chunks[start..end].iter_mut().zip(vectors) {
                chunk.embedding = Some(vector);
            }
            progress(IngestState::Indexing, (40 + 55 * end / total) as u8).await;
        }
        Ok((chunks, document, Some(model.name())))
    }
}
