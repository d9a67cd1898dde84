//! The admin panel: people, invitations, instance settings (registration, users' own keys,
//! models and quotas per role), usage per user, model and day (with an SVG chart) and the
//! audit log. The services check the admin role on every call.

use std::time::Duration;

use crate::form::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use loquat_core::Secret;
use loquat_core::domain::{Policy, Quota, QuotaScope, Role, UsageGrouping, User};
use loquat_core::id::UserId;
use loquat_core::service::RegistrationMode;
use loquat_core::tools::OWN_MCP_SERVERS;
use serde::Deserialize;

use super::chat::parse_id;
use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::{AdminViewer, Viewer};
use crate::error::{WebResult, user_message};
use crate::i18n::Tr;
use crate::views::{UsageLineView, format_time, human_bytes, human_megabytes, usage_line};

pub struct UserRow {
    pub id: String,
    pub name: String,
    pub email: String,
    pub role: &'static str,
    pub disabled: bool,
    pub last_active: String,
    pub created: String,
}

fn user_row(user: &User) -> UserRow {
    UserRow {
        id: user.id.to_string(),
        name: user.name.clone(),
        email: user.email.clone().unwrap_or_default(),
        role: user.role.as_str(),
        disabled: user.disabled,
        last_active: user.last_active_at.map(format_time).unwrap_or_else(|| "—".to_owned()),
        created: format_time(user.created_at),
    }
}

/// The quota form's fields (empty = no limit).
pub struct QuotaFields {
    pub tokens_per_day: String,
    pub tokens_per_month: String,
    pub requests_per_minute: String,
    pub storage_mb: String,
}

fn quota_fields(quota: &Quota) -> QuotaFields {
    let text = |value: Option<u64>| value.map(|v| v.to_string()).unwrap_or_default();
    QuotaFields {
        tokens_per_day: text(quota.tokens_per_day),
        tokens_per_month: text(quota.tokens_per_month),
        requests_per_minute: quota.requests_per_minute.map(|v| v.to_string()).unwrap_or_default(),
        storage_mb: text(quota.storage_mb),
    }
}

/// The quota form's fields as typed.
pub struct QuotaForm {
    tokens_per_day: String,
    tokens_per_month: String,
    requests_per_minute: String,
    storage_mb: String,
}

impl QuotaForm {
    fn from_fields(form: &std::collections::HashMap<String, String>) -> Self {
        let field = |name: &str| form.get(name).cloned().unwrap_or_default();
        Self {
            tokens_per_day: field("tokens_per_day"),
            tokens_per_month: field("tokens_per_month"),
            requests_per_minute: field("requests_per_minute"),
            storage_mb: field("storage_mb"),
        }
    }

    /// The quota; an empty field is no limit, anything but a whole number is refused.
    fn quota(&self, viewer: &Viewer) -> WebResult<Quota> {
        fn number<T: std::str::FromStr>(viewer: &Viewer, field: &str, text: &str) -> WebResult<Option<T>> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse().map(Some).map_err(|_| viewer.invalid_field(field))
        }
        Ok(Quota {
            tokens_per_day: number(viewer, "tokens_per_day", &self.tokens_per_day)?,
            tokens_per_month: number(viewer, "tokens_per_month", &self.tokens_per_month)?,
            requests_per_minute: number(viewer, "requests_per_minute", &self.requests_per_minute)?,
            storage_mb: number(viewer, "storage_mb", &self.storage_mb)?,
        })
    }
}

/// A role named by a form; an unknown one is refused, not read as "user".
fn role_field(viewer: &Viewer, text: &str) -> WebResult<Role> {
    Role::parse(text).ok_or_else(|| viewer.invalid_field("role"))
}

// ---- People ---------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_users.html")]
struct UsersPage {
    tr: Tr,
    chrome: Chrome,
    /// Whether accounts have passwords here (else people come through the identity provider).
    passwords: bool,
    tab: &'static str,
    search: String,
    users: Vec<UserRow>,
    page: u32,
    has_more: bool,
    error: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ListQuery {
    q: String,
    page: u32,
    action: String,
}

async fn users_page(viewer: &Viewer, state: &AppState, query: ListQuery, error: Option<String>) -> WebResult<Response> {
    let users =
        state.services.admin.admin_list_users(viewer.user.id, &query.q, query.page).await.map_err(viewer.fail())?;
    let page = UsersPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        passwords: state.services.instance.passwords_allowed(),
        tab: "users",
        has_more: users.len() == 50,
        users: users.iter().map(user_row).collect(),
        search: query.q,
        page: query.page,
        error,
    };
    render(&page, viewer.tr)
}

