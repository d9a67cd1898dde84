//! The OpenAI-compatible API's edges: bad requests (400 with `param`, 413), upstream failures in
//! OpenAI's error shapes (before and after the stream started), the token quota and the rate
//! limit (429), usage records, `X-Loquat-Save: topic`, and embeddings.

use loquat_core::domain::{AssistantConfig, MessageRole, MessageStatus, Quota, QuotaScope, UsageGrouping};
use loquat_test_support::fake_openai::Reply;
use loquat_test_support::fake_upstream::fake_embedding;
use serde_json::{Value, json};

use crate::helpers::{TestApp, eventually};
use crate::openai_api::{api_token, openai_error, post, post_json, sse_data};

fn hello() -> Value {
    json!([{ "role": "user", "content": "Hello" }])
}

#[tokio::test]
async fn bad_requests_are_400_naming_the_param() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let cases = [
        (json!({ "model": "gpt-4o", "messages": [] }), Some("messages")),
        (json!({ "model": "gpt-4o", "messages": [{ "role": "robot", "content": "x" }] }), Some("messages[0].role")),
        (json!({ "messages": hello() }), Some("model")),
        (json!({ "model": "gpt-4o", "messages": hello(), "temperature": "hot" }), Some("temperature")),
    ];
    for (body, param) in cases {
        let (status, answer) = post_json(&app, &token, "/chat/completions", &body).await;
        assert_eq!(status, 400, "{body}");
        let error = openai_error(&answer);
        assert_eq!((error["type"].as_str(), error["param"].as_str()), (Some("invalid_request_error"), param));
    }
    let response = reqwest::Client::new()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body("{\"model\": \"gpt-4o\", \"messages\": [")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 400);
    openai_error(&response.json::<Value>().await.expect("JSON"));
    let huge = json!({ "model": "gpt-4o", "messages": [{ "role": "user", "content": "x".repeat(3 * 1024 * 1024) }] });
    let (status, answer) = post_json(&app, &token, "/chat/completions", &huge).await;
    assert_eq!((status, openai_error(&answer)["code"].as_str()), (413, Some("request_too_large")));
    let (status, answer) =
        post_json(&app, &token, "/chat/completions", &json!({ "model": "nope", "messages": hello() })).await;
    assert_eq!((status, openai_error(&answer)["code"].as_str()), (404, Some("model_not_found")));
    assert_eq!(app.fake.request_count(), 0, "nothing bad reaches the provider");
    app.cleanup().await;
}

#[tokio::test]
async fn provider_failures_come_back_in_openai_shape() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let body = json!({ "model": "gpt-4o", "messages": hello() });
    // 429 and 5xx are retried before the first token (three retries), 401 and 404 are not.
    let cases: [(&[u16], u16, &str); 4] = [
        (&[401], 502, "upstream_invalid_key"),
        (&[404], 404, "model_not_found"),
        (&[429, 429, 429, 429], 429, "rate_limit_exceeded"),
        (&[503, 503, 503, 503], 503, "upstream_unavailable"),
    ];
    for (replies, status, code) in cases {
        for reply in replies {
            app.fake.push_reply(Reply::error(*reply));
        }
        let (got, answer) = post_json(&app, &token, "/chat/completions", &body).await;
        assert_eq!((got, openai_error(&answer)["code"].as_str()), (status, Some(code)), "{answer}");
    }
    // After the stream started, a failure is an error event, then the end (no [DONE]).
    app.fake.push_reply(Reply::tokens(6).fail_after(2));
    let streamed = json!({ "model": "gpt-4o", "messages": hello(), "stream": true });
    let data = sse_data(post(&app, &token, "/chat/completions", &streamed).await).await;
    let last: Value = serde_json::from_str(data.last().expect("events")).expect("JSON");
    assert_eq!(openai_error(&last)["code"], "upstream_unavailable");
    assert!(!data.iter().any(|event| event == "[DONE]"));
    assert_eq!(data.len(), 4, "role, two words, the error: {data:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn quota_rate_limit_and_usage_follow_the_chat_pages_rules() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let user = app.admin().await;
    app.fake.push_reply(Reply::text("Counted.").usage(20, 5));
    let (status, _) =
        post_json(&app, &token, "/chat/completions", &json!({ "model": "gpt-4o", "messages": hello() })).await;
    assert_eq!(status, 200);
    let report = app.services.usage.usage_report(user, UsageGrouping::Model, 1, None).await.expect("report");
    let row = report.iter().find(|line| line.row.model == "gpt-4o").expect("usage of gpt-4o");
    assert_eq!((row.row.requests, row.row.prompt_tokens, row.row.completion_tokens), (1, 20, 5));

    // A used-up daily quota: 429 insufficient_quota with the quota's message, nothing sent upstream.
    let quota = Quota { tokens_per_day: Some(10), ..Quota::default() };
    app.services
        .admin
        .admin_set_quota(user, QuotaScope::User(user), quota, &Default::default())
        .await
        .expect("quota set");
    let requests_before = app.fake.request_count();
    let (status, answer) =
        post_json(&app, &token, "/chat/completions", &json!({ "model": "gpt-4o", "messages": hello() })).await;
    let error = openai_error(&answer);
    assert_eq!(
        (status, error["type"].as_str(), error["code"].as_str()),
        (429, Some("insufficient_quota"), Some("insufficient_quota"))
    );
    assert!(error["message"].as_str().is_some_and(|message| message.contains("10")), "{answer}");
    assert_eq!(app.fake.request_count(), requests_before);

    // Requests per minute: the same limiter as the chat page.
    let quota = Quota { requests_per_minute: Some(1), ..Quota::default() };
    app.services
        .admin
        .admin_set_quota(user, QuotaScope::User(user), quota, &Default::default())
        .await
        .expect("quota set");
    let body = json!({ "model": "gpt-4o", "messages": hello(), "stream": true });
    let first = post(&app, &token, "/chat/completions", &body).await;
    assert_eq!(first.status().as_u16(), 200);
    sse_data(first).await;
    let (status, answer) = post_json(&app, &token, "/chat/completions", &body).await;
    assert_eq!((status, openai_error(&answer)["code"].as_str()), (429, Some("rate_limit_exceeded")));
    app.cleanup().await;
}

