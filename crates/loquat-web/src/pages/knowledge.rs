//! Knowledge bases: the list (with a form to make one), one knowledge base (its name and
//! description, its files with how far their reading is, adding one of my files, removing,
//! retrying a failed reading, the assistants that answer from it), and a source of an answer
//! (the passage a citation points to).

use askama::Template;
use axum::extract::{Path, State};
use axum::response::Response;
use loquat_core::domain::{IngestState, Ingestion};
use loquat_core::id::{AssistantId, FileId, KnowledgeBaseId, MessageId};
use serde::Deserialize;

use super::chat::{parse_id, topic_url};
use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::Viewer;
use crate::error::WebResult;
use crate::form::Form;
use crate::i18n::Tr;
use crate::views::{format_time, human_bytes};

pub struct BaseRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub updated: String,
    /// For a base shared with the viewer by someone else: a note saying so.
    pub shared: Option<String>,
}

#[derive(Template)]
#[template(path = "knowledge.html")]
struct KnowledgeListPage {
    tr: Tr,
    chrome: Chrome,
    bases: Vec<BaseRow>,
}

pub struct KnowledgeFileRow {
    pub id: String,
    pub name: String,
    pub size: String,
    /// The reading's state in words, with progress or the reason of a failure.
    pub state: String,
    pub state_class: &'static str,
    pub failed: bool,
}

pub struct AssistantToggle {
    pub id: String,
    pub title: String,
    pub avatar: String,
    pub on: bool,
}

pub struct FileOption {
    pub id: String,
    pub name: String,
}

#[derive(Template)]
#[template(path = "knowledge_base.html")]
struct KnowledgeBasePage {
    tr: Tr,
    chrome: Chrome,
    id: String,
    name: String,
    description: String,
    files: Vec<KnowledgeFileRow>,
    /// The user's files not in it yet.
    addable: Vec<FileOption>,
    assistants: Vec<AssistantToggle>,
    /// Whether a reading is still going (the page refreshes itself).
    pending: bool,
    /// The viewer owns it (and may change it); otherwise it is shared with them, read-only.
    owner: bool,
    /// The viewer may share it (an administrator's own base), and with whom it is shared now
    /// (`""` private, `everyone`, a role's code).
    can_share: bool,
    shared_with: String,
}

#[derive(Template)]
#[template(path = "source.html")]
struct SourcePage {
    tr: Tr,
    chrome: Chrome,
    number: u32,
    file_name: String,
    file_id: Option<String>,
    /// `Page 4 · R&D`: where the passage is.
    place: String,
    text: String,
    /// A web source's address (`http`/`https` only).
    url: Option<String>,
    back_url: String,
}

// Every field has a default: the knowledge base's owner is checked before the fields are.
#[derive(Deserialize)]
pub struct BaseForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: String,
}

#[derive(Deserialize)]
pub struct AddFileForm {
    #[serde(default)]
    file: String,
}

#[derive(Deserialize)]
pub struct AssistantForm {
    #[serde(default)]
    assistant: String,
    /// `1` to answer from this knowledge base, anything else to stop.
    #[serde(default)]
    on: String,
}

/// The reading's state as the page shows it.
pub fn ingest_label(ingestion: Option<&Ingestion>, tr: Tr) -> (String, &'static str) {
    let Some(ingestion) = ingestion else { return (tr.t("knowledge.state_none").into_owned(), "muted") };
    let percent = ingestion.progress.to_string();
    match ingestion.state {
        IngestState::Queued => (tr.t("knowledge.state_queued").into_owned(), "pending"),
        IngestState::Reading => (tr.t_with("knowledge.state_reading", "percent", &percent), "pending"),
        IngestState::Indexing => (tr.t_with("knowledge.state_indexing", "percent", &percent), "pending"),
        IngestState::Ready => {
            let passages = if ingestion.chunks == 1 {
                tr.t("knowledge.one_passage").into_owned()
            } else {
                tr.t_with("knowledge.passages", "count", &ingestion.chunks.to_string())
            };
            let text = match ingestion.pages {
                Some(pages) => {
                    tr.t_args("knowledge.state_ready_pages", &[("passages", &passages), ("pages", &pages.to_string())])
                }
                None => tr.t_with("knowledge.state_ready", "passages", &passages),
            };
            (text, "ok")
        }
        IngestState::Failed => {
            let reason = ingestion.error.as_deref().unwrap_or("file_unreadable");
            let reason = if reason.starts_with("internal") { "internal" } else { reason };
            (tr.t(&format!("knowledge.failed.{reason}")).into_owned(), "failed")
        }
    }
}

