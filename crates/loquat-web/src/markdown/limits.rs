//! What bounds one render, so a hostile message (or model answer) costs time linear in its
//! length: a nesting limit (HTML nested thousands deep makes the sanitizer's parser quadratic),
//! budgets for the expensive parts (highlighting, math, output size), and the plain-text
//! fallback used past them.

use pulldown_cmark::{Event, Tag, TagEnd};

/// Deepest nesting of markdown containers (quotes, lists, emphasis, links…). A container that
/// would open deeper is shown as its markdown source.
pub(crate) const MAX_NESTING: usize = 32;

/// Longer texts are shown as plain text.
pub(crate) const MAX_MARKDOWN_BYTES: usize = 1024 * 1024;

/// Past this many events the text is shown as plain text (about a 2,000-row table; tens of
/// milliseconds of sanitizing).
pub(crate) const MAX_EVENTS: usize = 100_000;

/// Code highlighted per render (cache misses only); later blocks are shown plain. syntect
/// costs ~0.2 ms per line.
pub(crate) const MAX_HIGHLIGHT_BYTES: usize = 64 * 1024;

/// Math source rendered to MathML per render; later formulas are shown as source.
pub(crate) const MAX_MATH_BYTES: usize = 64 * 1024;

/// What is left of one render's budgets.
pub(crate) struct Budget {
    pub(crate) highlight_bytes: usize,
    pub(crate) math_bytes: usize,
}

impl Budget {
    pub(crate) fn new() -> Self {
        Self { highlight_bytes: MAX_HIGHLIGHT_BYTES, math_bytes: MAX_MATH_BYTES }
    }

    /// Takes `bytes` from `left` if that much is left.
    pub(crate) fn take(left: &mut usize, bytes: usize) -> bool {
        let ok = bytes <= *left;
        if ok {
            *left -= bytes;
        }
        ok
    }
}

/// How many levels of nesting a container needs for itself and the children it must have
/// (a list needs its items, a table its rows and cells).
pub(crate) fn levels(tag: &Tag<'_>) -> usize {
    match tag {
        Tag::Table(_) => 3,
        Tag::List(_) | Tag::DefinitionList => 2,
        _ => 1,
    }
}

/// Block containers (shown as a paragraph of source when too deep); the rest are inline.
pub(crate) fn is_block(tag: &Tag<'_>) -> bool {
    !matches!(
        tag,
        Tag::Emphasis
            | Tag::Strong
            | Tag::Strikethrough
            | Tag::Superscript
            | Tag::Subscript
            | Tag::Link { .. }
            | Tag::Image { .. }
    )
}

/// The text as paragraphs (blank lines) with line breaks, no markdown: the fallback past a
/// budget. Linear in the text, and the sanitizer sees nesting depth 1.
pub(crate) fn plain_events(text: &str) -> Vec<Event<'_>> {
    let mut events = Vec::new();
    let mut open = false;
    for line in text.lines() {
        if line.trim().is_empty() {
            if std::mem::take(&mut open) {
                events.push(Event::End(TagEnd::Paragraph));
            }
            continue;
        }
        if open {
            events.push(Event::HardBreak);
        } else {
            events.push(Event::Start(Tag::Paragraph));
            open = true;
        }
        events.push(Event::Text(line.into()));
    }
    if open {
        events.push(Event::End(TagEnd::Paragraph));
    }
    events
}
