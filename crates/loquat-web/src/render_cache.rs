//! Rendering messages to HTML off the async workers: `Renderer` runs markdown on the blocking
//! pool, a few renders at a time (a flood of views waits its turn instead of filling the pool
//! or stalling other requests), and keeps finished messages' HTML in a bounded cache. Finished
//! messages never change (an edit makes a new message), so a topic's second view skips
//! markdown rendering and sanitizing entirely.

use std::collections::{HashMap, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, LazyLock, Mutex};

use loquat_core::domain::{Message, MessageStatus};
use loquat_core::id::MessageId;
use tokio::sync::Semaphore;

use crate::markdown::{self, ImageHosts};

/// The most rendered HTML kept, in bytes.
const CAPACITY_BYTES: usize = 16 * 1024 * 1024;
/// The largest single entry kept.
const MAX_ENTRY_BYTES: usize = CAPACITY_BYTES / 4;

/// A message's content and reasoning as safe HTML (reasoning empty when it has none).
#[derive(Debug, Clone, Default)]
pub struct Rendered {
    pub html: Arc<str>,
    pub reasoning_html: Arc<str>,
}

/// A render that could not finish (it panicked, or its task was cancelled). Already logged.
#[derive(Debug)]
pub struct RenderFailed;

/// Markdown rendering for the pages and the event stream. Cheap to clone.
#[derive(Clone)]
pub struct Renderer {
    images: Arc<ImageHosts>,
    /// Renders running at once on the blocking pool.
    permits: Arc<Semaphore>,
}

impl Renderer {
    /// At most one render per core runs at once (rendering is CPU work; more would only queue
    /// in the blocking pool and compete with the async workers).
    pub fn new(images: ImageHosts) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self { images: Arc::new(images), permits: Arc::new(Semaphore::new(cores.max(2))) }
    }

    /// The messages' HTML, in order: from the cache, else rendered (all misses in one task).
    /// A render that fails is logged and shown as plain text, never as nothing.
    pub async fn messages<'m>(&self, messages: impl IntoIterator<Item = &'m Message>) -> Vec<Rendered> {
        let messages: Vec<&Message> = messages.into_iter().collect();
        let fingerprint = self.images.fingerprint();
        let mut rendered = vec![Rendered::default(); messages.len()];
        let mut misses = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            let miss = Miss::new(index, message, fingerprint);
            match miss.cached() {
                Some(hit) => rendered[index] = hit,
                None => misses.push(miss),
            }
        }
        if misses.is_empty() {
            return rendered;
        }
        let indexes: Vec<usize> = misses.iter().map(|miss| miss.index).collect();
        let images = Arc::clone(&self.images);
        let result = self.run(move || misses.into_iter().map(|miss| miss.render(&images)).collect::<Vec<_>>()).await;
        match result {
            Ok(results) => {
                for (index, result) in results {
                    rendered[index] = result;
                }
            }
            // Only when the task itself was lost: plain escaped text, still never nothing.
            Err(RenderFailed) => {
                for index in indexes {
                    let plain =
                        |text: &str| if text.is_empty() { empty() } else { markdown::render_plain(text).into() };
                    let message = messages[index];
                    rendered[index] =
                        Rendered { html: plain(&message.content), reasoning_html: plain(&message.reasoning) };
                }
            }
        }
        rendered
    }

    /// An answer still streaming (an open code fence closed first); not cached.
    pub async fn streaming(
        &self,
        message_id: MessageId,
        content: String,
        reasoning: String,
    ) -> Result<Rendered, RenderFailed> {
        let images = Arc::clone(&self.images);
        let work = move || {
            catch_unwind(AssertUnwindSafe(|| Rendered {
                html: markdown::render_streaming(&content, &images).into(),
                reasoning_html: if reasoning.is_empty() {
                    empty()
                } else {
                    markdown::render_streaming(&reasoning, &images).into()
                },
            }))
        };
        match self.run(work).await? {
            Ok(rendered) => Ok(rendered),
            Err(_) => {
                tracing::error!(%message_id, "rendering a streaming answer panicked");
                Err(RenderFailed)
            }
        }
    }

    /// Markdown that is not a message (an assistant's opening message); not cached.
    pub async fn markdown(&self, text: String) -> String {
        let images = Arc::clone(&self.images);
        let input = text.clone();
        let rendered = self.run(move || render_or_plain(&input, &images, false, None)).await;
        rendered.unwrap_or_else(|RenderFailed| markdown::render_plain(&text))
    }

    /// Runs `work` on the blocking pool once a permit is free. The permit travels with the
    /// work, so a caller that goes away does not free a slot while its render still runs.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, RenderFailed> {
        let Ok(permit) = Arc::clone(&self.permits).acquire_owned().await else { return Err(RenderFailed) };
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|error| {
            tracing::error!(%error, "a markdown render task failed");
            RenderFailed
        })
    }
}

