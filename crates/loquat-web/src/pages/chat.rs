//! The chat page (assistant, topics, the visible branch, the composer) and the plain-form
//! actions on messages and topics. Every action redirects back, so the page works without
//! JavaScript; the script only upgrades sending and streaming.

use loquat_core::domain::TopicFeature;
use std::str::FromStr;

use crate::form::Form;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use loquat_core::domain::Assistant;
use loquat_core::id::{AssistantId, MessageId, TopicId};
use loquat_core::service::Conversation;
use loquat_core::time::Timestamp;
use loquat_core::tree::BranchEntry;
use serde::Deserialize;

use super::{Chrome, render, see_other};
use crate::AppState;
use crate::context::Viewer;
use crate::error::{WebError, WebResult};
use crate::i18n::Tr;
use crate::views::{
    AssistantLink, MessageView, ModelGroup, ModelOption, TopicGroup, assistant_title, chosen_model, interleaved,
    model_groups, topic_groups,
};

#[derive(Template)]
#[template(path = "chat.html")]
pub struct ChatPage {
    pub tr: Tr,
    pub chrome: Chrome,
    pub assistants: Vec<AssistantLink>,
    pub assistant: AssistantLink,
    pub topic_groups: Vec<TopicGroup>,
    /// Empty for a new topic.
    pub topic_id: String,
    pub page_title: String,
    pub messages: Vec<MessageView>,
    /// The branch goes back further than `messages`: where to get the part before them.
    pub earlier: Option<Earlier>,
    pub opening_html: String,
    pub opening_questions: Vec<String>,
    pub no_provider: bool,
    pub model_groups: Vec<ModelGroup>,
    /// The answer being generated on the visible branch, or empty (the composer shows Stop).
    pub generating_id: String,
    /// The largest file the composer may attach, in bytes.
    pub max_file_bytes: u64,
    /// The names of the knowledge bases the assistant answers from (empty: none).
    pub knowledge: String,
    /// Whether this topic uses them.
    pub knowledge_on: bool,
    /// The assistant's tools, by name (empty: it has none).
    pub tools: String,
    pub tools_on: bool,
    /// The topic's summary of its older messages (HTML), and who wrote it when; empty for none.
    pub summary_html: String,
    pub summary_meta: String,
    pub user_name: String,
    pub user_initial: String,
    pub is_admin: bool,
}

impl ChatPage {
    /// Where this page's forms come back to: the open topic, or the assistant's new topic.
    pub fn back_url(&self) -> String {
        if self.topic_id.is_empty() {
            format!("/chat/{}", self.assistant.id)
        } else {
            topic_url(&self.assistant.id, &self.topic_id)
        }
    }

    /// The model the picker shows as chosen.
    pub fn current_model(&self) -> Option<&ModelOption> {
        chosen_model(&self.model_groups)
    }

    /// Whether the model answering reads images (the composer warns before sending one).
    pub fn sees_images(&self) -> bool {
        self.current_model().is_some_and(|model| model.capabilities.iter().any(|c| c.icon == "vision"))
    }
}

/// How many messages of a branch a page shows at first: the latest ones; the script loads the
/// earlier ones as the reader scrolls up (no JavaScript: a link to the page starting there).
pub const PAGE_MESSAGES: usize = 50;

/// The part of a branch before the messages shown.
pub struct Earlier {
    /// The fragment of the messages before these (`…/earlier?before=<id>`), for the script.
    pub fetch_url: String,
    /// The page that starts a page earlier, for a reader without JavaScript.
    pub page_url: String,
}

/// Messages of a branch loaded on demand: a page of them, with the link to the part before.
#[derive(Template)]
#[template(path = "message_list.html")]
pub struct MessageListFragment {
    pub tr: Tr,
    pub messages: Vec<MessageView>,
    pub earlier: Option<Earlier>,
}

/// The range of a branch of `len` messages a page shows: the latest page, or from `from` (a
/// message of the branch, a little context before it) to the end; or, for the part before
/// `before`, the page that ends there.
fn page_range(ids: &[MessageId], from: Option<MessageId>, before: Option<MessageId>) -> std::ops::Range<usize> {
    let position = |id: MessageId| ids.iter().position(|candidate| *candidate == id);
    match (before.and_then(position), from.and_then(position)) {
        (Some(end), _) => end.saturating_sub(PAGE_MESSAGES)..end,
        (None, Some(start)) => start.saturating_sub(2)..ids.len(),
        (None, None) => ids.len().saturating_sub(PAGE_MESSAGES)..ids.len(),
    }
}

