//! PDF: the text layer page by page (pdf-extract over lopdf), each page's lines grouped into
//! paragraphs. Before any page is read, every compressed stream is inflated once under the
//! limits, so a small file that expands to gigabytes is refused instead of followed. An
//! encrypted file that opens without a password (owner-password only) is read; one that needs a
//! password is reported. A file with pages but no text at all has no text layer: scanned.

use std::panic::{AssertUnwindSafe, catch_unwind};

use lopdf::{Document as Pdf, Object};

use super::{Block, BlockKind, Document, ExtractError, Limits, read_bounded, squeeze};

/// The PDF libraries panic on some damaged files: a panic is a damaged file (or page), not a
/// crash.
fn guarded<T>(work: impl FnOnce() -> Result<T, ExtractError>) -> Result<T, ExtractError> {
    catch_unwind(AssertUnwindSafe(work))
        .unwrap_or_else(|_| Err(ExtractError::Corrupt("unreadable PDF structure".into())))
}

pub fn extract(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    guarded(|| read(bytes, limits))
}

fn read(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    let mut pdf = Pdf::load_mem(bytes).map_err(|error| match error {
        lopdf::Error::Decryption(_) => ExtractError::Encrypted,
        other => ExtractError::Corrupt(other.to_string()),
    })?;
    if pdf.is_encrypted() && pdf.decrypt("").is_err() {
        return Err(ExtractError::Encrypted);
    }
    check_streams(&pdf, limits)?;
    let page_numbers: Vec<u32> = pdf.get_pages().into_keys().collect();
    let pages = page_numbers.len() as u32;
    let mut blocks = Vec::new();
    let mut unreadable_pages = 0;
    for &number in page_numbers.iter().take(limits.max_pages as usize) {
        // One unreadable page (a broken font, say) does not lose the others.
        let page = guarded(|| {
            let mut text = String::new();
            let mut output = pdf_extract::PlainTextOutput::new(&mut text);
            pdf_extract::output_doc_page(&pdf, &mut output, number)
                .map_err(|e| ExtractError::Corrupt(e.to_string()))?;
            Ok(text)
        });
        match page {
            Ok(text) => push_page(&mut blocks, &text, number),
            Err(_) => unreadable_pages += 1,
        }
    }
    if blocks.is_empty() && unreadable_pages > 0 {
        return Err(ExtractError::Corrupt(format!("{unreadable_pages} unreadable pages")));
    }
    if blocks.is_empty() && pages > 0 {
        return Err(ExtractError::NoTextLayer);
    }
    Ok(Document { blocks, pages: Some(pages) })
}

/// One page's text as paragraphs: blank lines separate them; lines within one are joined
/// (with a space between Latin words, nothing between Chinese characters).
fn push_page(blocks: &mut Vec<Block>, text: &str, page: u32) {
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        if !current.trim().is_empty() {
            blocks.push(Block { kind: BlockKind::Paragraph, text: std::mem::take(current), page: Some(page) });
        }
        current.clear();
    };
    for line in text.lines() {
        let line = squeeze(line);
        if line.is_empty() {
            flush(&mut current);
            continue;
        }
        let joins_without_space = current.chars().last().is_some_and(is_cjk) && line.chars().next().is_some_and(is_cjk);
        if !current.is_empty() && !joins_without_space {
            current.push(' ');
        }
        current.push_str(&line);
    }
    flush(&mut current);
}

pub(crate) fn is_cjk(c: char) -> bool {
    crate::search::is_cjk(c)
}

/// Inflates every Flate-compressed stream under the limits, without keeping the result.
fn check_streams(pdf: &Pdf, limits: &Limits) -> Result<(), ExtractError> {
    let mut total = 0u64;
    for object in pdf.objects.values() {
        let Object::Stream(stream) = object else { continue };
        let flate = match stream.dict.get(b"Filter") {
            Ok(Object::Name(name)) => name == b"FlateDecode",
            Ok(Object::Array(filters)) => {
                filters.iter().any(|filter| matches!(filter, Object::Name(name) if name == b"FlateDecode"))
            }
            _ => false,
        };
        if !flate {
            continue;
        }
        let decoder = flate2::read::ZlibDecoder::new(stream.content.as_slice());
        // A stream that does not inflate is the page reader's problem (it skips that page).
        let size = match read_bounded(decoder, limits.max_part_bytes) {
            Ok(inflated) => inflated.len() as u64,
            Err(ExtractError::TooLarge(limit)) => return Err(ExtractError::TooLarge(limit)),
            Err(_) => continue,
        };
        total += size;
        if total > limits.max_total_bytes {
            return Err(ExtractError::TooLarge(limits.max_total_bytes >> 20));
        }
    }
    Ok(())
}
