//! OpenAI Chat Completions stream parsing: the event handler for SSE `chat.completion.chunk`s
//! (text, reasoning, tool calls assembled from their streamed pieces, usage, finish), and a
//! whole `chat.completion` (a server that ignored `stream: true`) as the same events.

use std::collections::{BTreeMap, VecDeque};

use crate::stream::sse::Event;
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ProviderError, ToolCall};
use serde::Deserialize;
use serde_json::Value;

use super::{error_info, in_stream_error};
use crate::errors;
use crate::stream::EventHandler;

/// The meaning of Chat Completions SSE events. The stream ends after `data: [DONE]`; a body
/// that ends before it and before any `finish_reason` is cut short.
#[derive(Debug, Default)]
pub(crate) struct ChunkHandler {
    /// Tool calls being streamed, by their index; emitted whole before the finish.
    tool_calls: BTreeMap<usize, ToolCall>,
    finished: bool,
}

impl EventHandler for ChunkHandler {
    type Frame = Event;

    fn frame(&mut self, event: Event, out: &mut VecDeque<ChatEvent>) -> Result<bool, ProviderError> {
        let data = event.data.trim();
        if event.event == "error" {
            return Err(in_stream_error(data));
        }
        if data.is_empty() {
            return Ok(false);
        }
        if data == "[DONE]" {
            return Ok(true);
        }
        let chunk: Chunk = serde_json::from_str(data).map_err(|error| {
            errors::protocol(format!("the provider sent a chunk that is not OpenAI's format: {error}"))
        })?;
        if let Some(error) = chunk.error {
            return Err(error_info(&error).into_error(None));
        }
        if let Some(choice) = chunk.choices.into_iter().flatten().next() {
            if let Some(delta) = choice.delta {
                let reasoning = delta.reasoning_content.filter(|text| !text.is_empty()).or(delta.reasoning);
                if let Some(text) = reasoning.filter(|text| !text.is_empty()) {
                    out.push_back(ChatEvent::Reasoning(text));
                }
                if let Some(text) = delta.content.filter(|text| !text.is_empty()) {
                    out.push_back(ChatEvent::Text(text));
                }
                for piece in delta.tool_calls.into_iter().flatten() {
                    self.add_tool_call_piece(piece);
                }
            }
            if let Some(reason) = choice.finish_reason.filter(|_| !self.finished) {
                self.flush_tool_calls(out);
                self.finished = true;
                out.push_back(ChatEvent::Finish(finish_reason(&reason)));
            }
        }
        if let Some(usage) = chunk.usage {
            out.push_back(ChatEvent::Usage(usage.into()));
        }
        Ok(false)
    }

    /// After a finish_reason a broken connection only costs the usage chunk.
    fn complete(&self) -> bool {
        self.finished
    }

    /// Tool calls of a stream that ended without a finish_reason (`[DONE]` alone).
    fn end(&mut self, out: &mut VecDeque<ChatEvent>) {
        self.flush_tool_calls(out);
    }
}

impl ChunkHandler {
    fn add_tool_call_piece(&mut self, piece: ToolCallDelta) {
        let index = piece.index.unwrap_or(self.tool_calls.len());
        let call = self.tool_calls.entry(index).or_insert_with(|| ToolCall {
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
        });
        if let Some(id) = piece.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        if let Some(function) = piece.function {
            if let Some(name) = function.name.filter(|name| !name.is_empty()) {
                call.name.push_str(&name);
            }
            if let Some(arguments) = function.arguments {
                call.arguments.push_str(&arguments);
            }
        }
    }

    fn flush_tool_calls(&mut self, out: &mut VecDeque<ChatEvent>) {
        for (index, mut call) in std::mem::take(&mut self.tool_calls) {
            if call.id.is_empty() {
                call.id = format!("call_{index}");
            }
            out.push_back(ChatEvent::ToolCall(call));
        }
    }
}

#[derive(Debug, Deserialize)]
struct Chunk {
    /// Empty on usage-only chunks; some servers send `null`.
    choices: Option<Vec<Choice>>,
    usage: Option<Usage>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Choice {
    delta: Option<Delta>,
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Delta {
    content: Option<String>,
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    tool_calls: Option<Vec<ToolCallDelta>>,
}

#[derive(Debug, Deserialize)]
struct ToolCallDelta {
    index: Option<usize>,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Debug, Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
    completion_tokens_details: Option<CompletionDetails>,
    prompt_tokens_details: Option<PromptDetails>,
}

#[derive(Debug, Deserialize)]
struct CompletionDetails {
    reasoning_tokens: Option<u64>,
}

#[derive(Debug, Deserialize)]
struct PromptDetails {
    cached_tokens: Option<u64>,
}

impl From<Usage> for TokenUsage {
    fn from(usage: Usage) -> Self {
        let clamp = |count: Option<u64>| u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX);
        TokenUsage {
            prompt_tokens: clamp(usage.prompt_tokens),
            completion_tokens: clamp(usage.completion_tokens),
            reasoning_tokens: clamp(usage.completion_tokens_details.and_then(|details| details.reasoning_tokens)),
            cache_read_tokens: clamp(usage.prompt_tokens_details.and_then(|details| details.cached_tokens)),
            cache_write_tokens: 0,
        }
    }
}

pub(crate) fn finish_reason(reason: &str) -> FinishReason {
    match reason {
        "stop" | "end_turn" | "eos" => FinishReason::Stop,
        "length" | "max_tokens" => FinishReason::Length,
        "content_filter" => FinishReason::ContentFilter,
        "tool_calls" | "function_call" => FinishReason::ToolCalls,
        _ => FinishReason::Other,
    }
}

/// Events of a whole `chat.completion` object (a server that did not stream).
pub(crate) fn completion_events(body: &[u8]) -> Result<Vec<ChatEvent>, ProviderError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the provider's answer is not JSON: {error}")))?;
    if let Some(error) = value.get("error").filter(|error| !error.is_null()) {
        return Err(error_info(error).into_error(None));
    }
    let choice = value
        .get("choices")
        .and_then(|choices| choices.get(0))
        .ok_or_else(|| errors::protocol("the provider's answer has no choices"))?;
    let message = &choice["message"];
    let text = |field: &str| message.get(field).and_then(Value::as_str).filter(|text| !text.is_empty());
    let mut events = Vec::with_capacity(4);
    if let Some(reasoning) = text("reasoning_content").or_else(|| text("reasoning")) {
        events.push(ChatEvent::Reasoning(reasoning.to_owned()));
    }
    if let Some(content) = text("content") {
        events.push(ChatEvent::Text(content.to_owned()));
    }
    for (index, call) in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate() {
        let function = &call["function"];
        events.push(ChatEvent::ToolCall(ToolCall {
            id: call["id"].as_str().map_or_else(|| format!("call_{index}"), str::to_owned),
            name: function["name"].as_str().unwrap_or_default().to_owned(),
            arguments: function["arguments"].as_str().unwrap_or("{}").to_owned(),
        }));
    }
    events.push(ChatEvent::Finish(finish_reason(choice["finish_reason"].as_str().unwrap_or("stop"))));
    if let Some(usage) = value.get("usage").and_then(|usage| Usage::deserialize(usage).ok()) {
        events.push(ChatEvent::Usage(usage.into()));
    }
    Ok(events)
}
