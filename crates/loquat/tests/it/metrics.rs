//! Prometheus metrics: `/metrics` on the main port is off without a token and refuses a wrong
//! one; after a chat it shows the request counters under route templates (never raw ids), the
//! rate-limit counter and the store timing; the separate listener serves it without a token.

use loquat_test_support::fake_openai::Reply;

use crate::helpers::{TestApp, TestOptions};

const TOKEN: &str = "scrape-token-0123";

fn with_token(config: &mut loquat::Config) {
    config.metrics_token = Some(loquat_core::Secret::new(TOKEN));
}

async fn scrape(app: &TestApp, authorization: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(app.url("/metrics"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.expect("GET /metrics");
    let status = response.status().as_u16();
    (status, response.text().await.expect("body"))
}

#[tokio::test]
async fn metrics_are_off_without_a_token() {
    let app = TestApp::spawn().await;
    assert_eq!(scrape(&app, Some("Bearer anything")).await.0, 404);
    assert_eq!(scrape(&app, None).await.0, 404);
    app.cleanup().await;
}

#[tokio::test]
async fn a_scrape_after_a_chat_shows_requests_by_route_template() {
    let app = TestApp::spawn_with(TestOptions { configure: with_token, ..TestOptions::default() }).await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("Bearer wrong-token")).await.0, 401);

    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Hello there").usage(12, 3));
    let sent = app.send(assistant, None, "Hi").await;
    app.finished(sent.answer).await;
    assert_eq!(app.client.get(app.url("/readyz")).send().await.expect("readyz").status().as_u16(), 200);
    // Eleven wrong passwords for one account: the eleventh is refused by the limit.
    let stranger = reqwest::Client::new();
    for _ in 0..11 {
        stranger
            .post(app.url("/login"))
            .form(&[("email", "nobody@example.com"), ("password", "wrong")])
            .send()
            .await
            .ok();
    }

    let (status, text) = scrape(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200);
    let send_line = text
        .lines()
        // The recorder is the test binary's: other tests' refusals (429) may be counted too.
        .find(|line| {
            line.starts_with("loquat_http_requests_total{")
                && line.contains("route=\"/chat/{assistant}/send\"")
                && line.contains("status=\"200\"")
        })
        .unwrap_or_else(|| panic!("a counter for the send route template:\n{text}"));
    assert!(send_line.contains("method=\"POST\"") && send_line.contains("status=\"200\""), "{send_line}");
    assert!(!text.contains(&assistant.to_string()), "no raw id in any label");
    assert!(text.contains("# TYPE loquat_http_request_duration_seconds histogram"), "{text}");
    assert!(
        text.contains("loquat_http_request_duration_seconds_bucket{route=\"/chat/{assistant}/send\",method=\"POST\",")
    );
    assert!(text.contains("# HELP loquat_http_requests_total "));
    assert!(text.contains("loquat_rate_limited_total{rule=\"login-account-ip\"}"), "{text}");
    assert!(text.contains("loquat_store_query_duration_seconds_count{query=\"ping\"}"), "{text}");
    // Every store method is timed under its name, in buckets fine enough for a local database.
    assert!(text.contains("loquat_store_query_duration_seconds_count{query=\"write_tree\"}"), "{text}");
    assert!(text.contains("loquat_store_query_duration_seconds_bucket{query=\"session_user\",le=\"0.001\"}"), "{text}");
    assert!(text.contains("loquat_build_info{version="));
    // Generations by provider, model and outcome; timings and tokens by provider.
    let generations = text
        .lines()
        .find(|line| line.starts_with("loquat_generations_total{") && line.contains("status=\"complete\""))
        .unwrap_or_else(|| panic!("no finished generation counted: {text}"));
    assert!(generations.contains("provider=\"openai\"") && generations.contains("model=\""), "{generations}");
    assert!(text.contains("loquat_generation_ttft_seconds_bucket{provider=\"openai\","), "{text}");
    assert!(text.contains("loquat_generation_duration_seconds_count{provider=\"openai\"}"), "{text}");
    // The recorder is the test binary's: other tests' answers may be counted too.
    let completion_tokens: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix("loquat_generation_tokens_total{provider=\"openai\",kind=\"completion\"} "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no completion tokens counted: {text}"));
    assert!(completion_tokens >= 3, "{completion_tokens}");
    assert!(text.contains("# TYPE loquat_generations_running gauge"), "{text}");
    app.cleanup().await;
}

#[tokio::test]
async fn api_completions_count_as_generations() {
    // A model no other test uses, so this test's series is its own in the shared recorder.
    let model = "gpt-metrics-probe";
    let env = vec![("OPENAI_MODEL_LIST", format!("-all,{model}"))];
    let app = TestApp::spawn_with(TestOptions { configure: with_token, env, ..TestOptions::default() }).await;
    let token = crate::openai_api::api_token(&app).await;
    app.fake.push_reply(Reply::text("Counted").usage(5, 2));
    let body =
        serde_json::json!({ "model": format!("openai/{model}"), "messages": [{ "role": "user", "content": "Hi" }] });
    let answer = crate::openai_api::post(&app, &token, "/chat/completions", &body).await;
    assert_eq!(answer.status().as_u16(), 200);
    // A refusal is not retried, so exactly one failed answer is counted.
    let refusal = serde_json::json!({ "error": { "message": "no", "type": "invalid_request_error" } });
    app.fake.push_reply(Reply::http_error(400, refusal));
    let failed = crate::openai_api::post(&app, &token, "/chat/completions", &body).await;
    assert_eq!(failed.status().as_u16(), 400);
    // The usage (and the metrics with it) is written as the answer closes, just after the response.
    let counted = |text: &str, status: &str| {
        text.lines().any(|line| {
            line.starts_with("loquat_generations_total{")
                && line.contains(&format!("model=\"{model}\""))
                && line.contains(&format!("status=\"{status}\""))
                && line.ends_with(" 1")
        })
    };
    let mut text = String::new();
    for _ in 0..50 {
        text = scrape(&app, Some(&format!("Bearer {TOKEN}"))).await.1;
        if counted(&text, "complete") && counted(&text, "error") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(counted(&text, "complete") && counted(&text, "error"), "{text}");
    app.cleanup().await;
}

fn metrics_port(config: &mut loquat::Config) {
    config.metrics_listen = Some(METRICS_ADDRESS.with(|address| *address));
}

tokio::task_local! {
    static METRICS_ADDRESS: std::net::SocketAddr;
}

#[tokio::test]
async fn the_separate_listener_serves_metrics_without_a_token() {
    // A free port: bound, read and released (the app binds it again at once).
    let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = probe.local_addr().expect("address");
    drop(probe);
    let options = TestOptions { configure: metrics_port, ..TestOptions::default() };
    let app = METRICS_ADDRESS.scope(address, TestApp::spawn_with(options)).await;
    let mut text = String::new();
    for _ in 0..50 {
        if let Ok(response) = reqwest::get(format!("http://{address}/metrics")).await {
            assert_eq!(response.status().as_u16(), 200);
            text = response.text().await.expect("body");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(text.contains("loquat_http_requests_total"), "{text}");
    // Only metrics there: the app's pages are not on that port.
    let other = reqwest::get(format!("http://{address}/healthz")).await.expect("GET");
    assert_eq!(other.status().as_u16(), 404);
    // And the main port still hides them without a token.
    assert_eq!(scrape(&app, None).await.0, 404);
    app.cleanup().await;
}

/// The `loquat_…` series names and the label names an expression uses (labels Prometheus adds at
/// scrape time, and histograms' `le`, left out).
fn used_in(expression: &str) -> (Vec<String>, Vec<String>) {
    let mut metrics = Vec::new();
    let mut rest = expression;
    while let Some(start) = rest.find("loquat_") {
        let tail = &rest[start..];
        let end =
            tail.find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        metrics.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    let mut labels = Vec::new();
    for (open, close) in [("by (", ')'), ("{", '}')] {
        let mut rest = expression;
        while let Some(start) = rest.find(open) {
            let inner = &rest[start + open.len()..];
            let end = inner.find(close).unwrap_or(inner.len());
            for part in inner[..end].split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect();
                if !name.is_empty() && !matches!(name.as_str(), "le" | "job" | "instance") {
                    labels.push(name);
                }
            }
            rest = &inner[end..];
        }
    }
    (metrics, labels)
}

#[tokio::test]
async fn the_dashboard_and_the_alerts_use_only_what_loquat_exports() {
    // With scheduled backups, whose metrics the alerts use.
    let configure = |config: &mut loquat::Config| {
        with_token(config);
        config.backup.every = "1h".into();
        config.backup.to = config.data_dir.join("backups").display().to_string();
    };
    let app = TestApp::spawn_with(TestOptions { configure, ..TestOptions::default() }).await;
    crate::helpers::eventually("the first scheduled backup", || async {
        scrape(&app, Some(&format!("Bearer {TOKEN}"))).await.1.contains("loquat_backup_last_success_timestamp_seconds")
    })
    .await;
    // Traffic for every series: an answer with usage (streamed over time, so it has a speed), a
    // failing provider, refused sign-ins.
    let assistant = app.default_assistant().await;
    let paced = Reply::tokens(6).delay_between_chunks(std::time::Duration::from_millis(15)).usage(12, 6);
    app.fake.push_reply(paced);
    app.fake.push_reply(Reply::text("Greeting"));
    let sent = app.send(assistant, None, "Hi").await;
    app.finished(sent.answer).await;
    app.titled(sent.topic).await;
    // A refused key is not retried: the answer fails and the error is counted by kind.
    app.fake.push_reply(Reply::error(401));
    let failed = app.send(assistant, Some(sent.topic), "Again").await;
    assert_eq!(app.finished(failed.answer).await.status, loquat_core::domain::MessageStatus::Error);
    let stranger = reqwest::Client::new();
    for _ in 0..11 {
        let form = [("email", "nobody@example.com"), ("password", "wrong")];
        stranger.post(app.url("/login")).form(&form).send().await.ok();
    }
    let (status, scraped) = scrape(&app, Some(&format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 200);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("deploy/grafana/loquat.json")).expect("dashboard"))
            .expect("the dashboard is JSON");
    let mut expressions: Vec<String> = dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|target| target["expr"].as_str().map(str::to_owned))
        .collect();
    let alerts = std::fs::read_to_string(root.join("deploy/prometheus/alerts.yml")).expect("alert rules");
    let rules: Vec<String> =
        alerts.lines().filter_map(|line| line.trim().strip_prefix("expr: ")).map(str::to_owned).collect();
    assert!(rules.len() >= 4 && expressions.len() >= 12, "{} rules, {} panels", rules.len(), expressions.len());
    expressions.extend(rules);
    for expression in &expressions {
        let (metrics, labels) = used_in(expression);
        for metric in &metrics {
            let series: Vec<&str> = scraped
                .lines()
                .filter(|line| line.starts_with(&format!("{metric}{{")) || line.starts_with(&format!("{metric} ")))
                .collect();
            assert!(!series.is_empty(), "{metric} (in `{expression}`) is not in /metrics");
            for label in &labels {
                assert!(
                    series.iter().any(|line| line.contains(&format!("{label}=\""))),
                    "{metric} has no label {label} (in `{expression}`)"
                );
            }
        }
    }
    app.cleanup().await;
}
