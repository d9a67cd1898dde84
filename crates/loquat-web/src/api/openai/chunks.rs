//! The streamed answer as `chat.completion.chunk` server-sent events, written the moment each
//! upstream event arrives: the role first, then `content` / `reasoning_content` / `tool_calls`
//! deltas, a chunk with the finish reason, the usage chunk (empty `choices`) when the request
//! asked for `stream_options.include_usage`, then `data: [DONE]`. A failure after the start is
//! an in-stream `{"error": …}` event, then the end. Each frame is the request's pre-rendered
//! head plus one small JSON piece, written straight into the outgoing buffer.
//!
//! Writes are batched: a stream writes to its client at most once per [`WRITE_INTERVAL`].
//! An event that comes after a quiet interval (a model producing tokens at reading speed) goes
//! out at once; events that come faster (a fast model, a burst after a stall) wait for the
//! interval's end and leave together. Each write costs a system call, a TCP segment and a
//! wake-up of the reader, and they were most of the gateway's CPU time when every event was
//! its own write. The first answer text and the end of the answer are never held back.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use futures_util::Stream;
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ToolCall};
use loquat_core::service::ApiChatStream;
use serde_json::{Value, json};
use tokio::time::{Instant, Sleep};

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
    /// Server tool calls shown so far (`ChatEvent::Step`).
    steps: usize,
    usage: Option<TokenUsage>,
    /// Frames written but not sent yet.
    batch: Vec<u8>,
    /// Whether `batch` holds the frame of an upstream event (not only the opening role).
    batch_has_event: bool,
    /// When frames with events last went out; `None` until the first did.
    last_write: Option<Instant>,
    /// Fires when the waiting frames may go; created on the first wait.
    write_timer: Option<Pin<Box<Sleep>>>,
    /// Whether `write_timer` is set for the frames waiting now.
    timer_armed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Start,
    Streaming,
    /// The finish chunk went out; waiting for usage and the end.
    Finished,
    Done,
}

/// Waiting frames go out when they reach this many bytes, whatever the time.
const BATCH_BYTES: usize = 16 * 1024;

/// The shortest time between two writes of a stream, after its first text.
pub const WRITE_INTERVAL: Duration = Duration::from_millis(1);

impl ChunkStream {
    pub fn new(events: ApiChatStream, id: &str, created: i64, model: &str, include_usage: bool, tr: Tr) -> Self {
        let head = format!(
            "data: {{\"id\":\"chatcmpl-{id}\",\"object\":\"chat.completion.chunk\",\"created\":{created},\"model\":{},\
             \"system_fingerprint\":null,\"choices\":[",
            Value::from(model)
        );
        Self {
            events,
            head: head.into_bytes(),
            include_usage,
            tr,
            state: State::Start,
            tool_calls: 0,
            steps: 0,
            usage: None,
            batch: Vec::new(),
            batch_has_event: false,
            last_write: None,
            write_timer: None,
            timer_armed: false,
        }
    }

    /// One chunk: the head, then `{"index":0,"delta":{` + what `delta` writes + the tail.
    fn delta(&self, out: &mut Vec<u8>, delta: impl FnOnce(&mut Vec<u8>)) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{");
        delta(out);
        out.extend_from_slice(DELTA_END);
    }

