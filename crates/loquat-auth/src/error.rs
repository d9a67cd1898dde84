//! What can go wrong during a login. Messages say which step or check failed and never contain
//! a client secret, an authorization code, a token or a PKCE verifier.

/// A failed SSO login. Show the user a friendly message; log this one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SsoError {
    #[error("unknown SSO provider `{0}`")]
    UnknownProvider(String),
    /// The callback's `state` is not the pending login's: forged, replayed or from another tab.
    #[error("the login's state does not match (forged, replayed, or from another login)")]
    StateMismatch,
    /// The pending login is older than [`crate::PENDING_LOGIN_TTL_MS`].
    #[error("the login took more than 10 minutes; start again")]
    Expired,
    /// The IdP's discovery document or keys could not be fetched or are wrong.
    #[error("OIDC discovery failed: {0}")]
    Discovery(String),
    /// The authorization code could not be exchanged for tokens (also: a code used twice).
    #[error("the authorization code could not be exchanged: {0}")]
    TokenExchange(String),
    /// The ID token failed a check; the text says which.
    #[error("the ID token was rejected: {0}")]
    InvalidToken(String),
    /// The profile (OIDC userinfo, GitHub's API) could not be read.
    #[error("the user's profile could not be read: {0}")]
    UserInfo(String),
}
