//! Unit tests of generation jobs on tokio's paused clock: a job runs against the in-memory
//! store and a scripted provider (`crate::testing`), so timing rules are checked to the
//! millisecond without waiting for them.

mod job;
mod replicas;
mod tools;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use super::{Attempt, GenerationEvent, GenerationSettings, Generations, JobSpec, Subscription};
use crate::bus::EventBus;
use crate::domain::{Message, Protocol};
use crate::id::UserId;
use crate::llm::{ChatRequest, Endpoint};
use crate::store::{FinishedAnswer, MessageStore};
use crate::testing::{MemoryStore, Script, ScriptedClient, Write};

fn ms(millis: u64) -> Duration {
    Duration::from_millis(millis)
}

fn secs(seconds: u64) -> Duration {
    Duration::from_secs(seconds)
}

/// Round numbers, far apart, so each rule's moment is easy to tell.
fn settings(node: &str) -> GenerationSettings {
    GenerationSettings {
        persist_interval: ms(500),
        first_event_timeout: secs(10),
        idle_timeout: secs(5),
        total_timeout: secs(30),
        node_id: node.to_owned(),
        heartbeat: secs(2),
        stale_after: secs(10),
    }
}

/// One node, one generating answer in the store, one scripted provider.
struct Node {
    generations: Generations,
    store: Arc<MemoryStore>,
    client: Arc<ScriptedClient>,
    user: UserId,
    answer: Message,
    /// When the answer was seeded (tests start their jobs at once).
    started: Instant,
}

impl Node {
    async fn new(scripts: impl IntoIterator<Item = Script>) -> Self {
        Self::with(settings("node-a"), None, scripts).await
    }

    async fn with(
        settings: GenerationSettings,
        bus: Option<Arc<dyn EventBus>>,
        scripts: impl IntoIterator<Item = Script>,
    ) -> Self {
        let store = Arc::new(MemoryStore::default());
        let user = UserId::new();
        let answer = store.seed_answer(user, &settings.node_id).await;
        Self {
            generations: Generations::new(settings, bus),
            store,
            client: Arc::new(ScriptedClient::new(scripts)),
            user,
            answer,
            started: Instant::now(),
        }
    }

    /// Starts the job asking `models` in order (the first, then fallbacks); the receiver
    /// gets the answer as the job finished it.
    fn start(&self, models: &[&str]) -> oneshot::Receiver<FinishedAnswer> {
        self.start_with(models, None)
    }

    /// [`Node::start`], the model given `toolbox`.
    fn start_with(&self, models: &[&str], toolbox: Option<crate::tools::Toolbox>) -> oneshot::Receiver<FinishedAnswer> {
        let attempts = models.iter().map(|model| attempt(model)).collect();
        let spec = JobSpec {
            user_id: self.user,
            topic_id: self.answer.topic_id,
            message_id: self.answer.id,
            attempts,
            toolbox,
            next_source: 1,
            prefix: String::new(),
        };
        let (done, finished) = oneshot::channel();
        self.generations.start(spec, self.store.clone(), self.client.clone(), move |answer| async move {
            let _ = done.send(answer);
        });
        finished
    }

    /// Starts the job with one model and waits for its end.
    async fn run(&self) -> FinishedAnswer {
        self.start(&["model-a"]).await.expect("the job finishes")
    }

    fn subscribe(&self) -> Subscription {
        self.generations.subscribe(self.user, self.answer.id).expect("the job runs")
    }

    async fn stored(&self) -> Message {
        self.store.get_message(self.user, self.answer.id).await.expect("reads").expect("the answer exists")
    }

    /// The progress saves (heartbeats included), as offsets from the start.
    fn saves(&self) -> Vec<(Duration, String)> {
        let saves = self.store.writes().into_iter().filter(|write| write.finished.is_none());
        saves.map(|write| (write.at - self.started, write.content)).collect()
    }

    fn finishes(&self) -> Vec<Write> {
        self.store.writes().into_iter().filter(|write| write.finished.is_some()).collect()
    }

    /// The longest time the store went without a write from this job, from its start to its
    /// final write.
    fn longest_silence(&self) -> Duration {
        let mut last = self.started;
        let mut longest = Duration::ZERO;
        for write in self.store.writes() {
            longest = longest.max(write.at - last);
            last = write.at;
        }
        longest
    }
}

/// The provider `provider-of-<model>` with its one model.
fn attempt(model: &str) -> Attempt {
    Attempt {
        provider_id: format!("provider-of-{model}"),
        model_id: model.to_owned(),
        endpoint: Endpoint::new(Protocol::OpenAi, format!("http://{model}.test/v1"), None),
        request: ChatRequest { model: model.to_owned(), ..ChatRequest::default() },
    }
}

/// `"w1 w2 … wN "`, the text of `Script::words(n, _)`.
fn words(n: usize) -> String {
    (1..=n).map(|i| format!("w{i} ")).collect()
}

/// Everything a subscriber sees, applied in order: the text it ends with and the events.
async fn follow(subscription: Subscription) -> (String, Vec<GenerationEvent>) {
    let Subscription { snapshot, mut events } = subscription;
    let mut text = snapshot.content;
    let mut seen = Vec::new();
    while let Ok(event) = events.recv().await {
        match &event {
            GenerationEvent::Delta { content, .. } => text.push_str(content),
            GenerationEvent::Replace { content, .. } => text.clone_from(content),
            GenerationEvent::Steps(_) => {}
            GenerationEvent::Finished(_) => {
                seen.push(event);
                break;
            }
        }
        seen.push(event);
    }
    (text, seen)
}
