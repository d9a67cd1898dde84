//! Gemini stream parsing: each SSE `data:` (or each element of a whole JSON answer) is a
//! `GenerateContentResponse` whose parts become text, reasoning and whole tool calls; the
//! finish reason and the last usage are emitted when the body ends (Gemini sends no `[DONE]`).

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, ready};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use eventsource_stream::{Event, EventStream, EventStreamError};
use futures_util::{Stream, StreamExt};
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ProviderError, ProviderErrorKind, ToolCall};
use serde::Deserialize;
use serde_json::Value;

use super::error::{GoogleError, in_stream_error};
use crate::errors;

/// Turns `GenerateContentResponse`s into chat events. A clean end needs a finish reason.
#[derive(Debug)]
pub(crate) struct Parser {
    pending: VecDeque<ChatEvent>,
    /// The finish reason, once one arrived (emitted at the end, with the usage).
    finish: Option<String>,
    usage: Option<TokenUsage>,
    /// Tool calls emitted so far; also numbers the generated ids.
    tool_calls: usize,
    /// Whether the user got anything besides reasoning (text or a tool call).
    answered: bool,
    /// Makes this stream's tool call ids unlikely to repeat those of earlier turns, which some
    /// protocols refuse when the conversation moves to them.
    id_tag: String,
}

impl Parser {
    pub(crate) fn new(id_tag: impl Into<String>) -> Self {
        Self {
            pending: VecDeque::with_capacity(4),
            finish: None,
            usage: None,
            tool_calls: 0,
            answered: false,
            id_tag: id_tag.into(),
        }
    }

    /// A tag from the clock and a counter: Gemini does not name its calls.
    pub(crate) fn fresh_id_tag() -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.subsec_nanos()).unwrap_or(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}", nanos ^ count.rotate_left(20))
    }

    pub(crate) fn next_event(&mut self) -> Option<ChatEvent> {
        self.pending.pop_front()
    }

    pub(crate) fn finished(&self) -> bool {
        self.finish.is_some()
    }

    /// Handles one SSE data payload: a response, an array of them, or an error object.
    pub(crate) fn handle_data(&mut self, data: &str) -> Result<(), ProviderError> {
        let data = data.trim();
        // Gemini sends no `[DONE]`, but proxies modelled on OpenAI's API may add one.
        if data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let value: Value = serde_json::from_str(data).map_err(|error| {
            errors::protocol(format!("the provider sent an event that is not Gemini's format: {error}"))
        })?;
        self.handle_value(value)
    }

    pub(crate) fn handle_value(&mut self, value: Value) -> Result<(), ProviderError> {
        if let Value::Array(items) = value {
            return items.into_iter().try_for_each(|item| self.handle_value(item));
        }
        if value.get("error").is_some_and(|error| !error.is_null()) {
            return Err(GoogleError::parse(&value).into_error(None, None));
        }
        let response = Response::deserialize(value).map_err(|error| {
            errors::protocol(format!("the provider sent a response that is not Gemini's format: {error}"))
        })?;
        if let Some(usage) = response.usage_metadata {
            self.usage = Some(usage.into());
        }
        if let Some(reason) = response.prompt_feedback.and_then(|feedback| feedback.block_reason)
            && reason != "BLOCK_REASON_UNSPECIFIED"
        {
            let detail = format!("the provider's safety filters blocked the prompt ({reason})");
            return Err(ProviderError::new(ProviderErrorKind::ContentFiltered, detail));
        }
        let Some(candidate) = response.candidates.into_iter().flatten().next() else {
            return Ok(());
        };
        for part in candidate.content.and_then(|content| content.parts).into_iter().flatten() {
            self.handle_part(part);
        }
        let reason =
            candidate.finish_reason.filter(|reason| !reason.is_empty() && reason != "FINISH_REASON_UNSPECIFIED");
        if let Some(reason) = reason {
            if !self.answered && is_filtered(&reason) {
                let mut detail = format!("the provider's safety filters blocked the answer ({reason})");
                if let Some(message) = candidate.finish_message.filter(|message| !message.trim().is_empty()) {
                    detail = format!("{detail}: {message}");
                }
                return Err(ProviderError::new(ProviderErrorKind::ContentFiltered, detail));
            }
            self.finish = Some(reason);
        }
        Ok(())
    }

    fn handle_part(&mut self, part: Part) {
        if let Some(call) = part.function_call {
            // Gemini signs the first call of a step; it must come back on that call.
            if self.tool_calls == 0
                && let Some(signature) = part.thought_signature.filter(|signature| !signature.is_empty())
            {
                self.pending.push_back(ChatEvent::ReasoningSignature(signature));
            }
            let arguments =
                call.args.filter(|args| !args.is_null()).map_or_else(|| "{}".to_owned(), |args| args.to_string());
            let id = format!("call_{}_{}", self.id_tag, self.tool_calls);
            self.tool_calls += 1;
            self.answered = true;
            self.pending.push_back(ChatEvent::ToolCall(ToolCall { id, name: call.name, arguments }));
        }
        if let Some(text) = part.text.filter(|text| !text.is_empty()) {
            if part.thought == Some(true) {
                self.pending.push_back(ChatEvent::Reasoning(text));
            } else {
                self.answered = true;
                self.pending.push_back(ChatEvent::Text(text));
            }
        }
    }

    /// The body ended: the finish and the usage, or the error of a stream cut short.
    pub(crate) fn end(&mut self) -> Result<(), ProviderError> {
        let Some(reason) = self.finish.as_deref() else {
            return Err(errors::closed_early(None));
        };
        let reason = finish_reason(reason, self.tool_calls > 0);
        self.pending.push_back(ChatEvent::Finish(reason));
        if let Some(usage) = self.usage.take() {
            self.pending.push_back(ChatEvent::Usage(usage));
        }
        Ok(())
    }
}

