//! The holes a hostile review found (issue 9), each tried the way an attacker would, through
//! HTTP on the real server: the access code, API tokens on pages, server keys and members'
//! URLs, the model allow-list, the server's Ollama, redirects, per-address limits, account
//! lockout, forwarded addresses, a disabled account's answers, single sign-on bound to the
//! browser and to the registration rules, and form values nobody sends.

use std::time::{Duration, Instant};

use loquat_core::Secret;
use loquat_core::domain::{MessageStatus, Quota, QuotaScope, Role};
use loquat_core::id::{AssistantId, MessageId, UserId};
use loquat_test_support::fake_idp::{FakeIdp, FakeUser};
use loquat_test_support::fake_openai::{FakeOpenAi, Reply};
use loquat_test_support::fake_upstream::FakeUpstream;
use loquat_test_support::postgres::TestDatabase;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TEST_KEY, TestApp, TestOptions, cookie_client, eventually};
use crate::people::sso_round_trip;

/// A member (invited by the administrator) signed in on their own client.
pub(crate) async fn member(app: &TestApp, name: &str) -> (reqwest::Client, UserId) {
    let admin = app.admin().await;
    let invite = app
        .services
        .admin
        .admin_create_invite(admin, Role::User, Duration::from_secs(600), &Default::default())
        .await
        .expect("invite");
    let client = cookie_client();
    let email = format!("{}@example.com", name.to_lowercase());
    app.sign_up(&client, name, &email, "a long enough password", invite.code.expose()).await;
    let id = app.services.store().find_user_by_email(&email).await.expect("reads").expect("registered").id;
    (client, id)
}

/// Posts a message to a new topic the way the page script does.
async fn send_as(app: &TestApp, client: &reqwest::Client, assistant: AssistantId) -> reqwest::Response {
    client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", "hello"), ("topic_id", "")])
        .send()
        .await
        .expect("send")
}

fn location(response: &reqwest::Response) -> String {
    response.headers().get("location").map(|value| value.to_str().expect("ascii").to_owned()).unwrap_or_default()
}

// ---- 1. The access code ----------------------------------------------------------------------

#[tokio::test]
async fn the_access_gate_trusts_only_its_cookie_and_limits_guessing() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.access_code = Some(Secret::new("open sesame")),
        first_account: false,
        ..TestOptions::default()
    })
    .await;
    let stranger = cookie_client();
    let page = stranger
        .get(app.url("/register"))
        .header("accept", "text/html")
        .bearer_auth("lq_bogus")
        .send()
        .await
        .expect("page");
    assert_eq!(page.status().as_u16(), 303, "a made-up token opens nothing");
    assert!(location(&page).starts_with("/access"));
    let register = stranger
        .post(app.url("/register"))
        .bearer_auth("lq_bogus")
        .form(&[("name", "Eve"), ("email", "eve@example.com"), ("password", "eve's long password")])
        .send()
        .await
        .expect("register");
    assert_eq!(register.status().as_u16(), 401);
    assert!(app.services.accounts.needs_first_account().await.expect("reads"), "no administrator was created");

    // The API is behind its own tokens, validated there.
    let bogus = stranger.get(app.url("/v1/models")).bearer_auth("lq_bogus").send().await.expect("models");
    assert_eq!(bogus.status().as_u16(), 401);

    // Guessing the code is limited like signing in.
    let mut statuses = Vec::new();
    for attempt in 0..25 {
        let response =
            stranger.post(app.url("/access")).form(&[("code", format!("guess {attempt}"))]).send().await.expect("post");
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let right = stranger.post(app.url("/access")).form(&[("code", "open sesame")]).send().await.expect("post");
    assert_eq!(right.status().as_u16(), 429, "the limit holds for the right code too");
    app.cleanup().await;
}

// ---- 7. API tokens open the API only ---------------------------------------------------------

