//! Scripted replies of the fake upstream: the protocol-neutral [`Reply`] builder (reasoning,
//! text, tool calls, usage, finish reason, delays, how the stream ends, HTTP errors), and the
//! OpenAI wire pieces it pre-renders once (delta bodies, finish and usage frames) so that
//! serving an OpenAI stream allocates nothing per chunk. The other protocols render the same
//! script at serving time.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

/// One scripted answer, in no protocol's vocabulary: every protocol of the fake renders it in
/// its own wire format. Cheap to clone (the script is shared), so one reply can serve many
/// requests as the default.
///
/// A streamed answer is a sequence of *chunks*: the reasoning pieces, then the text pieces,
/// then one chunk per tool call. Endings (`fail_after`, `disconnect_after`, `stall_after`)
/// count these chunks.
#[derive(Debug, Clone)]
pub struct Reply(pub(super) Arc<Script>);

#[derive(Debug, Clone)]
pub(super) struct Script {
    pub http_error: Option<HttpError>,
    /// Seconds the client is asked to wait (with an HTTP error).
    pub retry_after: Option<u64>,
    pub reasoning: Vec<String>,
    pub content: Vec<String>,
    pub tool_calls: Vec<ScriptedCall>,
    /// In OpenAI's vocabulary (`stop`, `length`, `tool_calls`, `content_filter`); the other
    /// protocols translate it.
    pub finish_reason: String,
    pub usage: Option<(u32, u32)>,
    pub first_chunk_delay: Duration,
    pub delay_between_chunks: Duration,
    pub ending: Ending,
    pub openai: OpenAiPieces,
}

/// An HTTP error instead of an answer: a body sent as is, or the protocol's own error for a status.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum HttpError {
    Body(u16, Bytes),
    Status(u16),
}

impl HttpError {
    pub fn status(&self) -> u16 {
        match self {
            HttpError::Body(status, _) | HttpError::Status(status) => *status,
        }
    }
}

/// A tool call of the script: the arguments as JSON text, the pieces they are streamed in
/// (OpenAI, Anthropic), and as a JSON value (Gemini, Ollama; a string when not JSON).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct ScriptedCall {
    pub name: String,
    pub arguments: String,
    pub pieces: Vec<String>,
    pub input: Value,
}

