//! Getting in: the access-code gate (`ACCESS_CODE`), sign-in, registration (first account,
//! open, or by invite link) and sign-out. Sessions live in HttpOnly, SameSite=Lax cookies.

use crate::form::Form;
use askama::Template;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use loquat_core::Secret;
use loquat_core::crypto::{secrets_match, token_hash};
use loquat_core::service::{NewSession, Registration, RegistrationMode};
use serde::Deserialize;

use super::{Chrome, render, safe_next, see_other};
use crate::AppState;
use crate::context::{ACCESS_COOKIE, SESSION_COOKIE, Visitor, cookie};
use crate::error::{WebResult, user_message};
use crate::i18n::Tr;
use crate::limits::LoginGate;

/// Session cookies last as long as sessions (30 days, extended on use).
const SESSION_MAX_AGE: u64 = 30 * 24 * 3600;

/// A `Set-Cookie` value for an HttpOnly, SameSite=Lax cookie (Secure behind https).
pub fn set_cookie(name: &str, value: &str, max_age: u64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let text = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
}

/// Signs the browser in: the session cookie, then on to `next`.
pub fn signed_in_response(session: &NewSession, next: &str, secure: bool) -> Response {
    let mut response = see_other(&safe_next(next, "/"));
    let cookie = set_cookie(SESSION_COOKIE, session.token.expose(), SESSION_MAX_AGE, secure);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    response
}

// ---- The access-code gate ------------------------------------------------------------------

/// What the access cookie must hold for `code`: a hash under the server's secret, so the cookie
/// neither reveals the code nor can be made without it.
fn access_value(state: &AppState, code: &Secret) -> String {
    token_hash(&format!("{}:{}", state.settings.auth_secret.expose(), code.expose()))
}

/// Whether the request may pass the access-code gate: it carries a valid access cookie, or
/// goes to a path that must work without one. Only the cookie counts: the `/v1` API (its own
/// bearer tokens, validated there) is outside this gate altogether.
fn has_access(state: &AppState, request: &Request) -> bool {
    let codes = &state.settings.access_codes;
    if codes.is_empty() {
        return true;
    }
    let path = request.uri().path();
    // Probes and scrapers carry no cookie (`/metrics` has its own token).
    if path == "/access" || path.starts_with("/static/") || matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return true;
    }
    cookie(request.headers(), ACCESS_COOKIE)
        .is_some_and(|value| codes.iter().any(|code| secrets_match(&access_value(state, code), &value)))
}

/// Middleware: without the access code, pages go to `/access`, anything else gets 401.
pub async fn access_gate(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if has_access(&state, &request) {
        return next.run(request).await;
    }
    let wants_page = request.method() == axum::http::Method::GET
        && request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("text/html"));
    if wants_page {
        let next_path = request.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
        return see_other(&format!("/access?next={}", crate::error::percent_encode(next_path)));
    }
    (StatusCode::UNAUTHORIZED, "an access code is required").into_response()
}

