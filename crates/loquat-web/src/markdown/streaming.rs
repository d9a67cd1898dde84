//! Partial answers: if a streamed text ends inside a fenced code block (``` or ~~~, tracking
//! fence character and length as CommonMark does), close the fence so the block renders as a
//! block and nothing after it on the page is swallowed.

use std::borrow::Cow;

/// An open fence: its character, length, and the container prefix of its opening line
/// (blockquote markers kept, list markers turned into spaces) for the closing line.
struct Fence {
    ch: u8,
    len: usize,
    prefix: String,
}

/// `text`, with a closing fence appended when it ends inside an open code fence.
pub(crate) fn close_open_fence(text: &str) -> Cow<'_, str> {
    let mut open: Option<Fence> = None;
    // Start of the last line that could be a half-streamed closing fence.
    let mut partial_close_at = None;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let start = offset;
        offset += line.len();
        let line = line.trim_end_matches(['\n', '\r']);
        match &open {
            None => open = opening_fence(line),
            Some(fence) => {
                let run = fence_run(strip_quotes(line).trim_start(), fence.ch);
                if run >= fence.len && is_blank(&strip_quotes(line).trim_start()[run..]) {
                    open = None;
                } else if run > 0 && run == strip_quotes(line).trim().len() {
                    partial_close_at = Some(start);
                    continue;
                }
            }
        }
        partial_close_at = None;
    }
    let Some(fence) = open else { return Cow::Borrowed(text) };
    // A last line of fence characters (no newline yet) is a closing fence still arriving.
    let kept = match partial_close_at {
        Some(at) if !text.ends_with('\n') => &text[..at],
        _ => text,
    };
    let mut out = String::with_capacity(kept.len() + fence.prefix.len() + fence.len + 2);
    out.push_str(kept);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(&fence.prefix);
    out.extend(std::iter::repeat_n(char::from(fence.ch), fence.len));
    out.push('\n');
    Cow::Owned(out)
}

/// The fence opened by `line`, if any. Indentation is not limited (fences inside list items
/// are common in answers; indented code blocks containing fence lines are not).
fn opening_fence(line: &str) -> Option<Fence> {
    let quoted = strip_quotes(line);
    let quote_prefix = &line[..line.len() - quoted.len()];
    let body = strip_list_marker(quoted.trim_start());
    let ch = *body.as_bytes().first()?;
    if ch != b'`' && ch != b'~' {
        return None;
    }
    let len = fence_run(body, ch);
    if len < 3 || (ch == b'`' && body[len..].contains('`')) {
        return None;
    }
    // Columns between the quote markers and the fence become spaces on the closing line.
    let inner = &quoted[..quoted.len() - body.len()];
    let mut prefix = quote_prefix.to_owned();
    prefix.extend(inner.chars().map(|c| if c == '\t' { '\t' } else { ' ' }));
    Some(Fence { ch, len, prefix })
}

/// `line` without leading blockquote markers (`>`, `> >`, with optional spaces).
fn strip_quotes(line: &str) -> &str {
    let mut rest = line;
    loop {
        let trimmed = rest.trim_start_matches([' ', '\t']);
        match trimmed.strip_prefix('>') {
            Some(after) => rest = after,
            None => return rest,
        }
    }
}

/// `line` (already left-trimmed) without any list markers (`-`, `*`, `+`, `1.`, `1)`).
fn strip_list_marker(mut line: &str) -> &str {
    loop {
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let marker_len = match line.as_bytes().get(digits) {
            Some(b'.' | b')') if (1..=9).contains(&digits) => digits + 1,
            Some(b'-' | b'*' | b'+') if digits == 0 => 1,
            _ => return line,
        };
        match line[marker_len..].strip_prefix([' ', '\t']) {
            Some(after) => line = after.trim_start(),
            None => return line,
        }
    }
}

fn fence_run(s: &str, ch: u8) -> usize {
    s.bytes().take_while(|&b| b == ch).count()
}

fn is_blank(s: &str) -> bool {
    s.trim().is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaves_closed_or_fenceless_text_alone() {
        for text in ["plain", "```rust\nfn x() {}\n```\n", "```\na\n```", "inline ``` not a fence", "~~\nx"] {
            assert!(matches!(close_open_fence(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn closes_backtick_and_tilde_fences() {
        assert_eq!(close_open_fence("```rust\nfn main() {"), "```rust\nfn main() {\n```\n");
        assert_eq!(close_open_fence("~~~~py\nx = 1\n~~~\n"), "~~~~py\nx = 1\n~~~\n~~~~\n");
    }

    #[test]
    fn longer_fences_contain_shorter_ones() {
        let text = "````md\n```rust\nfn x() {}\n```\n";
        assert_eq!(close_open_fence(text), format!("{text}````\n"));
        // A tilde fence is not closed by backticks.
        let text = "~~~\n```\n";
        assert_eq!(close_open_fence(text), format!("{text}~~~\n"));
    }

    #[test]
    fn backtick_info_with_backtick_is_not_a_fence() {
        assert!(matches!(close_open_fence("``` a`b\nx"), Cow::Borrowed(_)));
    }

    #[test]
    fn half_streamed_closing_fence_is_replaced() {
        assert_eq!(close_open_fence("```\ncode\n``"), "```\ncode\n```\n");
    }

    #[test]
    fn keeps_container_prefix() {
        assert_eq!(close_open_fence("> ```\n> quoted"), "> ```\n> quoted\n> ```\n");
        assert_eq!(close_open_fence("1. step\n   ```sh\n   ls"), "1. step\n   ```sh\n   ls\n   ```\n");
        assert_eq!(close_open_fence("- ```sh\n  ls"), "- ```sh\n  ls\n  ```\n");
    }
}
