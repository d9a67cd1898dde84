//! Word (DOCX) and PowerPoint (PPTX): zip archives of XML. Every member is read through a bounded
//! reader (a zip bomb posing as a document stops at the limit), and only the members that hold
//! text are read at all.
//!
//! Word: paragraphs in order, headings from their style (the style's name, `heading 1`…, is
//! English in every language's Word, its id is not) or outline level, tables as rows.
//! PowerPoint: slides in number order, each a page; a title placeholder's text is a heading.

use std::collections::HashMap;
use std::io::{Cursor, Read, Seek};

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use super::{Block, BlockKind, Document, ExtractError, Limits, read_bounded, squeeze};

/// A zip archive whose members are read under the limits.
pub(crate) struct Archive<R> {
    zip: zip::ZipArchive<R>,
    read_so_far: u64,
    limits: Limits,
}

/// More members than any real document has: a crafted archive.
const MAX_MEMBERS: usize = 20_000;

impl<R: Read + Seek> Archive<R> {
    pub fn open(reader: R, limits: &Limits) -> Result<Self, ExtractError> {
        let zip = zip::ZipArchive::new(reader).map_err(|error| ExtractError::Corrupt(error.to_string()))?;
        if zip.len() > MAX_MEMBERS {
            return Err(ExtractError::Corrupt(format!("{} archive members", zip.len())));
        }
        Ok(Self { zip, read_so_far: 0, limits: *limits })
    }

    pub fn names(&self) -> Vec<String> {
        self.zip.file_names().map(str::to_owned).collect()
    }

    /// A member's bytes, or `None` when the archive has no such member.
    pub fn read(&mut self, name: &str) -> Result<Option<Vec<u8>>, ExtractError> {
        let member = match self.zip.by_name(name) {
            Ok(member) => member,
            Err(zip::result::ZipError::FileNotFound) => return Ok(None),
            Err(zip::result::ZipError::UnsupportedArchive(message)) if message.contains("ncrypt") => {
                return Err(ExtractError::Encrypted);
            }
            Err(error) => return Err(ExtractError::Corrupt(error.to_string())),
        };
        let left = self.limits.max_total_bytes.saturating_sub(self.read_so_far);
        let limit = self.limits.max_part_bytes.min(left);
        let bytes = read_bounded(member, limit)?;
        self.read_so_far += bytes.len() as u64;
        Ok(Some(bytes))
    }
}

