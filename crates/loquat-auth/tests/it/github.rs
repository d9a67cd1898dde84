//! GitHub logins against the fake's GitHub face: OAuth with PKCE, then `/user` and
//! `/user/emails`.

use loquat_test_support::fake_idp::{ClientAuth, FakeIdp, FakeUser};

use crate::{APP_URL, begin_and_follow, client, login, query};

#[tokio::test]
async fn a_github_login_returns_the_numeric_id_and_the_primary_verified_email() {
    let fake = FakeIdp::start().await;
    fake.set_user(FakeUser { subject: "9919".into(), ..FakeUser::default() });
    let client = client(&fake);
    let (url, pending) = client.begin("github").await.expect("begins");
    assert!(url.starts_with(&format!("{}/login/oauth/authorize?", fake.base_url())), "{url}");
    let params = query(&url);
    assert_eq!(params["scope"], "read:user user:email");
    assert_eq!(params["redirect_uri"], format!("{APP_URL}/api/auth/callback/github"));
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["state"], pending.state);

    let callback = crate::follow(&url).await;
    let identity = client.complete(&pending, &callback.code, &callback.state).await.expect("verified");
    assert_eq!(identity.provider_id, "github");
    assert_eq!(identity.subject, "9919");
    assert_eq!(identity.email.as_deref(), Some("ada@example.com"));
    assert!(identity.email_verified);
    assert_eq!(identity.name.as_deref(), Some("Ada Lovelace"));

    let requests = fake.token_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!((requests[0].flow, requests[0].client_auth), ("github", ClientAuth::Post));
    assert_eq!(requests[0].code_verifier.as_deref(), Some(pending.pkce_verifier.expose()));
}

#[tokio::test]
async fn an_unverified_primary_email_is_not_vouched_for_and_the_login_is_the_fallback_name() {
    let fake = FakeIdp::start().await;
    fake.set_user(FakeUser { email_verified: false, name: None, ..FakeUser::default() });
    let identity = login(&client(&fake), "github").await.expect("verified");
    assert_eq!((identity.email.as_deref(), identity.email_verified), (Some("ada@example.com"), false));
    assert_eq!(identity.name.as_deref(), Some("ada"));
}

#[tokio::test]
async fn a_github_code_cannot_be_used_twice() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    let (pending, callback) = begin_and_follow(&client, "github").await;
    client.complete(&pending, &callback.code, &callback.state).await.expect("first use");
    let error = client.complete(&pending, &callback.code, &callback.state).await.expect_err("second use");
    assert!(matches!(&error, loquat_auth::SsoError::TokenExchange(text) if text.contains("bad_verification_code")));
    assert!(!error.to_string().contains(&callback.code));
}

#[tokio::test]
async fn a_forged_github_state_is_refused_before_any_exchange() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    let (pending, callback) = begin_and_follow(&client, "github").await;
    let error = client.complete(&pending, &callback.code, "forged").await.expect_err("forged");
    assert_eq!(error, loquat_auth::SsoError::StateMismatch);
    assert!(fake.token_requests().is_empty());
}