/// Where the part of the branch before `start` can be had, if there is one.
fn earlier_link(assistant: AssistantId, topic: TopicId, ids: &[MessageId], start: usize) -> Option<Earlier> {
    let first_shown = ids.get(start).filter(|_| start > 0)?;
    let page_start = ids[start.saturating_sub(PAGE_MESSAGES)];
    Some(Earlier {
        fetch_url: format!("{}/earlier?before={first_shown}", topic_url(assistant, topic)),
        page_url: format!("{}?from={page_start}", topic_url(assistant, topic)),
    })
}

/// `?from=<message>`: the page starts at that message of the branch (a redirect to an older
/// message, a reader without JavaScript going back).
#[derive(Deserialize, Default)]
#[serde(default)]
pub struct TopicQuery {
    from: String,
    before: String,
}

/// One message, for the chat page and for fragments sent to the script.
#[derive(Template)]
#[template(path = "message.html")]
pub struct MessageFragment<'a> {
    pub tr: Tr,
    pub m: &'a MessageView,
}

/// The inside of a message (what changes while it streams and when it ends).
#[derive(Template)]
#[template(path = "message_body.html")]
pub struct MessageBodyFragment<'a> {
    pub tr: Tr,
    pub m: &'a MessageView,
}

/// Parses an id from a path; a malformed id is simply "not found".
pub fn parse_id<T: FromStr>(text: &str, viewer: &Viewer) -> WebResult<T> {
    text.parse().map_err(|_| WebError::not_found(viewer.tr, viewer.flavor))
}

pub fn topic_url(assistant: impl std::fmt::Display, topic: impl std::fmt::Display) -> String {
    format!("/chat/{assistant}/{topic}")
}

pub async fn index(viewer: Viewer, State(state): State<AppState>) -> WebResult<Response> {
    let assistant = state.services.assistants.default_assistant(viewer.user.id).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/chat/{}", assistant.id)))
}

pub async fn show_new_topic(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(assistant): Path<String>,
) -> WebResult<Response> {
    let assistant_id: AssistantId = parse_id(&assistant, &viewer)?;
    let assistant = state.services.assistants.assistant(viewer.user.id, assistant_id).await.map_err(viewer.fail())?;
    chat_page(&viewer, &state, &assistant, None).await
}

pub async fn show_topic(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((assistant, topic)): Path<(String, String)>,
    Query(query): Query<TopicQuery>,
) -> WebResult<Response> {
    let (assistant_id, conversation) = owned_conversation(&viewer, &state, &assistant, &topic).await?;
    let user = viewer.user.id;
    let assistant = state.services.assistants.assistant(user, assistant_id).await.map_err(viewer.fail())?;
    let from = query.from.parse().ok();
    chat_page(&viewer, &state, &assistant, Some((conversation, from))).await
}

/// The messages of a branch before `?before=<message>`, a page of them, as HTML for the
/// script that loads them as the reader scrolls up.
pub async fn earlier_messages(
    viewer: Viewer,
    State(state): State<AppState>,
    Path((assistant, topic)): Path<(String, String)>,
    Query(query): Query<TopicQuery>,
) -> WebResult<Response> {
    let (assistant_id, conversation) = owned_conversation(&viewer, &state, &assistant, &topic).await?;
    let ids: Vec<MessageId> = conversation.branch.iter().map(|entry| entry.message.id).collect();
    let before = query.before.parse().map_err(|_| viewer.invalid_field("before"))?;
    if !ids.contains(&before) {
        return Err(WebError::not_found(viewer.tr, viewer.flavor));
    }
    let range = page_range(&ids, None, Some(before));
    let earlier = earlier_link(assistant_id, conversation.topic.id, &ids, range.start);
    let messages = message_views(&state, &conversation, range, viewer.tr).await;
    render(&MessageListFragment { tr: viewer.tr, messages, earlier }, viewer.tr)
}

