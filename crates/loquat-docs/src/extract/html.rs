//! HTML: the main content as blocks. Scripts, styles, navigation, headers, footers, forms and
//! asides are left out; `<main>` or `<article>`, when the page has one, is read instead of the
//! whole body. Headings stay headings, table rows rows, list items and paragraphs paragraphs.

use scraper::{ElementRef, Html, Node, Selector};

use super::{Block, BlockKind, Document, squeeze};

const SKIPPED: &[&str] =
    &["script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "svg", "iframe", "button"];
const BLOCKS: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "li",
    "blockquote",
    "pre",
    "dd",
    "dt",
    "figcaption",
    "td",
    "th",
    "br",
    "ul",
    "ol",
    "dl",
    "table",
    "body",
];

pub fn extract(source: &str) -> Document {
    let html = Html::parse_document(source);
    let main = ["main", "article", "[role=main]", "body"]
        .iter()
        .filter_map(|selector| Selector::parse(selector).ok())
        .find_map(|selector| html.select(&selector).next());
    let mut blocks = Vec::new();
    let mut current = String::new();
    match main {
        Some(root) => walk(root, &mut blocks, &mut current, 0),
        None => current.push_str(&html.root_element().text().collect::<String>()),
    }
    flush(&mut blocks, &mut current, BlockKind::Paragraph);
    Document { blocks, pages: None }
}

fn flush(blocks: &mut Vec<Block>, current: &mut String, kind: BlockKind) {
    let text = squeeze(current);
    if !text.is_empty() {
        blocks.push(Block { kind, text, page: None });
    }
    current.clear();
}

/// Elements nested deeper than this are read as plain text (a hostile page cannot exhaust the
/// stack).
const MAX_DEPTH: usize = 128;

fn walk(element: ElementRef<'_>, blocks: &mut Vec<Block>, current: &mut String, depth: usize) {
    if depth > MAX_DEPTH {
        current.extend(element.text());
        return;
    }
    for child in element.children() {
        match child.value() {
            Node::Text(text) => current.push_str(text),
            Node::Element(tag) => {
                let name = tag.name();
                if SKIPPED.contains(&name) {
                    continue;
                }
                let Some(child) = ElementRef::wrap(child) else { continue };
                if let Some(level) =
                    name.strip_prefix('h').and_then(|n| n.parse::<u8>().ok()).filter(|l| (1..=6).contains(l))
                {
                    flush(blocks, current, BlockKind::Paragraph);
                    current.extend(child.text());
                    flush(blocks, current, BlockKind::Heading(level));
                } else if name == "tr" {
                    flush(blocks, current, BlockKind::Paragraph);
                    let cells: Vec<String> = child
                        .children()
                        .filter_map(ElementRef::wrap)
                        .map(|cell| squeeze(&cell.text().collect::<String>()))
                        .collect();
                    if cells.iter().any(|cell| !cell.is_empty()) {
                        blocks.push(Block { kind: BlockKind::Row, text: cells.join(" | "), page: None });
                    }
                } else if BLOCKS.contains(&name) {
                    flush(blocks, current, BlockKind::Paragraph);
                    walk(child, blocks, current, depth + 1);
                    flush(blocks, current, BlockKind::Paragraph);
                } else {
                    walk(child, blocks, current, depth + 1);
                }
            }
            _ => {}
        }
    }
}
