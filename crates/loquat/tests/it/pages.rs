//! Pages and forms: the no-provider notice, assistants, topics, settings and custom providers,
//! preferences and translations.

use loquat_core::domain::MessageStatus;
use loquat_test_support::fake_openai::Reply;

use crate::helpers::{TestApp, TestOptions};

#[tokio::test]
async fn without_a_provider_the_page_explains_how_to_add_one() {
    let app = TestApp::spawn_with(TestOptions { no_provider: true, ..TestOptions::default() }).await;
    let (status, page) = app.page("/").await;
    assert_eq!(status, 200);
    assert!(page.contains("Connect a model provider"));
    assert!(page.contains("OPENAI_API_KEY"));
    // Sending says so plainly instead of failing obscurely, and stores nothing.
    let assistant = app.default_assistant().await;
    let response = app
        .client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", "Hello"), ("topic_id", "")])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 422);
    let body: serde_json::Value = response.json().await.expect("json");
    assert!(body["error"]["message"].as_str().expect("message").starts_with("No model provider is configured."));
    assert!(app.services.assistants.list_topics(app.admin().await, assistant).await.expect("topics").is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn assistants_are_created_edited_and_deleted() {
    let app = TestApp::spawn().await;
    let (status, _) = app.page("/assistants/new").await;
    assert_eq!(status, 200);
    let location = app
        .post_redirect(
            "/assistants",
            &[
                ("title", "Poet"),
                ("avatar", "🪶"),
                ("description", "Writes verse"),
                ("system_role", "You write poems."),
                ("model", "openai::gpt-4o"),
                ("temperature", "1.1"),
                ("history_limit", "4"),
                ("opening_message", "Give me a *theme*."),
                ("opening_questions", "The sea\nAutumn\n"),
            ],
        )
        .await;
    let id: loquat_core::id::AssistantId = location.trim_start_matches("/chat/").parse().expect("assistant id");
    let assistant = app.services.assistants.assistant(app.admin().await, id).await.expect("stored");
    assert_eq!(assistant.config.model, "gpt-4o");
    assert_eq!(assistant.config.params.temperature, Some(1.1));
    assert_eq!(assistant.config.history_limit, Some(4));
    assert_eq!(assistant.config.opening_questions, ["The sea", "Autumn"]);
    let (_, page) = app.page(&location).await;
    assert!(page.contains("Give me a <em>theme</em>."));
    assert!(page.contains(">The sea</button>"));

    // Invalid input comes back as a form with the error, not a crash.
    let response = app.post_form(&format!("/assistants/{id}"), &[("title", "Poet"), ("temperature", "hot")]).await;
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().await.expect("body").contains("temperature must be a number"));
    let response = app.post_form(&format!("/assistants/{id}"), &[("title", "Poet"), ("temperature", "7")]).await;
    assert!(response.text().await.expect("body").contains("Out of range: temperature (0 – 2)."));

    // The chat header switches the model.
    app.post_redirect(&format!("/assistants/{id}/model"), &[("model", "openai::o3"), ("back", "/x")]).await;
    assert_eq!(app.services.assistants.assistant(app.admin().await, id).await.expect("stored").config.model, "o3");

    app.post_redirect(&format!("/assistants/{id}/delete"), &[]).await;
    let (status, _) = app.page(&format!("/chat/{id}")).await;
    assert_eq!(status, 404);
    // The default assistant cannot be deleted.
    let default = app.default_assistant().await;
    let response = app.post_form(&format!("/assistants/{default}/delete"), &[]).await;
    assert_eq!(response.status().as_u16(), 422);
    app.cleanup().await;
}

#[tokio::test]
async fn topics_are_listed_renamed_and_deleted() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    let first = app.send(assistant, None, "First topic").await;
    app.finished(first.answer).await;
    let second = app.send(assistant, None, "Second topic").await;
    app.finished(second.answer).await;
    let topics = app.services.assistants.list_topics(app.admin().await, assistant).await.expect("topics");
    assert_eq!(topics[0].id, second.topic, "newest first");

    app.post_redirect(&format!("/topics/{}/rename", first.topic), &[("title", "Renamed 话题")]).await;
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", first.topic)).await;
    assert!(page.contains("Renamed 话题"));
    let location = app.post_redirect(&format!("/topics/{}/delete", first.topic), &[]).await;
    assert_eq!(location, format!("/chat/{assistant}"));
    let (status, _) = app.page(&format!("/chat/{assistant}/{}", first.topic)).await;
    assert_eq!(status, 404);
    assert!(
        app.services.assistants.message(app.admin().await, first.answer).await.is_err(),
        "messages went with the topic"
    );
    app.cleanup().await;
}

