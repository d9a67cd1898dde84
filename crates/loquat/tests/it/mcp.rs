//! MCP servers from `LOQUAT_MCP_CONFIG`, real ones (`mcp_server.py`, written with the `mcp`
//! Python package): a stdio server Loquat starts on demand and a Streamable HTTP server. An
//! assistant given them calls their tools through the model; a crash, garbage on stdout, a huge
//! result and a hanging call end as failed or cut steps, and a crashed server starts again.
//! Runs with the interpreter in `LOQUAT_TEST_PYTHON` (with `mcp`); skipped without it, unless
//! `LOQUAT_TEST_REQUIRE_ALL=1`.

use std::path::PathBuf;
use std::time::Duration;

use loquat_core::domain::MessageStatus;
use loquat_test_support::fake_upstream::Reply;
use loquat_test_support::postgres::REQUIRE_ALL_VAR;

use crate::helpers::{TestApp, TestOptions, temp_dir};

const PYTHON_VAR: &str = "LOQUAT_TEST_PYTHON";

pub(crate) fn python() -> Option<String> {
    let found = std::env::var(PYTHON_VAR).ok().filter(|path| !path.trim().is_empty());
    if found.is_none() {
        assert!(
            std::env::var(REQUIRE_ALL_VAR).map_or(true, |value| value.trim() != "1"),
            "{REQUIRE_ALL_VAR}=1 but {PYTHON_VAR} is not set: the MCP tests cannot be skipped"
        );
        println!("skipped: {PYTHON_VAR} is not set (a Python with the `mcp` package)");
    }
    found
}

pub(crate) fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/mcp_server.py")
}