#[tokio::test]
async fn api_tokens_open_the_api_and_nothing_else() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let (token, _) = app.services.accounts.create_api_token(admin, "script", &Default::default()).await.expect("token");
    let program = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
    let models = program.get(app.url("/v1/models")).bearer_auth(token.expose()).send().await.expect("models");
    assert_eq!(models.status().as_u16(), 200);
    for path in ["/account", "/admin", "/admin/settings", "/settings"] {
        let response = program
            .get(app.url(path))
            .bearer_auth(token.expose())
            .header("accept", "application/json")
            .send()
            .await
            .expect("page");
        assert_eq!(response.status().as_u16(), 401, "{path}");
    }
    let minted = program
        .post(app.url("/account/tokens"))
        .bearer_auth(token.expose())
        .form(&[("name", "more")])
        .send()
        .await
        .expect("mint");
    assert!(!minted.status().is_success(), "a token cannot mint tokens");
    assert_eq!(app.services.accounts.api_tokens(admin).await.expect("tokens").len(), 1);

    // "Sign out everywhere" without the box keeps tokens; with it, they stop at once.
    let still = |token: Secret| {
        let program = program.clone();
        let url = app.url("/v1/models");
        async move { program.get(url).bearer_auth(token.expose()).send().await.expect("models").status().as_u16() }
    };
    app.post_redirect("/account/sessions/end-all", &[]).await;
    assert_eq!(still(token.clone()).await, 200);
    assert_eq!(app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await, 303);
    app.post_redirect("/account/sessions/end-all", &[("revoke_tokens", "on")]).await;
    assert_eq!(still(token.clone()).await, 401);

    // A password change can take them too.
    assert_eq!(app.sign_in(&app.client, ADMIN_EMAIL, ADMIN_PASSWORD).await, 303);
    let (second, _) =
        app.services.accounts.create_api_token(admin, "second", &Default::default()).await.expect("token");
    let changed = app
        .post_form(
            "/account/password",
            &[("current", ADMIN_PASSWORD), ("new", "a new long password"), ("revoke_tokens", "on")],
        )
        .await;
    assert_eq!(changed.status().as_u16(), 200);
    assert_eq!(still(second).await, 401);

    // An administrator's reset too; and a disabled member's tokens stop at once.
    let (_, bob) = member(&app, "Bob").await;
    let (bobs, _) = app.services.accounts.create_api_token(bob, "bob", &Default::default()).await.expect("token");
    assert_eq!(still(bobs.clone()).await, 200);
    app.post_redirect(
        &format!("/admin/users/{bob}/password"),
        &[("password", "bob's new password"), ("revoke_tokens", "on")],
    )
    .await;
    assert_eq!(still(bobs).await, 401);
    let (bobs_next, _) =
        app.services.accounts.create_api_token(bob, "bob 2", &Default::default()).await.expect("token");
    app.post_redirect(&format!("/admin/users/{bob}/disable"), &[]).await;
    assert_eq!(still(bobs_next).await, 401);
    app.cleanup().await;
}

// ---- 2. Server keys only go to the server's URL ---------------------------------------------