#[tokio::test]
async fn a_custom_provider_keeps_its_key_secret() {
    let app = TestApp::spawn_with(TestOptions { no_provider: true, ..TestOptions::default() }).await;
    let secret_key = "sk-custom-very-secret-42";
    app.fake.require_key(secret_key);
    app.fake.set_models(["agent-a", "agent-b"]);
    let base_url = app.fake.base_url();

    // Check connection and fetch the model list before saving.
    let probe = app
        .client
        .post(app.url("/settings/providers/probe"))
        .header("accept", "application/json")
        .form(&[("name", "My agents"), ("base_url", base_url.as_str()), ("api_key", secret_key)])
        .send()
        .await
        .expect("probe");
    let probe: serde_json::Value = probe.json().await.expect("json");
    assert_eq!(probe["ok"], true, "{probe}");
    assert_eq!(probe["models"], serde_json::json!(["agent-a", "agent-b"]));
    let wrong = app
        .client
        .post(app.url("/settings/providers/probe"))
        .header("accept", "application/json")
        .form(&[("name", "My agents"), ("base_url", base_url.as_str()), ("api_key", "sk-wrong")])
        .send()
        .await
        .expect("probe");
    let wrong: serde_json::Value = wrong.json().await.expect("json");
    assert_eq!(wrong["ok"], false);
    assert!(wrong["message"].as_str().expect("message").contains("rejected the API key"));

    app.post_redirect(
        "/settings/providers",
        &[
            ("name", "My agents"),
            ("base_url", base_url.as_str()),
            ("api_key", secret_key),
            ("model_list", "agent-a,agent-b=Agent B"),
            ("enabled", "on"),
        ],
    )
    .await;
    let settings = app.services.providers.provider_settings(app.admin().await).await.expect("providers");
    let stored = &settings[0].setting;
    let encrypted = stored.api_key_encrypted.as_deref().expect("a stored key");
    assert!(!encrypted.contains(secret_key));
    assert_eq!(encrypted.split(':').count(), 3);
    let (_, settings_page) = app.page("/settings").await;
    let (_, edit_page) = app.page(&format!("/settings/providers/{}", stored.id)).await;
    for page in [&settings_page, &edit_page] {
        assert!(page.contains("My agents"));
        assert!(!page.contains(secret_key), "the key is never sent back");
    }
    // The stored key is used for chatting and for probes that leave the key field empty.
    let assistant = app.default_assistant().await;
    let (_, chat) = app.page(&format!("/chat/{assistant}")).await;
    assert!(!chat.contains("Connect a model provider"));
    assert!(chat.contains("Agent B"));
    let sent = app.send(assistant, None, "Hello agent").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, MessageStatus::Complete, "{answer:?}");
    assert!(app.fake.requests().iter().any(|r| r.path.ends_with("/chat/completions")));
    let id = stored.id.to_string();
    let probe = app
        .client
        .post(app.url("/settings/providers/probe"))
        .header("accept", "application/json")
        .form(&[("name", "My agents"), ("base_url", base_url.as_str()), ("id", id.as_str())])
        .send()
        .await
        .expect("probe");
    assert_eq!(probe.json::<serde_json::Value>().await.expect("json")["ok"], true);

    // Updating without a key keeps it; a bad URL is refused with a message.
    app.post_redirect(
        &format!("/settings/providers/{id}"),
        &[("name", "Renamed"), ("base_url", base_url.as_str()), ("enabled", "on")],
    )
    .await;
    let kept = app.services.providers.provider_settings(app.admin().await).await.expect("providers");
    assert_eq!(kept[0].setting.api_key_encrypted.as_deref(), Some(encrypted));
    let response =
        app.post_form(&format!("/settings/providers/{id}"), &[("name", "Renamed"), ("base_url", "ftp://nope")]).await;
    assert!(response.text().await.expect("body").contains("must start with http:// or https://"));
    app.post_redirect(&format!("/settings/providers/{id}/delete"), &[]).await;
    assert!(app.services.providers.provider_settings(app.admin().await).await.expect("providers").is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn the_interface_speaks_the_users_language() {
    let app = TestApp::spawn().await;
    let chinese = app
        .client
        .get(app.url("/settings"))
        .header("accept-language", "zh-CN,zh;q=0.9,en;q=0.8")
        .send()
        .await
        .expect("page")
        .text()
        .await
        .expect("body");
    assert!(chinese.contains("lang=\"zh-CN\""));
    assert!(chinese.contains("模型服务商"));
    let english = app.page("/settings").await.1;
    assert!(english.contains("Model providers"));

    // A saved preference wins over the browser.
    app.post_redirect("/settings/preferences", &[("locale", "zh-CN"), ("theme", "dark")]).await;
    let (_, page) = app.page("/settings").await;
    assert!(page.contains("data-theme=\"dark\""));
    assert!(page.contains("偏好设置"));
    app.fake.push_reply(Reply::text("你好"));
    app.post_redirect("/settings/theme", &[("back", "/settings")]).await;
    assert!(app.page("/settings").await.1.contains("data-theme=\"system\""));
    app.cleanup().await;
}

#[tokio::test]
async fn assets_are_hashed_and_cached_forever() {
    let app = TestApp::spawn().await;
    let (_, page) = app.page("/").await;
    let css = page.split("href=\"/static/app.").nth(1).expect("css link").split('"').next().expect("name");
    let response = app.client.get(app.url(&format!("/static/app.{css}"))).send().await.expect("asset");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["cache-control"], "public, max-age=31536000, immutable");
    assert!(response.headers()["content-type"].to_str().expect("ascii").starts_with("text/css"));
    let missing = app.client.get(app.url("/static/app.0000.css")).send().await.expect("asset");
    assert_eq!(missing.status().as_u16(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn a_custom_provider_of_each_native_protocol_chats() {
    use loquat_core::domain::Protocol;
    use loquat_test_support::fake_upstream::FakeUpstream;
    let app = TestApp::spawn_with(TestOptions { no_provider: true, ..TestOptions::default() }).await;
    let assistant = app.default_assistant().await;
    for (protocol, model) in [
        (Protocol::Anthropic, "claude-test"),
        (Protocol::Gemini, "gemini-test"),
        (Protocol::Ollama, "llama-test"),
        (Protocol::Azure, "my-deployment"),
    ] {
        let upstream = FakeUpstream::start(protocol).await;
        upstream.require_key("sk-native");
        upstream.push_reply(Reply::text(format!("hello from {}", protocol.as_str())).usage(7, 3));
        let base_url = upstream.base_url();
        app.post_redirect(
            "/settings/providers",
            &[
                ("name", protocol.as_str()),
                ("protocol", protocol.as_str()),
                ("base_url", base_url.as_str()),
                ("api_key", "sk-native"),
                ("model_list", model),
                ("api_version", "2024-10-21"),
                ("enabled", "on"),
            ],
        )
        .await;
        let provider = app.services.providers.provider_settings(app.admin().await).await.expect("providers");
        let id = provider.iter().find(|p| p.setting.name == protocol.as_str()).expect("saved").setting.id;
        app.post_redirect(&format!("/assistants/{assistant}/model"), &[("model", &format!("{id}::{model}"))]).await;
        let sent = app.send(assistant, None, "Hello").await;
        let answer = app.finished(sent.answer).await;
        assert_eq!(answer.status, MessageStatus::Complete, "{}: {answer:?}", protocol.as_str());
        assert_eq!(answer.content, format!("hello from {}", protocol.as_str()));
        assert_eq!(answer.usage.map(|u| u.prompt_tokens), Some(7), "{}", protocol.as_str());
    }
    app.cleanup().await;
}

#[tokio::test]
async fn ollama_models_are_listed_and_downloaded_from_the_settings_page() {
    use loquat_core::domain::Protocol;
    use loquat_test_support::fake_upstream::FakeUpstream;
    let ollama = FakeUpstream::start(Protocol::Ollama).await;
    ollama.set_models(["llama3.1:8b"]);
    ollama.set_context_length("llama3.1:8b", 131_072);
    ollama.set_registry(["qwen2.5:7b"]);
    let app = TestApp::spawn_with(TestOptions {
        no_provider: true,
        env: vec![("ENABLED_OLLAMA", "1".into()), ("OLLAMA_PROXY_URL", ollama.base_url())],
        ..TestOptions::default()
    })
    .await;
    // Ollama's own models fill the picker, with the context length it reports.
    let assistant = app.default_assistant().await;
    let (_, chat) = app.page(&format!("/chat/{assistant}")).await;
    assert!(chat.contains("value=\"ollama::llama3.1:8b\""), "the picker lists Ollama's models");
    assert!(chat.contains("131K"));

    let response = app
        .client
        .post(app.url("/settings/pull"))
        .form(&[("provider", "ollama"), ("model", "qwen2.5:7b")])
        .send()
        .await
        .expect("pull");
    assert_eq!(response.status().as_u16(), 200);
    let body = response.text().await.expect("progress");
    assert!(body.contains("event: progress"), "{body}");
    assert!(body.contains("event: done"), "{body}");
    let failed = app
        .client
        .post(app.url("/settings/pull"))
        .form(&[("provider", "ollama"), ("model", "no-such-model")])
        .send()
        .await
        .expect("pull")
        .text()
        .await
        .expect("body");
    assert!(failed.contains("event: failed"), "{failed}");
    app.cleanup().await;
}

#[tokio::test]
async fn a_user_brings_their_own_key_for_a_server_provider() {
    let app = TestApp::spawn_with(TestOptions {
        no_provider: true,
        env: vec![("ENABLED_OPENAI", "1".into()), ("OPENAI_MODEL_LIST", "-all,gpt-4o".into())],
        ..TestOptions::default()
    })
    .await;
    let own_key = "sk-users-own-key-123";
    app.fake.require_key(own_key);
    // OpenAI is enabled without a server key: it waits for somebody's key.
    let (_, settings) = app.page("/settings").await;
    assert!(settings.contains("needs a key"));
    let assistant = app.default_assistant().await;
    assert!(app.page(&format!("/chat/{assistant}")).await.1.contains("Connect a model provider"));

    let base_url = app.fake.base_url();
    app.post_redirect("/settings/server-providers/openai", &[("api_key", own_key), ("base_url", base_url.as_str())])
        .await;
    let (_, settings) = app.page("/settings").await;
    assert!(!settings.contains(own_key), "the key is never shown again");
    assert!(settings.contains("your key"));
    let sent = app.send(assistant, None, "Hi").await;
    let answer = app.finished(sent.answer).await;
    assert_eq!(answer.status, loquat_core::domain::MessageStatus::Complete, "{answer:?}");
    let request = &app.fake.requests()[0];
    assert_eq!(request.header("authorization"), Some(format!("Bearer {own_key}").as_str()));

    // Removing the key takes the provider out of the picker again.
    app.post_redirect("/settings/server-providers/openai", &[("remove_key", "on")]).await;
    assert!(app.page(&format!("/chat/{assistant}")).await.1.contains("Connect a model provider"));
    // An unknown provider id is not found; a non-http base URL is refused.
    assert_eq!(app.post_form("/settings/server-providers/nope", &[("api_key", "x")]).await.status().as_u16(), 404);
    let refused = app.post_form("/settings/server-providers/openai", &[("base_url", "file:///etc")]).await;
    assert!(refused.text().await.expect("body").contains("must start with http"));
    app.cleanup().await;
}

/// The ids of the messages a page or fragment shows, in order.
fn shown(html: &str) -> Vec<String> {
    html.split("id=\"m-").skip(1).map(|rest| rest.split('"').next().unwrap_or_default().to_owned()).collect()
}

#[tokio::test]
async fn a_long_topic_comes_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let (assistant, topic, ids) = app.seed_topic(120).await;
    let ids: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let (status, page) = app.page(&format!("/chat/{assistant}/{topic}")).await;
    assert_eq!(status, 200);
    assert_eq!(shown(&page), ids[70..], "the latest 50 messages");
    let fetch = |html: &str| {
        html.split("data-earlier=\"")
            .nth(1)
            .map(|rest| rest.split('"').next().unwrap_or_default().replace("&amp;", "&"))
    };
    let first = fetch(&page).expect("a link to the earlier part");
    assert_eq!(first, format!("/chat/{assistant}/{topic}/earlier?before={}", ids[70]));
    assert!(page.contains(&format!("?from={}", ids[20])), "without JavaScript: the page starting 50 earlier");

    let (status, part) = app.page(&first).await;
    assert_eq!(status, 200);
    assert_eq!(shown(&part), ids[20..70]);
    let second = fetch(&part).expect("more before");
    let (_, rest) = app.page(&second).await;
    assert_eq!(shown(&rest), ids[..20]);
    assert_eq!(fetch(&rest), None, "the start of the branch");

    // A page can start at a message (a branch switched far up, a reader without JavaScript).
    let (_, from) = app.page(&format!("/chat/{assistant}/{topic}?from={}", ids[10])).await;
    assert_eq!(shown(&from), ids[8..], "from two messages before it, to the end");
    // A message that is not on the branch finds nothing.
    let (status, _) =
        app.page(&format!("/chat/{assistant}/{topic}/earlier?before={}", loquat_core::id::MessageId::new())).await;
    assert_eq!(status, 404);
    app.cleanup().await;
}

#[tokio::test]
async fn the_installable_app_is_described_and_its_shell_is_public() {
    let app = TestApp::spawn().await;
    let stranger = reqwest::Client::new();
    let get = |path: &str| stranger.get(app.url(path)).header("accept-language", "zh-CN").send();
    let manifest = get("/static/pwa/manifest.webmanifest").await.expect("manifest");
    assert_eq!(manifest.headers()["content-type"], "application/manifest+json");
    let manifest: serde_json::Value = manifest.json().await.expect("JSON");
    assert_eq!((manifest["start_url"].as_str(), manifest["display"].as_str()), (Some("/"), Some("standalone")));
    let sizes: Vec<&str> =
        manifest["icons"].as_array().expect("icons").iter().filter_map(|i| i["sizes"].as_str()).collect();
    assert!(sizes.contains(&"192x192") && sizes.contains(&"512x512"), "{sizes:?}");
    for icon in manifest["icons"].as_array().expect("icons") {
        let response = get(icon["src"].as_str().expect("src")).await.expect("icon");
        assert_eq!(response.status().as_u16(), 200, "{icon}");
        assert_eq!(response.headers()["content-type"], icon["type"].as_str().expect("type"));
    }
    let worker = get("/static/pwa/sw.js").await.expect("worker");
    assert_eq!(worker.headers()["service-worker-allowed"], "/");
    assert_eq!(worker.headers()["cache-control"], "no-cache");
    assert!(worker.headers()["content-type"].to_str().expect("ascii").starts_with("text/javascript"));
    let script = worker.text().await.expect("script");
    assert!(script.contains("request.mode === \"navigate\"") && script.contains("/static/pwa/offline"));
    let offline = get("/static/pwa/offline").await.expect("offline");
    assert_eq!(offline.status().as_u16(), 200);
    assert!(offline.text().await.expect("page").contains("当前处于离线状态"));
    assert_eq!(get("/static/pwa/other.png").await.expect("icon").status().as_u16(), 404);
    // Every page links the manifest.
    let (_, page) = app.page("/").await;
    assert!(page.contains(r#"<link rel="manifest" href="/static/pwa/manifest.webmanifest">"#));
    app.cleanup().await;
}

#[tokio::test]
async fn a_topic_is_pinned_to_the_top_and_the_list_is_grouped_by_day() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    let sent = app.send(assistant, None, "Pin me").await;
    app.finished(sent.answer).await;
    let (_, page) = app.page(&format!("/chat/{assistant}")).await;
    assert!(page.contains("<h3 class=\"topic-group\">Today</h3>") && !page.contains(">Pinned</h3>"), "{page}");
    let back = format!("/chat/{assistant}");
    let location = app.post_redirect(&format!("/topics/{}/pin", sent.topic), &[("pinned", "1"), ("back", &back)]).await;
    assert_eq!(location, back);
    let (_, page) = app.page(&back).await;
    let pinned = page.find(">Pinned</h3>").expect("a pinned group");
    assert!(page[pinned..].contains(&sent.topic.to_string()) && page.contains(">Unpin</button>"), "{page}");
    // Away from the site is never where a form goes back to.
    let location =
        app.post_redirect(&format!("/topics/{}/pin", sent.topic), &[("pinned", "0"), ("back", "//evil.example")]).await;
    assert!(location.starts_with(&format!("/chat/{assistant}/")), "{location}");
    let (_, page) = app.page(&back).await;
    assert!(!page.contains(">Pinned</h3>"), "unpinned");
    app.cleanup().await;
}

#[tokio::test]
async fn search_finds_titles_and_messages_in_english_and_chinese_and_only_ones_own() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Spending grew 15% in 2023 <script>alert(1)</script>."));
    app.fake.push_reply(Reply::text("Loquat R&D"));
    let english = app.send(assistant, None, "How is R&D spending growing?").await;
    app.finished(english.answer).await;
    app.titled(english.topic).await;
    app.fake.push_reply(Reply::text("公司2023年研发投入为12亿元。"));
    app.fake.push_reply(Reply::text("研发报告"));
    let chinese = app.send(assistant, None, "研发投入是多少？").await;
    app.finished(chinese.answer).await;
    app.titled(chinese.topic).await;
    // Word forms; a highlighted snippet; a link that opens the topic at the message.
    let (status, page) = app.page("/search?q=spends").await;
    assert_eq!(status, 200);
    assert!(page.contains("<mark>spending</mark>") && page.contains("<mark>Spending</mark>"), "{page}");
    assert!(page.contains(&format!("?from={id}#m-{id}", id = english.answer)), "{page}");
    assert!(page.contains("alert(1)") && !page.contains("<script>alert"), "model text stays inert");
    // Chinese without spaces, and a title.
    let (_, page) = app.page(&format!("/search?q={}", "研发投入")).await;
    assert!(page.contains("<mark>研发投入</mark>"), "{page}");
    let (_, page) = app.page(&format!("/search?q={}", "报告")).await;
    assert!(page.contains("研发<mark>报告</mark>"), "the title matched: {page}");
    // Another person finds nothing of it.
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let (_, page) = app.page_as(&bob, "/search?q=spending").await;
    assert!(page.contains("Nothing in your chats matches") && !page.contains(&english.topic.to_string()), "{page}");
    // Special characters and a huge query are a search like any other.
    for query in ["%25_%5C%27%22%3B--", "%E2%80%9C*()%5B%5D", &"a".repeat(10_000)] {
        let (status, _) = app.page(&format!("/search?q={query}")).await;
        assert_eq!(status, 200, "{query}");
    }
    app.cleanup().await;
}