/// The topic of the path with its branch, if it is the viewer's and the assistant's.
async fn owned_conversation(
    viewer: &Viewer,
    state: &AppState,
    assistant: &str,
    topic: &str,
) -> WebResult<(AssistantId, Conversation)> {
    let assistant_id: AssistantId = parse_id(assistant, viewer)?;
    let topic_id: TopicId = parse_id(topic, viewer)?;
    let conversation = state.services.assistants.conversation(viewer.user.id, topic_id).await.map_err(viewer.fail())?;
    if conversation.topic.assistant_id != assistant_id {
        return Err(WebError::not_found(viewer.tr, viewer.flavor));
    }
    Ok((assistant_id, conversation))
}

/// The views of a range of the branch, their markdown rendered (or taken from the cache).
async fn message_views(
    state: &AppState,
    conversation: &Conversation,
    range: std::ops::Range<usize>,
    tr: Tr,
) -> Vec<MessageView> {
    let entries = &conversation.branch[range];
    let rendered = state.renderer.messages(entries.iter().map(|entry| &entry.message)).await;
    let files = |entry: &BranchEntry| conversation.files.get(&entry.message.id).map_or(&[][..], Vec::as_slice);
    let sources = |entry: &BranchEntry| conversation.sources.get(&entry.message.id).map_or(&[][..], Vec::as_slice);
    let steps = |entry: &BranchEntry| conversation.steps.get(&entry.message.id).map_or(&[][..], Vec::as_slice);
    let mut views = Vec::with_capacity(entries.len());
    for (entry, rendered) in entries.iter().zip(rendered) {
        let in_place = interleaved(&state.renderer, &entry.message.content, steps(entry), tr).await;
        views.push(
            // Tool calls first: the citations are linked in the text they end in.
            MessageView::from_entry(entry, tr, rendered)
                .with_files(files(entry))
                .with_steps_in_place(in_place)
                .with_sources(sources(entry), tr),
        );
    }
    views
}

async fn chat_page(
    viewer: &Viewer,
    state: &AppState,
    assistant: &Assistant,
    conversation: Option<(Conversation, Option<MessageId>)>,
) -> WebResult<Response> {
    let user = viewer.user.id;
    let services = &state.services;
    let tr = viewer.tr;
    let assistants = services.assistants.list_assistants(user).await.map_err(viewer.fail())?;
    let topics = services.assistants.list_topics(user, assistant.id).await.map_err(viewer.fail())?;
    let providers = services.providers.provider_options(user).await.map_err(viewer.fail())?;
    let current_topic = conversation.as_ref().map(|(c, _)| &c.topic);
    let (messages, earlier) = match &conversation {
        Some((conversation, from)) => {
            let ids: Vec<MessageId> = conversation.branch.iter().map(|entry| entry.message.id).collect();
            let range = page_range(&ids, *from, None);
            let earlier = earlier_link(assistant.id, conversation.topic.id, &ids, range.start);
            (message_views(state, conversation, range, tr).await, earlier)
        }
        None => (Vec::new(), None),
    };
    let config = &assistant.config;
    let groups = model_groups(&providers, &config.provider, &config.model, tr);
    let opening_html = if config.opening_message.is_empty() {
        String::new()
    } else {
        state.renderer.markdown(config.opening_message.clone()).await
    };
    let page_title = match current_topic {
        Some(topic) if !topic.title.is_empty() => topic.title.clone(),
        _ => assistant_title(assistant, tr),
    };
    let off = conversation.as_ref().map_or(&[][..], |(c, _)| c.features_off.as_slice());
    let bases = services.knowledge.assistant_bases(user, assistant.id).await.map_err(viewer.fail())?;
    let knowledge = if bases.is_empty() {
        String::new()
    } else {
        let all = services.knowledge.list(user).await.map_err(viewer.fail())?;
        let names: Vec<String> = all.into_iter().filter(|b| bases.contains(&b.id)).map(|b| b.name).collect();
        names.join(", ")
    };
    let knowledge_on = !off.contains(&TopicFeature::Knowledge);
    // The assistant's tools the server has (the others are skipped when it answers); an
    // assistant without tools costs the page no lookup.
    let catalogue = if config.tools.is_empty() {
        Vec::new()
    } else {
        services.chat.tools_for(&viewer.user).await.map_err(viewer.fail())?
    };
    let tools: Vec<&str> = config
        .tools
        .iter()
        .filter_map(|name| catalogue.iter().find(|known| known.name == *name))
        .map(|tool| tool.label.as_str())
        .collect();
    let tools = tools.join(", ");
    let tools_on = !off.contains(&TopicFeature::Tools);
    let summary = conversation.as_ref().and_then(|(c, _)| c.summary.clone()).filter(|_| config.compress_history);
    let (summary_html, summary_meta) = match summary {
        Some(summary) => {
            let when = crate::views::format_time(summary.updated_at);
            let meta = tr.t_args("summary.meta", &[("model", &summary.model), ("date", &when)]);
            (state.renderer.markdown(summary.content).await.to_string(), meta)
        }
        None => (String::new(), String::new()),
    };
    let page = ChatPage {
        summary_html,
        summary_meta,
        knowledge,
        knowledge_on,
        tools,
        tools_on,
        tr,
        chrome: Chrome::new(viewer.theme),
        assistants: assistants.iter().map(|a| AssistantLink::new(a, Some(assistant), tr)).collect(),
        assistant: AssistantLink::new(assistant, Some(assistant), tr),
        topic_groups: topic_groups(&topics, current_topic, Timestamp::now(), viewer.utc_offset_minutes, tr),
        topic_id: current_topic.map(|t| t.id.to_string()).unwrap_or_default(),
        page_title,
        generating_id: messages.iter().find(|m| m.generating).map(|m| m.id.clone()).unwrap_or_default(),
        max_file_bytes: state.services.files.max_bytes(),
        messages,
        earlier,
        opening_html,
        opening_questions: config.opening_questions.clone(),
        no_provider: providers.is_empty(),
        user_name: viewer.user.name.clone(),
        user_initial: viewer.user.name.chars().next().map(String::from).unwrap_or_default(),
        is_admin: viewer.is_admin(),
        model_groups: groups,
    };
    render(&page, tr)
}

