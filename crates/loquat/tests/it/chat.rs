//! Chatting end to end: streaming, persistence, closed tabs, failures, stop, branches, what is
//! sent upstream, and auto-titles.

use std::time::Duration;

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use loquat_core::domain::{AssistantConfig, MessageStatus};
use loquat_core::id::MessageId;
use loquat_test_support::fake_openai::Reply;
use serde_json::json;

use crate::helpers::{TEST_KEY, TestApp, TestOptions, eventually};

#[tokio::test]
async fn an_answer_streams_and_is_stored() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(
        Reply::text("Hello **world**, nice to meet you.")
            .reasoning("Let me think.")
            .usage(12, 8)
            .delay_between_chunks(Duration::from_millis(20)),
    );

    let sent = app.send(assistant, None, "Hi there").await;
    assert_eq!(sent.json["created_topic"], true);
    assert!(sent.json["html"].as_str().expect("html").contains("Hi there"));
    let events = app.events(sent.answer).await;
    let renders: Vec<_> = events.iter().filter(|(name, _)| name == "render").collect();
    assert!(!renders.is_empty(), "at least one render event before done");
    let (last_name, last) = events.last().expect("events");
    assert_eq!(last_name, "done");
    assert_eq!(last["status"], "complete");
    assert!(last["html"].as_str().expect("html").contains("<strong>world</strong>"));

    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.content, "Hello **world**, nice to meet you.");
    assert_eq!(answer.reasoning, "Let me think.");
    assert_eq!(answer.status, MessageStatus::Complete);
    assert_eq!(answer.usage.map(|u| (u.prompt_tokens, u.completion_tokens)), Some((12, 8)));
    assert!(answer.ttft_ms.is_some() && answer.duration_ms.is_some());
    assert_eq!(answer.model.as_deref(), Some("gpt-4.1"));
    assert_eq!(answer.provider.as_deref(), Some("openai"));

    let request = &app.fake.requests()[0];
    assert_eq!(request.header("authorization"), Some(format!("Bearer {TEST_KEY}").as_str()));
    assert_eq!(request.body["stream"], true);
    assert_eq!(request.body["stream_options"]["include_usage"], true);
    assert_eq!(request.body["messages"], json!([{ "role": "user", "content": "Hi there" }]));

    // Reloading the topic shows the stored answer, rendered, with its reasoning folded.
    let (status, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    assert_eq!(status, 200);
    assert!(page.contains("<strong>world</strong>"));
    assert!(page.contains("class=\"reasoning\""));
    assert!(page.contains("20 tokens"));
    app.cleanup().await;
}

#[tokio::test]
async fn a_closed_tab_does_not_stop_the_answer() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::tokens(30).delay_between_chunks(Duration::from_millis(10)));
    let sent = app.send(assistant, None, "Write a lot").await;
    // A subscriber that goes away after the first event: the tab closing.
    {
        let response =
            app.client.get(app.url(&format!("/messages/{}/events", sent.answer))).send().await.expect("events");
        let mut body = response.bytes_stream();
        let _ = futures_util::StreamExt::next(&mut body).await;
    }
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Complete);
    assert_eq!(answer.content.split_whitespace().count(), 30);
    assert_eq!(app.fake.cancelled_streams(), 0);
    // Coming back: the stream ends at once with the finished answer.
    let events = app.events(sent.answer).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1["status"], "complete");
    app.cleanup().await;
}

