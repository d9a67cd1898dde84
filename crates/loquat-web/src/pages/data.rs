//! Moving conversations in and out: the "Import and export" page (`/settings/data`: export
//! everything, import a file and see what was kept and skipped), a topic's export (Markdown or
//! Loquat's JSON) and an assistant's (LobeChat's agent format), and importing an agent from a
//! file or an address. Every download is an attachment; every import writes the person's rows
//! only.

use askama::Template;
use axum::body::Body;
use axum::body::Bytes;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use loquat_core::id::{AssistantId, TopicId};
use loquat_core::service::{ImportReport, Labels};
use serde::Deserialize;

use super::chat::parse_id;
use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::Viewer;
use crate::download::content_disposition;
use crate::error::{WebError, WebResult};
use crate::i18n::Tr;

/// What an import did, as the page shows it.
pub struct ReportView {
    pub summary: String,
    /// Each thing left out, with why.
    pub skipped: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "data.html")]
struct DataPage {
    tr: Tr,
    chrome: Chrome,
    max_size: String,
    report: Option<ReportView>,
    error: Option<String>,
}

/// The most skipped rows the page lists (the count says the rest).
const MAX_SKIPS_SHOWN: usize = 50;

fn report_view(report: &ImportReport, tr: Tr) -> ReportView {
    let format = tr.t(&format!("data.format_{}", report.format)).into_owned();
    let (topics, messages, assistants) =
        (report.topics.to_string(), report.messages.to_string(), report.assistants.to_string());
    let summary = tr.t_args(
        "data.imported",
        &[("format", &format), ("topics", &topics), ("messages", &messages), ("assistants", &assistants)],
    );
    let mut skipped: Vec<(String, String)> = report
        .skipped
        .iter()
        .take(MAX_SKIPS_SHOWN)
        .map(|skip| {
            let what =
                if skip.what.trim().is_empty() { tr.t("topic.untitled").into_owned() } else { skip.what.clone() };
            (what, tr.t(&format!("data.skip_{}", skip.reason.code())).into_owned())
        })
        .collect();
    if report.skipped.len() > MAX_SKIPS_SHOWN {
        let more = (report.skipped.len() - MAX_SKIPS_SHOWN).to_string();
        skipped.push((tr.t_with("data.more_skipped", "count", &more), String::new()));
    }
    ReportView { summary, skipped }
}

async fn page(
    state: &AppState,
    viewer: &Viewer,
    report: Option<ReportView>,
    error: Option<String>,
) -> WebResult<Response> {
    let page = DataPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        max_size: crate::views::human_bytes(state.services.files.max_bytes()),
        report,
        error,
    };
    render(&page, viewer.tr)
}

/// `GET /settings/data`.
pub async fn show(viewer: Viewer, State(state): State<AppState>) -> WebResult<Response> {
    page(&state, &viewer, None, None).await
}

/// A form's parts: the first file (whole: the route's body limit bounds it) and its name, or
/// an address. A body past the limit is [`CoreError::TooLarge`].
async fn file_part(
    multipart: Result<Multipart, MultipartRejection>,
    limit: u64,
) -> Result<Option<(String, Bytes, Option<String>)>, loquat_core::CoreError> {
    let form_error = || loquat_core::CoreError::invalid_with("upload_form", "file");
    let too_large =
        |error: &axum::extract::multipart::MultipartError| error.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE;
    let mut multipart = multipart.map_err(|_| form_error())?;
    let mut url = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) if too_large(&error) => return Err(loquat_core::CoreError::TooLarge { limit }),
            Err(_) => return Err(form_error()),
        };
        match field.name() {
            Some("file") => {
                let name = field.file_name().unwrap_or_default().to_owned();
                let bytes = match field.bytes().await {
                    Ok(bytes) => bytes,
                    Err(error) if too_large(&error) => return Err(loquat_core::CoreError::TooLarge { limit }),
                    Err(_) => return Err(form_error()),
                };
                if !name.is_empty() && !bytes.is_empty() {
                    return Ok(Some((name, bytes, url)));
                }
            }
            Some("url") => url = field.text().await.ok().filter(|url| !url.trim().is_empty()),
            _ => {}
        }
    }
    Ok(url.map(|url| (String::new(), Bytes::new(), Some(url))))
}

