//! ID token verification (OpenID Connect Core §3.1.3.7): the signature with a key of the IdP's
//! JWKS (RS256/384/512, PS256/384/512, ES256/384, EdDSA — never `none` or HMAC), then `iss`,
//! `aud` (and `azp`), `exp`/`nbf`/`iat` with 60 s of leeway, and `nonce`.

#[cfg(test)]
mod tests;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::Value;

use crate::pending::constant_time_eq;

/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub(crate) const LEEWAY_SECS: u64 = 60;

const ACCEPTED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// What the token must say.
pub(crate) struct Expected<'a> {
    /// The discovery document's `issuer` (may be Microsoft's `{tenantid}` template).
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub nonce: &'a str,
    /// The IdP's `id_token_signing_alg_values_supported`, when it lists them.
    pub algorithms: Option<&'a [String]>,
    pub now_secs: i64,
}

/// The verified claims Loquat uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdClaims {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
    pub name: Option<String>,
    /// The token's other claims (groups, roles…), as sent.
    pub other: serde_json::Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// No key of the JWKS fits (refresh the JWKS once and retry); carries the token's `kid`.
    UnknownKey(Option<String>),
    /// A check failed; the text says which.
    Invalid(String),
}

#[derive(Deserialize)]
struct RawClaims {
    // Optional here so that a missing one is reported by name (jsonwebtoken requires them).
    #[serde(default)]
    iss: Option<String>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    aud: Option<Audience>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    azp: Option<String>,
    /// Microsoft's tenant id, for its multi-tenant issuer template.
    #[serde(default)]
    tid: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<Value>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, Value>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

/// Verifies `token` against `keys` and `expected`.
pub(crate) fn verify(token: &str, keys: &[Jwk], expected: &Expected<'_>) -> Result<IdClaims, Rejection> {
    let invalid = |text: &str| Rejection::Invalid(text.to_owned());
    let header = jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed token or unsupported `alg`"))?;
    let alg = header.alg;
    if !ACCEPTED.contains(&alg) {
        return Err(Rejection::Invalid(format!("the algorithm {alg:?} is not accepted for ID tokens")));
    }
    if let Some(listed) = expected.algorithms
        && !listed.iter().any(|name| name == &format!("{alg:?}"))
    {
        return Err(Rejection::Invalid(format!("the algorithm {alg:?} is not one the IdP announces")));
    }
    let candidates: Vec<&Jwk> = keys
        .iter()
        .filter(|jwk| header.kid.is_none() || jwk.common.key_id == header.kid)
        .filter(|jwk| usable(jwk, alg))
        .collect();
    if candidates.is_empty() {
        return Err(Rejection::UnknownKey(header.kid));
    }

    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    validation.set_audience(&[expected.client_id]);

    let mut last = invalid("the signature does not verify");
    let mut claims = None;
    for jwk in candidates {
        let key = DecodingKey::from_jwk(jwk).map_err(|_| invalid("the IdP's key is unusable"))?;
        match jsonwebtoken::decode::<RawClaims>(token, &key, &validation) {
            Ok(data) => {
                claims = Some(data.claims);
                break;
            }
            // Without a `kid`, another key of the set may be the right one.
            Err(error) if matches!(error.kind(), ErrorKind::InvalidSignature) => continue,
            Err(error) => {
                last = Rejection::Invalid(describe(error.kind()));
                break;
            }
        }
    }
    let claims = claims.ok_or(last)?;
    check_claims(claims, expected)
}

fn check_claims(claims: RawClaims, expected: &Expected<'_>) -> Result<IdClaims, Rejection> {
    let invalid = |text: &str| Err(Rejection::Invalid(text.to_owned()));
    if !issuer_matches(expected.issuer, claims.iss.as_deref().unwrap_or_default(), claims.tid.as_deref()) {
        return invalid("the issuer (iss) is not the IdP's");
    }
    let audiences = match &claims.aud {
        Some(Audience::One(one)) => vec![one.as_str()],
        Some(Audience::Many(many)) => many.iter().map(String::as_str).collect(),
        None => Vec::new(),
    };
    if !audiences.contains(&expected.client_id) {
        return invalid("the audience (aud) does not contain the client id");
    }
    if let Some(azp) = &claims.azp
        && azp != expected.client_id
    {
        return invalid("the authorized party (azp) is not the client id");
    }
    if audiences.len() > 1 && claims.azp.is_none() {
        return invalid("the token has several audiences but no authorized party (azp)");
    }
    match claims.iat {
        None => return invalid("the issued-at time (iat) is missing"),
        Some(iat) if iat > (expected.now_secs + LEEWAY_SECS as i64) as f64 => {
            return invalid("the token was issued in the future (iat)");
        }
        Some(_) => {}
    }
    match &claims.nonce {
        Some(nonce) if constant_time_eq(nonce, expected.nonce) => {}
        Some(_) => return invalid("the nonce does not match this login"),
        None => return invalid("the nonce is missing"),
    }
    let subject = claims.sub.unwrap_or_default();
    if subject.is_empty() {
        return invalid("the subject (sub) is empty");
    }
    Ok(IdClaims {
        subject,
        email: claims.email.filter(|email| !email.is_empty()),
        email_verified: claims.email_verified.as_ref().is_some_and(truthy),
        name: claims.name.or(claims.preferred_username).filter(|name| !name.is_empty()),
        other: claims.other,
    })
}

/// `true`, or the string `"true"` some IdPs (Cognito, older Azure B2C) send.
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Bool(flag) => *flag,
        Value::String(text) => text.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// Whether `jwk` may verify a signature made with `alg`.
fn usable(jwk: &Jwk, alg: Algorithm) -> bool {
    let for_signing = match &jwk.common.public_key_use {
        None => true,
        Some(PublicKeyUse::Signature) => true,
        Some(_) => false,
    };
    let may_verify =
        jwk.common.key_operations.as_ref().is_none_or(|operations| operations.contains(&KeyOperations::Verify));
    let same_alg = jwk.common.key_algorithm.is_none_or(|key_alg| key_alg == alg.into());
    let same_family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => matches!(
            alg,
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ),
        AlgorithmParameters::EllipticCurve(_) => matches!(alg, Algorithm::ES256 | Algorithm::ES384),
        AlgorithmParameters::OctetKeyPair(_) => alg == Algorithm::EdDSA,
        _ => false,
    };
    for_signing && may_verify && same_alg && same_family
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::InvalidSignature => "the signature does not verify".to_owned(),
        ErrorKind::ExpiredSignature => "the token has expired (exp)".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".to_owned(),
        ErrorKind::InvalidAudience => "the audience (aud) does not contain the client id".to_owned(),
        ErrorKind::InvalidIssuer => "the issuer (iss) is not the IdP's".to_owned(),
        ErrorKind::MissingRequiredClaim(claim) => format!("the claim `{claim}` is missing"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the claim `{claim}` is malformed"),
        ErrorKind::InvalidAlgorithm => "the algorithm does not match the key".to_owned(),
        ErrorKind::InvalidKeyFormat | ErrorKind::InvalidRsaKey(_) | ErrorKind::InvalidEcdsaKey => {
            "the IdP's key is unusable".to_owned()
        }
        _ => "the token is malformed".to_owned(),
    }
}

