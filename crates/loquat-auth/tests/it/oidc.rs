//! OIDC logins that succeed: the whole flow, what goes over the wire, caching, client
//! authentication, userinfo, key rotation.

use loquat_auth::{SsoClient, VerifiedIdentity};
use loquat_test_support::fake_idp::{ClientAuth, FakeIdp, FakeUser};

use crate::{APP_URL, begin_and_follow, client, login, oidc_provider, query};

#[tokio::test]
async fn a_full_login_returns_the_verified_identity() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    let (url, pending) = client.begin("keycloak").await.expect("begins");

    // The authorize URL asks for a code with PKCE S256, state and nonce, back to LobeChat's path.
    assert!(url.starts_with(&format!("{}/authorize?", fake.issuer())), "{url}");
    let params = query(&url);
    assert_eq!(params["response_type"], "code");
    assert_eq!(params["client_id"], fake.client_id());
    assert_eq!(params["redirect_uri"], format!("{APP_URL}/api/auth/callback/keycloak"));
    assert_eq!(params["scope"], "openid email profile");
    assert_eq!(params["code_challenge_method"], "S256");
    assert_eq!(params["state"], pending.state);
    assert_eq!(params["nonce"], pending.nonce);
    assert!(params["code_challenge"].len() == 43 && pending.state.len() >= 22 && pending.nonce.len() >= 22);
    assert!(!url.contains(pending.pkce_verifier.expose()), "the verifier never leaves the server");
    assert_eq!(pending.provider_id, "keycloak");

    let callback = crate::follow(&url).await;
    assert_eq!(callback.url.path(), "/api/auth/callback/keycloak");
    let identity = client.complete(&pending, &callback.code, &callback.state).await.expect("verified");
    assert_eq!(
        identity,
        VerifiedIdentity {
            provider_id: "keycloak".into(),
            subject: "1001".into(),
            email: Some("ada@example.com".into()),
            email_verified: true,
            name: Some("Ada Lovelace".into()),
            admin: None,
            groups: None,
        }
    );

    // The code went to the token endpoint with HTTP Basic and the PKCE verifier.
    let requests = fake.token_requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].client_auth, ClientAuth::Basic);
    assert_eq!(requests[0].code, callback.code);
    assert_eq!(requests[0].code_verifier.as_deref(), Some(pending.pkce_verifier.expose()));
    assert_eq!(requests[0].redirect_uri.as_deref(), Some(client.callback_url("keycloak").as_str()));
    assert_eq!(requests[0].error, None);
}

#[tokio::test]
async fn discovery_and_keys_are_fetched_once_for_many_logins() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    for subject in ["1", "2", "3"] {
        fake.set_user(FakeUser { subject: subject.into(), ..FakeUser::default() });
        assert_eq!(login(&client, "keycloak").await.expect("verified").subject, subject);
    }
    assert_eq!((fake.discovery_requests(), fake.jwks_requests()), (1, 1));
}

#[tokio::test]
async fn a_rotated_signing_key_is_fetched_once_when_a_token_names_it() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    login(&client, "keycloak").await.expect("first login");
    fake.rotate_signing_key();
    login(&client, "keycloak").await.expect("the new key is fetched and verifies");
    login(&client, "keycloak").await.expect("and is cached");
    assert_eq!(fake.jwks_requests(), 2);
}

#[tokio::test]
async fn an_issuer_with_a_trailing_slash_and_a_nextauth_url_base_work() {
    let fake = FakeIdp::start().await;
    let mut provider = oidc_provider(&fake, "generic-oidc");
    if let loquat_auth::SsoKind::Oidc { issuer, .. } = &mut provider.kind {
        issuer.push('/');
    }
    let client = SsoClient::new(vec![provider], format!("{APP_URL}/api/auth/")).expect("builds");
    assert_eq!(client.callback_url("generic-oidc"), format!("{APP_URL}/api/auth/callback/generic-oidc"));
    assert_eq!(login(&client, "generic-oidc").await.expect("verified").provider_id, "generic-oidc");
}

#[tokio::test]
async fn client_secret_post_is_used_when_it_is_all_the_idp_announces() {
    let fake = FakeIdp::start().await;
    fake.set_token_auth_methods(&["client_secret_post"]);
    let client = client(&fake);
    login(&client, "keycloak").await.expect("verified");
    assert_eq!(fake.token_requests()[0].client_auth, ClientAuth::Post);
}

#[tokio::test]
async fn the_email_comes_from_userinfo_when_the_id_token_has_none() {
    let fake = FakeIdp::start().await;
    fake.set_email_in_id_token(false);
    fake.set_user(FakeUser { email: Some("grace@example.com".into()), email_verified: false, ..FakeUser::default() });
    let identity = login(&client(&fake), "keycloak").await.expect("verified");
    assert_eq!(identity.email.as_deref(), Some("grace@example.com"));
    assert!(!identity.email_verified);
}

#[tokio::test]
async fn an_unverified_or_missing_email_is_reported_as_such() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    fake.set_user(FakeUser { email_verified: false, ..FakeUser::default() });
    let identity = login(&client, "keycloak").await.expect("verified");
    assert_eq!((identity.email.as_deref(), identity.email_verified), (Some("ada@example.com"), false));

    fake.set_user(FakeUser { email: None, name: None, ..FakeUser::default() });
    let identity = login(&client, "keycloak").await.expect("verified");
    assert_eq!((identity.email, identity.email_verified, identity.name), (None, false, None));
}

#[tokio::test]
async fn a_pending_login_survives_serialization() {
    let fake = FakeIdp::start().await;
    let client = client(&fake);
    let (pending, callback) = begin_and_follow(&client, "keycloak").await;
    let stored = serde_json::to_string(&pending).expect("serializes");
    let restored = serde_json::from_str(&stored).expect("deserializes");
    client.complete(&restored, &callback.code, &callback.state).await.expect("verified");
}
