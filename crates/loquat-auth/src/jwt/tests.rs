//! ID token checks with locally signed ES256, ES384 and EdDSA tokens (RS256 is covered end to end
//! against the fake IdP), and the issuer rules.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

/// Test-only keys (PKCS#8), generated with `openssl genpkey` for these tests.
const EC_P256_PKCS8: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgS7Gd+UAcNNBcZLN9\
                             f2dD2VzW9jI1NBFFquggUcFi3suhRANCAAT1MNo1xNaPB3lIUa/8CGBvXS5NBpdY\
                             h02eYM4hYnGEcf8G5pTYagLpnLwV1LJoh1QqGhyI4RmOBTq/otoXxKr6";
const EC_P384_PKCS8: &str = "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDBEpJ0ZTf+RJhAkNKIn\
                             XxwaoPpBjgnH1ftq6AJW238RSln2bNJ+ZwkxIVP5QPtECaqhZANiAARKWcA+iOCZ\
                             7j1t/2kSQzPb9/VB4056BbgSTeoilqvbmpORjwTbAth/46tUzZGLIPqzk2EKYGbm\
                             IXZPkZQN7sWp3HgCm/a8JM0jM9zsy+ouMvXGD/kRZGeVVTIHFdpkR1A=";
const ED25519_PKCS8: &str = "MC4CAQAwBQYDK2VwBCIEIP/PL68Q0kxZIovXChioEcFgL30yNOkl004JN0DOjB9y";

const ISSUER: &str = "https://idp.example.com/realms/main";
const CLIENT: &str = "loquat";
const NONCE: &str = "n-0S6_WzA2Mj";

struct Signer {
    key: EncodingKey,
    jwk: Jwk,
    alg: Algorithm,
}

fn signer(alg: Algorithm, kid: &str) -> Signer {
    let der = |b64: &str| STANDARD.decode(b64).expect("test key is base64");
    let key = match alg {
        Algorithm::ES256 => EncodingKey::from_ec_der(&der(EC_P256_PKCS8)),
        Algorithm::ES384 => EncodingKey::from_ec_der(&der(EC_P384_PKCS8)),
        Algorithm::EdDSA => EncodingKey::from_ed_der(&der(ED25519_PKCS8)),
        other => panic!("no test key for {other:?}"),
    };
    let mut jwk = Jwk::from_encoding_key(&key, alg).expect("public key");
    jwk.common.key_id = Some(kid.to_owned());
    jwk.common.public_key_use = Some(PublicKeyUse::Signature);
    Signer { key, jwk, alg }
}

fn now() -> i64 {
    i64::try_from(jsonwebtoken::get_current_timestamp()).expect("a sane clock")
}

fn claims() -> serde_json::Value {
    json!({
        "iss": ISSUER, "sub": "user-1", "aud": CLIENT, "exp": now() + 300, "iat": now(), "nonce": NONCE,
        "email": "ada@example.com", "email_verified": true, "name": "Ada",
    })
}

fn sign(signer: &Signer, kid: Option<&str>, claims: &serde_json::Value) -> String {
    let mut header = Header::new(signer.alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &signer.key).expect("signs")
}

fn expected() -> Expected<'static> {
    Expected { issuer: ISSUER, client_id: CLIENT, nonce: NONCE, algorithms: None, now_secs: now() }
}

fn check(token: &str, keys: &[Jwk]) -> Result<IdClaims, Rejection> {
    verify(token, keys, &expected())
}

/// The claims with `changes` applied (`null` removes one). Times follow the real clock, which
/// jsonwebtoken reads for `exp` and `nbf`.
fn now_claims(changes: serde_json::Value) -> (serde_json::Value, i64) {
    let now = now();
    let mut value = claims();
    for (key, change) in changes.as_object().expect("an object") {
        if change.is_null() {
            value.as_object_mut().expect("an object").remove(key);
        } else {
            value[key] = change.clone();
        }
    }
    (value, now)
}

fn verify_now(signer: &Signer, changes: serde_json::Value) -> Result<IdClaims, Rejection> {
    let (value, now) = now_claims(changes);
    let token = sign(signer, Some("k1"), &value);
    verify(&token, std::slice::from_ref(&signer.jwk), &Expected { now_secs: now, ..expected() })
}

fn rejected_for(result: Result<IdClaims, Rejection>, words: &str) {
    match result {
        Err(Rejection::Invalid(text)) => assert!(text.contains(words), "expected `{words}` in `{text}`"),
        other => panic!("expected a rejection mentioning `{words}`, got {other:?}"),
    }
}

#[test]
fn es256_es384_and_eddsa_tokens_verify() {
    // ES384 is Logto's default; RS256 is tested end to end against the fake IdP.
    for alg in [Algorithm::ES256, Algorithm::ES384, Algorithm::EdDSA] {
        let signer = signer(alg, "k1");
        let claims = verify_now(&signer, json!({})).expect("a valid token");
        assert_eq!(
            claims,
            IdClaims {
                subject: "user-1".into(),
                email: Some("ada@example.com".into()),
                email_verified: true,
                name: Some("Ada".into()),
                // The rest of the token (`exp`, …), kept for group claims.
                other: claims.other.clone(),
            }
        );
        assert!(claims.other.contains_key("exp") && !claims.other.contains_key("sub"));
    }
}

