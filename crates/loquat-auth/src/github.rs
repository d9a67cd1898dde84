//! GitHub sign-in: OAuth 2 authorization code with PKCE (S256) and `state`, then the REST API
//! for who it is — `/user` (numeric id, login, name) and `/user/emails` (the primary address and
//! whether GitHub verified it). GitHub issues no ID token, so there is no nonce.

use reqwest::header::ACCEPT;
use serde::Deserialize;

use crate::error::SsoError;
use crate::http::{self, oauth_error_code};
use crate::pending::PendingLogin;

/// Where GitHub lives. The default is github.com; GitHub Enterprise Server and tests use
/// [`GitHubEndpoints::new`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitHubEndpoints {
    /// `https://github.com/login/oauth/authorize`
    pub authorize_url: String,
    /// `https://github.com/login/oauth/access_token`
    pub token_url: String,
    /// `https://api.github.com` (`/user` and `/user/emails` are appended).
    pub api_base_url: String,
}

impl Default for GitHubEndpoints {
    fn default() -> Self {
        Self::new("https://github.com", "https://api.github.com")
    }
}

impl GitHubEndpoints {
    /// `<web_base>/login/oauth/{authorize,access_token}` and the API at `api_base` (for GitHub
    /// Enterprise Server: `https://<host>` and `https://<host>/api/v3`).
    pub fn new(web_base: &str, api_base: &str) -> Self {
        let web = web_base.trim_end_matches('/');
        Self {
            authorize_url: format!("{web}/login/oauth/authorize"),
            token_url: format!("{web}/login/oauth/access_token"),
            api_base_url: api_base.trim_end_matches('/').to_owned(),
        }
    }
}

/// Who GitHub says it is.
pub(crate) struct GitHubUser {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
}

pub(crate) struct Client<'a> {
    pub http: &'a reqwest::Client,
    pub endpoints: &'a GitHubEndpoints,
    pub client_id: &'a str,
    pub client_secret: &'a loquat_core::Secret,
    pub redirect_uri: &'a str,
}

#[derive(Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct User {
    id: u64,
    login: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
struct Email {
    email: String,
    #[serde(default)]
    primary: bool,
    #[serde(default)]
    verified: bool,
}

impl Client<'_> {
    pub(crate) fn authorize_url(&self, pending: &PendingLogin) -> Result<String, SsoError> {
        let mut url = reqwest::Url::parse(&self.endpoints.authorize_url)
            .map_err(|_| SsoError::Discovery("GitHub's authorize URL is not a URL".to_owned()))?;
        url.query_pairs_mut()
            .append_pair("client_id", self.client_id)
            .append_pair("redirect_uri", self.redirect_uri)
            .append_pair("scope", "read:user user:email")
            .append_pair("state", &pending.state)
            .append_pair("code_challenge", &pending.pkce_challenge())
            .append_pair("code_challenge_method", "S256");
        Ok(url.into())
    }

    pub(crate) async fn complete(&self, pending: &PendingLogin, code: &str) -> Result<GitHubUser, SsoError> {
        let access_token = self.exchange(pending, code).await?;
        let user: User = self.api("/user", &access_token).await.map_err(SsoError::UserInfo)?;
        let emails = match self.api::<Vec<Email>>("/user/emails", &access_token).await {
            Ok(emails) => emails,
            // A GitHub App without the "email addresses" permission: no list, not a failure.
            Err(text) if text.contains("HTTP 403") || text.contains("HTTP 404") => Vec::new(),
            Err(text) => return Err(SsoError::UserInfo(text)),
        };
        let (email, email_verified) = pick_email(&emails, user.email.as_deref());
        Ok(GitHubUser {
            subject: user.id.to_string(),
            email,
            email_verified,
            name: user.name.filter(|name| !name.is_empty()).or(Some(user.login)),
        })
    }

    async fn exchange(&self, pending: &PendingLogin, code: &str) -> Result<String, SsoError> {
        let form = [
            ("client_id", self.client_id),
            ("client_secret", self.client_secret.expose()),
            ("code", code),
            ("redirect_uri", self.redirect_uri),
            ("code_verifier", pending.pkce_verifier.expose()),
        ];
        let request = self.http.post(&self.endpoints.token_url).header(ACCEPT, "application/json").form(&form);
        let (status, body) = http::send(request).await.map_err(SsoError::TokenExchange)?;
        // GitHub reports a bad code with HTTP 200 and an `error` field.
        if let Some(code) = oauth_error_code(&body) {
            return Err(SsoError::TokenExchange(format!("GitHub answered `{code}`")));
        }
        if !status.is_success() {
            return Err(SsoError::TokenExchange(format!("GitHub answered HTTP {status}")));
        }
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| SsoError::TokenExchange("GitHub's answer is not the expected JSON".to_owned()))?;
        answer
            .access_token
            .filter(|token| !token.is_empty())
            .ok_or_else(|| SsoError::TokenExchange("GitHub's answer has no access_token".to_owned()))
    }

    async fn api<T: serde::de::DeserializeOwned>(&self, path: &str, access_token: &str) -> Result<T, String> {
        let request = self
            .http
            .get(format!("{}{path}", self.endpoints.api_base_url))
            .bearer_auth(access_token)
            .header(ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        http::json(request).await.map_err(|text| format!("GitHub's {path}: {text}"))
    }
}

/// The primary address, verified or not (then `false`); else the public profile address,
/// which Loquat cannot tell is verified.
fn pick_email(emails: &[Email], public: Option<&str>) -> (Option<String>, bool) {
    if let Some(primary) = emails.iter().find(|email| email.primary) {
        return (Some(primary.email.clone()), primary.verified);
    }
    (public.filter(|email| !email.is_empty()).map(str::to_owned), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn email(address: &str, primary: bool, verified: bool) -> Email {
        Email { email: address.to_owned(), primary, verified }
    }

    #[test]
    fn the_primary_address_wins_and_carries_its_verification() {
        let emails = [email("old@example.com", false, true), email("main@example.com", true, true)];
        assert_eq!(pick_email(&emails, Some("public@example.com")), (Some("main@example.com".into()), true));
        let emails = [email("main@example.com", true, false)];
        assert_eq!(pick_email(&emails, None), (Some("main@example.com".into()), false));
        assert_eq!(pick_email(&[], Some("public@example.com")), (Some("public@example.com".into()), false));
        assert_eq!(pick_email(&[], None), (None, false));
    }

    #[test]
    fn endpoints() {
        let default = GitHubEndpoints::default();
        assert_eq!(default.authorize_url, "https://github.com/login/oauth/authorize");
        assert_eq!(default.token_url, "https://github.com/login/oauth/access_token");
        assert_eq!(default.api_base_url, "https://api.github.com");
        let ghes = GitHubEndpoints::new("https://ghe.example.com/", "https://ghe.example.com/api/v3/");
        assert_eq!(ghes.token_url, "https://ghe.example.com/login/oauth/access_token");
        assert_eq!(ghes.api_base_url, "https://ghe.example.com/api/v3");
    }
}
