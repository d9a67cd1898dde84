//! Fenced code blocks: syntax highlighting with syntect, written as flat text with
//! `<span class="hl-X">` around tokens of a dozen GitHub-like kinds (keyword, string, comment…;
//! never nested, no inline colours), and the stylesheet for those classes (see `palette`).

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock, Mutex};

use syntect::parsing::{ParseState, ScopeStack, SyntaxReference, SyntaxSet};
use syntect::util::LinesWithEndings;

use super::palette::{self, Class, Classifier, Token};
use super::{escape_attr, escape_text};

static SYNTAXES: LazyLock<SyntaxSet> = LazyLock::new(SyntaxSet::load_defaults_newlines);
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

/// Larger blocks (or blocks with very long lines, e.g. minified code) are shown plain:
/// highlighting costs ~0.1–0.3 ms per line of ordinary code.
const MAX_HIGHLIGHT_BYTES: usize = 48 * 1024;
const MAX_HIGHLIGHT_LINE: usize = 2 * 1024;
/// What starting a block costs, counted against a render's highlighting budget as bytes.
const BLOCK_COST_BYTES: usize = 256;
/// Memory for cached highlighted blocks (keys and HTML).
const CACHE_BYTES: usize = 16 * 1024 * 1024;

/// `<pre class="code" data-lang="…"><code>…</code></pre>` for a fenced or indented block, with
/// the code as escaped text. `lang` is the first word of the info string (empty for none).
///
/// When the code gets highlighted, the `<code>` is marked `data-hl="N"` and the highlighted HTML
/// pushed to `highlighted[N]`: [`splice`] swaps it in after sanitizing. Highlighted HTML needs no
/// cleaning (ammonia would only spend time re-parsing the spans): it is built here from escaped
/// text and a fixed set of class names, and is checked by [`only_spans`] besides.
///
/// `budget` is what the render may still spend on highlighting (bytes of code not cached yet).
pub(crate) fn code_block(lang: &str, code: &str, highlighted: &mut Vec<Arc<str>>, budget: &mut usize) -> String {
    let lang = clean_lang(lang);
    let mut out = String::with_capacity(code.len() + 64);
    out.push_str("<pre class=\"code\"");
    if let Some(lang) = lang {
        out.push_str(" data-lang=\"");
        escape_attr(&mut out, lang);
        out.push('"');
    }
    out.push_str("><code");
    if let Some(html) = lang.and_then(|lang| highlight(lang, code, budget)) {
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

/// The stylesheet for the `hl-` classes, light and dark (see [`palette::css`]).
pub(crate) fn css() -> String {
    palette::css()
}

/// The highlighted HTML being written: escaped text, with the current token class's span open.
/// Whitespace waits in `space`: inside the span when the next token continues it, else outside.
#[derive(Default)]
struct Writer {
    out: String,
    open: Option<Class>,
    space: String,
}

impl Writer {
    fn push(&mut self, text: &str, token: Token) {
        if text.trim_ascii().is_empty() {
            self.space.push_str(text);
            return;
        }
        let is_word = text.bytes().all(|b| b.is_ascii_alphabetic());
        let class = token.class.or_else(|| (token.operator && is_word).then_some(Class::Keyword));
        if class != self.open && self.open.is_some() {
            self.out.push_str("</span>");
        }
        self.out.push_str(&self.space);
        self.space.clear();
        if class != self.open {
            if let Some(class) = class {
                self.out.push_str("<span class=\"hl-");
                self.out.push_str(class.name());
                self.out.push_str("\">");
            }
            self.open = class;
        }
        for c in text.chars() {
            match c {
                '&' => self.out.push_str("&amp;"),
                '<' => self.out.push_str("&lt;"),
                '>' => self.out.push_str("&gt;"),
                '"' => self.out.push_str("&quot;"),
                _ => self.out.push(c),
            }
        }
    }

    fn finish(mut self) -> String {
        if self.open.is_some() {
            self.out.push_str("</span>");
        }
        self.out.push_str(&self.space);
        self.out
    }
}

/// Parses `code` line by line and writes each stretch of text between scope changes with the
/// class of the scope stack over it. `None` when syntect reports an error.
fn render(syntax: &SyntaxReference, syntaxes: &SyntaxSet, code: &str) -> Option<String> {
    let mut state = ParseState::new(syntax);
    let mut stack = ScopeStack::new();
    let mut classifier = Classifier::default();
    let mut writer = Writer { out: String::with_capacity(code.len() * 2), ..Writer::default() };
    let mut token = None;
    for line in LinesWithEndings::from(code) {
        let mut at = 0;
        for (i, op) in state.parse_line(line, syntaxes).ok()? {
            let i = i.min(line.len());
            if i > at {
                let token = *token.get_or_insert_with(|| classifier.token(stack.as_slice()));
                writer.push(line.get(at..i)?, token);
                at = i;
            }
            stack.apply(&op).ok()?;
            token = None;
        }
        let token = *token.get_or_insert_with(|| classifier.token(stack.as_slice()));
        writer.push(line.get(at..)?, token);
    }
    Some(writer.finish())
}

/// True when `html` is what [`render`] writes: escaped text (no `<`, `>` or `"`; `&` only in
/// `&amp;`, `&lt;`, `&gt;`, `&quot;`) and unnested `<span class="hl-X">`…`</span>` with X a
/// [`Class`] name.
fn only_spans(html: &str) -> bool {
    const ENTITIES: [&str; 4] = ["&amp;", "&lt;", "&gt;", "&quot;"];
    let is_class = |name: &str| Class::ALL.iter().any(|class| class.name() == name);
    let mut rest = html;
    let mut open = false;
    while let Some(i) = rest.find(['<', '>', '"', '&']) {
        let tail = &rest[i..];
        rest = if let Some(after) = ENTITIES.iter().find_map(|e| tail.strip_prefix(e)) {
            after
        } else if let Some(after) = tail.strip_prefix("</span>").filter(|_| open) {
            open = false;
            after
        } else if let Some((_, after)) = tail
            .strip_prefix("<span class=\"hl-")
            .and_then(|t| t.split_once("\">"))
            .filter(|(name, _)| !open && is_class(name))
        {
            open = true;
            after
        } else {
            return false;
        };
    }
    !open
}

/// The language tag if it looks like one (`rust`, `c++`, `objective-c`, `.rs`), else `None`.
fn clean_lang(lang: &str) -> Option<&str> {
    let lang = lang.trim_start_matches(['{', '.']).trim_end_matches('}');
    let ok = !lang.is_empty()
        && lang.len() <= 32
        && lang.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '#' | '.'));
    ok.then_some(lang)
}

