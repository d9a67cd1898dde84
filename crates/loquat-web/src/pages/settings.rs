//! The settings page: language and theme, the server's providers (read only) and the user's own
//! OpenAI-compatible providers (keys are write-only: stored encrypted, never shown again).

use crate::form::Form;
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use loquat_core::domain::{Locale, Protocol, ProviderDraft, Theme};
use loquat_core::id::ProviderSettingId;
use loquat_core::service::ProviderSettingView;
use loquat_core::{CoreError, Secret};
use serde::Deserialize;

use super::chat::parse_id;
use super::{Chrome, render, safe_next, see_other};
use crate::AppState;
use crate::context::Viewer;
use crate::error::{Flavor, WebResult, user_message};
use crate::i18n::Tr;

#[derive(Debug, Clone)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

#[derive(Debug, Clone)]
pub struct ServerProviderRow {
    pub id: String,
    pub name: String,
    /// Empty for members (the server's addresses are the administrator's business).
    pub base_url: String,
    pub model_count: usize,
    /// Offered in the model picker now.
    pub offered: bool,
    /// Needs a key nobody has given yet.
    pub needs_key: bool,
    pub user_has_key: bool,
    pub user_base_url: String,
    /// An Ollama server and an administrator: models can be downloaded from here.
    pub can_pull: bool,
}

#[derive(Debug, Clone)]
pub struct CustomProviderRow {
    pub id: String,
    pub name: String,
    pub protocol: &'static str,
    pub base_url: String,
    pub enabled: bool,
    pub has_key: bool,
    pub model_count: usize,
    pub can_pull: bool,
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    tr: Tr,
    chrome: Chrome,
    locales: Vec<Choice>,
    themes: Vec<Choice>,
    server_providers: Vec<ServerProviderRow>,
    custom_providers: Vec<CustomProviderRow>,
    allow_user_keys: bool,
    form: ProviderForm,
    error: Option<String>,
}

impl SettingsPage {
    /// The provider form on this page creates a new provider.
    fn form_id(&self) -> &str {
        ""
    }

    fn key_stored(&self) -> bool {
        false
    }
}

#[derive(Template)]
#[template(path = "provider_form.html")]
struct ProviderPage {
    tr: Tr,
    chrome: Chrome,
    id: String,
    has_key: bool,
    form: ProviderForm,
    error: Option<String>,
}

impl ProviderPage {
    fn form_id(&self) -> &str {
        &self.id
    }

    fn key_stored(&self) -> bool {
        self.has_key
    }
}

/// The provider form's fields.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProviderForm {
    name: String,
    base_url: String,
    /// Empty keeps the stored key.
    api_key: String,
    /// `on` removes the stored key.
    remove_key: String,
    model_list: String,
    /// One of the protocol codes (`openai`, `anthropic`, `gemini`, `ollama`, `azure`).
    protocol: String,
    /// Azure's `api-version`.
    api_version: String,
    /// `on` when checked (HTML checkbox).
    enabled: String,
    /// For probes of a saved provider whose key field was left empty.
    id: String,
}

impl ProviderForm {
    fn new_default() -> Self {
        Self { enabled: "on".into(), protocol: "openai".into(), ..Self::default() }
    }

    /// The protocol choices of the form, with this form's selected.
    pub fn protocols(&self) -> Vec<(&'static str, bool)> {
        Protocol::ALL.iter().map(|p| (p.as_str(), p.as_str() == self.protocol)).collect()
    }

    fn from_view(view: &ProviderSettingView) -> Self {
        let setting = &view.setting;
        Self {
            name: setting.name.clone(),
            base_url: setting.base_url.clone(),
            model_list: setting.model_list.clone(),
            protocol: setting.protocol.as_str().to_owned(),
            api_version: setting.api_version.clone(),
            enabled: if setting.enabled { "on".into() } else { String::new() },
            ..Self::default()
        }
    }

    /// The provider the form describes; a value no form sends is a 400.
    fn draft(&self, viewer: &Viewer) -> WebResult<ProviderDraft> {
        let api_key = if viewer.checkbox("remove_key", &self.remove_key)? {
            Some(Secret::default())
        } else if self.api_key.trim().is_empty() {
            None
        } else {
            Some(Secret::new(self.api_key.trim()))
        };
        Ok(ProviderDraft {
            name: self.name.clone(),
            // No protocol named: OpenAI-compatible, as most servers are.
            protocol: match self.protocol.trim() {
                "" => Protocol::OpenAi,
                code => Protocol::parse(code).ok_or_else(|| viewer.invalid_field("protocol"))?,
            },
            base_url: self.base_url.clone(),
            api_key,
            model_list: self.model_list.clone(),
            api_version: self.api_version.clone(),
            enabled: viewer.checkbox("enabled", &self.enabled)?,
        })
    }

