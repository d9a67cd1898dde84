//! The official `openai` Python package against the real server: models list, a whole and a
//! streamed completion (with usage), a tool round trip, embeddings (the SDK asks for base64),
//! files (upload, list, retrieve, content, delete) and the SDK's error classes. Runs with the interpreter in `LOQUAT_TEST_PYTHON` (`.ci/run`
//! makes a venv with `openai`); skipped without it, unless `LOQUAT_TEST_REQUIRE_ALL=1`.

use std::time::Duration;

use loquat_test_support::fake_openai::Reply;
use loquat_test_support::fake_upstream::fake_embedding;
use loquat_test_support::postgres::REQUIRE_ALL_VAR;
use serde_json::{Value, json};

use crate::helpers::{TestApp, temp_dir};
use crate::openai_api::api_token;

const PYTHON_VAR: &str = "LOQUAT_TEST_PYTHON";

const SCRIPT: &str = r#"
import json, sys
import openai

base_url, api_key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0, timeout=30)
out = {}

out["models"] = [model.id for model in client.models.list().data]

whole = client.chat.completions.create(model="openai/gpt-4o", messages=[{"role": "user", "content": "Hi"}])
out["whole"] = {"id": whole.id, "content": whole.choices[0].message.content,
                "finish": whole.choices[0].finish_reason, "total_tokens": whole.usage.total_tokens}

pieces, finish, usage = [], None, None
stream = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Count"}],
                                        stream=True, stream_options={"include_usage": True})
for chunk in stream:
    if chunk.usage is not None:
        usage = chunk.usage.total_tokens
    for choice in chunk.choices:
        if choice.delta.content:
            pieces.append(choice.delta.content)
        if choice.finish_reason:
            finish = choice.finish_reason
out["stream"] = {"pieces": pieces, "finish": finish, "total_tokens": usage}

tools = [{"type": "function", "function": {"name": "weather", "description": "The weather in a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]
question = {"role": "user", "content": "Weather in Paris?"}
first = client.chat.completions.create(model="gpt-4o", messages=[question], tools=tools)
call = first.choices[0].message.tool_calls[0]
second = client.chat.completions.create(model="gpt-4o", tools=tools, messages=[
    question,
    first.choices[0].message.model_dump(exclude_none=True),
    {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
])
out["tools"] = {"finish": first.choices[0].finish_reason, "name": call.function.name,
                "arguments": json.loads(call.function.arguments), "answer": second.choices[0].message.content}

embeddings = client.embeddings.create(model="openai/text-embedding-3-small", input=["hello world", "a b c"])
out["embeddings"] = [item.embedding for item in embeddings.data]

uploaded = client.files.create(file=("年报 2025.txt", "研发投入增长 R&D spending grew".encode()), purpose="assistants")
again = client.files.create(file=("copy.txt", "研发投入增长 R&D spending grew".encode()), purpose="user_data")
listed = [file.id for file in client.files.list().data]
retrieved = client.files.retrieve(uploaded.id)
content = client.files.content(uploaded.id).read().decode()
deleted = client.files.delete(uploaded.id)
try:
    client.files.retrieve(uploaded.id)
    gone = False
except openai.NotFoundError:
    gone = True
out["files"] = {"id": uploaded.id, "again": again.id, "filename": retrieved.filename, "bytes": retrieved.bytes,
                "purpose": uploaded.purpose, "listed": listed, "content": content, "deleted": deleted.deleted,
                "gone": gone}

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])
except openai.NotFoundError as error:
    out["not_found"] = error.code
try:
    openai.OpenAI(base_url=base_url, api_key="lq_wrong", max_retries=0).models.list()
except openai.AuthenticationError as error:
    out["bad_key"] = error.status_code

print(json.dumps(out))
"#;

#[tokio::test]
async fn the_official_openai_python_package_works_against_loquat() {
    let Some(python) = std::env::var(PYTHON_VAR).ok().filter(|path| !path.trim().is_empty()) else {
        assert!(
            std::env::var(REQUIRE_ALL_VAR).map_or(true, |value| value.trim() != "1"),
            "{REQUIRE_ALL_VAR}=1 but {PYTHON_VAR} is not set: the openai package test cannot be skipped"
        );
        println!("skipped: {PYTHON_VAR} is not set (a Python with the `openai` package)");
        return;
    };
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    app.fake.push_reply(Reply::text("Hello from Loquat.").usage(3, 4));
    app.fake.push_reply(Reply::text("One two three").usage(2, 3));
    app.fake.push_reply(Reply::text("").tool_call("weather", r#"{"city":"Paris"}"#));
    app.fake.push_reply(Reply::text("Sunny in Paris."));

    let dir = temp_dir("openai-python");
    let script = dir.join("client.py");
    std::fs::write(&script, SCRIPT).expect("script written");
    let run =
        tokio::process::Command::new(&python).arg(&script).arg(app.url("/v1")).arg(&token).kill_on_drop(true).output();
    let output = tokio::time::timeout(Duration::from_secs(120), run).await.expect("python finishes").expect("runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the script failed:\n{stderr}");
    let out: Value = serde_json::from_slice(&output.stdout).expect("the script prints JSON");

    let models = out["models"].as_array().expect("models");
    assert!(
        models.contains(&json!("openai/gpt-4o"))
            && models.iter().any(|id| id.as_str().is_some_and(|id| id.starts_with("assistant/")))
    );
    assert!(out["whole"]["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-")));
    assert_eq!(out["whole"]["content"], "Hello from Loquat.");
    assert_eq!((out["whole"]["finish"].as_str(), out["whole"]["total_tokens"].as_u64()), (Some("stop"), Some(7)));
    assert_eq!(out["stream"]["pieces"], json!(["One", " two", " three"]));
    assert_eq!((out["stream"]["finish"].as_str(), out["stream"]["total_tokens"].as_u64()), (Some("stop"), Some(5)));
    assert_eq!(out["tools"]["finish"], "tool_calls");
    assert_eq!(out["tools"]["name"], "weather");
    assert_eq!(out["tools"]["arguments"], json!({ "city": "Paris" }));
    assert_eq!(out["tools"]["answer"], "Sunny in Paris.");
    assert_eq!(out["embeddings"], json!([fake_embedding("hello world"), fake_embedding("a b c")]));
    let files = &out["files"];
    let id = files["id"].as_str().expect("a file id");
    assert!(id.starts_with("file-"), "{id}");
    assert_eq!(files["again"], id, "the same content is kept once");
    assert_eq!(files["filename"], "年报 2025.txt");
    assert_eq!(files["bytes"].as_u64(), Some("研发投入增长 R&D spending grew".len() as u64));
    assert_eq!(files["purpose"], "assistants");
    assert_eq!(files["listed"], json!([id]));
    assert_eq!(files["content"], "研发投入增长 R&D spending grew");
    assert_eq!((files["deleted"].as_bool(), files["gone"].as_bool()), (Some(true), Some(true)));
    assert_eq!(out["not_found"], "model_not_found");
    assert_eq!(out["bad_key"], 401);
    let tool_result = &app.fake.requests()[3].body["messages"][2];
    assert_eq!((tool_result["role"].as_str(), tool_result["content"].as_str()), (Some("tool"), Some("sunny")));
    let _ = std::fs::remove_dir_all(&dir);
    app.cleanup().await;
}