#[tokio::test]
async fn a_stream_that_cannot_finish_ends_with_an_error_event() {
    // The answer disappears while it is followed: the stream must say so, not send an empty body.
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::tokens(60).delay_between_chunks(Duration::from_millis(20)));
    let sent = app.send(assistant, None, "hello").await;
    let user = app.admin().await;
    let response = app
        .client
        .get(app.url(&format!("/messages/{}/events", sent.answer)))
        .header("accept", "text/event-stream")
        .send()
        .await
        .expect("events");
    // The server subscribed before it answered: the answer is followed from here on.
    assert_eq!(response.status().as_u16(), 200);
    app.services.store().delete_message_subtree(user, sent.answer).await.expect("deleted");
    let mut stream = response.bytes_stream().eventsource();
    let mut events = Vec::new();
    let read = async {
        while let Some(event) = stream.next().await {
            let event = event.expect("valid SSE");
            let data: serde_json::Value = serde_json::from_str(&event.data).expect("JSON data");
            let end = event.event == "done" || event.event == "error";
            events.push((event.event, data));
            if end {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read).await.expect("the stream ends");
    let (name, data) = events.last().expect("events");
    assert_eq!(name, "error", "{events:?}");
    assert!(data["message"].as_str().is_some_and(|message| message.contains("does not exist")), "{data}");
    assert!(events.iter().all(|(name, _)| name != "done"), "{events:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_failure_mid_stream_keeps_the_partial_answer() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("one two three four five six").fail_after(3));
    let sent = app.send(assistant, None, "Go").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Error);
    assert_eq!(answer.content, "one two three");
    assert!(answer.error_kind.is_some());
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    assert!(page.contains("one two three"));
    assert!(page.contains("notice-error"));
    assert!(page.contains(&format!("/messages/{}/regenerate", sent.answer)), "a retry button");

    // An abrupt disconnect is an error too, never a silently truncated "complete" answer.
    app.fake.push_reply(Reply::text("alpha beta gamma delta").disconnect_after(2));
    let again = app.send(assistant, Some(sent.topic), "Again").await;
    let answer = app.finished(again.answer).await;
    assert_eq!(answer.status, MessageStatus::Error);
    assert_eq!(answer.content, "alpha beta");
    app.cleanup().await;
}

#[tokio::test]
async fn upstream_errors_become_plain_messages() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    let cases = [
        (401, "invalid_api_key", "invalid_key", "rejected the API key"),
        (429, "rate_limit_exceeded", "rate_limited", "rate limiting"),
        (404, "model_not_found", "model_not_found", "does not know this model"),
        (500, "server_error", "unavailable", "failed or ended the answer early"),
    ];
    let mut topic = None;
    for (status, code, kind, text) in cases {
        let reply = Reply::http_error(
            status,
            json!({ "error": { "message": format!("upstream says {code}"), "type": "error", "code": code } }),
        );
        // Rate limits and server errors are retried (three times) before the user hears of them.
        let tries = if matches!(status, 429 | 500) { 4 } else { 1 };
        for _ in 0..tries {
            app.fake.push_reply(reply.clone());
        }
        let sent = app.send(assistant, topic, "Hello").await;
        topic = Some(sent.topic);
        let answer = app.finished(sent.answer).await;
        assert_eq!(answer.status, MessageStatus::Error, "HTTP {status}");
        assert_eq!(answer.error_kind.as_deref(), Some(kind), "HTTP {status}");
        let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
        assert!(page.contains(text), "HTTP {status} shows {text:?}");
    }
    app.cleanup().await;
}

#[tokio::test]
async fn a_passing_failure_is_retried_and_a_broken_model_falls_back() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::http_error(
        429,
        json!({ "error": { "message": "slow down", "code": "rate_limit_exceeded" } }),
    ));
    app.fake.push_reply(Reply::text("after a retry"));
    app.fake.push_reply(Reply::text("Retries"));
    let sent = app.send(assistant, None, "Hello").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Complete, "after a retry"));
    app.titled(sent.topic).await;

    // The assistant names a fallback: when the primary model is refused, the fallback answers
    // and the answer records which model replied.
    let mut config = app.services.assistants.assistant(app.admin().await, assistant).await.expect("assistant").config;
    config.provider = "openai".into();
    config.model = "gpt-4.1".into();
    config.fallback_provider = "openai".into();
    config.fallback_model = "gpt-4o-mini".into();
    app.services.assistants.update_assistant(app.admin().await, assistant, config).await.expect("updated");
    app.fake.push_reply(Reply::http_error(
        404,
        json!({ "error": { "message": "no such model", "code": "model_not_found" } }),
    ));
    app.fake.push_reply(Reply::text("the fallback answers"));
    let sent = app.send(assistant, Some(sent.topic), "Again").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Complete);
    assert_eq!(answer.content, "the fallback answers");
    assert_eq!(answer.model.as_deref(), Some("gpt-4o-mini"));
    let models: Vec<_> = app.fake.requests().iter().rev().take(2).map(|r| r.body["model"].clone()).collect();
    assert_eq!(models, [json!("gpt-4o-mini"), json!("gpt-4.1")]);
    app.cleanup().await;
}

#[tokio::test]
async fn stop_cancels_the_upstream_request_and_keeps_the_text() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::tokens(500).delay_between_chunks(Duration::from_millis(20)));
    let sent = app.send(assistant, None, "Go on forever").await;
    let user = app.admin().await;
    eventually("some text", || async {
        app.services.generations().subscribe(user, sent.answer).is_some_and(|s| s.snapshot.content.len() > 10)
    })
    .await;
    let response = app
        .client
        .post(app.url(&format!("/messages/{}/stop", sent.answer)))
        .header("accept", "application/json")
        .send()
        .await
        .expect("stop");
    assert_eq!(response.status().as_u16(), 204);
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Stopped);
    assert!(!answer.content.is_empty());
    assert!(app.fake.wait_for_cancellation(Duration::from_secs(5)).await, "the upstream saw the cancellation");
    app.cleanup().await;
}