#[tokio::test]
async fn server_keys_never_go_to_a_members_url() {
    let elsewhere = FakeOpenAi::start().await;
    let allowed = elsewhere.upstream().addr().to_string();
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("OPENAI_API_KEY", format!("{TEST_KEY},sk-second-server-key"))],
        adjust: Some(Box::new(move |config| config.ssrf_allow = allowed)),
        ..TestOptions::default()
    })
    .await;
    let (bob, bob_id) = member(&app, "Bob").await;
    let elsewhere_url = elsewhere.base_url();
    // A URL of their own without a key of their own is refused.
    let refused = bob
        .post(app.url("/settings/server-providers/openai"))
        .form(&[("base_url", elsewhere_url.as_str())])
        .send()
        .await
        .expect("save");
    assert_eq!(refused.status().as_u16(), 200);
    assert!(refused.text().await.expect("page").contains("add your own API key"));
    // With their own key, only their key goes there; a 401 does not rotate into server keys.
    let saved = bob
        .post(app.url("/settings/server-providers/openai"))
        .form(&[("base_url", elsewhere_url.as_str()), ("api_key", "sk-bobs-own")])
        .send()
        .await
        .expect("save");
    assert_eq!(saved.status().as_u16(), 303);
    elsewhere.push_reply(Reply::error(401));
    let assistant = app.services.assistants.default_assistant(bob_id).await.expect("assistant").id;
    let sent = send_as(&app, &bob, assistant).await;
    assert_eq!(sent.status().as_u16(), 200);
    let sent: serde_json::Value = sent.json().await.expect("JSON");
    let answer: MessageId = sent["answer_id"].as_str().expect("answer id").parse().expect("an id");
    // Every request the answer makes (retries, other keys) is made before it ends.
    eventually("the answer ends", || async {
        app.services
            .assistants
            .message(bob_id, answer)
            .await
            .is_ok_and(|message| message.status != MessageStatus::Generating)
    })
    .await;
    assert!(!elsewhere.requests().is_empty());
    for request in elsewhere.requests() {
        assert_eq!(request.header("authorization"), Some("Bearer sk-bobs-own"), "{:?}", request.path);
    }
    assert!(app.fake.requests().is_empty(), "nothing went to the server's URL either");

    // Members do not see the server's base URL; the administrator does.
    let (_, bobs_settings) = app.page_as(&bob, "/settings").await;
    assert!(!bobs_settings.contains(&app.fake.base_url()), "an internal address leaked to a member");
    let (_, admin_settings) = app.page("/settings").await;
    assert!(admin_settings.contains(&app.fake.base_url()));
    app.cleanup().await;
}

// ---- 5. The model allow-list on the chat pages ----------------------------------------------

#[tokio::test]
async fn members_limited_to_one_model_cannot_chat_with_another() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let patterns = vec!["openai::gpt-4o-mini".to_owned()];
    app.services
        .admin
        .admin_set_role_models(admin, &loquat_core::domain::Policy::Role(Role::User), patterns, &Default::default())
        .await
        .expect("set");
    let (bob, bob_id) = member(&app, "Bob").await;
    let assistant = app.services.assistants.default_assistant(bob_id).await.expect("assistant").id;
    let chosen = bob
        .post(app.url(&format!("/assistants/{assistant}/model")))
        .header("accept", "application/json")
        .form(&[("model", "openai::gpt-4o")])
        .send()
        .await
        .expect("choose");
    assert!(chosen.status().is_success());
    let refused = send_as(&app, &bob, assistant).await;
    assert_eq!(refused.status().as_u16(), 422);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("gpt-4o"), "{body}");
    // The allowed model still works.
    bob.post(app.url(&format!("/assistants/{assistant}/model")))
        .header("accept", "application/json")
        .form(&[("model", "openai::gpt-4o-mini")])
        .send()
        .await
        .expect("choose");
    assert_eq!(send_as(&app, &bob, assistant).await.status().as_u16(), 200);
    assert!(app.fake.wait_for_requests(1, Duration::from_secs(10)).await);
    assert!(app.fake.requests().iter().all(|request| request.body["model"] == "gpt-4o-mini"));
    app.cleanup().await;
}

// ---- 6. The server's Ollama ------------------------------------------------------------------

#[tokio::test]
async fn only_administrators_download_models_onto_the_servers_ollama() {
    use loquat_core::domain::Protocol;
    let ollama = FakeUpstream::start(Protocol::Ollama).await;
    ollama.set_models(["llama3.1:8b"]);
    ollama.set_registry(["qwen2.5:7b"]);
    let app = TestApp::spawn_with(TestOptions {
        no_provider: true,
        env: vec![("ENABLED_OLLAMA", "1".into()), ("OLLAMA_PROXY_URL", ollama.base_url())],
        ..TestOptions::default()
    })
    .await;
    let (bob, _) = member(&app, "Bob").await;
    let (_, settings) = app.page_as(&bob, "/settings").await;
    assert!(!settings.contains("data-pull"), "no download form for members");
    let pulled = bob
        .post(app.url("/settings/pull"))
        .header("accept", "application/json")
        .form(&[("provider", "ollama"), ("model", "qwen2.5:7b")])
        .send()
        .await
        .expect("pull");
    assert_eq!(pulled.status().as_u16(), 404);
    assert!(!ollama.requests().iter().any(|request| request.path.contains("pull")), "Ollama was not asked");
    let by_admin = app.post_form("/settings/pull", &[("provider", "ollama"), ("model", "qwen2.5:7b")]).await;
    assert_eq!(by_admin.status().as_u16(), 200);
    assert!(by_admin.text().await.expect("progress").contains("event: done"));
    app.cleanup().await;
}

