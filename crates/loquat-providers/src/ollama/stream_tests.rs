//! Tests of Ollama's stream parsing over NDJSON transcripts written from the API reference:
//! text, thinking, tool calls, the final `done` line, errors mid-stream, early ends, and pull
//! progress.

use bytes::Bytes;
use futures_util::{StreamExt, stream};
use loquat_core::domain::TokenUsage;
use loquat_core::llm::{ChatEvent, FinishReason, ProviderError, ProviderErrorKind, PullProgress, ToolCall};

use super::{ChatHandler, PullLines, finish_reason};
use crate::errors;
use crate::stream::EventAdapter;
use crate::stream::ndjson::Lines;

type Reads = stream::Iter<std::vec::IntoIter<Result<Bytes, ProviderError>>>;

fn reads(reads: &[&[u8]]) -> Lines<Reads> {
    let reads: Vec<Result<Bytes, ProviderError>> = reads.iter().map(|read| Ok(Bytes::copy_from_slice(read))).collect();
    Lines::new(stream::iter(reads))
}

/// Parses `reads` (each one a TCP read) and collects the events, and the error that ended them.
async fn parse(parts: &[&[u8]]) -> (Vec<ChatEvent>, Option<ProviderError>) {
    let mut stream = EventAdapter::new(reads(parts), ChatHandler::default());
    let (mut events, mut error) = (Vec::new(), None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => events.push(event),
            Err(failure) => {
                assert!(error.is_none(), "one error at most");
                error = Some(failure);
            }
        }
    }
    (events, error)
}

fn chunk(message: &str) -> String {
    format!(
        "{{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T08:52:19.385406455-07:00\",\"message\":{message},\"done\":false}}\n"
    )
}

fn text_chunk(text: &str) -> String {
    chunk(&format!("{{\"role\":\"assistant\",\"content\":{}}}", serde_json::to_string(text).expect("json")))
}

fn done(reason: &str) -> String {
    format!(
        "{{\"model\":\"llama3.2\",\"created_at\":\"2023-08-04T19:22:45.499127Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"\"}},\"done_reason\":\"{reason}\",\"done\":true,\"total_duration\":4883583458,\"load_duration\":1334875,\"prompt_eval_count\":26,\"prompt_eval_duration\":342546000,\"eval_count\":282,\"eval_duration\":4535599000}}\n"
    )
}

fn text(value: &str) -> ChatEvent {
    ChatEvent::Text(value.to_owned())
}

fn usage(prompt: u32, completion: u32) -> ChatEvent {
    ChatEvent::Usage(TokenUsage { prompt_tokens: prompt, completion_tokens: completion, ..TokenUsage::default() })
}

#[tokio::test]
async fn plain_text_over_several_lines_then_usage_and_finish() {
    let body = format!("{}{}{}{}", text_chunk("The"), text_chunk(" sky"), text_chunk(" is blue."), done("stop"));
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events,
        vec![text("The"), text(" sky"), text(" is blue."), usage(26, 282), ChatEvent::Finish(FinishReason::Stop)]
    );
}

#[tokio::test]
async fn lines_split_across_reads_and_several_lines_in_one_read() {
    let body = format!("{}{}{}", text_chunk("héllo 👋"), text_chunk(" again"), done("stop"));
    let bytes = body.as_bytes();
    let emoji = body.find('👋').expect("emoji") + 2; // inside the 4-byte character
    let first_end = body.find('\n').expect("a line") + 1;
    // A line cut in the middle of a character, then the rest of it with two more lines.
    let (events, error) =
        parse(&[&bytes[..9], &bytes[9..emoji], &bytes[emoji..first_end + 5], &bytes[first_end + 5..]]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, vec![text("héllo 👋"), text(" again"), usage(26, 282), ChatEvent::Finish(FinishReason::Stop)]);
    // One byte at a time.
    let single: Vec<&[u8]> = bytes.chunks(1).collect();
    assert_eq!(parse(&single).await.0, events);
}