/// The parts of an XML document that matter here.
enum Xml<'a> {
    Start(&'a BytesStart<'a>),
    End(&'a [u8]),
    Text(&'a str),
}

/// Walks `xml`, calling `on` for element starts (an empty element is a start then an end),
/// element ends (by local name) and text with entities resolved.
fn walk(xml: &[u8], mut on: impl FnMut(Xml<'_>)) -> Result<(), ExtractError> {
    let mut reader = Reader::from_reader(xml);
    let mut buffer = Vec::new();
    loop {
        let event = reader.read_event_into(&mut buffer).map_err(|error| ExtractError::Corrupt(error.to_string()))?;
        match &event {
            Event::Start(start) => on(Xml::Start(start)),
            Event::Empty(start) => {
                on(Xml::Start(start));
                on(Xml::End(start.local_name().into_inner()));
            }
            Event::End(end) => on(Xml::End(end.local_name().into_inner())),
            Event::Text(text) => {
                let text = text.decode().map_err(|error| ExtractError::Corrupt(error.to_string()))?;
                on(Xml::Text(&text));
            }
            Event::CData(data) => on(Xml::Text(&String::from_utf8_lossy(data))),
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(c)) => Some(c.to_string()),
                    _ => reference
                        .decode()
                        .ok()
                        .and_then(|name| quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned)),
                };
                if let Some(text) = resolved {
                    on(Xml::Text(&text));
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buffer.clear();
    }
}

/// The value of attribute `local` (any prefix) of `start`.
fn attribute(start: &BytesStart<'_>, local: &[u8]) -> Option<String> {
    let attr = start.attributes().flatten().find(|attr| attr.key.local_name().into_inner() == local)?;
    let raw = String::from_utf8_lossy(&attr.value);
    quick_xml::escape::unescape(&raw).ok().map(|value| value.into_owned())
}

fn name<'a>(start: &'a BytesStart<'a>) -> &'a [u8] {
    start.local_name().into_inner()
}

/// Heading levels of the document's paragraph styles, by style id.
fn heading_styles(styles: &[u8]) -> Result<HashMap<String, u8>, ExtractError> {
    let mut levels = HashMap::new();
    let mut style: Option<String> = None;
    walk(styles, |event| match event {
        Xml::Start(start) if name(start) == b"style" => style = attribute(start, b"styleId"),
        Xml::Start(start) if name(start) == b"name" => {
            if let (Some(id), Some(value)) = (&style, attribute(start, b"val")) {
                let lower = value.to_ascii_lowercase();
                let level = match lower.as_str() {
                    "title" => Some(1),
                    _ => lower.strip_prefix("heading ").and_then(|n| n.trim().parse::<u8>().ok()),
                };
                if let Some(level) = level {
                    levels.insert(id.clone(), level.clamp(1, 6));
                }
            }
        }
        Xml::Start(start) if name(start) == b"outlineLvl" => {
            if let (Some(id), Some(level)) = (&style, attribute(start, b"val").and_then(|v| v.parse::<u8>().ok()))
                && level < 9
            {
                levels.entry(id.clone()).or_insert((level + 1).min(6));
            }
        }
        Xml::End(b"style") => style = None,
        _ => {}
    })?;
    Ok(levels)
}

pub fn docx(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    let mut archive = Archive::open(Cursor::new(bytes), limits)?;
    let body =
        archive.read("word/document.xml")?.ok_or_else(|| ExtractError::Corrupt("no word/document.xml".into()))?;
    let styles = match archive.read("word/styles.xml")? {
        Some(styles) => heading_styles(&styles)?,
        None => HashMap::new(),
    };
    let mut blocks = Vec::new();
    let mut paragraph = String::new();
    let mut level: Option<u8> = None;
    let mut in_text = false;
    // Tables: the cells of the row being read, the text of the cell being read, and how deep
    // in nested tables (a nested table's text joins its outer cell).
    let mut table_depth = 0u32;
    let mut cells: Vec<String> = Vec::new();
    let mut cell = String::new();
    walk(&body, |event| match event {
        Xml::Start(start) => match name(start) {
            b"p" => {
                paragraph.clear();
                level = None;
            }
            b"pStyle" => level = attribute(start, b"val").and_then(|id| styles.get(&id).copied()).or(level),
            b"outlineLvl" => {
                level = attribute(start, b"val")
                    .and_then(|v| v.parse::<u8>().ok())
                    .filter(|&l| l < 9)
                    .map(|l| (l + 1).min(6))
            }
            b"t" => in_text = true,
            b"tab" => paragraph.push(' '),
            b"br" | b"cr" => paragraph.push('\n'),
            b"tbl" => table_depth += 1,
            b"tr" if table_depth == 1 => cells.clear(),
            b"tc" if table_depth == 1 => cell.clear(),
            _ => {}
        },
        Xml::Text(text) if in_text => paragraph.push_str(text),
        Xml::End(b"t") => in_text = false,
        Xml::End(b"p") => {
            let text = paragraph.trim();
            if table_depth > 0 {
                if !text.is_empty() {
                    if !cell.is_empty() {
                        cell.push(' ');
                    }
                    cell.push_str(&squeeze(text));
                }
            } else if !text.is_empty() {
                let kind = level.map_or(BlockKind::Paragraph, BlockKind::Heading);
                let text = if kind == BlockKind::Paragraph { text.to_owned() } else { squeeze(text) };
                blocks.push(Block { kind, text, page: None });
            }
            paragraph.clear();
        }
        Xml::End(b"tc") if table_depth == 1 => cells.push(std::mem::take(&mut cell)),
        Xml::End(b"tr") if table_depth == 1 => {
            if cells.iter().any(|cell| !cell.is_empty()) {
                blocks.push(Block { kind: BlockKind::Row, text: cells.join(" | "), page: None });
            }
            cells.clear();
        }
        Xml::End(b"tbl") => table_depth = table_depth.saturating_sub(1),
        _ => {}
    })?;
    Ok(Document { blocks, pages: None })
}

/// `ppt/slides/slide12.xml` → 12.
fn slide_number(name: &str) -> Option<u32> {
    name.strip_prefix("ppt/slides/slide")?.strip_suffix(".xml")?.parse().ok()
}

pub fn pptx(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    let mut archive = Archive::open(Cursor::new(bytes), limits)?;
    let mut slides: Vec<(u32, String)> =
        archive.names().into_iter().filter_map(|name| slide_number(&name).map(|n| (n, name))).collect();
    slides.sort_unstable();
    let mut blocks = Vec::new();
    for (number, member) in &slides {
        let Some(xml) = archive.read(member)? else { continue };
        let mut paragraph = String::new();
        let mut in_text = false;
        let mut title_shape = false;
        walk(&xml, |event| match event {
            Xml::Start(start) => match name(start) {
                b"sp" => title_shape = false,
                b"ph" => {
                    title_shape = matches!(attribute(start, b"type").as_deref(), Some("title" | "ctrTitle"));
                }
                b"p" => paragraph.clear(),
                b"t" => in_text = true,
                b"br" => paragraph.push('\n'),
                _ => {}
            },
            Xml::Text(text) if in_text => paragraph.push_str(text),
            Xml::End(b"t") => in_text = false,
            Xml::End(b"p") => {
                let text = paragraph.trim();
                if !text.is_empty() {
                    let kind = if title_shape { BlockKind::Heading(1) } else { BlockKind::Paragraph };
                    blocks.push(Block { kind, text: text.to_owned(), page: Some(*number) });
                }
                paragraph.clear();
            }
            _ => {}
        })?;
    }
    Ok(Document { blocks, pages: Some(slides.len() as u32) })
}