fn highlight(lang: &str, code: &str, budget: &mut usize) -> Option<Arc<str>> {
    if code.len() > MAX_HIGHLIGHT_BYTES || code.lines().any(|line| line.len() > MAX_HIGHLIGHT_LINE) {
        return None;
    }
    let syntaxes = &*SYNTAXES;
    let syntax = find_syntax(syntaxes, lang)?;
    let key = format!("{}\0{code}", syntax.name);
    if let Some(hit) = CACHE.lock().ok().and_then(|mut cache| cache.get(&key)) {
        return Some(hit);
    }
    // Each block also costs a parser state and a pass over the syntax's rules.
    if !super::limits::Budget::take(budget, code.len() + BLOCK_COST_BYTES) {
        return None;
    }
    // A highlighting bug must not take the page down: fall back to plain text.
    let html: Arc<str> = catch_unwind(AssertUnwindSafe(|| render(syntax, syntaxes, code)))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The block as `render` would show it (without the sanitizer in between).
    fn code_block(lang: &str, code: &str) -> String {
        let (mut highlighted, mut budget) = (Vec::new(), usize::MAX);
        let html = super::code_block(lang, code, &mut highlighted, &mut budget);
        splice(html, &highlighted)
    }

    /// The highlighted inner HTML of a block, checked to be flat and compact.
    fn spans(lang: &str, code: &str) -> String {
        let html = code_block(lang, code);
        let inner = html.split_once("<code>").and_then(|(_, rest)| rest.strip_suffix("</code></pre>\n"));
        let inner = inner.unwrap_or_else(|| panic!("{lang}: not a code block: {html}")).to_owned();
        assert!(inner.contains("<span class=\"hl-"), "{lang}: not highlighted: {inner}");
        assert!(only_spans(&inner), "{lang}: {inner}");
        for bad in ["hl-meta", "hl-source", "hl-punctuation", "hl-text", "<span></span>", "\"></span>"] {
            assert!(!inner.contains(bad), "{lang}: {bad} in {inner}");
        }
        inner
    }

    fn assert_has(html: &str, wanted: &[&str]) {
        for want in wanted {
            assert!(html.contains(want), "missing {want} in {html}");
        }
    }

    #[test]
    fn highlights_known_language_with_classes() {
        let html = code_block("rust", "fn main() { let x = \"<b>\"; }\n");
        assert!(
            html.starts_with("<pre class=\"code\" data-lang=\"rust\"><code><span class=\"hl-k\">fn</span>"),
            "{html}"
        );
        assert!(html.contains("<span class=\"hl-s\">&quot;&lt;b&gt;&quot;</span>"), "{html}");
        assert!(!html.contains("<b>"), "{html}");
        assert!(!html.contains("style="), "{html}");
        assert!(!html.contains("data-hl"), "{html}");
        assert!(html.ends_with("</code></pre>\n"));
    }

    #[test]
    fn languages_get_compact_token_classes() {
        let rust = "/// Doc.\n#[derive(Debug)]\npub struct P { x: u32 }\nimpl P {\n    fn get(&self) -> u32 { \
                    println!(\"{}\\n\", 0x1f); self.x as u32 } // c\n}\n";
        assert_has(
            &spans("rust", rust),
            &[
                "<span class=\"hl-c\">/// Doc.\n</span>",
                "<span class=\"hl-p\">#[derive(Debug)]</span>",
                "<span class=\"hl-k\">pub struct</span> <span class=\"hl-t\">P</span> { x: <span class=\"hl-k\">u32</span> }",
                "<span class=\"hl-f\">get</span>",
                "<span class=\"hl-p\">println!</span>",
                "<span class=\"hl-s\">&quot;{}\\n&quot;</span>",
                "<span class=\"hl-n\">0x1f</span>",
                "<span class=\"hl-v\">self</span>.x <span class=\"hl-k\">as u32</span>",
                "<span class=\"hl-c\">// c\n</span>",
            ],
        );
        let python = "@property\ndef f(x):\n    \"\"\"Doc.\"\"\"\n    if x is not None and True:\n        \
                      print(self.y, 2.5, 'a')  # note\n";
        assert_has(
            &spans("python", python),
            &[
                "<span class=\"hl-k\">def</span> <span class=\"hl-f\">f</span>(x):",
                "<span class=\"hl-c\">&quot;&quot;&quot;Doc.&quot;&quot;&quot;</span>",
                "<span class=\"hl-k\">is not</span> <span class=\"hl-cn\">None</span> <span class=\"hl-k\">and</span>",
                "<span class=\"hl-f\">print</span>(<span class=\"hl-v\">self</span>.y, <span class=\"hl-n\">2.5</span>, ",
                "<span class=\"hl-s\">'a'</span>)",
                "<span class=\"hl-c\"># note\n</span>",
            ],
        );
        let js = "const x = `t ${a}`; function foo(b) { return new Map(this.b); } // done\nconsole.log(null);\n";
        assert_has(
            &spans("js", js),
            &[
                "<span class=\"hl-k\">const</span> x = <span class=\"hl-s\">`t ",
                "<span class=\"hl-s\">`t </span>${a}<span class=\"hl-s\">`</span>; <span class=\"hl-k\">function</span> <span class=\"hl-f\">foo</span>",
                "<span class=\"hl-k\">return new</span> <span class=\"hl-t\">Map</span>(<span class=\"hl-v\">this</span>",
                "<span class=\"hl-c\">// done\n</span><span class=\"hl-t\">console</span>.<span class=\"hl-f\">log</span>",
                "<span class=\"hl-cn\">null</span>",
            ],
        );
        let html = "<div class=\"x\">Hi &amp; <!-- c --></div>\n";
        assert_has(
            &spans("html", html),
            &[
                "&lt;<span class=\"hl-tg\">div</span> <span class=\"hl-at\">class</span>=<span class=\"hl-s\">&quot;x&quot;</span>&gt;Hi ",
                "<span class=\"hl-cn\">&amp;amp;</span>",
                "<span class=\"hl-c\">&lt;!-- c --&gt;</span>",
            ],
        );
        assert_has(
            &spans("json", "{\"key\": [1, true, \"v\"]}\n"),
            &[
                "{<span class=\"hl-at\">&quot;key&quot;</span>: [<span class=\"hl-n\">1</span>, ",
                "<span class=\"hl-cn\">true</span>, <span class=\"hl-s\">&quot;v&quot;</span>]}",
            ],
        );
        assert_has(
            &spans("sql", "SELECT COUNT(*) FROM t WHERE a = 'x' AND b > 3; -- c\n"),
            &[
                "<span class=\"hl-k\">SELECT</span> <span class=\"hl-f\">COUNT</span>(*) <span class=\"hl-k\">FROM</span>",
                "<span class=\"hl-s\">'x'</span> <span class=\"hl-k\">AND</span> b &gt; <span class=\"hl-n\">3</span>",
                "<span class=\"hl-c\">-- c\n</span>",
            ],
        );
        assert_has(
            &spans("bash", "export A=\"x\" # c\nif [ -f a ]; then echo 'hi'; fi\n"),
            &[
                "<span class=\"hl-k\">export</span> A=<span class=\"hl-s\">&quot;x&quot;</span> <span class=\"hl-c\"># c</span>\n",
                "<span class=\"hl-k\">if</span>",
                "<span class=\"hl-f\">echo</span> <span class=\"hl-s\">'hi'</span>",
            ],
        );
        assert_has(
            &spans("diff", "--- a/x\n+++ b/x\n@@ -1 +1 @@\n same\n-old\n+new\n"),
            &[
                "<span class=\"hl-k\">--- a/x\n+++ b/x\n</span>",
                "<span class=\"hl-p\">@@ -1 +1 @@</span>\n same\n",
                "<span class=\"hl-dd\">-old\n</span><span class=\"hl-di\">+new\n</span>",
            ],
        );
    }

    #[test]
    fn output_is_small() {
        let code = "/// Sums the even numbers below `limit`.\npub fn sum_even(limit: u64) -> u64 {\n    let mut total = 0;\n    \
                    for n in 0..limit {\n        if n % 2 == 0 {\n            total += n; // keep evens\n        }\n    \
                    }\n    println!(\"total = {total}\");\n    total\n}\n";
        let html = spans("rust", code);
        let mut escaped = String::new();
        escape_text(&mut escaped, code);
        assert!(html.len() < 3 * escaped.len(), "{} vs {}: {html}", html.len(), escaped.len());
    }

    #[test]
    fn placeholder_carries_plain_code_until_spliced() {
        let (mut highlighted, mut budget) = (Vec::new(), usize::MAX);
        let html = super::code_block("rust", "let a = 1;\n", &mut highlighted, &mut budget);
        assert_eq!(html, "<pre class=\"code\" data-lang=\"rust\"><code data-hl=\"0\">let a = 1;\n</code></pre>\n");
        assert_eq!(highlighted.len(), 1);
        // Unknown indexes and malformed marks are left alone.
        let odd = "<code data-hl=\"7\">x</code><code data-hl=\"a\">y</code>".to_owned();
        assert_eq!(splice(odd.clone(), &highlighted), odd);
    }

    #[test]
    fn only_spans_accepts_flat_token_spans_only() {
        assert!(only_spans(
            "<span class=\"hl-k\">fn</span> a &lt; b &amp;&amp; <span class=\"hl-s\">&quot;x&quot;</span>\n"
        ));
        assert!(only_spans("plain text"));
        assert!(!only_spans("<span class=\"hl-source hl-rust\">a</span>"));
        assert!(!only_spans("<span class=\"hl-k\"><span class=\"hl-s\">a</span></span>"));
        assert!(!only_spans("<span class=\"hl-k\">a"));
        assert!(!only_spans("a</span>"));
        assert!(!only_spans("<span class=\"hl-k\" onclick=\"y\">a</span>"));
        assert!(!only_spans("<b>a</b>"));
        assert!(!only_spans("a > b"));
        assert!(!only_spans("a \" b"));
        assert!(!only_spans("&#x3c;"));
    }

    #[test]
    fn aliases_resolve() {
        for lang in ["sh", "ts", "py", "js", "yml", "C++", "golang"] {
            assert!(code_block(lang, "a = 1\n").contains("<span class=\"hl-"), "{lang}");
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
}
