//! View models: domain objects turned into what templates print (rendered markdown, translated
//! labels, formatted figures). Templates never see domain types directly.

use std::sync::Arc;

use loquat_core::domain::{Assistant, MessageRole, MessageStatus, ModelCard, Topic};
use loquat_core::service::ProviderOption;
use loquat_core::time::Timestamp;
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
    /// The files attached to a user's message.
    pub files: Vec<FileChip>,
    /// The numbered sources an answer was given.
    pub sources: Vec<SourceView>,
    /// `Sources (3)`.
    pub sources_title: String,
}

/// A tool call as the page folds it: the tool, its arguments, what it gave back.
#[derive(Debug, Clone)]
pub struct StepView {
    pub tool: String,
    /// The arguments, pretty-printed when they are JSON.
    pub arguments: String,
    pub result: String,
    /// `running`, `done`, `failed` or `cancelled` (a CSS hook).
    pub status: &'static str,
    /// Translated: `Searching…`, `2.1 s`, `Failed`, `Stopped`.
    pub state: String,
}

impl StepView {
    pub fn from_step(step: &loquat_core::domain::ToolStep, tr: Tr) -> Self {
        use loquat_core::domain::StepStatus;
        let arguments = serde_json::from_str::<serde_json::Value>(&step.arguments)
            .ok()
            .and_then(|value| serde_json::to_string_pretty(&value).ok())
            .unwrap_or_else(|| step.arguments.clone());
        let took = step.duration_ms.map(|ms| format!("{:.1} s", ms as f64 / 1000.0)).unwrap_or_default();
        let state = match step.status {
            StepStatus::Running => tr.t("tools.running").into_owned(),
            StepStatus::Done => took,
            StepStatus::Failed => tr.t_with("tools.failed", "time", &took),
            StepStatus::Cancelled => tr.t("tools.cancelled").into_owned(),
        };
        Self { tool: step.tool.clone(), arguments, result: step.result.clone(), status: step.status.as_str(), state }
    }
}

/// An answer's text with its tool calls in place: the text before each call's offset, the
/// calls made there, the text after; each piece of text rendered on its own. `None` without
/// calls (the whole text is rendered as one).
pub async fn interleaved(
    renderer: &crate::render_cache::Renderer,
    content: &str,
    steps: &[loquat_core::domain::ToolStep],
    tr: Tr,
) -> Option<String> {
    use askama::Template;
    if steps.is_empty() {
        return None;
    }
    let mut html = String::new();
    let mut from = 0;
    let mut index = 0;
    while index < steps.len() {
        let mut at = (steps[index].offset as usize).clamp(from, content.len());
        while !content.is_char_boundary(at) {
            at -= 1;
        }
        let together: Vec<StepView> = steps[index..]
            .iter()
            .take_while(|step| step.offset == steps[index].offset)
            .map(|step| StepView::from_step(step, tr))
            .collect();
        index += together.len();
        if at > from {
            html.push_str(&renderer.markdown(content[from..at].to_owned()).await);
        }
        html.push_str("<div class=\"tool-steps\">");
        html.push_str(&(StepsFragment { tr, steps: &together }).render().unwrap_or_default());
        html.push_str("</div>");
        from = at;
    }
    if from < content.len() {
        html.push_str(&renderer.markdown(content[from..].to_owned()).await);
    }
    Some(html)
}

/// Tool calls made at one place of an answer, folded.
#[derive(askama::Template)]
#[template(path = "tool_steps.html")]
pub struct StepsFragment<'a> {
    pub tr: Tr,
    pub steps: &'a [StepView],
}

/// A source under an answer: `report.pdf · p. 4`, linking to the passage.
#[derive(Debug, Clone)]
pub struct SourceView {
    pub number: u32,
    pub label: String,
    pub href: String,
}

/// A file shown with a message: a thumbnail for an image, else its name and size.
#[derive(Debug, Clone)]
pub struct FileChip {
    pub id: String,
    pub name: String,
    pub size: String,
    pub is_image: bool,
}

impl FileChip {
    pub fn new(file: &loquat_core::domain::StoredFile) -> Self {
        Self {
            id: file.id.to_string(),
            name: file.name.clone(),
            size: human_bytes(file.size),
            is_image: crate::download::shows_inline(&file.mime),
        }
    }
}

impl MessageView {
    /// An answer that was cut off (stopped, failed, interrupted) and can go on.
    pub fn can_continue(&self) -> bool {
        matches!(self.status, "stopped" | "error" | "interrupted")
    }

