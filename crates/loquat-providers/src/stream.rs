//! One stream adapter for every protocol: a framing layer ([`sse`], [`ndjson`]) cuts the body
//! into frames and sorts its failures into transport and malformed ones; a protocol's
//! [`EventHandler`] turns each frame into [`ChatEvent`]s; [`EventAdapter`] runs the two and
//! owns the rules every protocol shares, so that a protocol only says what its frames mean.

pub(crate) mod ndjson;
pub(crate) mod sse;

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use futures_util::{Stream, StreamExt};
use loquat_core::llm::{ChatEvent, ProviderError};

use crate::errors;

/// What one protocol's frames mean. The adapter calls `frame` for each frame in order, then
/// `end` once if the stream ends cleanly.
pub(crate) trait EventHandler {
    /// One unit of the wire format: an SSE event, an NDJSON line.
    type Frame;

    /// Queues the chat events of one frame; `Ok(true)` when the stream is over (a `[DONE]`,
    /// a `message_stop`, a `done` line). An error fails the stream after the queued events.
    fn frame(&mut self, frame: Self::Frame, out: &mut VecDeque<ChatEvent>) -> Result<bool, ProviderError>;

    /// Whether the answer is already complete (it had its finish reason): a broken connection
    /// or a body that ends after this costs nothing.
    fn complete(&self) -> bool;

    /// Queues what is due when the stream ends cleanly (the finish, usage, whole tool calls).
    fn end(&mut self, out: &mut VecDeque<ChatEvent>);
}

/// Why a framing layer could not give the next frame.
#[derive(Debug)]
pub enum FrameError {
    /// Reading the body failed (a reset, a timeout): forgiven once the answer is complete.
    Transport(ProviderError),
    /// The bytes arrived but are not the framing (invalid UTF-8 or SSE, an overlong line).
    Malformed(ProviderError),
}

impl From<FrameError> for ProviderError {
    fn from(error: FrameError) -> Self {
        match error {
            FrameError::Transport(error) | FrameError::Malformed(error) => error,
        }
    }
}

/// A protocol's chat events from the frames of a body. A stream ends cleanly when the handler
/// says so, or when the body ends (or breaks) after the answer is complete; otherwise with
/// one error: the handler's, the framing's, or `Unavailable` for a body that ended early.
/// Events queued before a failure are delivered before it.
pub(crate) struct EventAdapter<F, H> {
    /// `None` once the body is over; dropping it releases the HTTP response.
    frames: Option<F>,
    handler: H,
    /// Events not yet handed out (a frame can carry several); reused for every frame.
    pending: VecDeque<ChatEvent>,
    /// The error to report once the events before it are out; then the stream ends.
    failure: Option<ProviderError>,
}

impl<F, H> EventAdapter<F, H> {
    pub(crate) fn new(frames: F, handler: H) -> Self {
        Self { frames: Some(frames), handler, pending: VecDeque::with_capacity(4), failure: None }
    }
}

impl<F, H> Stream for EventAdapter<F, H>
where
    F: Stream<Item = Result<H::Frame, FrameError>> + Unpin,
    H: EventHandler + Unpin,
{
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(event) = this.pending.pop_front() {
                return Poll::Ready(Some(Ok(event)));
            }
            let Some(frames) = this.frames.as_mut() else {
                return Poll::Ready(this.failure.take().map(Err));
            };
            let outcome = match ready!(frames.poll_next_unpin(cx)) {
                Some(Ok(frame)) => match this.handler.frame(frame, &mut this.pending) {
                    Ok(false) => continue,
                    Ok(true) => Ok(()),
                    Err(error) => Err(error),
                },
                Some(Err(FrameError::Transport(_))) | None if this.handler.complete() => Ok(()),
                Some(Err(error)) => Err(error.into()),
                None => Err(errors::closed_early(None)),
            };
            this.frames = None;
            match outcome {
                Ok(()) => this.handler.end(&mut this.pending),
                Err(error) => this.failure = Some(error),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream;
    use loquat_core::llm::{FinishReason, ProviderErrorKind};

    use super::*;

    /// Frames are words: `stop` completes the answer, `done` ends the stream, `bad` fails.
    #[derive(Default)]
    struct Words {
        stopped: bool,
        ends: usize,
    }

    impl EventHandler for Words {
        type Frame = &'static str;

        fn frame(&mut self, frame: &'static str, out: &mut VecDeque<ChatEvent>) -> Result<bool, ProviderError> {
            match frame {
                "stop" => self.stopped = true,
                "done" => return Ok(true),
                "bad" => return Err(errors::protocol("bad")),
                text => {
                    out.push_back(ChatEvent::Text(text.to_owned()));
                    out.push_back(ChatEvent::Text(text.to_uppercase()));
                }
            }
            Ok(false)
        }

        fn complete(&self) -> bool {
            self.stopped
        }

        fn end(&mut self, out: &mut VecDeque<ChatEvent>) {
            self.ends += 1;
            out.push_back(ChatEvent::Finish(FinishReason::Stop));
        }
    }

    type Frame = Result<&'static str, FrameError>;

    async fn run(frames: Vec<Frame>) -> Vec<Result<ChatEvent, ProviderError>> {
        EventAdapter::new(stream::iter(frames), Words::default()).collect().await
    }

    fn text(value: &str) -> ChatEvent {
        ChatEvent::Text(value.to_owned())
    }

    fn kinds(items: &[Result<ChatEvent, ProviderError>]) -> Vec<Result<&ChatEvent, ProviderErrorKind>> {
        items.iter().map(|item| item.as_ref().map_err(|error| error.kind)).collect()
    }

    fn reset() -> FrameError {
        FrameError::Transport(errors::closed_early(Some("reset")))
    }

    #[tokio::test]
    async fn a_clean_end_queues_the_end_once_and_later_frames_are_not_read() {
        let items = run(vec![Ok("a"), Ok("done"), Ok("late"), Err(reset())]).await;
        assert_eq!(kinds(&items), [Ok(&text("a")), Ok(&text("A")), Ok(&ChatEvent::Finish(FinishReason::Stop))]);
    }

    #[tokio::test]
    async fn a_body_that_ends_or_breaks_early_fails_unless_the_answer_is_complete() {
        let items = run(vec![Ok("a")]).await;
        assert_eq!(kinds(&items), [Ok(&text("a")), Ok(&text("A")), Err(ProviderErrorKind::Unavailable)]);
        let items = run(vec![Ok("a"), Err(reset())]).await;
        assert!(items[2].as_ref().is_err_and(|error| error.detail.ends_with(": reset")));
        assert_eq!(items.len(), 3);
        for ending in [vec![Ok("stop")], vec![Ok("stop"), Err(reset())]] {
            let items = run(ending).await;
            assert_eq!(kinds(&items), [Ok(&ChatEvent::Finish(FinishReason::Stop))]);
        }
    }

    #[tokio::test]
    async fn malformed_frames_fail_even_a_complete_answer_and_nothing_follows_an_error() {
        let malformed = FrameError::Malformed(errors::protocol("not SSE"));
        let items = run(vec![Ok("stop"), Err(malformed), Ok("b")]).await;
        assert_eq!(kinds(&items), [Err(ProviderErrorKind::Protocol)]);
        let items = run(vec![Ok("a"), Ok("bad"), Ok("b")]).await;
        assert_eq!(kinds(&items), [Ok(&text("a")), Ok(&text("A")), Err(ProviderErrorKind::Protocol)]);
    }
}
