//! Sending a message (JSON for the script, a redirect for a plain form), reading a message's
//! raw markdown (copy, edit) and stopping an answer.

use crate::form::Form;
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use loquat_core::domain::Message;
use loquat_core::id::{AssistantId, MessageId, TopicId};
use loquat_core::service::SendMessage;
use loquat_core::tree::BranchEntry;
use serde::Deserialize;

use crate::AppState;
use crate::context::Viewer;
use crate::error::{Flavor, WebError, WebResult};
use crate::pages::chat::{MessageFragment, parse_id, topic_url};
use crate::pages::see_other;
use crate::views::MessageView;

#[derive(Deserialize)]
pub struct SendForm {
    content: String,
    #[serde(default)]
    topic_id: String,
    /// The attached files' ids, comma-separated, in order.
    #[serde(default)]
    files: String,
}

/// The composer's form, parsed: the topic and the files' ids.
fn topic_and_files(form: &SendForm, viewer: &Viewer) -> WebResult<(Option<TopicId>, Vec<loquat_core::id::FileId>)> {
    let topic_id: Option<TopicId> =
        if form.topic_id.is_empty() { None } else { Some(parse_id(&form.topic_id, viewer)?) };
    let file_ids = form
        .files
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| parse_id(id, viewer))
        .collect::<WebResult<Vec<_>>>()?;
    Ok((topic_id, file_ids))
}

/// `POST /chat/{assistant}/tokens` (the composer's fields): the next request's size, estimated,
/// against the model's context window.
pub async fn estimate_tokens(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(assistant): Path<String>,
    Form(form): Form<SendForm>,
) -> WebResult<Response> {
    let assistant_id: AssistantId = parse_id(&assistant, &viewer)?;
    let (topic_id, file_ids) = topic_and_files(&form, &viewer)?;
    let chat = &state.services.chat;
    let estimate = chat
        .estimate_tokens(viewer.user.id, assistant_id, topic_id, &form.content, &file_ids)
        .await
        .map_err(viewer.fail())?;
    let tr = viewer.tr;
    let total = crate::views::group_digits(estimate.total as u64);
    let label = match estimate.window {
        Some(window) => {
            let window = crate::views::group_digits(u64::from(window));
            tr.t_args("composer.tokens_of", &[("count", &total), ("window", &window)])
        }
        None => tr.t_with("composer.tokens", "count", &total),
    };
    let detail = tr.t_args(
        "composer.tokens_detail",
        &[
            ("system", &estimate.system.to_string()),
            ("history", &estimate.history.to_string()),
            ("message", &estimate.message.to_string()),
            ("files", &estimate.files.to_string()),
        ],
    );
    Ok(Json(serde_json::json!({
        "total": estimate.total,
        "window": estimate.window,
        "too_large": estimate.too_large(),
        "label": label,
        "detail": detail,
        "warning": tr.t("composer.too_many_tokens"),
    }))
    .into_response())
}

pub async fn send_message(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(assistant): Path<String>,
    Form(form): Form<SendForm>,
) -> WebResult<Response> {
    let assistant_id: AssistantId = parse_id(&assistant, &viewer)?;
    state.allow_chat(&viewer).await?;
    let (topic_id, file_ids) = topic_and_files(&form, &viewer)?;
    let language = viewer.locale().code().to_owned();
    let send = SendMessage { assistant_id, topic_id, content: form.content, file_ids, language };
    let exchange = state.services.chat.send_message(viewer.user.id, send).await.map_err(viewer.fail())?;
    let url = topic_url(exchange.topic.assistant_id, exchange.topic.id);
    if viewer.flavor == Flavor::Html {
        return Ok(see_other(&url));
    }
    let messages: Vec<&Message> = exchange.user_message.iter().chain([&exchange.answer]).collect();
    let rendered = state.renderer.messages(messages.iter().copied()).await;
    let mut html = String::new();
    for (message, rendered) in messages.into_iter().zip(rendered) {
        let files = if message.role == loquat_core::domain::MessageRole::User { &exchange.files[..] } else { &[] };
        let view = MessageView::from_entry(&lone_entry(message), viewer.tr, rendered).with_files(files);
        let fragment = MessageFragment { tr: viewer.tr, m: &view }.render();
        html.push_str(&fragment.map_err(|error| WebError::internal(error, viewer.tr, viewer.flavor))?);
    }
    Ok(Json(serde_json::json!({
        "topic_id": exchange.topic.id.to_string(),
        "topic_url": url,
        "created_topic": exchange.created_topic,
        "answer_id": exchange.answer.id.to_string(),
        "html": html,
    }))
    .into_response())
}

/// A message shown on its own (fresh, so it has no siblings yet).
pub fn lone_entry(message: &Message) -> BranchEntry {
    BranchEntry {
        message: message.clone(),
        sibling_index: 1,
        sibling_count: 1,
        previous_sibling: None,
        next_sibling: None,
    }
}

pub async fn raw_message(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    let message = state.services.assistants.message(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message.content).into_response())
}

/// `POST /messages/{id}/translate`: the message in the reader's language, as sanitized HTML.
pub async fn translate_message(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    state.allow_chat(&viewer).await?;
    let language = viewer.locale().code();
    let translated = state.services.chat.translate(viewer.user.id, id, language).await.map_err(viewer.fail())?;
    let html = crate::markdown::render(&translated, &state.settings.image_hosts);
    let label = viewer.tr.t("message.translation").into_owned();
    Ok(Json(serde_json::json!({ "html": html, "label": label })).into_response())
}

pub async fn stop_message(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    state.services.chat.stop_generation(viewer.user.id, id).await.map_err(viewer.fail())?;
    if viewer.flavor == Flavor::Json {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    let message = state.services.assistants.message(viewer.user.id, id).await.map_err(viewer.fail())?;
    let topic = state.services.assistants.topic(viewer.user.id, message.topic_id).await.map_err(viewer.fail())?;
    Ok(see_other(&topic_url(topic.assistant_id, topic.id)))
}