#[derive(Template)]
#[template(path = "edit_message.html")]
struct EditMessagePage {
    tr: Tr,
    chrome: Chrome,
    id: String,
    content: String,
    back_url: String,
}

pub async fn edit_message_page(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    let message = state.services.assistants.message(viewer.user.id, id).await.map_err(viewer.fail())?;
    let topic = state.services.assistants.topic(viewer.user.id, message.topic_id).await.map_err(viewer.fail())?;
    let page = EditMessagePage {
        tr: viewer.tr,
        chrome: Chrome::new(viewer.theme),
        id: id.to_string(),
        content: message.content,
        back_url: topic_url(topic.assistant_id, topic.id),
    };
    render(&page, viewer.tr)
}

#[derive(Deserialize)]
pub struct ContentForm {
    content: String,
}

pub async fn edit_message(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<ContentForm>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    state.allow_chat(&viewer).await?;
    let language = viewer.locale().code();
    let exchange =
        state.services.chat.edit_message(viewer.user.id, id, &form.content, language).await.map_err(viewer.fail())?;
    let topic = &exchange.topic;
    Ok(see_other(&format!("{}#m-{}", topic_url(topic.assistant_id, topic.id), exchange.answer.id)))
}

pub async fn regenerate_message(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    state.allow_chat(&viewer).await?;
    let exchange =
        state.services.chat.regenerate(viewer.user.id, id, viewer.locale().code()).await.map_err(viewer.fail())?;
    let topic = &exchange.topic;
    Ok(see_other(&format!("{}#m-{}", topic_url(topic.assistant_id, topic.id), exchange.answer.id)))
}

/// `POST /messages/{id}/continue`: a cut-off answer goes on, as a new version of it.
pub async fn continue_message(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    state.allow_chat(&viewer).await?;
    let chat = &state.services.chat;
    let exchange = chat.continue_answer(viewer.user.id, id, viewer.locale().code()).await.map_err(viewer.fail())?;
    let topic = &exchange.topic;
    Ok(see_other(&format!("{}#m-{}", topic_url(topic.assistant_id, topic.id), exchange.answer.id)))
}

