//! Turning an assistant and a branch of messages into the request sent upstream: placeholder
//! expansion in the system role, the input template, and the history limit.

use std::collections::HashMap;

use crate::domain::{AssistantConfig, Message, MessageRole, MessageStatus};
use crate::id::MessageId;
use crate::llm::{ChatMessage, ChatRole};

/// Values for the `{{…}}` placeholders of a system role.
#[derive(Debug, Clone)]
pub struct PromptContext {
    pub now: jiff::Zoned,
    pub model: String,
    pub username: String,
    /// The user's interface language, e.g. `zh-CN`.
    pub language: String,
}

/// Replaces `{{date}}`, `{{time}}`, `{{datetime}}`, `{{model}}`, `{{username}}` and
/// `{{language}}`; unknown placeholders are left as they are.
pub fn expand_placeholders(template: &str, context: &PromptContext) -> String {
    if !template.contains("{{") {
        return template.to_owned();
    }
    let date = context.now.strftime("%Y-%m-%d").to_string();
    let time = context.now.strftime("%H:%M:%S").to_string();
    let datetime = format!("{date} {time}");
    let mut result = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        result.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            result.push_str(&rest[start..]);
            return result;
        };
        let name = after[..end].trim();
        let value = match name {
            "date" => Some(date.as_str()),
            "time" => Some(time.as_str()),
            "datetime" => Some(datetime.as_str()),
            "model" => Some(context.model.as_str()),
            "username" => Some(context.username.as_str()),
            "language" => Some(context.language.as_str()),
            _ => None,
        };
        match value {
            Some(value) => result.push_str(value),
            None => result.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    result.push_str(rest);
    result
}

/// Wraps user text in the assistant's input template (`{{text}}` marks where it goes; a
/// template without the marker gets the text appended).
pub fn apply_input_template(template: &str, text: &str) -> String {
    if template.trim().is_empty() {
        return text.to_owned();
    }
    if template.contains("{{text}}") { template.replace("{{text}}", text) } else { format!("{template}\n\n{text}") }
}

/// What a user message's files add to it in a request: images, and text after the message's
/// own (documents or their passages). See `service::materials`.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Materials {
    pub images: Vec<crate::llm::Image>,
    pub text: String,
}

/// The messages of the branch that a request sends: `history_limit` earlier messages besides
/// the latest one. Failed answers with no text and answers still generating are left out, and
/// so are messages with neither text nor files (`has_files`).
pub fn sent_history<'a>(
    config: &AssistantConfig,
    branch: &'a [Message],
    has_files: impl Fn(MessageId) -> bool,
) -> Vec<&'a Message> {
    let usable: Vec<&Message> = branch
        .iter()
        .filter(|message| message.status != MessageStatus::Generating)
        .filter(|message| !message.content.trim().is_empty() || has_files(message.id))
        .collect();
    let keep = match config.history_limit {
        Some(limit) => (limit as usize).saturating_add(1).min(usable.len()),
        None => usable.len(),
    };
    usable[usable.len() - keep..].to_vec()
}

/// Builds the messages for a request from the branch that ends with the user's latest message,
/// with what their files add (`materials`, by message). The system role is always sent.
pub fn build_chat_messages(
    config: &AssistantConfig,
    branch: &[Message],
    context: &PromptContext,
    materials: &HashMap<MessageId, Materials>,
) -> Vec<ChatMessage> {
    let history = sent_history(config, branch, |id| materials.contains_key(&id));
    let mut messages = Vec::with_capacity(history.len() + 1);
    let system = expand_placeholders(&config.system_role, context);
    if !system.trim().is_empty() {
        messages.push(ChatMessage::new(ChatRole::System, system));
    }
    for message in history {
        let chat = match message.role {
            MessageRole::User => {
                let mut content = apply_input_template(&config.input_template, &message.content);
                let mut images = Vec::new();
                if let Some(added) = materials.get(&message.id) {
                    content.push_str(&added.text);
                    images = added.images.clone();
                }
                ChatMessage { images, ..ChatMessage::new(ChatRole::User, content.trim_start().to_owned()) }
            }
            MessageRole::Assistant => ChatMessage::new(ChatRole::Assistant, message.content.clone()),
        };
        messages.push(chat);
    }
    messages
}

/// Puts the summary of the messages no longer sent after the system role (or first).
pub fn insert_summary(messages: &mut Vec<ChatMessage>, summary: &str) {
    let at = usize::from(messages.first().is_some_and(|first| first.role == ChatRole::System));
    let text = format!("Summary of the earlier part of this conversation (its messages are not repeated):\n{summary}");
    messages.insert(at, ChatMessage::new(ChatRole::System, text));
}

