//! The robustness every protocol gets: before the first token of an answer has been streamed,
//! a refused or rate-limited key gives way to the provider's next key, and connection errors,
//! 429s (honouring `Retry-After`) and 5xx are retried with jittered exponential backoff. Once
//! visible output has started, nothing is retried: an answer is never duplicated.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::{StreamExt, stream};
use loquat_core::llm::{ChatEvent, ChatStream, Endpoint, ProviderError, ProviderErrorKind};

/// How many times one request is retried (key switches do not count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max_retries: u32,
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the error goes to the user.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 3,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `attempt` (0-based): the provider's `Retry-After` when
    /// given, else exponential backoff with ±50 % jitter.
    pub(crate) fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if let Some(asked) = retry_after {
            return (asked <= self.max_retry_after).then_some(asked);
        }
        let exponential = self.base_delay.saturating_mul(2u32.saturating_pow(attempt)).min(self.max_delay);
        let jitter = rand::random_range(0.5..1.5);
        Some(exponential.mul_f64(jitter))
    }
}

/// Opens the stream with `open`, retrying as described above. `open` is called with the
/// endpoint carrying the key to try.
pub(crate) async fn open_with_retries<F, Fut>(
    endpoint: &Endpoint,
    policy: RetryPolicy,
    mut open: F,
) -> Result<ChatStream, ProviderError>
where
    F: FnMut(Endpoint) -> Fut,
    Fut: Future<Output = Result<ChatStream, ProviderError>>,
{
    let keys: Vec<_> =
        std::iter::once(endpoint.api_key.clone()).chain(endpoint.other_keys.iter().cloned().map(Some)).collect();
    let mut key_index = 0;
    let mut attempt = 0;
    loop {
        let mut current = endpoint.clone();
        current.api_key = keys[key_index].clone();
        current.other_keys.clear();
        let error = match open(current).await {
            Ok(stream) => match until_first_output(stream).await {
                Ok(stream) => return Ok(stream),
                Err(error) => error,
            },
            Err(error) => error,
        };
        let key_problem = matches!(
            error.kind,
            ProviderErrorKind::InvalidKey | ProviderErrorKind::RateLimited | ProviderErrorKind::QuotaExceeded
        );
        if key_problem && key_index + 1 < keys.len() {
            tracing::info!(kind = error.kind.code(), "the provider refused a key; trying the next one");
            key_index += 1;
            continue;
        }
        if !error.is_retryable() || attempt >= policy.max_retries {
            return Err(error);
        }
        let Some(delay) = policy.delay(attempt, error.retry_after) else {
            return Err(error);
        };
        tracing::info!(kind = error.kind.code(), attempt, delay_ms = delay.as_millis() as u64, "retrying the provider");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// Reads the stream until its first visible output (text, reasoning or a tool call) so that an
/// error before it can still be retried; returns a stream that replays what was read.
async fn until_first_output(mut stream: ChatStream) -> Result<ChatStream, ProviderError> {
    let mut seen = VecDeque::new();
    while let Some(item) = stream.next().await {
        let event = item?;
        let visible = matches!(
            event,
            ChatEvent::Text(_) | ChatEvent::Reasoning(_) | ChatEvent::ToolCall(_) | ChatEvent::ReasoningSignature(_)
        );
        seen.push_back(event);
        if visible {
            break;
        }
    }
    Ok(Box::pin(stream::iter(seen.into_iter().map(Ok)).chain(stream)))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use loquat_core::Secret;
    use loquat_core::domain::Protocol;

    use super::*;

    fn fast() -> RetryPolicy {
        RetryPolicy {
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            ..RetryPolicy::default()
        }
    }

    fn events(items: Vec<Result<ChatEvent, ProviderError>>) -> ChatStream {
        Box::pin(stream::iter(items))
    }

    fn error(kind: ProviderErrorKind) -> ProviderError {
        ProviderError::new(kind, "test")
    }

    async fn collect(stream: ChatStream) -> Vec<ChatEvent> {
        stream.filter_map(|item| async move { item.ok() }).collect().await
    }

    #[tokio::test]
    async fn errors_before_output_are_retried_and_output_is_never_duplicated() {
        let calls = Arc::new(AtomicUsize::new(0));
        let endpoint = Endpoint::new(Protocol::OpenAi, "http://x", None);
        let counter = calls.clone();
        let stream = open_with_retries(&endpoint, fast(), move |_| {
            let call = counter.fetch_add(1, Ordering::SeqCst);
            async move {
                match call {
                    0 => Err(error(ProviderErrorKind::Unreachable)),
                    1 => Ok(events(vec![Err(error(ProviderErrorKind::Unavailable))])),
                    _ => Ok(events(vec![Ok(ChatEvent::Text("hi".into())), Ok(ChatEvent::Text("!".into()))])),
                }
            }
        })
        .await
        .expect("third attempt succeeds");
        assert_eq!(collect(stream).await, [ChatEvent::Text("hi".into()), ChatEvent::Text("!".into())]);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn an_error_after_output_is_not_retried() {
        let calls = Arc::new(AtomicUsize::new(0));
        let endpoint = Endpoint::new(Protocol::OpenAi, "http://x", None);
        let counter = calls.clone();
        let stream = open_with_retries(&endpoint, fast(), move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            async {
                Ok(events(vec![Ok(ChatEvent::Text("partial".into())), Err(error(ProviderErrorKind::Unavailable))]))
            }
        })
        .await
        .expect("opens");
        let items: Vec<_> = stream.collect().await;
        assert!(matches!(items[0], Ok(ChatEvent::Text(_))));
        assert!(items[1].is_err());
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_key_gives_way_to_the_next_and_bad_requests_are_final() {
        let mut endpoint = Endpoint::new(Protocol::OpenAi, "http://x", Some(Secret::new("bad")));
        endpoint.other_keys = vec![Secret::new("good")];
        let stream = open_with_retries(&endpoint, fast(), |endpoint| async move {
            match endpoint.api_key.as_ref().map(Secret::expose) {
                Some("good") => Ok(events(vec![Ok(ChatEvent::Text("ok".into()))])),
                _ => Err(error(ProviderErrorKind::InvalidKey)),
            }
        })
        .await
        .expect("the second key works");
        assert_eq!(collect(stream).await, [ChatEvent::Text("ok".into())]);

        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let result = open_with_retries(&Endpoint::new(Protocol::OpenAi, "http://x", None), fast(), move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            async { Err::<ChatStream, _>(error(ProviderErrorKind::BadRequest)) }
        })
        .await;
        assert_eq!(result.err().map(|e| e.kind), Some(ProviderErrorKind::BadRequest));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retry_after_is_honoured_within_reason() {
        let policy = RetryPolicy::default();
        assert_eq!(policy.delay(0, Some(Duration::from_secs(2))), Some(Duration::from_secs(2)));
        assert_eq!(policy.delay(0, Some(Duration::from_secs(120))), None);
        let backoff = policy.delay(2, None).expect("a delay");
        assert!(backoff >= Duration::from_millis(500) && backoff <= Duration::from_millis(1500), "{backoff:?}");
    }
}
