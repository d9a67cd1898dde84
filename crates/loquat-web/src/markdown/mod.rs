//! Markdown → safe HTML for model answers and user messages: the public API (`render`,
//! `render_streaming`, `plain_excerpt`, `highlight_css`, `warm_up`) and the pulldown-cmark
//! event pass that neutralises raw HTML and swaps in our own links, images, code, math and
//! footnotes before ammonia cleans the result. Rendering is linear in the text (`limits`).

mod excerpt;
mod highlight;
mod images;
mod limits;
mod linkify;
mod math;
mod palette;
mod sanitize;
mod streaming;

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use pulldown_cmark::{CodeBlockKind, CowStr, Event, LinkType, Options, Parser, Tag, TagEnd, TextMergeWithOffset};

pub use images::{ImageHosts, InvalidImageHost};

/// Renders markdown (GFM flavoured, with `$…$` math) to sanitised HTML.
///
/// Raw HTML in the input is shown as text; links are limited to http, https and mailto; remote
/// images load only from `images` (others become links); the result is passed through an
/// ammonia allow-list as a last line of defence. Time is linear in the text: containers nested
/// deeper than [`limits::MAX_NESTING`] are shown as source, and a text past the size or event
/// budget is shown as plain paragraphs.
pub fn render(text: &str, images: &ImageHosts) -> String {
    let transformed = (text.len() <= limits::MAX_MARKDOWN_BYTES).then(|| transform(text, images)).flatten();
    let Some((events, highlighted)) = transformed else {
        return render_plain(text);
    };
    let mut html = String::with_capacity(text.len() + text.len() / 2 + 64);
    pulldown_cmark::html::push_html(&mut html, events.into_iter());
    highlight::splice(sanitize::clean(&html, !images.is_empty()), &highlighted)
}

/// Like [`render`], for an answer that is still streaming: an unclosed code fence at the end
/// is closed first, so a half-written block renders as a block.
pub fn render_streaming(text: &str, images: &ImageHosts) -> String {
    render(&streaming::close_open_fence(text), images)
}

/// The text as escaped paragraphs with line breaks and no markdown (what [`render`] falls back
/// to past its budget; also the fallback when rendering fails).
pub fn render_plain(text: &str) -> String {
    let mut html = String::with_capacity(text.len() + 64);
    pulldown_cmark::html::push_html(&mut html, limits::plain_events(text).into_iter());
    sanitize::clean(&html, false)
}

/// The text with markdown syntax removed and whitespace collapsed, cut to at most `max_chars`
/// characters (the last being "…" when cut). For titles of untitled topics and previews.
pub fn plain_excerpt(text: &str, max_chars: usize) -> String {
    excerpt::plain_excerpt(text, max_chars)
}

/// CSS for the `hl-` token classes of highlighted code, light and dark themes.
pub fn highlight_css() -> String {
    highlight::css()
}

/// Builds the sanitizer ahead of the first request (small, needed by every message). The
/// syntax set (several MiB) waits for the first code block: an instance that never shows code
/// never pays for it.
pub fn warm_up() {
    sanitize::warm_up();
}

/// The markdown extensions we enable (shared with the excerpt pass).
fn options() -> Options {
    Options::ENABLE_TABLES
        | Options::ENABLE_FOOTNOTES
        | Options::ENABLE_STRIKETHROUGH
        | Options::ENABLE_TASKLISTS
        | Options::ENABLE_MATH
        | Options::ENABLE_GFM
}

