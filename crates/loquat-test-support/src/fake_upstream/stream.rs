//! The streamed body of one fake answer, whatever the protocol: plays a [`Script`] through a
//! protocol's [`Render`] (which turns the opening, each chunk and the ending into wire bytes),
//! honours delays and endings, and counts the stream as completed or cancelled (dropped before
//! the script finished). Rendered parts are shared `Bytes` queued in a reused buffer and joined
//! into one body frame per step (one HTTP chunk per event, as real servers send them).

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::Shared;
use super::reply::{Ending, Script};

/// Counts a stream (or a non-streamed answer) as completed, or as cancelled when dropped first.
pub(super) struct Outcome {
    shared: Arc<Shared>,
    done: bool,
}

impl Outcome {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared, done: false }
    }

    /// The script has run to its end (including scripted failures and disconnects).
    pub fn finish(&mut self) {
        if !self.done {
            self.done = true;
            self.shared.completed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl Drop for Outcome {
    fn drop(&mut self) {
        if !self.done {
            self.shared.cancelled.send_modify(|count| *count += 1);
        }
    }
}

/// What a renderer queues: bytes, or a point where the body pauses so that hyper writes out
/// what came before on its own (the next bytes go in another TCP write).
enum Part {
    Data(Bytes),
    Flush,
}

/// The parts rendered but not yet handed to hyper.
#[derive(Default)]
pub(super) struct Out(VecDeque<Part>);

impl Out {
    pub fn push(&mut self, bytes: impl Into<Bytes>) {
        let bytes = bytes.into();
        if !bytes.is_empty() {
            self.0.push_back(Part::Data(bytes));
        }
    }

    pub fn push_static(&mut self, bytes: &'static [u8]) {
        self.push(Bytes::from_static(bytes));
    }

    /// Queues a frame as two TCP writes cut in its middle (any byte: inside the JSON, even
    /// inside a multi-byte character), as a busy network delivers it.
    pub fn push_split(&mut self, frame: impl Into<Bytes>) {
        let mut first = frame.into();
        let second = first.split_off(first.len() / 2);
        self.push(first);
        self.0.push_back(Part::Flush);
        self.push(second);
    }

    fn pop(&mut self) -> Option<Part> {
        self.0.pop_front()
    }

    /// `first` and the data queued right after it, as one body frame: hyper writes each frame
    /// as an HTTP chunk of its own, and real servers (OpenAI's, vLLM, Ollama) send an event in
    /// one chunk, not in the pieces a renderer assembles it from. A [`Out::push_split`] still
    /// cuts a frame in two.
    fn frame(&mut self, first: Bytes) -> Bytes {
        if !matches!(self.0.front(), Some(Part::Data(_))) {
            return first;
        }
        let mut frame = BytesMut::from(first);
        while let Some(Part::Data(next)) = self.0.front() {
            frame.extend_from_slice(next);
            self.0.pop_front();
        }
        frame.freeze()
    }
}

/// A protocol's wire format for a streamed answer.
pub(super) trait Render: Send + Unpin + 'static {
    /// What comes before the first chunk (after the first-chunk delay).
    fn open(&mut self, _script: &Script, _out: &mut Out) {}
    /// Chunk `index` of the script (see [`Script::piece`]).
    fn chunk(&mut self, script: &Script, index: usize, out: &mut Out);
    /// The end of a complete answer: finish reason, usage, end of stream.
    fn finish(&mut self, script: &Script, out: &mut Out);
    /// The protocol's in-stream server error, the last thing sent.
    fn fail(&mut self, script: &Script, out: &mut Out);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Open,
    Chunk(usize),
    Finish,
    Fail,
    Disconnect,
    Abort,
    Stall,
    End,
}

/// The streamed body: the script played through a renderer.
pub(super) struct ReplyStream<R> {
    script: Arc<Script>,
    render: R,
    out: Out,
    step: Step,
    delay_done: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    sleeping: bool,
    outcome: Outcome,
}

impl<R: Render> ReplyStream<R> {
    pub fn new(script: Arc<Script>, render: R, outcome: Outcome) -> Self {
        let out = Out(VecDeque::with_capacity(8));
        Self { script, render, out, step: Step::Open, delay_done: false, sleep: None, sleeping: false, outcome }
    }

    /// The response streaming this body with the protocol's content type.
    pub fn into_response(self, content_type: &'static str) -> Response {
        let mut response = Body::from_stream(self).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response
    }

    /// The step that follows `i` chunks.
    fn after_chunks(&self, i: usize) -> Step {
        let ending = match self.script.ending {
            Ending::Complete => Step::Finish,
            Ending::FailAfter(n) if i >= n => return Step::Fail,
            Ending::DisconnectAfter(n) if i >= n => return Step::Disconnect,
            Ending::StallAfter(n) if i >= n => return Step::Stall,
            Ending::FailAfter(_) => Step::Fail,
            Ending::DisconnectAfter(_) => Step::Disconnect,
            Ending::StallAfter(_) => Step::Stall,
        };
        if i < self.script.chunk_count() { Step::Chunk(i) } else { ending }
    }

    fn delay(&self) -> Duration {
        match self.step {
            Step::Open => self.script.first_chunk_delay,
            Step::Chunk(i) if i > 0 => self.script.delay_between_chunks,
            _ => Duration::ZERO,
        }
    }

    fn poll_sleep(&mut self, cx: &mut Context<'_>, delay: Duration) -> Poll<()> {
        let deadline = Instant::now() + delay;
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.sleeping {
            sleep.as_mut().reset(deadline);
            self.sleeping = true;
        }
        ready!(sleep.as_mut().poll(cx));
        self.sleeping = false;
        Poll::Ready(())
    }

    fn advance(&mut self, step: Step) {
        self.step = step;
        self.delay_done = false;
    }
}

impl<R: Render> Stream for ReplyStream<R> {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match this.out.pop() {
                Some(Part::Data(bytes)) => return Poll::Ready(Some(Ok(this.out.frame(bytes)))),
                // hyper writes out what it holds when the body is pending.
                Some(Part::Flush) => {
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                None => {}
            }
            if !this.delay_done {
                let delay = this.delay();
                if !delay.is_zero() {
                    ready!(this.poll_sleep(cx, delay));
                }
                this.delay_done = true;
            }
            match this.step {
                Step::Open => {
                    this.render.open(&this.script, &mut this.out);
                    this.advance(this.after_chunks(0));
                }
                Step::Chunk(i) => {
                    this.render.chunk(&this.script, i, &mut this.out);
                    this.advance(this.after_chunks(i + 1));
                }
                Step::Finish | Step::Fail => {
                    if this.step == Step::Finish {
                        this.render.finish(&this.script, &mut this.out);
                    } else {
                        this.render.fail(&this.script, &mut this.out);
                    }
                    this.outcome.finish();
                    this.advance(Step::End);
                }
                // hyper discards buffered output when the body fails, so first let it flush the
                // chunks already produced (it does when the body is pending), then fail.
                Step::Disconnect => {
                    this.advance(Step::Abort);
                    cx.waker().wake_by_ref();
                    return Poll::Pending;
                }
                Step::Abort => {
                    this.outcome.finish();
                    this.advance(Step::End);
                    return Poll::Ready(Some(Err(disconnect())));
                }
                // Nothing more, ever; the stream ends when the client goes away and hyper drops it.
                Step::Stall => return Poll::Pending,
                Step::End => return Poll::Ready(None),
            }
        }
    }
}

fn disconnect() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionAborted, "scripted disconnect")
}

/// How a non-streamed answer ends, after the time the stream would have taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Whole {
    Complete,
    /// The protocol's server error (HTTP 500) is due.
    Failed,
    /// The answer breaks off: answer with [`broken_body`].
    Disconnected,
}

/// Waits as long as the stream would have taken and tells how the answer ends; never returns
/// for a stalling script (the client's timeout or cancellation ends it).
pub(super) async fn play_whole(script: &Script, outcome: &mut Outcome) -> Whole {
    let chunks = u32::try_from(script.chunk_count()).unwrap_or(u32::MAX);
    tokio::time::sleep(script.first_chunk_delay + script.delay_between_chunks * chunks.saturating_sub(1)).await;
    let whole = match script.ending {
        Ending::StallAfter(_) => return std::future::pending().await,
        Ending::FailAfter(_) => Whole::Failed,
        Ending::DisconnectAfter(_) => Whole::Disconnected,
        Ending::Complete => Whole::Complete,
    };
    outcome.finish();
    whole
}

/// A response whose body fails at once (the connection is cut).
pub(super) fn broken_body() -> Response {
    Body::from_stream(futures_util::stream::iter([Err::<Bytes, _>(disconnect())])).into_response()
}