/// Finish reasons that mean the provider withheld (the rest of) the answer.
fn is_filtered(reason: &str) -> bool {
    matches!(
        reason,
        "SAFETY"
            | "RECITATION"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION"
            | "MODEL_ARMOR"
    )
}

/// Gemini says `STOP` after function calls too.
pub(crate) fn finish_reason(reason: &str, called_tools: bool) -> FinishReason {
    match reason {
        "STOP" if called_tools => FinishReason::ToolCalls,
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        filtered if is_filtered(filtered) => FinishReason::ContentFilter,
        // MALFORMED_FUNCTION_CALL, UNEXPECTED_TOOL_CALL, LANGUAGE, OTHER…
        _ => FinishReason::Other,
    }
}

/// Turns an SSE byte stream into chat events; ends with the body.
pub(crate) struct ChunkStream<S> {
    /// `None` once the body is over; dropping it releases the HTTP response.
    events: Option<EventStream<S>>,
    parser: Parser,
    /// The error to report once the events before it are out; then the stream ends.
    failure: Option<ProviderError>,
}

impl<S> ChunkStream<S> {
    pub(crate) fn new(bytes: S, parser: Parser) -> Self {
        Self { events: Some(EventStream::new(bytes)), parser, failure: None }
    }

    fn handle(&mut self, event: &Event) -> Result<(), ProviderError> {
        if event.event == "error" {
            return Err(in_stream_error(&event.data));
        }
        self.parser.handle_data(&event.data)
    }
}

impl<S> Stream for ChunkStream<S>
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Unpin,
{
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.parser.next_event() {
                return Poll::Ready(Some(Ok(event)));
            }
            let Some(events) = this.events.as_mut() else {
                return Poll::Ready(this.failure.take().map(Err));
            };
            let outcome = match ready!(events.poll_next_unpin(cx)) {
                Some(Ok(event)) => match this.handle(&event) {
                    Ok(()) => continue,
                    Err(error) => Err(error),
                },
                // After a finish reason the answer is complete; a broken connection only costs
                // what came after it (usage).
                Some(Err(EventStreamError::Transport(error))) if !this.parser.finished() => Err(error),
                Some(Err(EventStreamError::Transport(_))) | None => this.parser.end(),
                Some(Err(EventStreamError::Utf8(error))) => {
                    Err(errors::protocol(format!("the provider sent invalid UTF-8: {error}")))
                }
                Some(Err(EventStreamError::Parser(error))) => {
                    Err(errors::protocol(format!("the provider sent invalid server-sent events: {error}")))
                }
            };
            this.events = None;
            this.failure = outcome.err();
        }
    }
}

/// Events of a whole JSON answer (a server that ignored `alt=sse`): a response or an array.
pub(crate) fn whole_answer_events(body: &[u8], mut parser: Parser) -> Result<Vec<ChatEvent>, ProviderError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the provider's answer is not JSON: {error}")))?;
    parser.handle_value(value)?;
    parser.end()?;
    Ok(std::iter::from_fn(|| parser.next_event()).collect())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    candidates: Option<Vec<Candidate>>,
    prompt_feedback: Option<PromptFeedback>,
    usage_metadata: Option<Usage>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
    finish_message: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Content {
    parts: Option<Vec<Part>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    thought: Option<bool>,
    thought_signature: Option<String>,
    function_call: Option<FunctionCall>,
}

#[derive(Debug, Deserialize)]
struct FunctionCall {
    name: String,
    args: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Usage {
    prompt_token_count: Option<u64>,
    candidates_token_count: Option<u64>,
    thoughts_token_count: Option<u64>,
    cached_content_token_count: Option<u64>,
}

/// Gemini counts thinking apart from the answer but bills it as output: completion tokens
/// include it here, as OpenAI's do.
impl From<Usage> for TokenUsage {
    fn from(usage: Usage) -> Self {
        let clamp = |count: Option<u64>| u32::try_from(count.unwrap_or(0)).unwrap_or(u32::MAX);
        let thoughts = clamp(usage.thoughts_token_count);
        TokenUsage {
            prompt_tokens: clamp(usage.prompt_token_count),
            completion_tokens: clamp(usage.candidates_token_count).saturating_add(thoughts),
            reasoning_tokens: thoughts,
            cache_read_tokens: clamp(usage.cached_content_token_count),
            cache_write_tokens: 0,
        }
    }
}