pub async fn delete_message(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    let topic = state.services.chat.delete_message(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other(&topic_url(topic.assistant_id, topic.id)))
}

pub async fn switch_branch(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: MessageId = parse_id(&id, &viewer)?;
    let topic = state.services.assistants.switch_branch(viewer.user.id, id).await.map_err(viewer.fail())?;
    // The switched message may be far up a long branch: the page starts there.
    Ok(see_other(&format!("{}?from={id}#m-{id}", topic_url(topic.assistant_id, topic.id))))
}

#[derive(Deserialize)]
pub struct RenameForm {
    title: String,
}

pub async fn rename_topic(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<RenameForm>,
) -> WebResult<Response> {
    let id: TopicId = parse_id(&id, &viewer)?;
    state.services.assistants.rename_topic(viewer.user.id, id, &form.title).await.map_err(viewer.fail())?;
    let topic = state.services.assistants.topic(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other(&topic_url(topic.assistant_id, topic.id)))
}

#[derive(Deserialize)]
pub struct PinForm {
    /// `1` to pin, anything else to unpin.
    #[serde(default)]
    pinned: String,
    /// The page to go back to (same-site paths only).
    #[serde(default)]
    back: String,
}

/// `POST /topics/{id}/pin`: pins a topic to the top of the list, or unpins it.
pub async fn pin_topic(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<PinForm>,
) -> WebResult<Response> {
    let id: TopicId = parse_id(&id, &viewer)?;
    let assistants = &state.services.assistants;
    assistants.set_topic_pinned(viewer.user.id, id, form.pinned == "1").await.map_err(viewer.fail())?;
    let topic = assistants.topic(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other(&super::safe_next(&form.back, &topic_url(topic.assistant_id, topic.id))))
}

pub async fn delete_topic(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: TopicId = parse_id(&id, &viewer)?;
    let topic = state.services.assistants.topic(viewer.user.id, id).await.map_err(viewer.fail())?;
    state.services.assistants.delete_topic(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other(&format!("/chat/{}", topic.assistant_id)))
}

/// `POST /topics/{id}/summary`: the summary of the topic's older messages written again.
pub async fn regenerate_summary(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> WebResult<Response> {
    let id: TopicId = parse_id(&id, &viewer)?;
    let topic = state.services.assistants.topic(viewer.user.id, id).await.map_err(viewer.fail())?;
    state.services.chat.regenerate_summary(viewer.user.id, id).await.map_err(viewer.fail())?;
    Ok(see_other(&topic_url(topic.assistant_id, topic.id)))
}

pub async fn not_found(viewer: Viewer) -> WebError {
    WebError::not_found(viewer.tr, viewer.flavor)
}

#[derive(Deserialize)]
pub struct TopicKnowledgeForm {
    /// `1` to use the assistant's knowledge bases in this topic, anything else to stop.
    #[serde(default)]
    on: String,
}

/// `POST /topics/{id}/knowledge`: the assistant's knowledge on or off for one topic.
pub async fn set_topic_knowledge(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<TopicKnowledgeForm>,
) -> WebResult<Response> {
    set_topic_feature(viewer, state, id, TopicFeature::Knowledge, form.on == "1").await
}

/// `POST /topics/{id}/tools`: the assistant's tools on or off for one topic.
pub async fn set_topic_tools(
    viewer: Viewer,
    State(state): State<AppState>,
    Path(id): Path<String>,
    Form(form): Form<TopicKnowledgeForm>,
) -> WebResult<Response> {
    set_topic_feature(viewer, state, id, TopicFeature::Tools, form.on == "1").await
}

async fn set_topic_feature(
    viewer: Viewer,
    state: AppState,
    id: String,
    feature: TopicFeature,
    on: bool,
) -> WebResult<Response> {
    let id: TopicId = parse_id(&id, &viewer)?;
    let user = viewer.user.id;
    state.services.assistants.set_topic_feature(user, id, feature, on).await.map_err(viewer.fail())?;
    let topic = state.services.assistants.topic(user, id).await.map_err(viewer.fail())?;
    Ok(see_other(&topic_url(topic.assistant_id, topic.id)))
}