// ---- 3. Racing registrations -----------------------------------------------------------------

async fn registrations_race(database: Option<TestDatabase>) {
    let app = TestApp::spawn_with(TestOptions { database, first_account: false, ..TestOptions::default() }).await;
    // Five people create "the first account" at once: one administrator.
    let attempts = (0..5).map(|index| {
        let (client, url) = (cookie_client(), app.url("/register"));
        async move {
            let form = [
                ("name", format!("Admin {index}")),
                ("email", format!("admin{index}@example.com")),
                ("password", "a long enough password".to_owned()),
            ];
            client.post(url).form(&form).send().await.expect("register").status().as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|status| **status == 303).count(), 1, "{statuses:?}");
    let users = app.services.store().list_users("", 100, 0).await.expect("lists");
    assert_eq!(users.len(), 1, "one account");
    assert_eq!(users[0].role, Role::Admin);
    let admin = users[0].id;

    // Eight people use one single-use administrator invite at once: one gets in.
    let invite =
        app.services.admin.admin_create_invite(admin, Role::Admin, Duration::from_secs(600), &Default::default()).await;
    let code = invite.expect("invite").code.expose().to_owned();
    let attempts = (0..8).map(|index| {
        let (client, url, code) = (cookie_client(), app.url("/register"), code.clone());
        async move {
            let form = [
                ("name", format!("Racer {index}")),
                ("email", format!("racer{index}@example.com")),
                ("password", "a long enough password".to_owned()),
                ("invite", code),
            ];
            client.post(url).form(&form).send().await.expect("register").status().as_u16()
        }
    });
    let statuses = futures_util::future::join_all(attempts).await;
    assert_eq!(statuses.iter().filter(|status| **status == 303).count(), 1, "{statuses:?}");
    let racers = app.services.store().list_users("racer", 100, 0).await.expect("lists");
    assert_eq!(racers.len(), 1, "one account from the invite");
    assert_eq!(racers[0].role, Role::Admin);
    app.cleanup().await;
}

#[tokio::test]
async fn racing_registrations_make_one_administrator_on_sqlite() {
    registrations_race(None).await;
}

#[tokio::test]
async fn racing_registrations_make_one_administrator_on_postgres() {
    let Some(database) = TestDatabase::from_env().await else {
        println!("skipped: LOQUAT_TEST_DATABASE_URL is not set");
        return;
    };
    registrations_race(Some(database)).await;
}

// ---- 4. Redirects ----------------------------------------------------------------------------

#[tokio::test]
async fn redirects_never_leave_the_site() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.access_code = Some(Secret::new("open sesame")),
        first_account: false,
        ..TestOptions::default()
    })
    .await;
    let hostile =
        ["/\t/evil.example/x", "//evil.example", "/\\evil.example", "/\r\n/evil.example", "https://evil.example"];
    let browser = cookie_client();
    for next in hostile {
        let access = browser.post(app.url("/access")).form(&[("code", "open sesame"), ("next", next)]).send().await;
        let access = access.expect("access");
        assert_eq!((access.status().as_u16(), location(&access)), (303, "/".to_owned()), "/access {next:?}");
    }
    app.sign_up(&browser, "Ada", ADMIN_EMAIL, ADMIN_PASSWORD, "").await;
    for next in hostile {
        let login = browser
            .post(app.url("/login"))
            .form(&[("email", ADMIN_EMAIL), ("password", ADMIN_PASSWORD), ("next", next)])
            .send()
            .await
            .expect("login");
        assert_eq!((login.status().as_u16(), location(&login)), (303, "/".to_owned()), "POST /login {next:?}");
        let encoded: String = next.bytes().map(|byte| format!("%{byte:02X}")).collect();
        let shown = browser.get(app.url(&format!("/login?next={encoded}"))).send().await.expect("login page");
        assert_eq!((shown.status().as_u16(), location(&shown)), (303, "/".to_owned()), "GET /login {next:?}");
        let theme = browser.post(app.url("/settings/theme")).form(&[("back", next)]).send().await.expect("theme");
        assert_eq!((theme.status().as_u16(), location(&theme)), (303, "/".to_owned()), "/settings/theme {next:?}");
    }
    let fine = browser.post(app.url("/settings/theme")).form(&[("back", "/settings")]).send().await.expect("theme");
    assert_eq!(location(&fine), "/settings");
    app.cleanup().await;
}

