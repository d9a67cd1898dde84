//! Generation as a server-side job. Sending a message starts a task that owns the upstream
//! stream, persists the growing answer in batches and broadcasts events to any number of
//! subscribers. A closed tab only drops its subscription; `stop` cancels the job; whatever
//! happens, the answer ends in the store with a final status.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::domain::{MessageStatus, TokenUsage};
use crate::id::{MessageId, TopicId, UserId};
use crate::llm::{ChatClient, ChatEvent, ChatRequest, ChatStream, Endpoint, ProviderError, ProviderErrorKind};
use crate::store::{FinishedAnswer, Store};
use crate::time::Timestamp;

/// Timing of generation jobs.
#[derive(Debug, Clone)]
pub struct GenerationSettings {
    /// How often the growing answer is written to the store.
    pub persist_interval: Duration,
    /// How long to wait for the upstream's first event.
    pub first_event_timeout: Duration,
    /// How long the upstream may stay silent between two events.
    pub idle_timeout: Duration,
    /// The longest a whole answer may take.
    pub total_timeout: Duration,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            persist_interval: Duration::from_millis(500),
            first_event_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// The end of a generation as subscribers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: MessageStatus,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
}

/// What subscribers receive, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum GenerationEvent {
    /// Text appended to the answer and/or its reasoning.
    Delta { content: String, reasoning: String },
    /// The job ended; the store holds the final message.
    Finished(Outcome),
}

/// The answer so far, taken atomically with a subscription so no event is missed or doubled.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub content: String,
    pub reasoning: String,
    pub finished: Option<Outcome>,
}

/// A live view of a running job.
#[derive(Debug)]
pub struct Subscription {
    pub snapshot: Snapshot,
    pub events: broadcast::Receiver<GenerationEvent>,
}

/// Everything a job needs to run.
pub(crate) struct JobSpec {
    pub user_id: UserId,
    pub topic_id: TopicId,
    pub message_id: MessageId,
    /// The model to ask, then fallbacks to try if it fails before answering anything.
    pub attempts: Vec<Attempt>,
}

/// One provider and model to ask, with the request made for it.
pub(crate) struct Attempt {
    pub provider_id: String,
    pub model_id: String,
    pub endpoint: Endpoint,
    pub request: ChatRequest,
}

const STOP_NONE: u8 = 0;
const STOP_USER: u8 = 1;
const STOP_SHUTDOWN: u8 = 2;

struct Job {
    user_id: UserId,
    topic_id: TopicId,
    state: Mutex<JobState>,
    sender: broadcast::Sender<GenerationEvent>,
    cancel: CancellationToken,
    stop_reason: AtomicU8,
}

#[derive(Default)]
struct JobState {
    content: String,
    reasoning: String,
    finished: Option<Outcome>,
}

impl Job {
    fn state(&self) -> MutexGuard<'_, JobState> {
        // A panic while holding this lock cannot leave the text half-written in a way that
        // matters more than losing the answer, so recover the guard.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The registry of running generation jobs in this process.
#[derive(Clone)]
pub struct Generations {
    jobs: Arc<Mutex<HashMap<MessageId, Arc<Job>>>>,
    tasks: TaskTracker,
    settings: Arc<GenerationSettings>,
}

impl Generations {
    pub fn new(settings: GenerationSettings) -> Self {
        Self { jobs: Arc::default(), tasks: TaskTracker::new(), settings: Arc::new(settings) }
    }

    fn jobs(&self) -> MutexGuard<'_, HashMap<MessageId, Arc<Job>>> {
        self.jobs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn job(&self, user: UserId, id: MessageId) -> Option<Arc<Job>> {
        self.jobs().get(&id).filter(|job| job.user_id == user).cloned()
    }

    /// Number of jobs running now.
    pub fn running(&self) -> usize {
        self.jobs().len()
    }

    pub fn is_running(&self, user: UserId, id: MessageId) -> bool {
        self.job(user, id).is_some()
    }

    /// Whether any job of the topic is running.
    pub fn topic_busy(&self, user: UserId, topic: TopicId) -> bool {
        self.jobs().values().any(|job| job.user_id == user && job.topic_id == topic)
    }

