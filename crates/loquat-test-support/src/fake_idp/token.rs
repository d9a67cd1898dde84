//! The fake IdP's OIDC token endpoint: client authentication (Basic or form), single-use codes,
//! `redirect_uri` and PKCE checks, and real RS256 ID tokens, spoiled on request.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Form, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, Header};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Bad, CLIENT_ID, CLIENT_SECRET, ClientAuth, Grant, IdpState, Shared, TokenRequest, lock, now_secs};

/// `POST /oidc/token`: the authorization code grant with PKCE.
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let (auth, credentials) = client_credentials(&headers, &form);
    let mut request = TokenRequest {
        flow: "oidc",
        client_auth: auth,
        code: form.get("code").cloned().unwrap_or_default(),
        redirect_uri: form.get("redirect_uri").cloned(),
        code_verifier: form.get("code_verifier").cloned(),
        error: None,
    };
    let mut state = lock(&shared.state);
    let allowed = match auth {
        ClientAuth::Basic => state.auth_methods.iter().any(|method| method == "client_secret_basic"),
        ClientAuth::Post => state.auth_methods.iter().any(|method| method == "client_secret_post"),
        ClientAuth::None => false,
    };
    let outcome = if !allowed || credentials != Some((CLIENT_ID.to_owned(), CLIENT_SECRET.to_owned())) {
        Err((StatusCode::UNAUTHORIZED, "invalid_client"))
    } else if form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        Err((StatusCode::BAD_REQUEST, "unsupported_grant_type"))
    } else {
        redeem(&mut state, &request).map_err(|error| (StatusCode::BAD_REQUEST, error))
    };
    let response = match outcome {
        Ok(grant) => {
            let access_token = uuid::Uuid::new_v4().simple().to_string();
            state.access_tokens.insert(access_token.clone(), grant.user.clone());
            let bad = std::mem::take(&mut state.next_bad);
            let id_token = sign_id_token(&shared, &state, &grant, &bad);
            Json(json!({
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": "openid email profile",
                "id_token": id_token,
            }))
            .into_response()
        }
        Err((status, error)) => {
            request.error = Some(error.to_owned());
            let description = format!("the fake IdP refused the request ({error})");
            (status, Json(json!({ "error": error, "error_description": description }))).into_response()
        }
    };
    state.token_requests.push(request);
    response
}

/// Takes the code (once: a second use is `invalid_grant`) and checks what it was issued for.
fn redeem(state: &mut IdpState, request: &TokenRequest) -> Result<Grant, &'static str> {
    if !state.spent_codes.insert(request.code.clone()) {
        return Err("invalid_grant");
    }
    let grant = state.codes.remove(&request.code).ok_or("invalid_grant")?;
    if grant.client_id != CLIENT_ID || request.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return Err("invalid_grant");
    }
    check_pkce(grant.code_challenge.as_deref(), request.code_verifier.as_deref())?;
    Ok(grant)
}

pub(super) fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), &'static str> {
    match (challenge, verifier) {
        (None, _) => Ok(()),
        (Some(challenge), Some(verifier)) if URL_SAFE_NO_PAD.encode(Sha256::digest(verifier)) == challenge => Ok(()),
        (Some(_), _) => Err("invalid_grant"),
    }
}

/// HTTP Basic (form-decoded, RFC 6749 §2.3.1) or the form's `client_id` + `client_secret`.
fn client_credentials(headers: &HeaderMap, form: &HashMap<String, String>) -> (ClientAuth, Option<(String, String)>) {
    if let Some(basic) = headers.get(AUTHORIZATION).and_then(|value| value.to_str().ok()) {
        let decoded = basic
            .strip_prefix("Basic ")
            .and_then(|b64| STANDARD.decode(b64.trim()).ok())
            .and_then(|bytes| String::from_utf8(bytes).ok());
        let pair = decoded
            .as_deref()
            .and_then(|text| text.split_once(':'))
            .map(|(id, secret)| (percent_decode(id), percent_decode(secret)));
        return (ClientAuth::Basic, pair);
    }
    match (form.get("client_id"), form.get("client_secret")) {
        (Some(id), Some(secret)) => (ClientAuth::Post, Some((id.clone(), secret.clone()))),
        _ => (ClientAuth::None, None),
    }
}

fn sign_id_token(shared: &Shared, state: &IdpState, grant: &Grant, bad: &Bad) -> String {
    let now = now_secs();
    let (iat, exp) = if bad.expired { (now - 7200, now - 3600) } else { (now, now + 600) };
    let user = &grant.user;
    let mut claims = json!({
        "iss": format!("{}/oidc", shared.base),
        "sub": user.subject,
        "aud": if bad.wrong_audience { "some-other-client" } else { CLIENT_ID },
        "exp": exp,
        "iat": iat,
        "auth_time": iat,
        "name": user.name,
    });
    if let Some(nonce) = &grant.nonce {
        claims["nonce"] = json!(if bad.wrong_nonce { "not-the-nonce-of-this-login" } else { nonce });
    }
    if state.email_in_id_token && user.email.is_some() {
        claims["email"] = json!(user.email);
        claims["email_verified"] = json!(user.email_verified);
    }
    for (name, value) in &state.extra_claims {
        claims[name.as_str()] = value.clone();
    }
    let key = &shared.keys[state.active_key];
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(key.kid.to_owned());
    let token = match jsonwebtoken::encode(&header, &claims, &key.key) {
        Ok(token) => token,
        Err(error) => panic!("the fake IdP could not sign an ID token: {error}"),
    };
    if bad.tampered { flip_signature_byte(&token) } else { token }
}

/// The same token with one bit of the signature flipped.
fn flip_signature_byte(token: &str) -> String {
    let Some((signed, signature)) = token.rsplit_once('.') else {
        return token.to_owned();
    };
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap_or_default();
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x01;
    }
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space).
fn percent_decode(value: &str) -> String {
    let hex = |byte: u8| char::from(byte).to_digit(16).and_then(|digit| u8::try_from(digit).ok());
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex))
        {
            (b'%', Some(high), Some(low)) => Some(high * 16 + low),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, other) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(percent_decode("a+b%3Ac%2fd%25%zz%4"), "a b:c/d%%zz%4");
    }

    #[test]
    fn a_flipped_signature_differs_in_one_bit() {
        let token = "aGVhZA.Ym9keQ.AAEC";
        let flipped = flip_signature_byte(token);
        assert_eq!(flipped, "aGVhZA.Ym9keQ.AQEC");
    }

    #[test]
    fn pkce_s256() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(check_pkce(Some(challenge), Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk")), Ok(()));
        assert_eq!(check_pkce(Some(challenge), Some("wrong")), Err("invalid_grant"));
        assert_eq!(check_pkce(Some(challenge), None), Err("invalid_grant"));
        assert_eq!(check_pkce(None, None), Ok(()));
    }
}