// ---- 8. The per-address chat limit -----------------------------------------------------------

#[tokio::test]
async fn the_per_address_chat_limit_is_configurable_and_spares_api_tokens() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.limits.chat_per_address_per_minute = 3,
        ..TestOptions::default()
    })
    .await;
    let admin = app.admin().await;
    let assistant = app.default_assistant().await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(send_as(&app, &app.client, assistant).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    // A batch job with a token from the same address is governed by its user's quota only.
    let (token, _) = app.services.accounts.create_api_token(admin, "batch", &Default::default()).await.expect("token");
    for round in 0..10 {
        let response = reqwest::Client::new()
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(token.expose())
            .json(&serde_json::json!({ "model": "openai/gpt-4o", "messages": [{ "role": "user", "content": "hi" }] }))
            .send()
            .await
            .expect("completion");
        assert_eq!(response.status().as_u16(), 200, "request {round}");
    }
    app.cleanup().await;
}

// ---- 9 and 13. Lockout and forwarded addresses -----------------------------------------------

/// Signs in as `email` from `address` (behind one trusted proxy).
async fn sign_in_from(app: &TestApp, address: &str, email: &str, password: &str) -> u16 {
    cookie_client()
        .post(app.url("/login"))
        .header("x-forwarded-for", address)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .expect("login")
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_stranger_cannot_lock_the_owner_out() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.trusted_proxies = "1".into(),
        ..TestOptions::default()
    })
    .await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(sign_in_from(&app, "198.51.100.7", ADMIN_EMAIL, "guess").await);
    }
    assert_eq!(statuses.last(), Some(&429), "the guesser is stopped: {statuses:?}");
    // The owner, from their own address, gets in (slowed, not refused).
    let started = Instant::now();
    assert_eq!(sign_in_from(&app, "203.0.113.20", ADMIN_EMAIL, ADMIN_PASSWORD).await, 303);
    assert!(started.elapsed() >= Duration::from_secs(1), "the account under attack is slowed down");
    app.cleanup().await;
}

#[tokio::test]
async fn the_client_address_is_the_one_the_proxy_saw() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.trust_forwarded_for = true,
        ..TestOptions::default()
    })
    .await;
    // The client invents a new leftmost address each time; the proxy appends the real one.
    let mut statuses = Vec::new();
    for attempt in 0..25 {
        let spoofed = format!("6.6.6.{attempt}, 192.0.2.44");
        statuses.push(sign_in_from(&app, &spoofed, &format!("nobody{attempt}@example.com"), "guess").await);
    }
    assert_eq!(statuses.last(), Some(&429), "the limit per address holds: {statuses:?}");
    let admin = app.admin().await;
    let failed =
        app.services.admin.admin_audit(admin, &crate::helpers::action_filter("login_failed"), 0).await.expect("audit");
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|event| event.ip == "192.0.2.44"),
        "{:?}",
        failed.iter().map(|e| &e.ip).collect::<Vec<_>>()
    );
    app.cleanup().await;
}

// ---- 14. Small leaks -------------------------------------------------------------------------

