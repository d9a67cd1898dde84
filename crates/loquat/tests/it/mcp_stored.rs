//! MCP servers added in the product, against real servers (`mcp_server.py`): a member's own
//! Streamable HTTP and legacy SSE servers (headers stored encrypted, private addresses refused,
//! nobody else sees or uses them, a role without `mcp:own` cannot have them) and an
//! administrator's local command for everyone.

use loquat_core::domain::MessageStatus;
use loquat_core::id::{AssistantId, MessageId};
use loquat_test_support::fake_upstream::Reply;

use crate::helpers::{TestApp, TestOptions};
use crate::mcp::{http_server, python, script, sse_server};

async fn app() -> TestApp {
    TestApp::spawn_with(TestOptions {
        // The test servers listen on the loopback address, which the guard refuses otherwise.
        configure: |config| config.ssrf_allow = "127.0.0.1".into(),
        ..TestOptions::default()
    })
    .await
}

/// Sends a message as `client` (the page script's way); returns the answer's id.
async fn send_as(app: &TestApp, client: &reqwest::Client, assistant: AssistantId, content: &str) -> MessageId {
    let response = client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", content), ("topic_id", "")])
        .send()
        .await
        .expect("send");
    let json: serde_json::Value = response.json().await.expect("JSON");
    json["answer_id"].as_str().expect("answer id").parse().expect("id")
}

async fn post_as(app: &TestApp, client: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client.post(app.url(path)).header("accept", "text/html").form(form).send().await.expect("POST")
}

