//! The state of a login between `begin` and the callback, and the random values in it.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use loquat_core::Secret;
use rand::RngCore;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// How long a pending login stays valid: 10 minutes.
pub const PENDING_LOGIN_TTL_MS: i64 = 10 * 60 * 1000;

/// What to remember between [`crate::SsoClient::begin`] and the callback. Store it server-side
/// (never in a cookie the browser can read back unencrypted) and use it once: its serialized
/// form carries the PKCE verifier. `Debug` shows only the provider and the time.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingLogin {
    pub provider_id: String,
    /// Sent in the authorize URL; the callback must bring it back unchanged.
    pub state: String,
    /// Bound into the ID token by the IdP (OIDC only; unused for GitHub).
    pub nonce: String,
    /// PKCE (RFC 7636, S256).
    #[serde(serialize_with = "serialize_exposed")]
    pub pkce_verifier: Secret,
    /// Unix milliseconds when the login began.
    pub created_at_ms: i64,
}

impl PendingLogin {
    pub(crate) fn new(provider_id: &str) -> Self {
        Self {
            provider_id: provider_id.to_owned(),
            state: random_token(),
            nonce: random_token(),
            pkce_verifier: Secret::new(random_token()),
            created_at_ms: now_ms(),
        }
    }

    /// Whether the login is too old (or dated in the future) at `now_ms`.
    pub fn is_expired_at(&self, now_ms: i64) -> bool {
        let age = now_ms - self.created_at_ms;
        !(-60_000..=PENDING_LOGIN_TTL_MS).contains(&age)
    }

    /// The PKCE `code_challenge` for the verifier.
    pub(crate) fn pkce_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.pkce_verifier.expose().as_bytes()))
    }
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("provider_id", &self.provider_id)
            .field("created_at_ms", &self.created_at_ms)
            .finish_non_exhaustive()
    }
}

fn serialize_exposed<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(secret.expose())
}

/// 256 random bits, URL-safe base64 without padding (43 characters; also a valid PKCE verifier).
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// Compares without an early exit, so timing does not tell how much of a guess was right.
pub(crate) fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_url_safe_and_long_enough() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(a.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn pkce_challenge_matches_rfc_7636_appendix_b() {
        let mut pending = PendingLogin::new("x");
        pending.pkce_verifier = Secret::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        assert_eq!(pending.pkce_challenge(), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    }

    #[test]
    fn serializes_the_verifier_but_debug_hides_everything_secret() {
        let pending = PendingLogin::new("keycloak");
        let json = serde_json::to_string(&pending).expect("serializes");
        let back: PendingLogin = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, pending);
        let debug = format!("{pending:?}");
        for hidden in [pending.state.as_str(), pending.nonce.as_str(), pending.pkce_verifier.expose()] {
            assert!(!debug.contains(hidden), "{debug}");
        }
    }

    #[test]
    fn expiry_window() {
        let mut pending = PendingLogin::new("x");
        let now = pending.created_at_ms;
        assert!(!pending.is_expired_at(now + PENDING_LOGIN_TTL_MS));
        assert!(pending.is_expired_at(now + PENDING_LOGIN_TTL_MS + 1));
        pending.created_at_ms = now + 120_000;
        assert!(pending.is_expired_at(now), "a login dated in the future is refused");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
