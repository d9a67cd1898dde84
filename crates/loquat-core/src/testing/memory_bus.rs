//! `MemoryBus`: the `EventBus` between replicas in one process, with Redis pub/sub's
//! semantics: a subscriber gets what is published after it subscribed, and one that falls
//! too far behind is dropped (its stream ends).

use std::pin::Pin;

use async_trait::async_trait;
use futures_util::{Stream, StreamExt, stream};
use tokio::sync::broadcast;

use crate::bus::{BusError, BusEvent, BusStream, EventBus};
use crate::id::MessageId;

pub(crate) struct MemoryBus {
    events: broadcast::Sender<(MessageId, BusEvent)>,
    stops: broadcast::Sender<MessageId>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self { events: broadcast::channel(1024).0, stops: broadcast::channel(64).0 }
    }
}

/// Everything sent on `sender` from now on, until the receiver lags or the bus is dropped.
fn receive<T: Clone + Send + 'static>(sender: &broadcast::Sender<T>) -> impl Stream<Item = T> + Send + 'static {
    stream::unfold(sender.subscribe(), |mut receiver| async move {
        let item = receiver.recv().await.ok()?;
        Some((item, receiver))
    })
}

#[async_trait]
impl EventBus for MemoryBus {
    fn publish(&self, message: MessageId, event: BusEvent) {
        // Nobody listening is fine, as with Redis.
        let _ = self.events.send((message, event));
    }

    async fn subscribe(&self, message: MessageId) -> Result<BusStream, BusError> {
        let events =
            receive(&self.events).filter_map(move |(id, event)| std::future::ready((id == message).then_some(event)));
        Ok(Box::pin(events))
    }

    fn request_stop(&self, message: MessageId) {
        let _ = self.stops.send(message);
    }

    async fn stop_requests(&self) -> Result<Pin<Box<dyn Stream<Item = MessageId> + Send>>, BusError> {
        Ok(Box::pin(receive(&self.stops)))
    }
}
