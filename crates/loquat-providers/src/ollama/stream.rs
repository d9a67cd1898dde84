//! Ollama stream parsing: the event handler for `/api/chat` NDJSON lines (thinking, text, whole
//! tool calls, then usage and finish from the `done` line), and `/api/pull` lines as
//! [`PullProgress`]. An `{"error": ...}` line fails either stream, wherever it comes.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ProviderError, PullProgress, ToolCall};
use serde::Deserialize;
use serde_json::Value;

use super::in_stream_error;
use crate::errors;
use crate::stream::EventHandler;
use crate::stream::ndjson::Lines;

/// The meaning of `/api/chat` lines. The stream ends after the `"done": true` line, which
/// carries the usage and the finish; a body that ends before it is cut short.
#[derive(Debug, Default)]
pub(crate) struct ChatHandler {
    /// Tool calls seen so far, for ids of calls Ollama sends without one.
    tool_calls: usize,
    /// Whether any tool call was made (the finish is then `ToolCalls`).
    called: bool,
}

impl EventHandler for ChatHandler {
    type Frame = Bytes;

    fn frame(&mut self, line: Bytes, out: &mut VecDeque<ChatEvent>) -> Result<bool, ProviderError> {
        let line: ChatLine = serde_json::from_slice(&line).map_err(|error| {
            errors::protocol(format!("the provider sent a line that is not Ollama's chat format: {error}"))
        })?;
        if let Some(error) = line.error.filter(|error| !error.is_null()) {
            return Err(in_stream_error(&error));
        }
        if let Some(message) = line.message {
            if let Some(thinking) = message.thinking.filter(|text| !text.is_empty()) {
                out.push_back(ChatEvent::Reasoning(thinking));
            }
            if let Some(content) = message.content.filter(|text| !text.is_empty()) {
                out.push_back(ChatEvent::Text(content));
            }
            for call in message.tool_calls.into_iter().flatten() {
                let id = call.id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("call_{}", self.tool_calls));
                self.tool_calls += 1;
                self.called = true;
                let arguments = match call.function.arguments {
                    None | Some(Value::Null) => "{}".to_owned(),
                    Some(Value::String(text)) => text,
                    Some(value) => value.to_string(),
                };
                out.push_back(ChatEvent::ToolCall(ToolCall { id, name: call.function.name, arguments }));
            }
        }
        if !line.done {
            return Ok(false);
        }
        if line.prompt_eval_count.is_some() || line.eval_count.is_some() {
            let clamp = |count: Option<u64>| u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX);
            out.push_back(ChatEvent::Usage(TokenUsage {
                // Absent when the whole prompt came from Ollama's cache.
                prompt_tokens: clamp(line.prompt_eval_count),
                // Thinking tokens included: Ollama does not count them apart.
                completion_tokens: clamp(line.eval_count),
                ..TokenUsage::default()
            }));
        }
        out.push_back(ChatEvent::Finish(finish_reason(line.done_reason.as_deref(), self.called)));
        Ok(true)
    }

    /// The answer is complete only with the `done` line, which also ends the stream.
    fn complete(&self) -> bool {
        false
    }

    /// The `done` line queued everything.
    fn end(&mut self, _out: &mut VecDeque<ChatEvent>) {}
}

/// Ollama says `stop` after tool calls too; the finish then says `ToolCalls`, as elsewhere.
/// Servers before `done_reason` existed finished with nothing: a stop.
pub(crate) fn finish_reason(reason: Option<&str>, called: bool) -> FinishReason {
    match reason {
        None | Some("" | "stop") if called => FinishReason::ToolCalls,
        None | Some("" | "stop") => FinishReason::Stop,
        Some("length") => FinishReason::Length,
        Some(_) => FinishReason::Other,
    }
}

#[derive(Debug, Deserialize)]
struct ChatLine {
    message: Option<Message>,
    #[serde(default)]
    done: bool,
    done_reason: Option<String>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct Message {
    content: Option<String>,
    thinking: Option<String>,
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    /// Recent servers give calls an id; older ones do not.
    id: Option<String>,
    function: WireFunction,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: String,
    /// A JSON object (a string from some proxies).
    arguments: Option<Value>,
}

/// Turns an `/api/pull` byte stream into progress. Ends after the `success` status; a body that
/// ends before it ends with an `Unavailable` error.
pub(crate) struct PullLines<S> {
    lines: Option<Lines<S>>,
}

impl<S> PullLines<S> {
    pub(crate) fn new(lines: Lines<S>) -> Self {
        Self { lines: Some(lines) }
    }
}

#[derive(Debug, Deserialize)]
struct PullLine {
    #[serde(default)]
    status: String,
    total: Option<u64>,
    completed: Option<u64>,
    error: Option<Value>,
}

/// One `/api/pull` line as progress, or the error it reports.
pub(crate) fn pull_progress(line: &[u8]) -> Result<PullProgress, ProviderError> {
    let line: PullLine = serde_json::from_slice(line).map_err(|error| {
        errors::protocol(format!("the provider sent a line that is not Ollama's pull format: {error}"))
    })?;
    if let Some(error) = line.error.filter(|error| !error.is_null()) {
        return Err(in_stream_error(&error));
    }
    Ok(PullProgress { status: line.status, completed: line.completed, total: line.total })
}

impl<S> Stream for PullLines<S>
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Unpin,
{
    type Item = Result<PullProgress, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(lines) = self.lines.as_mut() else {
            return Poll::Ready(None);
        };
        let item = match ready!(lines.poll_next_unpin(cx)) {
            Some(Ok(line)) => pull_progress(&line),
            Some(Err(error)) => Err(error.into()),
            None => Err(errors::closed_early(None)),
        };
        if item.as_ref().map_or(true, |progress| progress.status == "success") {
            self.lines = None;
        }
        Poll::Ready(Some(item))
    }
}

#[cfg(test)]
#[path = "stream_tests.rs"]
mod tests;
