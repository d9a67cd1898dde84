//! The real `loquat` binary's operator commands: `user create`/`promote`/`demote`/
//! `reset-password` change accounts a running server then signs in, `doctor` reports each
//! provider's problem without printing keys (exit 1), and `healthcheck` probes `/readyz`.

use std::path::Path;
use std::process::Stdio;

use loquat_test_support::fake_openai::FakeOpenAi;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::helpers::{TEST_KEY, temp_dir};
use crate::recovery::start_process;

pub(crate) struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `loquat <args>` on `data_dir` with only `env` set, feeding `stdin`.
pub(crate) async fn loquat(data_dir: &Path, args: &[&str], stdin: &str, env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_loquat"));
    command
        .args(args)
        .env_clear()
        .env("LOQUAT_DATA_DIR", data_dir)
        .env("ENABLED_OLLAMA", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("the loquat binary starts");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin.as_bytes()).await.expect("writes stdin");
    drop(input);
    let output = tokio::time::timeout(std::time::Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("loquat finishes")
        .expect("output");
    Output {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

async fn sign_in(base: &str, email: &str, password: &str) -> (u16, reqwest::Client) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("client");
    let response = client
        .post(format!("{base}/login"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .expect("login");
    (response.status().as_u16(), client)
}

/// A port of 127.0.0.1 nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("address").port()
}

#[tokio::test]
async fn accounts_made_on_the_command_line_sign_in_over_http() {
    let data_dir = temp_dir("cli-users");
    let created = loquat(
        &data_dir,
        &["user", "create", "--email", "ada@example.com", "--name", "Ada", "--password-stdin"],
        "ada's first password\n",
        &[],
    )
    .await;
    assert_eq!(created.code, 0, "{}{}", created.stdout, created.stderr);
    assert!(created.stdout.contains("created Ada <ada@example.com> (administrator)"), "{}", created.stdout);
    assert!(created.stdout.contains("first account"), "{}", created.stdout);

    let bob = loquat(&data_dir, &["user", "create", "--email", "bob@example.com", "--name", "Bob"], "", &[]).await;
    assert_eq!(bob.code, 0, "{}{}", bob.stdout, bob.stderr);
    assert!(bob.stdout.contains("(member)"), "{}", bob.stdout);
    let generated = bob.stdout.split("password (shown once): ").nth(1).expect("a generated password").trim().to_owned();
    let again = loquat(&data_dir, &["user", "create", "--email", "BOB@example.com", "--name", "Bob"], "", &[]).await;
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("exists already"), "{}", again.stderr);

    let fake = FakeOpenAi::start().await;
    let server = start_process(&data_dir, &fake, &[]).await;
    assert_eq!(sign_in(&server.base, "ada@example.com", "ada's first password").await.0, 303);
    let (status, bob_client) = sign_in(&server.base, "bob@example.com", &generated).await;
    assert_eq!(status, 303);
    let admin_page = |client: reqwest::Client| {
        let url = format!("{}/admin", server.base);
        async move { client.get(url).header("accept", "text/html").send().await.expect("GET /admin").status().as_u16() }
    };
    assert_eq!(admin_page(bob_client.clone()).await, 404, "a member does not see the admin pages");

    let promoted = loquat(&data_dir, &["user", "promote", "--email", "bob@example.com"], "", &[]).await;
    assert_eq!(promoted.code, 0, "{}", promoted.stderr);
    assert!(promoted.stdout.contains("Bob <bob@example.com> is now an administrator"));
    assert_eq!(admin_page(bob_client.clone()).await, 200, "the running server sees the new role");

    let demoted = loquat(&data_dir, &["user", "demote", "--email", "bob@example.com"], "", &[]).await;
    assert_eq!(demoted.code, 0, "{}", demoted.stderr);
    let last = loquat(&data_dir, &["user", "demote", "--email", "ada@example.com"], "", &[]).await;
    assert_eq!(last.code, 1);
    assert!(last.stderr.contains("last administrator"), "{}", last.stderr);
    let unknown = loquat(&data_dir, &["user", "promote", "--email", "nobody@example.com"], "", &[]).await;
    assert_eq!(unknown.code, 1);
    assert!(unknown.stderr.contains("no account has this email"), "{}", unknown.stderr);

    let reset = loquat(
        &data_dir,
        &["user", "reset-password", "--email", "ada@example.com", "--password-stdin"],
        "ada's second password\n",
        &[],
    )
    .await;
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    assert!(!reset.stdout.contains("shown once"), "a password from stdin is not printed");
    assert_eq!(sign_in(&server.base, "ada@example.com", "ada's first password").await.0, 401);
    assert_eq!(sign_in(&server.base, "ada@example.com", "ada's second password").await.0, 303);

    let ready = loquat(&data_dir, &["healthcheck", "--url", &format!("{}/readyz", server.base)], "", &[]).await;
    assert_eq!(ready.code, 0, "{}", ready.stderr);
    drop(server);
    let gone =
        loquat(&data_dir, &["healthcheck", "--url", &format!("http://127.0.0.1:{}/readyz", closed_port())], "", &[])
            .await;
    assert_eq!(gone.code, 1);
    assert!(gone.stderr.contains("cannot reach"), "{}", gone.stderr);
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn doctor_names_each_providers_problem_and_exits_1() {
    let data_dir = temp_dir("cli-doctor");
    let fake = FakeOpenAi::start().await;
    fake.require_key(TEST_KEY);
    let wrong_key = "sk-wrong-doctor-key-never-printed";
    let unreachable_key = "sk-unreachable-doctor-key";
    let env = [
        ("OPENAI_API_KEY", TEST_KEY.to_owned()),
        ("OPENAI_PROXY_URL", fake.base_url()),
        ("DEEPSEEK_API_KEY", wrong_key.to_owned()),
        ("DEEPSEEK_PROXY_URL", fake.base_url()),
        ("GROQ_API_KEY", unreachable_key.to_owned()),
        ("GROQ_PROXY_URL", format!("http://127.0.0.1:{}/v1", closed_port())),
    ];
    let report = loquat(&data_dir, &["doctor"], "", &env).await;
    let out = &report.stdout;
    assert_eq!(report.code, 1, "{out}{}", report.stderr);
    assert!(out.contains("[ok]   configuration parses"), "{out}");
    assert!(out.contains("is writable"), "{out}");
    assert!(out.contains("[ok]   database (sqlite) opens; migrations applied"), "{out}");
    let line = |needle: &str| out.lines().find(|line| line.contains(needle)).unwrap_or_default().to_owned();
    assert!(line("provider OpenAI").starts_with("[ok]"), "{out}");
    assert!(
        line("provider DeepSeek").starts_with("[FAIL]") && line("provider DeepSeek").contains("the key was refused"),
        "{out}"
    );
    assert!(out.contains("fix: check DEEPSEEK_API_KEY"), "{out}");
    assert!(line("provider Groq").starts_with("[FAIL]") && line("provider Groq").contains("unreachable"), "{out}");
    assert!(out.contains("fix: check GROQ_PROXY_URL"), "{out}");
    assert!(line("files: the folder").starts_with("[ok]") && line("files:").contains("probe written"), "{out}");
    assert!(out.contains("Redis: not configured"), "{out}");
    assert!(report.stderr.contains("2 problems found"), "{}", report.stderr);
    for secret in [TEST_KEY, wrong_key, unreachable_key] {
        assert!(!out.contains(secret) && !report.stderr.contains(secret), "doctor printed a key");
    }

    let healthy = loquat(&data_dir, &["doctor"], "", &env[..2]).await;
    assert_eq!(healthy.code, 0, "{}{}", healthy.stdout, healthy.stderr);
    assert!(healthy.stdout.contains("no problems found"));

    // A bucket that answers, and one that does not (its secret never printed).
    if let Some(url) = loquat_test_support::s3::test_s3_url() {
        let bucket = loquat_test_support::s3::TestBucket::create(&url).await;
        let s3 = |endpoint: &str, bucket: &str| {
            let mut env = env[..2].to_vec();
            env.extend([
                ("S3_ENDPOINT", endpoint.to_owned()),
                ("S3_BUCKET", bucket.to_owned()),
                ("S3_ACCESS_KEY_ID", "test".to_owned()),
                ("S3_SECRET_ACCESS_KEY", "s3-secret-never-printed".to_owned()),
                ("S3_ENABLE_PATH_STYLE", "1".to_owned()),
            ]);
            env
        };
        let good = loquat(&data_dir, &["doctor"], "", &s3(&url, &bucket.name)).await;
        assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
        assert!(good.stdout.contains(&format!("[ok]   files: the S3 bucket {}", bucket.name)), "{}", good.stdout);
        let missing = loquat(&data_dir, &["doctor"], "", &s3(&url, "no-such-bucket-here")).await;
        assert_eq!(missing.code, 1, "{}", missing.stdout);
        assert!(missing.stdout.contains("[FAIL] files: the S3 bucket no-such-bucket-here"), "{}", missing.stdout);
        assert!(missing.stdout.contains("fix: check S3_ENDPOINT, S3_BUCKET"), "{}", missing.stdout);
        let down = format!("http://127.0.0.1:{}", closed_port());
        let unreachable = loquat(&data_dir, &["doctor"], "", &s3(&down, "files")).await;
        assert_eq!(unreachable.code, 1, "{}", unreachable.stdout);
        assert!(unreachable.stdout.contains("[FAIL] files: the S3 bucket files"), "{}", unreachable.stdout);
        for printed in [&good, &missing, &unreachable] {
            assert!(!printed.stdout.contains("s3-secret-never-printed") && !printed.stderr.contains("s3-secret"));
        }
        bucket.remove().await;
    }

    let broken = loquat(&data_dir, &["doctor"], "", &[("LOQUAT_REGISTRATION", "sometimes".to_owned())]).await;
    assert_eq!(broken.code, 1);
    assert!(
        broken.stdout.contains("[FAIL] configuration: invalid configuration: LOQUAT_REGISTRATION"),
        "{}",
        broken.stdout
    );
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn config_reads_lobechat_names_with_the_newer_spelling_winning() {
    let data_dir = temp_dir("cli-config");
    let older = [("NEXTAUTH_URL", "https://old.example.com".to_owned())];
    let printed = loquat(&data_dir, &["config"], "", &older).await;
    assert!(printed.stdout.contains("app_url = \"https://old.example.com\""), "{}", printed.stdout);
    let both = [older[0].clone(), ("APP_URL", "https://new.example.com".to_owned())];
    let printed = loquat(&data_dir, &["config"], "", &both).await;
    assert!(printed.stdout.contains("app_url = \"https://new.example.com\""), "{}", printed.stdout);
    let token = [("LOQUAT_METRICS_TOKEN", "metrics-token-never-printed".to_owned())];
    let printed = loquat(&data_dir, &["config"], "", &token).await;
    assert!(printed.stdout.contains("metrics_token = \"***\""), "{}", printed.stdout);
    assert!(!printed.stdout.contains("metrics-token-never-printed"));
    let s3 = [
        ("NEXT_PUBLIC_S3_DOMAIN", "https://old-files.example.com".to_owned()),
        ("S3_PUBLIC_DOMAIN", "https://files.example.com".to_owned()),
        ("S3_BUCKET", "team-files".to_owned()),
        ("S3_ENABLE_PATH_STYLE", "1".to_owned()),
        ("S3_SECRET_ACCESS_KEY", "s3-secret-never-printed".to_owned()),
    ];
    let printed = loquat(&data_dir, &["config"], "", &s3).await;
    for expected in [
        "s3_public_domain = \"https://files.example.com\"",
        "s3_bucket = \"team-files\"",
        "s3_enable_path_style = true",
        "s3_secret_access_key = \"***\"",
    ] {
        assert!(printed.stdout.contains(expected), "{expected} in {}", printed.stdout);
    }
    let endpoint_only = [("S3_ENDPOINT", "http://minio:9000".to_owned())];
    let printed = loquat(&data_dir, &["config"], "", &endpoint_only).await;
    assert_eq!(printed.code, 1);
    assert!(printed.stderr.contains("S3_BUCKET is not"), "{}", printed.stderr);
    let _ = std::fs::remove_dir_all(&data_dir);
}
