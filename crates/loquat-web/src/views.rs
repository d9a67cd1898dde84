//! View models: domain objects turned into what templates print (rendered markdown, translated
//! labels, formatted figures). Templates never see domain types directly.

use std::sync::Arc;

use loquat_core::domain::{Assistant, MessageRole, MessageStatus, Topic};
use loquat_core::service::ProviderOption;
use loquat_core::tree::BranchEntry;

use crate::i18n::Tr;
use crate::render_cache::Rendered;

/// One message as the chat shows it.
#[derive(Debug, Clone)]
pub struct MessageView {
    pub id: String,
    pub is_user: bool,
    pub html: Arc<str>,
    pub reasoning_html: Arc<str>,
    pub generating: bool,
    /// `complete`, `generating`, `stopped`, `error` or `interrupted` (a CSS hook).
    pub status: &'static str,
    /// A translated notice for stopped, failed or interrupted answers.
    pub notice: Option<String>,
    /// The provider's own words for a failure, shown folded.
    pub error_detail: Option<String>,
    /// Discreet facts under an answer: model, tokens, speed.
    pub meta: Vec<String>,
    pub sibling_index: usize,
    pub sibling_count: usize,
    pub previous_sibling: Option<String>,
    pub next_sibling: Option<String>,
}

impl MessageView {
    /// `rendered` is the message's HTML (see `render_cache::Renderer::messages`).
    pub fn from_entry(entry: &BranchEntry, tr: Tr, rendered: Rendered) -> Self {
        let message = &entry.message;
        let generating = message.status == MessageStatus::Generating;
        let notice = match message.status {
            MessageStatus::Stopped => Some(tr.t("message.stopped").into_owned()),
            MessageStatus::Interrupted => Some(tr.t("message.interrupted").into_owned()),
            MessageStatus::Error => {
                let kind = message.error_kind.as_deref().unwrap_or("unavailable");
                Some(tr.t(&format!("provider_error.{kind}")).into_owned())
            }
            MessageStatus::Complete | MessageStatus::Generating => None,
        };
        Self {
            id: message.id.to_string(),
            is_user: message.role == MessageRole::User,
            html: rendered.html,
            reasoning_html: rendered.reasoning_html,
            generating,
            status: message.status.as_str(),
            notice,
            error_detail: message.error_message.clone().filter(|_| message.status == MessageStatus::Error),
            meta: meta(entry, tr),
            sibling_index: entry.sibling_index,
            sibling_count: entry.sibling_count,
            previous_sibling: entry.previous_sibling.map(|id| id.to_string()),
            next_sibling: entry.next_sibling.map(|id| id.to_string()),
        }
    }

    pub fn has_siblings(&self) -> bool {
        self.sibling_count > 1
    }
}

fn meta(entry: &BranchEntry, tr: Tr) -> Vec<String> {
    let message = &entry.message;
    if message.role == MessageRole::User || message.status == MessageStatus::Generating {
        return Vec::new();
    }
    let mut facts = Vec::new();
    if let Some(model) = &message.model {
        facts.push(model.clone());
    }
    if let Some(usage) = message.usage {
        facts.push(tr.t_with("message.tokens", "count", &usage.total().to_string()));
    }
    if let Some(speed) = message.tokens_per_second() {
        facts.push(tr.t_with("message.speed", "speed", &format!("{speed:.1}")));
    }
    if let Some(ttft) = message.ttft_ms {
        facts.push(tr.t_with("message.ttft", "seconds", &format!("{:.2}", ttft as f64 / 1000.0)));
    }
    facts
}

/// An assistant in the sidebar and pickers.
#[derive(Debug, Clone)]
pub struct AssistantLink {
    pub id: String,
    pub title: String,
    pub avatar: String,
    pub description: String,
    pub current: bool,
}

impl AssistantLink {
    pub fn new(assistant: &Assistant, current: Option<&Assistant>, tr: Tr) -> Self {
        Self {
            id: assistant.id.to_string(),
            title: assistant_title(assistant, tr),
            avatar: assistant.config.avatar.clone(),
            description: assistant.config.description.clone(),
            current: current.is_some_and(|c| c.id == assistant.id),
        }
    }
}

