//! The search page (`/search?q=`): a person's topics and messages that match, grouped by
//! topic, with the matches highlighted; each result opens its topic at the message.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use loquat_core::domain::MessageRole;
use loquat_core::service::{MAX_QUERY_CHARS, TopicResult};
use serde::Deserialize;

use super::chat::topic_url;
use super::{Chrome, render};
use crate::AppState;
use crate::context::Viewer;
use crate::error::WebResult;
use crate::i18n::Tr;

/// Text cut into runs, each highlighted or not.
pub type Marked = Vec<(String, bool)>;

fn marked(text: &str, marks: &[std::ops::Range<usize>]) -> Marked {
    let mut runs = Vec::new();
    let mut at = 0;
    for mark in marks {
        if mark.start < at || mark.end > text.len() {
            continue;
        }
        if mark.start > at {
            runs.push((text[at..mark.start].to_owned(), false));
        }
        runs.push((text[mark.clone()].to_owned(), true));
        at = mark.end;
    }
    if at < text.len() {
        runs.push((text[at..].to_owned(), false));
    }
    runs
}

pub struct ResultGroup {
    pub url: String,
    pub title: Marked,
    pub messages: Vec<ResultMessage>,
}

pub struct ResultMessage {
    pub url: String,
    pub is_user: bool,
    pub snippet: Marked,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    tr: Tr,
    chrome: Chrome,
    query: String,
    max_chars: usize,
    groups: Vec<ResultGroup>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct SearchQuery {
    q: String,
}

fn group(result: TopicResult, tr: Tr) -> ResultGroup {
    let url = topic_url(result.assistant_id, result.topic_id);
    let title = if result.title.is_empty() { tr.t("topic.untitled").into_owned() } else { result.title.clone() };
    let title_marks = if result.title.is_empty() { Vec::new() } else { result.title_marks };
    ResultGroup {
        title: marked(&title, &title_marks),
        messages: result
            .messages
            .into_iter()
            .map(|found| ResultMessage {
                url: format!("{url}?from={id}#m-{id}", id = found.message_id),
                is_user: found.role == MessageRole::User,
                snippet: marked(&found.snippet, &found.marks),
            })
            .collect(),
        url,
    }
}

/// `GET /search?q=`.
pub async fn search(
    viewer: Viewer,
    State(state): State<AppState>,
    Query(query): Query<SearchQuery>,
) -> WebResult<Response> {
    let query_text: String = query.q.chars().take(MAX_QUERY_CHARS).collect();
    let results = state.services.assistants.search(viewer.user.id, &query_text).await.map_err(viewer.fail())?;
    let page = SearchPage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        query: query_text,
        max_chars: MAX_QUERY_CHARS,
        groups: results.into_iter().map(|result| group(result, viewer.tr)).collect(),
    };
    render(&page, viewer.tr)
}