    /// The form to show again after an error: never echo a key back.
    fn without_key(mut self) -> Self {
        self.api_key.clear();
        self
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled == "on"
    }
}

async fn settings(viewer: &Viewer, state: &AppState, form: ProviderForm, error: Option<String>) -> WebResult<Response> {
    let user = viewer.user.id;
    let tr = viewer.tr;
    let options = state.services.providers.provider_options(user).await.map_err(viewer.fail())?;
    let custom = state.services.providers.provider_settings(user).await.map_err(viewer.fail())?;
    let servers = state.services.providers.server_provider_views(user).await.map_err(viewer.fail())?;
    let mut locales = vec![Choice {
        value: String::new(),
        label: tr.t("settings.language_auto").into_owned(),
        selected: viewer.user.locale.is_none(),
    }];
    locales.extend(Locale::ALL.iter().map(|locale| Choice {
        value: locale.code().to_owned(),
        label: locale.native_name().to_owned(),
        selected: viewer.user.locale == Some(*locale),
    }));
    let themes = [Theme::System, Theme::Light, Theme::Dark]
        .iter()
        .map(|theme| Choice {
            value: theme.code().to_owned(),
            label: tr.t(&format!("theme.{}", theme.code())).into_owned(),
            selected: viewer.theme == *theme,
        })
        .collect();
    let page = SettingsPage {
        tr,
        chrome: Chrome::new(viewer.theme),
        locales,
        themes,
        server_providers: servers
            .iter()
            .map(|server| ServerProviderRow {
                id: server.id.clone(),
                name: server.name.clone(),
                base_url: server.base_url.clone().unwrap_or_default(),
                model_count: server.models.len(),
                offered: server.offered,
                needs_key: server.key_required && !server.server_has_key && !server.user_has_key,
                user_has_key: server.user_has_key,
                user_base_url: server.user_base_url.clone(),
                can_pull: server.protocol == Protocol::Ollama && viewer.is_admin(),
            })
            .collect(),
        custom_providers: custom
            .iter()
            .map(|view| CustomProviderRow {
                id: view.setting.id.to_string(),
                name: view.setting.name.clone(),
                protocol: view.setting.protocol.as_str(),
                base_url: view.setting.base_url.clone(),
                enabled: view.setting.enabled,
                has_key: view.has_key,
                model_count: options
                    .iter()
                    .find(|option| option.id == view.setting.id.to_string())
                    .map_or(0, |option| option.models.len()),
                can_pull: view.setting.protocol == Protocol::Ollama,
            })
            .collect(),
        allow_user_keys: state.services.instance.user_keys_allowed().await.map_err(viewer.fail())?,
        form,
        error,
    };
    render(&page, tr)
}

pub async fn settings_page(viewer: Viewer, State(state): State<AppState>) -> WebResult<Response> {
    settings(&viewer, &state, ProviderForm::new_default(), None).await
}

#[derive(Deserialize)]
pub struct PreferencesForm {
    #[serde(default)]
    locale: String,
    #[serde(default)]
    theme: String,
}

pub async fn save_preferences(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<PreferencesForm>,
) -> WebResult<Response> {
    // An empty language follows the browser; anything else must be one we speak.
    let locale = match form.locale.trim() {
        "" => None,
        code => Some(Locale::parse(code).ok_or_else(|| viewer.invalid_field("locale"))?),
    };
    let theme = Theme::parse(&form.theme).ok_or_else(|| viewer.invalid_field("theme"))?;
    state.services.accounts.update_preferences(viewer.user.id, locale, theme).await.map_err(viewer.fail())?;
    Ok(see_other("/settings"))
}

#[derive(Deserialize)]
pub struct ThemeForm {
    #[serde(default)]
    back: String,
}

/// The theme button: system → light → dark → system.
pub async fn cycle_theme(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<ThemeForm>,
) -> WebResult<Response> {
    let next = match viewer.theme {
        Theme::System => Theme::Light,
        Theme::Light => Theme::Dark,
        Theme::Dark => Theme::System,
    };
    state
        .services
        .accounts
        .update_preferences(viewer.user.id, viewer.user.locale, next)
        .await
        .map_err(viewer.fail())?;
    if viewer.flavor == Flavor::Json {
        return Ok(Json(serde_json::json!({ "theme": next.code() })).into_response());
    }
    Ok(see_other(&safe_next(&form.back, "/")))
}

