//! A bounded cache of rendered message HTML. Finished messages never change (an edit makes a
//! new message), so a topic's second view skips markdown rendering and sanitizing entirely.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, LazyLock, Mutex};

use loquat_core::domain::{Message, MessageStatus};
use loquat_core::id::MessageId;

use crate::markdown;

/// The most rendered HTML kept, in bytes.
const CAPACITY_BYTES: usize = 16 * 1024 * 1024;

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    id: MessageId,
    updated_at: i64,
    reasoning: bool,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, Arc<str>>,
    /// Insertion order, for eviction (first in, first out).
    order: VecDeque<Key>,
    bytes: usize,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

/// The message's content rendered to safe HTML.
pub fn content_html(message: &Message) -> Arc<str> {
    rendered(message, false, &message.content)
}

/// The message's reasoning rendered to safe HTML (empty when it has none).
pub fn reasoning_html(message: &Message) -> Arc<str> {
    if message.reasoning.is_empty() {
        return Arc::from("");
    }
    rendered(message, true, &message.reasoning)
}

fn rendered(message: &Message, reasoning: bool, text: &str) -> Arc<str> {
    if message.status == MessageStatus::Generating {
        return Arc::from(markdown::render_streaming(text));
    }
    let key = Key { id: message.id, updated_at: message.updated_at.as_millis(), reasoning };
    if let Some(html) = lock().entries.get(&key) {
        return html.clone();
    }
    let html: Arc<str> = Arc::from(markdown::render(text));
    let mut cache = lock();
    if html.len() <= CAPACITY_BYTES / 16 && !cache.entries.contains_key(&key) {
        cache.bytes += html.len();
        cache.entries.insert(key, html.clone());
        cache.order.push_back(key);
        while cache.bytes > CAPACITY_BYTES {
            let Some(oldest) = cache.order.pop_front() else { break };
            if let Some(evicted) = cache.entries.remove(&oldest) {
                cache.bytes -= evicted.len();
            }
        }
    }
    html
}

fn lock() -> std::sync::MutexGuard<'static, Cache> {
    CACHE.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
