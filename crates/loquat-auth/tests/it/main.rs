//! loquat-auth's single integration-test binary: whole SSO logins against the fake identity
//! provider of loquat-test-support (OIDC and GitHub faces), the happy paths and each way a
//! login must fail. Nothing here reaches the internet.

mod failures;
mod github;
mod oidc;

use loquat_auth::{GitHubEndpoints, PendingLogin, Secret, SsoClient, SsoError, SsoKind, SsoProvider, VerifiedIdentity};
use loquat_test_support::fake_idp::FakeIdp;
use reqwest::header::LOCATION;

/// Where Loquat would run; the fake redirects the "browser" there, and tests read the redirect.
pub const APP_URL: &str = "http://127.0.0.1:3210";

pub fn oidc_provider(fake: &FakeIdp, id: &str) -> SsoProvider {
    SsoProvider {
        id: id.to_owned(),
        name: "Fake OIDC".to_owned(),
        kind: SsoKind::Oidc {
            issuer: fake.issuer(),
            client_id: fake.client_id().to_owned(),
            client_secret: Secret::new(fake.client_secret()),
        },
        admin_groups: Vec::new(),
        groups_claim: "groups".to_owned(),
    }
}

pub fn github_provider(fake: &FakeIdp) -> SsoProvider {
    SsoProvider {
        id: "github".to_owned(),
        name: "GitHub".to_owned(),
        kind: SsoKind::GitHub {
            client_id: fake.client_id().to_owned(),
            client_secret: Secret::new(fake.client_secret()),
        },
        admin_groups: Vec::new(),
        groups_claim: "groups".to_owned(),
    }
}

/// A client with the fake as `keycloak` (OIDC) and as GitHub.
pub fn client(fake: &FakeIdp) -> SsoClient {
    SsoClient::new(vec![oidc_provider(fake, "keycloak"), github_provider(fake)], APP_URL.to_owned())
        .expect("the client builds")
        .with_github_endpoints(GitHubEndpoints::new(&fake.base_url(), &fake.base_url()))
}

/// What the IdP sent back to the callback.
#[derive(Debug)]
pub struct Callback {
    pub url: reqwest::Url,
    pub code: String,
    pub state: String,
}

/// Plays the browser: opens the authorize URL and reads the redirect (not followed).
pub async fn follow(authorize_url: &str) -> Callback {
    let browser =
        reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).no_proxy().build().expect("a browser");
    let response = browser.get(authorize_url).send().await.expect("the IdP answers");
    assert_eq!(response.status(), 302, "the IdP redirects back");
    let location = response.headers().get(LOCATION).expect("a Location").to_str().expect("ASCII");
    let url = reqwest::Url::parse(location).expect("an absolute URL");
    let param = |name: &str| url.query_pairs().find(|(key, _)| key == name).map(|(_, value)| value.into_owned());
    let code = param("code").expect("a code");
    let state = param("state").expect("the state comes back");
    Callback { url, code, state }
}

/// begin → the IdP → complete, as the web layer will do it.
pub async fn login(client: &SsoClient, provider_id: &str) -> Result<VerifiedIdentity, SsoError> {
    let (url, pending) = client.begin(provider_id).await?;
    let callback = follow(&url).await;
    client.complete(&pending, &callback.code, &callback.state).await
}

/// A started login and where the IdP sent the browser back.
pub async fn begin_and_follow(client: &SsoClient, provider_id: &str) -> (PendingLogin, Callback) {
    let (url, pending) = client.begin(provider_id).await.expect("the login begins");
    (pending, follow(&url).await)
}

/// The query parameters of a URL, for asserting on authorize URLs.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    reqwest::Url::parse(url).expect("a URL").query_pairs().into_owned().collect()
}