/// One chunk of the script.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Piece<'a> {
    Reasoning(&'a str),
    Text(&'a str),
    /// The tool call and its position among the script's calls.
    Tool(usize, &'a ScriptedCall),
}

/// The OpenAI rendering: delta bodies (`"content":"…"`) of every chunk, flat, with where each
/// chunk's deltas end (a tool call streams as several deltas).
#[derive(Debug, Clone, Default)]
pub(super) struct OpenAiPieces {
    pub deltas: Vec<Bytes>,
    pub chunk_ends: Vec<usize>,
    /// `"choices":[{…,"finish_reason":"stop"}]}\n\n`, to follow a frame head.
    pub finish_frame: Bytes,
    /// `"choices":[],"usage":{…}}\n\n`, to follow a frame head.
    pub usage_frame: Option<Bytes>,
}

/// How a streamed reply ends; `n` counts chunks (reasoning, text and tool calls).
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
            retry_after: None,
            reasoning: Vec::new(),
            content: chunks.into_iter().map(Into::into).collect(),
            tool_calls: Vec::new(),
            finish_reason: "stop".to_owned(),
            usage: None,
            first_chunk_delay: Duration::ZERO,
            delay_between_chunks: Duration::ZERO,
            ending: Ending::Complete,
            openai: OpenAiPieces::default(),
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

    /// An HTTP error with this status and JSON body, sent as is whatever the protocol, e.g.
    /// 401 with OpenAI's `{"error":{"message":…,"type":"invalid_request_error","code":"invalid_api_key"}}`.
    pub fn http_error(status: u16, body: Value) -> Self {
        let body = Bytes::from(body.to_string());
        Self::chunks(Vec::<String>::new()).edit(|script| script.http_error = Some(HttpError::Body(status, body)))
    }

    /// An HTTP error with this status and the body the fake's protocol sends for it: OpenAI's
    /// `rate_limit_exceeded`, Anthropic's `rate_limit_error`, Gemini's `RESOURCE_EXHAUSTED`,
    /// Ollama's `{"error":…}` and so on (401, 403, 404, 400, 413, 429, 500, 503, 529).
    pub fn error(status: u16) -> Self {
        Self::chunks(Vec::<String>::new()).edit(|script| script.http_error = Some(HttpError::Status(status)))
    }

    /// With an HTTP error: asks the client to wait this long, the way the protocol does it
    /// (`Retry-After`; Azure adds `retry-after-ms`; Gemini sends no header but a `RetryInfo`
    /// with `retryDelay` in the error's `details`).
    pub fn retry_after_secs(self, seconds: u64) -> Self {
        self.edit(|script| script.retry_after = Some(seconds))
    }

    /// Reasoning sent word by word before the text (OpenAI `reasoning_content`, an Anthropic
    /// thinking block with its signature, Gemini `thought` parts, Ollama `thinking`).
    pub fn reasoning(self, reasoning: impl AsRef<str>) -> Self {
        let pieces = split_words(reasoning.as_ref());
        self.edit(|script| script.reasoning = pieces)
    }

    /// A tool call after the text, `arguments` being the JSON text of its arguments. Streamed
    /// as argument pieces by OpenAI (`tool_calls` deltas) and Anthropic (a `tool_use` block with
    /// `input_json_delta`s), whole by Gemini (`functionCall`) and Ollama (`message.tool_calls`).
    /// The finish reason becomes `tool_calls` unless another one was set.
    pub fn tool_call(self, name: impl Into<String>, arguments: impl Into<String>) -> Self {
        let (name, arguments) = (name.into(), arguments.into());
        let input = serde_json::from_str(&arguments).unwrap_or_else(|_| Value::String(arguments.clone()));
        let call = ScriptedCall { name, pieces: split_in_three(&arguments), arguments, input };
        self.edit(|script| {
            script.tool_calls.push(call);
            if script.finish_reason == "stop" {
                script.finish_reason = "tool_calls".to_owned();
            }
        })
    }

    /// Pause before every chunk after the first.
    pub fn delay_between_chunks(self, delay: Duration) -> Self {
        self.edit(|script| script.delay_between_chunks = delay)
    }

    /// Pause after the response head, before the first chunk.
    pub fn first_chunk_delay(self, delay: Duration) -> Self {
        self.edit(|script| script.first_chunk_delay = delay)
    }

    /// Token counts. OpenAI sends them (a final chunk with empty `choices`) only when the
    /// request asked for `stream_options.include_usage`, with `reasoning_tokens` = the number
    /// of reasoning chunks; the other protocols always report usage, by default 0 prompt
    /// tokens and one completion token per chunk. Gemini reports the reasoning chunks as
    /// `thoughtsTokenCount`, apart from `candidatesTokenCount`, as it does.
    pub fn usage(self, prompt_tokens: u32, completion_tokens: u32) -> Self {
        self.edit(|script| script.usage = Some((prompt_tokens, completion_tokens)))
    }

    /// The finish reason in OpenAI's vocabulary (default `stop`): `stop`, `length`,
    /// `tool_calls`, `content_filter`; the other protocols translate it (`end_turn`,
    /// `max_tokens`, `MAX_TOKENS`, `SAFETY`…).
    pub fn finish_reason(self, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        self.edit(|script| script.finish_reason = reason)
    }

    /// After `n` chunks, sends the protocol's in-stream server error and closes the stream.
    pub fn fail_after(self, n: usize) -> Self {
        self.edit(|script| script.ending = Ending::FailAfter(n))
    }

    /// After `n` chunks, aborts the connection (no end of stream, no final HTTP chunk).
    pub fn disconnect_after(self, n: usize) -> Self {
        self.edit(|script| script.ending = Ending::DisconnectAfter(n))
    }

    /// After `n` chunks, sends nothing more but keeps the connection open.
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
        script.render_openai();
        self
    }
}

impl Script {
    /// How many chunks a complete stream sends.
    pub fn chunk_count(&self) -> usize {
        self.reasoning.len() + self.content.len() + self.tool_calls.len()
    }