#[tokio::test]
async fn a_stalled_provider_times_out_and_keeps_the_partial_answer() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.generation.idle_timeout_secs = 1,
        ..TestOptions::default()
    })
    .await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("first second third").stall_after(2));
    let sent = app.send(assistant, None, "Hello").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Error);
    assert_eq!(answer.error_kind.as_deref(), Some("timeout"));
    assert_eq!(answer.content, "first second");
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    assert!(page.contains("The provider stopped responding."));
    app.cleanup().await;
}

#[tokio::test]
async fn regenerate_edit_and_switch_make_branches() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("First answer"));
    app.fake.push_reply(Reply::text("Branching"));
    let sent = app.send(assistant, None, "Question").await;
    app.finished(sent.answer).await;
    assert_eq!(app.titled(sent.topic).await, "Branching");

    app.fake.push_reply(Reply::text("Second answer"));
    let location = app.post_redirect(&format!("/messages/{}/regenerate", sent.answer), &[]).await;
    let topic_page = format!("/chat/{assistant}/{}", sent.topic);
    assert!(location.starts_with(&topic_page));
    let conversation = app.services.assistants.conversation(app.admin().await, sent.topic).await.expect("topic");
    let second = conversation.branch.last().expect("an answer").message.id;
    app.finished(second).await;
    let (_, page) = app.page(&topic_page).await;
    assert!(page.contains("Second answer") && !page.contains("First answer"));
    assert!(page.contains("2/2"));

    // Switch back to the first version.
    app.post_redirect(&format!("/messages/{}/switch", sent.answer), &[]).await;
    let (_, page) = app.page(&topic_page).await;
    assert!(page.contains("First answer") && !page.contains("Second answer"));
    assert!(page.contains("1/2"));

    // Editing the question makes a new branch with a new answer; the old one stays reachable.
    let question = conversation.branch[0].message.id;
    app.fake.push_reply(Reply::text("Answer to the edited question"));
    app.post_redirect(&format!("/messages/{question}/edit"), &[("content", "Edited question")]).await;
    let edited = app.services.assistants.conversation(app.admin().await, sent.topic).await.expect("topic");
    assert_eq!(edited.branch[0].message.content, "Edited question");
    assert_eq!((edited.branch[0].sibling_index, edited.branch[0].sibling_count), (2, 2));
    app.finished(edited.branch[1].message.id).await;
    let (_, page) = app.page(&topic_page).await;
    assert!(page.contains("Answer to the edited question"));

    // Deleting the edited question removes its branch and shows the original again.
    app.post_redirect(&format!("/messages/{}/delete", edited.branch[0].message.id), &[]).await;
    let after = app.services.assistants.conversation(app.admin().await, sent.topic).await.expect("topic");
    assert_eq!(after.branch[0].message.content, "Question");
    app.cleanup().await;
}

#[tokio::test]
async fn the_request_carries_system_role_history_limit_template_and_parameters() {
    let app = TestApp::spawn().await;
    let config = AssistantConfig {
        title: "Translator".into(),
        system_role: "You are {{model}}. Today is {{date}}.".into(),
        history_limit: Some(2),
        input_template: "Translate: {{text}}".into(),
        params: loquat_core::domain::ModelParams {
            temperature: Some(0.2),
            top_p: Some(0.9),
            max_tokens: Some(256),
            ..Default::default()
        },
        ..AssistantConfig::default()
    };
    let assistant = app.services.assistants.create_assistant(app.admin().await, config).await.expect("created").id;
    let mut topic = None;
    for (index, text) in ["one", "two", "three"].iter().enumerate() {
        app.fake.push_reply(Reply::text(format!("answer {index}")));
        if topic.is_none() {
            app.fake.push_reply(Reply::text("Numbers"));
        }
        let sent = app.send(assistant, topic, text).await;
        app.finished(sent.answer).await;
        if topic.is_none() {
            app.titled(sent.topic).await;
        }
        topic = Some(sent.topic);
    }
    let chats: Vec<_> = app
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.body["messages"][0]["content"].as_str().is_some_and(|c| c.starts_with("You are")))
        .collect();
    let last = chats.last().expect("a chat request");
    let messages = last.body["messages"].as_array().expect("messages");
    let today = jiff::Zoned::now().strftime("%Y-%m-%d").to_string();
    assert_eq!(messages[0]["content"], format!("You are gpt-4.1. Today is {today}."));
    let rest: Vec<_> = messages[1..].iter().map(|m| m["content"].as_str().expect("text")).collect();
    assert_eq!(rest, ["Translate: two", "answer 1", "Translate: three"]);
    assert_eq!(last.body["temperature"], json!(0.2));
    assert_eq!(last.body["max_tokens"], 256);
    assert!(last.body.get("presence_penalty").is_none(), "unset parameters are not sent");
    app.cleanup().await;
}

