//! Anthropic Messages stream parsing: the event handler for SSE events (`message_start`, content
//! blocks and their deltas, `message_delta`, `message_stop`, `ping`, `error`), tool calls whole
//! at their block's end; and a whole JSON `message` (a server that did not stream) as events.

use std::collections::{HashMap, VecDeque};

use crate::stream::sse::Event;
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ProviderError, ToolCall};
use serde::Deserialize;
use serde_json::Value;

use super::{error_info, in_stream_error, into_error};
use crate::errors;
use crate::stream::EventHandler;

/// The meaning of Messages SSE events. The stream ends after `message_stop`; a body that ends
/// before it, and before any `stop_reason`, is cut short. The finish and the usage (once, with
/// the final counts) are the last events.
#[derive(Default)]
pub(crate) struct MessageHandler {
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

impl EventHandler for MessageHandler {
    type Frame = Event;

    fn frame(&mut self, event: Event, out: &mut VecDeque<ChatEvent>) -> Result<bool, ProviderError> {
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
            WireEvent::ContentBlockStart { index, content_block } => self.start_block(index, content_block, out),
            WireEvent::ContentBlockDelta { index, delta } => self.delta(index, delta, out),
            WireEvent::ContentBlockStop { index } => self.stop_block(index, out),
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.stop_reason = Some(reason);
                }
                self.usage.merge(usage);
            }
            WireEvent::MessageStop => return Ok(true),
            WireEvent::Error { error } => return Err(into_error(error_info(&error), None)),
            WireEvent::Ping | WireEvent::Other => {}
        }
        Ok(false)
    }

    /// After a stop_reason the answer is complete; losing `message_stop` costs nothing.
    fn complete(&self) -> bool {
        self.stop_reason.is_some()
    }

    /// Queues the finish and the usage, once.
    fn end(&mut self, out: &mut VecDeque<ChatEvent>) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let reason = self.stop_reason.as_deref().map_or(FinishReason::Stop, finish_reason);
        out.push_back(ChatEvent::Finish(reason));
        if self.usage.seen {
            out.push_back(ChatEvent::Usage(self.usage.token_usage()));
        }
    }
}

impl MessageHandler {
    fn start_block(&mut self, index: usize, block: ContentBlock, out: &mut VecDeque<ChatEvent>) {
        match block {
            ContentBlock::Text { text } => push_text(ChatEvent::Text(text), out),
            ContentBlock::Thinking { thinking, signature } => {
                push_text(ChatEvent::Reasoning(thinking), out);
                self.blocks.insert(index, Block::Thinking { signature });
            }
            ContentBlock::ToolUse { id, name, input } => {
                self.blocks.insert(index, Block::ToolUse { id, name, json: String::new(), input });
            }
            // Redacted thinking, server tools and future block types carry nothing to show.
            ContentBlock::Other => {}
        }
    }

    fn delta(&mut self, index: usize, delta: Delta, out: &mut VecDeque<ChatEvent>) {
        match (delta, self.blocks.get_mut(&index)) {
            (Delta::Text { text }, _) => push_text(ChatEvent::Text(text), out),
            (Delta::Thinking { thinking }, _) => push_text(ChatEvent::Reasoning(thinking), out),
            (Delta::Signature { signature }, Some(Block::Thinking { signature: whole })) => whole.push_str(&signature),
            (Delta::InputJson { partial_json }, Some(Block::ToolUse { json, .. })) => json.push_str(&partial_json),
            _ => {}
        }
    }

    fn stop_block(&mut self, index: usize, out: &mut VecDeque<ChatEvent>) {
        match self.blocks.remove(&index) {
            Some(Block::Thinking { signature }) if !signature.is_empty() => {
                out.push_back(ChatEvent::ReasoningSignature(signature));
            }
            Some(Block::ToolUse { id, name, json, input }) => {
                let call = tool_call(index, id, name, json, &input);
                out.push_back(ChatEvent::ToolCall(call));
            }
            _ => {}
        }
    }
}

fn push_text(event: ChatEvent, out: &mut VecDeque<ChatEvent>) {
    if !matches!(&event, ChatEvent::Text(text) | ChatEvent::Reasoning(text) if text.is_empty()) {
        out.push_back(event);
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
    let mut handler = MessageHandler::default();
    let mut events = VecDeque::with_capacity(content.len() + 2);
    for (index, block) in content.iter().enumerate() {
        match serde_json::from_value::<ContentBlock>(block.clone()) {
            Ok(ContentBlock::ToolUse { id, name, input }) => {
                events.push_back(ChatEvent::ToolCall(tool_call(index, id, name, String::new(), &input)));
            }
            Ok(block) => {
                handler.start_block(index, block, &mut events);
                handler.stop_block(index, &mut events);
            }
            Err(error) => return Err(errors::protocol(format!("the provider sent an unknown content block: {error}"))),
        }
    }
    handler.stop_reason = value.get("stop_reason").and_then(Value::as_str).map(str::to_owned);
    handler.usage.merge(value.get("usage").and_then(|usage| WireUsage::deserialize(usage).ok()));
    handler.end(&mut events);
    Ok(events.into())
}
