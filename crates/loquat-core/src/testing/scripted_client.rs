//! `ScriptedClient`: a `ChatClient` that answers each `stream_chat` with the next [`Script`]
//! (events, errors and waits on tokio's clock), records the requests, and counts the answers
//! dropped before they ended (a cancelled upstream request).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::{StreamExt, stream};

use crate::llm::{ChatClient, ChatEvent, ChatRequest, ChatStream, Endpoint, ProviderError, ProviderErrorKind};

/// One scripted answer: steps played in order, then the end of the stream (or, with
/// [`Script::hang`], silence until the stream is dropped).
#[derive(Debug, Clone, Default)]
pub(crate) struct Script {
    steps: Vec<Step>,
    hang: bool,
}

#[derive(Debug, Clone)]
enum Step {
    Wait(Duration),
    Yield(Result<ChatEvent, ProviderError>),
}

impl Script {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// An answer of `words` words (`"w1 w2 …"`), one chunk each, `every` apart.
    pub(crate) fn words(words: usize, every: Duration) -> Self {
        (1..=words).fold(Self::new(), |script, n| script.wait(every).text(format!("w{n} ")))
    }

    pub(crate) fn wait(mut self, duration: Duration) -> Self {
        self.steps.push(Step::Wait(duration));
        self
    }

    pub(crate) fn text(self, text: impl Into<String>) -> Self {
        self.event(ChatEvent::Text(text.into()))
    }

    pub(crate) fn event(mut self, event: ChatEvent) -> Self {
        self.steps.push(Step::Yield(Ok(event)));
        self
    }

    /// The provider fails with `kind` (the stream ends there).
    pub(crate) fn fail(mut self, kind: ProviderErrorKind) -> Self {
        self.steps.push(Step::Yield(Err(ProviderError::new(kind, "scripted failure"))));
        self
    }

    /// After the steps, the upstream stays silent instead of ending.
    pub(crate) fn hang(mut self) -> Self {
        self.hang = true;
        self
    }
}

#[derive(Default)]
pub(crate) struct ScriptedClient {
    scripts: Mutex<VecDeque<Script>>,
    requests: Mutex<Vec<ChatRequest>>,
    cancelled: Arc<AtomicUsize>,
}

impl ScriptedClient {
    /// A client that gives these answers, one per request, in order.
    pub(crate) fn new(scripts: impl IntoIterator<Item = Script>) -> Self {
        Self { scripts: Mutex::new(scripts.into_iter().collect()), ..Self::default() }
    }

    /// The requests made so far, in order.
    pub(crate) fn requests(&self) -> Vec<ChatRequest> {
        lock(&self.requests).clone()
    }

    /// How many answers were dropped before they ended or failed (while opening included).
    pub(crate) fn cancelled(&self) -> usize {
        self.cancelled.load(Ordering::SeqCst)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[async_trait]
impl ChatClient for ScriptedClient {
    /// Like `HttpChatClient`, returns once the first visible output arrived, so an error
    /// before it is this call's error (which is what lets the job fall back to another model).
    async fn stream_chat(&self, _endpoint: &Endpoint, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        lock(&self.requests).push(request.clone());
        let Some(script) = lock(&self.scripts).pop_front() else {
            return Err(ProviderError::new(ProviderErrorKind::BadRequest, "the script has no more answers"));
        };
        let mut upstream =
            Upstream { steps: script.steps.into(), hang: script.hang, ended: false, cancelled: self.cancelled.clone() };
        let mut seen = Vec::new();
        while let Some(item) = upstream.next().await {
            let event = item?;
            let visible = matches!(
                event,
                ChatEvent::Text(_)
                    | ChatEvent::Reasoning(_)
                    | ChatEvent::ToolCall(_)
                    | ChatEvent::ReasoningSignature(_)
            );
            seen.push(Ok(event));
            if visible {
                break;
            }
        }
        let rest = stream::unfold(upstream, |mut upstream| async move {
            let item = upstream.next().await?;
            Some((item, upstream))
        });
        Ok(Box::pin(stream::iter(seen).chain(rest)))
    }

    async fn list_models(&self, _endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
        Ok(Vec::new())
    }
}

/// The rest of one script; counts itself cancelled when dropped before its end.
struct Upstream {
    steps: VecDeque<Step>,
    hang: bool,
    ended: bool,
    cancelled: Arc<AtomicUsize>,
}

impl Upstream {
    async fn next(&mut self) -> Option<Result<ChatEvent, ProviderError>> {
        loop {
            match self.steps.pop_front() {
                Some(Step::Wait(duration)) => tokio::time::sleep(duration).await,
                Some(Step::Yield(item)) => {
                    // A provider's error ends its answer.
                    self.ended = item.is_err();
                    return Some(item);
                }
                None if self.hang => std::future::pending::<()>().await,
                None => {
                    self.ended = true;
                    return None;
                }
            }
        }
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if !self.ended {
            self.cancelled.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Protocol;

    fn endpoint() -> Endpoint {
        Endpoint::new(Protocol::OpenAi, "http://scripted.test", None)
    }

    #[tokio::test(start_paused = true)]
    async fn answers_in_order_with_waits_and_notices_a_dropped_stream() {
        let client = ScriptedClient::new([
            Script::new().fail(ProviderErrorKind::RateLimited),
            Script::new().wait(Duration::from_secs(1)).text("a").wait(Duration::from_secs(1)).text("b").hang(),
            Script::new().text("done"),
        ]);
        let request = ChatRequest { model: "m".into(), ..ChatRequest::default() };
        let refused = client.stream_chat(&endpoint(), &request).await.err().map(|error| error.kind);
        assert_eq!(refused, Some(ProviderErrorKind::RateLimited));

        let started = tokio::time::Instant::now();
        let mut answer = client.stream_chat(&endpoint(), &request).await.expect("opens");
        assert_eq!(started.elapsed(), Duration::from_secs(1), "opened with the first output");
        assert_eq!(answer.next().await.expect("event").expect("ok"), ChatEvent::Text("a".into()));
        assert_eq!(answer.next().await.expect("event").expect("ok"), ChatEvent::Text("b".into()));
        assert_eq!(started.elapsed(), Duration::from_secs(2));
        assert!(tokio::time::timeout(Duration::from_secs(60), answer.next()).await.is_err(), "hangs");
        assert_eq!(client.cancelled(), 0);
        drop(answer);
        assert_eq!(client.cancelled(), 1);

        let answer = client.stream_chat(&endpoint(), &request).await.expect("opens");
        assert_eq!(answer.count().await, 1);
        let error = client.stream_chat(&endpoint(), &request).await.err().map(|error| error.kind);
        assert_eq!(error, Some(ProviderErrorKind::BadRequest), "no script left");
        assert_eq!(client.requests().len(), 4);
        assert_eq!(client.cancelled(), 1, "ended and failed answers are not cancellations");
    }
}
