//! Wire tests of the fake's Ollama face: NDJSON chat lines (thinking, content, tool calls with
//! object arguments, the final counts), whole answers, tags, show, pull progress, bearer keys,
//! and the requests Ollama refuses.

use serde_json::{Value, json};

use super::tests::{reads, send, text};
use super::{FakeUpstream, Protocol, Reply};

fn request() -> Value {
    json!({ "model": "llama3.2", "messages": [{ "role": "system", "content": "Be brief." },
                                              { "role": "user", "content": "hi" }] })
}

fn lines(body: &str) -> Vec<Value> {
    assert!(body.ends_with('\n'), "lines end with a newline: {body:?}");
    body.lines().map(|line| serde_json::from_str(line).expect("one JSON object per line")).collect()
}

#[tokio::test]
async fn chat_streams_lines_then_the_counts() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    assert_eq!(fake.base_url(), format!("http://{}", fake.addr()));
    fake.push_reply(Reply::text("Hi there").reasoning("Hm").tool_call("weather", r#"{"city":"Paris"}"#).usage(26, 9));
    let response = send(&fake, "/api/chat", &[], Some(request())).await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = reads(response).await;
    assert!(body.iter().any(|read| !read.ends_with(b"\n")), "the last line is cut across reads");
    let streamed = lines(&text(&body));
    assert_eq!(streamed.len(), 5);
    assert_eq!(streamed[0]["message"], json!({ "role": "assistant", "content": "", "thinking": "Hm" }));
    assert_eq!(streamed[1]["message"], json!({ "role": "assistant", "content": "Hi" }));
    assert_eq!((streamed[1]["model"].clone(), streamed[1]["done"].clone()), (json!("llama3.2"), json!(false)));
    assert!(streamed[1]["created_at"].as_str().is_some_and(|at| at.ends_with('Z')));
    let call = &streamed[3]["message"]["tool_calls"][0]["function"];
    assert_eq!((call["name"].clone(), call["arguments"].clone()), (json!("weather"), json!({ "city": "Paris" })));
    let last = &streamed[4];
    assert_eq!((last["done"].clone(), last["done_reason"].clone()), (json!(true), json!("stop")));
    assert_eq!((last["prompt_eval_count"].clone(), last["eval_count"].clone()), (json!(26), json!(9)));
    assert!(last["total_duration"].is_u64() && last["eval_duration"].is_u64());

    fake.push_reply(Reply::tokens(3).fail_after(1));
    let failed = lines(&text(&reads(send(&fake, "/api/chat", &[], Some(request())).await).await));
    assert!(failed.last().is_some_and(|last| last["error"].is_string()));

    fake.push_reply(Reply::text("Whole answer").finish_reason("length"));
    let mut whole = request();
    whole["stream"] = json!(false);
    let answer: Value = send(&fake, "/api/chat", &[], Some(whole)).await.json().await.expect("json");
    assert_eq!(
        (answer["message"]["content"].clone(), answer["done_reason"].clone()),
        (json!("Whole answer"), json!("length"))
    );
}

#[tokio::test]
async fn errors_keys_and_malformed_chats() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    fake.push_reply(Reply::error(404));
    let missing = send(&fake, "/api/chat", &[], Some(request())).await;
    assert_eq!(missing.status(), 404);
    let error = missing.json::<Value>().await.expect("json")["error"].clone();
    assert_eq!(error, json!("model \"llama3.2\" not found, try pulling it first"));
    let call = json!({ "role": "assistant", "content": "",
                       "tool_calls": [{ "function": { "name": "f", "arguments": "{\"a\":1}" } }] });
    let malformed = json!({ "model": "m", "messages": [call] });
    assert_eq!(send(&fake, "/api/chat", &[], Some(malformed)).await.status(), 400);
    assert_eq!(send(&fake, "/api/chat", &[], Some(json!({ "messages": [] }))).await.status(), 400);
    fake.require_key("secret");
    assert_eq!(send(&fake, "/api/tags", &[], None).await.status(), 401);
    assert_eq!(send(&fake, "/api/tags", &[("authorization", "Bearer secret")], None).await.status(), 200);
    let unknown = send(&fake, "/api/nope", &[], None).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.text().await.expect("text"), "404 page not found");
}

#[tokio::test]
async fn tags_show_and_pull() {
    let fake = FakeUpstream::start(Protocol::Ollama).await;
    fake.set_models(["llama3.2", "qwen3:8b"]);
    fake.set_context_length("llama3.2", 8192);
    let tags: Value = send(&fake, "/api/tags", &[], None).await.json().await.expect("json");
    let names: Vec<&str> =
        tags["models"].as_array().into_iter().flatten().filter_map(|model| model["name"].as_str()).collect();
    assert_eq!(names, ["llama3.2:latest", "qwen3:8b"]);
    assert_eq!(tags["models"][1]["details"]["family"], "qwen3");

    let show = |model: &str| send(&fake, "/api/show", &[], Some(json!({ "model": model })));
    let llama: Value = show("llama3.2:latest").await.json().await.expect("json");
    assert_eq!(
        (llama["model_info"]["general.architecture"].clone(), llama["model_info"]["llama.context_length"].clone()),
        (json!("llama"), json!(8192))
    );
    let qwen: Value = show("qwen3:8b").await.json().await.expect("json");
    assert_eq!(qwen["model_info"]["qwen3.context_length"], 131_072);
    assert_eq!(show("nope").await.status(), 404);

    fake.set_registry(["gemma3"]);
    let pull = send(&fake, "/api/pull", &[], Some(json!({ "model": "gemma3" }))).await;
    let progress = lines(&text(&reads(pull).await));
    assert_eq!(progress[0], json!({ "status": "pulling manifest" }));
    assert!(progress[1]["total"].is_u64() && progress[1].get("completed").is_none(), "no completed at first");
    assert!(progress[1]["status"].as_str().is_some_and(|status| status.starts_with("pulling ")));
    assert_eq!(progress[5]["completed"], progress[5]["total"]);
    let statuses: Vec<&str> = progress.iter().rev().take(3).filter_map(|line| line["status"].as_str()).collect();
    assert_eq!(statuses, ["success", "writing manifest", "verifying sha256 digest"]);
    let tags: Value = send(&fake, "/api/tags", &[], None).await.json().await.expect("json");
    assert_eq!(tags["models"][2]["name"], "gemma3:latest", "the pulled model is listed");
    let failed = send(&fake, "/api/pull", &[], Some(json!({ "name": "nope" }))).await;
    let failed = lines(&text(&reads(failed).await));
    assert_eq!(failed.last(), Some(&json!({ "error": "pull model manifest: file does not exist" })));
    assert_eq!(fake.completed_streams(), 2);
}