    /// Attaches to a running job: the answer so far plus every later event.
    pub fn subscribe(&self, user: UserId, id: MessageId) -> Option<Subscription> {
        let job = self.job(user, id)?;
        let state = job.state();
        let snapshot = Snapshot {
            content: state.content.clone(),
            reasoning: state.reasoning.clone(),
            finished: state.finished.clone(),
        };
        let events = job.sender.subscribe();
        drop(state);
        Some(Subscription { snapshot, events })
    }

    /// Asks a running job to stop; it keeps what arrived. Returns whether a job was running.
    pub fn stop(&self, user: UserId, id: MessageId) -> bool {
        let Some(job) = self.job(user, id) else { return false };
        let _ = job.stop_reason.compare_exchange(STOP_NONE, STOP_USER, Ordering::AcqRel, Ordering::Acquire);
        job.cancel.cancel();
        true
    }

    /// Stops every job, marking answers interrupted, and waits for them to be persisted.
    pub async fn shutdown(&self, grace: Duration) {
        self.tasks.close();
        let deadline = tokio::time::sleep(grace);
        tokio::pin!(deadline);
        tokio::select! {
            () = self.tasks.wait() => return,
            () = &mut deadline => {}
        }
        for job in self.jobs().values() {
            let _ = job.stop_reason.compare_exchange(STOP_NONE, STOP_SHUTDOWN, Ordering::AcqRel, Ordering::Acquire);
            job.cancel.cancel();
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
    }

    /// Starts a job. `on_finish` runs after the final state is stored (auto-titling).
    pub(crate) fn start<F, Fut>(&self, spec: JobSpec, store: Arc<dyn Store>, client: Arc<dyn ChatClient>, on_finish: F)
    where
        F: FnOnce(FinishedAnswer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (sender, _) = broadcast::channel(1024);
        let job = Arc::new(Job {
            user_id: spec.user_id,
            topic_id: spec.topic_id,
            state: Mutex::new(JobState::default()),
            sender,
            cancel: CancellationToken::new(),
            stop_reason: AtomicU8::new(STOP_NONE),
        });
        self.jobs().insert(spec.message_id, job.clone());
        let registry = self.clone();
        self.tasks.spawn(async move {
            let runner = Runner { job: &job, spec: &spec, store: store.as_ref(), settings: &registry.settings };
            let answer = runner.run(client.as_ref()).await;
            registry.jobs().remove(&spec.message_id);
            on_finish(answer).await;
        });
    }
}

struct Runner<'a> {
    job: &'a Job,
    spec: &'a JobSpec,
    store: &'a dyn Store,
    settings: &'a GenerationSettings,
}

impl Runner<'_> {
    async fn run(&self, client: &dyn ChatClient) -> FinishedAnswer {
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
        let mut dirty = false;
        loop {
            let wait = if ttft.is_none() { self.settings.first_event_timeout } else { self.settings.idle_timeout };
            let wait = wait.min(self.settings.total_timeout.saturating_sub(started.elapsed()));
            let next = tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    self.flush(&mut dirty).await;
                    return Err(Ended::Cancelled);
                }
                next = tokio::time::timeout(wait, stream.next()) => next,
            };
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
            if dirty && last_persist.elapsed() >= self.settings.persist_interval {
                self.flush(&mut dirty).await;
                last_persist = Instant::now();
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
            let opened = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Ended::Cancelled),
                opened = tokio::time::timeout(
                    self.settings.first_event_timeout,
                    client.stream_chat(&attempt.endpoint, &attempt.request),
                ) => opened.map_err(|_| timeout_error()).and_then(|result| result),
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
        state.content.push_str(&content);
        state.reasoning.push_str(&reasoning);
        // No subscribers is fine: the answer is still stored.
        let _ = self.job.sender.send(GenerationEvent::Delta { content, reasoning });
    }

    /// Writes the answer so far. A failing store is logged; the final write retries.
    async fn flush(&self, dirty: &mut bool) {
        if !*dirty {
            return;
        }
        let (content, reasoning) = {
            let state = self.job.state();
            (state.content.clone(), state.reasoning.clone())
        };
        let spec = self.spec;
        match self.store.save_progress(spec.user_id, spec.message_id, &content, &reasoning, Timestamp::now()).await {
            Ok(_) => *dirty = false,
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