pub fn assistant_title(assistant: &Assistant, tr: Tr) -> String {
    if assistant.config.title.trim().is_empty() {
        tr.t("assistant.default_title").into_owned()
    } else {
        assistant.config.title.clone()
    }
}

/// A topic in the sidebar.
#[derive(Debug, Clone)]
pub struct TopicLink {
    pub id: String,
    pub title: String,
    pub current: bool,
}

impl TopicLink {
    pub fn new(topic: &Topic, current: Option<&Topic>, tr: Tr) -> Self {
        let title = if topic.title.is_empty() { tr.t("topic.untitled").into_owned() } else { topic.title.clone() };
        Self { id: topic.id.to_string(), title, current: current.is_some_and(|c| c.id == topic.id) }
    }
}

/// A `<select>` option for a model, grouped by provider.
#[derive(Debug, Clone)]
pub struct ModelGroup {
    pub provider_name: String,
    pub options: Vec<ModelOption>,
}

#[derive(Debug, Clone)]
pub struct ModelOption {
    /// `provider::model`.
    pub value: String,
    pub label: String,
    pub selected: bool,
    /// Parameters the model rejects, comma-separated (the form hides their fields).
    pub unsupported: String,
}

/// The model picker's groups; the current choice is kept even when it is not listed.
pub fn model_groups(options: &[ProviderOption], provider: &str, model: &str) -> Vec<ModelGroup> {
    let mut found = false;
    let mut groups: Vec<ModelGroup> = options
        .iter()
        .map(|option| ModelGroup {
            provider_name: option.name.clone(),
            options: option
                .models
                .iter()
                .map(|card| {
                    let selected = option.id == provider && card.id == model;
                    found |= selected;
                    let mut label = card.label().to_owned();
                    for (flag, mark) in [(card.vision, " 👁"), (card.reasoning, " 💡"), (card.function_calling, " 🔧")]
                    {
                        if flag {
                            label.push_str(mark);
                        }
                    }
                    if let Some(context) = card.context_tokens {
                        label.push_str(&format!(" · {}K", context / 1000));
                    }
                    ModelOption {
                        value: format!("{}::{}", option.id, card.id),
                        label,
                        selected,
                        unsupported: card.unsupported_params.join(","),
                    }
                })
                .collect(),
        })
        .collect();
    if !found
        && !model.is_empty()
        && let Some(group) = options.iter().position(|o| o.id == provider)
    {
        groups[group].options.insert(
            0,
            ModelOption {
                value: format!("{provider}::{model}"),
                label: model.to_owned(),
                selected: true,
                unsupported: String::new(),
            },
        );
    }
    groups
}

/// A time for tables: `YYYY-MM-DD HH:MM` UTC.
pub fn format_time(at: loquat_core::time::Timestamp) -> String {
    at.to_jiff().strftime("%Y-%m-%d %H:%M").to_string()
}

/// One line of a usage table.
#[derive(Debug, Clone)]
pub struct UsageLineView {
    pub label: String,
    pub requests: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: String,
}

/// A user's usage so far and a table of the last days.
#[derive(Debug, Clone)]
pub struct UsageView {
    pub today: u64,
    pub month: u64,
    pub day_limit: String,
    pub month_limit: String,
    pub lines: Vec<UsageLineView>,
}

impl UsageView {
    pub fn new(
        lines: Vec<loquat_core::service::UsageLine>,
        today: u64,
        month: u64,
        quota: loquat_core::domain::Quota,
        tr: Tr,
    ) -> Self {
        let limit = |value: Option<u64>| value.map_or_else(|| tr.t("usage.unlimited").into_owned(), |v| v.to_string());
        Self {
            today,
            month,
            day_limit: limit(quota.tokens_per_day),
            month_limit: limit(quota.tokens_per_month),
            lines: lines.iter().map(usage_line).collect(),
        }
    }
}

pub fn usage_line(line: &loquat_core::service::UsageLine) -> UsageLineView {
    let row = &line.row;
    UsageLineView {
        label: if row.model.is_empty() { row.key.clone() } else { format!("{} · {}", row.provider, row.model) },
        requests: row.requests,
        prompt_tokens: row.prompt_tokens,
        completion_tokens: row.completion_tokens,
        cost: line.cost.map(|cost| format!("${cost:.4}")).unwrap_or_else(|| "—".to_owned()),
    }
}