/// `POST /settings/data/import` (multipart, `file`): imports it and shows what it did.
pub async fn import(
    viewer: Viewer,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> WebResult<Response> {
    let limit = state.services.files.max_bytes();
    let part = file_part(multipart, limit).await.map_err(viewer.fail())?;
    let Some((name, bytes, _)) = part.filter(|(_, bytes, _)| !bytes.is_empty()) else {
        let error = loquat_core::CoreError::invalid_with("upload_form", "file");
        return Err(WebError::from_core(error, viewer.tr, viewer.flavor));
    };
    match state.services.assistants.import(viewer.user.id, &name, bytes).await {
        Ok(report) => page(&state, &viewer, Some(report_view(&report, viewer.tr)), None).await,
        Err(error) if matches!(error, loquat_core::CoreError::Invalid { .. }) => {
            let message = crate::error::user_message(&error, viewer.tr);
            let mut response = page(&state, &viewer, None, Some(format!("{name}: {message}"))).await?;
            *response.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(response)
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

/// A download of generated text.
fn download(name: &str, mime: &'static str, body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
    if let Ok(value) = HeaderValue::from_str(&content_disposition(name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

fn today() -> String {
    jiff::Timestamp::now().strftime("%Y-%m-%d").to_string()
}

/// A file name from a title: its letters, digits and spaces (dashes between), at most 60.
fn file_stem(title: &str, fallback: &str) -> String {
    let mut stem = String::new();
    for ch in title.chars() {
        if ch.is_alphanumeric() {
            stem.push(ch);
        } else if !stem.is_empty() && !stem.ends_with('-') {
            stem.push('-');
        }
        if stem.chars().count() >= 60 {
            break;
        }
    }
    let stem = stem.trim_end_matches('-');
    if stem.is_empty() { fallback.to_owned() } else { stem.to_owned() }
}

/// `GET /settings/data/export`: everything, as Loquat's JSON, streamed.
pub async fn export_everything(viewer: Viewer, State(state): State<AppState>) -> WebResult<Response> {
    let parts = state.services.assistants.export_everything(viewer.user.id).await.map_err(viewer.fail())?;
    let body = Body::from_stream(parts.map_err(std::io::Error::other));
    Ok(download(&format!("loquat-export-{}.json", today()), "application/json", body))
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ExportQuery {
    format: String,
}

/// `GET /topics/{id}/export?format=markdown|json`.
pub async fn export_topic(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
) -> WebResult<Response> {
    let id: TopicId = parse_id(&id, &viewer)?;
    let assistants = &state.services.assistants;
    let tr = viewer.tr;
    if query.format == "json" {
        let (topic, json) = assistants.export_topic(viewer.user.id, id).await.map_err(viewer.fail())?;
        let name = format!("{}.json", file_stem(&topic.title, "topic"));
        return Ok(download(&name, "application/json", Body::from(json)));
    }
    let (user, assistant, untitled) = (tr.t("data.md_user"), tr.t("data.md_assistant"), tr.t("topic.untitled"));
    let labels = Labels { user: &user, assistant: &assistant, untitled: &untitled };
    let (topic, text) = assistants.export_markdown(viewer.user.id, id, &labels).await.map_err(viewer.fail())?;
    let name = format!("{}.md", file_stem(&topic.title, "topic"));
    Ok(download(&name, "text/markdown; charset=utf-8", Body::from(text)))
}

/// `GET /assistants/{id}/export`: the assistant in LobeChat's agent format.
pub async fn export_agent(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: AssistantId = parse_id(&id, &viewer)?;
    let assistant = state.services.assistants.assistant(viewer.user.id, id).await.map_err(viewer.fail())?;
    let json = loquat_core::service::Assistants::export_agent(&assistant);
    let text = serde_json::to_string_pretty(&json).unwrap_or_default();
    let name = format!("{}.json", file_stem(&assistant.config.title, "assistant"));
    Ok(download(&name, "application/json", Body::from(text)))
}

/// `POST /assistants/import` (multipart: a `file`, or a `url`): a new assistant from an agent
/// in LobeChat's format; opens its settings.
pub async fn import_agent(
    viewer: Viewer,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> WebResult<Response> {
    let fail = viewer.fail();
    let json = match file_part(multipart, state.services.files.max_bytes()).await.map_err(&fail)? {
        Some((_, bytes, _)) if !bytes.is_empty() => bytes,
        Some((_, _, Some(url))) => Bytes::from(state.services.tools.fetch_document(&url).await.map_err(&fail)?),
        _ => {
            let error = loquat_core::CoreError::invalid_with("upload_form", "file");
            return Err(WebError::from_core(error, viewer.tr, viewer.flavor));
        }
    };
    let assistant = state.services.assistants.import_agent(viewer.user.id, &json).await.map_err(fail)?;
    Ok(see_other(&format!("/assistants/{}/edit", assistant.id)))
}
