//! Single sign-on for Loquat, the protocol side only (no database, no HTTP server): which
//! providers are enabled ([`providers_from_env`], LobeChat's variables), where to send the
//! browser ([`SsoClient::begin`]) and, on the callback, who signed in ([`SsoClient::complete`]).
//! The web layer stores the [`PendingLogin`] server-side between the two, uses it once, and
//! maps a [`VerifiedIdentity`] to an account.
//!
//! Flows: OpenID Connect (Auth0, Authelia, Authentik, Casdoor, Keycloak, Logto, Okta, ZITADEL,
//! Microsoft Entra ID, Google, any generic OIDC IdP) with discovery, authorization code +
//! PKCE S256, `state` and `nonce`, and a fully verified ID token; GitHub's OAuth 2 with PKCE and
//! its REST API. Callback URLs are LobeChat's, `<APP_URL>/api/auth/callback/<id>`, so IdPs
//! registered for LobeChat keep working.
//!
//! # Why hand-written rather than `openidconnect`
//!
//! `openidconnect` 4 without default features does avoid reqwest 0.12 (checked with
//! `cargo tree`), but it adds 55 crates the workspace does not otherwise build: its own
//! RustCrypto stack (`rsa` 0.9, flagged by RUSTSEC-2023-0071 — a private-key timing issue,
//! harmless for verification but noise in every audit — `p256`, `p384`, `ed25519-dalek`,
//! `hmac`) plus `oauth2`, `chrono`, `serde_with`, `rand` 0.8
//! and `thiserror` 1, and it would still need an adapter for reqwest 0.13. What Loquat needs is
//! small: one discovery GET, one form POST, and the claim checks of OIDC Core §3.1.3.7 (in
//! `jwt.rs`). Signatures are verified by `jsonwebtoken` 11 on its `aws_lc_rs` backend — the
//! crypto library rustls already uses here — which adds 4 small crates (`jsonwebtoken`,
//! `signature`, `untrusted` 0.7, `zeroize_derive`): one TLS stack and one crypto stack. Do not
//! enable jsonwebtoken's `rust_crypto` feature anywhere: with both backends it panics at first
//! use. Secrets (client secrets, codes, tokens, PKCE verifiers) never appear in logs, `Debug`
//! or error text.

mod config;
mod error;
mod github;
mod http;
mod jwt;
pub mod ldap;
mod oidc;
mod pending;

use std::fmt;
use std::time::Duration;

pub use config::{AuthConfigError, SsoKind, SsoProvider, known_env_vars, providers_from_env};
pub use error::SsoError;
pub use github::GitHubEndpoints;
pub use loquat_core::Secret;
pub use pending::{PENDING_LOGIN_TTL_MS, PendingLogin};
use serde::{Deserialize, Serialize};

use crate::pending::{constant_time_eq, now_ms};

/// Who signed in, as the IdP vouches for it. `(provider_id, subject)` is the stable key;
/// `email` may change and is trustworthy for linking only when `email_verified`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedIdentity {
    pub provider_id: String,
    /// The ID token's `sub`; GitHub's numeric user id.
    pub subject: String,
    pub email: Option<String>,
    /// From the `email_verified` claim (missing counts as false); GitHub: the primary address
    /// is verified.
    pub email_verified: bool,
    pub name: Option<String>,
    /// Whether the directory's groups make the person an administrator: `None` when the
    /// provider has no `AUTH_<IDP>_ADMIN_GROUPS` (or sends no groups: GitHub).
    #[serde(default)]
    pub admin: Option<bool>,
    /// The person's groups, when the provider sends the groups claim (they give named roles).
    #[serde(default)]
    pub groups: Option<Vec<String>>,
}