/// Parses `text` and rewrites the event stream so that everything pulldown-cmark's HTML writer
/// will emit verbatim (`Event::Html`) was produced here, from escaped pieces. Also returns the
/// highlighted code blocks, spliced in after sanitizing (see [`highlight::code_block`]).
/// `None` past the event budget.
fn transform<'a>(text: &'a str, images: &ImageHosts) -> Option<(Vec<Event<'a>>, Vec<Arc<str>>)> {
    let mut pass = Pass {
        text,
        images,
        out: Vec::new(),
        highlighted: Vec::new(),
        depth: 0,
        budget: limits::Budget::new(),
        links: Vec::new(),
        link_depth: 0,
        html_break: false,
        footnotes: HashMap::new(),
        fn_key: None,
    };
    let mut events = TextMergeWithOffset::new(Parser::new_ext(text, options()).into_offset_iter());
    while let Some((event, range)) = events.next() {
        pass.event(event, range, &mut events);
        if pass.out.len() > limits::MAX_EVENTS {
            return None;
        }
    }
    Some((pass.out, pass.highlighted))
}

/// The parser's events with the source range of each.
type Spanned<'a> = (Event<'a>, Range<usize>);

struct Pass<'a, 'p> {
    text: &'a str,
    images: &'p ImageHosts,
    out: Vec<Event<'a>>,
    highlighted: Vec<Arc<str>>,
    /// Open containers (see [`limits::MAX_NESTING`]).
    depth: usize,
    budget: limits::Budget,
    /// For each open link: whether we emitted an `<a>` (the URL was allowed).
    links: Vec<bool>,
    link_depth: usize,
    /// Inside a raw HTML block: a line break is due before the next line of text.
    html_break: bool,
    footnotes: HashMap<String, usize>,
    /// Per-message part of footnote ids, so several messages on one page don't share ids.
    fn_key: Option<String>,
}

