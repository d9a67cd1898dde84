//! Documents read for search, and knowledge bases: the state of each document's reading (a
//! background job), its chunks, the knowledge bases that group documents, and the numbered
//! sources an answer was given.

use crate::id::{ChunkId, FileId, KnowledgeBaseId, UserId};
use crate::time::Timestamp;

/// Where a document's reading is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestState {
    Queued,
    /// Extracting its text.
    Reading,
    /// Chunking and (with an embedding model) embedding it.
    Indexing,
    Ready,
    Failed,
}

impl IngestState {
    pub fn as_str(self) -> &'static str {
        match self {
            IngestState::Queued => "queued",
            IngestState::Reading => "reading",
            IngestState::Indexing => "indexing",
            IngestState::Ready => "ready",
            IngestState::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "queued" => IngestState::Queued,
            "reading" => IngestState::Reading,
            "indexing" => IngestState::Indexing,
            "ready" => IngestState::Ready,
            "failed" => IngestState::Failed,
            _ => return None,
        })
    }

    /// Still to finish (queued or being worked on).
    pub fn is_pending(self) -> bool {
        matches!(self, IngestState::Queued | IngestState::Reading | IngestState::Indexing)
    }
}

/// A document's reading.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ingestion {
    pub file_id: FileId,
    pub state: IngestState,
    /// For `Failed`: the user-facing reason's code (`file_no_text_layer`…).
    pub error: Option<String>,
    /// Percent done, while reading or indexing.
    pub progress: u8,
    pub pages: Option<u32>,
    pub chunks: u32,
    /// The model whose vectors its chunks carry; `None`: keyword search only.
    pub embedding_model: Option<String>,
    pub updated_at: Timestamp,
}

/// One chunk of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredChunk {
    pub id: ChunkId,
    pub file_id: FileId,
    pub user_id: UserId,
    /// Its place in the document, from 0.
    pub seq: u32,
    pub text: String,
    /// The headings above it, outermost first, joined with ` › `.
    pub headings: String,
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    pub tokens: u32,
    pub embedding: Option<Vec<f32>>,
}

impl StoredChunk {
    /// What search indexes and models read: the headings, then the text.
    pub fn indexed_text(&self) -> String {
        if self.headings.is_empty() { self.text.clone() } else { format!("{}\n{}", self.headings, self.text) }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnowledgeBase {
    pub id: KnowledgeBaseId,
    pub user_id: UserId,
    pub name: String,
    pub description: String,
    /// Grows with every change of its documents: a search index built at one revision is
    /// stale at the next.
    pub revision: i64,
    /// Who else may search it (an administrator's base): `everyone` or a role's code
    /// (`user`, `admin`); `None`: its owner only.
    pub shared_with: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl KnowledgeBase {
    /// Whether a person of `role` other than its owner may search it.
    pub fn shared_with_role(&self, role: crate::domain::Role) -> bool {
        matches!(self.shared_with.as_deref(), Some(scope) if scope == "everyone" || scope == role.as_str())
    }
}

/// A numbered source an answer was given: a copy of the passage, so the citation still opens
/// after its file is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `[1]`, `[2]`… in the answer.
    pub number: u32,
    pub file_id: Option<FileId>,
    pub file_name: String,
    /// Its (first) page.
    pub page: Option<u32>,
    /// Its last page, when it runs onto a later one.
    pub page_end: Option<u32>,
    pub headings: String,
    pub text: String,
    /// For a web page a tool found: its address (`http`/`https` only); `file_name` is its title.
    pub url: Option<String>,
}

impl Source {
    /// Its pages: `(first, last)`, the same when it is on one page.
    pub fn pages(&self) -> Option<(u32, u32)> {
        let first = self.page?;
        Some((first, self.page_end.filter(|end| *end > first).unwrap_or(first)))
    }

    /// The source as the model reads it: `[n] name, page 3 (headings)` or `[n] title` and the
    /// address, then its text.
    pub fn for_model(&self) -> String {
        let mut out = format!("[{}] {}", self.number, self.file_name);
        if let Some(pages) = self.pages_for_model() {
            out.push_str(&format!(", {pages}"));
        }
        if !self.headings.is_empty() {
            out.push_str(&format!(" ({})", self.headings));
        }
        if let Some(url) = &self.url {
            out.push('\n');
            out.push_str(url);
        }
        out.push('\n');
        out.push_str(&self.text);
        out
    }

    /// Where it is, as the model reads it: `page 3`, `pages 3-4`.
    pub fn pages_for_model(&self) -> Option<String> {
        match self.pages()? {
            (first, last) if last > first => Some(format!("pages {first}-{last}")),
            (page, _) => Some(format!("page {page}")),
        }
    }
}
