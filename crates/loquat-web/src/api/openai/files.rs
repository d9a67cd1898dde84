//! OpenAI's Files API (`/v1/files`): upload (multipart: `file` and `purpose`), list, retrieve,
//! content and delete, for the caller's own files — the same files as the Files page, under
//! the same size limit. Ids are `file-<hex>`; another user's id, a malformed one and a deleted
//! one are all "no such file". `purpose` is checked and echoed, not kept: every file is the
//! caller's, for any use.

use axum::Json;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use loquat_core::CoreError;
use loquat_core::domain::StoredFile;
use loquat_core::id::FileId;
use serde_json::{Value, json};

use super::caller::ApiCaller;
use super::error::ApiError;
use crate::AppState;
use crate::i18n::Tr;

const PURPOSES: &[&str] = &["assistants", "batch", "fine-tune", "vision", "user_data", "evals"];
/// What a file object reports as its purpose when listed or retrieved.
const DEFAULT_PURPOSE: &str = "user_data";

/// OpenAI's file object.
fn file_object(file: &StoredFile, purpose: &str) -> Value {
    json!({
        "id": api_id(file.id),
        "object": "file",
        "bytes": file.size,
        "created_at": file.created_at.as_millis() / 1000,
        "expires_at": null,
        "filename": file.name,
        "purpose": purpose,
        "status": "processed",
        "status_details": null,
    })
}

fn api_id(id: FileId) -> String {
    format!("file-{}", id.as_uuid().simple())
}

/// The id in `file-<hex>` (or a bare UUID); anything else names no file.
fn file_id(text: &str, tr: Tr) -> Result<FileId, ApiError> {
    text.strip_prefix("file-").unwrap_or(text).parse().map_err(|_| ApiError::file_not_found(text, tr))
}

fn core_error(error: CoreError, id: &str, tr: Tr) -> ApiError {
    match error {
        CoreError::NotFound(_) => ApiError::file_not_found(id, tr),
        other => ApiError::from_core(other, "", tr),
    }
}

/// `POST /v1/files`.
pub async fn upload_file(
    caller: ApiCaller,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Value>, ApiError> {
    let tr = caller.tr();
    let form_error = || ApiError::invalid_param("file", tr.t_with("invalid.upload_form", "detail", "file"));
    let mut multipart = multipart.map_err(|_| form_error())?;
    let (mut stored, mut purpose) = (None, None);
    while let Some(field) = multipart.next_field().await.map_err(|_| form_error())? {
        match field.name() {
            Some("file") if stored.is_none() => {
                let name = field.file_name().unwrap_or("file").to_owned();
                let user = &caller.0.user;
                let file = state.services.files.upload(user, &name, field).await;
                stored = Some(file.map_err(|error| ApiError::from_core(error, "", tr))?);
            }
            Some("purpose") if purpose.is_none() => purpose = Some(short_text(field).await.map_err(|_| form_error())?),
            // Other fields are skipped unread by the next `next_field`.
            _ => {}
        }
    }
    let Some((file, new)) = stored else { return Err(form_error()) };
    let purpose = purpose.unwrap_or_else(|| DEFAULT_PURPOSE.to_owned());
    if !PURPOSES.contains(&purpose.as_str()) {
        // Checked after the upload (the parts may come in any order): a file this request
        // created is not kept; one the caller had before stays.
        if new {
            let _ = state.services.files.delete(caller.0.user.id, file.id).await;
        }
        let message = tr.t_with("api.file_purpose", "detail", &PURPOSES.join(", "));
        return Err(ApiError::invalid_param("purpose", message));
    }
    Ok(Json(file_object(&file, &purpose)))
}

/// A small text field (at most 64 bytes read; more is an error, not a memory cost).
async fn short_text(mut field: Field<'_>) -> Result<String, ()> {
    let mut text = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(|_| ())? {
        if text.len() + chunk.len() > 64 {
            return Err(());
        }
        text.extend_from_slice(&chunk);
    }
    String::from_utf8(text).map(|text| text.trim().to_owned()).map_err(|_| ())
}

/// `GET /v1/files`.
pub async fn list_files(caller: ApiCaller, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let tr = caller.tr();
    let files = state.services.files.list(caller.0.user.id).await.map_err(|error| core_error(error, "", tr))?;
    let data: Vec<Value> = files.iter().map(|file| file_object(file, DEFAULT_PURPOSE)).collect();
    let first_id = files.first().map(|file| api_id(file.id));
    let last_id = files.last().map(|file| api_id(file.id));
    Ok(Json(json!({ "object": "list", "data": data, "first_id": first_id, "last_id": last_id, "has_more": false })))
}

/// `GET /v1/files/{id}`.
pub async fn get_file(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tr = caller.tr();
    let file_id = file_id(&id, tr)?;
    let file = state.services.files.get(caller.0.user.id, file_id).await.map_err(|error| core_error(error, &id, tr))?;
    Ok(Json(file_object(&file, DEFAULT_PURPOSE)))
}

/// `GET /v1/files/{id}/content`.
pub async fn file_content(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let tr = caller.tr();
    let file_id = file_id(&id, tr)?;
    let content =
        state.services.files.content(caller.0.user.id, file_id).await.map_err(|error| core_error(error, &id, tr))?;
    Ok(crate::download::attachment(content).into_response())
}

/// `DELETE /v1/files/{id}`.
pub async fn delete_file(
    caller: ApiCaller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let tr = caller.tr();
    let file_id = file_id(&id, tr)?;
    let file =
        state.services.files.delete(caller.0.user.id, file_id).await.map_err(|error| core_error(error, &id, tr))?;
    Ok(Json(json!({ "id": api_id(file.id), "object": "file", "deleted": true })))
}
