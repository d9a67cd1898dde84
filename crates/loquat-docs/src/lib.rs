//! What Loquat reads in users' files, all in Rust and all bounded:
//! - [`extract`]: a file's text as blocks (headings, paragraphs, table rows) with their page,
//!   from PDF, Word, PowerPoint, Excel/CSV, HTML, Markdown, plain text, code and JSON;
//! - [`chunk`]: those blocks cut into chunks of a token budget, each keeping its page and the
//!   headings above it;
//! - [`search`]: keyword search over chunks (BM25) that reads Chinese (character bigrams) and
//!   English (stemmed words);
//! - [`image`]: an image fitted to what vision models accept.
//!
//! Nothing here does I/O or knows about users: callers hand in bytes and get values back. Every
//! function is CPU-bound: run it on a blocking thread.

pub mod chunk;
pub mod extract;
pub mod image;
pub mod search;

pub use chunk::{Chunk, ChunkOptions, chunk_document, estimate_tokens};
pub use extract::{Block, BlockKind, Document, ExtractError, Format, Limits, extract};

pub mod fixtures;
