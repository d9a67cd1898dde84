//! Server-sent events framing: the events of a body, with invalid UTF-8 and overlong lines
//! told apart from a failed read. Comments (keep-alives) never reach a handler.
//! [`sse_answer`] turns a 2xx answer to a streaming request into chat events, SSE or not.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes, BytesMut};
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

/// One server-sent event: its type (empty for the default, `message`) and its data (the
/// `data:` lines joined by `\n`). Ids and retry hints are of no use to a one-shot answer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Event {
    pub event: String,
    pub data: String,
}

/// The longest line accepted: an answer's chunk is a few KiB; this is a runaway.
const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;

/// The SSE events of a byte stream (WHATWG's event-stream format: lines ending in LF, CRLF or
/// CR, `:` comments, `field: value`, a blank line dispatching the event). Each byte is looked
/// at once: a burst of many events in one read costs what its bytes cost.
pub struct SseFrames<S> {
    bytes: S,
    buffer: BytesMut,
    /// How far `buffer` is known to hold no line end.
    scanned: usize,
    lines: Lines,
    /// The body ended (or failed): only what is buffered is left.
    ended: bool,
}

/// The event being read, line by line.
#[derive(Default)]
struct Lines {
    event: String,
    data: String,
    has_data: bool,
    /// The byte order mark may open the stream, once.
    started: bool,
}

impl<S> SseFrames<S> {
    pub fn new(bytes: S) -> Self {
        Self { bytes, buffer: BytesMut::new(), scanned: 0, lines: Lines::default(), ended: false }
    }

    /// Where the next complete line in the buffer ends, and the length of its terminator.
    fn next_line(&mut self) -> Option<(usize, usize)> {
        let found = self.buffer[self.scanned..].iter().position(|byte| matches!(byte, b'\n' | b'\r'));
        let Some(offset) = found else {
            self.scanned = self.buffer.len();
            return None;
        };
        let end = self.scanned + offset;
        let terminator = match self.buffer[end] {
            // A CR at the very end may be half of a CRLF: wait for the next byte.
            b'\r' if end + 1 == self.buffer.len() && !self.ended => {
                self.scanned = end;
                return None;
            }
            b'\r' if self.buffer.get(end + 1) == Some(&b'\n') => 2,
            _ => 1,
        };
        self.scanned = 0;
        Some((end, terminator))
    }
}

impl Lines {
    /// Takes one line into the event being read; a blank line completes it.
    fn line(&mut self, line: &[u8]) -> Result<Option<Event>, FrameError> {
        let mut line = std::str::from_utf8(line).map_err(|error| {
            FrameError::Malformed(errors::protocol(format!("the provider sent invalid UTF-8: {error}")))
        })?;
        if !std::mem::replace(&mut self.started, true) {
            line = line.strip_prefix('\u{feff}').unwrap_or(line);
        }
        if line.is_empty() {
            let data = std::mem::take(&mut self.data);
            let event = std::mem::take(&mut self.event);
            if !std::mem::replace(&mut self.has_data, false) {
                return Ok(None);
            }
            return Ok(Some(Event { event, data }));
        }
        if line.starts_with(':') {
            return Ok(None);
        }
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match field {
            "data" => {
                if std::mem::replace(&mut self.has_data, true) {
                    self.data.push('\n');
                }
                self.data.push_str(value);
            }
            "event" => value.clone_into(&mut self.event),
            _ => {}
        }
        Ok(None)
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
        let this = &mut *self;
        loop {
            while let Some((end, terminator)) = this.next_line() {
                // The line is read in place; the buffer's start then moves past it (no copy).
                let read = this.lines.line(&this.buffer[..end]);
                this.buffer.advance(end + terminator);
                match read {
                    Ok(None) => {}
                    Ok(Some(event)) => return Poll::Ready(Some(Ok(event))),
                    Err(error) => return Poll::Ready(Some(Err(error))),
                }
            }
            if this.ended {
                // An event the body did not finish with a blank line is not dispatched.
                return Poll::Ready(None);
            }
            if this.buffer.len() > MAX_LINE_BYTES {
                this.ended = true;
                let error = errors::protocol("the provider sent a line of server-sent events that does not end");
                return Poll::Ready(Some(Err(FrameError::Malformed(error))));
            }
            match ready!(this.bytes.poll_next_unpin(cx)) {
                Some(Ok(bytes)) => this.buffer.extend_from_slice(&bytes),
                Some(Err(error)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(FrameError::Transport(error))));
                }
                None => this.ended = true,
            }
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

    fn event(event: &str, data: &str) -> Event {
        Event { event: event.to_owned(), data: data.to_owned() }
    }

    async fn events(reads: Vec<&'static [u8]>) -> Vec<Event> {
        frames(reads.into_iter().map(Ok).collect()).await.into_iter().map(|frame| frame.expect("an event")).collect()
    }

    #[tokio::test]
    async fn events_are_read_as_the_standard_says() {
        let got = events(vec![
            b"\xef\xbb\xbfdata: one\n\n",
            b"event: delta\r\ndata:two\r\ndata:  three\r\n\r\n",
            b"data: four\r\rid: 7\nretry: 10\ndata\n\n",
            b": only a comment\n\n",
            b"event: lonely\n\n",
            b"data: unfinished",
        ])
        .await;
        assert_eq!(
            got,
            [event("", "one"), event("delta", "two\n three"), event("", "four"), event("", "")],
            "BOM, CRLF, CR, multi-line data, ids and retries ignored, a bare field, events without data \
             and an unfinished event at the end"
        );
    }

    #[tokio::test]
    async fn a_line_split_across_reads_is_one_line() {
        let got = events(vec![b"da", b"ta: h\xc3", b"\xa9llo\r", b"\n", b"\r", b"\ndata: x\n\n"]).await;
        assert_eq!(got, [event("", "h\u{e9}llo"), event("", "x")], "split characters and a split CRLF");
    }

    #[tokio::test]
    async fn a_burst_of_many_events_in_one_read_is_read_in_linear_time() {
        let burst: &'static [u8] = "data: {\"x\":1}\n\n".repeat(100_000).leak().as_bytes();
        let started = std::time::Instant::now();
        assert_eq!(events(vec![burst]).await.len(), 100_000);
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
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
