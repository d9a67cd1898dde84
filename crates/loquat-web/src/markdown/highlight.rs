//! Fenced code blocks: syntax highlighting by CSS class with syntect (`hl-` prefixed token
//! classes, no inline colours) and the stylesheet for those classes in a light and a dark theme.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock, Mutex};

use syntect::highlighting::ThemeSet;
use syntect::html::{ClassStyle, ClassedHTMLGenerator, css_for_theme_with_class_style};
use syntect::parsing::{SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

use super::{escape_attr, escape_text};

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

const CLASS_STYLE: ClassStyle = ClassStyle::SpacedPrefixed { prefix: "hl-" };
const LIGHT_THEME: &str = "InspiredGitHub";
const DARK_THEME: &str = "base16-ocean.dark";
/// Larger blocks (or blocks with very long lines, e.g. minified code) are shown plain:
/// highlighting costs ~0.1–0.3 ms per line of ordinary code.
const MAX_HIGHLIGHT_BYTES: usize = 48 * 1024;
const MAX_HIGHLIGHT_LINE: usize = 2 * 1024;
/// Memory for cached highlighted blocks (keys and HTML).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

pub(crate) fn warm_up() {
    LazyLock::force(&SYNTAXES);
}

/// `<pre class="code" data-lang="…"><code>…</code></pre>` for a fenced or indented block, with
/// the code as escaped text. `lang` is the first word of the info string (empty for none).
///
/// When the code gets highlighted, the `<code>` is marked `data-hl="N"` and the highlighted HTML
/// pushed to `highlighted[N]`: [`splice`] swaps it in after sanitizing. Span-heavy highlighted
/// HTML costs ammonia ~40 µs per line to re-parse; it needs no cleaning, since it is built by
/// syntect from escaped text and scope names, and is checked by [`only_spans`] besides.
pub(crate) fn code_block(lang: &str, code: &str, highlighted: &mut Vec<Arc<str>>) -> String {
    let lang = clean_lang(lang);
    let mut out = String::with_capacity(code.len() + 64);
    out.push_str("<pre class=\"code\"");
    if let Some(lang) = lang {
        out.push_str(" data-lang=\"");
        escape_attr(&mut out, lang);
        out.push('"');
    }
    out.push_str("><code");
    if let Some(html) = lang.and_then(|lang| highlight(lang, code)) {
        out.push_str(" data-hl=\"");
        out.push_str(&highlighted.len().to_string());
        out.push('"');
        highlighted.push(html);
    }
    out.push('>');
    escape_text(&mut out, code);
    out.push_str("</code></pre>\n");
    out
}

const MARK: &str = "<code data-hl=\"";

/// Replaces the content of each sanitized `<code data-hl="N">…</code>` with `highlighted[N]`.
/// Only a real element can match: text `<` and attribute `"` are always escaped in `html`.
pub(crate) fn splice(html: String, highlighted: &[Arc<str>]) -> String {
    if highlighted.is_empty() {
        return html;
    }
    let extra: usize = highlighted.iter().map(|h| h.len()).sum();
    let mut out = String::with_capacity(html.len() + extra);
    let mut rest = html.as_str();
    while let Some(at) = rest.find(MARK) {
        out.push_str(&rest[..at]);
        let after = &rest[at + MARK.len()..];
        let block = after.split_once("\">").and_then(|(n, body)| {
            let code = highlighted.get(n.parse::<usize>().ok()?)?;
            Some((code, &body[body.find("</code>")?..]))
        });
        match block {
            Some((code, tail)) => {
                out.push_str("<code>");
                out.push_str(code);
                rest = tail;
            }
            None => {
                out.push_str(MARK);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// True when `html` is only text (no `<`/`>`) and `<span class="…">`/`</span>` with plain
/// class names: what syntect's class generator emits.
fn only_spans(html: &str) -> bool {
    let mut rest = html;
    while let Some(i) = rest.find(['<', '>']) {
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("</span>") {
            rest = after;
            continue;
        }
        let Some((classes, after)) = tail.strip_prefix("<span class=\"").and_then(|t| t.split_once("\">")) else {
            return false;
        };
        if !classes.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ' ' | '-' | '_' | '+' | '#' | '.')) {
            return false;
        }
        rest = after;
    }
    true
}

/// The language tag if it looks like one (`rust`, `c++`, `objective-c`, `.rs`), else `None`.
fn clean_lang(lang: &str) -> Option<&str> {
    let lang = lang.trim_start_matches(['{', '.']).trim_end_matches('}');
    let ok = !lang.is_empty()
        && lang.len() <= 32
        && lang.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '#' | '.'));
    ok.then_some(lang)
}

fn highlight(lang: &str, code: &str) -> Option<Arc<str>> {
    if code.len() > MAX_HIGHLIGHT_BYTES || code.lines().any(|line| line.len() > MAX_HIGHLIGHT_LINE) {
        return None;
    }
    let syntaxes = &*SYNTAXES;
    let syntax = find_syntax(syntaxes, lang)?;
    let key = format!("{}\0{code}", syntax.name);
    if let Some(hit) = CACHE.lock().ok().and_then(|mut cache| cache.get(&key)) {
        return Some(hit);
    }
    // A highlighting bug must not take the page down: fall back to plain text.
    let html: Arc<str> = catch_unwind(AssertUnwindSafe(|| {
        let mut generator = ClassedHTMLGenerator::new_with_class_style(syntax, syntaxes, CLASS_STYLE);
        for line in LinesWithEndings::from(code) {
            generator.parse_html_for_line_which_includes_newline(line).ok()?;
        }
        Some(generator.finalize())
    }))
    .ok()
    .flatten()
    .filter(|html| only_spans(html))?
    .into();
    if let Ok(mut cache) = CACHE.lock() {
        cache.insert(key, Arc::clone(&html));
    }
    Some(html)
}

/// Highlighted blocks by syntax and code. syntect costs ~0.1–0.3 ms per line, and the same
/// blocks come back on every page view and on every tick of a streaming answer. Two
/// generations bound the memory: when the young one is full it becomes the old one.
#[derive(Default)]
struct Cache {
    young: HashMap<String, Arc<str>>,
    old: HashMap<String, Arc<str>>,
    young_bytes: usize,
}

impl Cache {
    fn get(&mut self, key: &str) -> Option<Arc<str>> {
        if let Some(hit) = self.young.get(key) {
            return Some(Arc::clone(hit));
        }
        let (key, hit) = self.old.remove_entry(key)?;
        self.insert(key, Arc::clone(&hit));
        Some(hit)
    }

    fn insert(&mut self, key: String, html: Arc<str>) {
        let size = key.len() + html.len();
        if self.young_bytes + size > CACHE_BYTES / 2 {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young_bytes += size;
        self.young.insert(key, html);
    }
}

fn find_syntax<'s>(syntaxes: &'s SyntaxSet, lang: &str) -> Option<&'s SyntaxReference> {
    let lang = lang.to_ascii_lowercase();
    // Common fence tags the default syntax set doesn't know by that name.
    let token = match lang.as_str() {
        "shell" | "console" | "zsh" | "sh" | "shellscript" => "bash",
        "ts" | "typescript" | "tsx" | "jsx" | "mjs" | "cjs" | "node" => "js",
        "golang" => "go",
        "py3" | "python3" => "python",
        "c++" | "hpp" | "cc" => "cpp",
        "cs" | "csharp" | "c#" => "cs",
        "yml" => "yaml",
        "docker" | "dockerfile" => "dockerfile",
        "objc" | "objective-c" => "m",
        other => other,
    };
    let syntax = syntaxes.find_syntax_by_token(token)?;
    (syntax.name != "Plain Text").then_some(syntax)
}

