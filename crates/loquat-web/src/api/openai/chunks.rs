//! The streamed answer as `chat.completion.chunk` server-sent events, written the moment each
//! upstream event arrives: the role first, then `content` / `reasoning_content` / `tool_calls`
//! deltas, a chunk with the finish reason, the usage chunk (empty `choices`) when the request
//! asked for `stream_options.include_usage`, then `data: [DONE]`. A failure after the start is
//! an in-stream `{"error": …}` event, then the end. Each frame is the request's pre-rendered
//! head plus one small JSON piece: no per-chunk allocation beyond the frame itself.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Bytes;
use futures_util::Stream;
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ToolCall};
use loquat_core::service::ApiChatStream;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::i18n::Tr;

const DELTA_END: &[u8] = b"},\"logprobs\":null,\"finish_reason\":null}]}\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";

/// The SSE body of one streamed completion.
pub struct ChunkStream {
    events: ApiChatStream,
    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,"choices":[`
    head: Vec<u8>,
    include_usage: bool,
    tr: Tr,
    state: State,
    tool_calls: usize,
    usage: Option<TokenUsage>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Streaming,
    /// The finish chunk went out; waiting for usage and the end.
    Finished,
    Done,
}

impl ChunkStream {
    pub fn new(events: ApiChatStream, id: &str, created: i64, model: &str, include_usage: bool, tr: Tr) -> Self {
        let head = format!(
            "data: {{\"id\":\"chatcmpl-{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},\
             \"system_fingerprint\":null,\"choices\":[",
            Value::from(model)
        );
        let (state, tool_calls, usage) = (State::Start, 0, None);
        Self { events, head: head.into_bytes(), include_usage, tr, state, tool_calls, usage }
    }

    /// One chunk: the head, then `{"index":0,"delta":{` + `delta` + the tail.
    fn delta(&self, delta: &[u8]) -> Bytes {
        let mut frame = Vec::with_capacity(self.head.len() + delta.len() + 80);
        frame.extend_from_slice(&self.head);
        frame.extend_from_slice(b"{\"index\":0,\"delta\":{");
        frame.extend_from_slice(delta);
        frame.extend_from_slice(DELTA_END);
        Bytes::from(frame)
    }

    /// A delta with one string field (`"content":"…"`).
    fn text_delta(&self, field: &str, text: &str) -> Bytes {
        let mut delta = Vec::with_capacity(field.len() + text.len() + 8);
        delta.push(b'"');
        delta.extend_from_slice(field.as_bytes());
        delta.extend_from_slice(b"\":");
        // Writing a string into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut delta, text);
        self.delta(&delta)
    }

    fn tool_delta(&mut self, call: &ToolCall) -> Bytes {
        let index = self.tool_calls;
        self.tool_calls += 1;
        let id = if call.id.is_empty() { format!("call_{index}") } else { call.id.clone() };
        let call = json!([{ "index": index, "id": id, "type": "function",
                            "function": { "name": call.name, "arguments": call.arguments } }]);
        self.delta(format!("\"tool_calls\":{call}").as_bytes())
    }

    fn finish_frame(&self, reason: FinishReason, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"");
        out.extend_from_slice(finish_reason(reason, self.tool_calls > 0).as_bytes());
        out.extend_from_slice(b"\"}]}\n\n");
    }

    /// What closes a stream that ended well: the finish chunk (unless sent), usage, `[DONE]`.
    fn closing(&self) -> Bytes {
        let mut out = Vec::with_capacity(2 * self.head.len() + 256);
        if self.state != State::Finished {
            self.finish_frame(FinishReason::Stop, &mut out);
        }
        if self.include_usage {
            out.extend_from_slice(&self.head);
            out.extend_from_slice(b"],\"usage\":");
            out.extend_from_slice(usage_json(self.usage.unwrap_or_default()).to_string().as_bytes());
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(DONE);
        Bytes::from(out)
    }
}

impl Stream for ChunkStream {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Done => return Poll::Ready(None),
                State::Start => {
                    this.state = State::Streaming;
                    return Poll::Ready(Some(Ok(this.delta(b"\"role\":\"assistant\",\"content\":\"\""))));
                }
                State::Streaming | State::Finished => {}
            }
            let frame = match Pin::new(&mut this.events).poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    let closing = this.closing();
                    this.state = State::Done;
                    closing
                }
                Poll::Ready(Some(Err(error))) => {
                    this.state = State::Done;
                    let body = ApiError::from_provider(&error, this.tr).body();
                    Bytes::from(format!("data: {body}\n\n"))
                }
                Poll::Ready(Some(Ok(event))) => match event {
                    ChatEvent::Text(text) if !text.is_empty() => this.text_delta("content", &text),
                    ChatEvent::Reasoning(text) if !text.is_empty() => this.text_delta("reasoning_content", &text),
                    ChatEvent::ToolCall(call) => this.tool_delta(&call),
                    ChatEvent::Finish(reason) if this.state == State::Streaming => {
                        this.state = State::Finished;
                        let mut out = Vec::with_capacity(this.head.len() + 80);
                        this.finish_frame(reason, &mut out);
                        Bytes::from(out)
                    }
                    ChatEvent::Usage(usage) => {
                        this.usage = Some(usage);
                        continue;
                    }
                    _ => continue,
                },
            };
            return Poll::Ready(Some(Ok(frame)));
        }
    }
}

/// OpenAI's words for why an answer ended; an answer that called tools ended for them.
pub fn finish_reason(reason: FinishReason, called_tools: bool) -> &'static str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::ContentFilter => "content_filter",
        FinishReason::ToolCalls => "tool_calls",
        FinishReason::Stop | FinishReason::Other if called_tools => "tool_calls",
        FinishReason::Stop | FinishReason::Other => "stop",
    }
}

/// OpenAI's usage object.
pub fn usage_json(usage: TokenUsage) -> Value {
    json!({
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total(),
        "prompt_tokens_details": { "cached_tokens": usage.cache_read_tokens },
        "completion_tokens_details": { "reasoning_tokens": usage.reasoning_tokens },
    })
}