/// Whether the token's `iss` is the IdP's: equal modulo a trailing slash; Microsoft's
/// multi-tenant template `…/{tenantid}/v2.0` filled with the token's `tid`; Google's historic
/// `accounts.google.com` without scheme.
pub(crate) fn issuer_matches(expected: &str, actual: &str, tid: Option<&str>) -> bool {
    let trim = |text: &str| text.trim_end_matches('/').to_owned();
    if expected.contains("{tenantid}") {
        return tid.is_some_and(|tid| is_segment(tid) && trim(&expected.replace("{tenantid}", tid)) == trim(actual));
    }
    trim(expected) == trim(actual)
        || (trim(expected) == "https://accounts.google.com" && actual == "accounts.google.com")
}

/// Whether the discovery document's `issuer` is the configured one: equal modulo a trailing
/// slash, or Microsoft's `{tenantid}` template served for `common`/`organizations`/`consumers`.
pub(crate) fn discovery_issuer_matches(configured: &str, document: &str) -> bool {
    let (configured, document) = (configured.trim_end_matches('/'), document.trim_end_matches('/'));
    if configured == document {
        return true;
    }
    let Some((prefix, suffix)) = document.split_once("{tenantid}") else {
        return false;
    };
    configured.len() > prefix.len() + suffix.len()
        && configured.starts_with(prefix)
        && configured.ends_with(suffix)
        && is_segment(&configured[prefix.len()..configured.len() - suffix.len()])
}

fn is_segment(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
}
