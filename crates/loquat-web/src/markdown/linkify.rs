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
    let end = s.char_indices().find(|&(_, c)| ends_url(c)).map_or(s.len(), |(i, _)| i);
    let url = trim_trailing(&s[..end]);
    let rest = url.get(scheme_len..).unwrap_or("");
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if !valid_host(host) || (www && !host.get(4..).is_some_and(|h| h.contains('.'))) {
        return None;
    }
    Some((url.len(), www))
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
fn trim_trailing(mut url: &str) -> &str {
    loop {
        let Some(c) = url.chars().next_back() else { return url };
        let unbalanced = |open: char| url.matches(open).count() < url.matches(c).count();
        let drop = match c {
            '?' | '!' | '.' | ',' | ':' | ';' | '*' | '_' | '~' | '\'' => true,
            ')' => unbalanced('('),
            ']' => unbalanced('['),
            '}' => unbalanced('{'),
            _ => false,
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
    host.chars().next().is_some_and(char::is_alphanumeric)
        && host.chars().all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
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
