//! One generation job's run: open the upstream (with the fallback model if the primary fails
//! before answering), append and broadcast each event, persist in batches with a heartbeat,
//! publish to the event bus for other nodes, and write the final state once. When the model
//! calls tools, run them (at once, each recorded as it starts and ends), give it the results
//! and read its next response, up to the toolbox's step limit.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use super::{BusEvent, EventBus, GenerationEvent, GenerationSettings, Job, JobSpec, Outcome, STOP_SHUTDOWN, STOP_USER};
use crate::domain::{MessageStatus, StepStatus, TokenUsage, ToolStep};
use crate::llm::{
    ChatClient, ChatEvent, ChatRequest, ChatStream, Endpoint, ProviderError, ProviderErrorKind, ToolCall,
};
use crate::store::{FinishedAnswer, MessageStore, TreeWrite};
use crate::time::Timestamp;
use crate::tools::{CallResult, CallingTurn, Toolbox};

pub(super) struct Runner<'a> {
    pub job: &'a Job,
    pub spec: &'a JobSpec,
    /// The number the answer's next source takes.
    pub next_source: std::sync::atomic::AtomicU32,
    pub store: &'a dyn MessageStore,
    pub settings: &'a GenerationSettings,
    pub bus: Option<&'a dyn EventBus>,
}

