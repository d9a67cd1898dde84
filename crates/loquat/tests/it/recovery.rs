//! Nothing is lost: a killed process leaves the partial answer marked interrupted, and a
//! graceful shutdown stores unfinished answers as interrupted.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loquat_core::domain::MessageStatus;
use loquat_test_support::fake_openai::{FakeOpenAi, Reply};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::{TEST_KEY, TestApp, TestOptions, eventually, temp_dir};

/// A running `loquat` binary, with everything it logged so far.
pub struct Process {
    pub child: Child,
    pub base: String,
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Starts the real `loquat` binary and returns it with the address it reports when ready.
pub async fn start_process(data_dir: &std::path::Path, fake: &FakeOpenAi, extra: &[(&str, String)]) -> Process {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loquat"));
    command
        .env_clear()
        .env("LOQUAT_LISTEN", "127.0.0.1:0")
        .env("LOQUAT_DATA_DIR", data_dir)
        .env("LOQUAT_LOG_FORMAT", "json")
        .env("LOQUAT_GENERATION__PERSIST_INTERVAL_MS", "50")
        .env("ENABLED_OLLAMA", "0")
        .env("OPENAI_API_KEY", TEST_KEY)
        .env("OPENAI_PROXY_URL", fake.base_url())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in extra {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the loquat binary starts");
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let stderr_log = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = stderr.next_line().await {
            stderr_log.lock().expect("log").push(line);
        }
    });
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let Ok(Ok(Some(line))) = tokio::time::timeout(Duration::from_secs(20), lines.next_line()).await else { break };
        log.lock().expect("log").push(line.clone());
        if let Some(rest) = line.split("ready on http://").nth(1) {
            let address = rest.split('"').next().expect("address").to_owned();
            let stdout_log = log.clone();
            tokio::spawn(async move {
                while let Ok(Some(line)) = lines.next_line().await {
                    stdout_log.lock().expect("log").push(line);
                }
            });
            return Process { child, base: format!("http://{address}"), log };
        }
    }
    panic!("loquat did not report ready: {:?}", log.lock().expect("log"));
}

async fn start_binary(data_dir: &std::path::Path, fake: &FakeOpenAi) -> (Child, String) {
    let process = start_process(data_dir, fake, &[]).await;
    (process.child, process.base)
}

#[tokio::test]
async fn a_killed_process_leaves_the_partial_answer_interrupted() {
    let fake = FakeOpenAi::start().await;
    fake.push_reply(Reply::tokens(400).delay_between_chunks(Duration::from_millis(25)));
    let data_dir = temp_dir("kill");
    let (mut child, base) = start_binary(&data_dir, &fake).await;
    let client = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let registered = client
        .post(format!("{base}/register"))
        .form(&[("name", "Ada"), ("email", "ada@example.com"), ("password", "long enough password")])
        .send()
        .await
        .expect("register");
    assert!(registered.status().is_success(), "registered and redirected home");
    let chat_path = registered.url().path().to_owned();
    let sent: serde_json::Value = client
        .post(format!("{base}{chat_path}/send"))
        .header("accept", "application/json")
        .form(&[("content", "Tell me a long story"), ("topic_id", "")])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let answer = sent["answer_id"].as_str().expect("answer id").to_owned();
    let raw = |client: reqwest::Client, base: String, answer: String| async move {
        client.get(format!("{base}/messages/{answer}/raw")).send().await.ok()?.text().await.ok()
    };
    eventually("part of the answer is persisted", || {
        let (client, base, answer) = (client.clone(), base.clone(), answer.clone());
        async move { raw(client, base, answer).await.is_some_and(|text| text.split_whitespace().count() > 5) }
    })
    .await;
    child.start_kill().expect("SIGKILL");
    let _ = child.wait().await;

    let (_child, base) = start_binary(&data_dir, &fake).await;
    let persisted = raw(client.clone(), base.clone(), answer.clone()).await.expect("the answer survived");
    assert!(persisted.split_whitespace().count() > 5, "the partial answer is kept: {persisted:?}");
    let page = client.get(format!("{base}{}", sent["topic_url"].as_str().expect("url"))).send().await.expect("page");
    let page = page.text().await.expect("body");
    assert!(page.contains("notice-interrupted"), "marked interrupted");
    assert!(page.contains("data-status=\"interrupted\""));
    drop(_child);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn a_graceful_shutdown_stores_unfinished_answers_as_interrupted() {
    let mut app = TestApp::spawn_with(TestOptions {
        configure: |config| config.shutdown_grace_secs = 0,
        ..TestOptions::default()
    })
    .await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::tokens(1000).delay_between_chunks(Duration::from_millis(20)));
    let sent = app.send(assistant, None, "Long").await;
    let user = app.admin().await;
    eventually("text arrives", || async {
        app.services.generations().subscribe(user, sent.answer).is_some_and(|s| !s.snapshot.content.is_empty())
    })
    .await;
    app.stop().await;
    let answer = app.services.assistants.message(user, sent.answer).await.expect("stored");
    assert_eq!(answer.status, MessageStatus::Interrupted);
    assert!(!answer.content.is_empty());
    app.cleanup().await;
}
