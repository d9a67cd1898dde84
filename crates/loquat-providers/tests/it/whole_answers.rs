//! Servers that answer a streaming request with one JSON document — they ignored the request
//! to stream, or report an error with a 2xx status — give the same events (or error) as a
//! stream, in OpenAI's, Anthropic's and Gemini's shapes. A raw one-shot server plays them.

use loquat_core::domain::Protocol;
use loquat_core::llm::{ChatClient, ChatEvent, ChatMessage, ChatRequest, ChatRole, Endpoint, FinishReason};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::{client_without_retries, collect};

/// Answers one request with `200`, `Content-Type: application/json` and `body`; returns the
/// server's address.
async fn answer_once(body: &'static str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        let Ok((mut socket, _)) = listener.accept().await else { return };
        // Read the head and the body the client sends before answering.
        let mut request = Vec::new();
        let mut buffer = [0; 4096];
        while let Ok(read @ 1..) = socket.read(&mut buffer).await {
            request.extend_from_slice(&buffer[..read]);
            let text = String::from_utf8_lossy(&request);
            let Some(head_end) = text.find("\r\n\r\n") else { continue };
            let length = text[..head_end]
                .lines()
                .find_map(|line| {
                    line.to_ascii_lowercase().strip_prefix("content-length:").map(str::trim).map(str::to_owned)
                })
                .and_then(|length| length.parse::<usize>().ok())
                .unwrap_or(0);
            if request.len() >= head_end + 4 + length {
                break;
            }
        }
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = socket.write_all(head.as_bytes()).await;
        let _ = socket.write_all(body.as_bytes()).await;
        let _ = socket.shutdown().await;
    });
    format!("http://{addr}")
}

fn request(model: &str) -> ChatRequest {
    ChatRequest {
        model: model.to_owned(),
        messages: vec![ChatMessage::new(ChatRole::User, "Hi")],
        ..ChatRequest::default()
    }
}

#[tokio::test]
async fn a_whole_json_answer_gives_the_events_of_a_stream() {
    let cases = [
        (
            Protocol::OpenAi,
            "/v1",
            r#"{"object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"whole"},"finish_reason":"stop"}]}"#,
        ),
        (
            Protocol::Anthropic,
            "",
            r#"{"type":"message","role":"assistant","content":[{"type":"text","text":"whole"}],"stop_reason":"end_turn"}"#,
        ),
        (
            Protocol::Gemini,
            "/v1beta",
            r#"[{"candidates":[{"content":{"parts":[{"text":"whole"}],"role":"model"},"finishReason":"STOP"}]}]"#,
        ),
    ];
    for (protocol, path, body) in cases {
        let endpoint = Endpoint::new(protocol, format!("{}{path}", answer_once(body).await), None);
        let stream = client_without_retries().stream_chat(&endpoint, &request("m")).await.expect("an answer");
        let (events, error) = collect(stream).await;
        assert!(error.is_none(), "{protocol:?}: {error:?}");
        assert_eq!(
            events,
            vec![ChatEvent::Text("whole".into()), ChatEvent::Finish(FinishReason::Stop)],
            "{protocol:?}"
        );
    }
}

#[tokio::test]
async fn an_error_sent_with_a_2xx_status_is_that_error() {
    let body = r#"{"error":{"message":"The model is overloaded","type":"server_error"}}"#;
    let endpoint = Endpoint::new(Protocol::OpenAi, format!("{}/v1", answer_once(body).await), None);
    let error = client_without_retries().stream_chat(&endpoint, &request("m")).await.err().expect("an error");
    assert_eq!(error.detail, "The model is overloaded");
}