impl<'a> Pass<'a, '_> {
    fn event(&mut self, event: Event<'a>, range: Range<usize>, rest: &mut impl Iterator<Item = Spanned<'a>>) {
        match &event {
            // Consumed whole below (or ignored), so they open nothing.
            Event::Start(Tag::CodeBlock(_) | Tag::Image { .. } | Tag::MetadataBlock(_))
            | Event::End(TagEnd::MetadataBlock(_)) => {}
            Event::Start(tag) if self.depth + limits::levels(tag) > limits::MAX_NESTING => {
                return self.too_deep(limits::is_block(tag), range, rest);
            }
            Event::Start(_) => self.depth += 1,
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        match event {
            Event::Start(Tag::CodeBlock(kind)) => {
                let lang = match &kind {
                    CodeBlockKind::Fenced(info) => info.split_whitespace().next().unwrap_or(""),
                    CodeBlockKind::Indented => "",
                };
                let mut code = String::new();
                for (inner, _) in rest.by_ref() {
                    match inner {
                        Event::Text(t) => code.push_str(&t),
                        Event::End(TagEnd::CodeBlock) => break,
                        _ => {}
                    }
                }
                let html = highlight::code_block(lang, &code, &mut self.highlighted, &mut self.budget.highlight_bytes);
                self.html(html);
            }
            Event::Start(Tag::Image { dest_url, title, .. }) => {
                let alt = collect_alt(rest);
                self.image(&dest_url, &title, alt);
            }
            Event::Start(Tag::Link { link_type, dest_url, title, .. }) => {
                self.link_depth += 1;
                let href = match link_type {
                    LinkType::Email => format!("mailto:{dest_url}"),
                    _ => dest_url.to_string(),
                };
                let allowed = is_http(&href) || is_mailto(&href);
                if allowed {
                    self.html(link_open(&href, &title));
                }
                self.links.push(allowed);
            }
            Event::End(TagEnd::Link) => {
                self.link_depth = self.link_depth.saturating_sub(1);
                if self.links.pop().unwrap_or(false) {
                    self.html("</a>".to_owned());
                }
            }
            Event::Start(Tag::HtmlBlock) => self.html("<p>".to_owned()),
            Event::End(TagEnd::HtmlBlock) => {
                self.html_break = false;
                self.html("</p>\n".to_owned());
            }
            // Raw HTML is shown as the text it is, keeping its line breaks.
            Event::Html(raw) => {
                for (i, line) in raw.split('\n').enumerate() {
                    self.html_break |= i > 0;
                    if line.is_empty() {
                        continue;
                    }
                    if std::mem::take(&mut self.html_break) {
                        self.out.push(Event::HardBreak);
                    }
                    self.out.push(Event::Text(line.to_owned().into()));
                }
            }
            Event::InlineHtml(raw) if is_br(&raw) => self.out.push(Event::HardBreak),
            Event::InlineHtml(raw) => self.out.push(Event::Text(raw)),
            Event::Text(t) if self.link_depth == 0 => self.text(t),
            Event::InlineMath(src) => self.math(&src, false),
            Event::DisplayMath(src) => self.math(&src, true),
            Event::FootnoteReference(name) => {
                let (id, n) = self.footnote(&name);
                self.html(format!("<sup class=\"footnote-reference\"><a href=\"#{id}\">{n}</a></sup>"));
            }
            Event::Start(Tag::FootnoteDefinition(name)) => {
                let (id, n) = self.footnote(&name);
                self.html(format!(
                    "<div class=\"footnote-definition\" id=\"{id}\"><sup class=\"footnote-definition-label\">{n}</sup>"
                ));
            }
            Event::End(TagEnd::FootnoteDefinition) => self.html("</div>\n".to_owned()),
            Event::Start(Tag::Heading { level, .. }) => {
                self.out.push(Event::Start(Tag::Heading { level, id: None, classes: Vec::new(), attrs: Vec::new() }));
            }
            Event::Start(Tag::MetadataBlock(_)) | Event::End(TagEnd::MetadataBlock(_)) => {}
            other => self.out.push(other),
        }
    }

    /// Trusted HTML produced by this module (all user text inside it already escaped).
    fn html(&mut self, html: String) {
        self.out.push(Event::Html(html.into()));
    }

    /// A container nested too deep: skips its events and shows its markdown source instead
    /// (a paragraph of lines for a block, text for an inline element).
    fn too_deep(&mut self, block: bool, range: Range<usize>, rest: &mut impl Iterator<Item = Spanned<'a>>) {
        let mut open = 1usize;
        for (inner, _) in rest.by_ref() {
            match inner {
                Event::Start(_) => open += 1,
                Event::End(_) => open -= 1,
                _ => {}
            }
            if open == 0 {
                break;
            }
        }
        let source = &self.text[range];
        if !block {
            self.out.push(Event::Text(source.into()));
            return;
        }
        self.html("<p>".to_owned());
        for (i, line) in source.lines().enumerate() {
            if i > 0 {
                self.out.push(Event::HardBreak);
            }
            self.out.push(Event::Text(line.into()));
        }
        self.html("</p>\n".to_owned());
    }

    /// An `<img>` for an https image on an allowed host; any other web image becomes a link
    /// to it (loading it would tell its host the URL without the user asking); others: the alt.
    fn image(&mut self, url: &str, title: &str, alt: String) {
        if self.images.allows(url) {
            let mut h = String::from("<img src=\"");
            escape_url(&mut h, url);
            h.push_str("\" alt=\"");
            escape_attr(&mut h, &alt);
            if !title.is_empty() {
                h.push_str("\" title=\"");
                escape_attr(&mut h, title);
            }
            h.push_str("\" loading=\"lazy\" referrerpolicy=\"no-referrer\">");
            self.html(h);
        } else if is_http(url) {
            let label = if alt.trim().is_empty() { url.to_owned() } else { alt };
            // Inside a link the label is enough (links do not nest).
            if self.link_depth == 0 {
                let mut h = link_open(url, title);
                h.insert_str(2, " class=\"image-link\"");
                self.html(h);
                self.out.push(Event::Text(label.into()));
                self.html("</a>".to_owned());
            } else {
                self.out.push(Event::Text(label.into()));
            }
        } else if !alt.is_empty() {
            self.out.push(Event::Text(alt.into()));
        }
    }

    /// MathML while the render's math budget lasts, then the source.
    fn math(&mut self, src: &str, display: bool) {
        let html = if limits::Budget::take(&mut self.budget.math_bytes, src.len()) {
            math::render(src, display)
        } else {
            math::source_html(src, display)
        };
        self.html(html);
    }

    /// Plain text outside links: bare URLs become links.
    fn text(&mut self, text: CowStr<'a>) {
        let Some(pieces) = linkify::split(&text) else {
            self.out.push(Event::Text(text));
            return;
        };
        for piece in pieces {
            match piece {
                linkify::Piece::Text(t) => self.out.push(Event::Text(t.to_owned().into())),
                linkify::Piece::Url { text, href } => {
                    self.html(link_open(&href, ""));
                    self.out.push(Event::Text(text.to_owned().into()));
                    self.html("</a>".to_owned());
                }
            }
        }
    }

    /// The element id and number of footnote `name` (numbered on first sight). The id is only
    /// ASCII letters, digits and `-`, so it is safe in attributes as is.
    fn footnote(&mut self, name: &str) -> (String, usize) {
        let next = self.footnotes.len() + 1;
        let n = *self.footnotes.entry(name.to_owned()).or_insert(next);
        let text = self.text;
        let key = self.fn_key.get_or_insert_with(|| format!("{:08x}", fnv1a(text)));
        (format!("fn-{key}-{n}"), n)
    }
}