#[tokio::test]
async fn x_loquat_save_stores_the_exchange_as_a_topic() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let user = app.admin().await;
    let default_assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Rust is a language.").usage(4, 5));
    let response = reqwest::Client::new()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("x-loquat-save", "topic")
        .json(&json!({ "model": "gpt-4o", "messages": [{ "role": "user", "content": "What is Rust?" }] }))
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let topic: loquat_core::id::TopicId =
        response.headers()["x-loquat-topic"].to_str().expect("ascii").parse().expect("a topic id");
    let conversation =
        app.services.assistants.conversation(user, topic).await.expect("the topic exists when the answer does");
    assert_eq!(conversation.topic.assistant_id, default_assistant);
    let messages: Vec<_> = conversation.branch.iter().map(|entry| &entry.message).collect();
    assert_eq!(messages.len(), 2);
    assert_eq!((messages[0].role, messages[0].content.as_str()), (MessageRole::User, "What is Rust?"));
    assert_eq!((messages[1].role, messages[1].content.as_str()), (MessageRole::Assistant, "Rust is a language."));
    assert_eq!(messages[1].status, MessageStatus::Complete);
    assert_eq!(messages[1].usage.map(|usage| usage.total()), Some(9));

    // Streamed, through an assistant: saved under that assistant once the stream has ended.
    let config = AssistantConfig { title: "Saver".into(), ..AssistantConfig::default() };
    let assistant = app.services.assistants.create_assistant(user, config).await.expect("assistant");
    app.fake.push_reply(Reply::text("Streamed and saved."));
    let response = reqwest::Client::new()
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .header("x-loquat-save", "topic")
        .json(&json!({ "model": "assistant/saver", "messages": hello(), "stream": true }))
        .send()
        .await
        .expect("POST");
    assert!(response.headers().contains_key("x-loquat-topic"));
    sse_data(response).await;
    eventually("the streamed exchange is saved", || async {
        let topics = app.services.assistants.list_topics(user, assistant.id).await.expect("topics");
        match topics.first() {
            Some(topic) => {
                let conversation = app.services.assistants.conversation(user, topic.id).await.expect("conversation");
                conversation.branch.last().is_some_and(|entry| entry.message.content == "Streamed and saved.")
            }
            None => false,
        }
    })
    .await;
    // Without the header nothing is stored.
    let (status, _) =
        post_json(&app, &token, "/chat/completions", &json!({ "model": "gpt-4o", "messages": hello() })).await;
    assert_eq!(status, 200);
    assert_eq!(app.services.assistants.list_topics(user, default_assistant).await.expect("topics").len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn embeddings_in_openai_list_shape() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let body = json!({ "model": "openai/text-embedding-3-small", "input": ["hello world", "a b c"] });
    let (status, answer) = post_json(&app, &token, "/embeddings", &body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["object"], "list");
    assert_eq!(answer["model"], "openai/text-embedding-3-small");
    assert_eq!(answer["data"][0]["object"], "embedding");
    assert_eq!(answer["data"][1]["index"], 1);
    assert_eq!(answer["data"][0]["embedding"], json!(fake_embedding("hello world")));
    assert_eq!(answer["usage"]["prompt_tokens"], 5);
    let upstream = &app.fake.requests()[0];
    assert_eq!(
        (upstream.path.as_str(), upstream.body["model"].as_str()),
        ("/v1/embeddings", Some("text-embedding-3-small"))
    );

    // base64 of the little-endian f32s of the fake's vector for "hello world".
    let expected: Vec<u8> = fake_embedding("hello world").iter().flat_map(|x| x.to_le_bytes()).collect();
    let body = json!({ "model": "openai/text-embedding-3-small", "input": "hello world", "encoding_format": "base64" });
    let (status, answer) = post_json(&app, &token, "/embeddings", &body).await;
    assert_eq!(status, 200, "{answer}");
    let expected = loquat_test_support::base64_standard(&expected);
    assert_eq!(answer["data"][0]["embedding"], expected.as_str());

    let report =
        app.services.usage.usage_report(app.admin().await, UsageGrouping::Model, 1, None).await.expect("report");
    assert!(report.iter().any(|line| line.row.model == "text-embedding-3-small" && line.row.prompt_tokens == 7));
    for (body, status, param) in [
        (json!({ "model": "assistant/default", "input": "x" }), 400, "model"),
        (json!({ "model": "openai/text-embedding-3-small", "input": [1, 2] }), 400, "input"),
        (json!({ "model": "nobody/model", "input": "x" }), 404, "model"),
    ] {
        let (got, answer) = post_json(&app, &token, "/embeddings", &body).await;
        assert_eq!((got, openai_error(&answer)["param"].as_str()), (status, Some(param)), "{answer}");
    }
    app.cleanup().await;
}
