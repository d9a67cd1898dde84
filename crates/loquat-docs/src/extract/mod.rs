//! Text extraction by structure. Each format yields [`Block`]s in reading order; a block knows
//! its page (PDF pages, slides) and whether it is a heading, a paragraph or a table row, so
//! chunks can keep their place. Every reader is bounded ([`Limits`]): decompressed bytes of
//! archives and PDF streams, and the extracted text.

pub mod html;
mod office;
mod pdf;
mod sheet;
mod text;

use std::io::Read;

/// What a block is, for chunking by structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// A heading of this level (1 is the top); it starts a section.
    Heading(u8),
    Paragraph,
    /// A row of a table or sheet, its cells joined with ` | `.
    Row,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub kind: BlockKind,
    pub text: String,
    /// 1-based page (PDF) or slide (PowerPoint); `None` for formats without pages.
    pub page: Option<u32>,
}

/// A file's text in reading order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Document {
    pub blocks: Vec<Block>,
    /// Pages (or slides) the file has, when it has pages.
    pub pages: Option<u32>,
}

impl Document {
    /// All the text, blocks separated by blank lines.
    pub fn text(&self) -> String {
        let mut out = String::with_capacity(self.chars());
        for block in &self.blocks {
            if !out.is_empty() {
                out.push_str(if block.kind == BlockKind::Row { "\n" } else { "\n\n" });
            }
            if let BlockKind::Heading(level) = block.kind {
                out.extend(std::iter::repeat_n('#', usize::from(level.clamp(1, 6))));
                out.push(' ');
            }
            out.push_str(&block.text);
        }
        out
    }

    /// Characters of text, a cheap size estimate.
    pub fn chars(&self) -> usize {
        self.blocks.iter().map(|block| block.text.len() + 2).sum()
    }
}

/// Why a file's text could not be read. Each is shown to the user as it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ExtractError {
    #[error("the file is encrypted (password-protected)")]
    Encrypted,
    #[error("no text layer (a scanned document?); OCR is not available")]
    NoTextLayer,
    #[error("the file is damaged or not what its type says: {0}")]
    Corrupt(String),
    #[error("the file expands to more than {0} MB of content")]
    TooLarge(u64),
    #[error("this type of file has no text Loquat can read")]
    Unsupported,
}

/// Bounds on what one file may cost.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes any one archive member or PDF stream may decompress to.
    pub max_part_bytes: u64,
    /// Bytes all of a file's parts may decompress to together.
    pub max_total_bytes: u64,
    /// Characters of extracted text kept; the rest is cut.
    pub max_text_chars: usize,
    /// Pages of a PDF read.
    pub max_pages: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self { max_part_bytes: 128 << 20, max_total_bytes: 512 << 20, max_text_chars: 20_000_000, max_pages: 5_000 }
    }
}

/// The formats Loquat reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Pdf,
    Docx,
    Pptx,
    /// XLSX, XLS, ODS.
    Spreadsheet,
    Csv,
    Html,
    Markdown,
    /// Plain text, code, JSON, XML, YAML…: read as paragraphs.
    Text,
}

impl Format {
    /// The format of a file, from its detected type and (for text, where the content says
    /// little) its name. `None` for images, audio, archives and unknown binaries.
    pub fn of(mime: &str, name: &str) -> Option<Format> {
        let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
        Some(match mime {
            "application/pdf" => Format::Pdf,
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Format::Docx,
            "application/vnd.openxmlformats-officedocument.presentationml.presentation" => Format::Pptx,
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            | "application/vnd.ms-excel"
            | "application/vnd.oasis.opendocument.spreadsheet" => Format::Spreadsheet,
            "text/html" => Format::Html,
            "text/csv" => Format::Csv,
            "text/markdown" => Format::Markdown,
            // An Office file's type is read from its content; a zip or compound file with the
            // right extension is one whose detector did not recognise it.
            "application/zip" | "application/x-ole-storage" | "application/x-cfb" => match extension.as_str() {
                "docx" => Format::Docx,
                "pptx" => Format::Pptx,
                "xlsx" | "xls" | "ods" => Format::Spreadsheet,
                _ => return None,
            },
            _ if mime.starts_with("text/") || is_text_mime(mime) => match extension.as_str() {
                "md" | "markdown" | "mdx" => Format::Markdown,
                "csv" => Format::Csv,
                "html" | "htm" => Format::Html,
                _ => Format::Text,
            },
            _ => return None,
        })
    }
}

fn is_text_mime(mime: &str) -> bool {
    matches!(
        mime,
        "application/json" | "application/xml" | "application/x-yaml" | "application/yaml" | "application/javascript"
    )
}

/// Reads the text of a file of `format`.
pub fn extract(bytes: &[u8], format: Format, limits: &Limits) -> Result<Document, ExtractError> {
    if bytes.is_empty() {
        return Ok(Document::default());
    }
    let mut document = match format {
        Format::Pdf => pdf::extract(bytes, limits)?,
        Format::Docx => office::docx(bytes, limits)?,
        Format::Pptx => office::pptx(bytes, limits)?,
        Format::Spreadsheet => sheet::spreadsheet(bytes, limits)?,
        Format::Csv => sheet::csv(&text::decode(bytes), limits),
        Format::Html => html::extract(&text::decode(bytes)),
        Format::Markdown => text::markdown(&text::decode(bytes)),
        Format::Text => text::plain(&text::decode(bytes)),
    };
    cap_text(&mut document, limits.max_text_chars);
    Ok(document)
}

/// Cuts the document after `max_chars` characters of text.
fn cap_text(document: &mut Document, max_chars: usize) {
    let mut total = 0usize;
    for (index, block) in document.blocks.iter_mut().enumerate() {
        let len = block.text.len();
        if total + len > max_chars {
            let keep = floor_char_boundary(&block.text, max_chars - total);
            block.text.truncate(keep);
            document.blocks.truncate(index + usize::from(keep > 0));
            return;
        }
        total += len;
    }
}

pub(crate) fn floor_char_boundary(text: &str, at: usize) -> usize {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Reads all of `reader`, failing once it yields more than `limit` bytes.
pub(crate) fn read_bounded(reader: impl Read, limit: u64) -> Result<Vec<u8>, ExtractError> {
    let mut out = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|error| ExtractError::Corrupt(error.to_string()))?;
    if out.len() as u64 > limit {
        return Err(ExtractError::TooLarge(limit >> 20));
    }
    Ok(out)
}

/// Collapses runs of whitespace within a line of extracted text.
pub(crate) fn squeeze(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

#[cfg(test)]
mod tests;
