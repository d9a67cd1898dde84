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

    // A private address is refused before anything is stored (names are resolved and checked
    // the same way, in the guard's own tests; here 127.0.0.1 is allowed for the test servers).
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

/// A plugin's server: its manifest at `/manifest.json` (the API at `/now`, and `/secret` on a
/// private address), and a gateway at `/gateway`. Each call answers with what it received.
async fn plugin_server() -> std::net::SocketAddr {
    use axum::routing::{get, post};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let manifest = move || async move {
        axum::Json(serde_json::json!({
            "identifier": "weather",
            "meta": { "title": "Weather", "avatar": "☀️" },
            "systemRole": "Use metric units.",
            "api": [
                { "name": "now", "description": "Current weather", "url": format!("http://{address}/now"),
                  "parameters": { "type": "object", "properties": { "city": { "type": "string" } },
                                  "required": ["city"] } },
                { "name": "secret", "description": "Inside", "url": "http://10.9.8.7/secret",
                  "parameters": { "type": "object", "properties": {} } }
            ]
        }))
    };
    let echo = |headers: axum::http::HeaderMap, body: String| async move {
        let settings = headers.get("x-lobe-plugin-settings").map(|v| v.to_str().unwrap_or_default().to_owned());
        format!("settings={} body={body}", settings.unwrap_or_default())
    };
    let described = move || async move {
        axum::Json(serde_json::json!({ "identifier": "described", "api": [],
                                       "openapi": format!("http://{address}/openapi.json") }))
    };
    let openapi = || async {
        axum::Json(serde_json::json!({
            "openapi": "3.0.0",
            "servers": [{ "url": "/v2" }],
            "components": { "securitySchemes": { "key": { "type": "apiKey", "in": "header", "name": "X-Api-Key" } } },
            "paths": { "/cities/{city}": { "get": { "operationId": "city", "summary": "A city",
                "parameters": [{ "name": "city", "in": "path", "required": true, "schema": { "type": "string" } }] } } }
        }))
    };
    let city = |axum::extract::Path(city): axum::extract::Path<String>, headers: axum::http::HeaderMap| async move {
        let key = headers.get("x-api-key").map(|v| v.to_str().unwrap_or_default().to_owned()).unwrap_or_default();
        format!("city={city} key={key}")
    };
    let app = axum::Router::new()
        .route("/described.json", get(described))
        .route("/openapi.json", get(openapi))
        .route("/v2/cities/{city}", get(city))
        .route("/manifest.json", get(manifest))
        .route("/now", post(echo))
        .route("/gateway", post(echo));
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test]
async fn a_lobechat_plugin_is_installed_from_its_manifest_and_called_from_the_server() {
    let web = plugin_server().await;
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("PLUGIN_SETTINGS", "weather:API_KEY=admin-key;UNITS=metric".to_owned())],
        configure: |config| config.ssrf_allow = "127.0.0.1".into(),
        ..TestOptions::default()
    })
    .await;
    let (bob, bob_id) = crate::hardening::member(&app, "Bob").await;
    // A manifest on a private address is refused; one that is not a manifest too.
    let refused = [("transport", "plugin"), ("target", "http://10.1.1.1/manifest.json")];
    let page = post_as(&app, &bob, "/settings/mcp", &refused).await.text().await.expect("page");
    assert!(page.contains("The plugin manifest cannot be used"), "{page}");
    let not_one = [("transport", "plugin"), ("target", r#"{"identifier": "x"}"#)];
    let page = post_as(&app, &bob, "/settings/mcp", &not_one).await.text().await.expect("page");
    assert!(page.contains("The plugin manifest cannot be used"), "{page}");

    // From its address: named by its identifier, the person's settings over the defaults.
    let manifest_url = format!("http://{web}/manifest.json");
    let form =
        [("transport", "plugin"), ("target", manifest_url.as_str()), ("secrets", "API_KEY=bobs"), ("enabled", "on")];
    assert_eq!(post_as(&app, &bob, "/settings/mcp", &form).await.status().as_u16(), 303);
    // Pasted, with a gateway of its own.
    let pasted = serde_json::json!({ "identifier": "gated", "gateway": format!("http://{web}/gateway"),
        "api": [{ "name": "ask", "description": "Ask", "parameters": { "type": "object" } }] })
    .to_string();
    let form = [("name", "gated"), ("transport", "plugin"), ("target", pasted.as_str()), ("enabled", "on")];
    assert_eq!(post_as(&app, &bob, "/settings/mcp", &form).await.status().as_u16(), 303);
    // Described by an OpenAPI document: its operations are the tools; a setting named like a
    // security scheme is the credential.
    let described = format!("http://{web}/described.json");
    let form = [("transport", "plugin"), ("target", described.as_str()), ("secrets", "key=abc"), ("enabled", "on")];
    assert_eq!(post_as(&app, &bob, "/settings/mcp", &form).await.status().as_u16(), 303);
    let stored = app.services.store().list_mcp_servers(bob_id).await.expect("stored");
    assert_eq!((stored[0].name.as_str(), stored[1].target.as_str()), ("weather", ""));

    let assistant = app.services.assistants.default_assistant(bob_id).await.expect("assistant").id;
    let names = [stored[0].source_name(), stored[1].source_name(), stored[2].source_name()];
    let fields = [
        ("title", "Agent"),
        ("model", "openai::gpt-4.1"),
        ("tools", names[0].as_str()),
        ("tools", names[1].as_str()),
        ("tools", names[2].as_str()),
    ];
    assert_eq!(post_as(&app, &bob, &format!("/assistants/{assistant}"), &fields).await.status().as_u16(), 303);
    app.fake.set_default_reply(Reply::text("A title"));
    app.fake.set_recording(true);
    app.fake.push_reply(
        Reply::text("")
            .tool_call("weather__now", r#"{"city": "Hangzhou"}"#)
            .tool_call("weather__secret", "{}")
            .tool_call("gated__ask", r#"{"q": 1}"#)
            .tool_call("described__city", r#"{"city": "Xi'an"}"#),
    );
    app.fake.push_reply(Reply::text("Sunny."));
    let answer = send_as(&app, &bob, assistant, "Weather?").await;
    app.finished_of(bob_id, answer).await;
    let steps = app.services.assistants.message_steps(bob_id, answer).await.expect("steps");
    assert_eq!(steps[0].status.as_str(), "done", "{:?}", steps[0]);
    assert!(steps[0].result.contains(r#"body={"city":"Hangzhou"}"#), "{}", steps[0].result);
    assert!(steps[0].result.contains(r#""API_KEY":"bobs""#) && steps[0].result.contains(r#""UNITS":"metric""#));
    assert_eq!(steps[1].status.as_str(), "failed", "a private address: {:?}", steps[1]);
    assert!(steps[2].result.contains(r#""apiName":"ask""#) && steps[2].result.contains(r#""identifier":"gated""#));
    assert_eq!(steps[3].result, "city=Xi'an key=abc", "{:?}", steps[3]);
    let told = app.fake.requests().into_iter().find(|r| r.body.to_string().contains("Weather?")).expect("asked");
    assert!(told.body.to_string().contains("Use metric units."), "the plugin's system role goes with its tools");
    app.cleanup().await;
}
