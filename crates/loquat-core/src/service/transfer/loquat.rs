//! Loquat's own export format: one JSON document holding a person's assistants, the files their
//! messages name (name, type, size, SHA-256: the bytes stay in file storage), and every topic
//! with its whole message tree (all branches, the shown leaf, reasoning, usage, sources, tool
//! calls). Times are milliseconds since 1970. Read back by [`parse`] into a [`Batch`].

use serde::{Deserialize, Serialize};

use super::batch::{Batch, ImportedAssistant, ImportedFile, ImportedMessage, ImportedTopic};
use crate::domain::{
    Assistant, AssistantConfig, Message, MessageRole, MessageStatus, Source, StepStatus, StoredFile, TokenUsage,
    ToolStep, Topic,
};
use crate::error::{CoreError, CoreResult};
use crate::id::{MessageId, TopicId};
use crate::time::Timestamp;

/// The value of `format` that marks the document.
pub const FORMAT: &str = "loquat-export";
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct Document {
    pub format: String,
    pub version: u32,
    #[serde(default)]
    pub exported_at: i64,
    #[serde(default)]
    pub assistants: Vec<AssistantEntry>,
    #[serde(default)]
    pub files: Vec<FileEntry>,
    #[serde(default)]
    pub topics: Vec<TopicEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct AssistantEntry {
    pub id: String,
    #[serde(default)]
    pub is_default: bool,
    #[serde(default)]
    pub config: AssistantConfig,
    #[serde(default)]
    pub created_at: i64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct FileEntry {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub mime: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub sha256: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TopicEntry {
    pub id: String,
    pub assistant_id: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub pinned: bool,
    #[serde(default)]
    pub active_leaf_id: Option<String>,
    #[serde(default)]
    pub created_at: i64,
    #[serde(default)]
    pub updated_at: i64,
    #[serde(default)]
    pub messages: Vec<MessageEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct MessageEntry {
    pub id: String,
    #[serde(default)]
    pub parent_id: Option<String>,
    pub role: MessageRole,
    #[serde(default)]
    pub content: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reasoning: String,
    #[serde(default = "complete")]
    pub status: MessageStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<TokenUsage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
    #[serde(default)]
    pub created_at: i64,
    /// Ids of the document's files, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<SourceEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_steps: Vec<StepEntry>,
}

fn complete() -> MessageStatus {
    MessageStatus::Complete
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SourceEntry {
    pub number: u32,
    #[serde(default)]
    pub file_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_end: Option<u32>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub headings: String,
    #[serde(default)]
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct StepEntry {
    pub seq: u32,
    #[serde(default)]
    pub offset: u32,
    #[serde(default)]
    pub call_id: String,
    pub tool: String,
    #[serde(default)]
    pub arguments: String,
    #[serde(default)]
    pub result: String,
    pub status: String,
    #[serde(default)]
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<i64>,
}

impl AssistantEntry {
    pub fn of(assistant: &Assistant) -> Self {
        Self {
            id: assistant.id.to_string(),
            is_default: assistant.is_default,
            config: assistant.config.clone(),
            created_at: assistant.created_at.as_millis(),
        }
    }
}

impl FileEntry {
    pub fn of(file: &StoredFile) -> Self {
        Self {
            id: file.id.to_string(),
            name: file.name.clone(),
            mime: file.mime.clone(),
            size: file.size,
            sha256: file.sha256.clone(),
        }
    }
}

/// What one topic's entry is built from.
pub struct TopicParts<'a> {
    pub topic: &'a Topic,
    pub messages: &'a [Message],
    pub files: &'a [(MessageId, StoredFile)],
    pub sources: &'a [(MessageId, Source)],
    pub steps: &'a [ToolStep],
}

impl TopicEntry {
    pub fn of(parts: TopicParts<'_>) -> Self {
        let TopicParts { topic, messages, files, sources, steps } = parts;
        let messages = messages
            .iter()
            .map(|message| MessageEntry {
                id: message.id.to_string(),
                parent_id: message.parent_id.map(|parent| parent.to_string()),
                role: message.role,
                content: message.content.clone(),
                reasoning: message.reasoning.clone(),
                status: message.status,
                error_kind: message.error_kind.clone(),
                error_message: message.error_message.clone(),
                provider: message.provider.clone(),
                model: message.model.clone(),
                usage: message.usage,
                ttft_ms: message.ttft_ms,
                duration_ms: message.duration_ms,
                created_at: message.created_at.as_millis(),
                files: of_message(files, message.id).map(|file| file.id.to_string()).collect(),
                sources: of_message(sources, message.id).map(SourceEntry::of).collect(),
                tool_steps: steps.iter().filter(|step| step.message_id == message.id).map(StepEntry::of).collect(),
            })
            .collect();
        Self {
            id: topic.id.to_string(),
            assistant_id: topic.assistant_id.to_string(),
            title: topic.title.clone(),
            pinned: topic.pinned,
            active_leaf_id: topic.active_leaf_id.map(|leaf| leaf.to_string()),
            created_at: topic.created_at.as_millis(),
            updated_at: topic.updated_at.as_millis(),
            messages,
        }
    }
}

fn of_message<T>(rows: &[(MessageId, T)], message: MessageId) -> impl Iterator<Item = &T> {
    rows.iter().filter(move |(id, _)| *id == message).map(|(_, row)| row)
}

impl SourceEntry {
    fn of(source: &Source) -> Self {
        Self {
            number: source.number,
            file_name: source.file_name.clone(),
            page: source.page,
            page_end: source.page_end,
            headings: source.headings.clone(),
            text: source.text.clone(),
            url: source.url.clone(),
        }
    }
}

impl StepEntry {
    fn of(step: &ToolStep) -> Self {
        Self {
            seq: step.seq,
            offset: step.offset,
            call_id: step.call_id.clone(),
            tool: step.tool.clone(),
            arguments: step.arguments.clone(),
            result: step.result.clone(),
            status: step.status.as_str().to_owned(),
            started_at: step.started_at.as_millis(),
            duration_ms: step.duration_ms,
        }
    }
}

/// Reads a Loquat export into a batch keyed by the document's own ids.
pub fn parse(bytes: &[u8]) -> CoreResult<Batch> {
    let document: Document = serde_json::from_slice(bytes).map_err(|_| CoreError::invalid("import_format"))?;
    if document.format != FORMAT || document.version > VERSION {
        return Err(CoreError::invalid("import_version"));
    }
    let mut batch = Batch::default();
    let mut defaults = std::collections::HashSet::new();
    for assistant in document.assistants {
        if assistant.is_default {
            defaults.insert(assistant.id);
            continue; // its topics go to the importing person's default assistant
        }
        batch.assistants.push(ImportedAssistant {
            own_id: assistant.id.parse().ok(),
            key: assistant.id,
            config: assistant.config,
            created_at: Timestamp(assistant.created_at),
        });
    }
    for file in document.files {
        let sha256 = (!file.sha256.is_empty()).then_some(file.sha256);
        batch.files.insert(file.id, ImportedFile { name: file.name, sha256 });
    }
    for topic in document.topics {
        let messages = topic.messages.into_iter().map(imported_message).collect();
        batch.topics.push(ImportedTopic {
            own_id: topic.id.parse::<TopicId>().ok(),
            key: topic.id,
            assistant: (!defaults.contains(&topic.assistant_id)).then_some(topic.assistant_id),
            title: topic.title,
            pinned: topic.pinned,
            created_at: Timestamp(topic.created_at),
            updated_at: Timestamp(topic.updated_at),
            messages,
            active_leaf: topic.active_leaf_id,
            left_out: 0,
        });
    }
    Ok(batch)
}

fn imported_message(entry: MessageEntry) -> ImportedMessage {
    let at = Timestamp(entry.created_at);
    let mut message = ImportedMessage::new(entry.id, entry.parent_id, entry.role, entry.content, at);
    message.reasoning = entry.reasoning;
    message.status = entry.status;
    message.error_kind = entry.error_kind;
    message.error_message = entry.error_message;
    message.provider = entry.provider;
    message.model = entry.model;
    message.usage = entry.usage;
    message.ttft_ms = entry.ttft_ms;
    message.duration_ms = entry.duration_ms;
    message.files = entry.files;
    message.sources = entry
        .sources
        .into_iter()
        .map(|source| Source {
            number: source.number,
            file_id: None,
            file_name: source.file_name,
            page: source.page,
            page_end: source.page_end,
            headings: source.headings,
            text: source.text,
            url: source.url.filter(|url| url.starts_with("https://") || url.starts_with("http://")),
        })
        .collect();
    message.steps = entry
        .tool_steps
        .into_iter()
        .filter_map(|step| {
            Some(ToolStep {
                message_id: MessageId::default(),
                seq: step.seq,
                offset: step.offset,
                call_id: step.call_id,
                tool: step.tool,
                arguments: step.arguments,
                result: step.result,
                status: match StepStatus::parse(&step.status)? {
                    StepStatus::Running => StepStatus::Cancelled,
                    status => status,
                },
                started_at: Timestamp(step.started_at),
                duration_ms: step.duration_ms,
            })
        })
        .collect();
    message
}
