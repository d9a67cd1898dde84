//! Single sign-on: `/api/auth/signin/<idp>` sends the browser to the identity provider with a
//! fresh state, nonce and PKCE verifier kept server-side (single use); LobeChat's callback path
//! `/api/auth/callback/<idp>` completes it, links or creates the account and signs in.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use loquat_auth::PendingLogin;
use loquat_core::service::SsoIdentity;
use serde::{Deserialize, Serialize};

use super::assistants::safe_back;
use super::auth::signed_in_response;
use super::see_other;
use crate::AppState;
use crate::context::Visitor;
use crate::error::{WebError, WebResult, user_message};

/// What is kept between the redirect and the callback.
#[derive(Serialize, Deserialize)]
struct Pending {
    login: PendingLogin,
    next: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SignInQuery {
    next: String,
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
    let pending = Pending { next: safe_back(&query.next, "/"), login };
    let data = serde_json::to_string(&pending).map_err(|_| sso_failed(&visitor))?;
    state.services.save_login_state(&pending.login.state, &data).await.map_err(visitor.fail())?;
    Ok(see_other(&url))
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
) -> WebResult<Response> {
    let Some(sso) = state.sso.as_ref() else { return Err(WebError::not_found(visitor.tr, visitor.flavor)) };
    if !query.error.is_empty() || query.code.is_empty() || query.state.is_empty() {
        tracing::info!(idp, error = %query.error, "the identity provider did not sign the user in");
        return Err(sso_failed(&visitor));
    }
    // Single use: a replayed callback finds nothing.
    let Some(data) = state.services.take_login_state(&query.state).await.map_err(visitor.fail())? else {
        return Err(sso_failed(&visitor));
    };
    let pending: Pending = serde_json::from_str(&data).map_err(|_| sso_failed(&visitor))?;
    if pending.login.provider_id != idp {
        return Err(sso_failed(&visitor));
    }
    let identity = match sso.complete(&pending.login, &query.code, &query.state).await {
        Ok(identity) => identity,
        Err(error) => {
            tracing::warn!(idp, %error, "single sign-on failed");
            return Err(sso_failed(&visitor));
        }
    };
    let identity = SsoIdentity {
        provider: identity.provider_id,
        subject: identity.subject,
        email: identity.email,
        email_verified: identity.email_verified,
        name: identity.name,
    };
    match state.services.sign_in_with_sso(identity, &state.settings.allowed_emails, &visitor.client).await {
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
