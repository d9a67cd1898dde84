//! Generation as a server-side job. Sending a message starts a task that owns the upstream
//! stream, persists the growing answer in batches and broadcasts events to any number of
//! subscribers — on this node directly, on other replicas through the event bus. A closed tab
//! only drops its subscription; `stop` cancels the job (wherever it runs); whatever happens,
//! the answer ends in the store with a final status.

pub mod metrics;
mod remote;
mod runner;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::bus::{BusEvent, EventBus};
use crate::domain::{Message, MessageStatus, ToolStep};
use crate::id::{MessageId, TopicId, UserId};
use crate::llm::{ChatClient, ChatRequest, Endpoint};
use crate::store::{FinishedAnswer, MessageStore, StoreResult};
use crate::time::Timestamp;
use crate::tools::Toolbox;

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
    /// This process's name in the store (`messages.generating_by`); stable across restarts.
    pub node_id: String,
    /// How often a running job writes to the store even when nothing new arrived, so other
    /// nodes can tell it is alive.
    pub heartbeat: Duration,
    /// A generating answer whose node has been silent this long is interrupted by the others.
    pub stale_after: Duration,
}

impl Default for GenerationSettings {
    fn default() -> Self {
        Self {
            persist_interval: Duration::from_millis(500),
            first_event_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            total_timeout: Duration::from_secs(30 * 60),
            node_id: "local".to_owned(),
            heartbeat: Duration::from_secs(5),
            stale_after: Duration::from_secs(60),
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
    /// The answer so far replaces what the subscriber has (after a gap on the event bus).
    Replace { content: String, reasoning: String },
    /// The answer's tool calls so far (all of them: a call started or ended).
    Steps(Vec<ToolStep>),
}

/// The answer so far, taken atomically with a subscription so no event is missed or doubled.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub content: String,
    pub reasoning: String,
    pub steps: Vec<ToolStep>,
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
    /// The tools the model may call (their specs are in each attempt's request).
    pub toolbox: Option<Toolbox>,
    /// The number the answer's next source takes (after those it was given with the question).
    pub next_source: u32,
    /// The text the answer starts with (a continued answer's earlier part; usually empty).
    pub prefix: String,
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
    steps: Vec<ToolStep>,
    /// Tool calls ended the last response: the next text starts a new paragraph.
    round_break: bool,
    finished: Option<Outcome>,
}

impl Job {
    fn state(&self) -> MutexGuard<'_, JobState> {
        // A panic while holding this lock cannot leave the text half-written in a way that
        // matters more than losing the answer, so recover the guard.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Cancels the job; the first reason given is the one recorded.
    fn stop(&self, reason: u8) {
        let _ = self.stop_reason.compare_exchange(STOP_NONE, reason, Ordering::AcqRel, Ordering::Acquire);
        self.cancel.cancel();
    }
}

/// The registry of running generation jobs in this process.
#[derive(Clone)]
pub struct Generations {
    jobs: Arc<Mutex<HashMap<MessageId, Arc<Job>>>>,
    tasks: TaskTracker,
    settings: Arc<GenerationSettings>,
    bus: Option<Arc<dyn EventBus>>,
}

impl Generations {
    pub fn new(settings: GenerationSettings, bus: Option<Arc<dyn EventBus>>) -> Self {
        Self { jobs: Arc::default(), tasks: TaskTracker::new(), settings: Arc::new(settings), bus }
    }

    pub fn settings(&self) -> &GenerationSettings {
        &self.settings
    }

    /// Cancels this node's jobs when another node asks (a stop pressed on a replica that does
    /// not run the job). Runs until the bus closes.
    pub fn listen_for_remote_stops(&self) {
        let Some(bus) = self.bus.clone() else { return };
        let registry = self.clone();
        tokio::spawn(async move {
            let mut requests = match bus.stop_requests().await {
                Ok(requests) => requests,
                Err(error) => {
                    tracing::error!(%error, "cannot receive stop requests from other nodes");
                    return;
                }
            };
            while let Some(id) = requests.next().await {
                let job = registry.jobs().get(&id).cloned();
                if let Some(job) = job {
                    job.stop(STOP_USER);
                }
            }
        });
    }

    /// Follows an answer generating on another node: through the bus when there is one, else
    /// by reading the store as often as the running node writes it.
    pub(crate) async fn subscribe_remote(
        &self,
        store: Arc<dyn MessageStore>,
        message: Message,
    ) -> Option<Subscription> {
        let check_every = match &self.bus {
            Some(_) => self.settings.heartbeat,
            None => self.settings.persist_interval,
        };
        remote::follow(self.bus.clone(), store, message, check_every).await
    }

    /// Asks the node running the answer (maybe this one) to stop it. Another node hears it on
    /// the bus and stores what it has; if it does not within a heartbeat (no bus, or the node
    /// died), the stored answer is marked stopped, which the running node notices at its
    /// next save.
    pub(crate) async fn stop_anywhere(
        &self,
        store: Arc<dyn MessageStore>,
        user: UserId,
        id: MessageId,
    ) -> StoreResult<()> {
        if self.stop(user, id) {
            return Ok(());
        }
        let Some(bus) = &self.bus else {
            store.mark_stopped(user, id, Timestamp::now()).await?;
            return Ok(());
        };
        bus.request_stop(id);
        let grace = self.settings.heartbeat;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if let Err(error) = store.mark_stopped(user, id, Timestamp::now()).await {
                tracing::warn!(message_id = %id, %error, "could not mark a stopped answer");
            }
        });
        Ok(())
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
            steps: state.steps.clone(),
            finished: state.finished.clone(),
        };
        let events = job.sender.subscribe();
        drop(state);
        Some(Subscription { snapshot, events })
    }

    /// Asks a running job to stop; it keeps what arrived. Returns whether a job was running.
    pub fn stop(&self, user: UserId, id: MessageId) -> bool {
        let Some(job) = self.job(user, id) else { return false };
        job.stop(STOP_USER);
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
            job.stop(STOP_SHUTDOWN);
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
    }

    /// Starts a job. `on_finish` runs after the final state is stored (auto-titling).
    pub(crate) fn start<F, Fut>(
        &self,
        spec: JobSpec,
        store: Arc<dyn MessageStore>,
        client: Arc<dyn ChatClient>,
        on_finish: F,
    ) where
        F: FnOnce(FinishedAnswer) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let (sender, _) = broadcast::channel(1024);
        let job = Arc::new(Job {
            user_id: spec.user_id,
            topic_id: spec.topic_id,
            state: Mutex::new(JobState { content: spec.prefix.clone(), ..JobState::default() }),
            sender,
            cancel: CancellationToken::new(),
            stop_reason: AtomicU8::new(STOP_NONE),
        });
        self.jobs().insert(spec.message_id, job.clone());
        metrics::started();
        let registry = self.clone();
        // The job outlives the request that started it, but keeps its id (logs, upstream calls).
        let request_id = crate::request::current();
        let span = tracing::info_span!(
            "generation",
            message_id = %spec.message_id,
            request_id = request_id.as_deref().unwrap_or_default(),
        );
        let work = async move {
            let runner = runner::Runner {
                job: &job,
                next_source: std::sync::atomic::AtomicU32::new(spec.next_source),
                spec: &spec,
                store: store.as_ref(),
                settings: &registry.settings,
                bus: registry.bus.as_deref(),
            };
            let answer = runner.run(client.as_ref()).await;
            registry.jobs().remove(&spec.message_id);
            metrics::finished(&answer);
            on_finish(answer).await;
        };
        self.tasks.spawn(crate::request::scope(request_id, work).instrument(span));
    }
}
