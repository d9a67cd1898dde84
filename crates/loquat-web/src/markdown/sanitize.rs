//! The last line of defence: an ammonia allow-list of exactly the elements, attributes, class
//! names and URL schemes the markdown pass produces (HTML from pulldown-cmark, MathML from
//! pulldown-latex). Ids get a prefix; `#…` links follow it.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use ammonia::{Builder, UrlRelative};

/// Prefix of every `id` in rendered markdown, so content can't clobber the page's own ids.
pub(crate) const ID_PREFIX: &str = "md-";

#[rustfmt::skip]
const HTML_TAGS: &[&str] = &[
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "ul", "ol", "li", "table", "thead", "tbody",
    "tr", "th", "td", "em", "strong", "del", "sup", "a", "img", "pre", "code", "span", "div", "input",
];

/// What pulldown-latex 0.8 emits.
#[rustfmt::skip]
const MATHML_TAGS: &[&str] = &[
    "math", "mi", "mn", "mo", "mtext", "mspace", "mrow", "mfrac", "msqrt", "mroot", "msub", "msup", "msubsup",
    "munder", "mover", "munderover", "mtable", "mtr", "mtd",
];

const MATHML_ATTRIBUTES: &[&str] = &[
    "display",
    "displaystyle",
    "scriptlevel",
    "mathvariant",
    "stretchy",
    "symmetric",
    "largeop",
    "movablelimits",
    "minsize",
    "maxsize",
    "linethickness",
    "width",
    "height",
    "depth",
    "class",
    "style",
];

/// Style properties kept (table cell alignment, math colours); everything else is dropped.
const STYLE_PROPERTIES: &[&str] = &["text-align", "color", "background-color", "border", "border-color"];

static SANITIZER: LazyLock<Builder<'static>> = LazyLock::new(|| build(true));
/// Without `<img>`: when no image host is allowed, none gets through even by mistake.
static SANITIZER_NO_IMAGES: LazyLock<Builder<'static>> = LazyLock::new(|| build(false));

pub(crate) fn warm_up() {
    LazyLock::force(&SANITIZER);
    LazyLock::force(&SANITIZER_NO_IMAGES);
}

pub(crate) fn clean(html: &str, images: bool) -> String {
    let sanitizer = if images { &SANITIZER } else { &SANITIZER_NO_IMAGES };
    sanitizer.clean(html).to_string()
}

fn build(images: bool) -> Builder<'static> {
    let mut tag_attributes: HashMap<&'static str, HashSet<&'static str>> = HashMap::from([
        ("a", HashSet::from(["href", "title", "target", "class"])),
        ("img", HashSet::from(["src", "alt", "title"])),
        ("input", HashSet::from(["checked", "disabled"])),
        ("pre", HashSet::from(["class", "data-lang"])),
        ("code", HashSet::from(["class", "data-hl"])),
        ("span", HashSet::from(["class"])),
        ("sup", HashSet::from(["class"])),
        ("div", HashSet::from(["class", "id"])),
        ("blockquote", HashSet::from(["class"])),
        ("th", HashSet::from(["style"])),
        ("td", HashSet::from(["style"])),
        ("ol", HashSet::from(["start"])),
    ]);
    for tag in MATHML_TAGS {
        tag_attributes.insert(tag, MATHML_ATTRIBUTES.iter().copied().collect());
    }
    // Attributes allowed with one value only.
    let fixed: HashMap<&'static str, HashMap<&'static str, HashSet<&'static str>>> = HashMap::from([
        ("input", HashMap::from([("type", HashSet::from(["checkbox"]))])),
        (
            "img",
            HashMap::from([("loading", HashSet::from(["lazy"])), ("referrerpolicy", HashSet::from(["no-referrer"]))]),
        ),
    ]);
    let tags = HTML_TAGS.iter().chain(MATHML_TAGS).copied().filter(|&tag| images || tag != "img").collect();
    let mut builder = Builder::empty();
    builder
        .tags(tags)
        .clean_content_tags(HashSet::from(["script", "style", "template", "textarea", "title", "noscript"]))
        .generic_attributes(HashSet::new())
        .tag_attributes(tag_attributes)
        .tag_attribute_values(fixed)
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .url_relative(UrlRelative::Custom(Box::new(fragment_link)))
        .link_rel(Some("noopener noreferrer nofollow"))
        .strip_comments(true)
        .id_prefix(Some(ID_PREFIX))
        .filter_style_properties(STYLE_PROPERTIES.iter().copied().collect())
        .attribute_filter(filter_attribute);
    builder
}

/// Relative URLs: only in-document `#fragment` links, pointed at the prefixed ids.
fn fragment_link(url: &str) -> Option<Cow<'_, str>> {
    let fragment = url.strip_prefix('#')?;
    if fragment.is_empty() || !fragment.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return None;
    }
    if fragment.starts_with(ID_PREFIX) {
        Some(Cow::Borrowed(url))
    } else {
        Some(Cow::Owned(format!("#{ID_PREFIX}{fragment}")))
    }
}

