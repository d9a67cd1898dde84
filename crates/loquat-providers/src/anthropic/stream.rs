//! Anthropic Messages stream parsing: SSE events (`message_start`, content blocks and their
//! deltas, `message_delta`, `message_stop`, `ping`, `error`) become [`ChatEvent`]s, tool calls
//! whole at their block's end; and a whole JSON `message` (a server that did not stream) too.

use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use eventsource_stream::{Event, EventStream, EventStreamError};
use futures_util::{Stream, StreamExt};
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ProviderError, ToolCall};
use serde::Deserialize;
use serde_json::Value;

use super::{error_info, in_stream_error, into_error};
use crate::errors;

/// Turns an SSE byte stream into chat events. Ends after `message_stop`; a stream that ends
/// before it, and before any `stop_reason`, ends with an `Unavailable` error. The finish and
/// the usage (once, with the final counts) are the last events.
pub(crate) struct MessageStream<S> {
    /// `None` once the stream is over; dropping it releases the HTTP response.
    events: Option<EventStream<S>>,
    pending: VecDeque<ChatEvent>,
    /// Open thinking and tool-use blocks by their index.
    blocks: HashMap<usize, Block>,
    usage: Usage,
    stop_reason: Option<String>,
    /// Whether the finish (and usage) were queued.
    finished: bool,
}

enum Block {
    Thinking { signature: String },
    ToolUse { id: String, name: String, json: String, input: Value },
}

impl<S> MessageStream<S> {
    pub(crate) fn new(bytes: S) -> Self {
        Self {
            events: Some(EventStream::new(bytes)),
            pending: VecDeque::with_capacity(4),
            blocks: HashMap::new(),
            usage: Usage::default(),
            stop_reason: None,
            finished: false,
        }
    }

    /// Queues the events of one SSE event; returns whether the stream is over (`message_stop`).
    fn handle(&mut self, event: &Event) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if event.event == "error" {
            return Err(in_stream_error(data));
        }
        if data.is_empty() {
            return Ok(false);
        }
        let wire: WireEvent = serde_json::from_str(data).map_err(|error| {
            errors::protocol(format!("the provider sent an event that is not Anthropic's format: {error}"))
        })?;
        match wire {
            WireEvent::MessageStart { message } => self.usage.merge(message.usage),
            WireEvent::ContentBlockStart { index, content_block } => self.start_block(index, content_block),
            WireEvent::ContentBlockDelta { index, delta } => self.delta(index, delta),
            WireEvent::ContentBlockStop { index } => self.stop_block(index),
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop_reason = Some(reason);
                }
                self.usage.merge(usage);
            }
            WireEvent::MessageStop => {
                self.finish();
                return Ok(true);
            }
            WireEvent::Error { error } => return Err(into_error(error_info(&error), None)),
            WireEvent::Ping | WireEvent::Other => {}
        }
        Ok(false)
    }

    fn start_block(&mut self, index: usize, block: ContentBlock) {
        match block {
            ContentBlock::Text { text } => self.push_text(ChatEvent::Text(text)),
            ContentBlock::Thinking { thinking, signature } => {
                self.push_text(ChatEvent::Reasoning(thinking));
                self.blocks.insert(index, Block::Thinking { signature });
            }
            ContentBlock::ToolUse { id, name, input } => {
                self.blocks.insert(index, Block::ToolUse { id, name, json: String::new(), input });
            }
            // Redacted thinking, server tools and future block types carry nothing to show.
            ContentBlock::Other => {}
        }
    }

    fn delta(&mut self, index: usize, delta: Delta) {
        match (delta, self.blocks.get_mut(&index)) {
            (Delta::Text { text }, _) => self.push_text(ChatEvent::Text(text)),
            (Delta::Thinking { thinking }, _) => self.push_text(ChatEvent::Reasoning(thinking)),
            (Delta::Signature { signature }, Some(Block::Thinking { signature: whole })) => whole.push_str(&signature),
            (Delta::InputJson { partial_json }, Some(Block::ToolUse { json, .. })) => json.push_str(&partial_json),
            _ => {}
        }
    }

    fn stop_block(&mut self, index: usize) {
        match self.blocks.remove(&index) {
            Some(Block::Thinking { signature }) if !signature.is_empty() => {
                self.pending.push_back(ChatEvent::ReasoningSignature(signature));
            }
            Some(Block::ToolUse { id, name, json, input }) => {
                let call = tool_call(index, id, name, json, &input);
                self.pending.push_back(ChatEvent::ToolCall(call));
            }
            _ => {}
        }
    }

    fn push_text(&mut self, event: ChatEvent) {
        if !matches!(&event, ChatEvent::Text(text) | ChatEvent::Reasoning(text) if text.is_empty()) {
            self.pending.push_back(event);
        }
    }

    /// Queues the finish and the usage, once.
    fn finish(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let reason = self.stop_reason.as_deref().map_or(FinishReason::Stop, finish_reason);
        self.pending.push_back(ChatEvent::Finish(reason));
        if self.usage.seen {
            self.pending.push_back(ChatEvent::Usage(self.usage.token_usage()));
        }
    }
}

