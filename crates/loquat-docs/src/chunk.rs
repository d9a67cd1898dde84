//! Chunking by structure. A chunk never crosses a heading: each section is cut into chunks of
//! about `target_tokens`, whole paragraphs and rows where they fit, sentences where a paragraph
//! is too long, characters only where a sentence is. Consecutive chunks of a section share up to
//! `overlap_tokens` of whole sentences, so a fact cut at a boundary is whole in one of them.
//! Each chunk keeps the headings above it and the pages it spans.

use crate::extract::{BlockKind, Document};
use crate::search::is_cjk;

#[derive(Debug, Clone, Copy)]
pub struct ChunkOptions {
    pub target_tokens: usize,
    pub overlap_tokens: usize,
}

impl Default for ChunkOptions {
    fn default() -> Self {
        Self { target_tokens: 400, overlap_tokens: 60 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    pub text: String,
    /// The headings above the chunk, outermost first, joined with ` › `.
    pub headings: String,
    /// The first and last page (or slide) the chunk's text is on.
    pub page_start: Option<u32>,
    pub page_end: Option<u32>,
    /// Its estimated size in tokens.
    pub tokens: usize,
}

impl Chunk {
    /// What search indexes and models read: the headings, then the text.
    pub fn indexed_text(&self) -> String {
        if self.headings.is_empty() { self.text.clone() } else { format!("{}\n{}", self.headings, self.text) }
    }
}

/// About how many tokens `text` is to a model: a Chinese, Japanese or Korean character is about
/// one; other text is about four bytes a token. An estimate, the same everywhere in Loquat, used
/// for chunk sizes and for whether a file fits a context window.
pub fn estimate_tokens(text: &str) -> usize {
    let mut cjk = 0usize;
    let mut other_bytes = 0usize;
    for c in text.chars() {
        if is_cjk(c) {
            cjk += 1;
        } else {
            other_bytes += c.len_utf8();
        }
    }
    cjk + other_bytes.div_ceil(4)
}

/// One piece of a section: a sentence, row or paragraph small enough to place whole.
struct Piece {
    text: String,
    tokens: usize,
    page: Option<u32>,
    /// Whether it starts a new line in the chunk (a new paragraph or row).
    breaks: bool,
    /// Whether it is prose that stops mid-sentence (its paragraph goes on).
    open: bool,
}

pub fn chunk_document(document: &Document, options: ChunkOptions) -> Vec<Chunk> {
    let target = options.target_tokens.max(16);
    let mut chunks = Vec::new();
    let mut headings: Vec<(u8, String)> = Vec::new();
    let mut section: Vec<Piece> = Vec::new();
    for block in &document.blocks {
        match block.kind {
            BlockKind::Heading(level) => {
                pack(&mut chunks, &section, &path(&headings), target, options.overlap_tokens);
                section.clear();
                headings.retain(|(outer, _)| *outer < level);
                headings.push((level, block.text.clone()));
            }
            BlockKind::Paragraph | BlockKind::Row => {
                // A new page starts a new chunk, so a citation names one page; but a sentence
                // the page break cut goes on in the same chunk, which then spans both pages.
                let last = section.last();
                let new_page = block.page.is_some() && last.is_some_and(|piece| piece.page != block.page);
                let prose = block.kind == BlockKind::Paragraph;
                let continued = new_page && prose && last.is_some_and(|piece| piece.open);
                if new_page && !continued {
                    pack(&mut chunks, &section, &path(&headings), target, options.overlap_tokens);
                    section.clear();
                }
                let mut first = !continued;
                for text in split_to_fit(&block.text, target) {
                    let tokens = estimate_tokens(&text);
                    let open = prose && !ends_sentence(&text);
                    section.push(Piece { text, tokens, page: block.page, breaks: first, open });
                    first = false;
                }
            }
        }
    }
    pack(&mut chunks, &section, &path(&headings), target, options.overlap_tokens);
    chunks
}

fn path(headings: &[(u8, String)]) -> String {
    headings.iter().map(|(_, text)| text.as_str()).collect::<Vec<_>>().join(" › ")
}

/// Packs a section's pieces into chunks.
fn pack(chunks: &mut Vec<Chunk>, pieces: &[Piece], headings: &str, target: usize, overlap: usize) {
    let mut start = 0;
    while start < pieces.len() {
        let mut end = start;
        let mut tokens = 0;
        while end < pieces.len() && (end == start || tokens + pieces[end].tokens <= target) {
            tokens += pieces[end].tokens;
            end += 1;
        }
        let part = &pieces[start..end];
        let mut text = String::new();
        for (index, piece) in part.iter().enumerate() {
            if index > 0 {
                text.push_str(if piece.breaks { "\n" } else { joiner(&text, &piece.text) });
            }
            text.push_str(&piece.text);
        }
        chunks.push(Chunk {
            text,
            headings: headings.to_owned(),
            page_start: part.iter().find_map(|piece| piece.page),
            page_end: part.iter().rev().find_map(|piece| piece.page),
            tokens,
        });
        if end == pieces.len() {
            break;
        }
        // The next chunk starts with the last pieces of this one that fit in the overlap, but
        // always moves forward.
        let mut next = end;
        let mut shared = 0;
        while next > start + 1 && shared + pieces[next - 1].tokens <= overlap {
            shared += pieces[next - 1].tokens;
            next -= 1;
        }
        start = next;
    }
}

/// Nothing between Chinese sentences, a space between others.
fn joiner(before: &str, after: &str) -> &'static str {
    let cjk = before.chars().last().is_some_and(|c| is_cjk(c) || is_cjk_punctuation(c))
        && after.chars().next().is_some_and(is_cjk);
    if cjk { "" } else { " " }
}

/// Whether `text` ends a sentence (or a line that stands alone, such as a caption's colon).
fn ends_sentence(text: &str) -> bool {
    let closing = |c: char| matches!(c, '"' | '\'' | '”' | '’' | ')' | '）' | '」' | '』' | ']');
    let last = text.trim_end().trim_end_matches(closing).chars().last();
    last.is_none_or(|c| matches!(c, '.' | '!' | '?' | ':' | ';' | '。' | '！' | '？' | '：' | '；' | '…'))
}

fn is_cjk_punctuation(c: char) -> bool {
    matches!(c, '。' | '！' | '？' | '；' | '：' | '，' | '、' | '」' | '』' | '）')
}

/// `text` as pieces of at most `max_tokens`: itself when it fits, else its lines and sentences
/// (greedily joined back up to the limit), and a sentence too long on its own cut by characters.
fn split_to_fit(text: &str, max_tokens: usize) -> Vec<String> {
    if estimate_tokens(text) <= max_tokens {
        return vec![text.to_owned()];
    }
    let mut pieces = Vec::new();
    for sentence in sentences(text) {
        let mut rest = sentence;
        // Each pass reads only as far as one piece: a long text without a sentence end is cut
        // in linear time.
        while let Some(cut) = piece_end(rest, max_tokens) {
            // Prefer to cut at a space near the end.
            let cut = rest[..cut].rfind(' ').filter(|&space| space > cut / 2).unwrap_or(cut);
            pieces.push(rest[..cut].trim().to_owned());
            rest = rest[cut..].trim_start();
        }
        if !rest.trim().is_empty() {
            pieces.push(rest.trim().to_owned());
        }
    }
    // Join short neighbours back together up to the limit.
    let mut joined: Vec<String> = Vec::new();
    for piece in pieces {
        match joined.last_mut() {
            Some(last) if estimate_tokens(last) + estimate_tokens(&piece) <= max_tokens => {
                let join = joiner(last, &piece);
                last.push_str(join);
                last.push_str(&piece);
            }
            _ => joined.push(piece),
        }
    }
    joined
}

/// Where a piece of about `max_tokens` tokens of `text` ends (CJK text is a character a token,
/// other text four bytes), or `None` when all of `text` fits.
fn piece_end(text: &str, max_tokens: usize) -> Option<usize> {
    let mut tokens = 0.0f64;
    let mut end = 0;
    for (at, c) in text.char_indices() {
        tokens += if is_cjk(c) { 1.0 } else { c.len_utf8() as f64 / 4.0 };
        if tokens > max_tokens as f64 {
            // At least one character, so every pass moves on.
            return Some(if end == 0 { at + c.len_utf8() } else { end });
        }
        end = at + c.len_utf8();
    }
    None
}

/// The sentences and lines of `text`, each with its ending punctuation.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let end = at + c.len_utf8();
        let boundary = match c {
            '\n' | '。' | '！' | '？' | '；' => true,
            '.' | '!' | '?' | ';' => chars.peek().is_none_or(|(_, next)| next.is_whitespace()),
            _ => false,
        };
        if boundary {
            if !text[start..end].trim().is_empty() {
                out.push(&text[start..end]);
            }
            start = end;
        }
    }
    if !text[start..].trim().is_empty() {
        out.push(&text[start..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{Block, BlockKind};

    fn block(kind: BlockKind, text: &str, page: Option<u32>) -> Block {
        Block { kind, text: text.to_owned(), page }
    }

    #[test]
    fn estimates_tokens_for_chinese_and_english() {
        assert_eq!(estimate_tokens("研发投入"), 4);
        assert_eq!(estimate_tokens("abcdefgh"), 2);
        assert_eq!(estimate_tokens(""), 0);
    }

    #[test]
    fn chunks_keep_headings_and_pages_and_never_cross_a_heading() {
        let document = Document {
            blocks: vec![
                block(BlockKind::Heading(1), "Annual report", Some(1)),
                block(BlockKind::Heading(2), "R&D", Some(1)),
                block(BlockKind::Paragraph, "We spent more on research.", Some(1)),
                block(BlockKind::Paragraph, "It grew again.", Some(2)),
                block(BlockKind::Heading(2), "Sales", Some(3)),
                block(BlockKind::Paragraph, "Sales were flat.", Some(3)),
            ],
            pages: Some(3),
        };
        let chunks = chunk_document(&document, ChunkOptions::default());
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].headings, "Annual report › R&D");
        assert_eq!(chunks[0].text, "We spent more on research.");
        assert_eq!((chunks[0].page_start, chunks[1].page_start), (Some(1), Some(2)));
        assert_eq!(chunks[1].headings, "Annual report › R&D", "a new page keeps its headings");
        assert_eq!(chunks[2].headings, "Annual report › Sales");
        assert_eq!(chunks[2].page_start, Some(3));
    }

    #[test]
    fn a_sentence_cut_by_a_page_break_stays_whole_and_spans_both_pages() {
        let document = Document {
            blocks: vec![
                block(BlockKind::Paragraph, "Research spending grew by", Some(4)),
                block(BlockKind::Paragraph, "15 percent in 2023. Sales were flat.", Some(5)),
                block(BlockKind::Paragraph, "研发投入占营业收入的", Some(5)),
                block(BlockKind::Paragraph, "百分之八。", Some(6)),
                block(BlockKind::Paragraph, "A new page, a new chunk.", Some(7)),
            ],
            pages: Some(7),
        };
        let chunks = chunk_document(&document, ChunkOptions::default());
        let spans: Vec<_> = chunks.iter().map(|c| (c.text.as_str(), c.page_start, c.page_end)).collect();
        assert_eq!(
            spans,
            [
                (
                    "Research spending grew by 15 percent in 2023. Sales were flat.\n研发投入占营业收入的百分之八。",
                    Some(4),
                    Some(6)
                ),
                ("A new page, a new chunk.", Some(7), Some(7)),
            ]
        );
        assert!(ends_sentence("He said “yes.”") && ends_sentence("") && !ends_sentence("grew by"));
    }

    #[test]
    fn long_text_is_cut_under_the_target_with_overlap() {
        let sentence = "研发投入持续增长，占营业收入的比例达到百分之八。";
        let paragraph = sentence.repeat(60);
        let document = Document { blocks: vec![block(BlockKind::Paragraph, &paragraph, None)], pages: None };
        let options = ChunkOptions { target_tokens: 100, overlap_tokens: 30 };
        let chunks = chunk_document(&document, options);
        assert!(chunks.len() > 10, "{}", chunks.len());
        for chunk in &chunks {
            assert!(chunk.tokens <= 100, "{}", chunk.tokens);
            assert!(chunk.text.starts_with("研发"), "cut inside a sentence: {}", chunk.text);
        }
        // Neighbours share a sentence.
        let last_of_first = chunks[0].text.rsplit('。').nth(1).expect("test value");
        assert!(chunks[1].text.contains(last_of_first));
        // A word with no spaces at all is still cut (by characters).
        let blob = "x".repeat(10_000);
        let chunks =
            chunk_document(&Document { blocks: vec![block(BlockKind::Paragraph, &blob, None)], pages: None }, options);
        assert!(chunks.iter().all(|chunk| chunk.tokens <= 100));
        assert_eq!(chunks.iter().map(|chunk| chunk.text.len()).sum::<usize>(), 10_000);
        // Megabytes without a sentence end are cut in one pass, not one pass per piece.
        let huge = "y".repeat(4 << 20);
        let chunks =
            chunk_document(&Document { blocks: vec![block(BlockKind::Paragraph, &huge, None)], pages: None }, options);
        assert_eq!(chunks.iter().map(|chunk| chunk.text.len()).sum::<usize>(), 4 << 20);
    }
}
