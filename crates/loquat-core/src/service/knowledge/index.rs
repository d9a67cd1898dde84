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

/// Indexes kept per node, and the memory they may hold together; past either, the least
/// recently built go first (a user with many large knowledge bases cannot exhaust a node).
const CACHED_INDEXES: usize = 64;
const CACHED_BYTES: usize = 768 << 20;
/// How deep each ranking goes before fusion.
const CANDIDATES: usize = 40;

/// One passage as the index keeps it.
pub struct Passage {
    pub file_id: FileId,
    pub file_name: String,
    pub page: Option<u32>,
    pub page_end: Option<u32>,
    pub headings: String,
    pub text: String,
    pub tokens: u32,
}

pub struct Hit {
    pub position: u32,
    pub score: f32,
}

/// Vectors are kept as 8-bit integers, each with its scale: a quarter of the memory of
/// 32-bit floats and a quarter of the bytes to read per search, with rankings that differ only
/// among near-ties (the top candidates are fused with the keyword ranking anyway).
fn quantize(vector: &[f32]) -> (Vec<i8>, f32) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
    let largest = vector.iter().fold(0.0f32, |m, x| m.max(x.abs())) / norm;
    let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
    (vector.iter().map(|x| (x / norm / scale).round().clamp(-127.0, 127.0) as i8).collect(), scale)
}

fn dot(a: &[i8], b: &[i8]) -> i32 {
    a.iter().zip(b).map(|(x, y)| i32::from(*x) * i32::from(*y)).sum()
}

/// A vector's signs as bits: a first pass compares these (an eighth of the bytes of the
/// 8-bit vectors) and only the closest candidates are scored exactly.
fn sign_bits(vector: &[i8]) -> Vec<u64> {
    vector
        .chunks(64)
        .map(|part| part.iter().enumerate().fold(0u64, |bits, (i, x)| if *x > 0 { bits | (1 << i) } else { bits }))
        .collect()
}

/// Below this many vectors every one is scored exactly.
const EXACT_UP_TO: usize = 4_096;
/// How many candidates the sign pass keeps for exact scoring.
const SIGN_CANDIDATES: usize = 400;