impl<S> Stream for MessageStream<S>
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Unpin,
{
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            let Some(events) = this.events.as_mut() else {
                return Poll::Ready(None);
            };
            // After a stop_reason the answer is complete; losing `message_stop` costs nothing.
            let complete = this.stop_reason.is_some();
            let failure = match ready!(events.poll_next_unpin(cx)) {
                Some(Ok(event)) => match this.handle(&event) {
                    Ok(false) => continue,
                    Ok(true) => None,
                    Err(error) => Some(error),
                },
                Some(Err(EventStreamError::Transport(error))) => Some(error).filter(|_| !complete),
                Some(Err(EventStreamError::Utf8(error))) => {
                    Some(errors::protocol(format!("the provider sent invalid UTF-8: {error}")))
                }
                Some(Err(EventStreamError::Parser(error))) => {
                    Some(errors::protocol(format!("the provider sent invalid server-sent events: {error}")))
                }
                None => Some(errors::closed_early(None)).filter(|_| !complete),
            };
            this.events = None;
            match failure {
                Some(error) => {
                    this.pending.clear();
                    return Poll::Ready(Some(Err(error)));
                }
                None => this.finish(),
            }
        }
    }
}

/// A finished tool-use block: the streamed JSON, else the input the block started with.
fn tool_call(index: usize, id: String, name: String, json: String, input: &Value) -> ToolCall {
    let arguments = if !json.trim().is_empty() {
        json
    } else if input.as_object().is_some_and(|input| !input.is_empty()) {
        input.to_string()
    } else {
        "{}".to_owned()
    };
    let id = if id.is_empty() { format!("toolu_{index}") } else { id };
    ToolCall { id, name, arguments }
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: StartedMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: ContentBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: Delta,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        delta: MessageDelta,
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error {
        error: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct StartedMessage {
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ContentBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: String,
    },
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: String },
    #[serde(rename = "signature_delta")]
    Signature { signature: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDelta {
    stop_reason: Option<String>,
}

/// Token counts as Anthropic reports them: `input_tokens` excludes the cached ones.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
    cache_creation_input_tokens: Option<u64>,
    cache_read_input_tokens: Option<u64>,
}

/// The latest count of each kind (`message_delta` counts are cumulative).
#[derive(Debug, Default)]
struct Usage {
    counts: WireUsage,
    seen: bool,
}

impl Usage {
    fn merge(&mut self, usage: Option<WireUsage>) {
        let Some(usage) = usage else { return };
        let counts = &mut self.counts;
        counts.input_tokens = usage.input_tokens.or(counts.input_tokens);
        counts.output_tokens = usage.output_tokens.or(counts.output_tokens);
        counts.cache_creation_input_tokens = usage.cache_creation_input_tokens.or(counts.cache_creation_input_tokens);
        counts.cache_read_input_tokens = usage.cache_read_input_tokens.or(counts.cache_read_input_tokens);
        self.seen = true;
    }

    fn token_usage(&self) -> TokenUsage {
        let clamp = |count: Option<u64>| u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX);
        let counts = &self.counts;
        let (cache_read, cache_write) =
            (clamp(counts.cache_read_input_tokens), clamp(counts.cache_creation_input_tokens));
        TokenUsage {
            prompt_tokens: clamp(counts.input_tokens).saturating_add(cache_read).saturating_add(cache_write),
            completion_tokens: clamp(counts.output_tokens),
            reasoning_tokens: 0,
            cache_read_tokens: cache_read,
            cache_write_tokens: cache_write,
        }
    }
}

pub(crate) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "end_turn" | "stop_sequence" => FinishReason::Stop,
        "max_tokens" | "model_context_window_exceeded" => FinishReason::Length,
        "tool_use" => FinishReason::ToolCalls,
        "refusal" => FinishReason::ContentFilter,
        _ => FinishReason::Other,
    }
}

/// Events of a whole `message` object (a server that ignored `stream: true`).
pub(crate) fn message_events(body: &[u8]) -> Result<Vec<ChatEvent>, ProviderError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the provider's answer is not JSON: {error}")))?;
    if value.get("type").and_then(Value::as_str) == Some("error") {
        return Err(into_error(error_info(&value), None));
    }
    let content = value
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| errors::protocol("the provider's answer has no content"))?;
    let mut stream = MessageStream::<futures_util::stream::Empty<Result<Bytes, ProviderError>>> {
        events: None,
        ..MessageStream::new(futures_util::stream::empty())
    };
    for (index, block) in content.iter().enumerate() {
        match serde_json::from_value::<ContentBlock>(block.clone()) {
            Ok(ContentBlock::ToolUse { id, name, input }) => {
                stream.pending.push_back(ChatEvent::ToolCall(tool_call(index, id, name, String::new(), &input)));
            }
            Ok(block) => {
                stream.start_block(index, block);
                stream.stop_block(index);
            }
            Err(error) => return Err(errors::protocol(format!("the provider sent an unknown content block: {error}"))),
        }
    }
    stream.stop_reason = value.get("stop_reason").and_then(Value::as_str).map(str::to_owned);
    stream.usage.merge(value.get("usage").and_then(|usage| WireUsage::deserialize(usage).ok()));
    stream.finish();
    Ok(stream.pending.into())
}
