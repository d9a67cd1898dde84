//! Sharing a topic: the owner's page of its links (`/topics/{id}/shares`: create with an expiry
//! and the choice to show their name, copy, revoke), and the public page a link opens
//! (`/share/{token}`): the shared branch, sanitized, read-only, nothing else of the instance;
//! not indexed and not sending the link on as a referrer.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::Response;
use loquat_core::domain::MessageRole;
use loquat_core::id::{ShareId, TopicId};
use loquat_core::service::MAX_SHARE_DAYS;
use serde::Deserialize;

use super::chat::{parse_id, topic_url};
use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::{Viewer, Visitor};
use crate::error::WebResult;
use crate::form::Form;
use crate::i18n::Tr;
use crate::views::format_time;

pub struct LinkRow {
    pub id: String,
    pub url: String,
    pub created: String,
    /// "Never", or when it ends.
    pub expires: String,
    pub expired: bool,
    pub shows_name: bool,
}

#[derive(Template)]
#[template(path = "shares.html")]
struct SharesPage {
    tr: Tr,
    chrome: Chrome,
    topic_id: String,
    topic_title: String,
    back: String,
    enabled: bool,
    links: Vec<LinkRow>,
    /// The link just made, to copy.
    fresh: Option<String>,
    error: Option<String>,
}

fn share_url(state: &AppState, token: &str) -> String {
    format!("{}/share/{token}", state.settings.public_url.trim_end_matches('/'))
}

async fn shares_page(
    state: &AppState,
    viewer: &Viewer,
    topic: TopicId,
    fresh: Option<String>,
    error: Option<String>,
) -> WebResult<Response> {
    let user = viewer.user.id;
    let found = state.services.assistants.topic(user, topic).await.map_err(viewer.fail())?;
    let shares = state.services.shares.list(user, topic).await.map_err(viewer.fail())?;
    let now = loquat_core::time::Timestamp::now();
    let tr = viewer.tr;
    let links = shares
        .iter()
        .map(|share| LinkRow {
            id: share.id.to_string(),
            url: share_url(state, &share.token),
            created: format_time(share.created_at),
            expires: share.expires_at.map_or_else(|| tr.t("share.never").into_owned(), format_time),
            expired: share.expires_at.is_some_and(|at| at <= now),
            shows_name: share.show_name,
        })
        .collect();
    let page = SharesPage {
        tr,
        chrome: Chrome::new(viewer.theme),
        topic_id: topic.to_string(),
        topic_title: if found.title.is_empty() { tr.t("topic.untitled").into_owned() } else { found.title.clone() },
        back: topic_url(found.assistant_id, found.id),
        enabled: state.services.shares.enabled().await.map_err(viewer.fail())?,
        links,
        fresh,
        error,
    };
    render(&page, tr)
}

/// `GET /topics/{id}/shares`.
pub async fn show_shares(viewer: Viewer, State(state): State<AppState>, Path(id): Path<String>) -> WebResult<Response> {
    let topic: TopicId = parse_id(&id, &viewer)?;
    shares_page(&state, &viewer, topic, None, None).await
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct ShareForm {
    /// Days until it expires; empty or 0 for never.
    days: String,
    /// `on` when the page should show the owner's name.
    show_name: String,
}

/// `POST /topics/{id}/shares`: a new link; the page shows it to copy.
pub async fn create_share(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<ShareForm>,
) -> WebResult<Response> {
    let topic: TopicId = parse_id(&id, &viewer)?;
    let days = form.days.trim().parse::<u32>().ok().filter(|days| *days <= MAX_SHARE_DAYS);
    let show_name = matches!(form.show_name.as_str(), "on" | "1" | "true");
    match state.services.shares.create(viewer.user.id, topic, days, show_name).await {
        Ok(share) => shares_page(&state, &viewer, topic, Some(share_url(&state, &share.token)), None).await,
        Err(error @ loquat_core::CoreError::Invalid { .. }) => {
            let message = crate::error::user_message(&error, viewer.tr);
            let mut page = shares_page(&state, &viewer, topic, None, Some(message)).await?;
            *page.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(page)
        }
        Err(error) => Err(viewer.fail()(error)),
    }
}

/// `POST /topics/{id}/shares/{share}/revoke`.
pub async fn revoke_share(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((id, share)): Path<(String, String)>,
) -> WebResult<Response> {
    let topic: TopicId = parse_id(&id, &viewer)?;
    let share: ShareId = parse_id(&share, &viewer)?;
    state.services.shares.revoke(viewer.user.id, share).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/topics/{topic}/shares")))
}

pub struct SharedMessage {
    pub is_user: bool,
    pub html: String,
    pub model: String,
}

#[derive(Template)]
#[template(path = "shared.html")]
struct SharedPage {
    tr: Tr,
    chrome: Chrome,
    title: String,
    assistant: String,
    avatar: String,
    byline: String,
    messages: Vec<SharedMessage>,
}

/// `GET /share/{token}`: the shared conversation, to anyone holding the link.
pub async fn open_share(
    visitor: Visitor,
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> WebResult<Response> {
    let shared = state.services.shares.open(&token).await.map_err(visitor.fail())?;
    let tr = visitor.tr;
    let hosts = &state.settings.image_hosts;
    let messages = shared
        .messages
        .iter()
        .filter(|message| !message.content.is_empty())
        .map(|message| SharedMessage {
            is_user: message.role == MessageRole::User,
            html: match message.role {
                MessageRole::User => crate::markdown::render_plain(&message.content),
                MessageRole::Assistant => crate::markdown::render(&message.content, hosts),
            },
            model: message.model.clone().unwrap_or_default(),
        })
        .collect();
    let date = format_time(shared.shared_at);
    let byline = match &shared.author {
        Some(name) => tr.t_args("share.byline_named", &[("name", name), ("date", &date)]),
        None => tr.t_with("share.byline", "date", &date),
    };
    let page = SharedPage {
        tr,
        chrome: Chrome::new(visitor.theme),
        title: if shared.title.is_empty() { tr.t("topic.untitled").into_owned() } else { shared.title },
        assistant: shared.assistant_title,
        avatar: shared.assistant_avatar,
        byline,
        messages,
    };
    let mut response = render(&page, tr)?;
    let headers = response.headers_mut();
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    Ok(response)
}
