//! OpenID Connect, authorization code flow with PKCE: discovery (cached per provider, with its
//! JWKS, refreshed once when a token names an unknown key), the authorize URL, the code
//! exchange (`client_secret_basic` or `client_secret_post`, as the IdP announces), the ID token
//! checks of [`crate::jwt`], and userinfo when the ID token carries no email.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::Jwk;
use loquat_core::Secret;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use serde_json::Value;

use crate::error::SsoError;
use crate::http::{self, form_encode, oauth_error_code};
use crate::jwt::{self, Expected, IdClaims, Rejection};
use crate::pending::{PendingLogin, now_ms};

/// How long a discovery document (and the JWKS fetched with it) is trusted before re-reading.
const DISCOVERY_TTL: Duration = Duration::from_secs(60 * 60);

/// The parts of the discovery document Loquat uses (OpenID Connect Discovery 1.0 §3).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Discovery {
    pub issuer: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub jwks_uri: String,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub id_token_signing_alg_values_supported: Option<Vec<String>>,
}

/// One provider's cached discovery document and keys.
struct Metadata {
    issuer: String,
    discovery: Discovery,
    fetched_at: Instant,
    keys: Mutex<Option<Arc<Vec<Jwk>>>>,
}

/// Discovery documents and JWKS by provider id.
#[derive(Default)]
pub(crate) struct OidcCache {
    providers: Mutex<HashMap<String, Arc<Metadata>>>,
}

/// One OIDC provider's settings, borrowed from its [`crate::SsoProvider`].
pub(crate) struct Client<'a> {
    pub http: &'a reqwest::Client,
    pub cache: &'a OidcCache,
    pub provider_id: &'a str,
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a Secret,
    pub redirect_uri: &'a str,
}

