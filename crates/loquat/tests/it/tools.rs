//! Tools over HTTP, on every protocol: an assistant given `web_search` and `read_page` answers
//! by calling them (a fake SearXNG and a fake web page), each call shows folded above the
//! answer, live and after a reload; bad calls, private addresses and hostile results become
//! failed steps the model reads, never a failed answer or markup on the page.

use std::net::SocketAddr;

use axum::extract::Query;
use axum::response::{Html, IntoResponse};
use axum::routing::get;
use loquat_core::domain::{MessageStatus, Protocol};
use loquat_test_support::fake_upstream::{FakeUpstream, Reply};
use serde_json::{Value, json};

use crate::helpers::{TestApp, TestOptions};

/// A SearXNG (`/search?q=…&format=json`, answering after `delay`) whose results point at this
/// server's `/report`.
pub(crate) async fn fake_web_after(delay: std::time::Duration) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let search = move |Query(query): Query<std::collections::HashMap<String, String>>| async move {
        tokio::time::sleep(delay).await;
        if query.get("format").map(String::as_str) != Some("json") {
            return (axum::http::StatusCode::FORBIDDEN, "json format not enabled").into_response();
        }
        let q = query.get("q").cloned().unwrap_or_default();
        axum::Json(json!({
            "query": q,
            "results": [
                {"title": "Loquat annual report 2023", "url": format!("http://{address}/report"),
                 "content": "Research and development spending.", "engine": "fake"},
                {"title": "<img src=x onerror=alert(1)>", "url": "https://evil.example/",
                 "content": "![tracker](https://evil.example/pixel.png)", "engine": "fake"}
            ]
        }))
        .into_response()
    };
    let report = || async {
        Html(
            "<html><head><title>Annual report</title></head><body><nav>Menu</nav><main><h1>R&amp;D</h1>\
             <p>Spending grew 15% in 2023.</p></main></body></html>",
        )
    };
    let app = axum::Router::new().route("/search", get(search)).route("/report", get(report));
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

async fn fake_web() -> SocketAddr {
    fake_web_after(std::time::Duration::ZERO).await
}

async fn app_with_search() -> (TestApp, SocketAddr) {
    let web = fake_web().await;
    let options = TestOptions {
        env: vec![("SEARXNG_URL", format!("http://{web}"))],
        // The fake page is on this machine: allow it (other private addresses stay refused).
        configure: |config| config.ssrf_allow = "127.0.0.1".into(),
        ..TestOptions::default()
    };
    (TestApp::spawn_with(options).await, web)
}

/// Gives the default assistant `model` (`provider::model`) and both tools, from its form.
async fn give_tools(app: &TestApp, model: &str) -> loquat_core::id::AssistantId {
    let assistant = app.default_assistant().await;
    let form = [("title", "Researcher"), ("model", model), ("tools", "web_search"), ("tools", "read_page")];
    app.post_redirect(&format!("/assistants/{assistant}"), &form).await;
    assistant
}

fn topic_url(sent: &crate::helpers::SendResult) -> String {
    sent.json["topic_url"].as_str().expect("a topic url").to_owned()
}

/// Every recorded request body as text (to look for what the model was sent).
fn bodies(upstream: &FakeUpstream) -> Vec<String> {
    upstream.requests().iter().map(|request| request.body.to_string()).collect()
}

