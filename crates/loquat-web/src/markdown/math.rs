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

/// MathML for `src`, or the escaped source marked as a math error.
pub(crate) fn render(src: &str, display: bool) -> String {
    // pulldown-latex is young; a panic on odd input must not take the page down.
    match catch_unwind(AssertUnwindSafe(|| to_mathml(src, display))) {
        Ok(Some(mathml)) => mathml,
        _ => error_html(src, display),
    }
}

fn to_mathml(src: &str, display: bool) -> Option<String> {
    if src.len() > MAX_SOURCE_BYTES {
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

fn error_html(src: &str, display: bool) -> String {
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
}