impl Runner<'_> {
    pub(super) async fn run(&self, client: &dyn ChatClient) -> FinishedAnswer {
        let started = Instant::now();
        let mut usage: Option<TokenUsage> = None;
        let mut ttft: Option<Duration> = None;
        let mut answered_by = 0;
        let result = self.stream(client, started, &mut usage, &mut ttft, &mut answered_by).await;
        let (status, error) = match result {
            Ok(()) => (MessageStatus::Complete, None),
            Err(Ended::Cancelled) => match self.job.stop_reason.load(Ordering::Acquire) {
                STOP_SHUTDOWN => (MessageStatus::Interrupted, None),
                _ => (MessageStatus::Stopped, None),
            },
            Err(Ended::Failed(error)) => {
                let provider = self.spec.attempts.get(answered_by).map(|a| a.provider_id.as_str()).unwrap_or_default();
                tracing::warn!(message_id = %self.spec.message_id, provider, %error, "generation failed");
                (MessageStatus::Error, Some(error))
            }
        };
        let (content, reasoning) = {
            let state = self.job.state();
            (state.content.clone(), state.reasoning.clone())
        };
        let answer = FinishedAnswer {
            status,
            content,
            reasoning,
            error_kind: error.as_ref().map(|e| e.kind.code().to_owned()),
            error_message: error.as_ref().map(|e| e.detail.chars().take(500).collect()),
            provider: self.spec.attempts.get(answered_by).map(|a| a.provider_id.clone()),
            model: self.spec.attempts.get(answered_by).map(|a| a.model_id.clone()),
            usage,
            ttft_ms: ttft.map(|t| t.as_millis() as i64),
            duration_ms: Some(started.elapsed().as_millis() as i64),
            updated_at: Timestamp::now(),
        };
        self.persist_final(&answer).await;
        let outcome =
            Outcome { status, error_kind: answer.error_kind.clone(), error_message: answer.error_message.clone() };
        let mut state = self.job.state();
        state.finished = Some(outcome.clone());
        let _ = self.job.sender.send(GenerationEvent::Finished(outcome));
        drop(state);
        if let Some(bus) = self.bus {
            bus.publish(self.spec.message_id, BusEvent::Finished);
        }
        answer
    }

    async fn stream(
        &self,
        client: &dyn ChatClient,
        started: Instant,
        usage: &mut Option<TokenUsage>,
        ttft: &mut Option<Duration>,
        answered_by: &mut usize,
    ) -> Result<(), Ended> {
        let mut stream = self.open(client, answered_by).await?;
        // After a round of tool calls, the conversation so far, asked again of the same model.
        let mut conversation: Option<ChatRequest> = None;
        let mut rounds = 0;
        loop {
            let before = *usage;
            let round = self.consume(&mut stream, started, (before, usage), ttft).await?;
            let Some(toolbox) = self.spec.toolbox.as_ref().filter(|_| !round.calls.is_empty()) else {
                return Ok(());
            };
            rounds += 1;
            if rounds > toolbox.limits.max_steps {
                // Told to answer, it called tools again: what it wrote is the answer.
                return Ok(());
            }
            let attempt = &self.spec.attempts[*answered_by];
            let mut request = conversation.take().unwrap_or_else(|| attempt.request.clone());
            // What it wrote before calling is kept while the tools run.
            self.save(&mut true).await;
            let results = self.run_tools(toolbox, &round.calls).await?;
            let turn = CallingTurn {
                text: round.text,
                reasoning: round.reasoning,
                signature: round.signature,
                calls: round.calls,
            };
            toolbox.continue_request(&mut request, turn, &results, rounds);
            self.job.state().round_break = true;
            stream = self.connect(client, &attempt.endpoint, &request).await?;
            conversation = Some(request);
        }
    }

    /// Reads one response of the model to its end: its text and reasoning go to the answer as
    /// they come; its tool calls are returned.
    async fn consume(
        &self,
        stream: &mut ChatStream,
        started: Instant,
        (before, usage): (Option<TokenUsage>, &mut Option<TokenUsage>),
        ttft: &mut Option<Duration>,
    ) -> Result<Round, Ended> {
        let cancel = &self.job.cancel;
        let mut round = Round::default();
        let mut last_persist = Instant::now();
        let mut last_event = Instant::now();
        let mut dirty = false;
        loop {
            let wait = if ttft.is_none() { self.settings.first_event_timeout } else { self.settings.idle_timeout };
            // Measured from the last event (a heartbeat must not restart the clock).
            let deadline = (last_event + wait).min(started + self.settings.total_timeout);
            // New text is saved a persist interval after the last write, even when the upstream
            // goes quiet after it; with nothing new, a heartbeat shows other nodes the job lives.
            let save_every = if dirty { self.settings.persist_interval } else { self.settings.heartbeat };
            let save_due = last_persist + save_every.min(self.settings.heartbeat);
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    self.flush(&mut dirty).await;
                    return Err(Ended::Cancelled);
                }
                () = tokio::time::sleep_until(save_due) => {
                    self.save(&mut dirty).await;
                    last_persist = Instant::now();
                    continue;
                }
                next = tokio::time::timeout_at(deadline, stream.next()) => next,
            };
            last_event = Instant::now();
            let event = match next {
                Err(_) => return Err(timeout_error().into()),
                // Saved by the final write, or before the round's tool calls run.
                Ok(None) => return Ok(round),
                Ok(Some(Err(error))) => return Err(error.into()),
                Ok(Some(Ok(event))) => event,
            };
            match event {
                ChatEvent::Text(text) => {
                    round.text.push_str(&text);
                    self.append(text, String::new(), ttft, started, &mut dirty);
                }
                ChatEvent::Reasoning(text) => {
                    round.reasoning.push_str(&text);
                    self.append(String::new(), text, ttft, started, &mut dirty);
                }
                ChatEvent::ReasoningSignature(signature) => round.signature = Some(signature),
                ChatEvent::ToolCall(call) => {
                    ttft.get_or_insert_with(|| started.elapsed());
                    if round.calls.len() < crate::tools::MAX_CALLS_KEPT {
                        round.calls.push(call);
                    }
                }
                // A response reports its usage (the last report counts); rounds add up.
                ChatEvent::Usage(reported) => *usage = Some(before.map_or(reported, |before| before + reported)),
                // Steps are the gateway's own; a provider never sends them.
                ChatEvent::Finish(_) | ChatEvent::Step(_) => {}
            }
        }
    }

    /// Runs a round's tool calls at once, each recorded as it starts and ends; stopping the
    /// answer stops them.
    async fn run_tools(&self, toolbox: &Toolbox, calls: &[ToolCall]) -> Result<Vec<CallResult>, Ended> {
        let first = {
            let mut state = self.job.state();
            let (first, offset) = (state.steps.len(), state.content.len() as u32);
            for (index, call) in calls.iter().enumerate() {
                state.steps.push(ToolStep {
                    message_id: self.spec.message_id,
                    seq: (first + index) as u32,
                    offset,
                    call_id: call.id.clone(),
                    tool: call.name.clone(),
                    arguments: call.arguments.clone(),
                    result: String::new(),
                    status: StepStatus::Running,
                    started_at: Timestamp::now(),
                    duration_ms: None,
                });
            }
            first
        };
        self.publish_steps(first..first + calls.len()).await;
        let numbers = &self.next_source;
        let runs = calls.iter().enumerate().map(|(index, call)| async move {
            let started = Instant::now();
            let result = toolbox.run(index, call, numbers).await;
            {
                let mut state = self.job.state();
                let step = &mut state.steps[first + index];
                step.result = result.text.clone();
                step.status = if result.ok { StepStatus::Done } else { StepStatus::Failed };
                step.duration_ms = Some(started.elapsed().as_millis() as i64);
            }
            self.publish_steps(first + index..first + index + 1).await;
            result
        });
        let all = futures_util::future::join_all(runs);
        tokio::pin!(all);
        loop {
            tokio::select! {
                biased;
                () = self.job.cancel.cancelled() => {
                    let running: Vec<usize> = {
                        let mut state = self.job.state();
                        let steps = state.steps.iter_mut().enumerate().skip(first);
                        steps.filter(|(_, step)| step.status == StepStatus::Running).map(|(index, step)| {
                            step.status = StepStatus::Cancelled;
                            index
                        }).collect()
                    };
                    for index in running {
                        self.publish_steps(index..index + 1).await;
                    }
                    return Err(Ended::Cancelled);
                }
                results = &mut all => {
                    self.store_sources(&results).await;
                    return Ok(results);
                }
                // Tools may take a while: other nodes must still see the job alive.
                () = tokio::time::sleep(self.settings.heartbeat) => self.save(&mut false).await,
            }
        }
    }

    /// Stores the sources the calls found, for the answer to cite.
    async fn store_sources(&self, results: &[CallResult]) {
        let writes: Vec<TreeWrite<'_>> = results
            .iter()
            .flat_map(|result| &result.sources)
            .map(|source| TreeWrite::InsertSource { message: self.spec.message_id, source })
            .collect();
        if writes.is_empty() {
            return;
        }
        if let Err(error) = self.store.write_tree(self.spec.user_id, &writes).await {
            tracing::warn!(message_id = %self.spec.message_id, %error, "could not store the sources tools found");
        }
    }

    /// Stores the steps in `range` and tells the subscribers (here and on other nodes).
    async fn publish_steps(&self, range: std::ops::Range<usize>) {
        let (changed, all) = {
            let state = self.job.state();
            (state.steps[range].to_vec(), state.steps.clone())
        };
        for step in &changed {
            if let Err(error) = self.store.save_tool_step(self.spec.user_id, step).await {
                tracing::warn!(message_id = %self.spec.message_id, %error, "could not store a tool call");
            }
        }
        if let Some(bus) = self.bus {
            bus.publish(self.spec.message_id, BusEvent::Steps { steps: all.clone() });
        }
        let _ = self.job.sender.send(GenerationEvent::Steps(all));
    }

    /// Opens the first attempt that answers; a failure before any output moves on to the
    /// next (the assistant's fallback model). `answered_by` ends as the index that answered.
    async fn open(&self, client: &dyn ChatClient, answered_by: &mut usize) -> Result<ChatStream, Ended> {
        let mut last_error = None;
        for (index, attempt) in self.spec.attempts.iter().enumerate() {
            *answered_by = index;
            match self.connect(client, &attempt.endpoint, &attempt.request).await {
                Ok(stream) => return Ok(stream),
                Err(Ended::Cancelled) => return Err(Ended::Cancelled),
                Err(Ended::Failed(error)) => {
                    if index + 1 < self.spec.attempts.len() {
                        tracing::warn!(
                            provider = %attempt.provider_id, model = %attempt.model_id, %error,
                            "falling back to the next model"
                        );
                    }
                    last_error = Some(error);
                }
            }
        }
        let error = last_error.unwrap_or_else(|| ProviderError::new(ProviderErrorKind::BadRequest, "no model to ask"));
        Err(Ended::Failed(error))
    }

    /// Sends `request` and waits for the response to start.
    async fn connect(
        &self,
        client: &dyn ChatClient,
        endpoint: &Endpoint,
        request: &ChatRequest,
    ) -> Result<ChatStream, Ended> {
        let cancel = &self.job.cancel;
        let opening = tokio::time::timeout(self.settings.first_event_timeout, client.stream_chat(endpoint, request));
        tokio::pin!(opening);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Ended::Cancelled),
                opened = &mut opening => {
                    return opened.map_err(|_| timeout_error()).and_then(|result| result).map_err(Ended::Failed);
                }
                // A slow provider (or retries) must not look like a dead node to the others.
                () = tokio::time::sleep(self.settings.heartbeat) => self.save(&mut false).await,
            }
        }
    }

    fn append(
        &self,
        content: String,
        reasoning: String,
        ttft: &mut Option<Duration>,
        started: Instant,
        dirty: &mut bool,
    ) {
        if content.is_empty() && reasoning.is_empty() {
            return;
        }
        ttft.get_or_insert_with(|| started.elapsed());
        *dirty = true;
        let mut state = self.job.state();
        // The text of a round after tool calls starts a new paragraph.
        let content = if state.round_break && !content.is_empty() {
            state.round_break = false;
            if state.content.is_empty() || state.content.ends_with("\n\n") { content } else { format!("\n\n{content}") }
        } else {
            content
        };
        if let Some(bus) = self.bus {
            let event = BusEvent::Delta {
                content_at: state.content.len(),
                reasoning_at: state.reasoning.len(),
                content: content.clone(),
                reasoning: reasoning.clone(),
            };
            bus.publish(self.spec.message_id, event);
        }
        state.content.push_str(&content);
        state.reasoning.push_str(&reasoning);
        // No subscribers is fine: the answer is still stored.
        let _ = self.job.sender.send(GenerationEvent::Delta { content, reasoning });
    }

    /// Writes the answer so far if anything new arrived.
    async fn flush(&self, dirty: &mut bool) {
        if *dirty {
            self.save(dirty).await;
        }
    }

    /// Writes the answer so far (also as a heartbeat). A failing store is logged; the final
    /// write retries.
    async fn save(&self, dirty: &mut bool) {
        let (content, reasoning) = {
            let state = self.job.state();
            (state.content.clone(), state.reasoning.clone())
        };
        let spec = self.spec;
        match self.store.save_progress(spec.user_id, spec.message_id, &content, &reasoning, Timestamp::now()).await {
            Ok(true) => *dirty = false,
            Ok(false) => {
                // Stopped on another node, swept as stale, or deleted: nobody wants the rest.
                tracing::info!(message_id = %spec.message_id, "the answer was stopped elsewhere");
                self.job.stop(STOP_USER);
            }
            Err(error) => tracing::warn!(message_id = %spec.message_id, %error, "could not save the answer so far"),
        }
    }

    /// The final write must land: retry with backoff for about half a minute before giving up
    /// (at which point start-up recovery will mark the partial answer interrupted).
    async fn persist_final(&self, answer: &FinishedAnswer) {
        let spec = self.spec;
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=8 {
            match self.store.finish_message(spec.user_id, spec.message_id, answer).await {
                Ok(_) => return,
                Err(error) => {
                    tracing::error!(message_id = %spec.message_id, attempt, %error, "could not store the finished answer");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// What one response of the model brought besides the text it streamed.
#[derive(Default)]
struct Round {
    text: String,
    reasoning: String,
    signature: Option<String>,
    calls: Vec<ToolCall>,
}

enum Ended {
    Cancelled,
    Failed(ProviderError),
}

impl From<ProviderError> for Ended {
    fn from(error: ProviderError) -> Self {
        Ended::Failed(error)
    }
}

fn timeout_error() -> ProviderError {
    ProviderError::new(ProviderErrorKind::Timeout, "the provider stopped responding")
}