#[tokio::test]
async fn an_assistant_searches_and_reads_a_page_on_every_protocol() {
    let (app, web) = app_with_search().await;
    let (_, form) = app.page(&format!("/assistants/{}/edit", app.default_assistant().await)).await;
    assert!(form.contains("value=\"web_search\"") && form.contains("value=\"read_page\""), "the form offers them");
    let page_url = format!("http://{web}/report");
    let mut upstreams = Vec::new();
    for protocol in [Protocol::OpenAi, Protocol::Anthropic, Protocol::Gemini, Protocol::Ollama, Protocol::Azure] {
        let model = format!("{}-model", protocol.as_str());
        let upstream = FakeUpstream::start(protocol).await;
        upstream.set_recording(true);
        upstream.push_reply(Reply::text("Let me search.").tool_call("web_search", r#"{"query":"loquat R&D 2023"}"#));
        upstream.push_reply(Reply::text("").tool_call("read_page", json!({ "url": page_url }).to_string()));
        upstream.push_reply(Reply::text("R&D spending grew 15% in 2023."));
        upstream.set_default_reply(Reply::text("A title"));
        let base_url = upstream.base_url();
        let list = format!("{model}<128000:fc>");
        app.post_redirect(
            "/settings/providers",
            &[
                ("name", protocol.as_str()),
                ("protocol", protocol.as_str()),
                ("base_url", base_url.as_str()),
                ("api_key", "sk-native"),
                ("model_list", list.as_str()),
                ("api_version", "2024-10-21"),
                ("enabled", "on"),
            ],
        )
        .await;
        let providers = app.services.providers.provider_settings(app.admin().await).await.expect("providers");
        let id = providers.iter().find(|p| p.setting.name == protocol.as_str()).expect("saved").setting.id;
        let assistant = give_tools(&app, &format!("{id}::{model}")).await;
        let sent = app.send(assistant, None, "How did R&D spending change in 2023?").await;
        let answer = app.finished(sent.answer).await;
        let name = protocol.as_str();
        assert_eq!(answer.status, MessageStatus::Complete, "{name}: {answer:?}");
        assert_eq!(answer.content, "Let me search.\n\nR&D spending grew 15% in 2023.", "{name}");

        // The model read the search results, then the page's main content (without its menu).
        let sent_bodies = bodies(&upstream);
        assert!(sent_bodies.len() >= 3, "{name}: {sent_bodies:?}");
        assert!(sent_bodies[1].contains("Loquat annual report 2023") && sent_bodies[1].contains(&page_url), "{name}");
        assert!(sent_bodies[2].contains("Spending grew 15% in 2023.") && !sent_bodies[2].contains("Menu"), "{name}");

        // The calls show folded above the answer after a reload, their results escaped.
        let (_, page) = app.page(&topic_url(&sent)).await;
        assert_eq!(page.matches("class=\"tool-step step-done\"").count(), 2, "{name}: {page}");
        assert!(page.contains("<span class=\"tool-name\">web_search</span>"), "{name}");
        // Each call sits where the model made it: after its first words, before the answer.
        let at = |text: &str| page.find(text).unwrap_or_else(|| panic!("{name}: {text} not on the page"));
        assert!(
            at("<p>Let me search.</p>") < at("tool-step") && at("tool-step") < at("R&amp;D spending grew"),
            "{name}"
        );
        let start = page.find("tool-result").unwrap_or(0);
        let shown = &page[start..(start + 600).min(page.len())];
        assert!(
            page.contains("&#60;img src=x onerror=alert(1)&#62;") && !page.contains("<img src=x"),
            "{name}: {shown}"
        );
        assert!(!page.contains("<img src=\"https://evil.example"), "{name}: no remote image loads");
        // The search results are the answer's sources; one opens with its address.
        let link = format!("/messages/{}/sources/1", sent.answer);
        assert!(page.contains(&format!("<a href=\"{link}\">Loquat annual report 2023</a>")), "{name}: {page}");
        let (_, source) = app.page(&link).await;
        assert!(
            source.contains(&format!("href=\"http://{web}/report\" rel=\"noopener noreferrer nofollow\"")),
            "{source}"
        );
        upstreams.push(upstream);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn bad_calls_and_private_addresses_become_failed_steps_the_model_reads() {
    let (app, _) = app_with_search().await;
    let assistant = give_tools(&app, "openai::gpt-4.1").await;
    app.fake.set_recording(true);
    app.fake.push_reply(
        Reply::text("")
            .tool_call("read_page", r#"{"url":"http://10.1.2.3/admin"}"#)
            .tool_call("launch_missiles", "{}")
            .tool_call("web_search", "{not json"),
    );
    app.fake.push_reply(Reply::text("I could not read it."));
    app.fake.set_default_reply(Reply::text("A title"));
    let sent = app.send(assistant, None, "Read the admin page").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Complete, "{answer:?}");
    assert_eq!(answer.content, "I could not read it.");
    let steps = app.services.assistants.message_steps(app.admin().await, sent.answer).await.expect("steps");
    let results: Vec<(&str, &str)> = steps.iter().map(|s| (s.tool.as_str(), s.status.as_str())).collect();
    assert_eq!(results, [("read_page", "failed"), ("launch_missiles", "failed"), ("web_search", "failed")]);
    assert!(steps[0].result.contains("10.1.2.3"), "the guard names the refused host: {}", steps[0].result);
    assert!(steps[1].result.contains("no tool named \"launch_missiles\""), "{}", steps[1].result);
    assert!(steps[2].result.contains("not valid JSON"), "{}", steps[2].result);
    // The model was told each reason.
    let second: Value = app.fake.requests()[1].body.clone();
    let told = second.to_string();
    assert!(told.contains("no tool named") && told.contains("not valid JSON"), "{told}");
    // Another user cannot see these steps, nor turn the topic's tools off.
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    assert_eq!(app.page_as(&bob, &topic_url(&sent)).await.0, 404);
    let toggle = format!("/topics/{}/tools", sent.topic);
    let refused = bob.post(app.url(&toggle)).form(&[("on", "0")]).send().await.expect("post");
    assert_eq!(refused.status().as_u16(), 404);

    // Turned off for this topic, the next question goes without tools.
    let (_, page) = app.page(&topic_url(&sent)).await;
    assert!(page.contains(&format!("action=\"{toggle}\"")) && page.contains("web_search, read_page"), "offered");
    app.post_redirect(&toggle, &[("on", "0")]).await;
    app.fake.push_reply(Reply::text("Without tools."));
    let before = app.fake.request_count();
    let next = app.send(assistant, Some(sent.topic), "And now?").await;
    assert_eq!(app.finished(next.answer).await.content, "Without tools.");
    let asked = app.fake.requests().into_iter().skip(before).find(|r| r.body.to_string().contains("And now?"));
    assert!(asked.expect("asked").body.get("tools").is_none(), "no tools sent");
    assert!(app.page(&topic_url(&sent)).await.1.contains("Use in this topic"));
    app.cleanup().await;
}

#[tokio::test]
async fn the_administrator_chooses_the_tools_of_each_role() {
    let (app, _) = app_with_search().await;
    let (bob, bob_id) = crate::hardening::member(&app, "Bob").await;
    // Members may search, not read pages.
    let saved = app.post_form("/admin/settings/tools-user", &[("tools", "web_search")]).await;
    assert!(saved.status().is_redirection(), "{}", saved.status());
    let (_, settings) = app.page("/admin/settings").await;
    assert!(settings.contains("action=\"/admin/settings/tools-user\""), "{settings}");
    let refused = bob.post(app.url("/admin/settings/tools-user")).form(&[("all", "on")]).send().await.expect("post");
    assert_eq!(refused.status().as_u16(), 404, "members have no say");

    let assistant = app.services.assistants.default_assistant(bob_id).await.expect("assistant").id;
    let (_, form) = app.page_as(&bob, &format!("/assistants/{assistant}/edit")).await;
    assert!(form.contains("value=\"web_search\"") && !form.contains("value=\"read_page\""), "{form}");
    // Even an assistant that names read_page gets only what the role allows.
    let form = [("title", "Bob's"), ("model", "openai::gpt-4.1"), ("tools", "web_search"), ("tools", "read_page")];
    let saved = bob.post(app.url(&format!("/assistants/{assistant}"))).form(&form).send().await.expect("post");
    assert!(saved.status().is_redirection());
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("Hello."));
    app.fake.set_default_reply(Reply::text("A title"));
    let sent = bob
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", "Hi"), ("topic_id", "")])
        .send()
        .await
        .expect("send");
    assert_eq!(sent.status().as_u16(), 200);
    assert!(app.fake.wait_for_requests(1, std::time::Duration::from_secs(10)).await);
    let request = app.fake.requests().into_iter().find(|r| r.body.to_string().contains("\"Hi\"")).expect("asked");
    let names: Vec<&str> = request.body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(names, ["web_search"]);
    // Back to every tool.
    app.post_redirect("/admin/settings/tools-user", &[("all", "on")]).await;
    let (_, form) = app.page_as(&bob, &format!("/assistants/{assistant}/edit")).await;
    assert!(form.contains("value=\"read_page\""));
    app.cleanup().await;
}

#[tokio::test]
async fn the_model_searches_the_knowledge_bases_and_cites_what_it_found() {
    use crate::attachments::{upload, wait_ready};
    let app = TestApp::spawn().await;
    let created = app.post_form("/knowledge", &[("name", "Annual reports")]).await;
    let base = created.headers()["location"].to_str().expect("ascii").trim_start_matches("/knowledge/").to_owned();
    let report = upload(&app, &app.client, "annual-report.pdf", &loquat_docs::fixtures::annual_report_pdf()).await;
    app.post_form(&format!("/knowledge/{base}/files"), &[("file", &report)]).await;
    wait_ready(&app, &base).await;
    // The assistant does not answer from the base on every question: the model searches it.
    let assistant = app.default_assistant().await;
    let form = [("title", "Analyst"), ("model", "openai::gpt-4.1"), ("tools", "search_knowledge")];
    app.post_redirect(&format!("/assistants/{assistant}"), &form).await;
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("").tool_call("search_knowledge", r#"{"query":"研发投入"}"#));
    app.fake.push_reply(Reply::text("R&D reached 1.2 billion in 2023 [1]."));
    app.fake.set_default_reply(Reply::text("A title"));
    let sent = app.send(assistant, None, "How much was spent on R&D?").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Complete, "{answer:?}");
    let first = app.fake.requests().into_iter().next().expect("asked").body.to_string();
    assert!(!first.contains("<sources>"), "no retrieval up front: the base is not the assistant's");
    let told = app.fake.requests()[1].body.to_string();
    assert!(told.contains("公司2023年研发投入为12亿元") && told.contains("[1] annual-report.pdf, page 2"), "{told}");
    // The answer cites the passage the tool found, which opens like any source.
    let (_, page) = app.page(&topic_url(&sent)).await;
    let link = format!("/messages/{}/sources/1", sent.answer);
    assert!(page.contains(&format!("<a href=\"{link}\" data-source=\"1\">1</a>")), "{page}");
    assert!(page.contains("annual-report.pdf · p. 2"), "{page}");
    let (status, source) = app.page(&link).await;
    assert_eq!(status, 200);
    assert!(source.contains("公司2023年研发投入为12亿元"), "{source}");
    app.cleanup().await;
}

#[tokio::test]
async fn an_assistant_with_tools_on_the_api_runs_them_and_answers_once() {
    let (app, _) = app_with_search().await;
    let token = crate::openai_api::api_token(&app).await;
    let assistant = give_tools(&app, "openai::gpt-4.1").await;
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("Looking. ").tool_call("web_search", r#"{"query":"loquat R&D"}"#).usage(10, 5));
    app.fake.push_reply(Reply::text("It grew 15%.").usage(30, 4));
    let body =
        json!({ "model": format!("assistant/{assistant}"), "messages": [{ "role": "user", "content": "R&D?" }] });
    let response =
        app.client.post(app.url("/v1/chat/completions")).bearer_auth(&token).json(&body).send().await.expect("post");
    assert_eq!(response.status().as_u16(), 200);
    let answer: Value = response.json().await.expect("json");
    assert_eq!(answer["choices"][0]["message"]["content"], "Looking. It grew 15%.", "{answer}");
    assert_eq!(answer["choices"][0]["finish_reason"], "stop", "the caller sees one answer: {answer}");
    assert!(answer["choices"][0]["message"]["tool_calls"].is_null(), "the calls were Loquat's: {answer}");
    assert_eq!(
        (answer["usage"]["prompt_tokens"].as_u64(), answer["usage"]["completion_tokens"].as_u64()),
        (Some(40), Some(9))
    );
    let requests = app.fake.requests();
    assert_eq!(requests.len(), 2, "the model was asked again with the results");
    assert!(requests[1].body.to_string().contains("Loquat annual report 2023"));

    // Streamed, the call shows as a tool_calls delta as it starts; the finish stays "stop".
    // `loquat_tool_steps: false` leaves it out. The knowledge search is a tool here too.
    let form = [("title", "R"), ("model", "openai::gpt-4.1"), ("tools", "web_search"), ("tools", "search_knowledge")];
    app.post_redirect(&format!("/assistants/{assistant}"), &form).await;
    for shown in [true, false] {
        app.fake.push_reply(Reply::text("Looking. ").tool_call("web_search", r#"{"query":"loquat R&D"}"#));
        app.fake.push_reply(Reply::text("It grew 15%."));
        let mut body = json!({ "model": format!("assistant/{assistant}"), "stream": true,
                               "messages": [{ "role": "user", "content": "R&D?" }] });
        if !shown {
            body["loquat_tool_steps"] = json!(false);
        }
        let response = app.client.post(app.url("/v1/chat/completions")).bearer_auth(&token).json(&body).send().await;
        let text = response.expect("post").text().await.expect("stream");
        let chunks: Vec<Value> = text
            .lines()
            .filter_map(|line| line.strip_prefix("data: "))
            .filter(|data| *data != "[DONE]")
            .map(|data| serde_json::from_str(data).expect("a chunk"))
            .collect();
        let steps: Vec<&Value> =
            chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"].get("tool_calls")).collect();
        let content: String =
            chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str()).collect();
        let finish: Vec<&str> =
            chunks.iter().filter_map(|chunk| chunk["choices"][0]["finish_reason"].as_str()).collect();
        assert_eq!((content.as_str(), finish.as_slice()), ("Looking. It grew 15%.", ["stop"].as_slice()), "{text}");
        if shown {
            assert_eq!(steps.len(), 1, "{text}");
            assert_eq!(steps[0][0]["function"]["name"], "web_search", "{text}");
        } else {
            assert!(steps.is_empty(), "{text}");
        }
        let told = app.fake.requests().last().expect("asked").body.to_string();
        assert!(told.contains("search_knowledge"), "the knowledge search is offered on the API: {told}");
    }

    // A caller that brings its own tools gets the calls back, as before.
    app.fake.push_reply(Reply::text("").tool_call("weather", r#"{"city":"Paris"}"#));
    let tools = json!([{ "type": "function", "function": { "name": "weather", "parameters": { "type": "object" } } }]);
    let body = json!({ "model": format!("assistant/{assistant}"), "messages": [{ "role": "user", "content": "Paris?" }], "tools": tools });
    let answer: Value = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&body)
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(answer["choices"][0]["message"]["tool_calls"][0]["function"]["name"], "weather", "{answer}");
    app.cleanup().await;
}
