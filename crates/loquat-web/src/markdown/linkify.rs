//! Bare-URL autolinking for plain text (pulldown-cmark only links `<…>` autolinks): finds
//! `http://`, `https://` and `www.` URLs in a text run, GFM-style, leaving trailing punctuation
//! and unbalanced closing brackets outside the link.

/// A piece of a text run: plain text, or a URL with the href it should link to.
#[derive(Debug, PartialEq)]
pub(crate) enum Piece<'a> {
    Text(&'a str),
    Url { text: &'a str, href: String },
}

/// Splits `text` around the URLs in it; `None` when there are none (the common case).
pub(crate) fn split(text: &str) -> Option<Vec<Piece<'_>>> {
    if !text.contains("://") && !contains_ignore_case(text, "www.") {
        return None;
    }
    let bytes = text.as_bytes();
    let mut pieces = Vec::new();
    let (mut i, mut last) = (0, 0);
    while i < bytes.len() {
        // Only ASCII bytes are tested, so `i` is a char boundary whenever it matters.
        if matches!(bytes[i], b'h' | b'H' | b'w' | b'W')
            && boundary_before(&text[..i])
            && let Some((len, www)) = url_at(&text[i..])
        {
            if last < i {
                pieces.push(Piece::Text(&text[last..i]));
            }
            let url = &text[i..i + len];
            let href = if www { format!("https://{url}") } else { url.to_owned() };
            pieces.push(Piece::Url { text: url, href });
            i += len;
            last = i;
            continue;
        }
        i += 1;
    }
    if pieces.is_empty() {
        return None;
    }
    if last < text.len() {
        pieces.push(Piece::Text(&text[last..]));
    }
    Some(pieces)
}

fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    haystack.as_bytes().windows(needle.len()).any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// A URL may start at the beginning, or after anything that is not part of a word or of
/// another URL/address (CJK text directly before a URL is fine).
fn boundary_before(before: &str) -> bool {
    match before.chars().next_back() {
        None => true,
        Some(c) => !(c.is_ascii_alphanumeric() || "/.-_@:&=?#%+".contains(c)),
    }
}

/// Length of the URL at the start of `s`, and whether it is a `www.` one.
///
/// Linear over a whole text run: a start that cannot have a valid host is refused after
/// looking at the host alone, so only starts that become links (and are then skipped) or whose
/// host is followed by nothing but trailing punctuation scan further (see [`host_can_be_valid`]).
fn url_at(s: &str) -> Option<(usize, bool)> {
    let (scheme_len, www) = if has_prefix(s, "https://") {
        (8, false)
    } else if has_prefix(s, "http://") {
        (7, false)
    } else if has_prefix(s, "www.") {
        (0, true)
    } else {
        return None;
    };
    if !host_can_be_valid(&s[scheme_len..], www) {
        return None;
    }
    let end = s.char_indices().find(|&(_, c)| ends_url(c)).map_or(s.len(), |(i, _)| i);
    let url = trim_trailing(&s[..end]);
    let rest = url.get(scheme_len..).unwrap_or("");
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if !valid_host(host) || (www && !host.get(4..).is_some_and(|h| h.contains('.'))) {
        return None;
    }
    Some((url.len(), www))
}

/// A quick necessary condition for [`url_at`] (`after_scheme` starts at the host). The final
/// host is a prefix of the run of host characters here; it is followed by `/`, `?` or `#`, or
/// else everything after it is trailing punctuation that gets trimmed. None of the characters
/// this looks at can start another URL (host characters and `/` are not boundaries, trailing
/// punctuation has no `h` or `w`), so over a text run it looks at each character once or twice.
fn host_can_be_valid(after_scheme: &str, www: bool) -> bool {
    let run = after_scheme.find(|c: char| !is_host_char(c)).unwrap_or(after_scheme.len());
    let host = &after_scheme[..run];
    if !host.chars().next().is_some_and(char::is_alphanumeric) {
        return false;
    }
    if www && !host.get(4..).is_some_and(|h| h.contains('.')) {
        return false;
    }
    let mut after = after_scheme[run..].chars();
    match after.next() {
        None | Some('/' | '?' | '#') => true,
        Some(c) if ends_url(c) => true,
        Some(c) => std::iter::once(c)
            .chain(after)
            .take_while(|&c| !ends_url(c))
            .all(|c| is_trailing(c) || matches!(c, ')' | ']' | '}')),
    }
}

fn is_host_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':')
}

/// Punctuation that ends a sentence rather than a URL.
fn is_trailing(c: char) -> bool {
    matches!(c, '?' | '!' | '.' | ',' | ':' | ';' | '*' | '_' | '~' | '\'')
}

