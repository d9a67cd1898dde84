//! Markdown: a topic's shown branch written as a document a person can read (a heading per
//! message), and such a document read back as one topic. A role heading is `##` or `###`, an
//! optional emoji, the role's name in English or Chinese, and optionally ` · ` and the model;
//! headings inside fenced code are text.

use sha2::Digest;

use super::batch::{Batch, ImportedMessage, ImportedTopic};
use crate::domain::{Message, MessageRole};
use crate::error::{CoreError, CoreResult};
use crate::time::Timestamp;

/// The words a written document uses for its headings (the reader's language).
pub struct Labels<'a> {
    pub user: &'a str,
    pub assistant: &'a str,
    pub untitled: &'a str,
}

/// The branch as Markdown: the title, then each message under its role's heading.
pub fn write(title: &str, branch: &[&Message], labels: &Labels<'_>) -> String {
    let mut out = String::new();
    let title = if title.trim().is_empty() { labels.untitled } else { title.trim() };
    out.push_str("# ");
    out.push_str(&title.replace('\n', " "));
    out.push_str("\n\n");
    for message in branch {
        match message.role {
            MessageRole::User => {
                out.push_str("## ");
                out.push_str(labels.user);
            }
            MessageRole::Assistant => {
                out.push_str("## ");
                out.push_str(labels.assistant);
                if let Some(model) = message.model.as_deref().filter(|model| !model.is_empty()) {
                    out.push_str(" · ");
                    out.push_str(model);
                }
            }
        }
        out.push_str("\n\n");
        out.push_str(message.content.trim_end());
        out.push_str("\n\n");
    }
    out
}

/// The role a line names when it is a role heading, and the model it gives.
fn role_heading(line: &str) -> Option<(MessageRole, Option<&str>)> {
    let rest = line.strip_prefix("### ").or_else(|| line.strip_prefix("## "))?.trim();
    let (name, model) = match rest.split_once(" · ") {
        Some((name, model)) => (name.trim(), Some(model.trim()).filter(|model| !model.is_empty())),
        None => (rest, None),
    };
    // An emoji (or any one symbol) before the name.
    let name = match name.split_once(' ') {
        Some((symbol, word)) if !symbol.chars().any(char::is_alphanumeric) => word.trim(),
        _ => name,
    };
    let role = match name.to_lowercase().as_str() {
        "user" | "you" | "用户" | "我" => MessageRole::User,
        "assistant" | "chatgpt" | "ai" | "助手" | "助理" => MessageRole::Assistant,
        _ => return None,
    };
    Some((role, model))
}

/// Reads a document written by [`write`] (or by hand in its shape) as one topic; the same text
/// is the same topic (its key is the text's hash).
pub fn parse(name: &str, text: &str) -> CoreResult<Batch> {
    let mut title = String::new();
    let mut messages: Vec<ImportedMessage> = Vec::new();
    let mut fence: Option<&str> = None;
    let now = Timestamp::now();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let heading = if fence.is_none() { role_heading(line.trim_end()) } else { None };
        if let Some(marker) = fence {
            if trimmed.starts_with(marker) {
                fence = None;
            }
        } else if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
            fence = Some(&trimmed[..3]);
        }
        if let Some((role, model)) = heading {
            let key = messages.len().to_string();
            let parent = messages.last().map(|last| last.key.clone());
            let at = Timestamp(now.as_millis() - 1_000_000 + messages.len() as i64);
            let mut message = ImportedMessage::new(key, parent, role, String::new(), at);
            message.model = model.map(str::to_owned);
            messages.push(message);
            continue;
        }
        match messages.last_mut() {
            Some(message) => {
                message.content.push_str(line);
                message.content.push('\n');
            }
            None => {
                if let Some(heading) = line.strip_prefix("# ").filter(|_| title.is_empty()) {
                    title = heading.trim().to_owned();
                }
            }
        }
    }
    for message in &mut messages {
        message.content = message.content.trim().to_owned();
    }
    if messages.is_empty() {
        return Err(CoreError::invalid("import_format"));
    }
    if title.is_empty() {
        let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
        title = stem.to_owned();
    }
    let key = format!("{:x}", sha2::Sha256::digest(text.as_bytes()));
    let at = messages[0].created_at;
    let topic = ImportedTopic { key, title, created_at: at, updated_at: now, messages, ..ImportedTopic::default() };
    Ok(Batch { topics: vec![topic], ..Batch::default() })
}