/// The stylesheet for the `hl-` classes. Token colours only: the theme's background and base
/// foreground are left to the page's own `pre` styling.
///
/// The two themes are mutually exclusive, so rules of one theme never outweigh the other by
/// selector specificity: dark applies under `:root[data-theme=dark]` and, when the OS prefers
/// dark, under `:root:not([data-theme=light])`; light (the default) everywhere else.
pub(crate) fn css() -> String {
    let themes = ThemeSet::load_defaults();
    let rules_of = |name: &str| {
        themes
            .themes
            .get(name)
            .and_then(|theme| css_for_theme_with_class_style(theme, CLASS_STYLE).ok())
            .map(|css| token_rules(&css))
            .unwrap_or_default()
    };
    let (light, dark) = (rules_of(LIGHT_THEME), rules_of(DARK_THEME));
    let mut out = String::from("/* Syntax highlighting: generated from syntect themes. */\n");
    out.push_str("@media not all and (prefers-color-scheme: dark) {\n");
    write_rules(&mut out, &light, ":root:not([data-theme=dark])");
    out.push_str("}\n");
    write_rules(&mut out, &light, ":root[data-theme=light]");
    out.push_str("@media (prefers-color-scheme: dark) {\n");
    write_rules(&mut out, &dark, ":root:not([data-theme=light])");
    out.push_str("}\n");
    write_rules(&mut out, &dark, ":root[data-theme=dark]");
    out
}

/// A theme rule: selectors and declarations.
struct Rule {
    selectors: Vec<String>,
    declarations: Vec<String>,
}

/// Parses syntect's generated CSS into token rules, dropping comments, the `.hl-code` base
/// rule and any background colours.
fn token_rules(css: &str) -> Vec<Rule> {
    let css = strip_comments(css);
    let mut rules = Vec::new();
    for block in css.split('}') {
        let Some((selector, body)) = block.split_once('{') else { continue };
        let selectors: Vec<String> = selector
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty() && *s != ".hl-code")
            .map(str::to_owned)
            .collect();
        let declarations: Vec<String> = body
            .split([';', '\n'])
            .map(str::trim)
            .filter(|d| !d.is_empty() && !d.starts_with("background"))
            .map(str::to_owned)
            .collect();
        if !selectors.is_empty() && !declarations.is_empty() {
            rules.push(Rule { selectors, declarations });
        }
    }
    rules
}

fn strip_comments(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(start) = rest.find("/*") {
        out.push_str(&rest[..start]);
        rest = rest[start + 2..].split_once("*/").map_or("", |(_, after)| after);
    }
    out.push_str(rest);
    out
}

