//! Plain text, code, JSON and Markdown: paragraphs split at blank lines; Markdown's ATX headings
//! become headings, its table lines rows, and a fenced code block stays one paragraph.

use super::{Block, BlockKind, Document};

/// Text in UTF-8 (with or without a byte-order mark), UTF-16 with a mark, or else GB18030 (a
/// superset of GBK, what Chinese Windows writes), which every byte sequence decodes as.
pub fn decode(bytes: &[u8]) -> String {
    if let Some((encoding, skip)) = encoding_rs::Encoding::for_bom(bytes) {
        return encoding.decode_without_bom_handling(&bytes[skip..]).0.into_owned();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => encoding_rs::GB18030.decode_without_bom_handling(bytes).0.into_owned(),
    }
}

fn paragraph(text: &str) -> Block {
    Block { kind: BlockKind::Paragraph, text: text.trim_end().to_owned(), page: None }
}

pub fn plain(text: &str) -> Document {
    let mut blocks = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !current.trim().is_empty() {
                blocks.push(paragraph(&current));
            }
            current.clear();
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line.trim_end());
        }
    }
    if !current.trim().is_empty() {
        blocks.push(paragraph(&current));
    }
    Document { blocks, pages: None }
}

/// The level and text of an ATX heading (`## Title`).
fn heading(line: &str) -> Option<(u8, &str)> {
    let trimmed = line.trim_start();
    if line.len() - trimmed.len() > 3 {
        return None;
    }
    let level = trimmed.bytes().take_while(|&b| b == b'#').count();
    let rest = &trimmed[level..];
    if !(1..=6).contains(&level) || !(rest.is_empty() || rest.starts_with([' ', '\t'])) {
        return None;
    }
    let text = rest.trim().trim_end_matches('#').trim_end();
    Some((level as u8, text))
}

pub fn markdown(text: &str) -> Document {
    let mut blocks = Vec::new();
    let mut current = String::new();
    let mut fence: Option<&str> = None;
    let flush = |current: &mut String, blocks: &mut Vec<Block>| {
        if !current.trim().is_empty() {
            blocks.push(paragraph(current));
        }
        current.clear();
    };
    for line in text.lines() {
        let trimmed = line.trim_start();
        if let Some(marker) = fence {
            current.push('\n');
            current.push_str(line);
            if trimmed.starts_with(marker) {
                fence = None;
                flush(&mut current, &mut blocks);
            }
            continue;
        }
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            flush(&mut current, &mut blocks);
            fence = Some(&trimmed[..3]);
            current.push_str(line);
            continue;
        }
        if let Some((level, title)) = heading(line) {
            flush(&mut current, &mut blocks);
            if !title.is_empty() {
                blocks.push(Block { kind: BlockKind::Heading(level), text: title.to_owned(), page: None });
            }
            continue;
        }
        if trimmed.starts_with('|') {
            flush(&mut current, &mut blocks);
            let cells: Vec<&str> = trimmed.trim_matches('|').split('|').map(str::trim).collect();
            // The line under a table's header (`|---|:--:|`) says nothing.
            if !cells.iter().all(|cell| !cell.is_empty() && cell.chars().all(|c| matches!(c, '-' | ':'))) {
                blocks.push(Block { kind: BlockKind::Row, text: cells.join(" | "), page: None });
            }
            continue;
        }
        if trimmed.is_empty() {
            flush(&mut current, &mut blocks);
        } else {
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(line.trim_end());
        }
    }
    flush(&mut current, &mut blocks);
    Document { blocks, pages: None }
}
