//! What a message's files become in a request to a model ("materials"): images for vision
//! models, in each protocol's size limits; documents as their text, whole when it fits
//! comfortably in the model's context window, otherwise the passages that best match the
//! question (keyword search over the document's chunks), numbered as sources.
//!
//! Reading a document is CPU work on a blocking thread; what was read is kept for a few
//! files (by content hash), so the next question about the same file does not read it again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use loquat_docs::extract::{ExtractError, Format, Limits};
use loquat_docs::image::{Fit, fit_image};
use loquat_docs::search::{Index, Tokenizer};
use loquat_docs::{Chunk, ChunkOptions, chunk_document, estimate_tokens};
use loquat_files::Blobs;

use crate::domain::{ModelCard, Protocol, Source, StoredFile};
use crate::error::{CoreError, CoreResult};
use crate::llm::Image;
use crate::prompt::Materials;

/// A file read for a request.
pub(crate) struct ReadDocument {
    /// The whole text, blocks in order.
    text: String,
    tokens: usize,
    chunks: Vec<Chunk>,
}

/// A whole document of at most this many passages is sent as numbered passages.
const MAX_WHOLE_SOURCES: usize = 30;

/// How many documents read stay in memory, and the largest text kept (bytes).
const CACHED_DOCUMENTS: usize = 16;
const MAX_CACHED_TEXT: usize = 2 << 20;

/// The context window assumed for a model whose window is not known.
const DEFAULT_CONTEXT_TOKENS: usize = 16_000;

/// Documents read lately, by content hash, the latest last.
type Cache = Arc<Mutex<Vec<(String, Arc<ReadDocument>)>>>;

#[derive(Clone)]
pub(crate) struct Reader {
    blobs: Blobs,
    cache: Cache,
    public_base: Option<String>,
}

/// Whether a file is an image a model may look at.
pub fn is_image(file: &StoredFile) -> bool {
    matches!(file.mime.as_str(), "image/png" | "image/jpeg" | "image/gif" | "image/webp" | "image/bmp" | "image/tiff")
}

/// Whether a file is a document Loquat reads (PDF, Office, HTML, text…).
pub fn is_document(file: &StoredFile) -> bool {
    Format::of(&file.mime, &file.name).is_some()
}

/// The Office type of a file that was detected only as a zip or compound file but that the
/// reader takes for Word, PowerPoint or a spreadsheet by its name (`report.docx` as `application/zip`).
pub fn document_format_name(mime: &str, name: &str) -> Option<&'static str> {
    if !matches!(mime, "application/zip" | "application/x-ole-storage" | "application/x-cfb") {
        return None;
    }
    Some(match Format::of(mime, name)? {
        Format::Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Format::Pptx => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Format::Spreadsheet => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        _ => return None,
    })
}

/// What each protocol accepts of an image.
fn fit_for(protocol: Protocol) -> Fit {
    match protocol {
        // Anthropic scales anything over 1568 px down itself, and refuses over 5 MB.
        Protocol::Anthropic => Fit { max_edge: 1568, max_bytes: 3_700_000 },
        _ => Fit { max_edge: 2048, max_bytes: 4_000_000 },
    }
}

impl Reader {
    /// `public_base`: images are sent as links under it (a public bucket domain) instead of
    /// their bytes.
    pub fn new(blobs: Blobs, public_base: Option<String>) -> Self {
        Self { blobs, cache: Arc::default(), public_base }
    }

