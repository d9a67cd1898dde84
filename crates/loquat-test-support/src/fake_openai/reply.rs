//! Scripted replies of the fake OpenAI upstream: the [`Reply`] builder, and the pieces of the
//! wire format it pre-renders once (delta bodies, finish and usage frames) so that serving a
//! stream allocates nothing per chunk.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

/// One scripted answer. Cheap to clone (the script is shared), so one reply can serve many
/// requests as the default.
#[derive(Debug, Clone)]
pub struct Reply(pub(super) Arc<Script>);

#[derive(Debug, Clone)]
pub(super) struct Script {
    /// Status and JSON body when the reply is an HTTP error.
    pub http_error: Option<(u16, Bytes)>,
    pub reasoning: Vec<String>,
    pub content: Vec<String>,
    /// Pre-rendered delta bodies (`"reasoning_content":"…"`, then `"content":"…"`).
    pub deltas: Vec<Bytes>,
    pub finish_reason: String,
    /// `"choices":[{…,"finish_reason":"stop"}]}\n\n`, to follow a frame head.
    pub finish_frame: Bytes,
    pub usage: Option<(u32, u32)>,
    /// `"choices":[],"usage":{…}}\n\n`, to follow a frame head.
    pub usage_frame: Option<Bytes>,
    pub first_chunk_delay: Duration,
    pub delay_between_chunks: Duration,
    pub ending: Ending,
}

/// How a streamed reply ends; `n` counts delta chunks (reasoning and text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ending {
    Complete,
    FailAfter(usize),
    DisconnectAfter(usize),
    StallAfter(usize),
}

const LOREM: [&str; 8] = ["Lorem", " ipsum", " dolor", " sit", " amet,", " consectetur", " adipiscing", " elit."];

impl Reply {
    /// A streamed text answer, sent one word (with its leading space) per chunk.
    pub fn text(text: impl AsRef<str>) -> Self {
        Self::chunks(split_words(text.as_ref()))
    }

    /// A streamed text answer sent exactly as these chunks.
    pub fn chunks<I>(chunks: I) -> Self
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        let script = Script {
            http_error: None,
            reasoning: Vec::new(),
            content: chunks.into_iter().map(Into::into).collect(),
            deltas: Vec::new(),
            finish_reason: "stop".to_owned(),
            finish_frame: Bytes::new(),
            usage: None,
            usage_frame: None,
            first_chunk_delay: Duration::ZERO,
            delay_between_chunks: Duration::ZERO,
            ending: Ending::Complete,
        };
        Self(Arc::new(script)).edit(|_| {})
    }

    /// `n` chunks of generated text, one word each.
    pub fn tokens(n: usize) -> Self {
        Self::chunks((0..n).map(|i| {
            let word = LOREM[i % LOREM.len()];
            if i == 0 {
                word.trim_start().to_owned()
            } else if word.starts_with(' ') {
                word.to_owned()
            } else {
                format!(" {word}")
            }
        }))
    }

    /// An HTTP error with this status and JSON body, e.g. 401 with OpenAI's
    /// `{"error":{"message":…,"type":"invalid_request_error","code":"invalid_api_key"}}`.
    pub fn http_error(status: u16, body: Value) -> Self {
        Self::chunks(Vec::<String>::new())
            .edit(|script| script.http_error = Some((status, Bytes::from(body.to_string()))))
    }

    /// Reasoning sent word by word as `reasoning_content` deltas before the text.
    pub fn reasoning(self, reasoning: impl AsRef<str>) -> Self {
        let pieces = split_words(reasoning.as_ref());
        self.edit(|script| script.reasoning = pieces)
    }

    /// Pause before every delta chunk after the first.
    pub fn delay_between_chunks(self, delay: Duration) -> Self {
        self.edit(|script| script.delay_between_chunks = delay)
    }

    /// Pause after the response head, before the first chunk.
    pub fn first_chunk_delay(self, delay: Duration) -> Self {
        self.edit(|script| script.first_chunk_delay = delay)
    }

    /// Sends a final usage chunk (empty `choices`) when the request asked for
    /// `stream_options.include_usage`; `reasoning_tokens` is the number of reasoning chunks.
    pub fn usage(self, prompt_tokens: u32, completion_tokens: u32) -> Self {
        self.edit(|script| script.usage = Some((prompt_tokens, completion_tokens)))
    }

    /// The `finish_reason` of the final chunk (default `stop`).
    pub fn finish_reason(self, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        self.edit(|script| script.finish_reason = reason)
    }

    /// After `n` delta chunks, sends `{"error":{…,"type":"server_error"}}` and closes the stream.
    pub fn fail_after(self, n: usize) -> Self {
        self.edit(|script| script.ending = Ending::FailAfter(n))
    }

    /// After `n` delta chunks, aborts the connection (no `[DONE]`, no final HTTP chunk).
    pub fn disconnect_after(self, n: usize) -> Self {
        self.edit(|script| script.ending = Ending::DisconnectAfter(n))
    }

    /// After `n` delta chunks, sends nothing more but keeps the connection open.
    pub fn stall_after(self, n: usize) -> Self {
        self.edit(|script| script.ending = Ending::StallAfter(n))
    }

    /// The whole text the reply streams (if it runs to completion).
    pub fn content(&self) -> String {
        self.0.content.concat()
    }

    /// The whole reasoning the reply streams.
    pub fn reasoning_text(&self) -> String {
        self.0.reasoning.concat()
    }

    fn edit(mut self, change: impl FnOnce(&mut Script)) -> Self {
        let script = Arc::make_mut(&mut self.0);
        change(script);
        script.render();
        self
    }
}