    /// The view with the message's files.
    pub fn with_files(mut self, files: &[loquat_core::domain::StoredFile]) -> Self {
        self.files = files.iter().map(FileChip::new).collect();
        self
    }

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
            files: Vec::new(),
            sources: Vec::new(),
            sources_title: String::new(),
        }
    }

    /// The view with the answer's sources: each `[n]` of the text links to its passage, and
    /// the list goes under the answer.
    pub fn with_sources(mut self, sources: &[loquat_core::domain::Source], tr: Tr) -> Self {
        if sources.is_empty() || self.is_user {
            return self;
        }
        let href = |number: u32| format!("/messages/{}/sources/{number}", self.id);
        self.html = cite(&self.html, sources.len() as u32, &href).into();
        self.sources_title = tr.t_with("sources.title", "count", &sources.len().to_string());
        self.sources = sources
            .iter()
            .map(|source| {
                let label = match source.pages() {
                    Some((page, last)) if last == page => {
                        tr.t_args("sources.page", &[("file", &source.file_name), ("page", &page.to_string())])
                    }
                    Some((first, last)) => tr.t_args(
                        "sources.pages",
                        &[("file", &source.file_name), ("first", &first.to_string()), ("last", &last.to_string())],
                    ),
                    None => source.file_name.clone(),
                };
                SourceView { number: source.number, label, href: href(source.number) }
            })
            .collect();
        self
    }

    /// The answer's text with its tool calls in place (from [`interleaved`]), when it made
    /// any.
    pub fn with_steps_in_place(mut self, html: Option<String>) -> Self {
        if let Some(html) = html {
            self.html = html.into();
        }
        self
    }

    /// A question of only files has no text to show.
    pub fn shows_bubble(&self) -> bool {
        !(self.is_user && self.html.trim().is_empty() && !self.files.is_empty())
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
    pub pinned: bool,
    pub is_default: bool,
}

impl AssistantLink {
    pub fn new(assistant: &Assistant, current: Option<&Assistant>, tr: Tr) -> Self {
        Self {
            id: assistant.id.to_string(),
            title: assistant_title(assistant, tr),
            avatar: assistant.config.avatar.clone(),
            description: assistant.config.description.clone(),
            current: current.is_some_and(|c| c.id == assistant.id),
            pinned: assistant.config.pinned,
            is_default: assistant.is_default,
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
    pub pinned: bool,
}

impl TopicLink {
    pub fn new(topic: &Topic, current: Option<&Topic>, tr: Tr) -> Self {
        let title = if topic.title.is_empty() { tr.t("topic.untitled").into_owned() } else { topic.title.clone() };
        let current = current.is_some_and(|c| c.id == topic.id);
        Self { id: topic.id.to_string(), title, current, pinned: topic.pinned }
    }
}

/// Topics under one heading of the list: pinned, today, yesterday, the previous seven days,
/// earlier.
pub struct TopicGroup {
    pub label: String,
    pub topics: Vec<TopicLink>,
}

/// The topics (newest first) under their headings, days counted in the viewer's time zone
/// (`offset_minutes` east of UTC) up to `now`.
pub fn topic_groups(
    topics: &[Topic],
    current: Option<&Topic>,
    now: Timestamp,
    offset_minutes: i32,
    tr: Tr,
) -> Vec<TopicGroup> {
    const DAY_MS: i64 = 86_400_000;
    let day = |at: Timestamp| (at.as_millis() + i64::from(offset_minutes) * 60_000).div_euclid(DAY_MS);
    let today = day(now);
    let keys = ["topic.pinned", "topic.today", "topic.yesterday", "topic.this_week", "topic.earlier"];
    let mut groups: Vec<TopicGroup> =
        keys.iter().map(|key| TopicGroup { label: tr.t(key).into_owned(), topics: Vec::new() }).collect();
    for topic in topics {
        let index = match today - day(topic.updated_at) {
            _ if topic.pinned => 0,
            ..=0 => 1,
            1 => 2,
            2..=6 => 3,
            _ => 4,
        };
        groups[index].topics.push(TopicLink::new(topic, current, tr));
    }
    groups.retain(|group| !group.topics.is_empty());
    groups
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
    /// The model's name.
    pub label: String,
    pub selected: bool,
    /// Parameters the model rejects, comma-separated (the form hides their fields).
    pub unsupported: String,
    /// What the model can do beyond text, in a fixed order.
    pub capabilities: Vec<Capability>,
    pub context: Option<ContextSize>,
}

impl ModelOption {
    /// The option as one line of text, for `<select>` lists, which cannot show icons.
    pub fn text(&self) -> String {
        let mut text = self.label.clone();
        for capability in &self.capabilities {
            text.push_str(" · ");
            text.push_str(&capability.label);
        }
        if let Some(context) = &self.context {
            text.push_str(" · ");
            text.push_str(&context.short);
        }
        text
    }
}

/// A model capability: an icon (its name in the sprite in `base.html`, also a CSS hook) and
/// its translated name.
#[derive(Debug, Clone)]
pub struct Capability {
    pub icon: &'static str,
    pub label: String,
}

/// A model's context window: `128K` and a translated sentence saying what that is.
#[derive(Debug, Clone)]
pub struct ContextSize {
    pub short: String,
    pub label: String,
}

/// What a model card can do, as the picker shows it.
fn capabilities(card: &ModelCard, tr: Tr) -> (Vec<Capability>, Option<ContextSize>) {
    let flags = [
        (card.vision, "vision", tr.t("model.vision")),
        (card.function_calling, "tools", tr.t("model.tools")),
        (card.reasoning, "reasoning", tr.t("model.reasoning")),
        (card.search, "search", tr.t("model.search")),
        (card.files, "files", tr.t("model.files")),
    ];
    let capabilities = flags
        .into_iter()
        .filter(|(flag, _, _)| *flag)
        .map(|(_, icon, label)| Capability { icon, label: label.into_owned() })
        .collect();
    let context = card.context_tokens.map(|tokens| {
        let short = format!("{}K", tokens / 1000);
        ContextSize { label: tr.t_with("model.context", "size", &short), short }
    });
    (capabilities, context)
}

/// The model picker's groups; the current choice is kept even when it is not listed.
pub fn model_groups(options: &[ProviderOption], provider: &str, model: &str, tr: Tr) -> Vec<ModelGroup> {
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
                    let (capabilities, context) = capabilities(card, tr);
                    ModelOption {
                        value: format!("{}::{}", option.id, card.id),
                        label: card.label().to_owned(),
                        selected,
                        unsupported: card.unsupported_params.join(","),
                        capabilities,
                        context,
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
                capabilities: Vec::new(),
                context: None,
            },
        );
    }
    groups
}

