//! Creating, editing and deleting assistants, and the chat header's quick model switch.

use crate::form::Form;
use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use loquat_core::domain::{AssistantConfig, ModelParams};
use loquat_core::id::{AssistantId, KnowledgeBaseId};
use loquat_core::llm::ReasoningEffort;
use serde::Deserialize;

use super::chat::parse_id;
use super::{Chrome, render, safe_next, see_other};
use crate::AppState;
use crate::context::Viewer;
use crate::error::{Flavor, WebError, WebResult, user_message};
use crate::i18n::Tr;
use crate::views::{ModelGroup, model_groups};

/// The assistant form's fields, as text so a half-filled form can be shown again.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct AssistantForm {
    title: String,
    description: String,
    /// Comma-separated.
    tags: String,
    /// The voice answers are read aloud in; empty for the server's.
    voice: String,
    /// `on` when the messages past the history limit are summarised.
    compress_history: String,
    /// `provider::model` that writes the summary; empty for the assistant's own.
    summary_model: String,
    avatar: String,
    system_role: String,
    /// `provider::model`, empty for "the default".
    model: String,
    /// `provider::model` tried when the model fails before answering; empty for none.
    fallback: String,
    temperature: String,
    top_p: String,
    presence_penalty: String,
    frequency_penalty: String,
    max_tokens: String,
    /// `low`, `medium`, `high`, or empty for "not sent".
    reasoning_effort: String,
    history_limit: String,
    input_template: String,
    opening_message: String,
    /// One question per line.
    opening_questions: String,
    /// The knowledge bases it answers from (ids; repeated `knowledge` fields).
    #[serde(skip)]
    knowledge: Vec<String>,
    /// The tools its model may call (names; repeated `tools` fields).
    #[serde(skip)]
    tools: Vec<String>,
}

impl AssistantForm {
    pub fn effort_is(&self, value: &str) -> bool {
        self.reasoning_effort == value
    }

    pub fn has_knowledge(&self, id: &str) -> bool {
        self.knowledge.iter().any(|k| k == id)
    }

    pub fn has_tool(&self, name: &str) -> bool {
        self.tools.iter().any(|t| t == name)
    }

    /// The form from its fields: the repeated `knowledge` checkboxes apart, the rest by name.
    fn from_pairs(pairs: Vec<(String, String)>, viewer: &Viewer) -> WebResult<Self> {
        let (lists, fields): (Vec<_>, Vec<_>) =
            pairs.into_iter().partition(|(name, _)| name == "knowledge" || name == "tools");
        let fields = serde::de::value::MapDeserializer::<_, serde::de::value::Error>::new(fields.into_iter());
        let mut form = Self::deserialize(fields).map_err(|error| {
            let message = viewer.tr.t_with("error.bad_form", "detail", &error.to_string());
            WebError::bad_request(message, viewer.tr, viewer.flavor)
        })?;
        for (name, value) in lists {
            if name == "tools" { form.tools.push(value) } else { form.knowledge.push(value) }
        }
        Ok(form)
    }

    /// The knowledge bases checked, parsed.
    fn knowledge_ids(&self, viewer: &Viewer) -> WebResult<Vec<KnowledgeBaseId>> {
        self.knowledge.iter().map(|id| parse_id(id, viewer)).collect()
    }

    fn from_config(config: &AssistantConfig) -> Self {
        let number = |value: Option<f32>| value.map(|v| v.to_string()).unwrap_or_default();
        Self {
            title: config.title.clone(),
            description: config.description.clone(),
            tags: config.tags.join(", "),
            voice: config.voice.clone(),
            compress_history: if config.compress_history { "on".to_owned() } else { String::new() },
            summary_model: config.summary_model.clone(),
            avatar: config.avatar.clone(),
            system_role: config.system_role.clone(),
            model: if config.model.is_empty() {
                String::new()
            } else {
                format!("{}::{}", config.provider, config.model)
            },
            fallback: if config.fallback_model.is_empty() {
                String::new()
            } else {
                format!("{}::{}", config.fallback_provider, config.fallback_model)
            },
            temperature: number(config.params.temperature),
            top_p: number(config.params.top_p),
            presence_penalty: number(config.params.presence_penalty),
            frequency_penalty: number(config.params.frequency_penalty),
            max_tokens: config.params.max_tokens.map(|v| v.to_string()).unwrap_or_default(),
            reasoning_effort: config.reasoning_effort.map(|effort| effort.as_str().to_owned()).unwrap_or_default(),
            history_limit: config.history_limit.map(|v| v.to_string()).unwrap_or_default(),
            input_template: config.input_template.clone(),
            opening_message: config.opening_message.clone(),
            opening_questions: config.opening_questions.join("\n"),
            knowledge: Vec::new(),
            tools: config.tools.clone(),
        }
    }