/// `GET /knowledge`.
pub async fn list(viewer: Viewer, State(state): State<AppState>) -> WebResult<Response> {
    let bases = state.services.knowledge.list(viewer.user.id).await.map_err(viewer.fail())?;
    let bases = bases
        .into_iter()
        .map(|base| BaseRow {
            shared: (base.user_id != viewer.user.id).then(|| viewer.tr.t("knowledge.shared_with_you").into_owned()),
            id: base.id.to_string(),
            name: base.name,
            description: base.description,
            updated: format_time(base.updated_at),
        })
        .collect();
    render(&KnowledgeListPage { tr: viewer.tr, chrome: Chrome::new(viewer.theme), bases }, viewer.tr)
}

/// `POST /knowledge`.
pub async fn create(viewer: Viewer, State(state): State<AppState>, Form(form): Form<BaseForm>) -> WebResult<Response> {
    let knowledge = &state.services.knowledge;
    let base = knowledge.create(viewer.user.id, &form.name, &form.description).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/knowledge/{}", base.id)))
}

/// `GET /knowledge/{id}`.
pub async fn show(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> WebResult<Response> {
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    let user = viewer.user.id;
    let services = &state.services;
    let base = services.knowledge.readable(user, id).await.map_err(viewer.fail())?;
    let owner = base.user_id == user;
    let (files, mine, assistants) = tokio::join!(
        services.knowledge.files(user, id),
        services.files.list(user),
        services.assistants.list_assistants(user)
    );
    let (files, mine, assistants) =
        (files.map_err(viewer.fail())?, mine.map_err(viewer.fail())?, assistants.map_err(viewer.fail())?);
    let pending = files.iter().any(|(_, ingestion)| ingestion.as_ref().is_some_and(|i| i.state.is_pending()));
    let addable = mine
        .into_iter()
        .filter(|_| owner)
        .filter(|file| !files.iter().any(|(added, _)| added.id == file.id))
        .filter(loquat_core::service::is_document)
        .map(|file| FileOption { id: file.id.to_string(), name: file.name })
        .collect();
    let files = files
        .into_iter()
        .map(|(file, ingestion)| {
            let (state, state_class) = ingest_label(ingestion.as_ref(), viewer.tr);
            KnowledgeFileRow {
                id: file.id.to_string(),
                name: file.name,
                size: human_bytes(file.size),
                state,
                state_class,
                failed: ingestion.is_some_and(|i| i.state == IngestState::Failed),
            }
        })
        .collect();
    let mut toggles = Vec::with_capacity(assistants.len());
    for assistant in assistants {
        let bases = services.knowledge.assistant_bases(user, assistant.id).await.map_err(viewer.fail())?;
        toggles.push(AssistantToggle {
            id: assistant.id.to_string(),
            title: crate::views::assistant_title(&assistant, viewer.tr),
            avatar: assistant.config.avatar.clone(),
            on: bases.contains(&id),
        });
    }
    let page = KnowledgeBasePage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        id: id.to_string(),
        name: base.name,
        description: base.description,
        files,
        addable,
        assistants: toggles,
        pending,
        owner,
        can_share: owner && viewer.is_admin(),
        shared_with: base.shared_with.unwrap_or_default(),
    };
    render(&page, viewer.tr)
}

/// `POST /knowledge/{id}/edit`.
pub async fn update(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<BaseForm>,
) -> WebResult<Response> {
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    let knowledge = &state.services.knowledge;
    knowledge.get(viewer.user.id, id).await.map_err(viewer.fail())?;
    knowledge.update(viewer.user.id, id, &form.name, &form.description).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/knowledge/{id}")))
}

#[derive(Deserialize)]
pub struct SharingForm {
    /// Empty: private; `everyone`; or a role's code.
    #[serde(default)]
    shared_with: String,
}

/// `POST /knowledge/{id}/sharing`: an administrator shares their knowledge base (read-only).
pub async fn set_sharing(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<SharingForm>,
) -> WebResult<Response> {
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    let scope = Some(form.shared_with.trim()).filter(|scope| !scope.is_empty());
    state.services.knowledge.set_sharing(viewer.user.id, id, scope).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/knowledge/{id}")))
}