#[tokio::test]
async fn thinking_then_content() {
    let body = format!(
        "{}{}{}{}{}",
        chunk(r#"{"role":"assistant","content":"","thinking":"The user asks"}"#),
        chunk(r#"{"role":"assistant","content":"","thinking":" for 3 words."}"#),
        chunk(r#"{"role":"assistant","content":"Fluffy,"}"#),
        chunk(r#"{"role":"assistant","content":" quick, shy."}"#),
        done("stop"),
    );
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(
        events[..4],
        [
            ChatEvent::Reasoning("The user asks".into()),
            ChatEvent::Reasoning(" for 3 words.".into()),
            text("Fluffy,"),
            text(" quick, shy."),
        ]
    );
}

#[tokio::test]
async fn tool_calls_come_whole_with_ids() {
    let body = format!(
        "{}{}{}",
        chunk(
            r#"{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_current_weather","arguments":{"format":"celsius"}}}]}"#
        ),
        chunk(
            r#"{"role":"assistant","content":"","tool_calls":[{"function":{"index":1,"name":"get_time","arguments":{}}},{"id":"call_xyz","function":{"name":"noop"}}]}"#
        ),
        done("stop"),
    );
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    let call = |id: &str, name: &str, arguments: &str| {
        ChatEvent::ToolCall(ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() })
    };
    assert_eq!(
        events,
        vec![
            call("call_0", "get_current_weather", r#"{"format":"celsius"}"#),
            call("call_1", "get_time", "{}"),
            call("call_xyz", "noop", "{}"),
            usage(26, 282),
            ChatEvent::Finish(FinishReason::ToolCalls),
        ]
    );
}

#[tokio::test]
async fn a_whole_answer_on_the_done_line_and_no_counts() {
    // A server that ignored `stream: true`: one object, without a final newline.
    let body =
        r#"{"model":"llama3.2","message":{"role":"assistant","content":"Hello! How are you today?"},"done":true}"#;
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, vec![text("Hello! How are you today?"), ChatEvent::Finish(FinishReason::Stop)]);
}

#[tokio::test]
async fn done_reason_length_is_length_and_later_lines_are_ignored() {
    let body = format!("{}{}{}", text_chunk("cut"), done("length"), text_chunk("after"));
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(events, vec![text("cut"), usage(26, 282), ChatEvent::Finish(FinishReason::Length)]);
}

#[test]
fn finish_reasons() {
    assert_eq!(finish_reason(Some("stop"), false), FinishReason::Stop);
    assert_eq!(finish_reason(None, false), FinishReason::Stop);
    assert_eq!(finish_reason(Some("stop"), true), FinishReason::ToolCalls);
    assert_eq!(finish_reason(Some("length"), true), FinishReason::Length);
    assert_eq!(finish_reason(Some("unload"), false), FinishReason::Other);
}

#[tokio::test]
async fn an_error_line_mid_stream_fails_after_the_partial_text() {
    let body = format!(
        "{}{}\n",
        text_chunk("partial"),
        r#"{"error":"an error was encountered while running the model: unexpected EOF"}"#
    );
    let (events, error) = parse(&[body.as_bytes()]).await;
    assert_eq!(events, vec![text("partial")]);
    let error = error.expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unavailable);
    assert_eq!(error.detail, "an error was encountered while running the model: unexpected EOF");
    let (_, error) = parse(&[b"{\"error\":\"model 'llama9' not found, try pulling it first\"}\n"]).await;
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::ModelNotFound));
}

#[tokio::test]
async fn an_early_end_is_unavailable() {
    let (events, error) = parse(&[text_chunk("cut").as_bytes()]).await;
    assert_eq!(events, vec![text("cut")]);
    let error = error.expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unavailable);
    assert_eq!(error.detail, "the provider closed the stream before finishing");
    let (events, error) = parse(&[]).await;
    assert!(events.is_empty());
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::Unavailable));
}

#[tokio::test]
async fn a_transport_error_mid_stream_ends_with_that_error() {
    let reads = vec![Ok(Bytes::from(text_chunk("a"))), Err(errors::closed_early(Some("reset")))];
    let mut stream = EventAdapter::new(Lines::new(stream::iter(reads)), ChatHandler::default());
    assert_eq!(stream.next().await.map(Result::ok), Some(Some(text("a"))));
    let error = stream.next().await.and_then(Result::err).expect("an error");
    assert!(error.detail.ends_with(": reset"), "{}", error.detail);
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn lines_that_are_not_json_are_protocol_errors() {
    let (_, error) = parse(&[b"<html>Bad Gateway</html>\n"]).await;
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::Protocol));
    let (_, error) = parse(&[b"data: {\"choices\":[]}\n"]).await;
    assert_eq!(error.map(|error| error.kind), Some(ProviderErrorKind::Protocol));
}

async fn pull(parts: &[&[u8]]) -> Vec<Result<PullProgress, ProviderError>> {
    PullLines::new(reads(parts)).collect().await
}

fn progress(status: &str, completed: Option<u64>, total: Option<u64>) -> PullProgress {
    PullProgress { status: status.into(), completed, total }
}

#[tokio::test]
async fn pull_progress_until_success() {
    let body = concat!(
        "{\"status\":\"pulling manifest\"}\n",
        "{\"status\":\"downloading digestname\",\"digest\":\"digestname\",\"total\":2142590208}\n",
        "{\"status\":\"downloading digestname\",\"digest\":\"digestname\",\"total\":2142590208,\"completed\":241970}\n",
        "{\"status\":\"verifying sha256 digest\"}\n{\"status\":\"writing manifest\"}\n",
        "{\"status\":\"removing any unused layers\"}\n{\"status\":\"success\"}\n",
        "{\"status\":\"ignored\"}\n",
    );
    let (head, tail) = body.as_bytes().split_at(70);
    let items: Vec<PullProgress> = pull(&[head, tail]).await.into_iter().map(|item| item.expect("progress")).collect();
    assert_eq!(
        items,
        vec![
            progress("pulling manifest", None, None),
            progress("downloading digestname", None, Some(2_142_590_208)),
            progress("downloading digestname", Some(241_970), Some(2_142_590_208)),
            progress("verifying sha256 digest", None, None),
            progress("writing manifest", None, None),
            progress("removing any unused layers", None, None),
            progress("success", None, None),
        ]
    );
}

#[tokio::test]
async fn pull_errors_and_early_ends() {
    let items =
        pull(&[b"{\"status\":\"pulling manifest\"}\n{\"error\":\"pull model manifest: file does not exist\"}\n"]).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[0].as_ref().ok(), Some(&progress("pulling manifest", None, None)));
    let error = items[1].as_ref().expect_err("an error");
    assert_eq!(
        (error.kind, error.detail.as_str()),
        (ProviderErrorKind::ModelNotFound, "pull model manifest: file does not exist")
    );
    let items = pull(&[b"{\"status\":\"pulling manifest\"}\n"]).await;
    assert_eq!(items.len(), 2);
    assert_eq!(items[1].as_ref().err().map(|error| error.kind), Some(ProviderErrorKind::Unavailable));
    let items = pull(&[b"{\"error\":\"max retries exceeded: connection reset\"}\n"]).await;
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].as_ref().err().map(|error| error.kind), Some(ProviderErrorKind::Unavailable));
}