/// Consumes the events of an image up to its end, returning the alt text.
fn collect_alt<'a>(rest: &mut impl Iterator<Item = Spanned<'a>>) -> String {
    let mut alt = String::new();
    let mut depth = 1usize;
    for (inner, _) in rest.by_ref() {
        match inner {
            Event::Start(Tag::Image { .. }) => depth += 1,
            Event::End(TagEnd::Image) => {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            Event::Text(t) | Event::Code(t) | Event::InlineMath(t) | Event::DisplayMath(t) => alt.push_str(&t),
            Event::SoftBreak | Event::HardBreak => alt.push(' '),
            _ => {}
        }
    }
    alt
}

/// `<a href=… [title=…] [target=_blank]>`; `rel` is added by the sanitizer on every link.
fn link_open(href: &str, title: &str) -> String {
    let mut h = String::with_capacity(href.len() + 48);
    h.push_str("<a href=\"");
    escape_url(&mut h, href);
    h.push('"');
    if !title.is_empty() {
        h.push_str(" title=\"");
        escape_attr(&mut h, title);
        h.push('"');
    }
    if is_http(href) {
        h.push_str(" target=\"_blank\"");
    }
    h.push('>');
    h
}

fn has_prefix_ignore_case(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

fn is_http(url: &str) -> bool {
    has_prefix_ignore_case(url, "https://") || has_prefix_ignore_case(url, "http://")
}

fn is_mailto(url: &str) -> bool {
    has_prefix_ignore_case(url, "mailto:") && url.len() > "mailto:".len()
}

/// `<br>`, `<br/>`, `<br />` (any case): the one inline tag models use a lot (in table cells).
fn is_br(raw: &str) -> bool {
    let inner = raw.trim().trim_start_matches('<').trim_end_matches('>').trim_end_matches('/').trim();
    inner.eq_ignore_ascii_case("br")
}

fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193))
}

/// Escapes text content (`&`, `<`, `>`).
pub(crate) fn escape_text(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// Escapes a double- or single-quoted attribute value.
pub(crate) fn escape_attr(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            _ => out.push(c),
        }
    }
}

/// Writes a URL for a quoted `href`/`src`: URL punctuation kept, everything else
/// (spaces, quotes, angle brackets, controls, non-ASCII) percent-encoded.
pub(crate) fn escape_url(out: &mut String, url: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in url.bytes() {
        match b {
            b'&' => out.push_str("&amp;"),
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => out.push(char::from(b)),
            b'-' | b'_' | b'.' | b'~' | b'!' | b'*' | b'(' | b')' | b';' | b':' | b'@' | b'=' | b'+' | b'$' | b',' => {
                out.push(char::from(b))
            }
            b'/' | b'?' | b'#' | b'[' | b']' | b'%' => out.push(char::from(b)),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xf)]));
            }
        }
    }
}

#[cfg(test)]
mod tests;
