//! The Files page: the user's files (name, type, size, date), each downloadable and deletable,
//! and an upload form (several files at once; the page script shows a progress bar and sends
//! them one by one; without the script the form posts them all). Uploads stream into file
//! storage under the size limit; the page says which file failed and why.

use askama::Template;
use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use loquat_core::id::FileId;
use serde::Deserialize;
use serde_json::json;

use super::chat::parse_id;
use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::Viewer;
use crate::error::{Flavor, WebError, WebResult, status_of, user_message};
use crate::i18n::Tr;
use crate::views::{format_time, human_bytes, human_megabytes};

pub struct FileRow {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub size: String,
    pub created: String,
    /// Where the file is used: in how many messages.
    pub used: String,
    /// How far its reading is (documents only), and the CSS class of that state.
    pub reading: String,
    pub reading_class: &'static str,
}

#[derive(Template)]
#[template(path = "files.html")]
struct FilesPage {
    tr: Tr,
    chrome: Chrome,
    files: Vec<FileRow>,
    max_size: String,
    /// What the files hold, against the quota when there is one.
    storage: String,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct FilesQuery {
    uploaded: Option<u32>,
    deleted: Option<u32>,
}

/// A short word for a file's type: `PDF`, `PNG`, `Markdown`, `Text`…
fn kind_label(mime: &str, name: &str, tr: Tr) -> String {
    // An Office file whose content the type detector saw only as a zip or compound file: the
    // reader's own rule (type, then name) says what it is.
    let mime = match loquat_core::service::document_format_name(mime, name) {
        Some(office) => office,
        None => mime,
    };
    let known = match mime {
        "application/pdf" => "PDF",
        "text/markdown" => "Markdown",
        "text/csv" => "CSV",
        "application/json" => "JSON",
        "text/html" => "HTML",
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" | "application/msword" => "Word",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" | "application/vnd.ms-excel" => "Excel",
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
        | "application/vnd.ms-powerpoint" => "PowerPoint",
        "text/plain" => return tr.t("files.kind_text").into_owned(),
        "application/octet-stream" => return tr.t("files.kind_binary").into_owned(),
        _ => "",
    };
    if !known.is_empty() {
        return known.to_owned();
    }
    // `image/png` → `PNG`, `application/zip` → `ZIP`.
    mime.rsplit('/').next().unwrap_or(mime).trim_start_matches("x-").to_uppercase()
}

async fn files_page(
    state: &AppState,
    viewer: &Viewer,
    notice: Option<String>,
    error: Option<String>,
) -> WebResult<Response> {
    let tr = viewer.tr;
    let (files, readings) = tokio::join!(
        state.services.files.list_with_uses(viewer.user.id),
        state.services.knowledge.ingestions(viewer.user.id)
    );
    let (files, readings) = (files.map_err(viewer.fail())?, readings.map_err(viewer.fail())?);
    let files = files
        .into_iter()
        .map(|(file, uses)| {
            let (reading, reading_class) = match readings.get(&file.id) {
                Some(ingestion) => super::knowledge::ingest_label(Some(ingestion), tr),
                None => (String::new(), "muted"),
            };
            (file, uses, reading, reading_class)
        })
        .map(|(file, uses, reading, reading_class)| FileRow {
            reading,
            reading_class,
            used: match uses {
                0 => tr.t("files.unused").into_owned(),
                count => tr.t_with("files.in_messages", "count", &count.to_string()),
            },
            id: file.id.to_string(),
            kind: kind_label(&file.mime, &file.name, tr),
            size: human_bytes(file.size),
            created: format_time(file.created_at),
            name: file.name,
        })
        .collect();
    let max_size = human_bytes(state.services.files.max_bytes());
    let (used, quota) = state.services.files.storage(&viewer.user).await.map_err(viewer.fail())?;
    let used = human_bytes(used);
    let storage = match quota {
        Some(mb) => tr.t_args("files.storage_of", &[("used", &used), ("quota", &human_megabytes(mb))]),
        None => tr.t_with("files.storage_used", "used", &used),
    };
    let page = FilesPage { tr, chrome: Chrome::new(viewer.theme), files, max_size, storage, notice, error };
    render(&page, tr)
}

/// `GET /files`.
pub async fn show_files(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(query): Query<FilesQuery>,
) -> WebResult<Response> {
    let tr = viewer.tr;
    let notice = match (query.uploaded, query.deleted) {
        (Some(count), _) => Some(tr.t_with("files.uploaded", "count", &count.to_string())),
        (_, Some(_)) => Some(tr.t("files.deleted").into_owned()),
        _ => None,
    };
    files_page(&state, &viewer, notice, None).await
}

/// Why an upload form was not stored whole.
pub enum UploadFailure {
    /// Not a multipart form with `file` fields.
    Form,
    /// This file failed (too large, over the quota, storage down…); the ones before it are kept.
    File { name: String, error: loquat_core::CoreError },
}

/// Stores each `file` field of an upload form as it streams in, in order.
pub async fn receive_files(
    state: &AppState,
    viewer: &Viewer,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Vec<loquat_core::domain::StoredFile>, UploadFailure> {
    let mut multipart = multipart.map_err(|_| UploadFailure::Form)?;
    let mut stored = Vec::new();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return Err(UploadFailure::Form),
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().unwrap_or("file").to_owned();
        // A form with no file chosen still sends an empty, nameless part.
        if name.is_empty() {
            continue;
        }
        match state.services.files.upload(&viewer.user, &name, field).await {
            Ok((file, _)) => stored.push(file),
            Err(error) => return Err(UploadFailure::File { name, error }),
        }
    }
    Ok(stored)
}

/// `POST /files` (multipart, `file` fields). A form gets the page back (or a redirect to it);
/// the page script (`Accept: application/json`) gets the stored files or the error.
pub async fn upload_files(
    viewer: Viewer,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> WebResult<Response> {
    let tr = viewer.tr;
    let form_error =
        || WebError::from_core(loquat_core::CoreError::invalid_with("upload_form", "file"), tr, viewer.flavor);
    let stored = match receive_files(&state, &viewer, multipart).await {
        Ok(stored) => stored,
        Err(UploadFailure::Form) => return Err(form_error()),
        Err(UploadFailure::File { name, error }) => {
            let status = status_of(error.kind());
            let message = format!("{name}: {}", user_message(&error, tr));
            if viewer.flavor == Flavor::Json {
                return Ok((status, Json(json!({ "error": { "message": message } }))).into_response());
            }
            let mut page = files_page(&state, &viewer, None, Some(message)).await?;
            *page.status_mut() = status;
            return Ok(page);
        }
    };
    if stored.is_empty() {
        return Err(form_error());
    }
    if viewer.flavor == Flavor::Json {
        let files: Vec<_> = stored
            .iter()
            .map(|file| {
                json!({
                    "id": file.id.to_string(),
                    "name": file.name,
                    "size": file.size,
                    "mime": file.mime,
                    "image": crate::download::shows_inline(&file.mime),
                })
            })
            .collect();
        return Ok(Json(json!({ "files": files })).into_response());
    }
    Ok(see_other(&format!("/files?uploaded={}", stored.len())))
}

/// `GET /files/{id}`: the file's bytes, as an attachment.
pub async fn download_file(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: FileId = parse_id(&id, &viewer)?;
    let content = state.services.files.content(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(crate::download::attachment(content))
}

/// `GET /files/{id}/view`: an image shown inline (thumbnails, full size in a tab); any other
/// file downloads as from `/files/{id}`.
pub async fn view_file(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> WebResult<Response> {
    let id: FileId = parse_id(&id, &viewer)?;
    let content = state.services.files.content(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(crate::download::inline_image(content))
}

/// `POST /files/{id}/delete`.
pub async fn delete_file(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> WebResult<Response> {
    let id: FileId = parse_id(&id, &viewer)?;
    state.services.files.delete(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other("/files?deleted=1"))
}
