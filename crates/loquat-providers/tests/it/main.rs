//! loquat-providers' single integration-test binary: `HttpChatClient` against the fake
//! upstreams of loquat-test-support, one module per wire protocol, with shared helpers here.

mod conformance;
mod embeddings;
mod openai;
mod ssrf;
mod whole_answers;

use futures_util::StreamExt;
use loquat_core::llm::{ChatEvent, ChatStream, ProviderError};
use loquat_providers::{HttpChatClient, HttpClientSettings};

pub fn client() -> HttpChatClient {
    HttpChatClient::new(&HttpClientSettings::default()).expect("the HTTP client builds")
}

/// A client that reports the first failure as it is (for tests of the error mapping).
pub fn client_without_retries() -> HttpChatClient {
    let retry = loquat_providers::RetryPolicy { max_retries: 0, ..Default::default() };
    HttpChatClient::new(&HttpClientSettings { retry, ..HttpClientSettings::default() }).expect("the HTTP client builds")
}

/// Drains a stream: the events before the first error, and that error.
pub async fn collect(mut stream: ChatStream) -> (Vec<ChatEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(error) => {
                assert!(stream.next().await.is_none(), "the stream ends after an error");
                return (events, Some(error));
            }
        }
    }
    (events, None)
}

/// The concatenated text events; asserts none is empty.
pub fn text_of(events: &[ChatEvent]) -> String {
    let mut text = String::new();
    for event in events {
        if let ChatEvent::Text(piece) = event {
            assert!(!piece.is_empty(), "empty text event in {events:?}");
            text.push_str(piece);
        }
    }
    text
}

pub fn reasoning_of(events: &[ChatEvent]) -> String {
    let pieces = events.iter().filter_map(|event| match event {
        ChatEvent::Reasoning(piece) => Some(piece.as_str()),
        _ => None,
    });
    pieces.collect()
}