    /// Parses the form; the error names the field in the viewer's language.
    fn to_config(&self, tr: Tr) -> Result<AssistantConfig, String> {
        let float = |text: &str, field: &str| -> Result<Option<f32>, String> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<f32>().map(Some).map_err(|_| tr.t_with("assistant.error_number", "field", field))
        };
        let integer = |text: &str, field: &str| -> Result<Option<u32>, String> {
            let text = text.trim();
            if text.is_empty() {
                return Ok(None);
            }
            text.parse::<u32>().map(Some).map_err(|_| tr.t_with("assistant.error_number", "field", field))
        };
        // `provider::model`, or empty for the instance's default.
        let choice = |text: &str, field: &str| -> Result<(String, String), String> {
            match text.split_once("::") {
                Some((provider, model)) => Ok((provider.to_owned(), model.to_owned())),
                None if text.trim().is_empty() => Ok((String::new(), String::new())),
                None => Err(tr.t_with("error.invalid_field", "field", field)),
            }
        };
        let (provider, model) = choice(&self.model, "model")?;
        let (fallback_provider, fallback_model) = choice(&self.fallback, "fallback")?;
        Ok(AssistantConfig {
            fallback_provider,
            fallback_model,
            title: self.title.trim().to_owned(),
            description: self.description.trim().to_owned(),
            avatar: self.avatar.trim().chars().take(8).collect(),
            system_role: self.system_role.clone(),
            provider,
            model,
            params: ModelParams {
                temperature: float(&self.temperature, "temperature")?,
                top_p: float(&self.top_p, "top_p")?,
                presence_penalty: float(&self.presence_penalty, "presence_penalty")?,
                frequency_penalty: float(&self.frequency_penalty, "frequency_penalty")?,
                max_tokens: integer(&self.max_tokens, "max_tokens")?,
            },
            reasoning_effort: match self.reasoning_effort.as_str() {
                "" => None,
                "low" => Some(ReasoningEffort::Low),
                "medium" => Some(ReasoningEffort::Medium),
                "high" => Some(ReasoningEffort::High),
                _ => return Err(tr.t_with("error.invalid_field", "field", "reasoning_effort")),
            },
            history_limit: integer(&self.history_limit, "history_limit")?,
            input_template: self.input_template.clone(),
            opening_message: self.opening_message.clone(),
            opening_questions: self
                .opening_questions
                .lines()
                .map(str::trim)
                .filter(|line| !line.is_empty())
                .map(str::to_owned)
                .collect(),
            tools: self.tools.iter().take(50).cloned().collect(),
            tags: self
                .tags
                .split([',', '，'])
                .map(str::trim)
                .filter(|tag| !tag.is_empty())
                .map(|tag| tag.chars().take(40).collect())
                .take(20)
                .collect(),
            // The list's order is kept by the service, not the form.
            pinned: false,
            position: 0,
            voice: self.voice.trim().chars().filter(|ch| ch.is_ascii_alphanumeric() || *ch == '-').take(40).collect(),
            compress_history: self.compress_history == "on",
            summary_model: if self.summary_model.contains("::") { self.summary_model.clone() } else { String::new() },
        })
    }
}

#[derive(Template)]
#[template(path = "assistant_form.html")]
struct AssistantPage {
    tr: Tr,
    chrome: Chrome,
    /// `None` for a new assistant.
    id: Option<String>,
    is_default: bool,
    form: AssistantForm,
    model_groups: Vec<ModelGroup>,
    fallback_groups: Vec<ModelGroup>,
    summary_groups: Vec<ModelGroup>,
    /// The knowledge bases the user can choose from: id, name, shared with them.
    bases: Vec<(String, String, bool)>,
    /// The server's tools: name, description.
    tools: Vec<loquat_core::tools::ToolOffer>,
    error: Option<String>,
}

async fn assistant_page(
    viewer: &Viewer,
    state: &AppState,
    id: Option<AssistantId>,
    is_default: bool,
    form: AssistantForm,
    error: Option<String>,
) -> WebResult<Response> {
    let providers = state.services.providers.provider_options(viewer.user.id).await.map_err(viewer.fail())?;
    let (provider, model) = form.model.split_once("::").unwrap_or(("", ""));
    let (fallback_provider, fallback_model) = form.fallback.split_once("::").unwrap_or(("", ""));
    let bases = state.services.knowledge.list(viewer.user.id).await.map_err(viewer.fail())?;
    let bases = bases.into_iter().map(|b| (b.id.to_string(), b.name, b.user_id != viewer.user.id)).collect();
    let page = AssistantPage {
        bases,
        tools: state.services.chat.tools_for(&viewer.user).await.map_err(viewer.fail())?,
        fallback_groups: model_groups(&providers, fallback_provider, fallback_model, viewer.tr),
        summary_groups: {
            let (provider, model) = form.summary_model.split_once("::").unwrap_or(("", ""));
            model_groups(&providers, provider, model, viewer.tr)
        },
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        id: id.map(|id| id.to_string()),
        is_default,
        model_groups: model_groups(&providers, provider, model, viewer.tr),
        form,
        error,
    };
    render(&page, viewer.tr)
}

pub async fn new_assistant_page(viewer: Viewer, State(state): State<AppState>) -> WebResult<Response> {
    let form = AssistantForm::from_config(&AssistantConfig::default());
    assistant_page(&viewer, &state, None, false, form, None).await
}

