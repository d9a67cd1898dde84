//! `$…$` and `$$…$$` math: LaTeX → MathML with pulldown-latex. Invalid (or oversized)
//! LaTeX is shown as its escaped source in `<code class="math-error">`.

use std::panic::{AssertUnwindSafe, catch_unwind};

use pulldown_latex::config::DisplayMode;
use pulldown_latex::{Parser, RenderConfig, Storage, push_mathml};

use super::escape_text;

/// Longer formulas are not rendered (shown as source).
const MAX_SOURCE_BYTES: usize = 8 * 1024;
/// Bounds the work macro expansion can cause.
const MAX_EVENTS: usize = 20_000;
/// Deeper groups (`{`, `\left`, `\begin`) are not rendered: pulldown-latex's time grows with
/// the square of the depth, and MathML that deep would slow the sanitizer too.
const MAX_NESTING: usize = 24;

/// MathML for `src`, or the escaped source marked as a math error.
pub(crate) fn render(src: &str, display: bool) -> String {
    // pulldown-latex is young; a panic on odd input must not take the page down.
    match catch_unwind(AssertUnwindSafe(|| to_mathml(src, display))) {
        Ok(Some(mathml)) => mathml,
        _ => source_html(src, display),
    }
}

fn to_mathml(src: &str, display: bool) -> Option<String> {
    if src.len() > MAX_SOURCE_BYTES || nesting(src) > MAX_NESTING {
        return None;
    }
    let storage = Storage::new();
    let mut events = Vec::new();
    for event in Parser::new(src, &storage) {
        if events.len() == MAX_EVENTS {
            return None;
        }
        // Any parse error: show the source instead of pulldown-latex's inline error markup.
        events.push(event.ok()?);
    }
    let config = RenderConfig {
        display_mode: if display { DisplayMode::Block } else { DisplayMode::Inline },
        ..RenderConfig::default()
    };
    let mut out = String::with_capacity(src.len() * 8 + 32);
    push_mathml(&mut out, events.into_iter().map(Ok::<_, pulldown_latex::ParserError>), config).ok()?;
    Some(out)
}

/// The deepest nesting of `{…}`, `\left…\right` and `\begin…\end` groups in `src`.
fn nesting(src: &str) -> usize {
    let bytes = src.as_bytes();
    // `\left` as a command, not the start of `\leftarrow`.
    let command = |at: usize, name: &str| {
        src[at..].starts_with(name) && !bytes.get(at + name.len()).is_some_and(u8::is_ascii_alphabetic)
    };
    let (mut depth, mut deepest, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            b'\\' if command(i, "\\left") || command(i, "\\begin") => depth += 1,
            b'\\' if command(i, "\\right") || command(i, "\\end") => depth = depth.saturating_sub(1),
            // An escaped brace or backslash is not a group.
            b'\\' if matches!(bytes.get(i + 1), Some(b'{' | b'}' | b'\\')) => i += 1,
            _ => {}
        }
        deepest = deepest.max(depth);
        i += 1;
    }
    deepest
}

/// The formula's escaped source, marked as a math error (not rendered).
pub(crate) fn source_html(src: &str, display: bool) -> String {
    let delimiter = if display { "$$" } else { "$" };
    let mut out = String::with_capacity(src.len() + 40);
    out.push_str("<code class=\"math-error\">");
    out.push_str(delimiter);
    escape_text(&mut out, src);
    out.push_str(delimiter);
    out.push_str("</code>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_mathml() {
        let html = render(r"\frac{a}{b} + x^2", false);
        assert!(html.starts_with("<math display=\"inline\">"), "{html}");
        assert!(html.contains("<mfrac>"), "{html}");
        assert!(html.contains("<msup>"), "{html}");
        let html = render(r"\sum_{i=0}^n i", true);
        assert!(html.starts_with("<math display=\"block\">"), "{html}");
    }

    #[test]
    fn invalid_latex_shows_escaped_source() {
        assert_eq!(render(r"a^b^c <x>", false), "<code class=\"math-error\">$a^b^c &lt;x&gt;$</code>");
        assert_eq!(render(r"\frac{1}", true), "<code class=\"math-error\">$$\\frac{1}$$</code>");
    }

    #[test]
    fn text_in_math_is_escaped() {
        let html = render(r"\text{<script>alert(1)</script>}", false);
        assert!(!html.contains("<script"), "{html}");
    }

    #[test]
    fn runaway_macros_are_bounded() {
        let src = r"\def\a{xxxxxxxxxx}\def\b{\a\a\a\a\a\a\a\a\a\a}\def\c{\b\b\b\b\b\b\b\b\b\b}\def\d{\c\c\c\c\c\c\c\c\c\c}\d\d\d\d\d\d\d\d\d\d";
        let html = render(src, false);
        assert!(html.len() < 5_000_000);
        assert!(render(&"x".repeat(MAX_SOURCE_BYTES + 1), false).starts_with("<code class=\"math-error\">"));
    }

    #[test]
    fn deep_groups_are_shown_as_source() {
        let deep = format!("{}x{}", "{".repeat(MAX_NESTING + 1), "}".repeat(MAX_NESTING + 1));
        assert!(render(&deep, false).starts_with("<code class=\"math-error\">"));
        let deep = format!("{}x{}", "\\left(".repeat(MAX_NESTING + 1), "\\right)".repeat(MAX_NESTING + 1));
        assert!(render(&deep, false).starts_with("<code class=\"math-error\">"));
        let fine = format!("{}x{}", "{".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert!(render(&fine, false).starts_with("<math"), "{}", render(&fine, false));
        assert_eq!(nesting(r"\{a\} {b} \\{c}"), 1);
        assert_eq!(nesting(r"a \leftarrow b \leftarrow c \rightarrow d \endgroup"), 0);
        assert_eq!(nesting(r"\left( \begin{matrix} a \end{matrix} \right)"), 3);
    }
}
