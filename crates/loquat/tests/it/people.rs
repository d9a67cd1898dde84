//! People: registration modes and invitations, sign-in and throttling, sessions that end when
//! an admin disables someone, the access code, API tokens, quotas and usage, the audit log, and
//! single sign-on against a fake OpenID Connect provider.

use loquat_core::domain::{Quota, QuotaScope, Role};
use loquat_test_support::fake_idp::{FakeIdp, FakeUser};
use loquat_test_support::fake_openai::Reply;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, TestOptions, cookie_client};

#[tokio::test]
async fn the_first_account_is_admin_and_then_registration_needs_an_invite() {
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    // A fresh instance sends everybody to create the admin account.
    let anonymous = cookie_client();
    let response = anonymous.get(app.url("/")).header("accept", "text/html").send().await.expect("home");
    assert_eq!(response.headers()["location"], "/login?next=/");
    let (_, page) = app.page_as(&anonymous, "/login").await;
    assert!(page.contains("Create the administrator account"));
    app.sign_up(&app.client, "Ada", ADMIN_EMAIL, ADMIN_PASSWORD, "").await;
    let admin = app.services.accounts.user(app.admin().await).await.expect("the first account exists");
    assert_eq!((admin.role, admin.email.as_deref()), (Role::Admin, Some(ADMIN_EMAIL)));

    // Invite-only by default: registering without an invite is refused.
    let stranger = cookie_client();
    let (_, page) = app.page_as(&stranger, "/register").await;
    assert!(page.contains("needs an invite link"));
    let refused = stranger
        .post(app.url("/register"))
        .form(&[("name", "Eve"), ("email", "eve@example.com"), ("password", "long enough pw")])
        .send()
        .await
        .expect("register");
    assert_eq!(refused.status().as_u16(), 422);

    // An invite link works once.
    let (_, invites) = app.page("/admin/invites").await;
    assert!(invites.contains("Create an invitation link"));
    let created = app.client.post(app.url("/admin/invites")).form(&[("role", "user"), ("days", "7")]).send().await;
    let body = created.expect("invite").text().await.expect("body");
    let code = body.split("invite=").nth(1).expect("a link").split('<').next().expect("code").to_owned();
    let bob = cookie_client();
    app.sign_up(&bob, "Bob", "bob@example.com", "bobs long password", &code).await;
    let (_, home) = app.page_as(&bob, "/").await;
    assert!(home.contains("Bob"), "bob is signed in");
    assert!(!home.contains("href=\"/admin\""), "a member sees no admin link");
    let again = cookie_client()
        .post(app.url("/register"))
        .form(&[("name", "Carl"), ("email", "carl@example.com"), ("password", "long enough pw"), ("invite", &code)])
        .send()
        .await
        .expect("register");
    assert_eq!(again.status().as_u16(), 422, "an invite works once");
    app.cleanup().await;
}