#[derive(Template)]
#[template(path = "access.html")]
struct AccessPage {
    tr: Tr,
    chrome: Chrome,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct NextQuery {
    next: String,
    invite: String,
}

pub async fn access_page(visitor: Visitor, Query(query): Query<NextQuery>) -> WebResult<Response> {
    let next = safe_next(&query.next, "");
    let page = AccessPage { tr: visitor.tr, chrome: Chrome::new(visitor.theme), next, error: None };
    render(&page, visitor.tr)
}

#[derive(Deserialize)]
pub struct AccessForm {
    code: String,
    #[serde(default)]
    next: String,
}

pub async fn submit_access(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<AccessForm>,
) -> WebResult<Response> {
    let next = safe_next(&form.next, "");
    let page_with = |error: &str, status: StatusCode| {
        let error = Some(visitor.tr.t(error).into_owned());
        let page = AccessPage { tr: visitor.tr, chrome: Chrome::new(visitor.theme), next: next.clone(), error };
        render(&page, visitor.tr).map(|mut response| {
            *response.status_mut() = status;
            response
        })
    };
    if !state.allow_access_attempt(&visitor.client.ip).await {
        return page_with("limited.too_many_requests", StatusCode::TOO_MANY_REQUESTS);
    }
    let entered = Secret::new(form.code.trim());
    // Every code is compared, each in constant time: neither the time nor the order tells
    // anything about them.
    let matches = state
        .settings
        .access_codes
        .iter()
        .fold(false, |found, code| found | secrets_match(code.expose(), entered.expose()));
    if !matches {
        return page_with("auth.access_wrong", StatusCode::UNAUTHORIZED);
    }
    let mut response = see_other(&safe_next(&form.next, "/"));
    let value = access_value(&state, &entered);
    let cookie = set_cookie(ACCESS_COOKIE, &value, 365 * 24 * 3600, state.settings.secure_cookies);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

// ---- Sign-in and registration --------------------------------------------------------------

/// The single sign-on providers as (id, name), for buttons.
fn sso_choices(state: &AppState) -> Vec<(String, String)> {
    state.sso.iter().flat_map(|sso| sso.providers().iter().map(|p| (p.id.clone(), p.name.clone()))).collect()
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    tr: Tr,
    chrome: Chrome,
    next: String,
    email: String,
    error: Option<String>,
    can_register: bool,
    sso: Vec<(String, String)>,
    /// Whether passwords are used here (`AUTH_DISABLE_EMAIL_PASSWORD` unset).
    passwords: bool,
    /// People sign in with a directory's accounts too (LDAP).
    directory: bool,
}

async fn login_page(
    state: &AppState,
    visitor: &Visitor,
    next: String,
    email: String,
    error: Option<String>,
) -> WebResult<Response> {
    let mode = state.services.accounts.registration_mode().await.map_err(visitor.fail())?;
    let first = state.services.accounts.needs_first_account().await.map_err(visitor.fail())?;
    let page = LoginPage {
        tr: visitor.tr,
        chrome: Chrome::new(visitor.theme),
        next: safe_next(&next, ""),
        email,
        error,
        can_register: first || mode == RegistrationMode::Open,
        sso: sso_choices(state),
        passwords: state.services.instance.passwords_allowed(),
        directory: state.services.accounts.has_directory(),
    };
    render(&page, visitor.tr)
}

pub async fn show_login(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<NextQuery>,
) -> WebResult<Response> {
    if visitor.user.is_some() {
        return Ok(see_other(&safe_next(&query.next, "/")));
    }
    if state.services.accounts.needs_first_account().await.map_err(visitor.fail())? {
        return Ok(see_other("/register"));
    }
    login_page(&state, &visitor, query.next, String::new(), None).await
}

#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    #[serde(default)]
    next: String,
}

pub async fn submit_login(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<LoginForm>,
) -> WebResult<Response> {
    if state.allow_login(&visitor.client.ip, &form.email).await == LoginGate::Refused {
        let error = Some(visitor.tr.t("limited.too_many_requests").into_owned());
        return login_page(&state, &visitor, form.next, form.email, error).await.map(|mut response| {
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            response
        });
    }
    match state.services.accounts.sign_in(&form.email, Secret::new(form.password), &visitor.client).await {
        Ok(session) => Ok(signed_in_response(&session, &form.next, state.settings.secure_cookies)),
        Err(error) if error.kind() == loquat_core::ErrorKind::Invalid => {
            let message = Some(user_message(&error, visitor.tr));
            login_page(&state, &visitor, form.next, form.email, message).await.map(|mut response| {
                *response.status_mut() = StatusCode::UNAUTHORIZED;
                response
            })
        }
        Err(error) => Err(visitor.fail()(error)),
    }
}

#[derive(Template)]
#[template(path = "register.html")]
struct RegisterPage {
    tr: Tr,
    chrome: Chrome,
    first: bool,
    invite: String,
    name: String,
    email: String,
    error: Option<String>,
    /// Registration is not possible (closed, or invite-only without a valid invite).
    blocked: Option<String>,
    /// Single sign-on providers (id, name): an account can be made through them too, with the
    /// invite carried along.
    sso: Vec<(String, String)>,
    passwords: bool,
}

async fn register_page(
    state: &AppState,
    visitor: &Visitor,
    invite: String,
    name: String,
    email: String,
    error: Option<String>,
) -> WebResult<Response> {
    let first = state.services.accounts.needs_first_account().await.map_err(visitor.fail())?;
    let mode = state.services.accounts.registration_mode().await.map_err(visitor.fail())?;
    let blocked = if first {
        None
    } else if !invite.is_empty() {
        let valid = state.services.accounts.invite_is_valid(&invite).await.map_err(visitor.fail())?;
        (!valid).then(|| visitor.tr.t("invalid.invite_invalid").into_owned())
    } else {
        match mode {
            RegistrationMode::Open => None,
            RegistrationMode::Invite => Some(visitor.tr.t("invalid.registration_invite_only").into_owned()),
            RegistrationMode::Closed => Some(visitor.tr.t("invalid.registration_closed").into_owned()),
        }
    };
    let page = RegisterPage {
        tr: visitor.tr,
        chrome: Chrome::new(visitor.theme),
        first,
        invite,
        name,
        email,
        error,
        blocked,
        sso: sso_choices(state),
        passwords: state.services.instance.passwords_allowed(),
    };
    render(&page, visitor.tr)
}

pub async fn show_register(
    State(state): State<AppState>,
    visitor: Visitor,
    Query(query): Query<NextQuery>,
) -> WebResult<Response> {
    if visitor.user.is_some() {
        return Ok(see_other("/"));
    }
    // Without passwords there is nothing to register here but the first account (through the
    // identity provider) or an invitation carried to it.
    let first = state.services.accounts.needs_first_account().await.map_err(visitor.fail())?;
    if !state.services.instance.passwords_allowed() && !first && query.invite.is_empty() {
        return Ok(see_other("/login"));
    }
    register_page(&state, &visitor, query.invite, String::new(), String::new(), None).await
}

#[derive(Deserialize)]
pub struct RegisterForm {
    name: String,
    email: String,
    password: String,
    #[serde(default)]
    invite: String,
}

pub async fn submit_register(
    State(state): State<AppState>,
    visitor: Visitor,
    Form(form): Form<RegisterForm>,
) -> WebResult<Response> {
    if !state.allow_registration(&visitor.client.ip).await {
        return Err(crate::error::WebError::too_many_requests(visitor.tr, visitor.flavor));
    }
    let registration = Registration {
        name: form.name.clone(),
        email: form.email.clone(),
        password: Secret::new(form.password),
        invite: Some(form.invite.clone()).filter(|code| !code.trim().is_empty()),
    };
    match state.services.accounts.register(registration, &visitor.client).await {
        Ok(session) => Ok(signed_in_response(&session, "/", state.settings.secure_cookies)),
        Err(error) if error.kind() == loquat_core::ErrorKind::Invalid => {
            let message = Some(user_message(&error, visitor.tr));
            register_page(&state, &visitor, form.invite, form.name, form.email, message).await.map(|mut response| {
                *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
                response
            })
        }
        Err(error) => Err(visitor.fail()(error)),
    }
}

/// Signs this browser out (its session is deleted, the cookie cleared).
pub async fn sign_out(State(state): State<AppState>, request: Request) -> Response {
    if let Some(token) = cookie(request.headers(), SESSION_COOKIE)
        && let Err(error) = state.services.accounts.sign_out(&token).await
    {
        tracing::warn!(%error, "could not delete a session");
    }
    let mut response = see_other("/login");
    response.headers_mut().append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, state.settings.secure_cookies));
    response
}
