//! The event bus that lets replicas share live generations: the node running a job publishes
//! its deltas; a viewer on another node subscribes; a stop pressed on any node reaches the job.
//! Core defines the contract; the binary provides a Redis implementation.

use std::pin::Pin;

use async_trait::async_trait;
use futures_util::Stream;
use serde::{Deserialize, Serialize};

use crate::id::MessageId;

/// What crosses the bus about one answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BusEvent {
    /// Text appended at the given offsets (bytes of content and reasoning before this delta),
    /// so a subscriber can line deltas up with a snapshot read from the store.
    Delta { content_at: usize, reasoning_at: usize, content: String, reasoning: String },
    /// The answer's tool calls so far (a call started or ended).
    Steps { steps: Vec<crate::domain::ToolStep> },
    /// The job ended; the store holds the final message.
    Finished,
}

pub type BusStream = Pin<Box<dyn Stream<Item = BusEvent> + Send>>;

/// A bus failure (the broker cannot be reached).
#[derive(Debug, thiserror::Error)]
#[error("event bus: {0}")]
pub struct BusError(pub String);

#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes an event of an answer; never blocks the job (failures are logged).
    fn publish(&self, message: MessageId, event: BusEvent);
    /// Events of an answer from now on.
    async fn subscribe(&self, message: MessageId) -> Result<BusStream, BusError>;
    /// Asks whichever node runs the answer to stop it.
    fn request_stop(&self, message: MessageId);
    /// Stop requests from every node, for this node's jobs.
    async fn stop_requests(&self) -> Result<Pin<Box<dyn Stream<Item = MessageId> + Send>>, BusError>;
}