#[tokio::test]
async fn sign_in_is_throttled_and_a_disabled_user_is_signed_out() {
    let app = TestApp::spawn().await;
    let bob = cookie_client();
    app.services
        .admin
        .admin_create_user(
            app.admin().await,
            "Bob",
            "bob@example.com",
            loquat_core::Secret::new("bobs long password"),
            Role::User,
            &Default::default(),
        )
        .await
        .expect("created");
    assert_eq!(app.sign_in(&bob, "bob@example.com", "wrong password").await, 401);
    assert_eq!(app.sign_in(&bob, "bob@example.com", "bobs long password").await, 303);
    assert_eq!(app.page_as(&bob, "/account").await.0, 200);

    // The admin disables bob: his session stops working at once.
    let bob_id = app.services.admin.admin_list_users(app.admin().await, "bob", 0).await.expect("users")[0].id;
    app.post_redirect(&format!("/admin/users/{bob_id}/disable"), &[]).await;
    let response = bob.get(app.url("/account")).header("accept", "text/html").send().await.expect("page");
    assert_eq!(response.status().as_u16(), 303, "sent to sign in");
    assert_eq!(app.sign_in(&bob, "bob@example.com", "bobs long password").await, 401);

    // Ten wrong passwords for one account, then even the right one is throttled.
    let attacker = cookie_client();
    let mut statuses = Vec::new();
    for _ in 0..11 {
        statuses.push(app.sign_in(&attacker, ADMIN_EMAIL, "guess").await);
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    assert_eq!(app.sign_in(&attacker, ADMIN_EMAIL, ADMIN_PASSWORD).await, 429);
    // The audit log saw it.
    let events = app
        .services
        .admin
        .admin_audit(app.admin().await, &crate::helpers::action_filter("login_failed"), 0)
        .await
        .expect("audit");
    assert!(events.len() >= 10);
    let (_, audit) = app.page("/admin/audit?action=user_disabled").await;
    assert!(audit.contains("user_disabled"));
    app.cleanup().await;
}

#[tokio::test]
async fn the_access_code_guards_every_page() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.access_code = Some(loquat_core::Secret::new("open sesame, other code")),
        first_account: false,
        ..TestOptions::default()
    })
    .await;
    let visitor = cookie_client();
    let response = visitor.get(app.url("/login")).header("accept", "text/html").send().await.expect("page");
    assert_eq!(response.headers()["location"], "/access?next=/login");
    let api = visitor.post(app.url("/register")).form(&[("name", "x")]).send().await.expect("post");
    assert_eq!(api.status().as_u16(), 401);
    let wrong = visitor.post(app.url("/access")).form(&[("code", "nope"), ("next", "/")]).send().await.expect("post");
    assert_eq!(wrong.status().as_u16(), 401);
    let right = visitor.post(app.url("/access")).form(&[("code", "other code"), ("next", "/")]).send().await;
    assert_eq!(right.expect("post").status().as_u16(), 303);
    let (status, page) = app.page_as(&visitor, "/login").await;
    assert_eq!(status, 200);
    assert!(page.contains("Create the administrator account"));
    app.cleanup().await;
}

#[tokio::test]
async fn api_tokens_are_shown_once_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    let response = app.post_form("/account/tokens", &[("name", "My script")]).await;
    let page = response.text().await.expect("body");
    let token = page.split("data-copy-value>").nth(1).expect("shown once").split('<').next().expect("token");
    assert!(token.starts_with("lq_"));
    let (_, account) = app.page("/account").await;
    assert!(!account.contains(token), "never shown again");
    // The token authenticates an API request on its own (no cookie).
    let with_token =
        reqwest::Client::new().get(app.url("/v1/models")).bearer_auth(token).send().await.expect("request");
    assert_eq!(with_token.status().as_u16(), 200);
    let id = app.services.accounts.api_tokens(app.admin().await).await.expect("tokens")[0].id.clone();
    app.post_redirect(&format!("/account/tokens/{id}/revoke"), &[]).await;
    let revoked = reqwest::Client::new().get(app.url("/v1/models")).bearer_auth(token).send().await.expect("request");
    assert_eq!(revoked.status().as_u16(), 401);
    app.cleanup().await;
}

#[tokio::test]
async fn usage_is_recorded_and_quotas_are_enforced() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Counted answer").usage(30, 12));
    app.fake.push_reply(Reply::text("Title"));
    let sent = app.send(assistant, None, "Count me").await;
    app.finished(sent.answer).await;
    app.titled(sent.topic).await;
    let (today, _) = app.services.usage.usage_so_far(app.admin().await).await.expect("usage");
    assert_eq!(today, 42);
    let (_, usage) = app.page("/admin/usage?group=model").await;
    assert!(usage.contains("openai · gpt-4.1") && usage.contains("<svg class=\"chart\""));
    let (_, account) = app.page("/account").await;
    assert!(account.contains("<strong>42</strong>"));

    // A daily quota of 40 tokens is used up: the next message is refused plainly.
    let quota = Quota { tokens_per_day: Some(40), ..Quota::default() };
    app.services
        .admin
        .admin_set_quota(app.admin().await, QuotaScope::Role(Role::Admin), quota, &Default::default())
        .await
        .expect("set");
    let refused = app
        .client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", "More"), ("topic_id", &sent.topic.to_string())])
        .send()
        .await
        .expect("send");
    assert_eq!(refused.status().as_u16(), 429);
    let body: serde_json::Value = refused.json().await.expect("json");
    assert!(body["error"]["message"].as_str().expect("message").contains("today's token quota"));
    // The admin raises the limit for this user: allowed again.
    app.post_redirect(&format!("/admin/users/{}/quota", app.admin().await), &[("tokens_per_day", "100000")]).await;
    let sent = app.send(assistant, Some(sent.topic), "More").await;
    app.finished(sent.answer).await;
    app.cleanup().await;
}