/// The prompt asking the model for a short topic title in the user's language.
pub fn title_request(first_question: &str, first_answer: &str, language: &str) -> Vec<ChatMessage> {
    let clip = |text: &str| text.chars().take(1_000).collect::<String>();
    vec![
        ChatMessage::new(
            ChatRole::System,
            format!(
                "You name conversations. Reply with a title of at most 10 words (or 15 Chinese characters) \
                 in the language {language}, with no quotes, no punctuation at the end and nothing else."
            ),
        ),
        ChatMessage::new(
            ChatRole::User,
            format!("User: {}\n\nAssistant: {}", clip(first_question), clip(first_answer)),
        ),
    ]
}

/// Cleans a model-written title: first line, no surrounding quotes, bounded length.
pub fn clean_title(raw: &str) -> String {
    let line = raw.lines().map(str::trim).find(|line| !line.is_empty()).unwrap_or_default();
    let line = line.trim_start_matches(['#', ' ']).trim_start_matches("Title:").trim();
    let trimmed = line.trim_matches(|c: char| matches!(c, '"' | '\'' | '“' | '”' | '「' | '」' | '《' | '》' | '*'));
    let trimmed = trimmed.trim_end_matches(['.', '。', '!', '！']);
    // Models sometimes format titles as markdown; a title is plain text.
    let plain: String = trimmed.chars().filter(|c| !matches!(c, '*' | '`')).take(60).collect();
    plain.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{MessageRole, MessageStatus};
    use crate::id::{MessageId, TopicId, UserId};
    use crate::time::Timestamp;

    fn context() -> PromptContext {
        PromptContext {
            now: "2026-11-22T08:30:05+08:00[Asia/Shanghai]".parse().expect("valid zoned time"),
            model: "gpt-4o".into(),
            username: "Ada".into(),
            language: "zh-CN".into(),
        }
    }

    fn message(role: MessageRole, content: &str) -> Message {
        Message {
            id: MessageId::new(),
            user_id: UserId::new(),
            topic_id: TopicId::new(),
            parent_id: None,
            role,
            content: content.into(),
            reasoning: String::new(),
            status: MessageStatus::Complete,
            error_kind: None,
            error_message: None,
            provider: None,
            model: None,
            usage: None,
            ttft_ms: None,
            duration_ms: None,
            created_at: Timestamp(0),
            updated_at: Timestamp(0),
        }
    }

    #[test]
    fn expands_known_placeholders_only() {
        let text = expand_placeholders(
            "Today is {{date}} at {{time}} ({{datetime}}); you are {{model}} for {{ username }} in {{language}}. {{unknown}} {{",
            &context(),
        );
        assert_eq!(
            text,
            "Today is 2026-11-22 at 08:30:05 (2026-11-22 08:30:05); you are gpt-4o for Ada in zh-CN. {{unknown}} {{"
        );
    }

    #[test]
    fn input_template_wraps_text() {
        assert_eq!(apply_input_template("Translate: {{text}}", "hi"), "Translate: hi");
        assert_eq!(apply_input_template("", "hi"), "hi");
        assert_eq!(apply_input_template("Be brief.", "hi"), "Be brief.\n\nhi");
    }

    #[test]
    fn history_limit_keeps_latest_messages_and_system_role() {
        let config = AssistantConfig {
            system_role: "You are {{model}}.".into(),
            history_limit: Some(2),
            input_template: "Q: {{text}}".into(),
            ..AssistantConfig::default()
        };
        let mut failed = message(MessageRole::Assistant, "");
        failed.status = MessageStatus::Error;
        let branch = vec![
            message(MessageRole::User, "one"),
            message(MessageRole::Assistant, "two"),
            message(MessageRole::User, "three"),
            failed,
            message(MessageRole::Assistant, "four"),
            message(MessageRole::User, "five"),
        ];
        let messages = build_chat_messages(&config, &branch, &context(), &HashMap::new());
        let texts: Vec<_> = messages.iter().map(|m| (m.role, m.content.as_str())).collect();
        assert_eq!(
            texts,
            [
                (ChatRole::System, "You are gpt-4o."),
                (ChatRole::User, "Q: three"),
                (ChatRole::Assistant, "four"),
                (ChatRole::User, "Q: five"),
            ]
        );
        let unlimited = AssistantConfig { history_limit: None, ..config };
        assert_eq!(build_chat_messages(&unlimited, &branch, &context(), &HashMap::new()).len(), 6);
    }

    #[test]
    fn cleans_titles() {
        assert_eq!(clean_title("\"Rust async basics.\"\nmore"), "Rust async basics");
        assert_eq!(clean_title("《量子计算入门》"), "量子计算入门");
        assert_eq!(clean_title("Title: Weather"), "Weather");
        assert_eq!(clean_title("Here is a **streamed**  `answer`"), "Here is a streamed answer");
    }
}
