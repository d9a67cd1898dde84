//! The signed-in user's own page: name, password, sessions ("sign out everywhere"), personal
//! API tokens (shown once) and their usage and quota.

use crate::form::Form;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::Response;
use loquat_core::Secret;
use loquat_core::domain::UsageGrouping;
use serde::Deserialize;

use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::{SESSION_COOKIE, Viewer};
use crate::error::{WebResult, user_message};
use crate::i18n::Tr;
use crate::views::{UsageView, format_time, human_bytes, human_megabytes};

pub struct SessionRow {
    pub current: bool,
    pub last_seen: String,
    pub ip: String,
    pub user_agent: String,
}

pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub prefix: String,
    pub created: String,
    pub last_used: String,
    pub revoked: bool,
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    tr: Tr,
    chrome: Chrome,
    name: String,
    email: String,
    is_admin: bool,
    has_password: bool,
    /// Whether passwords are used here at all.
    passwords: bool,
    /// What the audit log keeps of the person's model requests, told to them (empty: nothing).
    request_audit: String,
    sessions: Vec<SessionRow>,
    tokens: Vec<TokenRow>,
    /// Some token is not revoked: "revoke them too" is offered.
    has_tokens: bool,
    /// A token just created: shown this once.
    new_token: Option<String>,
    usage: UsageView,
    /// What the user's files hold, and the storage quota (or "no limit").
    storage_used: String,
    storage_limit: String,
    notice: Option<String>,
    error: Option<String>,
}

async fn account_page(
    state: &AppState,
    viewer: &Viewer,
    new_token: Option<String>,
    notice: Option<String>,
    error: Option<String>,
) -> WebResult<Response> {
    let services = &state.services;
    let user = viewer.user.id;
    let tr = viewer.tr;
    let current = viewer.session.as_ref().map(|token| loquat_core::crypto::token_hash(token.expose()));
    let sessions = services.accounts.sessions(user).await.map_err(viewer.fail())?;
    let tokens = services.accounts.api_tokens(user).await.map_err(viewer.fail())?;
    let has_password = services.accounts.has_password(user).await.map_err(viewer.fail())?;
    let report =
        services.usage.usage_report(user, UsageGrouping::Model, 30, Some(user)).await.map_err(viewer.fail())?;
    let (today, month) = services.usage.usage_so_far(user).await.map_err(viewer.fail())?;
    let quota = services.usage.effective_quota(&viewer.user).await.map_err(viewer.fail())?;
    let (stored, storage_quota) = services.files.storage(&viewer.user).await.map_err(viewer.fail())?;
    let storage_limit = storage_quota.map_or_else(|| tr.t("usage.unlimited").into_owned(), human_megabytes);
    let page = AccountPage {
        tr,
        chrome: Chrome::new(viewer.theme),
        name: viewer.user.name.clone(),
        email: viewer.user.email.clone().unwrap_or_default(),
        is_admin: viewer.is_admin(),
        has_password,
        passwords: services.instance.passwords_allowed(),
        request_audit: match services.instance.request_audit().await.map_err(viewer.fail())? {
            loquat_core::service::RequestAudit::Off => String::new(),
            loquat_core::service::RequestAudit::Metadata => viewer.tr.t("account.audit_metadata").into_owned(),
            loquat_core::service::RequestAudit::Content => viewer.tr.t("account.audit_content").into_owned(),
        },
        sessions: sessions
            .into_iter()
            .map(|session| SessionRow {
                current: current.as_deref() == Some(session.token_hash.as_str()),
                last_seen: format_time(session.last_seen_at),
                ip: session.ip,
                user_agent: session.user_agent.chars().take(80).collect(),
            })
            .collect(),
        has_tokens: tokens.iter().any(|token| token.revoked_at.is_none()),
        tokens: tokens
            .into_iter()
            .map(|token| TokenRow {
                id: token.id,
                name: token.name,
                prefix: token.prefix,
                created: format_time(token.created_at),
                last_used: token.last_used_at.map(format_time).unwrap_or_else(|| "—".to_owned()),
                revoked: token.revoked_at.is_some(),
            })
            .collect(),
        new_token,
        usage: UsageView::new(report, today, month, quota, tr),
        storage_used: human_bytes(stored),
        storage_limit,
        notice,
        error,
    };
    render(&page, tr)
}

pub async fn show_account(viewer: Viewer, State(state): State<AppState>) -> WebResult<Response> {
    account_page(&state, &viewer, None, None, None).await
}

#[derive(Deserialize)]
pub struct NameForm {
    name: String,
}

pub async fn save_name(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<NameForm>,
) -> WebResult<Response> {
    match state.services.accounts.rename_user(viewer.user.id, &form.name).await {
        Ok(()) => Ok(see_other("/account")),
        Err(error) => account_page(&state, &viewer, None, None, Some(user_message(&error, viewer.tr))).await,
    }
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current: String,
    new: String,
    /// `on`: revoke the API tokens too.
    #[serde(default)]
    revoke_tokens: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct EverywhereForm {
    /// `on`: revoke the API tokens too.
    revoke_tokens: String,
}

pub async fn change_password(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<PasswordForm>,
) -> WebResult<Response> {
    let keep = viewer.session.as_ref().map(|token| token.expose().to_owned());
    let result = state
        .services
        .accounts
        .change_password(
            viewer.user.id,
            Secret::new(form.current),
            Secret::new(form.new),
            keep.as_deref(),
            viewer.checkbox("revoke_tokens", &form.revoke_tokens)?,
            &viewer.client,
        )
        .await;
    match result {
        Ok(()) => {
            account_page(&state, &viewer, None, Some(viewer.tr.t("account.password_changed").into_owned()), None).await
        }
        Err(error) => account_page(&state, &viewer, None, None, Some(user_message(&error, viewer.tr))).await,
    }
}

/// Ends every session of the user, this one included.
pub async fn sign_out_everywhere(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<EverywhereForm>,
) -> WebResult<Response> {
    let revoke = viewer.checkbox("revoke_tokens", &form.revoke_tokens)?;
    state.services.accounts.sign_out_everywhere(viewer.user.id, revoke, &viewer.client).await.map_err(viewer.fail())?;
    let mut response = see_other("/login");
    let cookie = super::auth::set_cookie(SESSION_COOKIE, "", 0, state.settings.secure_cookies);
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

#[derive(Deserialize)]
pub struct TokenForm {
    name: String,
}

pub async fn create_token(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<TokenForm>,
) -> WebResult<Response> {
    match state.services.accounts.create_api_token(viewer.user.id, &form.name, &viewer.client).await {
        Ok((secret, _)) => account_page(&state, &viewer, Some(secret.expose().to_owned()), None, None).await,
        Err(error) => account_page(&state, &viewer, None, None, Some(user_message(&error, viewer.tr))).await,
    }
}

pub async fn revoke_token(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    state.services.accounts.revoke_api_token(viewer.user.id, &id, &viewer.client).await.map_err(viewer.fail())?;
    Ok(see_other("/account"))
}
