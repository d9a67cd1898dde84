//! Search across all of a person's chats: topic titles holding the query, and messages holding
//! every term of it (through the store's index: stemmed English words, CJK character pairs),
//! grouped by topic, each with a snippet around its first match and the ranges to highlight.

use std::ops::Range;

use loquat_docs::search::Tokenizer;

use super::Assistants;
use crate::domain::{MessageRole, SearchHit};
use crate::error::CoreResult;
use crate::id::{AssistantId, MessageId, TopicId, UserId};

/// The longest query read, in characters (longer ones are cut).
pub const MAX_QUERY_CHARS: usize = 200;
/// The most messages and titles a search returns.
const MAX_HITS: u32 = 50;
const MAX_TITLES: u32 = 10;
/// About how much of a message a snippet shows, in characters.
const SNIPPET_CHARS: usize = 160;

/// A topic with what matched in it.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicResult {
    pub topic_id: TopicId,
    pub assistant_id: AssistantId,
    pub title: String,
    /// Where the title matched (empty: it did not).
    pub title_marks: Vec<Range<usize>>,
    pub messages: Vec<MessageResult>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageResult {
    pub message_id: MessageId,
    pub role: MessageRole,
    pub snippet: String,
    /// Byte ranges of `snippet` to highlight.
    pub marks: Vec<Range<usize>>,
}

impl Assistants {
    /// The person's topics and messages matching `query`, newest first, grouped by topic (titles first).
    pub async fn search(&self, user: UserId, query: &str) -> CoreResult<Vec<TopicResult>> {
        let query: String = query.trim().chars().take(MAX_QUERY_CHARS).collect();
        let mut terms = Tokenizer::default().collect(&query);
        terms.sort();
        terms.dedup();
        if query.is_empty() {
            return Ok(Vec::new());
        }
        let (hits, titles) = tokio::join!(
            self.store.search_messages(user, &terms, MAX_HITS),
            self.store.search_topic_titles(user, &query, MAX_TITLES)
        );
        let mut results: Vec<TopicResult> = Vec::new();
        let phrase = query.to_lowercase();
        for topic in titles? {
            results.push(TopicResult {
                title_marks: marks(&topic.title, std::slice::from_ref(&phrase)),
                topic_id: topic.id,
                assistant_id: topic.assistant_id,
                title: topic.title,
                messages: Vec::new(),
            });
        }
        for hit in hits? {
            let SearchHit { message_id, topic_id, assistant_id, topic_title, role, content, .. } = hit;
            let (snippet, marks) = snippet(&content, &terms);
            let found = MessageResult { message_id, role, snippet, marks };
            match results.iter_mut().find(|result| result.topic_id == topic_id) {
                Some(result) => result.messages.push(found),
                None => results.push(TopicResult {
                    topic_id,
                    assistant_id,
                    title: topic_title,
                    title_marks: Vec::new(),
                    messages: vec![found],
                }),
            }
        }
        Ok(results)
    }
}

/// The part of `text` around its first match of `terms` (whole when short), with the ranges
/// of every match in it.
fn snippet(text: &str, terms: &[String]) -> (String, Vec<Range<usize>>) {
    let text = plain(text).split_whitespace().collect::<Vec<_>>().join(" ");
    let first = marks(&text, terms).first().map_or(0, |mark| mark.start);
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let at = chars.partition_point(|(offset, _)| *offset < first);
    let start = at.saturating_sub(SNIPPET_CHARS / 3);
    let end = (start + SNIPPET_CHARS).min(chars.len());
    let byte = |index: usize| chars.get(index).map_or(text.len(), |(offset, _)| *offset);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    out.push_str(&text[byte(start)..byte(end)]);
    if end < chars.len() {
        out.push('…');
    }
    let marks = marks(&out, terms);
    (out, marks)
}