fn has_prefix(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// Characters that cannot be part of a bare URL: whitespace, controls, HTML-ish delimiters and
/// CJK / full-width punctuation (`。`, `，`, `）` …), which follow URLs in Chinese text.
fn ends_url(c: char) -> bool {
    c.is_whitespace()
        || c.is_control()
        || matches!(c, '<' | '>' | '"' | '`' | '\u{200b}')
        || ('\u{3000}'..='\u{303f}').contains(&c)
        || ('\u{ff00}'..='\u{ffef}').contains(&c)
}

/// Drops trailing punctuation, and closing brackets that have no opening partner in the URL.
/// (Brackets are counted once, so a URL ending in thousands of `)` costs linear time.)
fn trim_trailing(mut url: &str) -> &str {
    const PAIRS: [(char, char); 3] = [('(', ')'), ('[', ']'), ('{', '}')];
    let mut counts = [(0usize, 0usize); 3];
    for c in url.chars() {
        for (pair, count) in PAIRS.iter().zip(counts.iter_mut()) {
            count.0 += usize::from(c == pair.0);
            count.1 += usize::from(c == pair.1);
        }
    }
    loop {
        let Some(c) = url.chars().next_back() else { return url };
        let drop = match PAIRS.iter().position(|pair| pair.1 == c) {
            Some(i) if counts[i].0 < counts[i].1 => {
                counts[i].1 -= 1;
                true
            }
            Some(_) => false,
            None => is_trailing(c),
        };
        if !drop {
            return url;
        }
        url = &url[..url.len() - c.len_utf8()];
    }
}

/// Host (with optional port): starts alphanumeric, then letters, digits, `-`, `_`, `.`, `:`
/// (non-ASCII letters allowed for IDNs).
fn valid_host(host: &str) -> bool {
    host.chars().next().is_some_and(char::is_alphanumeric) && host.chars().all(is_host_char)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(text: &str) -> Vec<(String, String)> {
        split(text)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|p| match p {
                Piece::Url { text, href } => Some((text.to_owned(), href)),
                Piece::Text(_) => None,
            })
            .collect()
    }

    #[test]
    fn finds_http_https_and_www() {
        assert_eq!(
            urls("see https://example.com/a?b=1&c=2#x and http://x.org or www.rust-lang.org."),
            vec![
                ("https://example.com/a?b=1&c=2#x".to_owned(), "https://example.com/a?b=1&c=2#x".to_owned()),
                ("http://x.org".to_owned(), "http://x.org".to_owned()),
                ("www.rust-lang.org".to_owned(), "https://www.rust-lang.org".to_owned()),
            ]
        );
    }

    #[test]
    fn excludes_trailing_punctuation_and_unbalanced_parens() {
        assert_eq!(urls("(see https://example.com/foo)")[0].0, "https://example.com/foo");
        assert_eq!(
            urls("https://en.wikipedia.org/wiki/Rust_(language)!")[0].0,
            "https://en.wikipedia.org/wiki/Rust_(language)"
        );
        assert_eq!(urls("go to https://example.com.")[0].0, "https://example.com");
        assert_eq!(urls("'https://example.com/x'")[0].0, "https://example.com/x");
    }

    #[test]
    fn stops_at_cjk_punctuation() {
        assert_eq!(urls("请访问https://example.com/路径。谢谢")[0].0, "https://example.com/路径");
        assert_eq!(urls("链接：https://example.com，好")[0].0, "https://example.com");
    }

    #[test]
    fn keeps_pieces_in_order() {
        let pieces = split("a https://x.io b").unwrap_or_default();
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0], Piece::Text("a "));
        assert_eq!(pieces[2], Piece::Text(" b"));
    }

    #[test]
    fn pathological_runs_take_linear_time() {
        let started = std::time::Instant::now();
        let parens = format!("https://x.io/{}", ")".repeat(100_000));
        assert_eq!(urls(&parens)[0].0, "https://x.io/");
        assert!(urls(&"h!https://a(".repeat(16_000)).is_empty());
        assert!(urls(&"www.abc/!".repeat(20_000)).is_empty());
        assert!(urls(&"!https://a.io(".repeat(10_000)).is_empty());
        assert_eq!(urls(&"https://a.io/ ".repeat(10_000)).len(), 10_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(1), "{:?}", started.elapsed());
    }

    #[test]
    fn ignores_non_urls() {
        assert!(split("no links here").is_none());
        assert!(split("ftp://example.com and javascript://x").is_none());
        assert!(urls("https:// nothing").is_empty());
        assert!(urls("www. nothing, www.x").is_empty());
        assert!(urls("user@www.example.com").is_empty());
        assert!(urls("xhttps://example.com").is_empty());
        assert!(urls("https://<script>").is_empty());
    }
}