#[tokio::test]
async fn a_disabled_account_answers_alike_whatever_the_password_and_ids_are_random() {
    let app = TestApp::spawn().await;
    let (_, bob) = member(&app, "Bob").await;
    app.post_redirect(&format!("/admin/users/{bob}/disable"), &[]).await;
    let answer = async |password: &str| {
        let response = cookie_client()
            .post(app.url("/login"))
            .form(&[("email", "bob@example.com"), ("password", password)])
            .send()
            .await
            .expect("login");
        (response.status().as_u16(), response.text().await.expect("page").contains("This account is disabled"))
    };
    assert_eq!(answer("a long enough password").await, (401, true));
    assert_eq!(answer("a wrong password").await, (401, true), "no password oracle");

    let other = TestApp::spawn().await;
    let (first, second) = (app.admin().await, other.admin().await);
    assert_ne!(first, second, "the first administrator's id is random");
    assert_ne!(first.to_string(), "01900000-0000-7000-8000-000000000001");
    other.cleanup().await;
    app.cleanup().await;
}

// ---- 11 and 12. Single sign-on ---------------------------------------------------------------

#[tokio::test]
async fn a_sign_in_finishes_only_in_the_browser_that_started_it() {
    let idp = FakeIdp::start().await;
    idp.set_user(FakeUser {
        subject: "attacker".into(),
        email: Some(ADMIN_EMAIL.into()),
        email_verified: true,
        name: Some("Attacker".into()),
    });
    let app =
        TestApp::spawn_with(TestOptions { env: crate::people::oidc_env(&idp, &[]), ..TestOptions::default() }).await;
    // The attacker starts a sign-in, lets the IdP approve it, and sends the link to a victim.
    let attacker = cookie_client();
    let callback = sso_round_trip(&app, &attacker).await;
    let victim = cookie_client();
    let opened = victim.get(&callback).send().await.expect("callback");
    assert_eq!(opened.status().as_u16(), 400);
    let (_, page) = app.page_as(&victim, "/account").await;
    assert!(!page.contains(ADMIN_EMAIL), "the victim is not signed in to anybody's account");
    // In the browser that started it, a sign-in works.
    let mine = cookie_client();
    let callback = sso_round_trip(&app, &mine).await;
    assert_eq!(mine.get(&callback).send().await.expect("callback").status().as_u16(), 303);
    app.cleanup().await;
}

#[tokio::test]
async fn single_sign_on_creates_accounts_only_as_registration_allows() {
    let idp = FakeIdp::start().await;
    let app = TestApp::spawn_with(TestOptions {
        env: crate::people::oidc_env(&idp, &[]),
        configure: |config| config.auth_allowed_emails = "@example.com,@partner.example".into(),
        ..TestOptions::default()
    })
    .await;
    let person = |subject: &str, email: &str, verified: bool| FakeUser {
        subject: subject.into(),
        email: Some(email.into()),
        email_verified: verified,
        name: Some(subject.into()),
    };
    let count = async || app.services.store().list_users("", 100, 0).await.expect("lists").len();
    let before = count().await;

    // Invite-only (the default): an email the allow-list names gets an account…
    idp.set_user(person("carol", "carol@example.com", true));
    let browser = cookie_client();
    let callback = sso_round_trip(&app, &browser).await;
    assert_eq!(browser.get(&callback).send().await.expect("callback").status().as_u16(), 303);
    assert_eq!(count().await, before + 1);
    // …an unverified one does not.
    idp.set_user(person("mallory", "mallory@example.com", false));
    let browser = cookie_client();
    let callback = sso_round_trip(&app, &browser).await;
    assert_eq!(browser.get(&callback).send().await.expect("callback").status().as_u16(), 403);
    assert_eq!(count().await, before + 1);
    app.cleanup().await;

    // Without an allow-list, invite-only means an invitation, carried through the sign-in.
    let app =
        TestApp::spawn_with(TestOptions { env: crate::people::oidc_env(&idp, &[]), ..TestOptions::default() }).await;
    let before = count_users(&app).await;
    idp.set_user(person("dave", "dave@elsewhere.example", true));
    let browser = cookie_client();
    let callback = sso_round_trip(&app, &browser).await;
    let refused = browser.get(&callback).send().await.expect("callback");
    assert_eq!(refused.status().as_u16(), 403);
    assert!(refused.text().await.expect("page").contains("needs an invite"));
    assert_eq!(count_users(&app).await, before, "a stranger the IdP accepts gets no account");

    let admin = app.admin().await;
    let client = Default::default();
    let invite = app.services.admin.admin_create_invite(admin, Role::User, Duration::from_secs(600), &client).await;
    let code = invite.expect("invite").code.expose().to_owned();
    let (_, register) = app.page_as(&cookie_client(), &format!("/register?invite={code}")).await;
    assert!(register.contains(&format!("/api/auth/signin/generic-oidc?invite={code}")), "SSO offered with the invite");
    let browser = cookie_client();
    let start =
        browser.get(app.url(&format!("/api/auth/signin/generic-oidc?invite={code}"))).send().await.expect("sign in");
    let authorize = location(&start);
    let approved = browser.get(&authorize).send().await.expect("authorize");
    let callback = location(&approved);
    assert_eq!(browser.get(&callback).send().await.expect("callback").status().as_u16(), 303);
    assert_eq!(count_users(&app).await, before + 1, "the invitation made the account");
    assert!(!app.services.accounts.invite_is_valid(&code).await.expect("reads"), "and was used");
    app.cleanup().await;
}