#[test]
fn each_claim_check_fails_with_its_own_reason() {
    let signer = signer(Algorithm::ES256, "k1");
    rejected_for(verify_now(&signer, json!({"iss": "https://evil.example.com"})), "issuer");
    rejected_for(verify_now(&signer, json!({"aud": "someone-else"})), "audience");
    rejected_for(verify_now(&signer, json!({"aud": ["someone-else", CLIENT]})), "authorized party");
    rejected_for(verify_now(&signer, json!({"aud": ["someone-else", CLIENT], "azp": "someone-else"})), "azp");
    verify_now(&signer, json!({"aud": ["someone-else", CLIENT], "azp": CLIENT})).expect("azp names us");
    rejected_for(verify_now(&signer, json!({"nonce": "replayed"})), "nonce");
    rejected_for(verify_now(&signer, json!({"nonce": null})), "nonce is missing");
    rejected_for(verify_now(&signer, json!({"iat": null})), "iat");
    let now = now();
    rejected_for(verify_now(&signer, json!({"iat": now + 600})), "future");
    rejected_for(verify_now(&signer, json!({"exp": now - 120})), "expired");
    verify_now(&signer, json!({"exp": now - 30})).expect("within the 60 s leeway");
    rejected_for(verify_now(&signer, json!({"nbf": now + 600})), "not valid yet");
    rejected_for(verify_now(&signer, json!({"sub": null})), "`sub` is missing");
}

#[test]
fn email_verified_may_be_a_string_and_name_falls_back_to_preferred_username() {
    let signer = signer(Algorithm::ES256, "k1");
    let claims = verify_now(&signer, json!({"email_verified": "true", "name": null, "preferred_username": "ada"}))
        .expect("valid");
    assert!(claims.email_verified);
    assert_eq!(claims.name.as_deref(), Some("ada"));
    let claims = verify_now(&signer, json!({"email_verified": null, "email": null})).expect("valid");
    assert_eq!((claims.email, claims.email_verified), (None, false));
}

#[test]
fn keys_are_chosen_by_kid_use_and_type() {
    let signer = signer(Algorithm::ES256, "k1");
    let (value, _) = now_claims(json!({}));
    let token = sign(&signer, Some("k2"), &value);
    assert_eq!(check(&token, std::slice::from_ref(&signer.jwk)), Err(Rejection::UnknownKey(Some("k2".into()))));

    // An encryption key with the right kid is not used for signatures.
    let mut enc = signer.jwk.clone();
    enc.common.public_key_use = Some(PublicKeyUse::Encryption);
    let token = sign(&signer, Some("k1"), &value);
    assert_eq!(check(&token, &[enc]), Err(Rejection::UnknownKey(Some("k1".into()))));

    // Without a kid, any fitting key may verify; a key of another type never does.
    let ed = self::signer(Algorithm::EdDSA, "ed");
    let token = sign(&signer, None, &value);
    check(&token, &[ed.jwk.clone(), signer.jwk.clone()]).expect("the EC key verifies");
    assert_eq!(check(&token, &[ed.jwk]), Err(Rejection::UnknownKey(None)));
}

#[test]
fn hmac_and_unannounced_algorithms_are_refused() {
    let (value, _) = now_claims(json!({}));
    let token =
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &value, &EncodingKey::from_secret(b"client-secret"))
            .expect("signs");
    rejected_for(check(&token, &[]), "not accepted");

    let signer = signer(Algorithm::ES256, "k1");
    let token = sign(&signer, Some("k1"), &value);
    let announced = vec!["RS256".to_owned()];
    let result = verify(&token, &[signer.jwk], &Expected { algorithms: Some(&announced), ..expected() });
    rejected_for(result, "not one the IdP announces");
}

#[test]
fn issuer_rules() {
    assert!(issuer_matches("https://a.example/realms/x", "https://a.example/realms/x/", None));
    assert!(!issuer_matches("https://a.example/realms/x", "https://a.example/realms/y", None));
    assert!(issuer_matches("https://accounts.google.com", "accounts.google.com", None));
    let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
    assert!(issuer_matches(template, "https://login.microsoftonline.com/9188040d-6c67/v2.0", Some("9188040d-6c67")));
    assert!(!issuer_matches(template, "https://login.microsoftonline.com/other/v2.0", Some("9188040d-6c67")));
    assert!(!issuer_matches(template, "https://login.microsoftonline.com/{tenantid}/v2.0", None));
    assert!(!issuer_matches(template, "https://login.microsoftonline.com/a/b/v2.0", Some("a/b")));

    assert!(discovery_issuer_matches("https://a.example/", "https://a.example"));
    assert!(discovery_issuer_matches("https://login.microsoftonline.com/common/v2.0", template));
    assert!(discovery_issuer_matches("https://login.microsoftonline.com/organizations/v2.0/", template));
    assert!(!discovery_issuer_matches("https://login.microsoftonline.com/v2.0", template));
    assert!(!discovery_issuer_matches("https://evil.example/common/v2.0", template));
    assert!(!discovery_issuer_matches("https://a.example", "https://b.example"));
}
