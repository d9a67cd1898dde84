//! Test doubles for loquat-core's unit tests: the message store, a chat provider and the event
//! bus in memory, so the generation job's rules run in milliseconds on tokio's paused clock.

mod memory_bus;
mod memory_store;
mod scripted_client;

use crate::domain::MessageStatus;
use crate::store::FinishedAnswer;
use crate::time::Timestamp;

pub(crate) use memory_bus::MemoryBus;
pub(crate) use memory_store::{MemoryStore, Write};
pub(crate) use scripted_client::{Script, ScriptedClient};

/// A finished answer with `status` and `content` and nothing else recorded.
pub(crate) fn finished_answer(status: MessageStatus, content: &str) -> FinishedAnswer {
    FinishedAnswer {
        status,
        content: content.to_owned(),
        reasoning: String::new(),
        error_kind: None,
        error_message: None,
        provider: None,
        model: None,
        usage: None,
        ttft_ms: None,
        duration_ms: None,
        updated_at: Timestamp::now(),
    }
}
