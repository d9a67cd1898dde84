//! MCP's legacy HTTP transport (protocol 2024-11-05), which many hosted servers still speak and
//! `rmcp` no longer has: the client opens an event stream; the server's first event,
//! `endpoint`, names where to post messages; each answer comes back as a `message` event.
//! The endpoint must be on the stream's own origin; events are bounded in size.

use std::borrow::Cow;
use std::future::Future;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap};
use rmcp::service::{RoleClient, RxJsonRpcMessage, TxJsonRpcMessage};
use rmcp::transport::Transport;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The longest event kept (a larger one ends the stream).
const MAX_EVENT_BYTES: usize = crate::mcp::MAX_MESSAGE_BYTES;

/// Why the transport failed.
#[derive(Debug)]
pub struct SseError(pub String);

impl std::fmt::Display for SseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SseError {}

/// A connected legacy-SSE session.
pub struct SseTransport {
    client: reqwest::Client,
    endpoint: reqwest::Url,
    headers: HeaderMap,
    incoming: mpsc::Receiver<RxJsonRpcMessage<RoleClient>>,
    reader: JoinHandle<()>,
}

impl Drop for SseTransport {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// One server-sent event.
#[derive(Debug, Default, PartialEq, Eq)]
struct Event {
    name: String,
    data: String,
}

/// Cuts a byte stream into events (`event:` and `data:` lines, ended by a blank line).
#[derive(Default)]
struct EventParser {
    pending: Vec<u8>,
}

impl EventParser {
    /// Takes bytes in; gives the events they complete.
    fn push(&mut self, bytes: &[u8]) -> Result<Vec<Event>, SseError> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut event = Event::default();
        let mut consumed = 0;
        // Where the bytes read again next time start: after the last line that left no
        // event half read.
        let mut boundary = 0;
        while let Some(end) = self.pending[consumed..].iter().position(|&b| b == b'\n') {
            let line = &self.pending[consumed..consumed + end];
            let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned();
            consumed += end + 1;
            if line.is_empty() {
                if event != Event::default() {
                    events.push(std::mem::take(&mut event));
                }
                boundary = consumed;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event.name = value.to_owned(),
                "data" => {
                    if !event.data.is_empty() {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                }
                _ => {}
            }
            if event == Event::default() {
                boundary = consumed;
            }
        }
        // An event not yet ended is read again with the next bytes.
        self.pending.drain(..boundary);
        if self.pending.len() > MAX_EVENT_BYTES {
            return Err(SseError("the server sent an event that is too large".to_owned()));
        }
        Ok(events)
    }
}

impl SseTransport {
    /// Opens the event stream at `url` and waits for the server to name its endpoint.
    pub async fn connect(client: reqwest::Client, url: &str, headers: HeaderMap) -> Result<Self, SseError> {
        let url = reqwest::Url::parse(url).map_err(|_| SseError(format!("\"{url}\" is not an address")))?;
        let response = client
            .get(url.clone())
            .headers(headers.clone())
            .header(ACCEPT, "text/event-stream")
            .send()
            .await
            .map_err(|error| SseError(format!("could not open the event stream: {error}")))?;
        if !response.status().is_success() {
            return Err(SseError(format!("the event stream answered {}", response.status())));
        }
        let mut body = response.bytes_stream();
        let mut parser = EventParser::default();
        let mut early = Vec::new();
        let endpoint = 'found: loop {
            let Some(chunk) = body.next().await else {
                return Err(SseError("the event stream ended before naming its endpoint".to_owned()));
            };
            let chunk = chunk.map_err(|error| SseError(format!("the event stream broke: {error}")))?;
            for event in parser.push(&chunk)? {
                if event.name == "endpoint" {
                    break 'found event.data;
                }
                early.push(event);
            }
        };
        let endpoint = url.join(endpoint.trim()).map_err(|_| SseError("the endpoint is not an address".to_owned()))?;
        if endpoint.origin() != url.origin() {
            return Err(SseError("the server named an endpoint on another origin".to_owned()));
        }
        let (sender, incoming) = mpsc::channel(64);
        let reader = tokio::spawn(async move {
            let deliver = |event: Event| {
                let sender = sender.clone();
                async move {
                    if event.name != "message" && !event.name.is_empty() {
                        return true;
                    }
                    match serde_json::from_str::<RxJsonRpcMessage<RoleClient>>(&event.data) {
                        Ok(message) => sender.send(message).await.is_ok(),
                        Err(error) => {
                            tracing::debug!(%error, "an MCP server sent an event that is not a message");
                            true
                        }
                    }
                }
            };
            for event in early {
                if !deliver(event).await {
                    return;
                }
            }
            while let Some(Ok(chunk)) = body.next().await {
                let Ok(events) = parser.push(&chunk) else { return };
                for event in events {
                    if !deliver(event).await {
                        return;
                    }
                }
            }
        });
        Ok(Self { client, endpoint, headers, incoming, reader })
    }
}

impl Transport<RoleClient> for SseTransport {
    type Error = SseError;

    fn name() -> Cow<'static, str> {
        "legacy-sse".into()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), SseError>> + Send + 'static {
        let request = self
            .client
            .post(self.endpoint.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .json(&item);
        async move {
            let response = request.send().await.map_err(|error| SseError(format!("could not post: {error}")))?;
            if response.status().is_success() {
                Ok(())
            } else {
                Err(SseError(format!("the server refused a message: {}", response.status())))
            }
        }
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        self.incoming.recv()
    }

    async fn close(&mut self) -> Result<(), SseError> {
        self.reader.abort();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_cut_across_chunks() {
        let mut parser = EventParser::default();
        assert_eq!(parser.push(b"event: endpoint\r\ndata: /messages/?session_id=1").expect("ok"), vec![]);
        let events = parser.push(b"\r\n\r\n: comment\n\nevent: message\ndata: {\"a\":\ndata: 1}\n\n").expect("ok");
        assert_eq!(
            events,
            vec![
                Event { name: "endpoint".into(), data: "/messages/?session_id=1".into() },
                Event { name: "message".into(), data: "{\"a\":\n1}".into() },
            ]
        );
        let events = parser.push(b"data: 2\n\ndata: 3").expect("ok");
        assert_eq!(events, vec![Event { name: String::new(), data: "2".into() }]);
        assert_eq!(parser.push(b"\n\n").expect("ok"), vec![Event { name: String::new(), data: "3".into() }]);
        assert!(parser.push(&vec![b'x'; MAX_EVENT_BYTES + 1]).is_err());
    }
}
