//! Newline-delimited JSON framing: splits a byte stream into its lines, whatever the reads
//! (a line split across reads, several lines in one read), with a bound on a line's length.
//! Blank lines are skipped, `\r\n` endings accepted, and a last line without `\n` kept.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use loquat_core::llm::ProviderError;

use super::FrameError;
use crate::errors;

/// The longest line accepted (a final chat line with a long tool call stays far below it).
pub(crate) const MAX_LINE_BYTES: usize = 4 * 1024 * 1024;

/// The lines of an NDJSON body, without their line ending. Ends after the first error: a failed
/// read, or a line over the limit (malformed).
pub(crate) struct Lines<S> {
    /// `None` once the body is over (or failed); dropping it releases the HTTP response.
    bytes: Option<S>,
    buffer: BytesMut,
    /// How much of `buffer` is known to hold no `\n`.
    searched: usize,
    max_line: usize,
}

impl<S> Lines<S> {
    pub(crate) fn new(bytes: S) -> Self {
        Self::with_limit(bytes, MAX_LINE_BYTES)
    }

    pub(crate) fn with_limit(bytes: S, max_line: usize) -> Self {
        Self { bytes: Some(bytes), buffer: BytesMut::new(), searched: 0, max_line }
    }

    /// The next complete line in the buffer, if there is one.
    fn next_buffered(&mut self) -> Option<Bytes> {
        while let Some(offset) = self.buffer[self.searched..].iter().position(|&byte| byte == b'\n') {
            let line = self.buffer.split_to(self.searched + offset + 1).freeze();
            self.searched = 0;
            if let Some(line) = trimmed(line) {
                return Some(line);
            }
        }
        self.searched = self.buffer.len();
        None
    }

    /// Ends the lines (after an error): the body is released and nothing more is yielded.
    fn end(&mut self) {
        self.bytes = None;
        self.buffer.clear();
        self.searched = 0;
    }

    fn too_long(&mut self) -> FrameError {
        self.end();
        FrameError::Malformed(errors::protocol(format!("the provider sent a line longer than {} bytes", self.max_line)))
    }
}

/// The line without its ending; `None` for a blank line.
fn trimmed(mut line: Bytes) -> Option<Bytes> {
    while line.last().is_some_and(|byte| matches!(byte, b'\n' | b'\r')) {
        line.truncate(line.len() - 1);
    }
    (!line.iter().all(u8::is_ascii_whitespace)).then_some(line)
}

impl<S> Stream for Lines<S>
where
    S: Stream<Item = Result<Bytes, ProviderError>> + Unpin,
{
    type Item = Result<Bytes, FrameError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            if let Some(line) = this.next_buffered() {
                // A whole line may arrive in one read: the bound holds for it too.
                if line.len() > this.max_line {
                    return Poll::Ready(Some(Err(this.too_long())));
                }
                return Poll::Ready(Some(Ok(line)));
            }
            if this.buffer.len() > this.max_line {
                return Poll::Ready(Some(Err(this.too_long())));
            }
            let Some(bytes) = this.bytes.as_mut() else {
                return Poll::Ready(None);
            };
            match ready!(bytes.poll_next_unpin(cx)) {
                Some(Ok(chunk)) => this.buffer.extend_from_slice(&chunk),
                Some(Err(error)) => {
                    this.end();
                    return Poll::Ready(Some(Err(FrameError::Transport(error))));
                }
                None => {
                    // The body is over: what is left is a last line without `\n` (a server
                    // that answered with one JSON object), or nothing.
                    this.bytes = None;
                    this.searched = 0;
                    let rest = this.buffer.split().freeze();
                    if let Some(line) = trimmed(rest) {
                        let line = if line.len() > this.max_line { Err(this.too_long()) } else { Ok(line) };
                        return Poll::Ready(Some(line));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::stream;

    use super::*;

    async fn lines(reads: &[&[u8]], max_line: usize) -> Vec<Result<String, ProviderError>> {
        let reads: Vec<Result<Bytes, ProviderError>> =
            reads.iter().map(|read| Ok(Bytes::copy_from_slice(read))).collect();
        Lines::with_limit(stream::iter(reads), max_line)
            .map(|line| line.map(|line| String::from_utf8_lossy(&line).into_owned()).map_err(ProviderError::from))
            .collect()
            .await
    }

    fn ok(items: Vec<Result<String, ProviderError>>) -> Vec<String> {
        items.into_iter().map(|item| item.expect("a line")).collect()
    }

    #[tokio::test]
    async fn lines_split_across_reads_and_several_in_one_read() {
        let got = lines(&[b"{\"a\":", b"1}\n{\"b\":2}\n{\"c\"", b":3}\n", b"\n{\"d\":4}\n"], 100).await;
        assert_eq!(ok(got), ["{\"a\":1}", "{\"b\":2}", "{\"c\":3}", "{\"d\":4}"]);
    }

    #[tokio::test]
    async fn crlf_blank_lines_and_a_last_line_without_newline() {
        let got = lines(&[b"one\r\n\r\n  \ntwo\r", b"\nthree"], 100).await;
        assert_eq!(ok(got), ["one", "two", "three"]);
        assert!(lines(&[b"\n\n", b""], 100).await.is_empty());
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_is_a_protocol_error() {
        let got = lines(&[b"0123456789", b"0123456789", b"\n"], 15).await;
        assert_eq!(got.len(), 1);
        let error = got.into_iter().next().and_then(Result::err).expect("an error");
        assert_eq!(error.kind, loquat_core::llm::ProviderErrorKind::Protocol);
        // A line of exactly the limit, with its newline, is fine; a longer one in one read is not.
        assert_eq!(ok(lines(&[b"0123456789", b"01234\r\nab\n"], 15).await), ["012345678901234", "ab"]);
        let got = lines(&[b"0123456789012345\nab\n"], 15).await;
        assert!(got.len() == 1 && got[0].is_err());
        assert!(lines(&[b"0123456789012345"], 15).await[0].is_err());
        let reads: Vec<Result<Bytes, ProviderError>> = vec![Ok(Bytes::from_static(b"0123456789012345\n"))];
        let got = Lines::with_limit(stream::iter(reads), 15).next().await;
        assert!(matches!(got, Some(Err(FrameError::Malformed(_)))), "an overlong line is malformed, not a failed read");
    }

    #[tokio::test]
    async fn a_read_error_ends_the_lines() {
        let reads = vec![Ok(Bytes::from_static(b"a\nb")), Err(errors::closed_early(Some("reset")))];
        let got: Vec<_> = Lines::new(stream::iter(reads)).collect().await;
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].as_ref().ok().map(|line| &line[..]), Some(&b"a"[..]));
        assert!(matches!(&got[1], Err(FrameError::Transport(error)) if error.detail.ends_with(": reset")));
    }
}
