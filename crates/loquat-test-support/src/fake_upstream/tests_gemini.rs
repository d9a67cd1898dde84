//! Wire tests of the fake's Gemini face: CRLF-framed SSE of whole responses (thought parts,
//! all function calls in one event, the finish and full usage on the last), the JSON-array
//! framing without `alt=sse`, keys, the checks the real API makes, errors with `RetryInfo`,
//! paged model lists and the HTML 404.

use serde_json::{Value, json};

use super::tests::{reads, send, text};
use super::{FakeUpstream, Protocol, Reply};

const STREAM: &str = "/v1beta/models/gemini-x:streamGenerateContent?alt=sse";
const HEADERS: &[(&str, &str)] = &[("x-goog-api-key", "AIza-fake")];

fn request() -> Value {
    json!({ "contents": [{ "role": "user", "parts": [{ "text": "hi" }] }],
            "systemInstruction": { "parts": [{ "text": "Be brief." }] },
            "generationConfig": { "maxOutputTokens": 100, "thinkingConfig": { "includeThoughts": true } } })
}

/// The responses of an SSE body, whose events must be framed with CRLF.
fn responses(body: &str) -> Vec<Value> {
    assert!(body.ends_with("\r\n\r\n") && !body.contains("}\n\n"), "CRLF framing: {body:?}");
    let events = body.split("\r\n\r\n").filter(|event| !event.is_empty());
    events.map(|event| serde_json::from_str(event.strip_prefix("data: ").expect("data")).expect("json")).collect()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.expect("json")["error"].clone())
}

