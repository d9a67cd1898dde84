//! The event bus between replicas, over Redis pub/sub.
//!
//! Channels are `<prefix>:gen:<message id>` (one answer's deltas, then `finished`) and
//! `<prefix>:stop` (message ids whose job should stop, heard by every node). Publishing never
//! waits: events go through a bounded queue to one task that pipelines them, merging a job's
//! consecutive deltas when Redis falls behind. Subscribing shares one RESP3 connection per
//! process (the connection manager reconnects and subscribes again by itself); each channel
//! is subscribed once however many viewers follow it, and unsubscribed when the last leaves.
//! Messages lost while reconnecting are not a problem for followers: they notice the gap by
//! the deltas' offsets and read the store again.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::Stream;
use loquat_core::bus::{BusError, BusEvent, BusStream, EventBus};
use loquat_core::id::MessageId;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value};
use tokio::sync::{broadcast, mpsc};

/// Events waiting to be published; beyond this, deltas are dropped (followers resync).
const OUTBOX: usize = 16_384;
/// Most events sent to Redis in one pipeline.
const BATCH: usize = 512;
/// Events a slow follower may fall behind before it skips (and resyncs).
const FOLLOWER_BUFFER: usize = 1_024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Deltas not published because the queue to Redis was full.
const EVENTS_DROPPED_TOTAL: &str = "loquat_bus_events_dropped_total";
/// Pipelines Redis refused or did not answer.
const PUBLISH_ERRORS_TOTAL: &str = "loquat_bus_publish_errors_total";

pub(crate) fn describe() {
    metrics::describe_counter!(EVENTS_DROPPED_TOTAL, "Answer deltas not sent to other replicas (queue to Redis full).");
    metrics::describe_counter!(PUBLISH_ERRORS_TOTAL, "Batches of events Redis refused or did not take.");
}

enum Outgoing {
    Event(MessageId, BusEvent),
    Stop(MessageId),
}

pub struct RedisBus {
    prefix: String,
    outbox: mpsc::Sender<Outgoing>,
    subscriber: ConnectionManager,
    routes: Arc<Routes>,
}

/// Where messages arriving on the shared subscriber connection go.
#[derive(Default)]
struct Routes {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<[u8]>>>>,
    /// Held across SUBSCRIBE / UNSUBSCRIBE so Redis and `channels` agree.
    changing: tokio::sync::Mutex<()>,
}