async fn count_users(app: &TestApp) -> usize {
    app.services.store().list_users("", 100, 0).await.expect("lists").len()
}

// ---- Correctness: limits and form values -----------------------------------------------------

#[tokio::test]
async fn limits_are_checked_where_they_are_set() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let huge = app.post_form("/admin/settings/quota-user", &[("requests_per_minute", "100000000")]).await;
    assert_eq!(huge.status().as_u16(), 422);
    // A limit stored before this check (or by hand) means "no limit", without errors.
    let stored = Quota { requests_per_minute: Some(100_000_000), ..Quota::default() };
    app.services.store().set_quota(&QuotaScope::User(admin), &stored).await.expect("stored");
    let assistant = app.default_assistant().await;
    for _ in 0..3 {
        assert_eq!(send_as(&app, &app.client, assistant).await.status().as_u16(), 200);
    }
    app.cleanup().await;
}

#[tokio::test]
async fn form_values_nobody_sends_are_refused_plainly() {
    let app = TestApp::spawn().await;
    let (_, bob) = member(&app, "Bob").await;
    let cases: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/admin/users/{bob}/role"), vec![("role", "superuser")]),
        (
            "/admin/users".into(),
            vec![("name", "X"), ("email", "x@example.com"), ("password", "long password"), ("role", "root")],
        ),
        ("/admin/invites".into(), vec![("role", "god"), ("days", "7")]),
        ("/admin/invites".into(), vec![("role", "user"), ("days", "many")]),
        ("/admin/invites".into(), vec![("role", "user"), ("days", "0")]),
        ("/admin/settings/registration".into(), vec![("mode", "sometimes")]),
        ("/admin/settings/quota-user".into(), vec![("tokens_per_day", "lots")]),
        ("/settings/preferences".into(), vec![("theme", "neon"), ("locale", "")]),
        ("/settings/preferences".into(), vec![("theme", "dark"), ("locale", "klingon")]),
        ("/settings/providers".into(), vec![("name", "X"), ("protocol", "gopher"), ("base_url", "https://x.example")]),
    ];
    for (path, form) in &cases {
        let response = app.post_form(path, form).await;
        let status = response.status().as_u16();
        let page = response.text().await.expect("page");
        assert_eq!(status, 400, "{path} {form:?}: {page}");
    }
    // Nothing changed.
    assert_eq!(app.services.accounts.user(bob).await.expect("bob").role, Role::User);
    assert!(app.services.store().find_user_by_email("x@example.com").await.expect("reads").is_none());
    assert!(app.services.store().get_quota(&QuotaScope::Role(Role::User)).await.expect("reads").is_none());
    app.cleanup().await;
}
