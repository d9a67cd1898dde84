//! Test doubles for loquat-core's unit tests: the message store, a chat provider and the event
//! bus in memory, so the generation job's rules run in milliseconds on tokio's paused clock.

mod memory_bus;
mod memory_store;
mod scripted_client;

pub(crate) use memory_bus::MemoryBus;
pub(crate) use memory_store::{MemoryStore, Write};
pub(crate) use scripted_client::{Script, ScriptedClient};