#[tokio::test]
async fn streams_whole_responses_with_thoughts_calls_and_the_finish_on_the_last() {
    let fake = FakeUpstream::start(Protocol::Gemini).await;
    assert_eq!(fake.base_url(), format!("http://{}/v1beta", fake.addr()));
    let reply =
        Reply::text("Hi").reasoning("Hm ok").tool_call("weather", r#"{"city":"Paris"}"#).tool_call("time", "{}");
    fake.push_reply(reply.usage(7, 9));
    let response = send(&fake, STREAM, HEADERS, Some(request())).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let responses = responses(&text(&reads(response).await));
    assert_eq!(responses.len(), 4, "two thoughts, the text, the calls: {responses:#?}");
    let parts = |at: usize| responses[at]["candidates"][0]["content"]["parts"].clone();
    assert_eq!(parts(0), json!([{ "text": "Hm", "thought": true }]));
    assert_eq!(parts(2), json!([{ "text": "Hi" }]));
    let calls = parts(3);
    assert_eq!(calls[0]["functionCall"], json!({ "name": "weather", "args": { "city": "Paris" } }));
    assert!(calls[0]["thoughtSignature"].is_string(), "a call after reasoning is signed");
    assert_eq!(calls[1]["functionCall"], json!({ "name": "time", "args": {} }));
    assert_eq!(responses[3]["candidates"][0]["content"]["role"], "model");
    assert!(responses[..3].iter().all(|response| response["candidates"][0].get("finishReason").is_none()));
    assert_eq!(responses[3]["candidates"][0]["finishReason"], "STOP");
    assert_eq!(responses[0]["usageMetadata"]["totalTokenCount"], 7, "the prompt only, until the end");
    let usage = &responses[3]["usageMetadata"];
    assert_eq!((usage["candidatesTokenCount"].clone(), usage["thoughtsTokenCount"].clone()), (json!(7), json!(2)));
    assert_eq!(usage["totalTokenCount"], 16);
    assert_eq!(responses[3]["modelVersion"], "gemini-x");
}

#[tokio::test]
async fn without_sse_the_stream_is_one_json_array_and_errors_end_it() {
    let fake = FakeUpstream::start(Protocol::Gemini).await;
    fake.push_reply(Reply::text("a b c").finish_reason("length"));
    let path = "/v1beta/models/gemini-x:streamGenerateContent";
    let response = send(&fake, path, HEADERS, Some(request())).await;
    assert_eq!(response.headers()["content-type"], "application/json; charset=UTF-8");
    let array: Value = serde_json::from_str(&text(&reads(response).await)).expect("a JSON array");
    assert_eq!(array.as_array().map(Vec::len), Some(3));
    assert_eq!(array[2]["candidates"][0]["finishReason"], "MAX_TOKENS");

    fake.push_reply(Reply::tokens(3).fail_after(1));
    let responses = responses(&text(&reads(send(&fake, STREAM, HEADERS, Some(request())).await).await));
    assert_eq!(responses.last().map(|last| last["error"]["status"].clone()), Some(json!("INTERNAL")));

    fake.push_reply(Reply::text("Whole"));
    let whole = send(&fake, "/v1beta/models/gemini-x:generateContent", HEADERS, Some(request())).await;
    let whole: Value = whole.json().await.expect("json");
    assert_eq!(whole["candidates"][0]["content"]["parts"], json!([{ "text": "Whole" }]));
}

#[tokio::test]
async fn keys_are_checked_as_google_does() {
    let fake = FakeUpstream::start(Protocol::Gemini).await;
    fake.require_key("AIza-fake");
    let (status, error) = error_of(send(&fake, STREAM, &[], Some(request())).await).await;
    assert_eq!((status, error["status"].clone()), (403, json!("PERMISSION_DENIED")));
    let (status, error) = error_of(send(&fake, STREAM, &[("x-goog-api-key", "wrong")], Some(request())).await).await;
    assert_eq!((status, error["status"].clone()), (400, json!("INVALID_ARGUMENT")));
    assert_eq!(error["details"][0]["reason"], "API_KEY_INVALID");
    let in_query = send(&fake, &format!("{STREAM}&key=AIza-fake"), &[], Some(request())).await;
    assert_eq!(in_query.status(), 200);
    assert_eq!(fake.requests()[2].query_param("key").as_deref(), Some("AIza-fake"));
}

#[tokio::test]
async fn malformed_requests_are_refused_as_gemini_does() {
    let fake = FakeUpstream::start(Protocol::Gemini).await;
    let user = json!({ "role": "user", "parts": [{ "text": "hi" }] });
    let call = json!({ "role": "model", "parts": [{ "functionCall": { "name": "f", "args": { "a": 1 } } }] });
    let answer = json!({ "role": "user", "parts": [{ "functionResponse": { "name": "f", "response": { "ok": 1 } } }] });
    let cases = [
        (json!({ "contents": [user], "max_tokens": 5 }), "Unknown name \"max_tokens\": Cannot find field."),
        (json!({ "contents": [user], "generationConfig": { "max_tokens": 5 } }), "at 'generation_config'"),
        (json!({ "contents": [{ "role": "system", "parts": [{ "text": "s" }] }] }), "valid role: user, model"),
        (json!({ "contents": [] }), "contents is not specified"),
        (json!({ "contents": [user, answer] }), "comes immediately after a function call turn"),
        (
            json!({ "contents": [user, { "role": "model", "parts": [{ "functionCall": { "name": "f", "args": "{}" } }] }] }),
            "function_call.args",
        ),
        (
            json!({ "contents": [user, call, { "role": "user", "parts": [
                { "functionResponse": { "name": "f", "response": { "ok": 1 } } },
                { "functionResponse": { "name": "f", "response": { "ok": 2 } } }] }] }),
            "number of function response parts",
        ),
    ];
    for (body, expected) in cases {
        let (status, error) = error_of(send(&fake, STREAM, HEADERS, Some(body.clone())).await).await;
        assert_eq!((status, error["status"].clone()), (400, json!("INVALID_ARGUMENT")), "{body}");
        assert!(error["message"].as_str().is_some_and(|message| message.contains(expected)), "{error} / {expected}");
    }
    let fine = json!({ "contents": [user, call, answer] });
    assert_eq!(send(&fake, STREAM, HEADERS, Some(fine)).await.status(), 200);
}

#[tokio::test]
async fn errors_models_and_unknown_urls() {
    let fake = FakeUpstream::start(Protocol::Gemini).await;
    fake.push_reply(Reply::error(429).retry_after_secs(3));
    let response = send(&fake, STREAM, HEADERS, Some(request())).await;
    assert!(response.headers().get("retry-after").is_none(), "Google names the wait in the body");
    let (status, error) = error_of(response).await;
    assert_eq!((status, error["status"].clone()), (429, json!("RESOURCE_EXHAUSTED")));
    let details = error["details"].as_array().cloned().unwrap_or_default();
    assert!(details.iter().any(|detail| detail["retryDelay"] == "3s"), "{details:#?}");
    fake.push_reply(
        Reply::http_error(503, json!({ "error": { "code": 503, "message": "busy", "status": "UNAVAILABLE" } }))
            .retry_after_secs(1),
    );
    let (_, error) = error_of(send(&fake, STREAM, HEADERS, Some(request())).await).await;
    assert_eq!((error["message"].clone(), error["details"][0]["retryDelay"].clone()), (json!("busy"), json!("1s")));

    fake.set_models((0..60).map(|i| format!("gemini-{i:02}")));
    let first: Value = send(&fake, "/v1beta/models", HEADERS, None).await.json().await.expect("json");
    assert_eq!(first["models"].as_array().map(Vec::len), Some(50));
    assert_eq!(first["models"][0]["name"], "models/gemini-00");
    assert_eq!(first["models"][0]["supportedGenerationMethods"][0], "generateContent");
    let token = first["nextPageToken"].as_str().expect("a next page");
    let rest: Value =
        send(&fake, &format!("/v1beta/models?pageToken={token}"), HEADERS, None).await.json().await.expect("json");
    assert_eq!((rest["models"].as_array().map(Vec::len), rest.get("nextPageToken")), (Some(10), None));
    let one: Value = send(&fake, "/v1beta/models/gemini-07", HEADERS, None).await.json().await.expect("json");
    assert_eq!(one["name"], "models/gemini-07");

    let unknown = send(&fake, "/v1beta/nope", HEADERS, None).await;
    assert_eq!(unknown.status(), 404);
    assert!(unknown.headers()["content-type"].to_str().is_ok_and(|kind| kind.starts_with("text/html")));
    let action = send(&fake, "/v1beta/models/gemini-x:countTokenz", HEADERS, Some(request())).await;
    assert_eq!(action.status(), 404);
}
