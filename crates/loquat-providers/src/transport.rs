//! The toolbox every protocol module calls through: [`Http`] (a pooled client, its limits and
//! SSRF guard; requests leave through [`Http::send`], where guard refusals become errors), URL
//! joining, bounded body reads and the JSON content-type check. Protocol modules import this,
//! never the dispatcher (`http`), so that the dispatcher alone knows every protocol.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use loquat_core::llm::{ProviderError, ProviderErrorKind};
use reqwest::header::CONTENT_TYPE;

use crate::errors;
use crate::ssrf::{self, Guard, Refusal};

/// What a protocol module needs to make calls: the pooled client, the non-streaming limits,
/// and for the guarded client its SSRF guard. Requests leave through [`Http::send`].
#[derive(Debug, Clone)]
pub(crate) struct Http {
    pub client: reqwest::Client,
    pub non_streaming_timeout: Duration,
    pub max_error_body_bytes: usize,
    /// Checks every URL before it is sent; `None` for the trusted client.
    pub guard: Option<Arc<Guard>>,
}

impl Http {
    /// Sends a request built from `self.client`; every protocol module sends through here. The
    /// guarded client checks the final URL first (the one the protocol module built, defaults
    /// included); its refusals, before sending or from the resolver or a redirect, are
    /// `BadRequest` naming the host only.
    pub async fn send(&self, builder: reqwest::RequestBuilder) -> Result<reqwest::Response, ProviderError> {
        // The id of the request that caused this call, for the provider's (or a proxy's) logs;
        // `x-client-request-id` is OpenAI's name for it.
        let builder = match loquat_core::request::current() {
            Some(id) => builder.header("x-request-id", &*id).header("x-client-request-id", &*id),
            None => builder,
        };
        let (client, request) = builder.build_split();
        let request = request.map_err(|error| {
            // reqwest refuses some URLs itself (`file:///…`): report them as the guard would.
            let refusal =
                self.guard.as_ref().zip(error.url()).and_then(|(guard, url)| guard.policy().check_url(url).err());
            refusal.map_or_else(|| errors::transport(error), refused)
        })?;
        if let Some(guard) = &self.guard {
            guard.check(request.url()).await.map_err(refused)?;
        }
        client.execute(request).await.map_err(|error| match ssrf::refusal_in(&error) {
            Some(refusal) => refused(refusal),
            None => errors::transport(error),
        })
    }
}

fn refused(refusal: Refusal) -> ProviderError {
    ProviderError::new(ProviderErrorKind::BadRequest, refusal.to_string())
}

/// `{base_url}/{path}` with exactly one slash between them.
pub(crate) fn join_url(base_url: &str, path: &str) -> String {
    format!("{}/{}", base_url.trim().trim_end_matches('/'), path.trim_start_matches('/'))
}

/// Reads at most `limit` bytes of the body; the rest is left unread (and the connection
/// dropped with the response). Returns what was read and whether the body was cut.
pub(crate) async fn read_bounded(
    response: &mut reqwest::Response,
    limit: usize,
) -> Result<(Bytes, bool), reqwest::Error> {
    let mut buffer = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = limit - buffer.len();
        if chunk.len() > room {
            buffer.extend_from_slice(&chunk[..room]);
            return Ok((Bytes::from(buffer), true));
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok((Bytes::from(buffer), false))
}

/// Whether the answer to a streaming request is one JSON document: a server that ignored the
/// request to stream, or an error sent with a 2xx status.
pub(crate) fn is_json(response: &reqwest::Response) -> bool {
    let content_type = response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok());
    content_type.is_some_and(|value| value.trim_start().to_ascii_lowercase().starts_with("application/json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_join_with_one_slash() {
        assert_eq!(
            join_url("https://api.openai.com/v1", "chat/completions"),
            "https://api.openai.com/v1/chat/completions"
        );
        assert_eq!(join_url("http://h/v1/ ", "/models"), "http://h/v1/models");
        assert_eq!(join_url("http://h/v1//", "models"), "http://h/v1/models");
    }
}

/// How a protocol sends its API key.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KeyHeader {
    /// `Authorization: Bearer <key>` (OpenAI and compatible servers, Ollama behind a proxy).
    Bearer,
    /// The key alone in a header of the protocol's own (`x-api-key`, `x-goog-api-key`,
    /// `api-key`).
    Named(&'static str),
}

/// Adds the endpoint's key (if it has one) in the header the protocol wants, marked sensitive so
/// it never shows in debug output. A key that cannot be a header value is an `InvalidKey`.
pub(crate) fn with_key(
    builder: reqwest::RequestBuilder,
    endpoint: &loquat_core::llm::Endpoint,
    header: KeyHeader,
) -> Result<reqwest::RequestBuilder, ProviderError> {
    let Some(key) = endpoint.api_key.as_ref().filter(|key| !key.is_empty()) else {
        return Ok(builder);
    };
    let value = match header {
        KeyHeader::Bearer => reqwest::header::HeaderValue::try_from(format!("Bearer {}", key.expose())),
        KeyHeader::Named(_) => reqwest::header::HeaderValue::try_from(key.expose()),
    };
    let mut value = value.map_err(|_| {
        let detail = "the API key contains characters that cannot be sent in an HTTP header";
        ProviderError::new(ProviderErrorKind::InvalidKey, detail)
    })?;
    value.set_sensitive(true);
    Ok(match header {
        KeyHeader::Bearer => builder.header(reqwest::header::AUTHORIZATION, value),
        KeyHeader::Named(name) => builder.header(name, value),
    })
}

/// A stream that fails with `Timeout` when its inner stream stays silent longer than `limit`
/// (for the few streams no consumer bounds: model downloads).
pub(crate) struct IdleTimeout<S> {
    inner: S,
    limit: std::time::Duration,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
    ended: bool,
}

impl<S> IdleTimeout<S> {
    pub(crate) fn new(inner: S, limit: std::time::Duration) -> Self {
        Self { inner, limit, sleep: Box::pin(tokio::time::sleep(limit)), ended: false }
    }
}

impl<S, T> futures_util::Stream for IdleTimeout<S>
where
    S: futures_util::Stream<Item = Result<T, ProviderError>> + Unpin,
{
    type Item = Result<T, ProviderError>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        use std::task::Poll;
        let this = &mut *self;
        if this.ended {
            return Poll::Ready(None);
        }
        match std::pin::Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(item) => {
                let deadline = tokio::time::Instant::now() + this.limit;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(item)
            }
            Poll::Pending if this.sleep.as_mut().poll(cx).is_ready() => {
                this.ended = true;
                Poll::Ready(Some(Err(ProviderError::new(
                    ProviderErrorKind::Timeout,
                    "the provider stopped responding",
                ))))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod idle_tests {
    use futures_util::StreamExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_silent_stream_times_out() {
        let silent = futures_util::stream::pending::<Result<u8, ProviderError>>();
        let mut stream = IdleTimeout::new(silent, std::time::Duration::from_secs(5));
        let error = stream.next().await.expect("an item").expect_err("a timeout");
        assert_eq!(error.kind, ProviderErrorKind::Timeout);
        assert!(stream.next().await.is_none());
        let talking = futures_util::stream::iter([Ok::<u8, ProviderError>(1), Ok(2)]);
        let items: Vec<_> = IdleTimeout::new(talking, std::time::Duration::from_secs(5)).collect().await;
        assert_eq!(items.len(), 2);
    }
}
