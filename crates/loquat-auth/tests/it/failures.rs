//! Every way an OIDC login must fail, and that no failure prints a secret.

use loquat_auth::{PENDING_LOGIN_TTL_MS, SsoClient, SsoError};
use loquat_test_support::fake_idp::FakeIdp;

use crate::{APP_URL, begin_and_follow, client, login, oidc_provider};

fn invalid_token_mentioning(result: Result<loquat_auth::VerifiedIdentity, SsoError>, words: &str) -> SsoError {
    match result {
        Err(SsoError::InvalidToken(text)) if text.contains(words) => SsoError::InvalidToken(text),
        other => panic!("expected InvalidToken mentioning `{words}`, got {other:?}"),
    }
}

#[tokio::test]
async fn each_bad_id_token_is_rejected_for_its_own_reason() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);

    fake.next_token_tampered();
    invalid_token_mentioning(login(&client, "keycloak").await, "signature");
    fake.next_token_wrong_audience();
    invalid_token_mentioning(login(&client, "keycloak").await, "audience");
    fake.next_token_expired();
    invalid_token_mentioning(login(&client, "keycloak").await, "expired");
    fake.next_token_wrong_nonce();
    invalid_token_mentioning(login(&client, "keycloak").await, "nonce");

    // Each knob spoils one token only.
    login(&client, "keycloak").await.expect("a good token again");
}

#[tokio::test]
async fn a_forged_or_replayed_state_is_refused_before_the_code_is_spent() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    let (pending, callback) = begin_and_follow(&client, "keycloak").await;

    let forged = client.complete(&pending, &callback.code, "attacker-chosen").await;
    assert_eq!(forged, Err(SsoError::StateMismatch));
    // The state of another login (e.g. an attacker's own) does not fit this one either.
    let (_, other) = begin_and_follow(&client, "keycloak").await;
    assert_eq!(client.complete(&pending, &callback.code, &other.state).await, Err(SsoError::StateMismatch));
    assert!(fake.token_requests().is_empty(), "nothing was exchanged");

    client.complete(&pending, &callback.code, &callback.state).await.expect("the real callback still works");
}

#[tokio::test]
async fn a_code_used_twice_is_refused_by_the_idp() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    let (pending, callback) = begin_and_follow(&client, "keycloak").await;
    client.complete(&pending, &callback.code, &callback.state).await.expect("first use");
    let error = client.complete(&pending, &callback.code, &callback.state).await.expect_err("second use");
    assert!(matches!(&error, SsoError::TokenExchange(text) if text.contains("invalid_grant")), "{error:?}");
    let requests = fake.token_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!((requests[0].error.as_deref(), requests[1].error.as_deref()), (None, Some("invalid_grant")));
}

#[tokio::test]
async fn a_wrong_client_secret_fails_the_exchange_without_showing_it() {
    let fake = FakeIdp::start().await;
    let mut provider = oidc_provider(&fake, "keycloak");
    if let loquat_auth::SsoKind::Oidc { client_secret, .. } = &mut provider.kind {
        *client_secret = loquat_auth::Secret::new("wrong-secret-4411");
    }
    let client = SsoClient::new(vec![provider], APP_URL.to_owned()).expect("builds");
    let (pending, callback) = begin_and_follow(&client, "keycloak").await;
    let error = client.complete(&pending, &callback.code, &callback.state).await.expect_err("refused");
    assert!(matches!(&error, SsoError::TokenExchange(text) if text.contains("invalid_client")), "{error:?}");
    for secret in ["wrong-secret-4411", callback.code.as_str(), pending.pkce_verifier.expose()] {
        assert!(!format!("{error} {error:?} {client:?} {pending:?}").contains(secret));
    }
}

#[tokio::test]
async fn unknown_providers_are_refused() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    assert_eq!(client.begin("clerk").await.map(|_| ()), Err(SsoError::UnknownProvider("clerk".into())));

    let (mut pending, callback) = begin_and_follow(&client, "keycloak").await;
    pending.provider_id = "nope".into();
    let error = client.complete(&pending, &callback.code, &callback.state).await.expect_err("unknown");
    assert_eq!(error, SsoError::UnknownProvider("nope".into()));
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let fake = FakeIdp::start().await;
    fake.set_discovery_issuer(Some("https://evil.example.com/oidc".into()));
    let client = client(&fake);
    let error = client.begin("keycloak").await.expect_err("wrong issuer");
    assert!(matches!(&error, SsoError::Discovery(text) if text.contains("evil.example.com")), "{error:?}");

    // Nothing wrong was cached: once the document is right, logins work.
    fake.set_discovery_issuer(None);
    login(&client, "keycloak").await.expect("verified");
}

#[tokio::test]
async fn an_unreachable_idp_is_a_discovery_error() {
    let fake = FakeIdp::start().await;
    let provider = oidc_provider(&fake, "keycloak");
    drop(fake);
    let client = SsoClient::new(vec![provider], APP_URL.to_owned()).expect("builds");
    let error = client.begin("keycloak").await.expect_err("nobody listens");
    assert!(matches!(&error, SsoError::Discovery(_)), "{error:?}");
}

#[tokio::test]
async fn a_login_older_than_ten_minutes_is_expired() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    let (mut pending, callback) = begin_and_follow(&client, "keycloak").await;
    pending.created_at_ms -= PENDING_LOGIN_TTL_MS + 1_000;
    assert_eq!(client.complete(&pending, &callback.code, &callback.state).await, Err(SsoError::Expired));
    assert!(fake.token_requests().is_empty());
}

#[tokio::test]
async fn the_callback_base_must_be_a_url_and_provider_ids_unique() {
    for base in ["chat.example.com", "ftp://chat.example.com", ""] {
        assert!(SsoClient::new(Vec::new(), base.to_owned()).is_err(), "{base}");
    }
    let fake = FakeIdp::start().await;
    let twice = vec![oidc_provider(&fake, "okta"), oidc_provider(&fake, "okta")];
    let error = SsoClient::new(twice, APP_URL.to_owned()).expect_err("the same id twice");
    assert!(matches!(error, loquat_auth::AuthConfigError::DuplicateProvider { .. }));
}
