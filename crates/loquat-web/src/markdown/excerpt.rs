//! Plain-text excerpts of markdown (topic titles, previews): the text content of the parsed
//! document, whitespace collapsed, cut at a character budget with "…".

use pulldown_cmark::{Event, Parser, TagEnd};

pub(crate) fn plain_excerpt(text: &str, max_chars: usize) -> String {
    if max_chars == 0 {
        return String::new();
    }
    let mut out = Collector { out: String::new(), chars: 0, pending_space: false, limit: max_chars };
    for event in Parser::new_ext(text, super::options()) {
        let full = match event {
            Event::Text(t)
            | Event::Code(t)
            | Event::InlineMath(t)
            | Event::DisplayMath(t)
            | Event::Html(t)
            | Event::InlineHtml(t) => out.push(&t),
            Event::SoftBreak | Event::HardBreak | Event::Rule => out.push(" "),
            Event::End(end) if is_block(end) => out.push(" "),
            _ => false,
        };
        if full {
            break;
        }
    }
    out.finish()
}

/// Block ends separate words ("# Title\nBody" → "Title Body").
fn is_block(end: TagEnd) -> bool {
    !matches!(
        end,
        TagEnd::Emphasis
            | TagEnd::Strong
            | TagEnd::Strikethrough
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::Link
            | TagEnd::Image
    )
}

struct Collector {
    out: String,
    chars: usize,
    pending_space: bool,
    limit: usize,
}

impl Collector {
    /// Appends `s` with whitespace collapsed; true once more than `limit` chars are collected.
    fn push(&mut self, s: &str) -> bool {
        for c in s.chars() {
            if c.is_whitespace() {
                self.pending_space = self.chars > 0;
                continue;
            }
            if std::mem::take(&mut self.pending_space) {
                self.out.push(' ');
                self.chars += 1;
            }
            self.out.push(c);
            self.chars += 1;
            if self.chars > self.limit {
                return true;
            }
        }
        false
    }

    fn finish(mut self) -> String {
        if self.chars <= self.limit {
            return self.out;
        }
        let cut = self.out.char_indices().nth(self.limit - 1).map_or(self.out.len(), |(i, _)| i);
        self.out.truncate(cut);
        self.out.truncate(self.out.trim_end().len());
        self.out.push('…');
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_markdown_and_collapses_whitespace() {
        let md = "# Hello *world*\n\nSome **bold** and `code`,   a [link](https://x.io) and ![alt](https://x.io/i.png).\n\n- item\n- two";
        assert_eq!(plain_excerpt(md, 200), "Hello world Some bold and code, a link and alt. item two");
    }

    #[test]
    fn cuts_with_ellipsis_within_budget() {
        assert_eq!(plain_excerpt("one two three four", 9), "one two…");
        assert_eq!(plain_excerpt("one two three four", 18), "one two three four");
        assert_eq!(plain_excerpt("abc", 0), "");
        assert_eq!(plain_excerpt("abcdef", 1), "…");
        assert!(plain_excerpt(&"word ".repeat(1000), 50).chars().count() <= 50);
    }

    #[test]
    fn keeps_chinese_intact() {
        assert_eq!(plain_excerpt("## 你好，世界\n\n这是一个**测试**。", 100), "你好，世界 这是一个测试。");
        assert_eq!(plain_excerpt("你好世界你好世界", 5), "你好世界…");
    }

    #[test]
    fn whitespace_only_is_empty() {
        assert_eq!(plain_excerpt("  \n\n  ", 10), "");
        assert_eq!(plain_excerpt("   lead", 10), "lead");
    }
}
