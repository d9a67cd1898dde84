//! The OpenAI-compatible API (`/v1`) end to end: bearer-token auth, the model list, whole and
//! streamed completions, tools, images, and assistants applying their configuration. Errors,
//! limits, usage, saving and embeddings are in `openai_api_limits`.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use loquat_core::domain::{AssistantConfig, ModelParams};
use loquat_test_support::fake_openai::Reply;
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestOptions};

/// A fresh API token of the administrator.
pub async fn api_token(app: &TestApp) -> String {
    let (secret, _) = app
        .services
        .accounts
        .create_api_token(app.admin().await, "tests", &Default::default())
        .await
        .expect("token created");
    secret.expose().to_owned()
}

/// POSTs JSON to `/v1{path}` with the token.
pub async fn post(app: &TestApp, token: &str, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(&format!("/v1{path}")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("POST")
}

/// POSTs and returns the status and JSON body.
pub async fn post_json(app: &TestApp, token: &str, path: &str, body: &Value) -> (u16, Value) {
    let response = post(app, token, path, body).await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// The `data:` payloads of an SSE response, in order (`[DONE]` included as is).
pub async fn sse_data(response: reqwest::Response) -> Vec<String> {
    let mut events = response.bytes_stream().eventsource();
    let mut data = Vec::new();
    let collect = async {
        while let Some(event) = events.next().await {
            data.push(event.expect("valid SSE").data);
        }
    };
    tokio::time::timeout(Duration::from_secs(20), collect).await.expect("the stream ends");
    data
}

/// Asserts OpenAI's error shape and returns the `error` object.
pub fn openai_error(body: &Value) -> &Value {
    let error = &body["error"];
    assert!(error["message"].as_str().is_some_and(|message| !message.is_empty()), "{body}");
    assert!(error["type"].is_string(), "{body}");
    assert!(error.get("param").is_some() && error.get("code").is_some(), "{body}");
    error
}

fn hello() -> Value {
    json!([{ "role": "user", "content": "Hello" }])
}

#[tokio::test]
async fn only_a_valid_bearer_token_gets_in() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let url = app.url("/v1/models");
    let plain = reqwest::Client::new();
    let cases = [
        ("no token", plain.get(&url)),
        ("a wrong token", plain.get(&url).bearer_auth("lq_not-a-real-token")),
        ("a session cookie only", app.client.get(&url)),
    ];
    for (what, request) in cases {
        let response = request.send().await.expect("GET");
        assert_eq!(response.status().as_u16(), 401, "{what}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(openai_error(&body)["code"], "invalid_api_key", "{what}");
    }
    let response = plain.get(&url).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(response.status().as_u16(), 200);

    // A revoked token stops working at once.
    let tokens = app.services.accounts.api_tokens(app.admin().await).await.expect("tokens");
    app.services
        .accounts
        .revoke_api_token(app.admin().await, &tokens[0].id, &Default::default())
        .await
        .expect("revoked");
    let response = plain.get(&url).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(response.status().as_u16(), 401);
    let (status, body) = post_json(&app, &token, "/chat/completions", &json!({})).await;
    assert_eq!((status, openai_error(&body)["code"].as_str()), (401, Some("invalid_api_key")));

    // Unknown API URLs answer in the same shape.
    let fresh = api_token(&app).await;
    let response = plain.post(app.url("/v1/completions")).bearer_auth(&fresh).send().await.expect("POST");
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(openai_error(&body)["code"], "unknown_url");
    app.cleanup().await;
}

#[tokio::test]
async fn models_are_listed_as_provider_model_and_assistants() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let assistant = app.default_assistant().await;
    let client = reqwest::Client::new();
    let list: Value =
        client.get(app.url("/v1/models")).bearer_auth(&token).send().await.expect("GET").json().await.expect("JSON");
    assert_eq!(list["object"], "list");
    let ids: Vec<&str> = list["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str()).collect();
    for expected in ["openai/gpt-4.1", "openai/gpt-4o", "openai/gpt-4o-mini", "openai/o3"] {
        assert!(ids.contains(&expected), "{expected} in {ids:?}");
    }
    assert!(ids.contains(&format!("assistant/{assistant}").as_str()), "{ids:?}");
    let first = &list["data"][0];
    assert_eq!((first["object"].as_str(), first["owned_by"].as_str()), (Some("model"), Some("openai")));
    assert!(first["created"].is_i64());

    for name in ["openai/gpt-4o", "gpt-4o", "assistant/default"] {
        let response =
            client.get(app.url(&format!("/v1/models/{name}"))).bearer_auth(&token).send().await.expect("GET");
        assert_eq!(response.status().as_u16(), 200, "{name}");
        let model: Value = response.json().await.expect("JSON");
        assert_eq!(model["id"], name);
    }
    let response = client.get(app.url("/v1/models/openai/gpt-9")).bearer_auth(&token).send().await.expect("GET");
    assert_eq!(response.status().as_u16(), 404);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(openai_error(&body)["code"], "model_not_found");
    app.cleanup().await;
}

#[tokio::test]
async fn a_whole_completion_in_openai_shape() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    app.fake.push_reply(Reply::text("Hello there, human.").reasoning("Greet back.").usage(12, 8));
    let body = json!({ "model": "gpt-4o", "messages": hello(), "temperature": 0.2, "max_tokens": 40 });
    let (status, completion) = post_json(&app, &token, "/chat/completions", &body).await;
    assert_eq!(status, 200, "{completion}");
    assert!(completion["id"].as_str().is_some_and(|id| id.starts_with("chatcmpl-")));
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "gpt-4o");
    assert!(completion["created"].as_i64().is_some_and(|created| created > 1_700_000_000));
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(choice["message"]["content"], "Hello there, human.");
    assert_eq!(choice["message"]["reasoning_content"], "Greet back.");
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &completion["usage"];
    assert_eq!((usage["prompt_tokens"].as_u64(), usage["total_tokens"].as_u64()), (Some(12), Some(20)));
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 2);

    let upstream = &app.fake.requests()[0].body;
    assert_eq!(upstream["model"], "gpt-4o");
    assert_eq!(upstream["messages"], hello());
    assert_eq!((upstream["temperature"].as_f64(), upstream["max_tokens"].as_u64()), (Some(0.2), Some(40)));
    app.cleanup().await;
}

