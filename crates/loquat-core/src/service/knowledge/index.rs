//! Each node's search indexes of knowledge bases: built from the store (the source of truth)
//! on first use and rebuilt when the knowledge base's revision moved on, so a change made on
//! any node is seen by every node's next search. An index holds each passage's text and place,
//! a BM25 keyword index over them and, when they were embedded, their vectors (normalised, so
//! similarity is a dot product). Keyword and vector rankings are fused by reciprocal rank.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use loquat_docs::search::{Index, Tokenizer, reciprocal_rank_fusion, top};

use crate::domain::KnowledgeBase;
use crate::error::CoreResult;
use crate::id::{FileId, KnowledgeBaseId, UserId};
use crate::store::Store;

/// Indexes kept per node; the least recently built goes first.
const CACHED_INDEXES: usize = 64;
/// How deep each ranking goes before fusion.
const CANDIDATES: usize = 40;

/// One passage as the index keeps it.
pub struct Passage {
    pub file_id: FileId,
    pub file_name: String,
    pub page: Option<u32>,
    pub headings: String,
    pub text: String,
    pub tokens: u32,
}

pub struct Hit {
    pub position: u32,
    pub score: f32,
}

/// A knowledge base's passages, searchable.
pub struct BuiltIndex {
    revision: i64,
    passages: Vec<Passage>,
    keywords: Index,
    /// The embedding model of the vectors (`None`: keyword search only).
    model: Option<String>,
    dimensions: usize,
    /// `dimensions` values per passage that has a vector, normalised.
    vectors: Vec<f32>,
    /// The passage of each vector.
    vector_passages: Vec<u32>,
}

impl BuiltIndex {
    pub fn build(revision: i64, rows: Vec<(crate::domain::StoredChunk, String)>) -> Self {
        let tokenizer = Tokenizer::default();
        let mut keywords = Index::new();
        let mut passages = Vec::with_capacity(rows.len());
        // The vectors' dimension is the most common one (a model change mid-way leaves others).
        let mut dimension_counts: HashMap<usize, usize> = HashMap::new();
        for (chunk, _) in &rows {
            if let Some(vector) = &chunk.embedding {
                *dimension_counts.entry(vector.len()).or_default() += 1;
            }
        }
        let dimensions = dimension_counts.into_iter().max_by_key(|(_, n)| *n).map_or(0, |(d, _)| d);
        let mut vectors = Vec::new();
        let mut vector_passages = Vec::new();
        for (chunk, file_name) in rows {
            let position = keywords.add(&tokenizer, &chunk.indexed_text());
            if let Some(vector) = chunk.embedding.as_ref().filter(|v| v.len() == dimensions && dimensions > 0) {
                let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
                vectors.extend(vector.iter().map(|x| x / norm));
                vector_passages.push(position);
            }
            passages.push(Passage {
                file_id: chunk.file_id,
                file_name,
                page: chunk.page_start,
                headings: chunk.headings,
                text: chunk.text,
                tokens: chunk.tokens,
            });
        }
        Self { revision, passages, keywords, model: None, dimensions, vectors, vector_passages }
    }

    fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model.filter(|_| !self.vector_passages.is_empty());
        self
    }

    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }

    pub fn len(&self) -> usize {
        self.passages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.passages.is_empty()
    }

    pub fn passage(&self, position: u32) -> &Passage {
        &self.passages[position as usize]
    }

    /// The best `limit` passages for `question`: by keywords, fused with by meaning when a
    /// question vector of the index's dimension is given.
    pub fn search(&self, question: &str, vector: Option<&[f32]>, limit: usize) -> Vec<Hit> {
        let tokenizer = Tokenizer::default();
        let keyword: Vec<u32> =
            self.keywords.search(&tokenizer, question, CANDIDATES).into_iter().map(|(doc, _)| doc).collect();
        let vector = vector.filter(|v| v.len() == self.dimensions && self.dimensions > 0);
        let Some(query) = vector else {
            // Keyword ranks as scores, so several bases' hits sort together.
            return keyword
                .into_iter()
                .take(limit)
                .enumerate()
                .map(|(rank, position)| Hit { position, score: 1.0 / (60.0 + rank as f32 + 1.0) })
                .collect();
        };
        let norm = query.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
        let similarities =
            self.vectors.chunks_exact(self.dimensions).zip(&self.vector_passages).map(|(row, &position)| {
                let dot: f32 = row.iter().zip(query).map(|(a, b)| a * b).sum();
                (position, dot / norm)
            });
        let semantic: Vec<u32> = top(similarities, CANDIDATES).into_iter().map(|(position, _)| position).collect();
        reciprocal_rank_fusion(&[keyword, semantic], 60.0, limit)
            .into_iter()
            .map(|(position, score)| Hit { position, score })
            .collect()
    }

    /// Bytes the index holds, about.
    pub fn memory_bytes(&self) -> usize {
        let passages: usize =
            self.passages.iter().map(|p| p.text.len() + p.headings.len() + p.file_name.len() + 64).sum();
        passages + self.keywords.memory_bytes() + self.vectors.len() * 4 + self.vector_passages.len() * 4
    }
}

/// An index's key: its owner and knowledge base.
type Key = (UserId, KnowledgeBaseId);
/// The cached indexes with their keys.
type Entries = Vec<(Key, Arc<BuiltIndex>)>;

/// The indexes of this node, the least recently built first.
#[derive(Clone, Default)]
pub struct IndexCache {
    inner: Arc<Mutex<Entries>>,
}

impl IndexCache {
    fn lookup(&self, key: (UserId, KnowledgeBaseId), revision: i64) -> Option<Arc<BuiltIndex>> {
        let cache = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.iter().find(|(k, index)| *k == key && index.revision == revision).map(|(_, index)| index.clone())
    }

    pub fn forget(&self, user: UserId, base: KnowledgeBaseId) {
        let mut cache = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.retain(|(key, _)| *key != (user, base));
    }

    /// The index of `base` at its current revision, built when this node has none.
    pub async fn get_or_build(
        &self,
        store: &dyn Store,
        user: UserId,
        base: &KnowledgeBase,
    ) -> CoreResult<Arc<BuiltIndex>> {
        let key = (user, base.id);
        if let Some(index) = self.lookup(key, base.revision) {
            return Ok(index);
        }
        let rows = store.knowledge_chunks(user, base.id).await?;
        // Every chunk of a file carries the same model's vectors; the store keeps that model
        // per file, and the ingestion writes the configured one: the index takes it from there.
        let model = store
            .knowledge_files(user, base.id)
            .await?
            .into_iter()
            .filter_map(|(_, ingestion)| ingestion.and_then(|i| i.embedding_model))
            .next();
        let revision = base.revision;
        let built = tokio::task::spawn_blocking(move || BuiltIndex::build(revision, rows).with_model(model))
            .await
            .map_err(|_| {
                let failed = "building a search index failed";
                crate::store::StoreError::new(crate::store::StoreErrorKind::Other, failed)
            })?;
        let built = Arc::new(built);
        let mut cache = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.retain(|(k, _)| *k != key);
        if cache.len() >= CACHED_INDEXES {
            cache.remove(0);
        }
        cache.push((key, built.clone()));
        Ok(built)
    }
}