    pub fn piece(&self, index: usize) -> Option<Piece<'_>> {
        let (reasoning, content) = (self.reasoning.len(), self.content.len());
        if index < reasoning {
            Some(Piece::Reasoning(&self.reasoning[index]))
        } else if index < reasoning + content {
            Some(Piece::Text(&self.content[index - reasoning]))
        } else {
            let call = index - reasoning - content;
            self.tool_calls.get(call).map(|scripted| Piece::Tool(call, scripted))
        }
    }

    /// Whether chunk `index` is the last one of a stream that completes.
    pub fn is_last_chunk(&self, index: usize) -> bool {
        self.ending == Ending::Complete && index + 1 == self.chunk_count()
    }

    /// The scripted usage, or what the protocols that always report usage say without one.
    pub fn usage_or_default(&self) -> (u32, u32) {
        self.usage.unwrap_or((0, u32::try_from(self.chunk_count()).unwrap_or(u32::MAX)))
    }

    pub fn reasoning_tokens(&self) -> u32 {
        u32::try_from(self.reasoning.len()).unwrap_or(u32::MAX)
    }

    /// Re-renders the OpenAI pieces after a change (build time only).
    fn render_openai(&mut self) {
        let mut pieces = OpenAiPieces::default();
        let json = |text: &str| Value::from(text).to_string();
        for text in &self.reasoning {
            pieces.deltas.push(Bytes::from(format!("\"reasoning_content\":{}", json(text))));
            pieces.chunk_ends.push(pieces.deltas.len());
        }
        for text in &self.content {
            pieces.deltas.push(Bytes::from(format!("\"content\":{}", json(text))));
            pieces.chunk_ends.push(pieces.deltas.len());
        }
        for (index, call) in self.tool_calls.iter().enumerate() {
            pieces.deltas.push(Bytes::from(format!(
                "\"tool_calls\":[{{\"index\":{index},\"id\":\"{}\",\"type\":\"function\",\
                 \"function\":{{\"name\":{},\"arguments\":\"\"}}}}]",
                openai_call_id(index),
                json(&call.name)
            )));
            for piece in &call.pieces {
                pieces.deltas.push(Bytes::from(format!(
                    "\"tool_calls\":[{{\"index\":{index},\"function\":{{\"arguments\":{}}}}}]",
                    json(piece)
                )));
            }
            pieces.chunk_ends.push(pieces.deltas.len());
        }
        pieces.finish_frame = Bytes::from(format!(
            "\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":{}}}]}}\n\n",
            json(&self.finish_reason)
        ));
        let reasoning_tokens = self.reasoning.len();
        pieces.usage_frame = self.usage.map(|(prompt, completion)| {
            let total = u64::from(prompt) + u64::from(completion);
            Bytes::from(format!(
                "\"choices\":[],\"usage\":{{\"prompt_tokens\":{prompt},\"completion_tokens\":{completion},\
                 \"total_tokens\":{total},\"completion_tokens_details\":{{\"reasoning_tokens\":{reasoning_tokens}}}}}}}\n\n"
            ))
        });
        self.openai = pieces;
    }

    /// The deltas of chunk `index` in the OpenAI rendering.
    pub fn openai_deltas(&self, index: usize) -> &[Bytes] {
        let start = index.checked_sub(1).and_then(|previous| self.openai.chunk_ends.get(previous)).copied();
        let end = self.openai.chunk_ends.get(index).copied().unwrap_or(0);
        self.openai.deltas.get(start.unwrap_or(0)..end).unwrap_or_default()
    }

    /// The usage object of a non-streamed OpenAI answer.
    pub fn openai_usage_json(&self) -> Option<Value> {
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

/// The id OpenAI-style protocols give the script's tool call `index`.
pub(super) fn openai_call_id(index: usize) -> String {
    format!("call_fake{index}")
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

/// Up to three pieces of about equal length, cut at character boundaries (so JSON is cut
/// anywhere, even inside a string or a number).
fn split_in_three(text: &str) -> Vec<String> {
    let characters: Vec<char> = text.chars().collect();
    let size = characters.len().div_ceil(3).max(1);
    characters.chunks(size).map(|piece| piece.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_their_leading_space() {
        assert_eq!(split_words("Hello big  world"), ["Hello", " big", "  world"]);
        assert_eq!(split_words(" héllo 👋\n"), [" héllo", " 👋", "\n"]);
        assert!(split_words("").is_empty());
        assert_eq!(split_in_three(r#"{"a":1}"#), [r#"{"a"#, r#"":1"#, "}"]);
        assert!(split_in_three("").is_empty());
    }

    #[test]
    fn tokens_make_n_chunks() {
        let reply = Reply::tokens(10);
        assert_eq!(reply.0.openai.deltas.len(), 10);
        assert_eq!(reply.0.chunk_count(), 10);
        assert!(reply.content().starts_with("Lorem ipsum"));
        assert!(reply.content().contains("elit. Lorem"));
    }

    #[test]
    fn pieces_are_rendered_as_json() {
        let reply = Reply::chunks(["a\"b"]).reasoning("hm").usage(3, 4);
        assert_eq!(
            reply.0.openai.deltas,
            [Bytes::from(r#""reasoning_content":"hm""#), Bytes::from(r#""content":"a\"b""#)]
        );
        let usage = std::str::from_utf8(reply.0.openai.usage_frame.as_deref().unwrap_or_default()).unwrap_or_default();
        let usage: Value = serde_json::from_str(&format!("{{{}", usage.trim_end())).expect("json");
        assert_eq!(usage["usage"]["total_tokens"], 7);
        assert_eq!(usage["usage"]["completion_tokens_details"]["reasoning_tokens"], 1);
    }

    #[test]
    fn a_tool_call_is_one_chunk_of_several_deltas() {
        let reply = Reply::text("Hi").tool_call("weather", r#"{"city":"Paris"}"#);
        let script = &reply.0;
        assert_eq!((script.chunk_count(), script.finish_reason.as_str()), (2, "tool_calls"));
        assert_eq!(script.openai_deltas(0), [Bytes::from(r#""content":"Hi""#)]);
        let deltas = script.openai_deltas(1);
        assert_eq!(deltas.len(), 4, "the name, then three argument pieces");
        assert!(deltas[0].starts_with(br#""tool_calls":[{"index":0,"id":"call_fake0""#));
        assert_eq!(script.piece(1), Some(Piece::Tool(0, &script.tool_calls[0])));
        assert_eq!(script.tool_calls[0].input["city"], "Paris");
        assert!(script.piece(2).is_none() && script.is_last_chunk(1));
        let length = Reply::text("x").finish_reason("length").tool_call("f", "{}");
        assert_eq!(length.0.finish_reason, "length");
    }
}