impl Script {
    /// Re-renders the wire pieces after a change (build time only).
    fn render(&mut self) {
        let reasoning = self.reasoning.iter().map(|piece| ("reasoning_content", piece));
        let content = self.content.iter().map(|piece| ("content", piece));
        self.deltas = reasoning
            .chain(content)
            .map(|(field, piece)| Bytes::from(format!("\"{field}\":{}", Value::from(piece.as_str()))))
            .collect();
        self.finish_frame = Bytes::from(format!(
            "\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":{}}}]}}\n\n",
            Value::from(self.finish_reason.as_str())
        ));
        let reasoning_tokens = self.reasoning.len();
        self.usage_frame = self.usage.map(|(prompt, completion)| {
            let total = u64::from(prompt) + u64::from(completion);
            Bytes::from(format!(
                "\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\
                 \"total_tokens\":{total},\"completion_tokens_details\":{{\"reasoning_tokens\":{reasoning_tokens}}}}}}}\n\n"
            ))
        });
    }

    /// The usage object of a non-streamed answer.
    pub fn usage_json(&self) -> Option<Value> {
        self.usage.map(|(prompt, completion)| {
            serde_json::json!({
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": u64::from(prompt) + u64::from(completion),
                "completion_tokens_details": { "reasoning_tokens": self.reasoning.len() },
            })
        })
    }
}

/// Splits before every run of whitespace that follows a word: `"Hello big world"` →
/// `["Hello", " big", " world"]`. Concatenating the pieces gives the text back.
fn split_words(text: &str) -> Vec<String> {
    let mut pieces = Vec::new();
    let (mut start, mut previous_was_space) = (0, true);
    for (index, character) in text.char_indices() {
        let is_space = character.is_whitespace();
        if is_space && !previous_was_space && index > start {
            pieces.push(text[start..index].to_owned());
            start = index;
        }
        previous_was_space = is_space;
    }
    if start < text.len() {
        pieces.push(text[start..].to_owned());
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_leading_space() {
        assert_eq!(split_words("Hello big  world"), ["Hello", " big", "  world"]);
        assert_eq!(split_words(" héllo 👋\n"), [" héllo", " 👋", "\n"]);
        assert!(split_words("").is_empty());
    }

    #[test]
    fn tokens_make_n_chunks() {
        let reply = Reply::tokens(10);
        assert_eq!(reply.0.deltas.len(), 10);
        assert!(reply.content().starts_with("Lorem ipsum"));
        assert!(reply.content().contains("elit. Lorem"));
    }

    #[test]
    fn pieces_are_rendered_as_json() {
        let reply = Reply::chunks(["a\"b"]).reasoning("hm").usage(3, 4);
        assert_eq!(reply.0.deltas, [Bytes::from(r#""reasoning_content":"hm""#), Bytes::from(r#""content":"a\"b""#)]);
        let usage = std::str::from_utf8(reply.0.usage_frame.as_deref().unwrap_or_default()).unwrap_or_default();
        let usage: Value = serde_json::from_str(&format!("{{{}", usage.trim_end())).expect("json");
        assert_eq!(usage["usage"]["total_tokens"], 7);
        assert_eq!(usage["usage"]["completion_tokens_details"]["reasoning_tokens"], 1);
    }
}