pub async fn create_assistant(
    viewer: Viewer,
    State(state): State<AppState>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let form = AssistantForm::from_pairs(pairs, &viewer)?;
    let bases = form.knowledge_ids(&viewer)?;
    let config = match form.to_config(viewer.tr) {
        Ok(config) => config,
        Err(message) => return assistant_page(&viewer, &state, None, false, form, Some(message)).await,
    };
    match state.services.assistants.create_assistant(viewer.user.id, config).await {
        Ok(assistant) => {
            let knowledge = &state.services.knowledge;
            knowledge.set_assistant_bases(viewer.user.id, assistant.id, &bases).await.map_err(viewer.fail())?;
            Ok(see_other(&format!("/chat/{}", assistant.id)))
        }
        Err(error) if error.kind() == loquat_core::ErrorKind::Invalid => {
            assistant_page(&viewer, &state, None, false, form, Some(user_message(&error, viewer.tr))).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

pub async fn edit_assistant_page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: AssistantId = parse_id(&id, &viewer)?;
    let assistant = state.services.assistants.assistant(viewer.user.id, id).await.map_err(viewer.fail())?;
    let mut form = AssistantForm::from_config(&assistant.config);
    let bases = state.services.knowledge.assistant_bases(viewer.user.id, id).await.map_err(viewer.fail())?;
    form.knowledge = bases.iter().map(ToString::to_string).collect();
    assistant_page(&viewer, &state, Some(id), assistant.is_default, form, None).await
}

pub async fn update_assistant(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> WebResult<Response> {
    let id: AssistantId = parse_id(&id, &viewer)?;
    let form = AssistantForm::from_pairs(pairs, &viewer)?;
    let bases = form.knowledge_ids(&viewer)?;
    let assistant = state.services.assistants.assistant(viewer.user.id, id).await.map_err(viewer.fail())?;
    let config = match form.to_config(viewer.tr) {
        Ok(config) => config,
        Err(message) => {
            return assistant_page(&viewer, &state, Some(id), assistant.is_default, form, Some(message)).await;
        }
    };
    // The knowledge bases first: a refused list (too long, not readable) changes nothing.
    let knowledge = &state.services.knowledge;
    knowledge.set_assistant_bases(viewer.user.id, id, &bases).await.map_err(viewer.fail())?;
    match state.services.assistants.update_assistant(viewer.user.id, id, config).await {
        Ok(_) => Ok(see_other(&format!("/chat/{id}"))),
        Err(error) if error.kind() == loquat_core::ErrorKind::Invalid => {
            let message = user_message(&error, viewer.tr);
            assistant_page(&viewer, &state, Some(id), assistant.is_default, form, Some(message)).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

pub async fn delete_assistant(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: AssistantId = parse_id(&id, &viewer)?;
    state.services.assistants.delete_assistant(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other("/"))
}

#[derive(Deserialize)]
pub struct ModelForm {
    model: String,
    #[serde(default)]
    back: String,
}

/// Switches the assistant's model from the chat header (applies to the next answer).
pub async fn set_assistant_model(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<ModelForm>,
) -> WebResult<Response> {
    let id: AssistantId = parse_id(&id, &viewer)?;
    let assistant = state.services.assistants.assistant(viewer.user.id, id).await.map_err(viewer.fail())?;
    let Some((provider, model)) = form.model.split_once("::") else {
        return Err(WebError::bad_request(viewer.tr.t("assistant.error_model"), viewer.tr, viewer.flavor));
    };
    let mut config = assistant.config;
    config.provider = provider.to_owned();
    config.model = model.to_owned();
    state.services.assistants.update_assistant(viewer.user.id, id, config).await.map_err(viewer.fail())?;
    if viewer.flavor == Flavor::Json {
        return Ok(axum::http::StatusCode::NO_CONTENT.into_response());
    }
    Ok(see_other(&safe_next(&form.back, &format!("/chat/{id}"))))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ArrangeForm {
    /// `1` to pin, `0` to unpin (`/pin`); `up` or `down` (`/move`).
    value: String,
    back: String,
}

/// `POST /assistants/{id}/pin` (`value` 1 or 0) and `POST /assistants/{id}/move` (`value` up or
/// down): its place in the list.
pub async fn arrange_assistant(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<ArrangeForm>,
) -> WebResult<Response> {
    let id: AssistantId = parse_id(&id, &viewer)?;
    let assistants = &state.services.assistants;
    let user = viewer.user.id;
    match (action.as_str(), form.value.as_str()) {
        ("pin", value) => assistants.set_assistant_pinned(user, id, value == "1").await,
        ("move", "up") => assistants.move_assistant(user, id, true).await,
        ("move", "down") => assistants.move_assistant(user, id, false).await,
        _ => return Err(WebError::not_found(viewer.tr, viewer.flavor)),
    }
    .map_err(viewer.fail())?;
    Ok(see_other(&safe_next(&form.back, &format!("/chat/{id}"))))
}
