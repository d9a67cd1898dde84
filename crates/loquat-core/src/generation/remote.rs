//! Following an answer that another node generates: subscribe to its events on the bus, take
//! the stored answer as the starting point, line the deltas up with it by offset, and resync
//! from the store after a gap. If the other node dies, the store says so (the answer stops
//! being `generating`) and the follower ends.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::broadcast;

use super::{GenerationEvent, Outcome, Snapshot, Subscription};
use crate::bus::{BusEvent, BusStream, EventBus};
use crate::domain::{Message, MessageStatus};
use crate::store::MessageStore;

pub(super) async fn follow(
    bus: Option<Arc<dyn EventBus>>,
    store: Arc<dyn MessageStore>,
    message: Message,
    check_every: Duration,
) -> Option<Subscription> {
    // Subscribe first, then read the store: nothing published in between is missed.
    let mut events: BusStream = match bus {
        Some(bus) => match bus.subscribe(message.id).await {
            Ok(events) => events,
            Err(error) => {
                tracing::warn!(%error, "cannot follow an answer on the event bus; reading the store instead");
                Box::pin(futures_util::stream::pending())
            }
        },
        None => Box::pin(futures_util::stream::pending()),
    };
    let latest = store.get_message(message.user_id, message.id).await.ok().flatten().unwrap_or(message);
    let mut steps = store.message_tool_steps(latest.user_id, latest.id).await.unwrap_or_default();
    let snapshot = Snapshot {
        content: latest.content.clone(),
        reasoning: latest.reasoning.clone(),
        steps: steps.clone(),
        finished: (latest.status != MessageStatus::Generating).then(|| outcome(&latest)),
    };
    let (sender, receiver) = broadcast::channel(1024);
    if snapshot.finished.is_none() {
        tokio::spawn(async move {
            let (mut content_len, mut reasoning_len) = (latest.content.len(), latest.reasoning.len());
            let mut watchdog = tokio::time::interval(check_every);
            watchdog.tick().await;
            loop {
                let event = tokio::select! {
                    event = events.next() => event,
                    _ = watchdog.tick() => {
                        // The store knows when the other node finished or died, and has the
                        // answer as of its last save (all there is to go on without a bus).
                        // Tool calls are written as they start and end.
                        if let Ok(now) = store.message_tool_steps(latest.user_id, latest.id).await
                            && now != steps
                        {
                            steps = now;
                            if sender.send(GenerationEvent::Steps(steps.clone())).is_err() {
                                return;
                            }
                        }
                        match store.get_message(latest.user_id, latest.id).await {
                            Ok(Some(now)) => {
                                let finished = now.status != MessageStatus::Generating;
                                if now.content.len() > content_len || now.reasoning.len() > reasoning_len {
                                    content_len = now.content.len();
                                    reasoning_len = now.reasoning.len();
                                    let replace = GenerationEvent::Replace { content: now.content.clone(), reasoning: now.reasoning.clone() };
                                    if sender.send(replace).is_err() {
                                        return;
                                    }
                                }
                                if finished {
                                    let _ = sender.send(GenerationEvent::Finished(outcome(&now)));
                                    return;
                                }
                                continue;
                            }
                            Ok(None) => {
                                let _ = sender.send(GenerationEvent::Finished(outcome(&latest)));
                                return;
                            }
                            Err(_) => continue,
                        }
                    }
                };
                match event {
                    Some(BusEvent::Delta { content_at, reasoning_at, content, reasoning }) => {
                        if content_at + content.len() <= content_len && reasoning_at + reasoning.len() <= reasoning_len
                        {
                            continue; // already in the snapshot
                        }
                        if (content_at, reasoning_at) != (content_len, reasoning_len) {
                            // A gap (or overlap): start again from the store, which may end
                            // where this delta starts (saved just before it) or hold it already.
                            let Ok(Some(now)) = store.get_message(latest.user_id, latest.id).await else { return };
                            content_len = now.content.len();
                            reasoning_len = now.reasoning.len();
                            let replace = GenerationEvent::Replace { content: now.content, reasoning: now.reasoning };
                            let _ = sender.send(replace);
                            if (content_at, reasoning_at) != (content_len, reasoning_len) {
                                continue;
                            }
                        }
                        content_len += content.len();
                        reasoning_len += reasoning.len();
                        if sender.send(GenerationEvent::Delta { content, reasoning }).is_err() {
                            return; // nobody follows any more
                        }
                    }
                    Some(BusEvent::Steps { steps: now }) => {
                        steps = now;
                        if sender.send(GenerationEvent::Steps(steps.clone())).is_err() {
                            return;
                        }
                    }
                    None => {
                        // The bus dropped us; the store still tells when the answer ends.
                        events = Box::pin(futures_util::stream::pending());
                    }
                    Some(BusEvent::Finished) => {
                        let finished = store.get_message(latest.user_id, latest.id).await.ok().flatten();
                        let outcome = finished.as_ref().map(outcome).unwrap_or(Outcome {
                            status: MessageStatus::Interrupted,
                            error_kind: None,
                            error_message: None,
                        });
                        let _ = sender.send(GenerationEvent::Finished(outcome));
                        return;
                    }
                }
            }
        });
    }
    Some(Subscription { snapshot, events: receiver })
}

fn outcome(message: &Message) -> Outcome {
    Outcome {
        status: message.status,
        error_kind: message.error_kind.clone(),
        error_message: message.error_message.clone(),
    }
}
