//! The admin panel's Knowledge tab (the embedding model, documents by state, knowledge bases
//! shared across the instance) and Tools tab (built-in tools, MCP servers and their state).
//! The services check the admin role on every call.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::chat::parse_id;
use super::mcp::{AdminAddForm, ServerRow};
use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::{AdminViewer, Viewer};
use crate::error::{WebResult, user_message};
use crate::form::Form;
use crate::i18n::Tr;

// ---- Knowledge ------------------------------------------------------------------------------

/// One line of the documents' summary.
pub struct DocumentCount {
    pub state: String,
    pub state_class: &'static str,
    pub model: String,
    pub count: u64,
}

pub struct SharedBaseRow {
    pub id: String,
    pub name: String,
    pub owner: String,
    pub shared_with: String,
}

#[derive(Template)]
#[template(path = "admin_knowledge.html")]
struct KnowledgePage {
    tr: Tr,
    chrome: Chrome,
    tab: &'static str,
    notice: Option<String>,
    error: Option<String>,
    /// `configured`, `none` or `model`.
    choice: &'static str,
    /// The configured model's name, if any.
    configured: Option<String>,
    /// The model typed in the form (the chosen one, or what was just refused).
    model: String,
    /// The model in use, or `None`: keyword search only.
    current: Option<String>,
    /// The server's providers, whose ids a model is named with.
    providers: String,
    documents: Vec<DocumentCount>,
    shared: Vec<SharedBaseRow>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct KnowledgeQuery {
    queued: Option<u64>,
    unshared: Option<String>,
}

/// `GET /admin/knowledge`.
pub async fn show_knowledge(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Query(query): Query<KnowledgeQuery>,
) -> WebResult<Response> {
    let tr = viewer.tr;
    let notice = match (query.queued, query.unshared) {
        (Some(count), _) => Some(tr.t_with("admin.embedding_saved", "count", &count.to_string())),
        (_, Some(_)) => Some(tr.t("admin.knowledge_unshared").into_owned()),
        _ => None,
    };
    knowledge_page(&state, &viewer, notice, None, None).await
}

async fn knowledge_page(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<String>,
    error: Option<String>,
    typed: Option<String>,
) -> WebResult<Response> {
    use loquat_core::service::EmbeddingChoice;
    let tr = viewer.tr;
    let overview = state.services.admin.admin_knowledge(viewer.user.id).await.map_err(viewer.fail())?;
    let (choice, chosen) = match &overview.choice {
        EmbeddingChoice::Configured => ("configured", String::new()),
        EmbeddingChoice::KeywordsOnly => ("none", String::new()),
        EmbeddingChoice::Model(model) => ("model", model.name()),
    };
    let (choice, model) = match typed {
        Some(typed) => ("model", typed),
        None => (choice, chosen),
    };
    let documents = overview
        .documents
        .iter()
        .map(|(state, model, count)| {
            let (label, state_class) = match state {
                loquat_core::domain::IngestState::Queued => (tr.t("knowledge.state_queued"), "pending"),
                loquat_core::domain::IngestState::Reading | loquat_core::domain::IngestState::Indexing => {
                    (tr.t("admin.documents_reading"), "pending")
                }
                loquat_core::domain::IngestState::Ready => (tr.t("admin.documents_ready"), "ok"),
                loquat_core::domain::IngestState::Failed => (tr.t("admin.documents_failed"), "failed"),
            };
            let model = match (state, model) {
                (loquat_core::domain::IngestState::Ready, None) => tr.t("admin.keywords_only").into_owned(),
                (_, model) => model.clone().unwrap_or_default(),
            };
            DocumentCount { state: label.into_owned(), state_class, model, count: *count }
        })
        .collect();
    let shared = overview
        .shared
        .into_iter()
        .map(|(base, owner)| SharedBaseRow {
            id: base.id.to_string(),
            shared_with: match base.shared_with.as_deref() {
                Some("everyone") => tr.t("knowledge.share_everyone").into_owned(),
                Some("admin") => tr.t("knowledge.share_admins").into_owned(),
                _ => tr.t("knowledge.share_members").into_owned(),
            },
            name: base.name,
            owner: owner.email.map_or(owner.name.clone(), |email| format!("{} <{email}>", owner.name)),
        })
        .collect();
    let options = state.services.providers.provider_options(viewer.user.id).await.map_err(viewer.fail())?;
    let providers: Vec<&str> = options.iter().filter(|o| !o.custom).map(|o| o.id.as_str()).collect();
    let page = KnowledgePage {
        providers: providers.join(", "),
        tr,
        chrome: Chrome::new(viewer.theme),
        tab: "knowledge",
        notice,
        error,
        choice,
        configured: overview.configured.as_ref().map(|m| m.name()),
        model,
        current: overview.current.as_ref().map(|m| m.name()),
        documents,
        shared,
    };
    render(&page, tr)
}

/// `POST /admin/knowledge/embedding`: `choice` is `configured`, `none` or `model` (then `model`
/// is `provider/model`).
pub async fn save_embedding_model(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> WebResult<Response> {
    use loquat_core::service::{EmbeddingChoice, EmbeddingModel};
    let typed = form.get("model").map(|m| m.trim().to_owned()).unwrap_or_default();
    let choice = match form.get("choice").map(String::as_str) {
        Some("configured") => EmbeddingChoice::Configured,
        Some("none") => EmbeddingChoice::KeywordsOnly,
        Some("model") => match EmbeddingModel::parse(&typed) {
            Some(model) => EmbeddingChoice::Model(model),
            None => {
                let error = viewer.tr.t("invalid.embedding_model_name").into_owned();
                return knowledge_page(&state, &viewer, None, Some(error), Some(typed)).await;
            }
        },
        _ => return Err(viewer.invalid_field("choice")),
    };
    match state.services.admin.admin_set_embedding_model(viewer.user.id, choice, &viewer.client).await {
        Ok(queued) => Ok(see_other(&format!("/admin/knowledge?queued={queued}"))),
        Err(error @ (loquat_core::CoreError::Provider(_) | loquat_core::CoreError::Invalid { .. })) => {
            let reason = user_message(&error, viewer.tr);
            let message = viewer.tr.t_args("admin.embedding_failed", &[("model", &typed), ("reason", &reason)]);
            knowledge_page(&state, &viewer, None, Some(message), Some(typed)).await
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

/// `POST /admin/knowledge/{id}/unshare`.
pub async fn unshare_knowledge(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id = parse_id(&id, &viewer)?;
    state.services.admin.admin_stop_sharing(viewer.user.id, id, &viewer.client).await.map_err(viewer.fail())?;
    Ok(see_other("/admin/knowledge?unshared=1"))
}

// ---- Tools ----------------------------------------------------------------------------------

pub struct SourceRow {
    pub name: String,
    pub description: String,
    /// `running`, `stopped` or `failing` (a translation key).
    pub state: &'static str,
    pub state_class: &'static str,
    pub tools: String,
    pub last_error: Option<String>,
}

#[derive(Template)]
#[template(path = "admin_tools.html")]
struct ToolsPage {
    tr: Tr,
    chrome: Chrome,
    tab: &'static str,
    notice: Option<String>,
    error: Option<String>,
    /// Built-in tools: name, description.
    builtin: Vec<(String, String)>,
    /// The servers of `LOQUAT_MCP_CONFIG`.
    sources: Vec<SourceRow>,
    /// The servers added here, for everyone.
    shared: Vec<ServerRow>,
    add: AdminAddForm,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ToolsQuery {
    checked: Option<String>,
    count: Option<usize>,
}

/// `GET /admin/tools`: the server's tools and MCP servers with their state.
pub async fn show_tools(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Query(query): Query<ToolsQuery>,
) -> WebResult<Response> {
    let notice = super::mcp::checked_notice(viewer.tr, query.checked, query.count);
    tools_page(&state, &viewer, AdminAddForm::blank(), notice, None).await
}

pub(super) async fn tools_page(
    state: &AppState,
    viewer: &Viewer,
    add: AdminAddForm,
    notice: Option<String>,
    error: Option<String>,
) -> WebResult<Response> {
    let (sources, shared) = state.services.tools.admin_sources(viewer.user.id).await.map_err(viewer.fail())?;
    let builtin = state
        .services
        .chat
        .tool_catalogue()
        .into_iter()
        .filter(|(name, _)| !sources.iter().any(|(source, _, _)| source == name))
        .collect();
    let sources = sources
        .into_iter()
        .map(|(name, description, status)| {
            let (state, state_class) = super::mcp::state_of(status.running, status.last_error.is_some());
            SourceRow {
                state,
                state_class,
                tools: status.tools.map(|tools| tools.join(", ")).unwrap_or_default(),
                last_error: status.last_error,
                name,
                description,
            }
        })
        .collect();
    let shared = shared.into_iter().map(ServerRow::new).collect();
    let page = ToolsPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        tab: "tools",
        notice,
        error,
        builtin,
        sources,
        shared,
        add,
    };
    render(&page, viewer.tr)
}

#[derive(Deserialize)]
pub struct CheckForm {
    name: String,
    /// How the page names it (a shared server's own name).
    #[serde(default)]
    label: String,
}

/// `POST /admin/tools/check`: starts an MCP server if needed and lists its tools again.
pub async fn check_tool_source(
    AdminViewer(viewer): AdminViewer,
    State(state): State<AppState>,
    Form(form): Form<CheckForm>,
) -> WebResult<Response> {
    let checked = state.services.tools.admin_check_source(viewer.user.id, &form.name).await;
    let label = if form.label.is_empty() { form.name.clone() } else { form.label.clone() };
    match checked.map_err(viewer.fail())? {
        Ok(count) => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("checked", &label)
                .append_pair("count", &count.to_string())
                .finish();
            Ok(see_other(&format!("/admin/tools?{query}")))
        }
        Err(reason) => {
            let message = viewer.tr.t_args("admin.tools_check_failed", &[("name", &label), ("reason", &reason)]);
            tools_page(&state, &viewer, AdminAddForm::blank(), None, Some(message)).await
        }
    }
}
