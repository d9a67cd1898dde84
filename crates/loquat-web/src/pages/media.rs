//! Voice and pictures on the chat page: a message read aloud (`POST /messages/{id}/speech`:
//! the audio, kept after the first time), the microphone's recording written down
//! (`POST /chat/transcribe`: the text for the composer), and pictures drawn into a topic
//! (`POST /chat/{assistant}/draw`: the prompt, a size and a count; the topic opens with them).

use axum::Json;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use loquat_core::id::{AssistantId, MessageId, TopicId};
use serde::Deserialize;

use super::chat::{parse_id, topic_url};
use super::see_other;
use crate::AppState;
use crate::context::Viewer;
use crate::error::{Flavor, WebError, WebResult};
use crate::form::Form;

/// `POST /messages/{id}/speech`: the message read aloud (`audio/mpeg`).
pub async fn speak(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    // A provider request each (the first time): counted as chat requests are.
    state.allow_chat(&viewer).await?;
    let content = state.services.media.speak(viewer.user.id, id).await.map_err(viewer.fail())?;
    let mut response = crate::download::attachment(content);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/mpeg"));
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    Ok(response)
}

/// `POST /chat/transcribe` (multipart: `audio`, and the page's `language`): what the recording
/// says.
pub async fn transcribe(
    viewer: Viewer,
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> WebResult<Response> {
    let form_error = || {
        let error = loquat_core::CoreError::invalid_with("upload_form", "audio");
        WebError::from_core(error, viewer.tr, viewer.flavor)
    };
    state.allow_chat(&viewer).await?;
    let mut multipart = multipart.map_err(|_| form_error())?;
    let mut audio = None;
    while let Ok(Some(field)) = multipart.next_field().await {
        if field.name() == Some("audio") {
            audio = Some(field.bytes().await.map_err(|_| form_error())?);
        }
    }
    let audio = audio.ok_or_else(form_error)?;
    let language = viewer.locale().code();
    let text = state.services.media.transcribe(viewer.user.id, audio, Some(language)).await.map_err(viewer.fail())?;
    Ok(Json(serde_json::json!({ "text": text })).into_response())
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct DrawForm {
    prompt: String,
    size: String,
    count: String,
    topic_id: String,
}

/// `POST /chat/{assistant}/draw`: pictures of the prompt, stored in the topic (a new one when
/// none is given), which opens.
pub async fn draw(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(assistant): Path<String>,
    Form(form): Form<DrawForm>,
) -> WebResult<Response> {
    let assistant: AssistantId = parse_id(&assistant, &viewer)?;
    state.allow_chat(&viewer).await?;
    let topic: Option<TopicId> = if form.topic_id.is_empty() { None } else { Some(parse_id(&form.topic_id, &viewer)?) };
    let count = form.count.parse().unwrap_or(1);
    let size = if form.size.is_empty() { "1024x1024" } else { form.size.as_str() };
    let drawing = state
        .services
        .media
        .draw(viewer.user.id, assistant, topic, &form.prompt, size, count)
        .await
        .map_err(viewer.fail())?;
    let url = topic_url(drawing.topic.assistant_id, drawing.topic.id);
    if viewer.flavor == Flavor::Json {
        let images: Vec<String> = drawing.images.iter().map(|file| format!("/files/{}/view", file.id)).collect();
        return Ok(Json(serde_json::json!({ "topic_url": url, "images": images })).into_response());
    }
    Ok(see_other(&url))
}
