//! Single sign-on: `/api/auth/signin/<idp>` sends the browser to the identity provider with a
//! fresh state, nonce and PKCE verifier kept server-side (single use), and a short-lived
//! HttpOnly cookie that ties the sign-in to this browser; LobeChat's callback path
//! `/api/auth/callback/<idp>` completes it only in the browser holding that cookie (so nobody
//! can sign a victim into the attacker's account with a callback link), links or creates the
//! account (an invitation started on the registration page travels along) and signs in.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loquat_auth::PendingLogin;
use loquat_core::crypto::{new_token, secrets_match, token_hash};
use loquat_core::service::SsoIdentity;
use serde::{Deserialize, Serialize};

use super::auth::{set_cookie, signed_in_response};
use super::{safe_next, see_other};
use crate::AppState;
use crate::context::{Visitor, cookie};
use crate::error::{WebError, WebResult, user_message};

/// The cookie binding a pending sign-in to the browser that started it.
const BROWSER_COOKIE: &str = "loquat_sso";
/// As long as a pending sign-in lives (the store forgets it after ten minutes).
const BROWSER_COOKIE_MAX_AGE: u64 = 10 * 60;

/// What is kept between the redirect and the callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    login: PendingLogin,
    next: String,
    /// The SHA-256 of the browser cookie's value.
    browser: String,
    /// An invitation code from the registration page, for a new account.
    #[serde(default)]
    invite: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInQuery {
    next: String,
    invite: String,
}

pub async fn sso_sign_in(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(idp): Path<String>,
    Query(query): Query<SignInQuery>,
) -> WebResult<Response> {
    let Some(sso) = state.sso.as_ref() else { return Err(WebError::not_found(visitor.tr, visitor.flavor)) };
    let (url, login) = match sso.begin(&idp).await {
        Ok(started) => started,
        Err(loquat_auth::SsoError::UnknownProvider(_)) => return Err(WebError::not_found(visitor.tr, visitor.flavor)),
        Err(error) => {
            tracing::warn!(idp, %error, "could not start a single sign-on");
            return Err(sso_failed(&visitor));
        }
    };
    let browser = new_token("");
    let invite = Some(query.invite.trim().to_owned()).filter(|code| !code.is_empty() && code.len() <= 200);
    let pending = Pending { next: safe_next(&query.next, "/"), login, browser: token_hash(browser.expose()), invite };
    let data = serde_json::to_string(&pending).map_err(|_| sso_failed(&visitor))?;
    state.services.accounts.save_login_state(&pending.login.state, &data).await.map_err(visitor.fail())?;
    let mut response = see_other(&url);
    let secure = state.settings.secure_cookies;
    let cookie = set_cookie(BROWSER_COOKIE, browser.expose(), BROWSER_COOKIE_MAX_AGE, secure);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct CallbackQuery {
    code: String,
    state: String,
    error: String,
}

pub async fn sso_callback(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(idp): Path<String>,
    Query(query): Query<CallbackQuery>,
    headers: HeaderMap,
) -> WebResult<Response> {
    let secure = state.settings.secure_cookies;
    let forget_browser = |mut response: Response| {
        response.headers_mut().append(header::SET_COOKIE, set_cookie(BROWSER_COOKIE, "", 0, secure));
        response
    };
    let browser = cookie(&headers, BROWSER_COOKIE);
    complete(&state, &visitor, &idp, query, browser.as_deref()).await.map(forget_browser)
}

async fn complete(
    state: &AppState,
    visitor: &Visitor,
    idp: &str,
    query: CallbackQuery,
    browser: Option<&str>,
) -> WebResult<Response> {
    let Some(sso) = state.sso.as_ref() else { return Err(WebError::not_found(visitor.tr, visitor.flavor)) };
    if !query.error.is_empty() || query.code.is_empty() || query.state.is_empty() {
        tracing::info!(idp, error = %query.error, "the identity provider did not sign the user in");
        return Err(sso_failed(visitor));
    }
    // Single use: a replayed callback finds nothing.
    let Some(data) = state.services.accounts.take_login_state(&query.state).await.map_err(visitor.fail())? else {
        return Err(sso_failed(visitor));
    };
    let pending: Pending = serde_json::from_str(&data).map_err(|_| sso_failed(visitor))?;
    if pending.login.provider_id != idp {
        return Err(sso_failed(visitor));
    }
    // Only the browser that started this sign-in may finish it.
    if !browser.is_some_and(|value| secrets_match(&token_hash(value), &pending.browser)) {
        tracing::warn!(idp, "a single sign-on callback came to a browser that did not start it");
        return Err(sso_failed(visitor));
    }
    let identity = match sso.complete(&pending.login, &query.code, &query.state).await {
        Ok(identity) => identity,
        Err(error) => {
            tracing::warn!(idp, %error, "single sign-on failed");
            return Err(sso_failed(visitor));
        }
    };
    let identity = SsoIdentity {
        provider: identity.provider_id,
        subject: identity.subject,
        email: identity.email,
        email_verified: identity.email_verified,
        name: identity.name,
        admin: identity.admin,
        groups: identity.groups,
    };
    let allowed = &state.settings.allowed_emails;
    match state.services.accounts.sign_in_with_sso(identity, allowed, pending.invite, &visitor.client).await {
        Ok(session) => Ok(signed_in_response(&session, &pending.next, state.settings.secure_cookies)),
        Err(error) if error.kind() == loquat_core::ErrorKind::Invalid => {
            let message = user_message(&error, visitor.tr);
            Ok((
                StatusCode::FORBIDDEN,
                axum::response::Html(super::error_page(visitor.tr, StatusCode::FORBIDDEN, &message)),
            )
                .into_response())
        }
        Err(error) => Err(visitor.fail()(error)),
    }
}

fn sso_failed(visitor: &Visitor) -> WebError {
    WebError {
        status: StatusCode::BAD_REQUEST,
        message: visitor.tr.t("auth.sso_failed").into_owned(),
        flavor: crate::error::Flavor::Html,
        tr: visitor.tr,
        redirect: None,
    }
}