/// The HTTP server, on a free port, running until dropped.
pub(crate) struct HttpServer {
    child: tokio::process::Child,
    pub(crate) url: String,
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

pub(crate) async fn http_server(python: &str) -> HttpServer {
    served(python, "streamable-http", "mcp").await
}

/// The server over the legacy SSE transport (its stream at `/sse`).
pub(crate) async fn sse_server(python: &str) -> HttpServer {
    served(python, "sse", "sse").await
}

async fn served(python: &str, transport: &str, path: &str) -> HttpServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("address").port();
    let child = tokio::process::Command::new(python)
        .arg(script())
        .args([transport, &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("the MCP server starts");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return HttpServer { child, url: format!("http://127.0.0.1:{port}/{path}") };
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the MCP HTTP server did not start");
}

async fn app_with_servers(python: &str, http: &HttpServer) -> TestApp {
    let dir = temp_dir("mcp");
    let file = dir.join("mcp.json");
    let config = serde_json::json!({"mcpServers": {
        "local": {"command": python, "args": [script().display().to_string(), "stdio"]},
        "remote": {"type": "http", "url": http.url}
    }});
    std::fs::write(&file, config.to_string()).expect("written");
    let options = TestOptions {
        adjust: Some(Box::new(move |config| {
            config.mcp_config = Some(file);
            config.tools.call_timeout_secs = 3;
            config.tools.max_result_chars = 1_000;
        })),
        ..TestOptions::default()
    };
    TestApp::spawn_with(options).await
}

/// Gives the default assistant both servers; returns it.
async fn give_servers(app: &TestApp) -> loquat_core::id::AssistantId {
    let assistant = app.default_assistant().await;
    let (_, form) = app.page(&format!("/assistants/{assistant}/edit")).await;
    assert!(form.contains("value=\"mcp:local\"") && form.contains("value=\"mcp:remote\""), "offered: {form}");
    let fields = [("title", "Agent"), ("model", "openai::gpt-4.1"), ("tools", "mcp:local"), ("tools", "mcp:remote")];
    app.post_redirect(&format!("/assistants/{assistant}"), &fields).await;
    assistant
}

#[tokio::test]
async fn tools_of_stdio_and_http_mcp_servers_answer_through_the_model() {
    let Some(python) = python() else { return };
    let http = http_server(&python).await;
    let app = app_with_servers(&python, &http).await;
    // Nothing runs until needed; the administrator sees each server's state.
    let (_, panel) = app.page("/admin/tools").await;
    assert!(panel.contains("mcp:local") && panel.contains("mcp:remote") && panel.contains("Not started"), "{panel}");
    assert!(panel.contains("read_page") && panel.contains("search_knowledge"), "built-in tools listed");
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    assert_eq!(app.page_as(&bob, "/admin/tools").await.0, 404);
    let checked = app.post_form("/admin/tools/check", &[("name", "mcp:remote")]).await;
    assert!(checked.status().is_redirection(), "{}", checked.status());
    let (_, panel) = app.page(checked.headers()["location"].to_str().expect("ascii")).await;
    assert!(panel.contains("mcp:remote answered with 6 tools."), "{panel}");
    assert!(panel.contains("remote__shout") && panel.contains("Running"), "{panel}");
    let assistant = give_servers(&app).await;
    app.fake.set_recording(true);
    app.fake.push_reply(
        Reply::text("")
            .tool_call("local__add", r#"{"a": 2, "b": 40}"#)
            .tool_call("remote__shout", r#"{"text": "hello"}"#),
    );
    app.fake.push_reply(Reply::text("42 and HELLO."));
    app.fake.set_default_reply(Reply::text("A title"));
    let sent = app.send(assistant, None, "Add and shout").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Complete, "{answer:?}");
    let steps = app.services.assistants.message_steps(app.admin().await, sent.answer).await.expect("steps");
    let results: Vec<(&str, &str, &str)> =
        steps.iter().map(|s| (s.tool.as_str(), s.status.as_str(), s.result.as_str())).collect();
    assert_eq!(results, [("local__add", "done", "42"), ("remote__shout", "done", "HELLO")]);
    // The model was told both servers' tools, with their schemas.
    let first = app.fake.requests().into_iter().next().expect("asked").body;
    let names: Vec<String> = first["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|tool| tool["function"]["name"].as_str().map(str::to_owned))
        .collect();
    for name in ["local__add", "local__crash", "remote__add", "remote__shout"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    let add = first["tools"].as_array().expect("tools").iter().find(|t| t["function"]["name"] == "local__add");
    assert_eq!(add.expect("add")["function"]["parameters"]["required"], serde_json::json!(["a", "b"]));
    app.cleanup().await;
}

#[tokio::test]
async fn a_crashing_noisy_huge_or_hanging_server_tool_fails_the_step_not_the_answer() {
    let Some(python) = python() else { return };
    let http = http_server(&python).await;
    let app = app_with_servers(&python, &http).await;
    let assistant = give_servers(&app).await;
    app.fake.set_default_reply(Reply::text("A title"));
    let ask = |calls: Vec<(&'static str, &'static str)>| {
        let mut reply = Reply::text("");
        for (name, arguments) in calls {
            reply = reply.tool_call(name, arguments);
        }
        app.fake.push_reply(reply);
        app.fake.push_reply(Reply::text("Done."));
    };
    let shared = &app;
    let steps_of = |id| async move {
        let answer = shared.finished(id).await;
        assert_eq!(answer.status, MessageStatus::Complete, "{answer:?}");
        shared.services.assistants.message_steps(shared.admin().await, id).await.expect("steps")
    };

    // A result of megabytes is cut, with a note; a hanging call is stopped at the timeout.
    ask(vec![("remote__huge", "{}"), ("local__slow", r#"{"seconds": 30}"#)]);
    let sent = app.send(assistant, None, "Big and slow").await;
    let steps = steps_of(sent.answer).await;
    assert_eq!(steps[0].status.as_str(), "done");
    assert!(
        steps[0].result.ends_with("[Truncated: the first 1000 of 2000000 characters.]"),
        "{}",
        &steps[0].result[990..]
    );
    assert_eq!(steps[1].status.as_str(), "failed");
    assert!(steps[1].result.contains("did not answer within 3 seconds"), "{}", steps[1].result);

    // Garbage on stdout does not break the session; a crash fails the call, and the server
    // starts again (after its pause) for a later call.
    ask(vec![("local__garbage", "{}")]);
    let sent = app.send(assistant, Some(sent.topic), "Noise").await;
    let steps = steps_of(sent.answer).await;
    assert!(matches!(steps[0].status.as_str(), "done" | "failed"), "{:?}", steps[0]);
    ask(vec![("local__crash", "{}")]);
    let sent = app.send(assistant, Some(sent.topic), "Crash").await;
    let steps = steps_of(sent.answer).await;
    assert_eq!(steps[0].status.as_str(), "failed", "{:?}", steps[0]);
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    ask(vec![("local__add", r#"{"a": 1, "b": 1}"#)]);
    let sent = app.send(assistant, Some(sent.topic), "Again").await;
    let steps = steps_of(sent.answer).await;
    assert_eq!((steps[0].status.as_str(), steps[0].result.as_str()), ("done", "2"), "restarted: {:?}", steps[0]);
    app.cleanup().await;
}
