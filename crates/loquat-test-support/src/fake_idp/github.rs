//! The fake IdP's GitHub face: `GET /login/oauth/authorize`, `POST /login/oauth/access_token`
//! (errors as GitHub sends them: HTTP 200 with an `error` field; form-encoded unless the client
//! asks for JSON), and the REST API's `GET /user` and `GET /user/emails` (a `User-Agent` is
//! required, as on api.github.com).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::header::{ACCEPT, USER_AGENT};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

use super::{CLIENT_ID, CLIENT_SECRET, ClientAuth, FakeUser, Grant, Shared, TokenRequest, bearer_user, lock};

/// GitHub's id of octocat, for a test user whose subject is not a number.
const FALLBACK_GITHUB_ID: u64 = 583_231;

pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/login/oauth/authorize", get(authorize))
        .route("/login/oauth/access_token", post(access_token))
        .route("/user", get(user))
        .route("/user/emails", get(emails))
}

async fn authorize(State(shared): State<Arc<Shared>>, Query(query): Query<HashMap<String, String>>) -> Response {
    let param = |name: &str| query.get(name).cloned();
    if param("client_id").as_deref() != Some(CLIENT_ID) {
        return (StatusCode::NOT_FOUND, "unknown client_id").into_response();
    }
    let Some(redirect_uri) = param("redirect_uri") else {
        return (StatusCode::BAD_REQUEST, "redirect_uri is required").into_response();
    };
    if param("code_challenge").is_some() && param("code_challenge_method").as_deref() != Some("S256") {
        return super::redirect_error(&redirect_uri, "invalid_request", param("state").as_deref());
    }
    let grant = Grant {
        client_id: CLIENT_ID.to_owned(),
        redirect_uri: redirect_uri.clone(),
        nonce: None,
        code_challenge: param("code_challenge"),
        user: lock(&shared.state).user.clone(),
    };
    super::issue_code(&shared, grant, &redirect_uri, param("state").as_deref())
}

async fn access_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| form.get(name).cloned();
    let mut request = TokenRequest {
        flow: "github",
        client_auth: if form.contains_key("client_secret") { ClientAuth::Post } else { ClientAuth::None },
        code: field("code").unwrap_or_default(),
        redirect_uri: field("redirect_uri"),
        code_verifier: field("code_verifier"),
        error: None,
    };
    let mut state = lock(&shared.state);
    let outcome = if field("client_id").as_deref() != Some(CLIENT_ID)
        || field("client_secret").as_deref() != Some(CLIENT_SECRET)
    {
        Err("incorrect_client_credentials")
    } else {
        redeem(&mut state, &request)
    };
    let wants_json =
        headers.get(ACCEPT).and_then(|value| value.to_str().ok()).is_some_and(|accept| accept.contains("json"));
    let response = match outcome {
        Ok(grant) => {
            let token = format!("gho_{}", uuid::Uuid::new_v4().simple());
            state.access_tokens.insert(token.clone(), grant.user);
            if wants_json {
                Json(json!({ "access_token": token, "token_type": "bearer", "scope": "read:user,user:email" }))
                    .into_response()
            } else {
                format!("access_token={token}&scope=read%3Auser%2Cuser%3Aemail&token_type=bearer").into_response()
            }
        }
        Err(error) => {
            request.error = Some(error.to_owned());
            Json(json!({
                "error": error,
                "error_description": "The fake GitHub refused the request.",
                "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors",
            }))
            .into_response()
        }
    };
    state.token_requests.push(request);
    response
}

/// GitHub's names for what the OIDC face calls `invalid_grant`.
fn redeem(state: &mut super::IdpState, request: &TokenRequest) -> Result<Grant, &'static str> {
    if !state.spent_codes.insert(request.code.clone()) {
        return Err("bad_verification_code");
    }
    let grant = state.codes.remove(&request.code).ok_or("bad_verification_code")?;
    if request.redirect_uri.as_deref().is_some_and(|uri| uri != grant.redirect_uri) {
        return Err("redirect_uri_mismatch");
    }
    super::token::check_pkce(grant.code_challenge.as_deref(), request.code_verifier.as_deref())
        .map_err(|_| "bad_verification_code")?;
    Ok(grant)
}

/// Why GitHub's API refuses a request.
enum Refusal {
    NoUserAgent,
    BadCredentials,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NoUserAgent => {
                let message =
                    "Request forbidden by administrative rules. Please make sure your request has a User-Agent header";
                (StatusCode::FORBIDDEN, message).into_response()
            }
            Refusal::BadCredentials => {
                (StatusCode::UNAUTHORIZED, Json(json!({ "message": "Bad credentials", "status": "401" })))
                    .into_response()
            }
        }
    }
}

/// The user behind the request's token, or why GitHub would refuse.
fn api_user(shared: &Shared, headers: &HeaderMap) -> Result<FakeUser, Refusal> {
    if !headers.contains_key(USER_AGENT) {
        return Err(Refusal::NoUserAgent);
    }
    bearer_user(shared, headers, &["Bearer ", "token "]).ok_or(Refusal::BadCredentials)
}

fn github_id(user: &FakeUser) -> u64 {
    user.subject.parse().unwrap_or(FALLBACK_GITHUB_ID)
}

fn login(user: &FakeUser) -> String {
    user.email.as_deref().and_then(|email| email.split('@').next()).unwrap_or("octocat").to_owned()
}

async fn user(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    match api_user(&shared, &headers) {
        Ok(user) => Json(json!({
            "login": login(&user),
            "id": github_id(&user),
            "type": "User",
            "name": user.name,
            // The address is private: the profile shows none, /user/emails has it.
            "email": null,
        }))
        .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

async fn emails(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let user = match api_user(&shared, &headers) {
        Ok(user) => user,
        Err(refusal) => return refusal.into_response(),
    };
    let noreply = format!("{}+{}@users.noreply.github.com", github_id(&user), login(&user));
    let mut list = vec![json!({ "email": noreply, "primary": false, "verified": true, "visibility": null })];
    if let Some(email) = &user.email {
        list.insert(
            0,
            json!({ "email": email, "primary": true, "verified": user.email_verified, "visibility": "private" }),
        );
    }
    Json(list).into_response()
}