/// A knowledge base's passages, searchable.
pub struct BuiltIndex {
    revision: i64,
    passages: Vec<Passage>,
    keywords: Index,
    /// The embedding model of the vectors (`None`: keyword search only).
    model: Option<String>,
    dimensions: usize,
    /// `dimensions` values per passage that has a vector (normalised, quantized).
    vectors: Vec<i8>,
    /// Each vector's scale.
    scales: Vec<f32>,
    /// Each vector's sign bits, `words` u64s apiece.
    signs: Vec<u64>,
    words: usize,
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
        let mut scales = Vec::new();
        let mut signs = Vec::new();
        let mut vector_passages = Vec::new();
        for (chunk, file_name) in rows {
            let position = keywords.add(&tokenizer, &chunk.indexed_text());
            if let Some(vector) = chunk.embedding.as_ref().filter(|v| v.len() == dimensions && dimensions > 0) {
                let (quantized, scale) = quantize(vector);
                signs.extend(sign_bits(&quantized));
                vectors.extend(quantized);
                scales.push(scale);
                vector_passages.push(position);
            }
            passages.push(Passage {
                file_id: chunk.file_id,
                file_name,
                page: chunk.page_start,
                page_end: chunk.page_end,
                headings: chunk.headings,
                text: chunk.text,
                tokens: chunk.tokens,
            });
        }
        let words = dimensions.div_ceil(64);
        Self { revision, passages, keywords, model: None, dimensions, vectors, scales, signs, words, vector_passages }
    }

    fn with_model(mut self, model: Option<String>) -> Self {
        self.model = model;
        self
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
        let (query, _) = quantize(query);
        let exact = |row: usize| {
            let vector = &self.vectors[row * self.dimensions..(row + 1) * self.dimensions];
            (self.vector_passages[row], dot(vector, &query) as f32 * self.scales[row])
        };
        let count = self.vector_passages.len();
        let similarities: Vec<(u32, f32)> = if count <= EXACT_UP_TO {
            (0..count).map(exact).collect()
        } else {
            let bits = sign_bits(&query);
            let agreement = self.signs.chunks_exact(self.words).enumerate().map(|(row, signs)| {
                let differing: u32 = signs.iter().zip(&bits).map(|(a, b)| (a ^ b).count_ones()).sum();
                (row as u32, -(differing as f32))
            });
            top(agreement, SIGN_CANDIDATES).into_iter().map(|(row, _)| exact(row as usize)).collect()
        };
        let similarities = similarities.into_iter();
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
        passages
            + self.keywords.memory_bytes()
            + self.vectors.len()
            + self.scales.len() * 4
            + self.signs.len() * 8
            + self.vector_passages.len() * 4
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
    fn lookup(&self, key: Key, revision: i64, model: Option<&str>) -> Option<Arc<BuiltIndex>> {
        let cache = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = |index: &BuiltIndex| index.revision == revision && index.model.as_deref() == model;
        cache.iter().find(|(k, index)| *k == key && current(index)).map(|(_, index)| index.clone())
    }

    pub fn forget(&self, user: UserId, base: KnowledgeBaseId) {
        let mut cache = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.retain(|(key, _)| *key != (user, base));
    }

    /// The index of `base` at its current revision for the embedding model `model`, built when
    /// this node has none. Only vectors of `model` are kept: while documents are embedded again
    /// after a change of model, those not done yet are found by their keywords.
    pub async fn get_or_build(
        &self,
        store: &dyn Store,
        user: UserId,
        base: &KnowledgeBase,
        model: Option<&str>,
    ) -> CoreResult<Arc<BuiltIndex>> {
        let key = (user, base.id);
        if let Some(index) = self.lookup(key, base.revision, model) {
            return Ok(index);
        }
        let mut rows = store.knowledge_chunks(user, base.id).await?;
        // Every chunk of a file carries the same model's vectors; the store keeps which per file.
        let embedded_with: HashMap<FileId, Option<String>> = store
            .knowledge_files(user, base.id)
            .await?
            .into_iter()
            .map(|(file, ingestion)| (file.id, ingestion.and_then(|i| i.embedding_model)))
            .collect();
        for (chunk, _) in &mut rows {
            if embedded_with.get(&chunk.file_id).and_then(Option::as_deref) != model {
                chunk.embedding = None;
            }
        }
        let (revision, model) = (base.revision, model.map(str::to_owned));
        let built = tokio::task::spawn_blocking(move || BuiltIndex::build(revision, rows).with_model(model))
            .await
            .map_err(|_| {
                let failed = "building a search index failed";
                crate::store::StoreError::new(crate::store::StoreErrorKind::Other, failed)
            })?;
        let built = Arc::new(built);
        let mut cache = self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.retain(|(k, _)| *k != key);
        cache.push((key, built.clone()));
        let mut held: usize = cache.iter().map(|(_, index)| index.memory_bytes()).sum();
        while cache.len() > 1 && (cache.len() > CACHED_INDEXES || held > CACHED_BYTES) {
            held -= cache.remove(0).1.memory_bytes();
        }
        Ok(built)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::StoredChunk;
    use crate::id::ChunkId;

    fn chunk(text: &str, embedding: Option<Vec<f32>>) -> (StoredChunk, String) {
        let chunk = StoredChunk {
            id: ChunkId::new(),
            file_id: FileId::new(),
            user_id: UserId::new(),
            seq: 0,
            text: text.to_owned(),
            headings: String::new(),
            page_start: None,
            page_end: None,
            tokens: 10,
            embedding,
        };
        (chunk, "f.txt".to_owned())
    }

    #[test]
    fn meaning_finds_what_keywords_miss_and_both_rank_together() {
        let rows = vec![
            chunk("Sales were flat.", Some(vec![1.0, 0.0, 0.0])),
            chunk("Research spending grew by 15 percent.", Some(vec![0.0, 1.0, 0.1])),
            chunk("Headcount rose to 3,000.", Some(vec![0.0, 0.0, 1.0])),
        ];
        let index = BuiltIndex::build(1, rows);
        // No shared word with the question, but the vector is close.
        let hits = index.search("investment in innovation", Some(&[0.0, 0.9, 0.2]), 3);
        assert_eq!(hits[0].position, 1);
        // Keywords alone find nothing here.
        assert!(index.search("investment in innovation", None, 3).is_empty());
        // A vector of another dimension is ignored, not an error.
        assert_eq!(index.search("sales", Some(&[1.0, 0.0]), 3)[0].position, 0);
    }

    #[test]
    fn large_indexes_find_the_nearest_vector_through_the_sign_pass() {
        // Deterministic pseudo-random vectors; the question is a slightly moved copy of one.
        let mut state = 1u64;
        let mut unit = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((state >> 33) % 2000) as f32 / 1000.0 - 1.0
        };
        let vectors: Vec<Vec<f32>> = (0..6_000).map(|_| (0..64).map(|_| unit()).collect()).collect();
        let rows = vectors.iter().map(|v| chunk("x", Some(v.clone()))).collect();
        let index = BuiltIndex::build(1, rows);
        let target = 4_321;
        let query: Vec<f32> = vectors[target].iter().map(|x| x + 0.05).collect();
        let hits = index.search("unrelated words", Some(&query), 5);
        assert_eq!(hits[0].position, target as u32);
    }
}