    /// The materials of one message's `files` for `model` on `protocol`. `question` chooses the
    /// passages of a document too long to send whole. A file that cannot be read is an error
    /// naming it, so the user learns why before anything is sent.
    pub async fn materials(
        &self,
        files: &[StoredFile],
        model: &ModelCard,
        protocol: Protocol,
        question: &str,
        budget_tokens: &mut usize,
        sources: &mut Vec<Source>,
    ) -> CoreResult<Materials> {
        let mut materials = Materials::default();
        for file in files {
            if is_image(file) {
                if !model.vision {
                    materials
                        .text
                        .push_str(&format!("\n\n[image: {} — not shown: this model does not read images]", file.name));
                    continue;
                }
                materials.images.push(self.image(file, protocol).await?);
                continue;
            }
            let Some(document) = self.document(file).await? else {
                materials.text.push_str(&format!("\n\n[file: {} ({}) — no text to read]", file.name, file.mime));
                continue;
            };
            let text = fitted_text(&document, file, question, budget_tokens, sources);
            materials.text.push_str(&format!(
                "\n\n<file name=\"{}\">\n{}\n</file>",
                escape_attribute(&file.name),
                text
            ));
        }
        Ok(materials)
    }

    async fn image(&self, file: &StoredFile, protocol: Protocol) -> CoreResult<Image> {
        if let Some(base) = &self.public_base {
            return Ok(Image::Url(format!("{}/{}", base.trim_end_matches('/'), file.storage_key)));
        }
        let bytes = self.blobs.read(&file.storage_key).await.map_err(|error| CoreError::Files(error.to_string()))?;
        let fit = fit_for(protocol);
        let fitted = tokio::task::spawn_blocking(move || fit_image(&bytes, fit))
            .await
            .map_err(|_| CoreError::invalid_with("file_unreadable", file.name.clone()))?
            .map_err(|_| CoreError::invalid_with("file_unreadable", file.name.clone()))?;
        let data_base64 = base64::engine::general_purpose::STANDARD.encode(&fitted.bytes);
        Ok(Image::Inline { mime_type: fitted.mime.to_owned(), data_base64 })
    }

    /// The file read as a document, or `None` when it is not one (an archive, audio…).
    pub(crate) async fn document(&self, file: &StoredFile) -> CoreResult<Option<Arc<ReadDocument>>> {
        let Some(format) = Format::of(&file.mime, &file.name) else { return Ok(None) };
        if let Some(read) = self.cached(&file.sha256) {
            return Ok(Some(read));
        }
        let bytes = self.blobs.read(&file.storage_key).await.map_err(|error| CoreError::Files(error.to_string()))?;
        let name = file.name.clone();
        let reading = tokio::task::spawn_blocking(move || {
            let document = loquat_docs::extract(&bytes, format, &Limits::default())?;
            let chunks = chunk_document(&document, ChunkOptions::default());
            let text = document.text();
            let tokens = estimate_tokens(&text);
            Ok::<_, ExtractError>(ReadDocument { text, tokens, chunks })
        });
        // The person is waiting: a file that takes longer than this to read is refused.
        let unreadable = || CoreError::invalid_with("file_unreadable", name.clone());
        let read = tokio::time::timeout(std::time::Duration::from_secs(60), reading)
            .await
            .map_err(|_| unreadable())?
            .map_err(|_| unreadable())?
            .map_err(|error| extract_error(error, &name))?;
        let read = Arc::new(read);
        // Only documents of modest size stay in memory; a large one is read again next time.
        if read.text.len() > MAX_CACHED_TEXT {
            return Ok(Some(read));
        }
        let mut cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.retain(|(sha, _)| sha != &file.sha256);
        if cache.len() >= CACHED_DOCUMENTS {
            cache.remove(0);
        }
        cache.push((file.sha256.clone(), read.clone()));
        Ok(Some(read))
    }

    fn cached(&self, sha256: &str) -> Option<Arc<ReadDocument>> {
        let cache = self.cache.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        cache.iter().find(|(sha, _)| sha == sha256).map(|(_, read)| read.clone())
    }
}

/// The user-facing error for a document that cannot be read.
pub(crate) fn extract_error(error: ExtractError, name: &str) -> CoreError {
    let code = match error {
        ExtractError::Encrypted => "file_encrypted",
        ExtractError::NoTextLayer => "file_no_text_layer",
        ExtractError::TooLarge(_) => "file_expands",
        ExtractError::Corrupt(_) | ExtractError::Unsupported => "file_unreadable",
    };
    CoreError::invalid_with(code, name.to_owned())
}