/// A message whose HTML is looked up or rendered: where its result goes and its cache keys.
struct Miss {
    index: usize,
    id: MessageId,
    /// An answer still generating: rendered as streaming text, never cached.
    generating: bool,
    content_key: Key,
    reasoning_key: Key,
    content: String,
    reasoning: String,
}

impl Miss {
    fn new(index: usize, message: &Message, fingerprint: u32) -> Self {
        let key =
            |reasoning| Key { id: message.id, updated_at: message.updated_at.as_millis(), reasoning, fingerprint };
        Self {
            index,
            id: message.id,
            generating: message.status == MessageStatus::Generating,
            content_key: key(false),
            reasoning_key: key(true),
            content: message.content.clone(),
            reasoning: message.reasoning.clone(),
        }
    }

    fn cached(&self) -> Option<Rendered> {
        if self.generating {
            return None;
        }
        let html = cached(self.content_key)?;
        let reasoning_html = if self.reasoning.is_empty() { empty() } else { cached(self.reasoning_key)? };
        Some(Rendered { html, reasoning_html })
    }

    fn render(self, images: &ImageHosts) -> (usize, Rendered) {
        let render = |key: Key, text: &str| {
            if text.is_empty() && key.reasoning {
                return empty();
            }
            if self.generating {
                return render_or_plain(text, images, true, Some(self.id)).into();
            }
            cached(key).unwrap_or_else(|| store(key, render_or_plain(text, images, false, Some(self.id))))
        };
        let rendered = Rendered {
            html: render(self.content_key, &self.content),
            reasoning_html: render(self.reasoning_key, &self.reasoning),
        };
        (self.index, rendered)
    }
}

/// The text rendered, or (logged) as plain text if rendering panics.
fn render_or_plain(text: &str, images: &ImageHosts, streaming: bool, message_id: Option<MessageId>) -> String {
    let render = || if streaming { markdown::render_streaming(text, images) } else { markdown::render(text, images) };
    catch_unwind(AssertUnwindSafe(render)).unwrap_or_else(|_| {
        let message_id = message_id.map(|id| id.to_string()).unwrap_or_default();
        tracing::error!(message_id, "rendering markdown panicked; shown as plain text");
        markdown::render_plain(text)
    })
}

fn empty() -> Arc<str> {
    Arc::from("")
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    id: MessageId,
    updated_at: i64,
    reasoning: bool,
    /// Of the image policy the HTML was rendered under.
    fingerprint: u32,
}

#[derive(Default)]
struct Cache {
    entries: HashMap<Key, Arc<str>>,
    /// Insertion order, for eviction (first in, first out).
    order: VecDeque<Key>,
    bytes: usize,
}

static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Mutex::default);

fn cached(key: Key) -> Option<Arc<str>> {
    lock().entries.get(&key).cloned()
}

fn store(key: Key, html: String) -> Arc<str> {
    let html: Arc<str> = Arc::from(html);
    let mut cache = lock();
    if html.len() <= MAX_ENTRY_BYTES && !cache.entries.contains_key(&key) {
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
