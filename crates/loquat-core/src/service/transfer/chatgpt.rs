//! ChatGPT's data export: `conversations.json`, an array of conversations, each a tree of nodes
//! (`mapping`) with the leaf last shown (`current_node`). Every branch is kept (regenerated
//! answers and edited questions are siblings); system rows, tool traffic and hidden rows are
//! left out (`fold`), an answer's thoughts become its reasoning, and images are not carried
//! (the export holds them as separate files Loquat does not read).

use std::collections::HashMap;

use serde::Deserialize;

use super::batch::{Batch, ImportedMessage, ImportedTopic, MAX_MESSAGES, MAX_TOPICS, SkipReason};
use super::fold::{Row, fold};
use crate::domain::MessageRole;
use crate::error::{CoreError, CoreResult};
use crate::time::Timestamp;

#[derive(Deserialize)]
struct Conversation {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    update_time: Option<f64>,
    #[serde(default)]
    mapping: HashMap<String, Node>,
    #[serde(default)]
    current_node: Option<String>,
}

#[derive(Deserialize)]
struct Node {
    #[serde(default)]
    message: Option<NodeMessage>,
    #[serde(default)]
    parent: Option<String>,
}

#[derive(Deserialize)]
struct NodeMessage {
    author: Author,
    #[serde(default)]
    create_time: Option<f64>,
    #[serde(default)]
    content: Option<Content>,
    #[serde(default)]
    metadata: Option<Metadata>,
    #[serde(default)]
    recipient: Option<String>,
}

#[derive(Deserialize)]
struct Author {
    role: String,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    content_type: String,
    #[serde(default)]
    parts: Vec<serde_json::Value>,
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thoughts: Vec<Thought>,
}

#[derive(Deserialize)]
struct Thought {
    #[serde(default)]
    summary: String,
    #[serde(default)]
    content: String,
}

#[derive(Deserialize, Default)]
struct Metadata {
    #[serde(default)]
    model_slug: Option<String>,
    #[serde(default)]
    is_visually_hidden_from_conversation: bool,
    #[serde(default)]
    is_user_system_message: bool,
}

pub fn parse(bytes: &[u8]) -> CoreResult<Batch> {
    let conversations: Vec<Conversation> =
        serde_json::from_slice(bytes).map_err(|_| CoreError::invalid("import_format"))?;
    let mut batch = Batch::default();
    let mut total = 0;
    for (place, conversation) in conversations.into_iter().enumerate() {
        let title = conversation.title.clone().unwrap_or_default();
        if batch.topics.len() >= MAX_TOPICS || total + conversation.mapping.len() > MAX_MESSAGES {
            batch.skip(title, SkipReason::TooMany);
            continue;
        }
        let key = conversation
            .id
            .clone()
            .or(conversation.conversation_id.clone())
            .unwrap_or_else(|| format!("{place}:{title}:{}", conversation.create_time.unwrap_or_default()));
        let topic_at = seconds(conversation.create_time).unwrap_or(Timestamp(0));
        // Rows with a message Loquat leaves out (the tree's empty root is no message).
        let mut left_out = 0;
        let rows = conversation
            .mapping
            .into_iter()
            .map(|(id, node)| {
                let had_message = node.message.is_some();
                let message = node.message.and_then(|message| shown(&id, node.parent.clone(), message, topic_at));
                left_out += usize::from(had_message && message.is_none());
                Row { key: id, parent: node.parent, message }
            })
            .collect();
        let folded = fold(rows);
        total += folded.messages.len();
        let current = conversation.current_node.map(|node| folded.home.get(&node).cloned().unwrap_or(node));
        batch.topics.push(ImportedTopic {
            key,
            title,
            created_at: topic_at,
            updated_at: seconds(conversation.update_time).unwrap_or(topic_at),
            messages: folded.messages,
            active_leaf: current,
            left_out,
            ..ImportedTopic::default()
        });
    }
    Ok(batch)
}

/// The message a node shows, or `None` for a row a person does not see.
fn shown(id: &str, parent: Option<String>, message: NodeMessage, topic_at: Timestamp) -> Option<ImportedMessage> {
    let metadata = message.metadata.unwrap_or_default();
    if metadata.is_visually_hidden_from_conversation || metadata.is_user_system_message {
        return None;
    }
    let role = match message.author.role.as_str() {
        "user" => MessageRole::User,
        "assistant" => MessageRole::Assistant,
        _ => return None, // system, tool
    };
    if message.recipient.as_deref().is_some_and(|recipient| recipient != "all") {
        return None; // a call of a tool (code, browsing)
    }
    let content = message.content?;
    let at = seconds(message.create_time).unwrap_or(topic_at);
    let mut imported = ImportedMessage::new(id.to_owned(), parent, role, String::new(), at);
    match content.content_type.as_str() {
        "text" | "multimodal_text" => imported.content = text_of(&content.parts),
        "code" | "execution_output" => return None,
        "thoughts" if role == MessageRole::Assistant => {
            let thoughts: Vec<String> = content
                .thoughts
                .iter()
                .map(
                    |thought| {
                        if thought.content.is_empty() { thought.summary.clone() } else { thought.content.clone() }
                    },
                )
                .filter(|text| !text.is_empty())
                .collect();
            imported.reasoning = thoughts.join("\n\n");
        }
        _ => imported.content = content.text.unwrap_or_default(),
    }
    if imported.content.trim().is_empty() && imported.reasoning.trim().is_empty() {
        return None;
    }
    if role == MessageRole::Assistant {
        imported.model = metadata.model_slug;
        imported.provider = imported.model.as_ref().map(|_| "openai".to_owned());
    }
    Some(imported)
}

/// The text parts of a message, joined; images and other objects left out (an object's own
/// `text`, such as an audio transcript, kept).
fn text_of(parts: &[serde_json::Value]) -> String {
    let texts: Vec<&str> = parts
        .iter()
        .filter_map(|part| match part {
            serde_json::Value::String(text) => Some(text.as_str()),
            serde_json::Value::Object(object) => object.get("text").and_then(serde_json::Value::as_str),
            _ => None,
        })
        .filter(|text| !text.is_empty())
        .collect();
    texts.join("\n\n")
}

fn seconds(time: Option<f64>) -> Option<Timestamp> {
    let time = time.filter(|time| time.is_finite() && *time > 0.0 && *time < 1e11)?;
    Some(Timestamp((time * 1000.0) as i64))
}
