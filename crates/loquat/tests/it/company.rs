//! An instance that signs people in through its identity provider only
//! (`AUTH_DISABLE_EMAIL_PASSWORD=1`): the first visit offers the provider (the first person
//! becomes the administrator), no page has a password field, password sign-in, registration and
//! resets are refused, and an instance nobody could sign in to does not start.

use loquat_test_support::fake_idp::{FakeIdp, FakeUser};

use crate::helpers::{TestApp, TestOptions, cookie_client, temp_dir};
use crate::people::sso_round_trip;

#[tokio::test]
async fn an_instance_nobody_could_sign_in_to_refuses_to_start() {
    let config = loquat::Config {
        data_dir: temp_dir("sso-only"),
        auth_disable_email_password: true,
        ..loquat::Config::default()
    };
    let refused = loquat::build(&config, &|name| (name == "ENABLED_OLLAMA").then(|| "0".to_owned())).await;
    let error = refused.err().expect("refused").to_string();
    assert!(error.contains("nobody could") && error.contains("AUTH_SSO_PROVIDERS"), "{error}");
    let _ = std::fs::remove_dir_all(&config.data_dir);
}

#[tokio::test]
async fn an_sso_only_instance_has_no_passwords_anywhere() {
    let idp = FakeIdp::start().await;
    idp.set_user(FakeUser {
        subject: "sso-1".into(),
        email: Some("first@example.com".into()),
        email_verified: true,
        name: Some("First Person".into()),
    });
    let app = TestApp::spawn_with(TestOptions {
        env: crate::people::oidc_env(&idp, &[]),
        configure: |config| config.auth_disable_email_password = true,
        first_account: false,
        ..TestOptions::default()
    })
    .await;
    // The first visit offers the provider, and says the first person administers.
    let (status, first) = app.page_as(&cookie_client(), "/").await;
    assert_eq!(status, 200);
    assert!(first.contains("/api/auth/signin/generic-oidc") && first.contains("becomes its administrator"), "{first}");
    assert!(!first.contains("type=\"password\""), "no password field: {first}");
    let refused = cookie_client()
        .post(app.url("/register"))
        .form(&[("name", "Eve"), ("email", "eve@example.com"), ("password", "a long enough password")])
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 422);
    // The first sign-in makes the administrator; their pages have no password fields either.
    let browser = cookie_client();
    let callback = sso_round_trip(&app, &browser).await;
    assert_eq!(browser.get(&callback).send().await.expect("callback").status().as_u16(), 303);
    for page in ["/account", "/admin"] {
        let (status, body) = app.page_as(&browser, page).await;
        assert_eq!(status, 200, "{page}");
        assert!(!body.contains("type=\"password\""), "{page} has a password field");
    }
    let person = app.services.store().find_user_by_email("first@example.com").await.expect("read").expect("there");
    assert_eq!(person.role, loquat_core::domain::Role::Admin);
    let (_, user_page) = app.page_as(&browser, &format!("/admin/users/{}", person.id)).await;
    assert!(!user_page.contains("type=\"password\""));
    // Password sign-in and the command line's reset are refused with the reason.
    let (status, login) = app.page_as(&cookie_client(), "/login").await;
    assert_eq!(status, 200);
    assert!(!login.contains("type=\"password\"") && login.contains("/api/auth/signin/generic-oidc"), "{login}");
    let (status, _) = app.page_as(&cookie_client(), "/register").await;
    assert_eq!(status, 200, "followed to the sign-in page");
    let tried = cookie_client()
        .post(app.url("/login"))
        .form(&[("email", "first@example.com"), ("password", "a long enough password")])
        .send()
        .await
        .expect("POST");
    assert_eq!(tried.status().as_u16(), 401);
    assert!(tried.text().await.expect("page").contains("identity provider only"));
    let reset =
        app.services.admin.cli_reset_password("first@example.com", String::from("another long password").into()).await;
    assert!(matches!(reset, Err(loquat_core::CoreError::Invalid { code: "passwords_off", .. })), "{reset:?}");
    app.cleanup().await;
}