#[tokio::test]
async fn single_sign_on_signs_in_links_and_refuses_bad_tokens() {
    let idp = FakeIdp::start().await;
    idp.set_user(FakeUser {
        subject: "sso-42".into(),
        email: Some(ADMIN_EMAIL.into()),
        email_verified: true,
        name: Some("Ada via SSO".into()),
    });
    let app =
        TestApp::spawn_with(TestOptions { env: crate::people::oidc_env(&idp, &[]), ..TestOptions::default() }).await;
    let (_, login) = app.page_as(&cookie_client(), "/login").await;
    assert!(login.contains("/api/auth/signin/generic-oidc"), "a button per provider");

    // The round trip: Loquat → IdP → Loquat's LobeChat-style callback → signed in.
    let browser = cookie_client();
    let callback = sso_round_trip(&app, &browser).await;
    let done = browser.get(&callback).send().await.expect("callback");
    assert_eq!(done.status().as_u16(), 303, "{}", done.text().await.unwrap_or_default());
    let (_, account) = app.page_as(&browser, "/account").await;
    assert!(account.contains(ADMIN_EMAIL), "linked to the existing account by verified email");
    // Replaying the callback (same state) fails.
    let replay = cookie_client().get(&callback).send().await.expect("replay");
    assert_eq!(replay.status().as_u16(), 400);

    // Bad ID tokens are refused.
    for spoil in [FakeIdp::next_token_tampered, FakeIdp::next_token_wrong_audience, FakeIdp::next_token_expired] {
        spoil(&idp);
        let browser = cookie_client();
        let callback = sso_round_trip(&app, &browser).await;
        let refused = browser.get(&callback).send().await.expect("callback");
        assert_eq!(refused.status().as_u16(), 400);
        assert!(!app.page_as(&browser, "/account").await.1.contains(ADMIN_EMAIL));
    }
    app.cleanup().await;
}

/// Starts a sign-in and lets the fake IdP approve it; returns the callback URL.
pub(crate) async fn sso_round_trip(app: &TestApp, browser: &reqwest::Client) -> String {
    let start = browser.get(app.url("/api/auth/signin/generic-oidc")).send().await.expect("sign in");
    assert_eq!(start.status().as_u16(), 303);
    let authorize = start.headers()["location"].to_str().expect("ascii").to_owned();
    let approved = browser.get(&authorize).send().await.expect("authorize");
    assert!(approved.status().is_redirection());
    let callback = approved.headers()["location"].to_str().expect("ascii").to_owned();
    assert!(callback.starts_with(&app.url("/api/auth/callback/generic-oidc")), "{callback}");
    callback
}

/// The environment of the fake IdP as the `generic-oidc` provider, plus `extra`.
pub(crate) fn oidc_env(idp: &FakeIdp, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AUTH_SSO_PROVIDERS", "generic-oidc".into()),
        ("AUTH_GENERIC_OIDC_ID", idp.client_id().into()),
        ("AUTH_GENERIC_OIDC_SECRET", idp.client_secret().into()),
        ("AUTH_GENERIC_OIDC_ISSUER", idp.issuer()),
    ];
    env.extend_from_slice(extra);
    env
}