#[tokio::test]
async fn a_members_own_http_and_sse_servers_are_theirs_alone() {
    let Some(python) = python() else { return };
    let (http, sse) = (http_server(&python).await, sse_server(&python).await);
    let app = app().await;
    let (bob, bob_id) = crate::hardening::member(&app, "Bob").await;

    // A private address is refused before anything is stored.
    for address in ["http://10.1.2.3/mcp", "http://169.254.169.254/latest", "http://[::1]:9/mcp"] {
        let form = [("name", "x"), ("transport", "http"), ("target", address)];
        let page = post_as(&app, &bob, "/settings/mcp", &form).await.text().await.expect("page");
        assert!(page.contains("Loquat does not connect to this address"), "{address}: {page}");
    }
    // Headers are kept encrypted, shown by name only.
    let form = [
        ("name", "tools"),
        ("transport", "http"),
        ("target", http.url.as_str()),
        ("secrets", "Authorization: Bearer bobs-secret-token"),
        ("enabled", "on"),
    ];
    assert_eq!(post_as(&app, &bob, "/settings/mcp", &form).await.status().as_u16(), 303);
    let legacy = [("name", "legacy"), ("transport", "sse"), ("target", sse.url.as_str()), ("enabled", "on")];
    assert_eq!(post_as(&app, &bob, "/settings/mcp", &legacy).await.status().as_u16(), 303);
    let stored = app.services.store().list_mcp_servers(bob_id).await.expect("stored");
    assert_eq!(stored.len(), 2);
    let secrets = stored[0].secrets_encrypted.as_deref().expect("encrypted");
    assert!(!secrets.contains("bobs-secret"), "{secrets}");
    let (_, page) = app.page_as(&bob, "/settings/mcp").await;
    assert!(page.contains("Authorization: ••••") && !page.contains("bobs-secret"), "{page}");

    // Both answer a check: the legacy one over its event stream.
    for server in &stored {
        let checked = post_as(&app, &bob, &format!("/settings/mcp/{}/check", server.id), &[]).await;
        let location = checked.headers()["location"].to_str().expect("ascii").to_owned();
        let (_, page) = app.page_as(&bob, &location).await;
        assert!(page.contains(&format!("{} answered with 6 tools.", server.name)), "{page}");
    }

    // Nobody else sees them, changes them or finds them in an assistant form.
    let other = format!("/settings/mcp/{}", stored[0].id);
    assert_eq!(app.page(&other).await.0, 404);
    assert_eq!(app.post_form(&format!("{other}/delete"), &[]).await.status().as_u16(), 404);
    let admin_assistant = app.default_assistant().await;
    let (_, form) = app.page(&format!("/assistants/{admin_assistant}/edit")).await;
    assert!(!form.contains(&stored[0].source_name()), "the administrator is offered Bob's server");

    // Bob's assistant calls a tool of each.
    let assistant = app.services.assistants.default_assistant(bob_id).await.expect("assistant").id;
    let (_, form) = app.page_as(&bob, &format!("/assistants/{assistant}/edit")).await;
    assert!(form.contains(&stored[0].source_name()) && form.contains(&stored[1].source_name()), "{form}");
    let names = [stored[0].source_name(), stored[1].source_name()];
    let fields =
        [("title", "Agent"), ("model", "openai::gpt-4.1"), ("tools", names[0].as_str()), ("tools", names[1].as_str())];
    assert_eq!(post_as(&app, &bob, &format!("/assistants/{assistant}"), &fields).await.status().as_u16(), 303);
    app.fake.set_default_reply(Reply::text("A title"));
    app.fake.push_reply(
        Reply::text("").tool_call("tools__add", r#"{"a": 2, "b": 3}"#).tool_call("legacy__shout", r#"{"text": "hi"}"#),
    );
    app.fake.push_reply(Reply::text("5 and HI."));
    let answer = send_as(&app, &bob, assistant, "Use both").await;
    assert_eq!(app.finished_of(bob_id, answer).await.status, MessageStatus::Complete);
    let steps = app.services.assistants.message_steps(bob_id, answer).await.expect("steps");
    let results: Vec<(&str, &str)> = steps.iter().map(|s| (s.tool.as_str(), s.result.as_str())).collect();
    assert_eq!(results, [("tools__add", "5"), ("legacy__shout", "HI")]);

    // A role whose tool list leaves out members' own servers can neither add nor use them.
    let only_search = [("tools", "read_page")];
    app.post_redirect("/admin/settings/tools-user", &only_search).await;
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let form = [("name", "more"), ("transport", "http"), ("target", http.url.as_str())];
    let refused = post_as(&app, &bob, "/settings/mcp", &form).await.text().await.expect("page");
    assert!(refused.contains("has not allowed members"), "{refused}");
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("No tools."));
    let answer = send_as(&app, &bob, assistant, "Again").await;
    app.finished_of(bob_id, answer).await;
    let requests = app.fake.requests();
    let asked = requests.iter().rev().find(|r| r.body.to_string().contains("Again")).expect("asked").body.clone();
    assert!(asked.get("tools").is_none(), "tools offered: {}", asked["tools"]);

    // Deleting is the owner's.
    let deleted = post_as(&app, &bob, &format!("/settings/mcp/{}/delete", stored[1].id), &[]).await;
    assert_eq!(deleted.status().as_u16(), 303);
    assert_eq!(app.services.store().list_mcp_servers(bob_id).await.expect("read").len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn an_administrators_local_command_serves_everyone_and_only_they_add_commands() {
    let Some(python) = python() else { return };
    let app = app().await;
    let (bob, bob_id) = crate::hardening::member(&app, "Bob").await;
    let script = script().display().to_string();
    let args = format!("{script}\nstdio");
    let command =
        [("name", "local"), ("transport", "stdio"), ("target", python.as_str()), ("args", &args), ("enabled", "on")];
    // A member cannot run a command on the server.
    let refused = post_as(&app, &bob, "/settings/mcp", &command).await.text().await.expect("page");
    assert!(refused.contains("Only an administrator can add a local command"), "{refused}");
    assert!(app.services.store().list_mcp_servers(bob_id).await.expect("read").is_empty());
    assert_eq!(post_as(&app, &bob, "/admin/tools/servers", &command).await.status().as_u16(), 404);

    app.post_redirect("/admin/tools/servers", &command).await;
    let shared = app.services.store().list_shared_mcp_servers().await.expect("read");
    assert_eq!(shared.len(), 1);
    let name = shared[0].source_name();
    let (_, panel) = app.page("/admin/tools").await;
    assert!(panel.contains(&format!("/admin/tools/servers/{}", shared[0].id)), "{panel}");
    let checked = app.post_form("/admin/tools/check", &[("name", &name), ("label", "local")]).await;
    let (_, panel) = app.page(checked.headers()["location"].to_str().expect("ascii")).await;
    assert!(panel.contains("local answered with 6 tools."), "{panel}");

    // Bob gives it to his assistant and uses it.
    let assistant = app.services.assistants.default_assistant(bob_id).await.expect("assistant").id;
    let fields = [("title", "Agent"), ("model", "openai::gpt-4.1"), ("tools", name.as_str())];
    assert_eq!(post_as(&app, &bob, &format!("/assistants/{assistant}"), &fields).await.status().as_u16(), 303);
    app.fake.set_default_reply(Reply::text("A title"));
    app.fake.push_reply(Reply::text("").tool_call("local__add", r#"{"a": 20, "b": 22}"#));
    app.fake.push_reply(Reply::text("42."));
    let answer = send_as(&app, &bob, assistant, "Add").await;
    app.finished_of(bob_id, answer).await;
    let steps = app.services.assistants.message_steps(bob_id, answer).await.expect("steps");
    assert_eq!((steps[0].tool.as_str(), steps[0].result.as_str()), ("local__add", "42"));

    // Removing it removes it from everyone's assistants.
    app.post_redirect(&format!("/admin/tools/servers/{}/delete", shared[0].id), &[]).await;
    let (_, form) = app.page_as(&bob, &format!("/assistants/{assistant}/edit")).await;
    assert!(!form.contains(&name), "still offered");
    app.cleanup().await;
}