impl Routes {
    fn channels(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<[u8]>>>> {
        self.channels.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl RedisBus {
    /// Connects (publisher and subscriber) within a few seconds, or fails.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, BusError> {
        let error = |error: redis::RedisError| BusError(error.to_string());
        let info = url.into_connection_info().map_err(error)?;
        // Pushed messages (pub/sub on a connection that also takes commands) need RESP3.
        let settings = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client = Client::open(info.set_redis_settings(settings)).map_err(error)?;
        let config = || {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(CONNECT_TIMEOUT))
                .set_response_timeout(Some(RESPONSE_TIMEOUT))
                .set_max_delay(Duration::from_secs(2))
        };
        let (pushes, pushed) = mpsc::unbounded_channel();
        let connect = async {
            let publisher = ConnectionManager::new_with_config(client.clone(), config()).await?;
            let subscriber = ConnectionManager::new_with_config(
                client,
                config().set_push_sender(pushes).set_automatic_resubscription(),
            )
            .await?;
            Ok::<_, redis::RedisError>((publisher, subscriber))
        };
        let (publisher, subscriber) = tokio::time::timeout(CONNECT_TIMEOUT * 2, connect)
            .await
            .map_err(|_| BusError("Redis did not answer".to_owned()))?
            .map_err(error)?;
        let routes = Arc::new(Routes::default());
        tokio::spawn(route(pushed, routes.clone()));
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let prefix = if prefix.is_empty() { "loquat" } else { prefix }.to_owned();
        tokio::spawn(publish(queued, publisher, prefix.clone()));
        Ok(Self { prefix, outbox, subscriber, routes })
    }

    /// Subscribes to `channel` (once per process) and returns its raw messages.
    async fn listen(&self, channel: String) -> Result<Listener, BusError> {
        let _changing = self.routes.changing.lock().await;
        let existing = self.routes.channels().get(&channel).map(broadcast::Sender::subscribe);
        let receiver = match existing {
            Some(receiver) => receiver,
            None => {
                let (sender, receiver) = broadcast::channel(FOLLOWER_BUFFER);
                self.routes.channels().insert(channel.clone(), sender);
                let mut connection = self.subscriber.clone();
                if let Err(error) = connection.subscribe(&channel).await {
                    self.routes.channels().remove(&channel);
                    return Err(BusError(error.to_string()));
                }
                receiver
            }
        };
        let leave = Leave { channel, routes: self.routes.clone(), connection: self.subscriber.clone() };
        Ok(Listener { receiver, _leave: leave })
    }

    fn answer_channel(prefix: &str, message: MessageId) -> String {
        format!("{prefix}:gen:{message}")
    }

    fn stop_channel(prefix: &str) -> String {
        format!("{prefix}:stop")
    }
}

#[async_trait]
impl EventBus for RedisBus {
    fn publish(&self, message: MessageId, event: BusEvent) {
        match self.outbox.try_send(Outgoing::Event(message, event)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(Outgoing::Event(_, BusEvent::Finished))) => {
                // Followers also learn it from the store; still worth a try.
                let outbox = self.outbox.clone();
                tokio::spawn(async move { outbox.send(Outgoing::Event(message, BusEvent::Finished)).await });
            }
            Err(mpsc::error::TrySendError::Full(_)) => {
                metrics::counter!(EVENTS_DROPPED_TOTAL).increment(1);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    async fn subscribe(&self, message: MessageId) -> Result<BusStream, BusError> {
        let listener = self.listen(Self::answer_channel(&self.prefix, message)).await?;
        Ok(Box::pin(listener.parsed(|payload| serde_json::from_slice::<BusEvent>(payload).ok())))
    }

    fn request_stop(&self, message: MessageId) {
        let outbox = self.outbox.clone();
        tokio::spawn(async move { outbox.send(Outgoing::Stop(message)).await });
    }

    async fn stop_requests(&self) -> Result<Pin<Box<dyn Stream<Item = MessageId> + Send>>, BusError> {
        let listener = self.listen(Self::stop_channel(&self.prefix)).await?;
        Ok(Box::pin(listener.parsed(|payload| std::str::from_utf8(payload).ok()?.parse().ok())))
    }
}

/// One follower's messages of a channel; unsubscribes the process when the last one goes.
struct Listener {
    receiver: broadcast::Receiver<Arc<[u8]>>,
    _leave: Leave,
}

impl Listener {
    fn parsed<T: Send + 'static>(
        self,
        parse: impl Fn(&[u8]) -> Option<T> + Send + 'static,
    ) -> impl Stream<Item = T> + Send + 'static {
        futures_util::stream::unfold((self, parse), |(mut listener, parse)| async move {
            loop {
                match listener.receiver.recv().await {
                    Ok(payload) => {
                        if let Some(item) = parse(&payload) {
                            return Some((item, (listener, parse)));
                        }
                    }
                    // Fell behind: skip ahead (followers resync from the store).
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
    }
}

struct Leave {
    channel: String,
    routes: Arc<Routes>,
    connection: ConnectionManager,
}

impl Drop for Leave {
    fn drop(&mut self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        let (channel, routes, mut connection) =
            (std::mem::take(&mut self.channel), self.routes.clone(), self.connection.clone());
        runtime.spawn(async move {
            let _changing = routes.changing.lock().await;
            let last = {
                let mut channels = routes.channels();
                let unused = channels.get(&channel).is_some_and(|sender| sender.receiver_count() == 0);
                if unused {
                    channels.remove(&channel);
                }
                unused
            };
            if last && let Err(error) = connection.unsubscribe(&channel).await {
                tracing::debug!(%error, channel, "could not unsubscribe");
            }
        });
    }
}

/// Hands each pushed message to the followers of its channel.
async fn route(mut pushed: mpsc::UnboundedReceiver<PushInfo>, routes: Arc<Routes>) {
    while let Some(push) = pushed.recv().await {
        if push.kind != PushKind::Message {
            continue;
        }
        let [Value::BulkString(channel), Value::BulkString(payload)] = push.data.as_slice() else { continue };
        let Ok(channel) = std::str::from_utf8(channel) else { continue };
        if let Some(sender) = routes.channels().get(channel) {
            let _ = sender.send(Arc::from(payload.as_slice()));
        }
    }
}

/// Publishes queued events in pipelines, in order per channel.
async fn publish(mut queued: mpsc::Receiver<Outgoing>, mut connection: ConnectionManager, prefix: String) {
    let stop_channel = RedisBus::stop_channel(&prefix);
    let mut batch = Vec::with_capacity(BATCH);
    while queued.recv_many(&mut batch, BATCH).await > 0 {
        let mut pipeline = redis::pipe();
        for (channel, payload) in coalesce(batch.drain(..), &prefix, &stop_channel) {
            pipeline.cmd("PUBLISH").arg(channel).arg(payload).ignore();
        }
        if let Err(error) = pipeline.query_async::<()>(&mut connection).await {
            metrics::counter!(PUBLISH_ERRORS_TOTAL).increment(1);
            tracing::warn!(%error, "could not publish to other replicas");
        }
    }
}

/// The batch as (channel, payload) pairs, with each answer's consecutive deltas merged.
fn coalesce(batch: impl Iterator<Item = Outgoing>, prefix: &str, stop_channel: &str) -> Vec<(String, Vec<u8>)> {
    let mut merged: Vec<(String, Option<BusEvent>, Vec<u8>)> = Vec::new();
    // Each answer's last delta in `merged`, while nothing else of that answer follows it.
    let mut open: HashMap<MessageId, usize> = HashMap::new();
    for outgoing in batch {
        match outgoing {
            Outgoing::Stop(message) => merged.push((stop_channel.to_owned(), None, message.to_string().into_bytes())),
            Outgoing::Event(message, event) => {
                if let BusEvent::Delta { content_at, reasoning_at, content, reasoning } = &event
                    && let Some(&index) = open.get(&message)
                    && let Some(BusEvent::Delta {
                        content_at: at,
                        reasoning_at: reasoning_from,
                        content: before,
                        reasoning: reasoning_before,
                    }) = &mut merged[index].1
                    && *at + before.len() == *content_at
                    && *reasoning_from + reasoning_before.len() == *reasoning_at
                {
                    before.push_str(content);
                    reasoning_before.push_str(reasoning);
                    continue;
                }
                match event {
                    BusEvent::Delta { .. } => {
                        open.insert(message, merged.len());
                    }
                    BusEvent::Steps { .. } | BusEvent::Finished => {
                        open.remove(&message);
                    }
                }
                merged.push((RedisBus::answer_channel(prefix, message), Some(event), Vec::new()));
            }
        }
    }
    merged
        .into_iter()
        .map(|(channel, event, raw)| match event {
            Some(event) => (channel, serde_json::to_vec(&event).unwrap_or_default()),
            None => (channel, raw),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(at: usize, text: &str) -> BusEvent {
        BusEvent::Delta { content_at: at, reasoning_at: 0, content: text.to_owned(), reasoning: String::new() }
    }

    #[test]
    fn consecutive_deltas_of_an_answer_are_merged_and_order_is_kept() {
        let (a, b) = (MessageId::new(), MessageId::new());
        let batch = vec![
            Outgoing::Event(a, delta(0, "Hel")),
            Outgoing::Event(b, delta(0, "你")),
            Outgoing::Event(a, delta(3, "lo")),
            Outgoing::Stop(b),
            Outgoing::Event(b, delta(3, "好")),
            Outgoing::Event(a, BusEvent::Finished),
            Outgoing::Event(a, delta(9, "late")),
        ];
        let sent: Vec<(String, String)> = coalesce(batch.into_iter(), "p", "p:stop")
            .into_iter()
            .map(|(channel, payload)| (channel, String::from_utf8(payload).expect("utf-8")))
            .collect();
        let on = |id: MessageId| format!("p:gen:{id}");
        let json = |event: BusEvent| serde_json::to_string(&event).expect("serializes");
        assert_eq!(
            sent,
            [
                (on(a), json(delta(0, "Hello"))),
                (on(b), json(delta(0, "你好"))),
                ("p:stop".to_owned(), b.to_string()),
                (on(a), json(BusEvent::Finished)),
                (on(a), json(delta(9, "late"))),
            ]
        );
    }

    #[test]
    fn a_gap_is_not_merged_over() {
        let a = MessageId::new();
        let batch = vec![Outgoing::Event(a, delta(0, "ab")), Outgoing::Event(a, delta(5, "cd"))];
        assert_eq!(coalesce(batch.into_iter(), "p", "p:stop").len(), 2);
    }
}
