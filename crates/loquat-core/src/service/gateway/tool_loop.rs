//! An assistant's server tools on the API: the caller sees one answer while Loquat runs the
//! model's tool calls in between. The upstream's text and reasoning pass through as they
//! arrive; tool calls, each round's finish and usage are held back; at the end of a response
//! with calls, the calls run (at once, under the toolbox's limits), the results go back to the
//! same model, and its next response continues the stream, up to the step limit. The caller
//! gets one usage (the rounds added up) and one finish; when it wants to see the steps, each
//! call is a `ChatEvent::Step` as it starts.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use futures_util::StreamExt;

use crate::domain::TokenUsage;
use crate::llm::{
    ChatClient, ChatEvent, ChatRequest, ChatStream, Endpoint, FinishReason, ProviderError, ProviderErrorKind, ToolCall,
};
use crate::tools::{CallingTurn, Toolbox};

struct Loop {
    client: Arc<dyn ChatClient>,
    endpoint: Endpoint,
    request: ChatRequest,
    toolbox: Toolbox,
    open_timeout: Duration,
    stream: ChatStream,
    rounds: usize,
    /// This response's text, reasoning, signature and calls (for the assistant turn).
    text: String,
    reasoning: String,
    signature: Option<String>,
    calls: Vec<ToolCall>,
    round_usage: Option<TokenUsage>,
    usage: Option<TokenUsage>,
    finish: Option<FinishReason>,
    /// Sources are not kept on the API: numbering only keeps the tools' text consistent.
    numbers: AtomicU32,
    pending: VecDeque<Result<ChatEvent, ProviderError>>,
    /// Calls that run once the steps announcing them are out.
    to_run: Option<Vec<ToolCall>>,
    show_steps: bool,
    done: bool,
}

/// `first`, the response to `request`, with the assistant's server tools run in between.
pub(super) fn with_tools(
    client: Arc<dyn ChatClient>,
    endpoint: Endpoint,
    request: ChatRequest,
    first: ChatStream,
    toolbox: Toolbox,
    open_timeout: Duration,
    show_steps: bool,
) -> ChatStream {
    let state = Loop {
        client,
        endpoint,
        request,
        toolbox,
        open_timeout,
        stream: first,
        rounds: 0,
        text: String::new(),
        reasoning: String::new(),
        signature: None,
        calls: Vec::new(),
        round_usage: None,
        usage: None,
        finish: None,
        numbers: AtomicU32::new(1),
        pending: VecDeque::new(),
        to_run: None,
        show_steps,
        done: false,
    };
    Box::pin(futures_util::stream::unfold(state, |mut state| async move {
        let item = state.next().await?;
        Some((item, state))
    }))
}

impl Loop {
    async fn next(&mut self) -> Option<Result<ChatEvent, ProviderError>> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if let Some(calls) = self.to_run.take() {
                self.run(calls).await;
                continue;
            }
            if self.done {
                return None;
            }
            match self.stream.next().await {
                Some(Ok(ChatEvent::Text(text))) => {
                    self.text.push_str(&text);
                    return Some(Ok(ChatEvent::Text(text)));
                }
                Some(Ok(ChatEvent::Reasoning(text))) => {
                    self.reasoning.push_str(&text);
                    return Some(Ok(ChatEvent::Reasoning(text)));
                }
                Some(Ok(ChatEvent::ReasoningSignature(signature))) => self.signature = Some(signature),
                Some(Ok(ChatEvent::ToolCall(call))) if self.calls.len() < crate::tools::MAX_CALLS_KEPT => {
                    self.calls.push(call);
                }
                Some(Ok(ChatEvent::ToolCall(_) | ChatEvent::Step(_))) => {}
                Some(Ok(ChatEvent::Usage(usage))) => self.round_usage = Some(usage),
                Some(Ok(ChatEvent::Finish(reason))) => self.finish = Some(reason),
                Some(Err(error)) => {
                    self.done = true;
                    return Some(Err(error));
                }
                None => self.end_of_response(),
            }
        }
    }

    /// A response ended: finish the answer, or announce its calls (they run next).
    fn end_of_response(&mut self) {
        if let Some(more) = self.round_usage.take() {
            self.usage = Some(self.usage.map_or(more, |before| before + more));
        }
        self.rounds += 1;
        if self.calls.is_empty() || self.rounds > self.toolbox.limits.max_steps {
            self.done = true;
            if let Some(usage) = self.usage {
                self.pending.push_back(Ok(ChatEvent::Usage(usage)));
            }
            let finish = match self.finish.take() {
                Some(FinishReason::ToolCalls) | None => FinishReason::Stop,
                Some(reason) => reason,
            };
            self.pending.push_back(Ok(ChatEvent::Finish(finish)));
            return;
        }
        let calls = std::mem::take(&mut self.calls);
        if self.show_steps {
            let steps = calls.iter().take(crate::tools::MAX_CALLS_PER_TURN).cloned();
            self.pending.extend(steps.map(|call| Ok(ChatEvent::Step(call))));
        }
        self.to_run = Some(calls);
    }

    /// Runs a response's calls and asks the model again with their results.
    async fn run(&mut self, calls: Vec<ToolCall>) {
        let results = futures_util::future::join_all(
            calls.iter().enumerate().map(|(index, call)| self.toolbox.run(index, call, &self.numbers)),
        )
        .await;
        let turn = CallingTurn {
            text: std::mem::take(&mut self.text),
            reasoning: std::mem::take(&mut self.reasoning),
            signature: self.signature.take(),
            calls,
        };
        self.toolbox.continue_request(&mut self.request, turn, &results, self.rounds);
        self.finish = None;
        let opening = self.client.stream_chat(&self.endpoint, &self.request);
        match tokio::time::timeout(self.open_timeout, opening).await {
            Ok(Ok(stream)) => self.stream = stream,
            Ok(Err(error)) => {
                self.done = true;
                self.pending.push_back(Err(error));
            }
            Err(_) => {
                self.done = true;
                let error = ProviderError::new(ProviderErrorKind::Timeout, "the provider did not answer in time");
                self.pending.push_back(Err(error));
            }
        }
    }
}