impl Client<'_> {
    /// The IdP's authorize URL for this login (scopes `openid email profile`, PKCE S256).
    pub(crate) async fn authorize_url(&self, pending: &PendingLogin) -> Result<String, SsoError> {
        let metadata = self.metadata().await?;
        let mut url = reqwest::Url::parse(&metadata.discovery.authorization_endpoint)
            .map_err(|_| SsoError::Discovery("the authorization_endpoint is not a URL".to_owned()))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.client_id)
            .append_pair("redirect_uri", self.redirect_uri)
            .append_pair("scope", "openid email profile")
            .append_pair("state", &pending.state)
            .append_pair("nonce", &pending.nonce)
            .append_pair("code_challenge", &pending.pkce_challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    /// Exchanges `code`, verifies the ID token and, when it has no email or lacks the claim
    /// `groups_claim` (a dotted path) roles are read from, asks userinfo.
    pub(crate) async fn complete(
        &self,
        pending: &PendingLogin,
        code: &str,
        groups_claim: Option<&str>,
    ) -> Result<IdClaims, SsoError> {
        let metadata = self.metadata().await?;
        let tokens = self.exchange(&metadata.discovery, pending, code).await?;
        let id_token = tokens.id_token.ok_or_else(|| {
            SsoError::TokenExchange("the answer has no id_token (is the `openid` scope allowed?)".to_owned())
        })?;
        let mut claims = self.verify(&metadata, &id_token, &pending.nonce).await?;
        let groups_key = groups_claim.and_then(|path| path.split('.').next()).filter(|key| !key.is_empty());
        let lacks_groups = groups_key.is_some_and(|key| !claims.other.contains_key(key));
        if (claims.email.is_none() || lacks_groups)
            && let (Some(endpoint), Some(access_token)) = (&metadata.discovery.userinfo_endpoint, &tokens.access_token)
        {
            self.merge_userinfo(endpoint, access_token, &mut claims, groups_key).await?;
        }
        Ok(claims)
    }

    async fn metadata(&self) -> Result<Arc<Metadata>, SsoError> {
        let cached = lock(&self.cache.providers).get(self.provider_id).cloned();
        if let Some(metadata) = cached
            && metadata.issuer == self.issuer
            && metadata.fetched_at.elapsed() < DISCOVERY_TTL
        {
            return Ok(metadata);
        }
        let discovery = self.discover().await?;
        let metadata = Arc::new(Metadata {
            issuer: self.issuer.to_owned(),
            discovery,
            fetched_at: Instant::now(),
            keys: Mutex::new(None),
        });
        lock(&self.cache.providers).insert(self.provider_id.to_owned(), Arc::clone(&metadata));
        Ok(metadata)
    }

    async fn discover(&self) -> Result<Discovery, SsoError> {
        let url = format!("{}/.well-known/openid-configuration", self.issuer.trim_end_matches('/'));
        let fail = |text: String| SsoError::Discovery(format!("{url}: {text}"));
        let discovery: Discovery =
            http::json(self.http.get(&url).header(ACCEPT, "application/json")).await.map_err(fail)?;
        if !jwt::discovery_issuer_matches(self.issuer, &discovery.issuer) {
            return Err(fail(format!(
                "the document's issuer `{}` is not the configured `{}`",
                discovery.issuer, self.issuer
            )));
        }
        for (name, endpoint) in [
            ("authorization_endpoint", &discovery.authorization_endpoint),
            ("token_endpoint", &discovery.token_endpoint),
            ("jwks_uri", &discovery.jwks_uri),
        ] {
            let parsed = reqwest::Url::parse(endpoint).ok();
            if !parsed.is_some_and(|url| matches!(url.scheme(), "http" | "https")) {
                return Err(fail(format!("the {name} is not an http(s) URL")));
            }
        }
        Ok(discovery)
    }

    async fn exchange(&self, discovery: &Discovery, pending: &PendingLogin, code: &str) -> Result<Tokens, SsoError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri),
            ("code_verifier", pending.pkce_verifier.expose()),
        ];
        let mut request = self.http.post(&discovery.token_endpoint).header(ACCEPT, "application/json");
        if uses_basic_auth(discovery.token_endpoint_auth_methods_supported.as_deref()) {
            let credentials = format!("{}:{}", form_encode(self.client_id), form_encode(self.client_secret.expose()));
            request = request.header(AUTHORIZATION, format!("Basic {}", STANDARD.encode(credentials)));
        } else {
            form.push(("client_id", self.client_id));
            form.push(("client_secret", self.client_secret.expose()));
        }
        let (status, body) = http::send(request.form(&form)).await.map_err(SsoError::TokenExchange)?;
        if !status.is_success() {
            let code = oauth_error_code(&body).map(|code| format!(" ({code})")).unwrap_or_default();
            return Err(SsoError::TokenExchange(format!("the token endpoint answered HTTP {status}{code}")));
        }
        serde_json::from_slice(&body)
            .map_err(|_| SsoError::TokenExchange("the token endpoint's answer is not the expected JSON".to_owned()))
    }

    /// Verifies with the cached JWKS; on an unknown key, fetches the JWKS once more and retries.
    async fn verify(&self, metadata: &Metadata, id_token: &str, nonce: &str) -> Result<IdClaims, SsoError> {
        let expected = Expected {
            issuer: &metadata.discovery.issuer,
            client_id: self.client_id,
            nonce,
            algorithms: metadata.discovery.id_token_signing_alg_values_supported.as_deref(),
            now_secs: now_ms() / 1000,
        };
        let cached = lock(&metadata.keys).clone();
        let was_cached = cached.is_some();
        let keys = match cached {
            Some(keys) => keys,
            None => self.fetch_keys(metadata).await?,
        };
        match jwt::verify(id_token, &keys, &expected) {
            Err(Rejection::UnknownKey(_)) if was_cached => {
                tracing::info!(provider = self.provider_id, "ID token signed by an unknown key: refreshing the JWKS");
                let keys = self.fetch_keys(metadata).await?;
                jwt::verify(id_token, &keys, &expected).map_err(rejection)
            }
            result => result.map_err(rejection),
        }
    }

    async fn fetch_keys(&self, metadata: &Metadata) -> Result<Arc<Vec<Jwk>>, SsoError> {
        let url = &metadata.discovery.jwks_uri;
        let set: Value = http::json(self.http.get(url).header(ACCEPT, "application/json"))
            .await
            .map_err(|text| SsoError::Discovery(format!("{url}: {text}")))?;
        // Keys Loquat cannot parse (other types, odd parameters) are skipped, not fatal.
        let keys: Vec<Jwk> = set
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| SsoError::Discovery(format!("{url}: the JWKS has no `keys` array")))?
            .iter()
            .filter_map(|key| serde_json::from_value(key.clone()).ok())
            .collect();
        let keys = Arc::new(keys);
        *lock(&metadata.keys) = Some(Arc::clone(&keys));
        Ok(keys)
    }

    async fn merge_userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
        claims: &mut IdClaims,
        groups_key: Option<&str>,
    ) -> Result<(), SsoError> {
        let request = self.http.get(endpoint).bearer_auth(access_token).header(ACCEPT, "application/json");
        let (status, body) = http::send(request).await.map_err(SsoError::UserInfo)?;
        if !status.is_success() {
            return Err(SsoError::UserInfo(format!("the userinfo endpoint answered HTTP {status}")));
        }
        let Ok(info) = serde_json::from_slice::<Value>(&body) else {
            // A signed (JWT) userinfo answer is not supported: go on without an email.
            tracing::info!(provider = self.provider_id, "userinfo did not answer JSON; no email for this login");
            return Ok(());
        };
        if info.get("sub").and_then(Value::as_str) != Some(claims.subject.as_str()) {
            return Err(SsoError::UserInfo("the userinfo subject is not the ID token's".to_owned()));
        }
        let text = |key: &str| info.get(key).and_then(Value::as_str).filter(|text| !text.is_empty()).map(str::to_owned);
        if claims.email.is_none()
            && let Some(email) = text("email")
        {
            claims.email = Some(email);
            claims.email_verified = info.get("email_verified").is_some_and(jwt::truthy);
        }
        // Groups the ID token left out (its own, when present, win).
        if let Some(key) = groups_key
            && !claims.other.contains_key(key)
            && let Some(groups) = info.get(key)
        {
            claims.other.insert(key.to_owned(), groups.clone());
        }
        if claims.name.is_none() {
            claims.name = text("name").or_else(|| text("preferred_username"));
        }
        Ok(())
    }
}

