//! LobeChat's "export data" files, both families: the older settings file (`exportType`,
//! `state` with `sessions`, `topics` and `messages`, version 2 and later) and the table dump of
//! the database versions (`schemaHash`, `data` with `sessions`, `agents`, `agentsToSessions`,
//! `topics`, `messages`). A session becomes an assistant (the inbox is the person's default
//! assistant), a topic a topic, and the messages a session keeps outside topics one more topic;
//! tool rows are left out and the answer around them joined (`fold`).

use std::collections::HashMap;

use serde_json::Value;

use super::batch::{Batch, ImportedAssistant, ImportedMessage, ImportedTopic, MAX_MESSAGES, MAX_TOPICS, SkipReason};
use super::fold::{Row, fold};
use crate::domain::{AssistantConfig, MessageRole, MessageStatus, ModelParams};
use crate::error::{CoreError, CoreResult};
use crate::time::Timestamp;

/// Whether a parsed document is one of LobeChat's exports.
pub fn looks_like(document: &Value) -> bool {
    document.get("schemaHash").is_some() && document.get("data").is_some_and(Value::is_object)
        || document.get("exportType").is_some() && document.get("state").is_some_and(Value::is_object)
}

pub fn parse(document: &Value) -> CoreResult<Batch> {
    let (sessions, agents, links, topics, messages) = if let Some(data) = document.get("data") {
        (
            list(data, "sessions"),
            list(data, "agents"),
            list(data, "agentsToSessions"),
            list(data, "topics"),
            list(data, "messages"),
        )
    } else {
        let version = document.get("version").and_then(Value::as_u64).unwrap_or(0);
        let state = &document["state"];
        if version < 2 || state.get("sessions").is_some_and(Value::is_object) {
            return Err(CoreError::invalid("import_version"));
        }
        (list(state, "sessions"), &[][..], &[][..], list(state, "topics"), list(state, "messages"))
    };
    let mut batch = Batch::default();
    // Session id → the assistant's key (`None`: the inbox, the default assistant).
    let mut assistant_of: HashMap<String, Option<String>> = HashMap::new();
    let agents_by_id: HashMap<&str, &Value> =
        agents.iter().filter_map(|agent| Some((text(agent, "id")?, agent))).collect();
    let agent_of_session: HashMap<&str, &str> =
        links.iter().filter_map(|link| Some((text(link, "sessionId")?, text(link, "agentId")?))).collect();
    for session in sessions {
        let Some(id) = text(session, "id") else { continue };
        if id == "inbox" || text(session, "slug") == Some("inbox") {
            assistant_of.insert(id.to_owned(), None);
            continue;
        }
        // The dump keeps an agent apart from its session; the older file inside it.
        let agent = agent_of_session.get(id).and_then(|agent| agents_by_id.get(agent)).copied();
        let config = match agent {
            Some(agent) => agent_config(agent, agent, agent),
            None => agent_config(
                session.get("meta").unwrap_or(session),
                session.get("config").unwrap_or(&Value::Null),
                session.get("config").and_then(|config| config.get("chatConfig")).unwrap_or(&Value::Null),
            ),
        };
        let mut config = config;
        if config.title.is_empty() {
            config.title = text(session, "title").unwrap_or_default().to_owned();
        }
        let created_at = time(session, "createdAt");
        batch.assistants.push(ImportedAssistant { key: id.to_owned(), own_id: None, config, created_at });
        assistant_of.insert(id.to_owned(), Some(id.to_owned()));
    }
    let assistant = |session: Option<&str>| session.and_then(|session| assistant_of.get(session).cloned().flatten());
    let mut by_topic: HashMap<String, Vec<Row>> = HashMap::new();
    let mut topic_index: HashMap<String, usize> = HashMap::new();
    for topic in topics {
        let Some(id) = text(topic, "id") else { continue };
        if batch.topics.len() >= MAX_TOPICS {
            batch.skip(text(topic, "title").unwrap_or(id), SkipReason::TooMany);
            continue;
        }
        topic_index.insert(id.to_owned(), batch.topics.len());
        batch.topics.push(ImportedTopic {
            key: id.to_owned(),
            assistant: assistant(text(topic, "sessionId")),
            title: text(topic, "title").unwrap_or_default().to_owned(),
            pinned: topic.get("favorite").and_then(Value::as_bool).unwrap_or(false),
            created_at: time(topic, "createdAt"),
            updated_at: time(topic, "updatedAt"),
            ..ImportedTopic::default()
        });
    }
    for (count, message) in messages.iter().enumerate() {
        let Some(id) = text(message, "id") else { continue };
        if count >= MAX_MESSAGES {
            batch.skip(format!("{} …", messages.len() - count), SkipReason::TooMany);
            break;
        }
        let session = text(message, "sessionId");
        // A message outside any topic belongs to its session's own conversation.
        let topic = match text(message, "topicId") {
            Some(topic) if topic_index.contains_key(topic) => topic.to_owned(),
            _ => {
                let key = format!("session:{}", session.unwrap_or("inbox"));
                if !topic_index.contains_key(&key) {
                    topic_index.insert(key.clone(), batch.topics.len());
                    batch.topics.push(ImportedTopic {
                        key: key.clone(),
                        assistant: assistant(session),
                        created_at: time(message, "createdAt"),
                        updated_at: time(message, "createdAt"),
                        ..ImportedTopic::default()
                    });
                }
                key
            }
        };
        let parent = text(message, "parentId").map(str::to_owned);
        by_topic.entry(topic).or_default().push(Row {
            key: id.to_owned(),
            parent: parent.clone(),
            message: shown(id, parent, message),
        });
    }
    for (key, rows) in by_topic {
        let index = topic_index[&key];
        let mut folded = fold(rows);
        let topic = &mut batch.topics[index];
        // Rows in creation order, as the source listed them by time.
        folded.messages.sort_by_key(|message| message.created_at);
        topic.updated_at = topic.updated_at.max(folded.messages.last().map_or(Timestamp(0), |last| last.created_at));
        topic.messages = folded.messages;
        topic.left_out = folded.dropped;
    }
    Ok(batch)
}

