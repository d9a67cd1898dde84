//! The streamed body of one fake chat completion: plays a `Reply` script as SSE frames built
//! from shared, pre-rendered pieces (no allocation per chunk), honours delays and endings, and
//! counts the stream as completed or cancelled (dropped before the script finished).

use std::future::Future;
use std::io;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

use super::Shared;
use super::reply::{Ending, Script};

const ROLE: &[u8] =
    b"\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n";
const DELTA_OPEN: &[u8] = b"\"choices\":[{\"index\":0,\"delta\":{";
const DELTA_CLOSE: &[u8] = b"},\"finish_reason\":null}]}\n\n";
const DONE: &[u8] = b"data: [DONE]\n\n";
const SERVER_ERROR: &[u8] = b"data: {\"error\":{\"message\":\"The server had an error while processing your request. \
Sorry about that!\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n";

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Role,
    Delta(usize),
    Finish,
    Usage,
    Done,
    Fail,
    Disconnect,
    Abort,
    Stall,
    End,
}

/// The SSE body: each frame is yielded as up to four shared `Bytes` (the per-request head,
/// static JSON, a pre-rendered delta, static JSON), which hyper writes out together.
pub(super) struct ReplyStream {
    script: Arc<Script>,
    /// `data: {"id":…,"object":"chat.completion.chunk","created":…,"model":…,` for this request.
    head: Bytes,
    include_usage: bool,
    step: Step,
    delay_done: bool,
    sleep: Option<Pin<Box<Sleep>>>,
    sleeping: bool,
    parts: [Bytes; 4],
    next_part: usize,
    outcome: Outcome,
}

impl ReplyStream {
    pub fn new(script: Arc<Script>, head: Bytes, include_usage: bool, outcome: Outcome) -> Self {
        let parts = [Bytes::new(), Bytes::new(), Bytes::new(), Bytes::new()];
        let (sleep, sleeping, delay_done) = (None, false, false);
        Self {
            script,
            head,
            include_usage,
            step: Step::Role,
            delay_done,
            sleep,
            sleeping,
            parts,
            next_part: 4,
            outcome,
        }
    }

    /// The step that follows `i` delta chunks.
    fn after_deltas(&self, i: usize) -> Step {
        let ending = match self.script.ending {
            Ending::Complete => Step::Finish,
            Ending::FailAfter(n) if i >= n => return Step::Fail,
            Ending::DisconnectAfter(n) if i >= n => return Step::Disconnect,
            Ending::StallAfter(n) if i >= n => return Step::Stall,
            Ending::FailAfter(_) => Step::Fail,
            Ending::DisconnectAfter(_) => Step::Disconnect,
            Ending::StallAfter(_) => Step::Stall,
        };
        if i < self.script.deltas.len() { Step::Delta(i) } else { ending }
    }

    fn delay(&self) -> Duration {
        match self.step {
            Step::Role => self.script.first_chunk_delay,
            Step::Delta(i) if i > 0 => self.script.delay_between_chunks,
            _ => Duration::ZERO,
        }
    }

    fn frame(&mut self, parts: [Bytes; 4]) {
        self.parts = parts;
        self.next_part = 0;
    }

    fn advance(&mut self, step: Step) {
        self.step = step;
        self.delay_done = false;
    }
}

impl Stream for ReplyStream {
    type Item = Result<Bytes, io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(part) = this.parts.get_mut(this.next_part) {
                this.next_part += 1;
                let part = mem::take(part);
                if !part.is_empty() {
                    return Poll::Ready(Some(Ok(part)));
                }
                continue;
            }
            if !this.delay_done {
                let delay = this.delay();
                if !delay.is_zero() {
                    let deadline = Instant::now() + delay;
                    let sleep = this.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                    if !this.sleeping {
                        sleep.as_mut().reset(deadline);
                        this.sleeping = true;
                    }
                    ready!(sleep.as_mut().poll(cx));
                    this.sleeping = false;
                }
                this.delay_done = true;
            }
            let (head, none) = (this.head.clone(), Bytes::new());
            match this.step {
                Step::Role => {
                    this.frame([head, Bytes::from_static(ROLE), none.clone(), none]);
                    this.advance(this.after_deltas(0));
                }
                Step::Delta(i) => {
                    let delta = this.script.deltas.get(i).cloned().unwrap_or_default();
                    this.frame([head, Bytes::from_static(DELTA_OPEN), delta, Bytes::from_static(DELTA_CLOSE)]);
                    this.advance(this.after_deltas(i + 1));
                }
                Step::Finish => {
                    let finish = this.script.finish_frame.clone();
                    this.frame([head, finish, none.clone(), none]);
                    let usage = this.include_usage && this.script.usage_frame.is_some();
                    this.advance(if usage { Step::Usage } else { Step::Done });
                }
                Step::Usage => {
                    let usage = this.script.usage_frame.clone().unwrap_or_default();
                    this.frame([head, usage, none.clone(), none]);
                    this.advance(Step::Done);
                }
                Step::Done | Step::Fail => {
                    let last = Bytes::from_static(if this.step == Step::Done { DONE } else { SERVER_ERROR });
                    this.frame([last, none.clone(), none.clone(), none]);
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
                    let error = io::Error::new(io::ErrorKind::ConnectionAborted, "scripted disconnect");
                    return Poll::Ready(Some(Err(error)));
                }
                // Nothing more, ever; the stream ends when the client goes away and hyper drops it.
                Step::Stall => return Poll::Pending,
                Step::End => return Poll::Ready(None),
            }
        }
    }
}