/// `POST /knowledge/{id}/delete`.
pub async fn delete(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> WebResult<Response> {
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    state.services.knowledge.delete(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other("/knowledge"))
}

/// `POST /knowledge/{id}/upload` (multipart, `file` fields): new documents stored and added
/// at once. The script gets the files as JSON; a plain form comes back to the page.
pub async fn upload(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    multipart: Result<axum::extract::multipart::Multipart, axum::extract::multipart::MultipartRejection>,
) -> WebResult<Response> {
    use super::files::{UploadFailure, receive_files};
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    let user = viewer.user.id;
    let knowledge = &state.services.knowledge;
    // Checked before a byte is stored.
    knowledge.get(user, id).await.map_err(viewer.fail())?;
    let files = match receive_files(&state, &viewer, multipart).await {
        Ok(files) if !files.is_empty() => files,
        Ok(_) | Err(UploadFailure::Form) => {
            let error = loquat_core::CoreError::invalid_with("upload_form", "file");
            return Err(crate::error::WebError::from_core(error, viewer.tr, viewer.flavor));
        }
        Err(UploadFailure::File { name, error }) => {
            let status = crate::error::status_of(error.kind());
            let message = format!("{name}: {}", crate::error::user_message(&error, viewer.tr));
            let body = axum::Json(serde_json::json!({ "error": { "message": message } }));
            return Ok(axum::response::IntoResponse::into_response((status, body)));
        }
    };
    for file in &files {
        knowledge.add_file(user, id, file.id).await.map_err(viewer.fail())?;
    }
    if viewer.flavor == crate::error::Flavor::Json {
        let files: Vec<_> =
            files.iter().map(|f| serde_json::json!({ "id": f.id.to_string(), "name": f.name })).collect();
        return Ok(axum::response::IntoResponse::into_response(axum::Json(serde_json::json!({ "files": files }))));
    }
    Ok(see_other(&format!("/knowledge/{id}")))
}

/// `POST /knowledge/{id}/files`: adds one of my files.
pub async fn add_file(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<AddFileForm>,
) -> WebResult<Response> {
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    state.services.knowledge.get(viewer.user.id, id).await.map_err(viewer.fail())?;
    let file: FileId = parse_id(&form.file, &viewer)?;
    state.services.knowledge.add_file(viewer.user.id, id, file).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/knowledge/{id}")))
}

/// `POST /knowledge/{id}/files/{file}/remove`.
pub async fn remove_file(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> WebResult<Response> {
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    let file: FileId = parse_id(&file, &viewer)?;
    state.services.knowledge.remove_file(viewer.user.id, id, file).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/knowledge/{id}")))
}

/// `POST /knowledge/{id}/files/{file}/retry`.
pub async fn retry_file(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
) -> WebResult<Response> {
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    let file: FileId = parse_id(&file, &viewer)?;
    state.services.knowledge.get(viewer.user.id, id).await.map_err(viewer.fail())?;
    state.services.knowledge.retry(viewer.user.id, file).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/knowledge/{id}")))
}

/// `POST /knowledge/{id}/assistants`: an assistant answers from it, or stops.
pub async fn toggle_assistant(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<AssistantForm>,
) -> WebResult<Response> {
    let id: KnowledgeBaseId = parse_id(&id, &viewer)?;
    let user = viewer.user.id;
    let knowledge = &state.services.knowledge;
    knowledge.readable(user, id).await.map_err(viewer.fail())?;
    let assistant: AssistantId = parse_id(&form.assistant, &viewer)?;
    state.services.assistants.assistant(user, assistant).await.map_err(viewer.fail())?;
    let mut bases = knowledge.assistant_bases(user, assistant).await.map_err(viewer.fail())?;
    bases.retain(|base| *base != id);
    if form.on == "1" {
        bases.push(id);
    }
    knowledge.set_assistant_bases(user, assistant, &bases).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/knowledge/{id}")))
}

/// `GET /messages/{id}/sources/{number}`: the passage a citation points to.
pub async fn source(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((id, number)): Path<(String, String)>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    // A number that is not one is a source that does not exist.
    let number: u32 = number.parse().map_err(|_| crate::error::WebError::not_found(viewer.tr, viewer.flavor))?;
    let user = viewer.user.id;
    let message = state.services.assistants.message(user, id).await.map_err(viewer.fail())?;
    let source = state.services.knowledge.source(user, id, number).await.map_err(viewer.fail())?;
    let topic = state.services.assistants.topic(user, message.topic_id).await.map_err(viewer.fail())?;
    let tr = viewer.tr;
    let pages = source.pages().map(|(first, last)| {
        if first == last {
            tr.t_with("sources.page_only", "page", &first.to_string())
        } else {
            tr.t_args("sources.pages_only", &[("first", &first.to_string()), ("last", &last.to_string())])
        }
    });
    let page = SourcePage {
        tr,
        chrome: Chrome::new(viewer.theme),
        number,
        file_name: source.file_name,
        file_id: source.file_id.map(|file| file.to_string()),
        place: [pages, Some(source.headings)]
            .into_iter()
            .flatten()
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join(" · "),
        text: source.text,
        url: source.url.filter(|url| url.starts_with("https://") || url.starts_with("http://")),
        back_url: format!("{}#m-{id}", topic_url(topic.assistant_id, topic.id)),
    };
    render(&page, viewer.tr)
}