/// Value checks for the allowed attributes (anything not matched passes unchanged).
fn filter_attribute<'u>(element: &str, attribute: &str, value: &'u str) -> Option<Cow<'u, str>> {
    match (element, attribute) {
        (_, "class") => filter_classes(element, value),
        ("a", "target") => (value == "_blank").then_some(Cow::Borrowed(value)),
        ("pre", "data-lang") => (value.len() <= 32
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '#' | '.')))
        .then_some(Cow::Borrowed(value)),
        ("code", "data-hl") => {
            (value.len() <= 6 && value.bytes().all(|b| b.is_ascii_digit())).then_some(Cow::Borrowed(value))
        }
        ("ol", "start") => {
            (value.len() <= 9 && value.bytes().all(|b| b.is_ascii_digit())).then_some(Cow::Borrowed(value))
        }
        (_, "style") => Some(Cow::Borrowed(value)),
        // MathML lengths, sizes and keywords: short and plain.
        _ if MATHML_TAGS.contains(&element) => (value.len() <= 24
            && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '%')))
        .then_some(Cow::Borrowed(value)),
        _ => Some(Cow::Borrowed(value)),
    }
}

/// Keeps only the class names the renderer uses on each element.
fn filter_classes<'u>(element: &str, value: &'u str) -> Option<Cow<'u, str>> {
    let allowed = |class: &str| match element {
        "a" => class == "image-link",
        "span" => class.starts_with("hl-"),
        "pre" => class == "code",
        "code" => class == "math-error",
        "sup" => matches!(class, "footnote-reference" | "footnote-definition-label"),
        "div" => class == "footnote-definition",
        "blockquote" => class.starts_with("markdown-alert-"),
        _ if MATHML_TAGS.contains(&element) => {
            class.starts_with("menv-") || class.starts_with("cell-") || class.starts_with("mop-") || class == "small"
        }
        _ => false,
    };
    let kept: Vec<&str> = value.split_ascii_whitespace().filter(|class| allowed(class)).collect();
    if kept.is_empty() {
        None
    } else if kept.len() == value.split_ascii_whitespace().count() {
        Some(Cow::Borrowed(value))
    } else {
        Some(Cow::Owned(kept.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    fn clean(html: &str) -> String {
        super::clean(html, true)
    }

    #[test]
    fn images_are_removed_unless_allowed() {
        let html = r#"<p><img src="https://e.com/a.png" alt="a"></p>"#;
        assert_eq!(super::clean(html, false), "<p></p>");
        assert_eq!(
            clean(r#"<a class="image-link evil" href="https://e.com/a.png">a</a>"#),
            r#"<a class="image-link" href="https://e.com/a.png" rel="noopener noreferrer nofollow">a</a>"#
        );
    }

    #[test]
    fn strips_what_is_not_allowed() {
        let out = clean(
            r#"<p onclick="x()">a<script>alert(1)</script><iframe src="https://e.com"></iframe><style>p{}</style></p>"#,
        );
        assert_eq!(out, "<p>a</p>");
        let out = clean(r#"<a href="javascript:alert(1)" onmouseover="x">y</a>"#);
        assert_eq!(out, r#"<a rel="noopener noreferrer nofollow">y</a>"#);
    }

    #[test]
    fn keeps_what_the_renderer_emits() {
        let html = r#"<pre class="code" data-lang="rust"><code><span class="hl-source hl-rust">x</span></code></pre>"#;
        assert_eq!(clean(html), html);
        let html = r#"<input type="checkbox" checked="" disabled="">"#;
        assert_eq!(clean(html), html);
        let html = r#"<img src="https://e.com/a.png" alt="a" loading="lazy" referrerpolicy="no-referrer">"#;
        assert_eq!(clean(html), html);
    }

    #[test]
    fn filters_classes_and_values() {
        assert_eq!(clean(r#"<span class="hl-a evil hl-b">x</span>"#), r#"<span class="hl-a hl-b">x</span>"#);
        assert_eq!(clean(r#"<pre class="evil" data-lang="a b">x</pre>"#), "<pre>x</pre>");
        assert_eq!(clean(r#"<input type="text" value="x">"#), "<input>");
        assert_eq!(clean(r#"<img src="https://e.com/a.png" loading="eager">"#), r#"<img src="https://e.com/a.png">"#);
        assert_eq!(clean(r#"<code data-hl="1x">a</code>"#), "<code>a</code>");
        let out = clean(r#"<table><tr><td style="text-align: center; position: fixed">x</td></tr></table>"#);
        assert!(out.contains(r#"<td style="text-align:center">x</td>"#), "{out}");
    }

    #[test]
    fn prefixes_ids_and_fragment_links() {
        let out = clean(r##"<div id="fn-1">x</div><a href="#fn-1">1</a><a href="/admin">a</a><a href="#md-x">b</a>"##);
        assert!(out.contains(r#"id="md-fn-1""#), "{out}");
        assert!(out.contains(r##"href="#md-fn-1""##), "{out}");
        assert!(!out.contains("/admin"), "{out}");
        assert!(out.contains(r##"href="#md-x""##), "{out}");
    }

    #[test]
    fn math_namespace_confusion_is_removed() {
        let out = clean(r#"<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>"#);
        assert!(!out.contains("onerror"), "{out}");
        assert!(!out.contains("<style"), "{out}");
        let out =
            clean(r#"<math><maction actiontype="statusline" xlink:href="javascript:alert(1)">x</maction></math>"#);
        assert!(!out.contains("javascript"), "{out}");
        assert!(!out.contains("maction"), "{out}");
    }
}