pub async fn list_users(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Query(query): Query<ListQuery>,
) -> WebResult<Response> {
    users_page(&viewer, &state, query, None).await
}

#[derive(Deserialize)]
pub struct NewUserForm {
    name: String,
    email: String,
    password: String,
    role: String,
}

pub async fn create_user(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Form(form): Form<NewUserForm>,
) -> WebResult<Response> {
    let role = role_field(&viewer, &form.role)?;
    let created = state
        .services
        .admin
        .admin_create_user(viewer.user.id, &form.name, &form.email, Secret::new(form.password), role, &viewer.client)
        .await;
    match created {
        Ok(user) => Ok(see_other(&format!("/admin/users/{}", user.id))),
        Err(error) if error.kind() == loquat_core::ErrorKind::Invalid => {
            users_page(&viewer, &state, ListQuery::default(), Some(user_message(&error, viewer.tr))).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

#[derive(Template)]
#[template(path = "admin_user.html")]
struct UserPage {
    tr: Tr,
    chrome: Chrome,
    passwords: bool,
    tab: &'static str,
    user: UserRow,
    /// The named roles defined (name, whether the person has it).
    named_roles: Vec<(String, bool)>,
    is_self: bool,
    quota: QuotaFields,
    /// Where the quota form posts.
    action: String,
    usage: Vec<UsageLineView>,
    /// What the user's files hold, against their storage quota.
    storage: String,
    error: Option<String>,
}

async fn user_page(viewer: &Viewer, state: &AppState, id: UserId, error: Option<String>) -> WebResult<Response> {
    let services = &state.services;
    let user = services.admin.admin_user(viewer.user.id, id).await.map_err(viewer.fail())?;
    let quota = services.admin.admin_quota(viewer.user.id, &QuotaScope::User(id)).await.map_err(viewer.fail())?;
    let usage =
        services.usage.usage_report(viewer.user.id, UsageGrouping::Model, 30, Some(id)).await.map_err(viewer.fail())?;
    // Read after `admin_user`, which refuses anybody but an administrator.
    let (stored, storage_quota) = services.files.storage(&user).await.map_err(viewer.fail())?;
    let used = human_bytes(stored);
    let storage = match storage_quota {
        Some(mb) => viewer.tr.t_args("admin.user_storage_of", &[("used", &used), ("quota", &human_megabytes(mb))]),
        None => viewer.tr.t_with("admin.user_storage", "used", &used),
    };
    let page = UserPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        passwords: state.services.instance.passwords_allowed(),
        tab: "users",
        is_self: id == viewer.user.id,
        action: format!("/admin/users/{id}/quota"),
        named_roles: {
            let snapshot = services.instance.snapshot().await.map_err(viewer.fail())?;
            let has = |name: &String| user.named_role.as_ref() == Some(name);
            snapshot.named_roles().iter().map(|name| (name.clone(), has(name))).collect()
        },
        user: user_row(&user),
        quota: quota_fields(&quota),
        usage: usage.iter().map(usage_line).collect(),
        storage,
        error,
    };
    render(&page, viewer.tr)
}

pub async fn show_user(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: UserId = parse_id(&id, &viewer)?;
    user_page(&viewer, &state, id, None).await
}

/// One form endpoint per action on a user: `role`, `named-role`, `disable`, `enable`, `password`,
/// `quota`.
pub async fn user_action(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> WebResult<Response> {
    let id: UserId = parse_id(&id, &viewer)?;
    let services = &state.services;
    let actor = viewer.user.id;
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let result = match action.as_str() {
        "role" => {
            let role = role_field(&viewer, &field("role"))?;
            services.admin.admin_set_role(actor, id, role, &viewer.client).await
        }
        "named-role" => {
            let name = field("named_role");
            let name = Some(name.trim()).filter(|name| !name.is_empty());
            services.admin.admin_set_named_role(actor, id, name, &viewer.client).await
        }
        "disable" => services.admin.admin_set_disabled(actor, id, true, &viewer.client).await,
        "enable" => services.admin.admin_set_disabled(actor, id, false, &viewer.client).await,
        "password" => {
            let revoke = viewer.checkbox("revoke_tokens", &field("revoke_tokens"))?;
            services.admin.admin_reset_password(actor, id, Secret::new(field("password")), revoke, &viewer.client).await
        }
        "quota" => {
            let quota = QuotaForm::from_fields(&form).quota(&viewer)?;
            services.admin.admin_set_quota(actor, QuotaScope::User(id), quota, &viewer.client).await
        }
        _ => return Err(crate::error::WebError::not_found(viewer.tr, viewer.flavor)),
    };
    match result {
        Ok(()) => Ok(see_other(&format!("/admin/users/{id}"))),
        Err(error) if error.kind() == loquat_core::ErrorKind::Invalid => {
            user_page(&viewer, &state, id, Some(user_message(&error, viewer.tr))).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

// ---- Invitations ----------------------------------------------------------------------------

pub struct InviteRow {
    pub code_hash: String,
    pub role: &'static str,
    pub created: String,
    pub expires: String,
    pub status: String,
}

#[derive(Template)]
#[template(path = "admin_invites.html")]
struct InvitesPage {
    tr: Tr,
    chrome: Chrome,
    tab: &'static str,
    invites: Vec<InviteRow>,
    /// The link of an invite just created: shown this once.
    new_link: Option<String>,
}

async fn invites_page(viewer: &Viewer, state: &AppState, new_link: Option<String>) -> WebResult<Response> {
    let invites = state.services.admin.admin_invites(viewer.user.id).await.map_err(viewer.fail())?;
    let now = loquat_core::time::Timestamp::now();
    let tr = viewer.tr;
    let page = InvitesPage {
        tr,
        chrome: Chrome::new(viewer.theme),
        tab: "invites",
        invites: invites
            .iter()
            .map(|invite| InviteRow {
                code_hash: invite.code_hash.clone(),
                role: invite.role.as_str(),
                created: format_time(invite.created_at),
                expires: format_time(invite.expires_at),
                status: if invite.used_by.is_some() {
                    tr.t("admin.invite_used").into_owned()
                } else if invite.expires_at <= now {
                    tr.t("admin.invite_expired").into_owned()
                } else {
                    tr.t("admin.invite_open").into_owned()
                },
            })
            .collect(),
        new_link,
    };
    render(&page, tr)
}

pub async fn list_invites(AdminViewer(viewer): AdminViewer, State(state): State<AppState>) -> WebResult<Response> {
    invites_page(&viewer, &state, None).await
}

#[derive(Deserialize)]
pub struct InviteForm {
    role: String,
    days: u32,
}

pub async fn create_invite(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Form(form): Form<InviteForm>,
) -> WebResult<Response> {
    let role = role_field(&viewer, &form.role)?;
    if !(1..=90).contains(&form.days) {
        return Err(viewer.invalid_field("days"));
    }
    let days = u64::from(form.days);
    let invite = state
        .services
        .admin
        .admin_create_invite(viewer.user.id, role, Duration::from_secs(days * 24 * 3600), &viewer.client)
        .await
        .map_err(viewer.fail())?;
    let link = format!("{}/register?invite={}", state.settings.public_url.trim_end_matches('/'), invite.code.expose());
    invites_page(&viewer, &state, Some(link)).await
}

pub async fn delete_invite(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Path(hash): Path<String>,
) -> WebResult<Response> {
    state.services.admin.admin_delete_invite(viewer.user.id, &hash).await.map_err(viewer.fail())?;
    Ok(see_other("/admin/invites"))
}

// ---- Settings -------------------------------------------------------------------------------

pub struct RoleSettings {
    /// The policy's key in setting names: `admin`, `user`, `role:<name>`.
    pub key: String,
    /// What the card is titled.
    pub title: String,
    /// A named role (it can be deleted).
    pub named: bool,
    pub models: String,
    /// Every tool of the server (name, label), and whether the role may use it.
    pub tools: Vec<(String, String, bool)>,
    /// Whether the role may use every tool (no list chosen).
    pub all_tools: bool,
    pub quota: QuotaFields,
    pub quota_action: String,
}

#[derive(Template)]
#[template(path = "admin_settings.html")]
struct SettingsPage {
    tr: Tr,
    chrome: Chrome,
    tab: &'static str,
    registration: &'static str,
    user_keys: bool,
    sharing: bool,
    /// `off`, `metadata` or `content`.
    request_audit: &'static str,
    roles: Vec<RoleSettings>,
    /// Every model of the instance, for reference: `provider::model`.
    available: Vec<String>,
}

impl SettingsPage {
    fn modes(&self) -> Vec<(&'static str, bool)> {
        RegistrationMode::ALL.iter().map(|mode| (mode.as_str(), mode.as_str() == self.registration)).collect()
    }
}

pub async fn show_settings(AdminViewer(viewer): AdminViewer, State(state): State<AppState>) -> WebResult<Response> {
    let services = &state.services;
    services.admin.require_admin(viewer.user.id).await.map_err(viewer.fail())?;
    let mut roles = Vec::new();
    let snapshot = services.instance.snapshot().await.map_err(viewer.fail())?;
    let mut catalogue: Vec<(String, String)> =
        services.chat.tool_catalogue().into_iter().map(|(name, _)| (name.clone(), name)).collect();
    let (_, shared) = services.tools.admin_sources(viewer.user.id).await.map_err(viewer.fail())?;
    catalogue.extend(shared.into_iter().map(|view| (view.server.source_name(), view.server.name)));
    catalogue.push((OWN_MCP_SERVERS.to_owned(), viewer.tr.t("mcp.own_servers").into_owned()));
    let policies = Role::ALL
        .into_iter()
        .map(Policy::Role)
        .chain(snapshot.named_roles().iter().cloned().map(Policy::Named))
        .collect::<Vec<_>>();
    for policy in policies {
        let allowed = snapshot.tools(&policy);
        let tools = catalogue
            .iter()
            .map(|(name, label)| (name.clone(), label.clone(), allowed.is_none_or(|allowed| allowed.contains(name))))
            .collect();
        let quota = services.admin.admin_quota(viewer.user.id, &policy.quota_scope()).await.map_err(viewer.fail())?;
        let (title, named) = match &policy {
            Policy::Role(role) => (viewer.tr.t(&format!("role.{}", role.as_str())).into_owned(), false),
            Policy::Named(name) => (viewer.tr.t_with("admin.named_role_title", "name", name), true),
        };
        roles.push(RoleSettings {
            key: policy.key(),
            title,
            named,
            models: snapshot.models(&policy).join("\n"),
            tools,
            all_tools: allowed.is_none(),
            quota: quota_fields(&quota),
            quota_action: format!("/admin/settings/quota-{}", policy.key()),
        });
    }
    let available = services
        .providers
        .provider_options(viewer.user.id)
        .await
        .map_err(viewer.fail())?
        .iter()
        .filter(|option| !option.custom)
        .flat_map(|option| option.models.iter().map(move |model| format!("{}::{}", option.id, model.id)))
        .collect();
    let page = SettingsPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        tab: "settings",
        registration: services.accounts.registration_mode().await.map_err(viewer.fail())?.as_str(),
        user_keys: services.instance.user_keys_allowed().await.map_err(viewer.fail())?,
        sharing: services.instance.sharing_enabled().await.map_err(viewer.fail())?,
        request_audit: services.instance.request_audit().await.map_err(viewer.fail())?.as_str(),
        roles,
        available,
    };
    render(&page, viewer.tr)
}

/// One endpoint per setting: `registration`, `user-keys`, `sharing`, `request-audit`,
/// `models-<role>`, `tools-<role>`, `quota-<role>` (`<role>`: `admin`, `user`, `role:<name>`),
/// `named-roles` (adds one) and `delete-role:<name>`.
pub async fn save_setting(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Path(setting): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let chosen_tools: Vec<String> = pairs.iter().filter(|(name, _)| name == "tools").map(|(_, v)| v.clone()).collect();
    let form: std::collections::HashMap<String, String> = pairs.into_iter().collect();
    let services = &state.services;
    let actor = viewer.user.id;
    let field = |name: &str| form.get(name).cloned().unwrap_or_default();
    let role_of = |prefix: &str| setting.strip_prefix(prefix).and_then(Policy::parse);
    let result = if setting == "registration" {
        let mode = RegistrationMode::parse(&field("mode")).ok_or_else(|| viewer.invalid_field("mode"))?;
        services.admin.admin_set_registration(actor, mode, &viewer.client).await
    } else if setting == "user-keys" {
        services.admin.admin_set_user_keys(actor, viewer.checkbox("allowed", &field("allowed"))?, &viewer.client).await
    } else if setting == "request-audit" {
        let mode =
            loquat_core::service::RequestAudit::parse(&field("mode")).ok_or_else(|| viewer.invalid_field("mode"))?;
        services.admin.admin_set_request_audit(actor, mode, &viewer.client).await
    } else if setting == "sharing" {
        services.admin.admin_set_sharing(actor, viewer.checkbox("enabled", &field("enabled"))?, &viewer.client).await
    } else if let Some(role) = role_of("models-") {
        let patterns = field("models").lines().map(str::to_owned).collect();
        services.admin.admin_set_role_models(actor, &role, patterns, &viewer.client).await
    } else if let Some(role) = role_of("tools-") {
        let all = viewer.checkbox("all", &field("all"))?;
        let names = (!all).then_some(chosen_tools);
        services.admin.admin_set_role_tools(actor, &role, names, &viewer.client).await
    } else if let Some(role) = role_of("quota-") {
        let quota = QuotaForm::from_fields(&form).quota(&viewer)?;
        services.admin.admin_set_quota(actor, role.quota_scope(), quota, &viewer.client).await
    } else if setting == "named-roles" {
        services.admin.admin_add_named_role(actor, &field("name"), &viewer.client).await
    } else if let Some(name) = setting.strip_prefix("delete-role:") {
        services.admin.admin_delete_named_role(actor, name, &viewer.client).await
    } else {
        return Err(crate::error::WebError::not_found(viewer.tr, viewer.flavor));
    };
    result.map_err(viewer.fail())?;
    Ok(see_other("/admin/settings"))
}

// ---- Usage and audit ------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "admin_usage.html")]
struct UsagePage {
    tr: Tr,
    chrome: Chrome,
    tab: &'static str,
    group: &'static str,
    days: u32,
    lines: Vec<UsageLineView>,
    chart: String,
    /// Per person: name and email, files, size; the largest first.
    storage: Vec<StorageRow>,
    /// All files' size.
    storage_total: String,
}

pub struct StorageRow {
    pub id: String,
    pub person: String,
    pub files: u64,
    pub size: String,
}

impl UsagePage {
    fn groups(&self) -> Vec<(&'static str, bool)> {
        ["day", "user", "model"].into_iter().map(|group| (group, group == self.group)).collect()
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct UsageQuery {
    group: String,
    days: u32,
}

pub async fn show_usage(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Query(query): Query<UsageQuery>,
) -> WebResult<Response> {
    state.services.admin.require_admin(viewer.user.id).await.map_err(viewer.fail())?;
    let days = if query.days == 0 { 30 } else { query.days.min(366) };
    let (grouping, group) = match query.group.as_str() {
        "user" => (UsageGrouping::User, "user"),
        "model" => (UsageGrouping::Model, "model"),
        _ => (UsageGrouping::Day, "day"),
    };
    let services = &state.services;
    let mut lines = services.usage.usage_report(viewer.user.id, grouping, days, None).await.map_err(viewer.fail())?;
    if grouping == UsageGrouping::User {
        // Show people by name and email rather than by id.
        for line in &mut lines {
            if let Ok(id) = line.row.key.parse::<UserId>()
                && let Ok(user) = services.admin.admin_user(viewer.user.id, id).await
            {
                line.row.key = format!("{} <{}>", user.name, user.email.unwrap_or_default());
            }
        }
    }
    let per_day =
        services.usage.usage_report(viewer.user.id, UsageGrouping::Day, days, None).await.map_err(viewer.fail())?;
    let report = services.files.admin_storage_report(viewer.user.id).await.map_err(viewer.fail())?;
    let storage_total = human_bytes(report.iter().map(|(_, _, bytes)| bytes).sum());
    let storage = report
        .into_iter()
        .map(|(user, files, bytes)| StorageRow {
            id: user.id.to_string(),
            person: format!("{} <{}>", user.name, user.email.unwrap_or_default()),
            files,
            size: human_bytes(bytes),
        })
        .collect();
    let page = UsagePage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        tab: "usage",
        group,
        days,
        chart: crate::chart::daily_tokens(&per_day, days),
        lines: lines.iter().map(usage_line).collect(),
        storage,
        storage_total,
    };
    render(&page, viewer.tr)
}