#[tokio::test]
async fn a_new_topic_gets_a_title_from_the_model() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Rust ownership means each value has one owner."));
    app.fake.push_reply(Reply::text("\"Rust ownership basics.\""));
    let sent = app.send(assistant, None, "Explain Rust ownership").await;
    app.finished(sent.answer).await;
    let user = app.admin().await;
    eventually("the topic title", || async {
        app.services.assistants.topic(user, sent.topic).await.is_ok_and(|t| t.title == "Rust ownership basics")
    })
    .await;
    let title_request = &app.fake.requests()[1];
    let prompt = title_request.body["messages"][0]["content"].as_str().expect("system prompt");
    assert!(prompt.contains("en"));
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    assert!(page.contains("<title>Rust ownership basics · Loquat</title>"));
    app.cleanup().await;
}

#[tokio::test]
async fn model_list_from_the_environment_shapes_the_picker() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("OPENAI_MODEL_LIST", "-all,my-agent=My Agent<32000:fc>,+gpt-4o".into())],
        ..TestOptions::default()
    })
    .await;
    let assistant = app.default_assistant().await;
    let (_, page) = app.page(&format!("/chat/{assistant}")).await;
    assert!(page.contains("value=\"openai::my-agent\""));
    assert!(page.contains("My Agent"));
    // Capabilities are icons named in words (no emoji, which many systems cannot draw).
    assert!(page.contains("class=\"cap cap-tools\" title=\"Function calling\""), "{page}");
    assert!(page.contains(">32K<") && page.contains("Context window: 32K tokens"));
    assert!(!page.contains('🔧') && !page.contains('👁'));
    assert!(page.contains("value=\"openai::gpt-4o\""));
    assert!(!page.contains("openai::gpt-4.1\""));
    // The first listed model answers by default.
    let sent = app.send(assistant, None, "Hi").await;
    app.finished(sent.answer).await;
    assert_eq!(app.fake.requests()[0].body["model"], "my-agent");
    app.cleanup().await;
}

#[tokio::test]
async fn the_same_flow_works_on_postgres() {
    let Some(database) = loquat_test_support::postgres::TestDatabase::from_env().await else {
        println!("skipped: LOQUAT_TEST_DATABASE_URL is not set");
        return;
    };
    let app = TestApp::spawn_with(TestOptions { database: Some(database), ..TestOptions::default() }).await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Stored in Postgres").delay_between_chunks(Duration::from_millis(5)));
    let sent = app.send(assistant, None, "Where am I stored?").await;
    let events = app.events(sent.answer).await;
    assert_eq!(events.last().expect("done").1["status"], "complete");
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    assert!(page.contains("Stored in Postgres"));
    assert_eq!(app.services.store().backend_name(), "postgres");
    app.cleanup().await;
}

#[tokio::test]
async fn a_cut_off_answer_continues_as_a_new_version_that_starts_with_its_text() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.generation.idle_timeout_secs = 1,
        ..TestOptions::default()
    })
    .await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("first second third").stall_after(2));
    app.fake.set_default_reply(Reply::text("A title"));
    let sent = app.send(assistant, None, "Count").await;
    let cut = app.finished(sent.answer).await;
    assert_eq!((cut.status, cut.content.as_str()), (MessageStatus::Error, "first second"));
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    assert!(page.contains(&format!("/messages/{}/continue", sent.answer)), "offered on the cut-off answer");

    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text(" third fourth."));
    let location = app.post_redirect(&format!("/messages/{}/continue", sent.answer), &[]).await;
    let continued: MessageId = location.rsplit("#m-").next().expect("anchor").parse().expect("id");
    let answer = app.finished(continued).await;
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Complete, "first second third fourth."));
    assert_eq!(answer.parent_id, cut.parent_id, "a new version of the same answer");
    // The model read its cut-off words, then was asked to go on.
    let asked = app.fake.requests().into_iter().find(|r| r.body.to_string().contains("Continue your previous"));
    let messages = asked.expect("asked to continue").body["messages"].as_array().expect("messages").clone();
    let roles: Vec<&str> = messages.iter().rev().take(3).filter_map(|m| m["role"].as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(messages[messages.len() - 2]["content"], "first second");
    // The cut-off version is kept; a finished answer is not continued.
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    assert!(page.contains("2/2") && !page.contains(&format!("/messages/{continued}/continue")), "{page}");
    let question = cut.parent_id.expect("a question");
    let refused = app.post_form(&format!("/messages/{question}/continue"), &[]).await;
    assert_eq!(refused.status().as_u16(), 422, "a question is not an answer");
    app.cleanup().await;
}