/// A message as a person saw it: user and assistant rows (an error answer too); tool, system
/// and function rows are left out.
fn shown(id: &str, parent: Option<String>, message: &Value) -> Option<ImportedMessage> {
    let role = match text(message, "role")? {
        "user" => MessageRole::User,
        "assistant" => MessageRole::Assistant,
        _ => return None,
    };
    let content = text(message, "content").unwrap_or_default().to_owned();
    let mut imported = ImportedMessage::new(id.to_owned(), parent, role, content, time(message, "createdAt"));
    imported.reasoning = message
        .get("reasoning")
        .and_then(|reasoning| reasoning.get("content"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let extra = message.get("extra").unwrap_or(&Value::Null);
    imported.model = text(message, "model").or(text(extra, "fromModel")).or(text(extra, "model")).map(str::to_owned);
    imported.provider =
        text(message, "provider").or(text(extra, "fromProvider")).or(text(extra, "provider")).map(str::to_owned);
    if let Some(error) = message.get("error").filter(|error| error.is_object()) {
        imported.status = MessageStatus::Error;
        imported.error_kind = Some("upstream".to_owned());
        imported.error_message =
            text(error, "message").or(text(error, "type")).map(|text| super::batch::cut(text, 500));
    }
    let metadata = message.get("metadata").unwrap_or(&Value::Null);
    let tokens = |name: &str| metadata.get(name).and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
    if let (Some(prompt), Some(completion)) = (tokens("inputTextTokens"), tokens("outputTextTokens")) {
        imported.usage = Some(crate::domain::TokenUsage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            ..Default::default()
        });
    }
    let empty = imported.content.trim().is_empty() && imported.reasoning.is_empty();
    (!empty || imported.status == MessageStatus::Error).then_some(imported)
}

/// An assistant's settings from LobeChat's names: `meta` holds the title, description, avatar
/// and tags; `config` the system role, model and parameters; `chat` the chat options (the agent
/// format and the dump keep them in one object, the older file in three).
pub fn agent_config(meta: &Value, config: &Value, chat: &Value) -> AssistantConfig {
    let mut assistant = AssistantConfig {
        title: text(meta, "title").unwrap_or_default().to_owned(),
        description: text(meta, "description").unwrap_or_default().to_owned(),
        avatar: text(meta, "avatar").unwrap_or_default().to_owned(),
        system_role: text(config, "systemRole").unwrap_or_default().to_owned(),
        provider: text(config, "provider").unwrap_or_default().to_owned(),
        model: text(config, "model").unwrap_or_default().to_owned(),
        opening_message: text(config, "openingMessage").unwrap_or_default().to_owned(),
        opening_questions: strings(config, "openingQuestions"),
        input_template: text(chat, "inputTemplate").or(text(config, "inputTemplate")).unwrap_or_default().to_owned(),
        tags: strings(meta, "tags").into_iter().take(20).collect(),
        ..AssistantConfig::default()
    };
    if let Some(params) = config.get("params").filter(|params| params.is_object()) {
        let number = |name: &str| params.get(name).and_then(Value::as_f64).map(|value| value as f32);
        assistant.params = ModelParams {
            temperature: number("temperature"),
            top_p: number("top_p"),
            presence_penalty: number("presence_penalty"),
            frequency_penalty: number("frequency_penalty"),
            max_tokens: None,
        };
        let enabled = chat.get("enableMaxTokens").or(config.get("enableMaxTokens")).and_then(Value::as_bool);
        if enabled == Some(true) {
            assistant.params.max_tokens =
                params.get("max_tokens").and_then(Value::as_u64).and_then(|n| u32::try_from(n).ok());
        }
    }
    let history_on = chat.get("enableHistoryCount").or(config.get("enableHistoryCount")).and_then(Value::as_bool);
    if history_on == Some(true) {
        assistant.history_limit = chat
            .get("historyCount")
            .or(config.get("historyCount"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
    }
    assistant
}

/// An assistant in LobeChat's agent format (one file of its agent index).
pub fn agent_json(assistant: &crate::domain::Assistant) -> Value {
    let config = &assistant.config;
    let mut params = serde_json::Map::new();
    let mut put = |name: &str, value: Option<f32>| {
        if let Some(value) = value {
            params.insert(name.to_owned(), serde_json::json!(value));
        }
    };
    put("temperature", config.params.temperature);
    put("top_p", config.params.top_p);
    put("presence_penalty", config.params.presence_penalty);
    put("frequency_penalty", config.params.frequency_penalty);
    if let Some(max_tokens) = config.params.max_tokens {
        params.insert("max_tokens".to_owned(), serde_json::json!(max_tokens));
    }
    let mut agent = serde_json::json!({
        "systemRole": config.system_role,
        "params": params,
        "openingMessage": config.opening_message,
        "openingQuestions": config.opening_questions,
        "enableMaxTokens": config.params.max_tokens.is_some(),
    });
    let mut set = |name: &str, value: Value| {
        agent.as_object_mut().expect("an object").insert(name.to_owned(), value);
    };
    if !config.model.is_empty() {
        set("model", Value::from(config.model.clone()));
    }
    if !config.provider.is_empty() {
        set("provider", Value::from(config.provider.clone()));
    }
    if !config.input_template.is_empty() {
        set("inputTemplate", Value::from(config.input_template.clone()));
    }
    if let Some(limit) = config.history_limit {
        set("enableHistoryCount", Value::from(true));
        set("historyCount", Value::from(limit));
    }
    let created = jiff::Timestamp::from_millisecond(assistant.created_at.as_millis())
        .map(|time| time.strftime("%Y-%m-%d").to_string())
        .unwrap_or_default();
    serde_json::json!({
        "identifier": identifier(&config.title, assistant.id),
        "schemaVersion": 1,
        "createdAt": created,
        "meta": {
            "title": config.title,
            "description": config.description,
            "avatar": config.avatar,
            "tags": config.tags,
        },
        "config": agent,
    })
}

/// A file-name-like identifier from a title (`Tea Guide` → `tea-guide`), else the id.
fn identifier(title: &str, id: crate::id::AssistantId) -> String {
    let mut slug = String::new();
    for ch in title.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_end_matches('-');
    if slug.is_empty() { id.to_string() } else { slug.chars().take(64).collect() }
}

/// An assistant from one agent of LobeChat's format (`meta` and `config`); an error when the
/// document is not one.
pub fn parse_agent(document: &Value) -> CoreResult<AssistantConfig> {
    let (Some(meta), Some(config)) =
        (document.get("meta").filter(|meta| meta.is_object()), document.get("config").filter(|c| c.is_object()))
    else {
        return Err(CoreError::invalid("agent_format"));
    };
    let assistant = agent_config(meta, config, config.get("chatConfig").unwrap_or(config));
    if assistant.title.trim().is_empty() {
        return Err(CoreError::invalid("agent_format"));
    }
    Ok(assistant)
}

fn list<'a>(object: &'a Value, name: &str) -> &'a [Value] {
    object.get(name).and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default()
}

fn text<'a>(object: &'a Value, name: &str) -> Option<&'a str> {
    object.get(name).and_then(Value::as_str).filter(|text| !text.is_empty())
}

fn strings(object: &Value, name: &str) -> Vec<String> {
    list(object, name).iter().filter_map(Value::as_str).map(str::to_owned).collect()
}

/// A time given as milliseconds or as an ISO-8601 text.
fn time(object: &Value, name: &str) -> Timestamp {
    match object.get(name) {
        Some(Value::Number(number)) => Timestamp(number.as_i64().unwrap_or(0)),
        Some(Value::String(text)) => {
            text.parse::<jiff::Timestamp>().map(|time| Timestamp(time.as_millisecond())).unwrap_or(Timestamp(0))
        }
        _ => Timestamp(0),
    }
}