/// The option the picker shows as chosen: the selected one, else the first (which answers
/// when an assistant names no model).
pub fn chosen_model(groups: &[ModelGroup]) -> Option<&ModelOption> {
    let mut options = groups.iter().flat_map(|group| &group.options);
    options.clone().find(|option| option.selected).or_else(|| options.next())
}

/// A time for tables: `YYYY-MM-DD HH:MM` UTC.
/// A byte count as people read it: `100 MB`, `1.5 GB`, `512 KB`, `10 bytes`.
/// `128000` → `128,000`.
pub fn group_digits(number: u64) -> String {
    let digits = number.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (place, digit) in digits.chars().enumerate() {
        if place > 0 && (digits.len() - place).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if value.fract() < 0.05 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A quota given in MiB, as [`human_bytes`] writes it.
pub fn human_megabytes(megabytes: u64) -> String {
    human_bytes(megabytes.saturating_mul(1024 * 1024))
}

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

#[cfg(test)]
mod tests {
    use loquat_core::domain::Locale;

    use super::*;

    fn openai(models: Vec<ModelCard>) -> ProviderOption {
        ProviderOption { id: "openai".into(), name: "OpenAI".into(), models, custom: false }
    }

    #[test]
    fn topics_are_grouped_by_day_in_the_viewers_time_zone_pinned_first() {
        use loquat_core::id::{AssistantId, TopicId, UserId};
        let hour = 3_600_000;
        // 2026-12-06 01:00 in UTC+8 is 2026-12-05 17:00 UTC.
        let now = Timestamp(1_796_490_000_000);
        let topic = |title: &str, hours_ago: i64, pinned: bool| Topic {
            id: TopicId::new(),
            user_id: UserId::new(),
            assistant_id: AssistantId::new(),
            title: title.into(),
            active_leaf_id: None,
            pinned,
            created_at: Timestamp(now.0 - hours_ago * hour),
            updated_at: Timestamp(now.0 - hours_ago * hour),
        };
        let topics = [
            topic("an hour ago", 1, false),
            topic("two hours ago", 2, false),
            topic("pinned long ago", 500, true),
            topic("three days ago", 72, false),
            topic("a month ago", 720, false),
        ];
        let tr = Tr::new(Locale::English);
        let grouped = |offset| -> Vec<(String, Vec<String>)> {
            topic_groups(&topics, None, now, offset, tr)
                .into_iter()
                .map(|g| (g.label, g.topics.into_iter().map(|t| t.title).collect()))
                .collect()
        };
        let names = |groups: Vec<(String, Vec<String>)>| {
            groups.into_iter().map(|(label, titles)| format!("{label}: {}", titles.join(", "))).collect::<Vec<_>>()
        };
        // At 01:00 in UTC+8, two hours ago was yesterday; in UTC (17:00) it was today.
        assert_eq!(
            names(grouped(8 * 60)),
            [
                "Pinned: pinned long ago",
                "Today: an hour ago",
                "Yesterday: two hours ago",
                "Previous 7 days: three days ago",
                "Earlier: a month ago"
            ]
        );
        assert_eq!(names(grouped(0))[1], "Today: an hour ago, two hours ago");
    }

    #[test]
    fn capabilities_are_named_in_the_users_language() {
        let card = ModelCard {
            vision: true,
            function_calling: true,
            context_tokens: Some(128_000),
            ..ModelCard::plain("gpt-4o")
        };
        let groups = model_groups(&[openai(vec![card])], "openai", "gpt-4o", Tr::new(Locale::English));
        let option = &groups[0].options[0];
        assert_eq!(option.capabilities.iter().map(|c| c.icon).collect::<Vec<_>>(), ["vision", "tools"]);
        assert_eq!(option.text(), "gpt-4o · Vision · Function calling · 128K");
        let groups = model_groups(&[openai(vec![ModelCard::plain("o3")])], "", "", Tr::new(Locale::SimplifiedChinese));
        assert_eq!(groups[0].options[0].text(), "o3");
        let card = ModelCard { reasoning: true, context_tokens: Some(200_000), ..ModelCard::plain("o3") };
        let groups = model_groups(&[openai(vec![card])], "", "", Tr::new(Locale::SimplifiedChinese));
        assert_eq!(groups[0].options[0].text(), "o3 · 深度思考 · 200K");
    }

    #[test]
    fn the_picker_shows_the_selected_model_or_else_the_first() {
        let models = || vec![ModelCard::plain("gpt-4o"), ModelCard::plain("o3")];
        let tr = Tr::new(Locale::English);
        let groups = model_groups(&[openai(models())], "openai", "o3", tr);
        assert_eq!(chosen_model(&groups).map(|o| o.value.as_str()), Some("openai::o3"));
        let groups = model_groups(&[openai(models())], "", "", tr);
        assert_eq!(chosen_model(&groups).map(|o| o.value.as_str()), Some("openai::gpt-4o"));
        assert!(chosen_model(&[]).is_none());
    }
}

/// `html` with each citation `[n]` (1 ≤ n ≤ `count`) in its text made a link to `href(n)`;
/// text inside code, preformatted blocks and links stays as it is. The HTML is the sanitizer's
/// output: tags are well formed and text has its `<`, `>` and `&` escaped.
pub fn cite(html: &str, count: u32, href: &dyn Fn(u32) -> String) -> String {
    let mut out = String::with_capacity(html.len() + 64);
    let mut quiet = 0usize;
    let mut rest = html;
    while !rest.is_empty() {
        if rest.starts_with('<') {
            let end = rest.find('>').map_or(rest.len(), |at| at + 1);
            let tag = &rest[..end];
            let name: String =
                tag.trim_start_matches(['<', '/']).chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
            if matches!(name.as_str(), "code" | "pre" | "a") {
                if tag.starts_with("</") {
                    quiet = quiet.saturating_sub(1);
                } else if !tag.ends_with("/>") {
                    quiet += 1;
                }
            }
            out.push_str(tag);
            rest = &rest[end..];
            continue;
        }
        let end = rest.find('<').unwrap_or(rest.len());
        let text = &rest[..end];
        if quiet > 0 {
            out.push_str(text);
        } else {
            cite_text(text, count, href, &mut out);
        }
        rest = &rest[end..];
    }
    out
}

fn cite_text(text: &str, count: u32, href: &dyn Fn(u32) -> String, out: &mut String) {
    let mut rest = text;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let number = after[..digits].parse::<u32>().ok().filter(|n| (1..=count).contains(n));
        match number {
            Some(number) if digits > 0 && after[digits..].starts_with(']') => {
                out.push_str(&format!(
                    "<sup class=\"cite\"><a href=\"{}\" data-source=\"{number}\">{number}</a></sup>",
                    href(number)
                ));
                rest = &after[digits + 1..];
            }
            _ => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
}

#[cfg(test)]
mod cite_tests {
    use super::cite;

    #[test]
    fn citations_link_outside_code_and_links_only() {
        let href = |n: u32| format!("/s/{n}");
        let html = "<p>R&amp;D grew [1][2], not [9] or [x].</p><pre><code>a[1]</code></pre><a href=\"/x\">[1]</a>";
        let cited = cite(html, 2, &href);
        assert_eq!(
            cited,
            "<p>R&amp;D grew <sup class=\"cite\"><a href=\"/s/1\" data-source=\"1\">1</a></sup>\
             <sup class=\"cite\"><a href=\"/s/2\" data-source=\"2\">2</a></sup>, not [9] or [x].</p>\
             <pre><code>a[1]</code></pre><a href=\"/x\">[1]</a>"
        );
        // Quadratic inputs are not: a long run of brackets is one pass.
        let brackets = "[".repeat(100_000);
        assert_eq!(cite(&brackets, 3, &href), brackets);
    }
}
