//! Several real `loquat` processes: a rate limit shared through Redis holds across two of them,
//! and no secret the process was given ever reaches its log.

use loquat_test_support::fake_openai::{FakeOpenAi, Reply};

use crate::helpers::{TEST_KEY, eventually, temp_dir, test_redis_url};
use crate::recovery::start_process;

async fn sign_in(client: &reqwest::Client, base: &str, email: &str, password: &str) -> u16 {
    let response = client
        .post(format!("{base}/login"))
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .expect("login");
    response.status().as_u16()
}

#[tokio::test]
async fn a_sign_in_limit_holds_across_two_processes_sharing_redis() {
    let Some(redis) = test_redis_url() else { return };
    let fake = FakeOpenAi::start().await;
    let data_dir = temp_dir("replicas");
    let prefix = format!("loquat-test-{}", uuid::Uuid::new_v4().simple());
    let env = [("REDIS_URL", redis.clone()), ("REDIS_PREFIX", prefix.clone())];
    // Two replicas on one store (SQLite in one folder is enough to share the account).
    let first = start_process(&data_dir, &fake, &env).await;
    let second = start_process(&data_dir, &fake, &env).await;
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let registered = client
        .post(format!("{}/register", first.base))
        .form(&[("name", "Ada"), ("email", "ada@example.com"), ("password", "the right password")])
        .send()
        .await
        .expect("register");
    assert_eq!(registered.status().as_u16(), 303);
    // Ten wrong passwords for one account spread over both processes: the eleventh attempt is
    // refused by whichever process gets it, even with the right password.
    let mut statuses = Vec::new();
    for attempt in 0..10 {
        let base = if attempt % 2 == 0 { &first.base } else { &second.base };
        statuses.push(sign_in(&client, base, "ada@example.com", "wrong").await);
    }
    assert!(statuses.iter().all(|status| *status == 401), "{statuses:?}");
    assert_eq!(sign_in(&client, &second.base, "ada@example.com", "the right password").await, 429);
    assert_eq!(sign_in(&client, &first.base, "ada@example.com", "the right password").await, 429);
    drop((first, second));
    // Clean up the test's keys.
    if let Ok(client) = redis::Client::open(redis.as_str())
        && let Ok(mut connection) = client.get_multiplexed_async_connection().await
    {
        let keys: Vec<String> =
            redis::cmd("KEYS").arg(format!("{prefix}:*")).query_async(&mut connection).await.unwrap_or_default();
        for key in keys {
            let _: Result<(), _> = redis::cmd("DEL").arg(key).query_async(&mut connection).await;
        }
    }
    let _ = std::fs::remove_dir_all(&data_dir);
}

#[tokio::test]
async fn secrets_never_reach_the_log() {
    let fake = FakeOpenAi::start().await;
    let data_dir = temp_dir("secrets");
    let vault_key = "dmF1bHQta2V5LW5ldmVyLWxvZ2dlZC0zMi1ieXRlcyE="; // 32 bytes, base64
    let custom_key = "sk-custom-never-logged-7f3a";
    let access = "access-code-never-logged";
    let password = "password-never-logged-9";
    let env = [
        ("KEY_VAULTS_SECRET", vault_key.to_owned()),
        ("ACCESS_CODE", access.to_owned()),
        ("LOQUAT_LOG", "debug".to_owned()),
    ];
    let process = start_process(&data_dir, &fake, &env).await;
    let client = reqwest::Client::builder().cookie_store(true).build().expect("client");
    let base = &process.base;
    client.post(format!("{base}/access")).form(&[("code", access), ("next", "/")]).send().await.expect("access");
    let registered = client
        .post(format!("{base}/register"))
        .form(&[("name", "Ada"), ("email", "ada@example.com"), ("password", password)])
        .send()
        .await
        .expect("register");
    let chat = registered.url().path().to_owned();
    // A failing sign-in, a provider with a key, a provider call that fails with 401, a chat.
    client.post(format!("{base}/login")).form(&[("email", "ada@example.com"), ("password", "nope")]).send().await.ok();
    fake.require_key(TEST_KEY);
    client
        .post(format!("{base}/settings/providers"))
        .form(&[
            ("name", "Mine"),
            ("protocol", "openai"),
            ("base_url", &fake.base_url()),
            ("api_key", custom_key),
            ("model_list", "m"),
            ("enabled", "on"),
        ])
        .send()
        .await
        .expect("provider");
    client
        .post(format!("{base}/settings/providers/probe"))
        .header("accept", "application/json")
        .form(&[("name", "Mine"), ("protocol", "openai"), ("base_url", &fake.base_url()), ("api_key", custom_key)])
        .send()
        .await
        .expect("probe");
    fake.push_reply(Reply::text("hello"));
    let sent: serde_json::Value = client
        .post(format!("{base}{chat}/send"))
        .header("accept", "application/json")
        .form(&[("content", "hi"), ("topic_id", "")])
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("JSON");
    // The chat's last step is titling the new topic (with the fake's default reply).
    let topic = format!("{base}{}", sent["topic_url"].as_str().expect("topic url"));
    eventually("the new topic is titled", || async {
        let page = client.get(&topic).send().await.expect("page").text().await.expect("body");
        page.contains("Hello from the fake upstream")
    })
    .await;
    let log = process.log.lock().expect("log").join("\n");
    assert!(log.len() > 200, "the process logged something");
    for secret in [TEST_KEY, vault_key, custom_key, access, password] {
        assert!(!log.contains(secret), "the log contains a secret");
    }
    drop(process);
    let _ = std::fs::remove_dir_all(&data_dir);
}
