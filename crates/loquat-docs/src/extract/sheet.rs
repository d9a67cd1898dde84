//! Spreadsheets (XLSX, XLS, ODS through calamine) and CSV: each sheet a section headed by its
//! name, each row a block. When the first row is a header (text in every filled cell), each
//! later row names its cells (`Year: 2023 | R&D: 1.2`), so a row found alone still says what its
//! numbers are.

use std::io::Cursor;

use calamine::{Data, Reader};

use super::office::Archive;
use super::{Block, BlockKind, Document, ExtractError, Limits};

pub fn spreadsheet(bytes: &[u8], limits: &Limits) -> Result<Document, ExtractError> {
    if bytes.starts_with(b"PK") {
        // XLSX and ODS are zip archives: every member is inflated once under the limits before
        // calamine, which reads whole members, sees them.
        let mut archive = Archive::open(Cursor::new(bytes), limits)?;
        for name in archive.names() {
            archive.read(&name)?;
        }
    }
    let mut workbook =
        calamine::open_workbook_auto_from_rs(Cursor::new(bytes)).map_err(|error| match error.to_string() {
            message if message.contains("ncrypt") || message.contains("assword") => ExtractError::Encrypted,
            message => ExtractError::Corrupt(message),
        })?;
    let mut blocks = Vec::new();
    for name in workbook.sheet_names() {
        let range = workbook.worksheet_range(&name).map_err(|error| ExtractError::Corrupt(error.to_string()))?;
        let rows = range.rows().map(|row| row.iter().map(cell_text).collect::<Vec<String>>());
        push_table(&mut blocks, Some(&name), rows, limits.max_text_chars);
    }
    Ok(Document { blocks, pages: None })
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::Float(value) if value.fract() == 0.0 && value.abs() < 1e15 => format!("{}", *value as i64),
        other => other.to_string().trim().to_owned(),
    }
}

pub fn csv(text: &str, limits: &Limits) -> Document {
    let mut reader = ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let rows = reader
        .records()
        .map_while(Result::ok)
        .map(|record| record.iter().map(|cell| cell.trim().to_owned()).collect::<Vec<String>>());
    let mut blocks = Vec::new();
    push_table(&mut blocks, None, rows, limits.max_text_chars);
    Document { blocks, pages: None }
}

/// One table's rows as blocks, under a heading when it has a name; stops after `max_chars`.
fn push_table(blocks: &mut Vec<Block>, name: Option<&str>, rows: impl Iterator<Item = Vec<String>>, max_chars: usize) {
    if let Some(name) = name {
        blocks.push(Block { kind: BlockKind::Heading(1), text: name.to_owned(), page: None });
    }
    let mut header: Option<Vec<String>> = None;
    let mut first = true;
    let mut written = 0usize;
    for cells in rows {
        if cells.iter().all(String::is_empty) {
            continue;
        }
        let text = match &header {
            Some(names) => cells
                .iter()
                .enumerate()
                .filter(|(_, cell)| !cell.is_empty())
                .map(|(index, cell)| match names.get(index).filter(|name| !name.is_empty()) {
                    Some(name) => format!("{name}: {cell}"),
                    None => cell.clone(),
                })
                .collect::<Vec<_>>()
                .join(" | "),
            None => cells.join(" | ").trim_matches([' ', '|']).to_owned(),
        };
        if first {
            first = false;
            let filled: Vec<&String> = cells.iter().filter(|cell| !cell.is_empty()).collect();
            if filled.len() > 1 && filled.iter().all(|cell| cell.parse::<f64>().is_err()) {
                header = Some(cells);
            }
        }
        written += text.len();
        blocks.push(Block { kind: BlockKind::Row, text, page: None });
        if written > max_chars {
            break;
        }
    }
}