#[tokio::test]
async fn the_audit_log_is_filtered_by_person_action_and_dates_and_exported() {
    let app = TestApp::spawn().await;
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    drop(bob);
    // A failed sign-in with a formula for an email: exported as text, not as a formula.
    let tried = cookie_client()
        .post(app.url("/login"))
        .form(&[("email", "=HYPERLINK(\"http://evil\")"), ("password", "wrong password!")])
        .send()
        .await
        .expect("POST");
    assert_eq!(tried.status().as_u16(), 401);
    let (status, page) = app.page("/admin/audit?person=admin%40example.com").await;
    assert_eq!(status, 200);
    assert!(page.contains("<code>registered</code>") && !page.contains("login_failed</code>"), "{page}");
    let (_, page) = app.page("/admin/audit?person=admin%40example.com&action=login_failed").await;
    assert!(!page.contains("<code>"), "the administrator's failed sign-ins: none: {page}");
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    let csv = app
        .client
        .get(app.url(&format!("/admin/audit/export?format=csv&since={today}&until={today}")))
        .send()
        .await
        .expect("export");
    assert_eq!(csv.status().as_u16(), 200);
    assert!(csv.headers()["content-type"].to_str().expect("ascii").starts_with("text/csv"));
    let csv = csv.text().await.expect("body");
    assert!(csv.starts_with("at,actor,action,target,detail,ip\r\n"), "{csv}");
    assert!(csv.contains("login_failed") && csv.contains("\"'=hyperlink(\"\"http://evil\"\")\""), "{csv}");
    let json: serde_json::Value = app
        .client
        .get(app.url("/admin/audit/export?format=json&action=login_failed"))
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("JSON");
    assert!(json.as_array().is_some_and(|rows| !rows.is_empty() && rows.iter().all(|r| r["action"] == "login_failed")));
    // Yesterday's window holds nothing of today; an unknown person is not found; the export is
    // itself in the log; a member cannot export.
    let yesterday = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24)).strftime("%Y-%m-%d").to_string();
    let (_, page) = app.page(&format!("/admin/audit?until={yesterday}")).await;
    assert!(!page.contains("<code>"), "{page}");
    let (status, _) = app.page("/admin/audit?person=nobody%40example.com").await;
    assert_eq!(status, 404);
    let (_, page) = app.page("/admin/audit?action=audit_exported").await;
    assert!(page.contains("<code>audit_exported</code>"));
    let (member, _) = crate::hardening::member(&app, "Carol").await;
    let refused = member.get(app.url("/admin/audit/export?format=csv")).send().await.expect("GET");
    assert_eq!(refused.status().as_u16(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn directory_groups_make_administrators_at_every_sign_in() {
    let idp = FakeIdp::start().await;
    idp.set_user(FakeUser {
        subject: "ops-1".into(),
        email: Some("ops@example.com".into()),
        email_verified: true,
        name: Some("Ops".into()),
    });
    let app = TestApp::spawn_with(TestOptions {
        env: crate::people::oidc_env(
            &idp,
            &[
                ("AUTH_GENERIC_OIDC_ADMIN_GROUPS", "loquat-admins, platform".into()),
                ("AUTH_GENERIC_OIDC_GROUPS_CLAIM", "realm_access.roles".into()),
            ],
        ),
        configure: |config| config.registration = "open".into(),
        ..TestOptions::default()
    })
    .await;
    let sign_in = async || {
        let browser = cookie_client();
        let callback = sso_round_trip(&app, &browser).await;
        assert_eq!(browser.get(&callback).send().await.expect("callback").status().as_u16(), 303);
        app.services.store().find_user_by_email("ops@example.com").await.expect("read").expect("there")
    };
    idp.set_claim("realm_access", serde_json::json!({ "roles": ["staff", "platform"] }));
    assert_eq!(sign_in().await.role, loquat_core::domain::Role::Admin, "a member of an admin group");
    idp.set_claim("realm_access", serde_json::json!({ "roles": ["staff"] }));
    assert_eq!(sign_in().await.role, loquat_core::domain::Role::User, "moved out of the group");
    let (_, audit) = app.page("/admin/audit?action=role_changed").await;
    assert!(audit.contains("admin from generic-oidc groups") && audit.contains("user from generic-oidc groups"));
    // The directory never leaves the instance without an administrator.
    idp.set_claim("realm_access", serde_json::json!({ "roles": ["platform"] }));
    assert_eq!(sign_in().await.role, loquat_core::domain::Role::Admin);
    let store = app.services.store();
    assert!(store.set_user_disabled(app.admin().await, true).await.expect("disabled"), "the other administrator");
    idp.set_claim("realm_access", serde_json::json!({ "roles": [] }));
    assert_eq!(sign_in().await.role, loquat_core::domain::Role::Admin, "the last administrator is kept");
    app.cleanup().await;
}

#[tokio::test]
async fn groups_only_userinfo_gives_are_read_there() {
    let idp = FakeIdp::start().await;
    idp.set_user(FakeUser {
        subject: "ana-7".into(),
        email: Some("ana@example.com".into()),
        email_verified: true,
        name: Some("Ana".into()),
    });
    let app = TestApp::spawn_with(TestOptions {
        env: crate::people::oidc_env(&idp, &[("AUTH_GENERIC_OIDC_ADMIN_GROUPS", "loquat-admins".into())]),
        configure: |config| config.registration = "open".into(),
        ..TestOptions::default()
    })
    .await;
    let sign_in = async || {
        let browser = cookie_client();
        let callback = sso_round_trip(&app, &browser).await;
        assert_eq!(browser.get(&callback).send().await.expect("callback").status().as_u16(), 303);
        app.services.store().find_user_by_email("ana@example.com").await.expect("read").expect("there")
    };
    // The ID token has an email but no groups: userinfo's are read.
    idp.set_userinfo_claim("groups", serde_json::json!(["loquat-admins"]));
    assert_eq!(sign_in().await.role, loquat_core::domain::Role::Admin);
    // When the ID token has groups, they are the ones that count.
    idp.set_claim("groups", serde_json::json!(["staff"]));
    assert_eq!(sign_in().await.role, loquat_core::domain::Role::User);
    app.cleanup().await;
}

#[tokio::test]
async fn model_requests_are_audited_as_the_administrator_chooses_and_people_are_told() {
    use loquat_test_support::fake_openai::Reply;
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.set_default_reply(Reply::text("A title"));
    app.fake.push_reply(Reply::text("Loquats are sweet.").usage(9, 4));
    let quiet = app.send(assistant, None, "Off the record?").await;
    app.finished(quiet.answer).await;
    let (_, audit) = app.page("/admin/audit?action=model_request").await;
    assert!(!audit.contains("<code>model_request</code>"), "off by default");
    let (_, account) = app.page("/account").await;
    assert!(!account.contains("audit log."), "nothing to tell");

    assert_eq!(app.post_redirect("/admin/settings/request-audit", &[("mode", "metadata")]).await, "/admin/settings");
    app.fake.push_reply(Reply::text("They grow in China.").usage(11, 5));
    let counted = app.send(assistant, Some(quiet.topic), "Where do they grow?").await;
    app.finished(counted.answer).await;
    crate::helpers::eventually("the request in the audit log", || async {
        app.page("/admin/audit?action=model_request").await.1.contains("11 prompt + 5 completion tokens")
    })
    .await;
    let (_, audit) = app.page("/admin/audit?action=model_request").await;
    assert!(!audit.contains("Where do they grow?"), "no content without archiving");
    let (_, account) = app.page("/account").await;
    assert!(account.contains("records who asks which model"), "people are told");

    app.post_redirect("/admin/settings/request-audit", &[("mode", "content")]).await;
    app.fake.push_reply(Reply::text("In spring.").usage(13, 3));
    let archived = app.send(assistant, Some(quiet.topic), "When are they ripe?").await;
    app.finished(archived.answer).await;
    crate::helpers::eventually("the archived exchange", || async {
        let page = app.page("/admin/audit?action=model_request").await.1;
        page.contains("Q: When are they ripe?") && page.contains("A: In spring.")
    })
    .await;
    let (_, account) = app.page("/account").await;
    assert!(account.contains("archives your conversations"), "people are told");

    // Programs through the OpenAI-compatible API are archived alike, question and answer.
    let token = crate::openai_api::api_token(&app).await;
    app.fake.push_reply(Reply::text("Through the API.").usage(7, 3));
    let body =
        serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Asked by a program?"}]});
    let (status, _) = crate::openai_api::post_json(&app, &token, "/chat/completions", &body).await;
    assert_eq!(status, 200);
    crate::helpers::eventually("the archived API exchange", || async {
        let page = app.page("/admin/audit?action=model_request").await.1;
        page.contains("Q: Asked by a program?") && page.contains("A: Through the API.")
    })
    .await;
    app.cleanup().await;
}

/// Bob's models through the API, as `provider/model` ids.
async fn models_of(app: &TestApp, user: loquat_core::id::UserId) -> Vec<String> {
    let (token, _) =
        app.services.accounts.create_api_token(user, "tests", &Default::default()).await.expect("token created");
    let list: serde_json::Value = reqwest::Client::new()
        .get(app.url("/v1/models"))
        .bearer_auth(token.expose())
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    let ids = list["data"].as_array().expect("data").iter().filter_map(|m| m["id"].as_str());
    ids.filter(|id| id.starts_with("openai/")).map(str::to_owned).collect()
}

#[tokio::test]
async fn a_named_role_gives_its_members_their_own_models_and_quota() {
    let app = TestApp::spawn().await;
    let (_, bob) = crate::hardening::member(&app, "Bob").await;
    assert_eq!(
        app.post_redirect("/admin/settings/models-user", &[("models", "openai::gpt-4o-mini")]).await,
        "/admin/settings"
    );
    assert_eq!(models_of(&app, bob).await, ["openai/gpt-4o-mini"]);

    // A role named as an administrator names it, with its own models and quota.
    assert_eq!(app.post_redirect("/admin/settings/named-roles", &[("name", "Analysts")]).await, "/admin/settings");
    let refused = app.post_form("/admin/settings/named-roles", &[("name", "no spaces")]).await;
    assert_eq!(refused.status().as_u16(), 422);
    let models = [("models", "openai::o3\nopenai::gpt-4.1")];
    assert_eq!(app.post_redirect("/admin/settings/models-role:analysts", &models).await, "/admin/settings");
    let quota = [("tokens_per_day", "1234"), ("tokens_per_month", ""), ("requests_per_minute", ""), ("storage_mb", "")];
    app.post_redirect("/admin/settings/quota-role:analysts", &quota).await;
    let (_, settings) = app.page("/admin/settings").await;
    assert!(settings.contains("Role: analysts") && settings.contains("openai::o3"), "its card");
    // Settings of a role nobody defined are refused.
    assert_eq!(app.post_form("/admin/settings/models-role:ghosts", &models).await.status().as_u16(), 404);

    let (_, page) = app.page(&format!("/admin/users/{bob}")).await;
    assert!(page.contains("value=\"analysts\""), "the person's page offers it");
    assert_eq!(
        app.post_redirect(&format!("/admin/users/{bob}/named-role"), &[("named_role", "analysts")]).await,
        format!("/admin/users/{bob}")
    );
    assert_eq!(models_of(&app, bob).await, ["openai/gpt-4.1", "openai/o3"]);
    let person = app.services.store().get_user(bob).await.expect("reads").expect("Bob");
    assert_eq!(app.services.usage.effective_quota(&person).await.expect("quota").tokens_per_day, Some(1234));
    let (_, audit) = app.page("/admin/audit?action=named_role_changed").await;
    assert!(audit.contains("analysts"));

    // Deleting the role gives its members the member role's settings again.
    assert_eq!(app.post_redirect("/admin/settings/delete-role:analysts", &[]).await, "/admin/settings");
    assert_eq!(models_of(&app, bob).await, ["openai/gpt-4o-mini"]);
    assert_eq!(app.services.usage.effective_quota(&person).await.expect("quota").tokens_per_day, None);
    app.cleanup().await;
}
