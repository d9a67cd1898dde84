//! Gemini stream parsing: the event handler for SSE `data:` payloads (and whole JSON answers),
//! `GenerateContentResponse`s whose parts become text, reasoning and whole tool calls; the
//! finish reason and the last usage are emitted when the body ends (Gemini sends no `[DONE]`).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::stream::sse::Event;
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ProviderError, ProviderErrorKind, ToolCall};
use serde::Deserialize;
use serde_json::Value;

use super::error::{GoogleError, in_stream_error};
use crate::errors;
use crate::stream::EventHandler;

/// The meaning of `GenerateContentResponse`s, streamed as SSE or in a whole answer. The body
/// ends the stream (Gemini sends no `[DONE]`); a clean end needs a finish reason.
#[derive(Debug)]
pub(crate) struct ResponseHandler {
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

impl EventHandler for ResponseHandler {
    type Frame = Event;

    fn frame(&mut self, event: Event, out: &mut VecDeque<ChatEvent>) -> Result<bool, ProviderError> {
        if event.event == "error" {
            return Err(in_stream_error(&event.data));
        }
        let data = event.data.trim();
        // Gemini sends no `[DONE]`, but proxies modelled on OpenAI's API may add one.
        if data.is_empty() || data == "[DONE]" {
            return Ok(false);
        }
        let payload = Payload::parse(data.as_bytes()).map_err(|error| {
            errors::protocol(format!("the provider sent an event that is not Gemini's format: {error}"))
        })?;
        self.handle_payload(payload, out)?;
        Ok(false)
    }

    /// After a finish reason a broken connection only costs what came after it (usage).
    fn complete(&self) -> bool {
        self.finish.is_some()
    }

    fn end(&mut self, out: &mut VecDeque<ChatEvent>) {
        if let Some(reason) = self.finish.as_deref() {
            out.push_back(ChatEvent::Finish(finish_reason(reason, self.tool_calls > 0)));
        }
        if let Some(usage) = self.usage.take() {
            out.push_back(ChatEvent::Usage(usage));
        }
    }
}

impl ResponseHandler {
    pub(crate) fn new(id_tag: impl Into<String>) -> Self {
        Self { finish: None, usage: None, tool_calls: 0, answered: false, id_tag: id_tag.into() }
    }

    /// A tag from the clock and a counter: Gemini does not name its calls.
    pub(crate) fn fresh_id_tag() -> String {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|since| since.subsec_nanos()).unwrap_or(0);
        let count = COUNTER.fetch_add(1, Ordering::Relaxed);
        format!("{:08x}", nanos ^ count.rotate_left(20))
    }

    fn handle_payload(&mut self, payload: Payload, out: &mut VecDeque<ChatEvent>) -> Result<(), ProviderError> {
        match payload {
            Payload::One(response) => self.handle_response(response, out),
            Payload::Many(responses) => {
                responses.into_iter().try_for_each(|response| self.handle_response(response, out))
            }
        }
    }

    fn handle_response(&mut self, response: Response, out: &mut VecDeque<ChatEvent>) -> Result<(), ProviderError> {
        if let Some(error) = response.error {
            return Err(GoogleError::from_error(&error).into_error(None, None));
        }
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
            self.handle_part(part, out);
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

    fn handle_part(&mut self, part: Part, out: &mut VecDeque<ChatEvent>) {
        if let Some(call) = part.function_call {
            // Gemini signs the first call of a step; it must come back on that call.
            if self.tool_calls == 0
                && let Some(signature) = part.thought_signature.filter(|signature| !signature.is_empty())
            {
                out.push_back(ChatEvent::ReasoningSignature(signature));
            }
            let arguments =
                call.args.filter(|args| !args.is_null()).map_or_else(|| "{}".to_owned(), |args| args.to_string());
            let id = format!("call_{}_{}", self.id_tag, self.tool_calls);
            self.tool_calls += 1;
            self.answered = true;
            out.push_back(ChatEvent::ToolCall(ToolCall { id, name: call.name, arguments }));
        }
        if let Some(text) = part.text.filter(|text| !text.is_empty()) {
            if part.thought == Some(true) {
                out.push_back(ChatEvent::Reasoning(text));
            } else {
                self.answered = true;
                out.push_back(ChatEvent::Text(text));
            }
        }
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

/// Events of a whole JSON answer (a server that ignored `alt=sse`): a response or an array.
pub(crate) fn whole_answer_events(body: &[u8], mut handler: ResponseHandler) -> Result<Vec<ChatEvent>, ProviderError> {
    let payload = Payload::parse(body)
        .map_err(|error| errors::protocol(format!("the provider's answer is not Gemini's format: {error}")))?;
    let mut events = VecDeque::with_capacity(4);
    handler.handle_payload(payload, &mut events)?;
    if !handler.complete() {
        return Err(errors::closed_early(None));
    }
    handler.end(&mut events);
    Ok(events.into())
}

/// One JSON payload, parsed once: a response or (from proxies, in whole answers) an array.
enum Payload {
    One(Response),
    Many(Vec<Response>),
}

impl Payload {
    fn parse(json: &[u8]) -> serde_json::Result<Self> {
        if json.iter().find(|byte| !byte.is_ascii_whitespace()) == Some(&b'[') {
            serde_json::from_slice(json).map(Payload::Many)
        } else {
            serde_json::from_slice(json).map(Payload::One)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    /// An error sent as stream data (`null` in some proxies' successful responses).
    error: Option<Value>,
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