    /// A delta with one string field (`"content":"…"`), the text escaped straight into `out`.
    fn text_delta(&self, out: &mut Vec<u8>, field: &str, text: &str) {
        self.delta(out, |out| {
            out.push(b'"');
            out.extend_from_slice(field.as_bytes());
            out.extend_from_slice(b"\":");
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, text);
        });
    }

    /// A tool call as a delta: the caller's to answer, or (`step`) one Loquat runs itself,
    /// which leaves the finish reason alone.
    fn tool_delta(&mut self, out: &mut Vec<u8>, call: &ToolCall, step: bool) {
        let index = self.tool_calls + self.steps;
        if step {
            self.steps += 1;
        } else {
            self.tool_calls += 1;
        }
        let id = if call.id.is_empty() { format!("call_{index}") } else { call.id.clone() };
        let call = json!([{ "index": index, "id": id, "type": "function",
                            "function": { "name": call.name, "arguments": call.arguments } }]);
        self.delta(out, |out| {
            out.extend_from_slice(b"\"tool_calls\":");
            let _ = serde_json::to_writer(&mut *out, &call);
        });
    }

    fn finish_frame(&self, reason: FinishReason, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.head);
        out.extend_from_slice(b"{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"");
        out.extend_from_slice(finish_reason(reason, self.tool_calls > 0).as_bytes());
        out.extend_from_slice(b"\"}]}\n\n");
    }

    /// What closes a stream that ended well: the finish chunk (unless sent), usage, `[DONE]`.
    fn closing(&self, out: &mut Vec<u8>) {
        if self.state != State::Finished {
            self.finish_frame(FinishReason::Stop, out);
        }
        if self.include_usage {
            out.extend_from_slice(&self.head);
            out.extend_from_slice(b"],\"usage\":");
            let _ = serde_json::to_writer(&mut *out, &usage_json(self.usage.unwrap_or_default()));
            out.extend_from_slice(b"}\n\n");
        }
        out.extend_from_slice(DONE);
    }

    /// Writes the frame of one event (if it makes one).
    fn event(&mut self, event: ChatEvent, out: &mut Vec<u8>) {
        match event {
            ChatEvent::Text(text) if !text.is_empty() => self.text_delta(out, "content", &text),
            ChatEvent::Reasoning(text) if !text.is_empty() => self.text_delta(out, "reasoning_content", &text),
            ChatEvent::ToolCall(call) => self.tool_delta(out, &call, false),
            ChatEvent::Step(call) => self.tool_delta(out, &call, true),
            ChatEvent::Finish(reason) if self.state == State::Streaming => {
                self.state = State::Finished;
                self.finish_frame(reason, out);
            }
            ChatEvent::Usage(usage) => self.usage = Some(usage),
            _ => {}
        }
    }
}

impl Stream for ChunkStream {
    type Item = Result<Bytes, Infallible>;

    /// Writes the frames of the events that arrive into the batch, and hands the batch out when
    /// the upstream has nothing more for now and the last write is [`WRITE_INTERVAL`] ago.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            match this.state {
                State::Done if this.batch.is_empty() => return Poll::Ready(None),
                State::Done => return this.send(),
                State::Start => {
                    this.state = State::Streaming;
                    let mut out = std::mem::take(&mut this.batch);
                    out.reserve(this.head.len() + 256);
                    this.delta(&mut out, |out| out.extend_from_slice(b"\"role\":\"assistant\",\"content\":\"\""));
                    this.batch = out;
                }
                State::Streaming | State::Finished if this.batch.len() >= BATCH_BYTES => return this.send(),
                State::Streaming | State::Finished => {}
            }
            match Pin::new(&mut this.events).poll_next(cx) {
                Poll::Pending if this.batch.is_empty() => return Poll::Pending,
                Poll::Pending => return this.send_when_due(cx),
                Poll::Ready(None) => {
                    let mut out = std::mem::take(&mut this.batch);
                    this.closing(&mut out);
                    this.batch = out;
                    this.state = State::Done;
                }
                Poll::Ready(Some(Err(error))) => {
                    this.state = State::Done;
                    let body = ApiError::from_provider(&error, this.tr).body();
                    this.batch.extend_from_slice(format!("data: {body}\n\n").as_bytes());
                }
                Poll::Ready(Some(Ok(event))) => {
                    let mut out = std::mem::take(&mut this.batch);
                    if out.capacity() == 0 {
                        out.reserve(this.head.len() + 256);
                    }
                    this.event(event, &mut out);
                    this.batch = out;
                    this.batch_has_event = true;
                }
            }
        }
    }
}

impl ChunkStream {
    /// Sends the waiting frames if the last write is far enough back, or waits for the moment
    /// it will be (the timer wakes the stream; so does a new event, which joins the batch).
    fn send_when_due(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        let Some(due) = self.last_write.map(|last| last + WRITE_INTERVAL) else { return self.send() };
        if Instant::now() >= due {
            return self.send();
        }
        let timer = self.write_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        if !self.timer_armed {
            timer.as_mut().reset(due);
            self.timer_armed = true;
        }
        match timer.as_mut().poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(()) => self.send(),
        }
    }

    /// Hands out the waiting frames.
    fn send(&mut self) -> Poll<Option<Result<Bytes, Infallible>>> {
        if std::mem::take(&mut self.batch_has_event) {
            self.last_write = Some(Instant::now());
        }
        self.timer_armed = false;
        Poll::Ready(Some(Ok(Bytes::from(std::mem::take(&mut self.batch)))))
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