/// The groups a token's claim holds at `path` (`groups`, or dotted: `realm_access.roles`): an
/// array of strings, or one string.
pub fn claimed_groups(claims: &serde_json::Map<String, serde_json::Value>, path: &str) -> Vec<String> {
    let mut parts = path.split('.');
    let Some(first) = parts.next() else { return Vec::new() };
    let mut value = claims.get(first);
    for part in parts {
        value = value.and_then(|inner| inner.get(part));
    }
    match value {
        Some(serde_json::Value::Array(items)) => {
            items.iter().filter_map(serde_json::Value::as_str).map(str::to_owned).take(1_000).collect()
        }
        Some(serde_json::Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

/// The SSO client: the enabled providers, one HTTP client (reqwest 0.13, rustls on aws-lc-rs,
/// no redirects followed), and cached discovery documents and JWKS. Share one per process.
pub struct SsoClient {
    providers: Vec<SsoProvider>,
    callback_base: String,
    http: reqwest::Client,
    github: GitHubEndpoints,
    oidc: oidc::OidcCache,
}

impl fmt::Debug for SsoClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids: Vec<&str> = self.providers.iter().map(|provider| provider.id.as_str()).collect();
        f.debug_struct("SsoClient")
            .field("providers", &ids)
            .field("callback_base", &self.callback_base)
            .finish_non_exhaustive()
    }
}

impl SsoClient {
    /// `callback_base` is the public URL of Loquat (`APP_URL`, e.g. `https://chat.example.com`);
    /// LobeChat 1.x's `NEXTAUTH_URL` (`…/api/auth`) works too.
    pub fn new(providers: Vec<SsoProvider>, callback_base: String) -> Result<Self, AuthConfigError> {
        let base = config::checked_url("the SSO callback base URL", callback_base.trim().to_owned())?;
        let base = base.trim_end_matches('/');
        let base = base.strip_suffix("/api/auth").unwrap_or(base).to_owned();
        for (index, provider) in providers.iter().enumerate() {
            if providers[..index].iter().any(|earlier| earlier.id == provider.id) {
                return Err(AuthConfigError::DuplicateProvider {
                    variable: "the SSO provider list",
                    id: provider.id.clone(),
                });
            }
        }
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(20))
            .user_agent(concat!("Loquat/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| AuthConfigError::HttpClient(http::describe(&error)))?;
        Ok(Self { providers, callback_base: base, http, github: GitHubEndpoints::default(), oidc: Default::default() })
    }

    /// Points the GitHub flow elsewhere (GitHub Enterprise Server, a test fake).
    pub fn with_github_endpoints(mut self, endpoints: GitHubEndpoints) -> Self {
        self.github = endpoints;
        self
    }

    pub fn providers(&self) -> &[SsoProvider] {
        &self.providers
    }

    pub fn provider(&self, provider_id: &str) -> Option<&SsoProvider> {
        self.providers.iter().find(|provider| provider.id == provider_id)
    }

    /// The callback URL `<callback_base>/api/auth/callback/<id>` (LobeChat's path).
    pub fn callback_url(&self, provider_id: &str) -> String {
        format!("{}/api/auth/callback/{provider_id}", self.callback_base)
    }

    /// Starts a login: the URL to send the browser to, and what to remember until the callback
    /// (store it server-side, use it once). OIDC fetches the discovery document the first time.
    pub async fn begin(&self, provider_id: &str) -> Result<(String, PendingLogin), SsoError> {
        let provider = self.provider(provider_id).ok_or_else(|| SsoError::UnknownProvider(provider_id.to_owned()))?;
        let pending = PendingLogin::new(&provider.id);
        let redirect_uri = self.callback_url(&provider.id);
        let url = match &provider.kind {
            SsoKind::Oidc { issuer, client_id, client_secret } => {
                self.oidc_client(provider, issuer, client_id, client_secret, &redirect_uri)
                    .authorize_url(&pending)
                    .await?
            }
            SsoKind::GitHub { client_id, client_secret } => {
                self.github_client(client_id, client_secret, &redirect_uri).authorize_url(&pending)?
            }
        };
        tracing::debug!(provider = %provider.id, "SSO login started");
        Ok((url, pending))
    }

    /// Completes a callback: `state` must be the pending login's, the login at most 10 minutes
    /// old; then the code is exchanged (with the PKCE verifier) and the identity verified. The
    /// caller must also check that the callback's provider is `pending.provider_id`.
    pub async fn complete(
        &self,
        pending: &PendingLogin,
        code: &str,
        state: &str,
    ) -> Result<VerifiedIdentity, SsoError> {
        let provider = self
            .provider(&pending.provider_id)
            .ok_or_else(|| SsoError::UnknownProvider(pending.provider_id.clone()))?;
        if !constant_time_eq(state, &pending.state) {
            return Err(SsoError::StateMismatch);
        }
        if pending.is_expired_at(now_ms()) {
            return Err(SsoError::Expired);
        }
        if code.is_empty() {
            return Err(SsoError::TokenExchange("the callback carried no code".to_owned()));
        }
        let redirect_uri = self.callback_url(&provider.id);
        let identity = match &provider.kind {
            SsoKind::Oidc { issuer, client_id, client_secret } => {
                let claims = self
                    .oidc_client(provider, issuer, client_id, client_secret, &redirect_uri)
                    .complete(
                        pending,
                        code,
                        (!provider.admin_groups.is_empty()).then_some(provider.groups_claim.as_str()),
                    )
                    .await?;
                let top = provider.groups_claim.split('.').next().unwrap_or_default();
                let groups =
                    claims.other.contains_key(top).then(|| claimed_groups(&claims.other, &provider.groups_claim));
                let admin = (!provider.admin_groups.is_empty())
                    .then(|| groups.iter().flatten().any(|group| provider.admin_groups.contains(group)));
                VerifiedIdentity {
                    provider_id: provider.id.clone(),
                    subject: claims.subject,
                    email: claims.email,
                    email_verified: claims.email_verified,
                    name: claims.name,
                    admin,
                    groups,
                }
            }
            SsoKind::GitHub { client_id, client_secret } => {
                let user = self.github_client(client_id, client_secret, &redirect_uri).complete(pending, code).await?;
                VerifiedIdentity {
                    provider_id: provider.id.clone(),
                    subject: user.subject,
                    email: user.email,
                    email_verified: user.email_verified,
                    name: user.name,
                    admin: None,
                    groups: None,
                }
            }
        };
        tracing::debug!(provider = %provider.id, "SSO login verified");
        Ok(identity)
    }

    fn oidc_client<'a>(
        &'a self,
        provider: &'a SsoProvider,
        issuer: &'a str,
        client_id: &'a str,
        client_secret: &'a Secret,
        redirect_uri: &'a str,
    ) -> oidc::Client<'a> {
        oidc::Client {
            http: &self.http,
            cache: &self.oidc,
            provider_id: &provider.id,
            issuer,
            client_id,
            client_secret,
            redirect_uri,
        }
    }

    fn github_client<'a>(
        &'a self,
        client_id: &'a str,
        client_secret: &'a Secret,
        redirect_uri: &'a str,
    ) -> github::Client<'a> {
        github::Client { http: &self.http, endpoints: &self.github, client_id, client_secret, redirect_uri }
    }
}
