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

pub async fn send_message(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(assistant): Path<String>,
    Form(form): Form<SendForm>,
) -> WebResult<Response> {
    let assistant_id: AssistantId = parse_id(&assistant, &viewer)?;
    state.allow_chat(&viewer).await?;
    let topic_id: Option<TopicId> =
        if form.topic_id.is_empty() { None } else { Some(parse_id(&form.topic_id, &viewer)?) };
    let file_ids = form
        .files
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(|id| parse_id(id, &viewer))
        .collect::<WebResult<Vec<_>>>()?;
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