/// Markdown as a reader sees it, roughly: fences, headings' and quotes' marks, list bullets,
/// table rules and pipes, emphasis and code marks gone; a link or image keeps its text.
fn plain(markdown: &str) -> String {
    let mut out = String::with_capacity(markdown.len());
    for line in markdown.lines() {
        let trimmed = line.trim_start();
        let is_rule = !trimmed.is_empty() && trimmed.chars().all(|ch| matches!(ch, '-' | '|' | ':' | ' ' | '='));
        if trimmed.starts_with("```") || trimmed.starts_with("~~~") || is_rule {
            out.push('\n');
            continue;
        }
        let mut rest = trimmed.trim_start_matches(['#', '>']).trim_start();
        for bullet in ["- ", "* ", "+ "] {
            rest = rest.strip_prefix(bullet).unwrap_or(rest);
        }
        let mut chars = rest.chars().peekable();
        // Right after a `]`: a `(` opens the link's address, which is left out.
        let mut after_bracket = false;
        while let Some(ch) = chars.next() {
            match ch {
                '(' if after_bracket => {
                    for inner in chars.by_ref() {
                        if inner == ')' {
                            break;
                        }
                    }
                }
                '*' | '_' | '`' | '~' | '[' | ']' => {}
                '|' => out.push(' '),
                '!' if chars.peek() == Some(&'[') => {}
                other => out.push(other),
            }
            after_bracket = ch == ']';
        }
        out.push('\n');
    }
    out
}

/// Byte ranges of `text` where a term starts a match (ASCII letters compared without case;
/// a stem matches the start of a longer word, `grow` in `growing`), merged where they meet.
fn marks(text: &str, terms: &[String]) -> Vec<Range<usize>> {
    let lower = text.to_ascii_lowercase();
    let mut found: Vec<Range<usize>> = Vec::new();
    for term in terms.iter().filter(|term| !term.is_empty()) {
        let needle = term.to_ascii_lowercase();
        let mut from = 0;
        while let Some(at) = lower[from..].find(&needle) {
            let start = from + at;
            let end = start + needle.len();
            // An English stem marks the rest of its word too.
            let end = if needle.bytes().all(|b| b.is_ascii_alphanumeric()) {
                end + lower[end..].bytes().take_while(u8::is_ascii_alphabetic).count()
            } else {
                end
            };
            let word_start = start == 0 || !lower.as_bytes()[start - 1].is_ascii_alphanumeric() || !needle.is_ascii();
            if word_start {
                found.push(start..end);
            }
            from = end.max(start + needle.len());
        }
    }
    found.sort_by_key(|range| range.start);
    let mut merged: Vec<Range<usize>> = Vec::new();
    for range in found {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => merged.push(range),
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    fn marked(text: &str, marks: &[Range<usize>]) -> String {
        let mut out = String::new();
        let mut at = 0;
        for mark in marks {
            out.push_str(&text[at..mark.start]);
            out.push('[');
            out.push_str(&text[mark.clone()]);
            out.push(']');
            at = mark.end;
        }
        out.push_str(&text[at..]);
        out
    }

    #[test]
    fn snippets_read_as_plain_text() {
        let text = "## Results\n\n| Year | **Spending** |\n|---|---|\n| 2023 | [12 bn](https://x.y/z) |\n\n```rust\nfn main() {}\n```";
        assert_eq!(
            plain(text).split_whitespace().collect::<Vec<_>>().join(" "),
            "Results Year Spending 2023 12 bn fn main() {}"
        );
        assert_eq!(plain("a (b) ![img](u) c"), "a (b) img c\n");
    }

    #[test]
    fn snippets_show_the_matches_in_their_words() {
        let terms = Tokenizer::default().collect("growing spend 研发投入");
        let (text, marks) = snippet("R&D Spending grew; it keeps growing. 公司研发投入增长", &terms);
        assert_eq!(marked(&text, &marks), "R&D [Spending] grew; it keeps [growing]. 公司[研发投入]增长");
        // A long text is cut around the first match, on character boundaries.
        let long = format!("{}关键的研发投入{}", "前文".repeat(200), "后文".repeat(200));
        let (text, marks) = snippet(&long, &terms);
        assert!(text.starts_with('…') && text.ends_with('…') && text.chars().count() <= SNIPPET_CHARS + 2);
        assert_eq!(&text[marks[0].clone()], "研发投入");
        // A stem inside another word is not a match.
        let terms = Tokenizer::default().collect("grow");
        assert!(marks_of("overgrown", &terms).is_empty());
    }

    fn marks_of(text: &str, terms: &[String]) -> Vec<Range<usize>> {
        marks(text, terms)
    }
}