#[tokio::test]
async fn a_streamed_completion_with_usage_then_done() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    app.fake.push_reply(Reply::text("One two three").reasoning("Count.").usage(5, 3));
    let body = json!({ "model": "openai/gpt-4.1", "messages": hello(), "stream": true,
                       "stream_options": { "include_usage": true } });
    let response = reqwest::Client::new()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("accept-encoding", "gzip, br")
        .json(&body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.headers()["content-type"].to_str().is_ok_and(|value| value.starts_with("text/event-stream")));
    assert!(response.headers().get("content-encoding").is_none(), "event streams are never compressed");
    let data = sse_data(response).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> =
        data[..data.len() - 1].iter().map(|text| serde_json::from_str(text).expect("JSON chunk")).collect();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "openai/gpt-4.1");
        assert_eq!(chunk["id"], chunks[0]["id"]);
    }
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let text_of = |field: &str| -> String {
        chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"][field].as_str()).collect()
    };
    assert_eq!(text_of("content"), "One two three");
    assert_eq!(text_of("reasoning_content"), "Count.");
    let content_chunks = chunks.iter().filter(|chunk| chunk["choices"][0]["delta"]["content"].is_string()).count();
    assert!(content_chunks >= 4, "the text streams as it arrives (role + 3 words), got {content_chunks}");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let usage = &chunks[chunks.len() - 1];
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        (usage["usage"]["prompt_tokens"].as_u64(), usage["usage"]["completion_tokens"].as_u64()),
        (Some(5), Some(3))
    );

    // Without include_usage there is no usage chunk.
    app.fake.push_reply(Reply::text("Hi").usage(1, 1));
    let body = json!({ "model": "gpt-4.1", "messages": hello(), "stream": true });
    let data = sse_data(post(&app, &token, "/chat/completions", &body).await).await;
    assert_eq!(data.len(), 4, "role, text, finish, [DONE]: {data:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn tools_round_trip() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let tools = json!([{ "type": "function", "function": { "name": "weather", "description": "The weather.",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } } } } }]);
    app.fake.push_reply(Reply::text("").tool_call("weather", r#"{"city":"Paris"}"#));
    let body = json!({ "model": "gpt-4o", "messages": hello(), "tools": tools, "tool_choice": "auto" });
    let (status, completion) = post_json(&app, &token, "/chat/completions", &body).await;
    assert_eq!(status, 200, "{completion}");
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(choice["message"]["content"], Value::Null);
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!((call["type"].as_str(), call["function"]["name"].as_str()), (Some("function"), Some("weather")));
    assert_eq!(call["function"]["arguments"], r#"{"city":"Paris"}"#);
    let upstream = &app.fake.requests()[0].body;
    assert_eq!(upstream["tools"][0]["function"]["name"], "weather");
    assert_eq!(upstream["tool_choice"], "auto");

    // The result goes back as a tool message; the upstream sees the call and its answer.
    app.fake.push_reply(Reply::text("It is sunny in Paris."));
    let messages = json!([
        { "role": "user", "content": "Weather in Paris?" },
        { "role": "assistant", "content": null, "tool_calls": [call] },
        { "role": "tool", "tool_call_id": call["id"], "content": "sunny, 21 °C" },
    ]);
    let body = json!({ "model": "gpt-4o", "messages": messages, "tools": tools, "stream": true });
    let data = sse_data(post(&app, &token, "/chat/completions", &body).await).await;
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let upstream = &app.fake.requests()[1].body;
    assert_eq!(upstream["messages"][1]["tool_calls"][0]["id"], call["id"]);
    assert_eq!(upstream["messages"][2]["role"], "tool");
    assert_eq!(upstream["messages"][2]["tool_call_id"], call["id"]);
    assert_eq!(upstream["messages"][2]["content"], "sunny, 21 °C");

    // A streamed tool call: one chunk with the id, the name and the whole arguments.
    app.fake.push_reply(Reply::text("").tool_call("weather", r#"{"city":"Rome"}"#));
    let body = json!({ "model": "gpt-4o", "messages": hello(), "tools": tools, "stream": true });
    let data = sse_data(post(&app, &token, "/chat/completions", &body).await).await;
    let chunks: Vec<Value> = data.iter().filter_map(|text| serde_json::from_str(text).ok()).collect();
    let calls: Vec<&Value> = chunks.iter().filter_map(|c| c["choices"][0]["delta"].get("tool_calls")).collect();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0][0]["function"]["arguments"], r#"{"city":"Rome"}"#);
    assert!(calls[0][0]["id"].as_str().is_some_and(|id| !id.is_empty()));
    let finish = chunks.iter().find_map(|c| c["choices"][0]["finish_reason"].as_str());
    assert_eq!(finish, Some("tool_calls"));
    app.cleanup().await;
}

#[tokio::test]
async fn images_in_content_parts_reach_the_provider() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let messages = json!([{ "role": "user", "content": [
        { "type": "text", "text": "What is in these pictures?" },
        { "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBORw0KGgo=" } },
        { "type": "image_url", "image_url": { "url": "https://example.com/cat.jpg", "detail": "high" } },
    ] }]);
    let (status, body) =
        post_json(&app, &token, "/chat/completions", &json!({ "model": "gpt-4o", "messages": messages })).await;
    assert_eq!(status, 200, "{body}");
    let content = &app.fake.requests()[0].body["messages"][0]["content"];
    let parts = content.as_array().expect("content parts");
    assert!(parts.iter().any(|part| part["text"] == "What is in these pictures?"), "{content}");
    let urls: Vec<&str> = parts.iter().filter_map(|part| part["image_url"]["url"].as_str()).collect();
    assert_eq!(urls, ["data:image/png;base64,iVBORw0KGgo=", "https://example.com/cat.jpg"]);
    app.cleanup().await;
}

#[tokio::test]
async fn an_assistant_applies_its_configuration() {
    let options =
        TestOptions { env: vec![("OPENAI_MODEL_LIST", "-all,gpt-4.1,gpt-5.5".to_owned())], ..TestOptions::default() };
    let app = TestApp::spawn_with(options).await;
    let token = api_token(&app).await;
    let config = AssistantConfig {
        title: "Release Notes Writer".into(),
        system_role: "You are {{model}}, writing for {{username}}.".into(),
        provider: "openai".into(),
        model: "gpt-4.1".into(),
        params: ModelParams { temperature: Some(0.3), max_tokens: Some(99), ..ModelParams::default() },
        history_limit: Some(1),
        input_template: "Notes: {{text}}".into(),
        ..AssistantConfig::default()
    };
    let assistant =
        app.services.assistants.create_assistant(app.admin().await, config.clone()).await.expect("assistant");
    let messages = json!([
        { "role": "user", "content": "old question" },
        { "role": "assistant", "content": "old answer" },
        { "role": "user", "content": "v1.2 fixes the login" },
    ]);
    for name in [format!("assistant/{}", assistant.id), "assistant/release-notes-writer".to_owned()] {
        let (status, completion) =
            post_json(&app, &token, "/chat/completions", &json!({ "model": name, "messages": messages })).await;
        assert_eq!(status, 200, "{completion}");
        assert_eq!(completion["model"], name.as_str());
    }
    let upstream = &app.fake.requests()[0].body;
    assert_eq!(upstream["model"], "gpt-4.1");
    assert_eq!(
        upstream["messages"],
        json!([
            { "role": "system", "content": "You are gpt-4.1, writing for Ada Admin." },
            { "role": "assistant", "content": "old answer" },
            { "role": "user", "content": "Notes: v1.2 fixes the login" },
        ])
    );
    assert_eq!((upstream["temperature"].as_f64(), upstream["max_tokens"].as_u64()), (Some(0.3), Some(99)));

    // A model that rejects sampling parameters gets none of them, even when the request sets one.
    let reasoning = AssistantConfig { title: "Thinker".into(), model: "gpt-5.5".into(), ..config };
    let thinker = app.services.assistants.create_assistant(app.admin().await, reasoning).await.expect("assistant");
    let body = json!({ "model": format!("assistant/{}", thinker.id), "messages": hello(), "top_p": 0.5 });
    let (status, _) = post_json(&app, &token, "/chat/completions", &body).await;
    assert_eq!(status, 200);
    let upstream = &app.fake.requests()[2].body;
    assert_eq!(upstream["model"], "gpt-5.5");
    assert!(upstream.get("temperature").is_none() && upstream.get("top_p").is_none(), "{upstream}");
    assert!(upstream.get("max_tokens").is_some() || upstream.get("max_completion_tokens").is_some());
    app.cleanup().await;
}