/// How much of a context window the files of a request may take: half of it.
pub fn files_budget(model: &ModelCard) -> usize {
    model.context_tokens.map_or(DEFAULT_CONTEXT_TOKENS, |tokens| tokens as usize) / 2
}

/// The document whole when it fits what is left of the budget; otherwise its passages that
/// best match `question`, in the document's order, each a numbered source (added to `sources`)
/// with where it is.
fn fitted_text(
    document: &ReadDocument,
    file: &StoredFile,
    question: &str,
    budget: &mut usize,
    sources: &mut Vec<Source>,
) -> String {
    if document.tokens <= *budget {
        *budget -= document.tokens;
        // A short document goes whole as its numbered passages, so answers can cite its pages;
        // a long one (that still fits) goes as plain text rather than as a hundred sources.
        if document.chunks.len() > MAX_WHOLE_SOURCES || document.chunks.is_empty() {
            return document.text.clone();
        }
        let all: Vec<u32> = (0..document.chunks.len() as u32).collect();
        return numbered(
            document,
            file,
            &all,
            sources,
            "(Cite the passages you use with their numbers in brackets, like [1].)\n",
        );
    }
    // Passages take at most what is left (and at least a few passages' worth).
    let allowance = (*budget).max(2_000);
    let tokenizer = Tokenizer::default();
    let texts: Vec<String> = document.chunks.iter().map(Chunk::indexed_text).collect();
    let index = Index::build(texts.iter().map(String::as_str));
    let mut chosen: Vec<u32> = Vec::new();
    let mut used = 0;
    for (chunk, _) in index.search(&tokenizer, question, 50) {
        let tokens = document.chunks[chunk as usize].tokens;
        if used + tokens > allowance {
            continue;
        }
        used += tokens;
        chosen.push(chunk);
    }
    // With no matching term (a question like "summarise this"), the beginning of the document.
    if chosen.is_empty() {
        for (number, chunk) in document.chunks.iter().enumerate() {
            if used + chunk.tokens > allowance {
                break;
            }
            used += chunk.tokens;
            chosen.push(number as u32);
        }
    }
    chosen.sort_unstable();
    *budget = budget.saturating_sub(used);
    let intro = "(Excerpts: the file is too long to include whole. Cite each excerpt you use with its number in \
                 brackets, like [1].)\n";
    numbered(document, file, &chosen, sources, intro)
}

/// The passages at `positions` of the document, each a numbered source (added to `sources`)
/// with where it is, after `intro`.
fn numbered(
    document: &ReadDocument,
    file: &StoredFile,
    positions: &[u32],
    sources: &mut Vec<Source>,
    intro: &str,
) -> String {
    let mut out = String::from(intro);
    for &position in positions {
        let chunk = &document.chunks[position as usize];
        let source = Source {
            number: sources.len() as u32 + 1,
            file_id: Some(file.id),
            file_name: file.name.clone(),
            page: chunk.page_start,
            page_end: chunk.page_end,
            headings: chunk.headings.clone(),
            text: chunk.text.clone(),
            url: None,
        };
        out.push_str(&format!("\n[{}]", source.number));
        if let Some(pages) = source.pages_for_model() {
            out.push_str(&format!(" {pages}"));
        }
        if !source.headings.is_empty() {
            out.push_str(&format!(" ({})", source.headings));
        }
        out.push('\n');
        out.push_str(&source.text);
        out.push('\n');
        sources.push(source);
    }
    out
}

fn escape_attribute(name: &str) -> String {
    name.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;")
}

/// Rows grouped by message id (files, sources), in their order.
pub fn by_message<K: std::hash::Hash + Eq, V>(rows: Vec<(K, V)>) -> HashMap<K, Vec<V>> {
    let mut grouped: HashMap<K, Vec<V>> = HashMap::new();
    for (message, file) in rows {
        grouped.entry(message).or_default().push(file);
    }
    grouped
}