fn write_rules(out: &mut String, rules: &[Rule], scope: &str) {
    for rule in rules {
        let selectors: Vec<String> = rule.selectors.iter().map(|s| format!("{scope} {s}")).collect();
        out.push_str(&selectors.join(", "));
        out.push_str(" { ");
        out.push_str(&rule.declarations.join("; "));
        out.push_str(" }\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block as `render` would show it (without the sanitizer in between).
    fn code_block(lang: &str, code: &str) -> String {
        let mut highlighted = Vec::new();
        let html = super::code_block(lang, code, &mut highlighted);
        splice(html, &highlighted)
    }

    #[test]
    fn highlights_known_language_with_classes() {
        let html = code_block("rust", "fn main() { let x = \"<b>\"; }\n");
        assert!(html.starts_with("<pre class=\"code\" data-lang=\"rust\"><code>"), "{html}");
        assert!(html.contains("class=\"hl-"), "{html}");
        assert!(html.contains("&lt;b&gt;"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("style="), "{html}");
        assert!(!html.contains("data-hl"), "{html}");
        assert!(html.ends_with("</code></pre>\n"));
    }

    #[test]
    fn placeholder_carries_plain_code_until_spliced() {
        let mut highlighted = Vec::new();
        let html = super::code_block("rust", "let a = 1;\n", &mut highlighted);
        assert_eq!(html, "<pre class=\"code\" data-lang=\"rust\"><code data-hl=\"0\">let a = 1;\n</code></pre>\n");
        assert_eq!(highlighted.len(), 1);
        // Unknown indexes and malformed marks are left alone.
        let odd = "<code data-hl=\"7\">x</code><code data-hl=\"a\">y</code>".to_owned();
        assert_eq!(splice(odd.clone(), &highlighted), odd);
    }

    #[test]
    fn only_spans_accepts_syntect_output_only() {
        assert!(only_spans("<span class=\"hl-source hl-c++\">a &lt; b</span>\n"));
        assert!(!only_spans("<span class=\"x\" onclick=\"y\">a</span>"));
        assert!(!only_spans("<b>a</b>"));
        assert!(!only_spans("a > b"));
    }

    #[test]
    fn aliases_resolve() {
        for lang in ["sh", "ts", "py", "js", "yml", "C++", "golang"] {
            assert!(code_block(lang, "a = 1\n").contains("hl-"), "{lang}");
        }
    }

    #[test]
    fn unknown_and_missing_language_are_escaped_plain() {
        let html = code_block("klingon", "<script>alert(1)</script>\n");
        assert_eq!(
            html,
            "<pre class=\"code\" data-lang=\"klingon\"><code>&lt;script&gt;alert(1)&lt;/script&gt;\n</code></pre>\n"
        );
        let html = code_block("", "a < b\n");
        assert_eq!(html, "<pre class=\"code\"><code>a &lt; b\n</code></pre>\n");
    }

    #[test]
    fn odd_language_tags_are_dropped() {
        let html = code_block("\"><script>", "x\n");
        assert!(html.starts_with("<pre class=\"code\"><code>"), "{html}");
        assert_eq!(clean_lang("{.rust}"), Some("rust"));
        assert_eq!(clean_lang("c++"), Some("c++"));
    }

    #[test]
    fn very_long_lines_are_not_highlighted() {
        let code = format!("let s = \"{}\";\n", "a".repeat(MAX_HIGHLIGHT_LINE + 1));
        assert!(!code_block("rust", &code).contains("hl-"));
    }

    #[test]
    fn cache_returns_same_html_and_stays_bounded() {
        let code = "let cached = 1;\n";
        assert_eq!(code_block("rust", code), code_block("rust", code));
        assert!(code_block("rust", code).contains("hl-"));
        let mut cache = Cache::default();
        for i in 0..100 {
            cache.insert(format!("{i}"), Arc::from("x".repeat(CACHE_BYTES / 20)));
        }
        assert!(cache.young_bytes <= CACHE_BYTES / 2);
        assert!(cache.young.len() + cache.old.len() < 25);
        assert!(cache.get("99").is_some());
        assert!(cache.get("0").is_none());
    }

    #[test]
    fn css_has_both_themes_scoped_and_no_backgrounds() {
        let css = css();
        assert!(css.contains("@media not all and (prefers-color-scheme: dark) {\n:root:not([data-theme=dark]) .hl-"));
        assert!(css.contains("@media (prefers-color-scheme: dark) {\n:root:not([data-theme=light]) .hl-"));
        assert!(css.contains("\n:root[data-theme=dark] .hl-"));
        assert!(css.contains("\n:root[data-theme=light] .hl-"));
        assert!(css.contains("color: #"));
        assert!(!css.contains("background"));
        assert!(!css.contains(".hl-code"));
        assert_eq!(css.matches('{').count(), css.matches('}').count());
        // Every rule line is scoped.
        for line in css.lines().filter(|l| l.contains(".hl-")) {
            assert!(line.starts_with(":root"), "{line}");
        }
    }
}