/// The token endpoint's answer; never printed.
#[derive(Deserialize)]
struct Tokens {
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
}

/// HTTP Basic unless the IdP announces only `client_secret_post` (Basic is the spec's default).
fn uses_basic_auth(methods: Option<&[String]>) -> bool {
    match methods {
        None => true,
        Some(methods) => {
            methods.iter().any(|method| method == "client_secret_basic")
                || !methods.iter().any(|method| method == "client_secret_post")
        }
    }
}

fn rejection(rejection: Rejection) -> SsoError {
    match rejection {
        Rejection::UnknownKey(Some(kid)) => SsoError::InvalidToken(format!("no key `{kid}` in the IdP's JWKS")),
        Rejection::UnknownKey(None) => SsoError::InvalidToken("no key of the IdP's JWKS fits the token".to_owned()),
        Rejection::Invalid(text) => SsoError::InvalidToken(text),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_authentication_follows_the_announced_methods() {
        let methods = |list: &[&str]| list.iter().map(|method| (*method).to_owned()).collect::<Vec<_>>();
        assert!(uses_basic_auth(None));
        assert!(uses_basic_auth(Some(&methods(&["client_secret_post", "client_secret_basic"]))));
        assert!(!uses_basic_auth(Some(&methods(&["client_secret_post"]))));
        assert!(uses_basic_auth(Some(&methods(&["private_key_jwt"]))));
    }
}
