//! Server-sent events framing (eventsource-stream): the events of a body, with invalid UTF-8
//! and invalid SSE told apart from a failed read. Comments (keep-alives) never reach a handler.
//! [`sse_answer`] turns a 2xx answer to a streaming request into chat events, SSE or not.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use eventsource_stream::{Event, EventStream, EventStreamError};
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use loquat_core::llm::{ChatEvent, ChatStream, ProviderError};

use super::{EventAdapter, EventHandler, FrameError};
use crate::errors;
use crate::transport::{is_json, read_bounded};

/// A whole (non-streamed) JSON answer may be this large.
const MAX_JSON_BODY_BYTES: usize = 8 * 1024 * 1024;

/// The chat events of a 2xx answer to a streaming request: its SSE events through `handler`,
/// or, when the answer is one JSON document (a server that ignored the request to stream, or
/// an error sent with a 2xx status), the events `whole` reads from that document.
pub(crate) async fn sse_answer<H>(
    mut response: reqwest::Response,
    handler: H,
    whole: impl FnOnce(&[u8], H) -> Result<Vec<ChatEvent>, ProviderError>,
) -> Result<ChatStream, ProviderError>
where
    H: EventHandler<Frame = Event> + Send + Unpin + 'static,
{
    if is_json(&response) {
        let (body, cut) = read_bounded(&mut response, MAX_JSON_BODY_BYTES).await.map_err(errors::body)?;
        if cut {
            return Err(errors::protocol("the provider's JSON answer is too large"));
        }
        let events = whole(&body, handler)?;
        return Ok(Box::pin(stream::iter(events.into_iter().map(Ok))));
    }
    let bytes = response.bytes_stream().map_err(errors::body);
    Ok(Box::pin(EventAdapter::sse(Box::pin(bytes), handler)))
}

/// The SSE events of a byte stream.
pub(crate) struct SseFrames<S>(EventStream<S>);

impl<S> SseFrames<S> {
    pub(crate) fn new(bytes: S) -> Self {
        Self(EventStream::new(bytes))
    }
}

impl<S, H: EventHandler<Frame = Event>> EventAdapter<SseFrames<S>, H> {
    /// The chat events of an SSE body.
    pub(crate) fn sse(bytes: S, handler: H) -> Self {
        Self::new(SseFrames::new(bytes), handler)
    }
}

impl<S> Stream for SseFrames<S>
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Unpin,
{
    type Item = Result<Event, FrameError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let frame = ready!(self.0.poll_next_unpin(cx));
        Poll::Ready(frame.map(|frame| frame.map_err(frame_error)))
    }
}

fn frame_error(error: EventStreamError<ProviderError>) -> FrameError {
    match error {
        EventStreamError::Transport(error) => FrameError::Transport(error),
        EventStreamError::Utf8(error) => {
            FrameError::Malformed(errors::protocol(format!("the provider sent invalid UTF-8: {error}")))
        }
        EventStreamError::Parser(error) => {
            FrameError::Malformed(errors::protocol(format!("the provider sent invalid server-sent events: {error}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use loquat_core::llm::ProviderErrorKind;

    use super::*;

    async fn frames(reads: Vec<Result<&'static [u8], ProviderError>>) -> Vec<Result<Event, FrameError>> {
        let reads = reads.into_iter().map(|read| read.map(Bytes::from_static));
        SseFrames::new(stream::iter(reads)).collect().await
    }

    #[tokio::test]
    async fn comments_are_skipped_and_failed_reads_are_transport_errors() {
        let got = frames(vec![Ok(b": keep-alive\n\ndata: a\n\n"), Err(errors::closed_early(Some("reset")))]).await;
        assert_eq!(got.len(), 2);
        assert!(matches!(&got[0], Ok(event) if event.data == "a"));
        assert!(matches!(&got[1], Err(FrameError::Transport(error)) if error.detail.ends_with(": reset")));
    }

    #[tokio::test]
    async fn invalid_utf8_is_malformed() {
        let got = frames(vec![Ok(b"data: a\n\n"), Ok(b"data: \xff\xfe\n\n")]).await;
        assert!(matches!(&got[0], Ok(event) if event.data == "a"));
        let Some(Err(FrameError::Malformed(error))) = got.into_iter().nth(1) else {
            panic!("a malformed frame");
        };
        assert_eq!(error.kind, ProviderErrorKind::Protocol);
        assert!(error.detail.starts_with("the provider sent invalid UTF-8"), "{}", error.detail);
    }
}
