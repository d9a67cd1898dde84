//! One generation job's run: open the upstream (with the fallback model if the primary fails
//! before answering), append and broadcast each event, persist in batches with a heartbeat,
//! publish to the event bus for other nodes, and write the final state once.

use std::sync::atomic::Ordering;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;

use super::{BusEvent, EventBus, GenerationEvent, GenerationSettings, Job, JobSpec, Outcome, STOP_SHUTDOWN, STOP_USER};
use crate::domain::{MessageStatus, TokenUsage};
use crate::llm::{ChatClient, ChatEvent, ChatStream, ProviderError, ProviderErrorKind};
use crate::store::{FinishedAnswer, MessageStore};
use crate::time::Timestamp;

pub(super) struct Runner<'a> {
    pub job: &'a Job,
    pub spec: &'a JobSpec,
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
        let cancel = &self.job.cancel;
        let mut stream = self.open(client, answered_by).await?;
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
                Ok(None) => return Ok(()),
                Ok(Some(Err(error))) => return Err(error.into()),
                Ok(Some(Ok(event))) => event,
            };
            match event {
                ChatEvent::Text(text) => self.append(text, String::new(), ttft, started, &mut dirty),
                ChatEvent::Reasoning(text) => self.append(String::new(), text, ttft, started, &mut dirty),
                ChatEvent::Usage(reported) => *usage = Some(reported),
                // Chat answers do not offer tools yet; signatures only matter with tools.
                ChatEvent::Finish(_) | ChatEvent::ToolCall(_) | ChatEvent::ReasoningSignature(_) => {}
            }
        }
    }

    /// Opens the first attempt that answers; a failure before any output moves on to the
    /// next (the assistant's fallback model). `answered_by` ends as the index that answered.
    async fn open(&self, client: &dyn ChatClient, answered_by: &mut usize) -> Result<ChatStream, Ended> {
        let cancel = &self.job.cancel;
        let mut last_error = None;
        for (index, attempt) in self.spec.attempts.iter().enumerate() {
            *answered_by = index;
            let request = tokio::time::timeout(
                self.settings.first_event_timeout,
                client.stream_chat(&attempt.endpoint, &attempt.request),
            );
            tokio::pin!(request);
            let opened = loop {
                tokio::select! {
                    biased;
                    () = cancel.cancelled() => return Err(Ended::Cancelled),
                    opened = &mut request => break opened.map_err(|_| timeout_error()).and_then(|result| result),
                    // A slow provider (or retries) must not look like a dead node to the others.
                    () = tokio::time::sleep(self.settings.heartbeat) => self.save(&mut false).await,
                }
            };
            match opened {
                Ok(stream) => return Ok(stream),
                Err(error) => {
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
