//! Tools' figures: the time Loquat adds to an answer for one round of tool calls — its own
//! time, without the tool's and the second model call's, both measured directly in the same
//! run — and the memory an idle local MCP server's connection holds in Loquat's process.
//!
//! The round: an assistant with a plugin (a local HTTP endpoint that answers at once) is asked
//! on `/v1/chat/completions`; the fake upstream first answers with a call of the plugin, then
//! with the usual 100 chunks. Its added time is that answer's total, less the total of the same
//! answer from an assistant without tools, less a direct call of the fake's tool-call reply and
//! a direct call of the plugin.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use axum::routing::{get, post};
use loquat_test_support::fake_openai::Reply;
use serde_json::{Value, json};

use crate::gateway::{Setup, Timing, timed_stream};
use crate::stats;

const ROUNDS: usize = 200;
/// Local MCP servers connected at once for the memory figure.
const SERVERS: usize = 10;

/// A plugin that answers at once: its manifest and its one API.
async fn plugin_server() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let manifest = move || async move {
        axum::Json(json!({
            "identifier": "clock",
            "api": [{ "name": "now", "description": "The time", "url": format!("http://{address}/now"),
                      "parameters": { "type": "object", "properties": {} } }]
        }))
    };
    let app = axum::Router::new().route("/manifest.json", get(manifest)).route("/now", post(|| async { "12:00" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

pub async fn run(binary: &Path) -> Value {
    let plugin = plugin_server().await;
    let setup = Setup::start(binary, "tools", &[("LOQUAT_SSRF_ALLOW", "127.0.0.1".to_owned())]).await;
    let base = setup.loquat.base.clone();
    let token = setup.api_token().await;
    let client = &setup.client;
    let manifest = format!("http://{plugin}/manifest.json");
    let added = client
        .post(format!("{base}/settings/mcp"))
        .form(&[("transport", "plugin"), ("target", manifest.as_str()), ("enabled", "on")])
        .send()
        .await
        .expect("plugin added");
    assert!(added.status().is_success(), "plugin added: {}", added.status());
    let page = client.get(format!("{base}/settings/mcp")).send().await.expect("page").text().await.expect("page");
    let id = id_after(&page, "/settings/mcp/").expect("the plugin on the settings page");
    // The default assistant calls the plugin; a second one, without tools, is the baseline.
    let tools = format!("mcp:{id}");
    let form = [("title", "Clock"), ("model", "openai::gpt-4.1"), ("tools", tools.as_str())];
    let saved = client.post(format!("{base}/assistants/{}", setup.assistant)).form(&form).send().await;
    assert!(saved.expect("assistant saved").status().is_success());
    let created = client
        .post(format!("{base}/assistants"))
        .form(&[("title", "Plain"), ("model", "openai::gpt-4.1")])
        .send()
        .await
        .expect("assistant created");
    let plain = id_after(created.url().path(), "/chat/").expect("the new assistant");

    let (mut with_tool, mut without, mut model_round, mut tool) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let call = || Reply::text("").tool_call("clock__now", "{}");
    // The first round proves the plugin really answers (the model is told its result).
    setup.fake.upstream().set_recording(true);
    for round in 0..ROUNDS + 10 {
        let keep = round >= 10;
        setup.fake.upstream().push_reply(call());
        let through = api_answer(client, &base, &token, &setup.assistant.to_string()).await;
        if round == 0 {
            let told = setup.fake.upstream().requests().iter().any(|r| r.body.to_string().contains("12:00"));
            assert!(told, "the plugin's answer reached the model");
            setup.fake.upstream().set_recording(false);
        }
        let baseline = api_answer(client, &base, &token, &plain).await;
        setup.fake.upstream().push_reply(call());
        let direct = direct_answer(client, &setup.fake.base_url()).await;
        let started = Instant::now();
        let answered = client.post(format!("http://{plugin}/now")).json(&json!({})).send().await.expect("plugin");
        answered.text().await.expect("plugin answer");
        let called = started.elapsed();
        if keep {
            with_tool.push(through.total);
            without.push(baseline.total);
            model_round.push(direct.total);
            tool.push(called);
        }
    }
    let [with_tool, without, model_round, tool] =
        [with_tool, without, model_round, tool].map(|mut samples| stats::summarize(&mut samples));
    let added_p50 = with_tool.p50_ms - without.p50_ms - model_round.p50_ms - tool.p50_ms;
    // Tails do not subtract (each is its own sample's): the mean is the second figure.
    let added_mean = with_tool.mean_ms - without.mean_ms - model_round.mean_ms - tool.mean_ms;
    println!(
        "tool round: answer with one plugin call p50 {:.2} ms, without tools {:.2} ms, the extra model call \
         {:.2} ms, the plugin {:.2} ms: Loquat's own time for the round p50 {added_p50:+.2} ms, mean {added_mean:+.2} ms",
        with_tool.p50_ms, without.p50_ms, model_round.p50_ms, tool.p50_ms
    );
    let mut result = json!({
        "rounds": ROUNDS,
        "answer_with_tool": stats::json(with_tool),
        "answer_without_tools": stats::json(without),
        "direct_model_round": stats::json(model_round),
        "direct_tool_call": stats::json(tool),
        "added_per_round_p50_ms": stats::round(added_p50),
        "added_per_round_mean_ms": stats::round(added_mean),
    });
    result["idle_stdio_mcp"] = idle_connections(&setup).await;
    setup.stop().await;
    result
}

/// The id that follows `prefix` in `text` (a UUID).
fn id_after(text: &str, prefix: &str) -> Option<String> {
    let start = text.find(prefix)? + prefix.len();
    let id: String = text[start..].chars().take_while(|c| c.is_ascii_hexdigit() || *c == '-').collect();
    (id.len() == 36).then_some(id)
}

/// A streamed completion of `assistant/<id>`, to its `[DONE]`.
async fn api_answer(client: &reqwest::Client, base: &str, token: &str, assistant: &str) -> Timing {
    let started = Instant::now();
    let body = json!({ "model": format!("assistant/{assistant}"), "stream": true,
                       "messages": [{ "role": "user", "content": "What time is it?" }] });
    let response = client.post(format!("{base}/v1/chat/completions")).bearer_auth(token).json(&body).send().await;
    timed_stream(
        response.expect("API"),
        started,
        |event| event.data.contains("\"content\""),
        |event| event.data == "[DONE]",
    )
    .await
}

/// The fake's next reply, straight.
async fn direct_answer(client: &reqwest::Client, base_url: &str) -> Timing {
    let started = Instant::now();
    let body = json!({ "model": "gpt-4.1", "stream": true, "messages": [{ "role": "user", "content": "hi" }] });
    let response = client.post(format!("{base_url}/chat/completions")).json(&body).send().await;
    timed_stream(response.expect("direct"), started, |_| true, |event| event.data == "[DONE]").await
}

/// The resident memory of each child process of `pid` (the local MCP servers), in KiB: the
/// children of each of its threads (the runtime's workers start them).
fn children_rss_kib(pid: u32) -> Vec<u64> {
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    let children: Vec<String> = threads
        .filter_map(|thread| std::fs::read_to_string(thread.path().join("children")).ok())
        .flat_map(|list| list.split_whitespace().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    children
        .iter()
        .filter_map(|child| std::fs::read_to_string(format!("/proc/{child}/status")).ok())
        .filter_map(|status| {
            let line = status.lines().find_map(|line| line.strip_prefix("VmRSS:"))?;
            line.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .collect()
}

/// The Python with the `mcp` package that the tests use (`LOQUAT_TEST_PYTHON`).
fn python() -> Option<String> {
    std::env::var("LOQUAT_TEST_PYTHON").ok().filter(|path| !path.trim().is_empty())
}

/// Loquat's own memory for each of [`SERVERS`] local MCP servers connected and idle (their
/// processes' memory apart).
async fn idle_connections(setup: &Setup) -> Value {
    let Some(python) = python() else {
        println!("idle stdio MCP: skipped (LOQUAT_TEST_PYTHON names no Python with the `mcp` package)");
        return Value::Null;
    };
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../loquat/tests/it/mcp_server.py");
    let base = &setup.loquat.base;
    let args = format!("{}\nstdio", script.display());
    for index in 0..SERVERS {
        let name = format!("local{index}");
        let form =
            [("name", name.as_str()), ("transport", "stdio"), ("target", &python), ("args", &args), ("enabled", "on")];
        let added = setup.client.post(format!("{base}/admin/tools/servers")).form(&form).send().await;
        assert!(added.expect("server added").status().is_success());
    }
    let page =
        setup.client.get(format!("{base}/admin/tools")).send().await.expect("panel").text().await.expect("panel");
    let ids: Vec<String> = page
        .match_indices("/admin/tools/servers/")
        .filter_map(|(at, prefix)| id_after(&page[at..], prefix))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(ids.len(), SERVERS, "the servers on the panel");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = setup.loquat.private_kib();
    for id in &ids {
        let name = format!("mcp:{id}");
        let checked = setup.client.post(format!("{base}/admin/tools/check")).form(&[("name", name.as_str())]).send();
        assert!(checked.await.expect("checked").status().is_success());
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = setup.loquat.private_kib();
    let per_server = after.saturating_sub(before) as f64 / SERVERS as f64;
    let children = children_rss_kib(setup.loquat.pid);
    let per_process = children.iter().sum::<u64>() as f64 / children.len().max(1) as f64;
    println!(
        "idle stdio MCP: {SERVERS} servers connected and listed: Loquat's own memory +{per_server:.0} KiB each; \
         each server's own process {:.1} MiB ({} running)",
        per_process / 1024.0,
        children.len()
    );
    json!({ "servers": SERVERS, "private_kib_before": before, "private_kib_after": after,
            "kib_per_connection": stats::round(per_server), "server_process_rss_kib": stats::round(per_process) })
}