pub async fn create_provider(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<ProviderForm>,
) -> WebResult<Response> {
    match state.services.providers.create_provider(viewer.user.id, form.draft(&viewer)?).await {
        Ok(_) => Ok(see_other("/settings")),
        Err(error @ CoreError::Invalid { .. }) => {
            let message = user_message(&error, viewer.tr);
            settings(&viewer, &state, form.without_key(), Some(message)).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

pub async fn edit_provider_page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: ProviderSettingId = parse_id(&id, &viewer)?;
    let view = state.services.providers.provider_setting(viewer.user.id, id).await.map_err(viewer.fail())?;
    let page = ProviderPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        id: id.to_string(),
        has_key: view.has_key,
        form: ProviderForm::from_view(&view),
        error: None,
    };
    render(&page, viewer.tr)
}

pub async fn update_provider(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<ProviderForm>,
) -> WebResult<Response> {
    let id: ProviderSettingId = parse_id(&id, &viewer)?;
    match state.services.providers.update_provider(viewer.user.id, id, form.draft(&viewer)?).await {
        Ok(_) => Ok(see_other("/settings")),
        Err(error @ CoreError::Invalid { .. }) => {
            let message = user_message(&error, viewer.tr);
            let view = state.services.providers.provider_setting(viewer.user.id, id).await.map_err(viewer.fail())?;
            let page = ProviderPage {
                tr: viewer.tr,
                chrome: Chrome::new(viewer.theme),
                id: id.to_string(),
                has_key: view.has_key,
                form: form.without_key(),
                error: Some(message),
            };
            render(&page, viewer.tr)
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

pub async fn delete_provider(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: ProviderSettingId = parse_id(&id, &viewer)?;
    state.services.providers.delete_provider(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other("/settings"))
}

/// "Check connection" and "fetch model list": asks the provider for its models with the form's
/// values. Answers JSON for the script; without script, a short page.
pub async fn probe_provider(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<ProviderForm>,
) -> WebResult<Response> {
    let stored: Option<ProviderSettingId> = if form.id.is_empty() { None } else { Some(parse_id(&form.id, &viewer)?) };
    let result = state.services.providers.probe_provider(viewer.user.id, stored, &form.draft(&viewer)?).await;
    let tr = viewer.tr;
    let (ok, message, models) = match result {
        Ok(models) => (true, tr.t_with("provider.check_ok", "count", &models.len().to_string()), models),
        Err(error @ (CoreError::Provider(_) | CoreError::Invalid { .. })) => {
            (false, user_message(&error, tr), Vec::new())
        }
        Err(error) => return Err(viewer.fail()(error)),
    };
    if viewer.flavor == Flavor::Json {
        return Ok(Json(serde_json::json!({ "ok": ok, "message": message, "models": models })).into_response());
    }
    let status = if ok { axum::http::StatusCode::OK } else { axum::http::StatusCode::BAD_GATEWAY };
    Ok((status, axum::response::Html(super::error_page(tr, status, &message))).into_response())
}

#[derive(Deserialize)]
pub struct ServerKeyForm {
    #[serde(default)]
    api_key: String,
    #[serde(default)]
    base_url: String,
    /// `on` removes the stored key.
    #[serde(default)]
    remove_key: String,
}

/// A user's own key (and base URL) for one of the server's providers.
pub async fn save_server_provider_key(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<ServerKeyForm>,
) -> WebResult<Response> {
    let api_key = if viewer.checkbox("remove_key", &form.remove_key)? {
        Some(Secret::default())
    } else if form.api_key.trim().is_empty() {
        None
    } else {
        Some(Secret::new(form.api_key.trim()))
    };
    match state.services.providers.set_provider_override(viewer.user.id, &id, api_key, &form.base_url).await {
        Ok(()) => Ok(see_other("/settings")),
        Err(error @ CoreError::Invalid { .. }) => {
            let message = user_message(&error, viewer.tr);
            settings(&viewer, &state, ProviderForm::new_default(), Some(message)).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

#[derive(Deserialize)]
pub struct PullForm {
    provider: String,
    model: String,
}

/// Downloads a model onto an Ollama provider; progress streams as server-sent events
/// (`progress` with status/completed/total, then `done` or `failed`).
pub async fn pull_model(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(form): Form<PullForm>,
) -> WebResult<Response> {
    use axum::response::sse::{Event, Sse};
    use futures_util::StreamExt;

    let progress = state
        .services
        .providers
        .pull_model(viewer.user.id, &form.provider, &form.model)
        .await
        .map_err(viewer.fail())?;
    let tr = viewer.tr;
    let events = progress.map(move |item| {
        let event = match item {
            Ok(step) if step.status == "success" => Event::default().event("done").data(tr.t("provider.pull_done")),
            Ok(step) => Event::default().event("progress").data(
                serde_json::json!({ "status": step.status, "completed": step.completed, "total": step.total })
                    .to_string(),
            ),
            Err(error) => Event::default().event("failed").data(user_message(&CoreError::Provider(error), tr)),
        };
        Ok::<_, std::convert::Infallible>(event)
    });
    Ok(Sse::new(events).into_response())
}
