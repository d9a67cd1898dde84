//! What every import format becomes ([`Batch`]: assistants and topics with their message trees,
//! named by the source's own keys) and how it is written: each row gets the id derived from its
//! owner and its source key, so the same file imported twice finds its topics already there;
//! each topic is written in one transaction (its messages, files, sources and leaf, or nothing).

use std::collections::{HashMap, HashSet};

use crate::domain::{
    Assistant, AssistantConfig, Message, MessageRole, MessageStatus, Source, StoredFile, TokenUsage, ToolStep, Topic,
};
use crate::error::CoreResult;
use crate::id::{AssistantId, MessageId, TopicId, UserId};
use crate::store::{Store, TreeWrite};
use crate::time::Timestamp;

/// The most messages one import may hold (all topics together).
pub const MAX_MESSAGES: usize = 1_000_000;
/// The most topics one import may hold.
pub const MAX_TOPICS: usize = 100_000;
/// The longest message text kept, in characters; longer ones are cut.
pub const MAX_MESSAGE_CHARS: usize = 1_000_000;
/// The longest title kept, in characters.
const MAX_TITLE_CHARS: usize = 200;

/// An import before it is written.
#[derive(Debug, Default)]
pub struct Batch {
    pub assistants: Vec<ImportedAssistant>,
    pub topics: Vec<ImportedTopic>,
    /// Files the source names, by its key: their content's SHA-256 when known (a file the user
    /// already has with that content is attached; others are reported missing).
    pub files: HashMap<String, ImportedFile>,
    /// What the parser left out, by reason.
    pub skipped: Vec<Skip>,
}

#[derive(Debug)]
pub struct ImportedAssistant {
    pub key: String,
    /// The assistant is this user's own (a Loquat export of the same account): used as it is.
    pub own_id: Option<AssistantId>,
    pub config: AssistantConfig,
    pub created_at: Timestamp,
}

#[derive(Debug, Default)]
pub struct ImportedTopic {
    pub key: String,
    /// The assistant's key in the batch; `None` for the user's default assistant.
    pub assistant: Option<String>,
    pub title: String,
    pub pinned: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub messages: Vec<ImportedMessage>,
    /// The message the source showed last; `None`: the newest leaf.
    pub active_leaf: Option<String>,
    /// The topic is this user's own topic (a Loquat export of the same account): already here.
    pub own_id: Option<TopicId>,
    /// How many of the source's rows had no place here (system, tool, hidden).
    pub left_out: usize,
}

#[derive(Debug, Clone)]
pub struct ImportedMessage {
    pub key: String,
    pub parent: Option<String>,
    pub role: MessageRole,
    pub content: String,
    pub reasoning: String,
    pub status: MessageStatus,
    pub error_kind: Option<String>,
    pub error_message: Option<String>,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub usage: Option<TokenUsage>,
    pub ttft_ms: Option<i64>,
    pub duration_ms: Option<i64>,
    pub created_at: Timestamp,
    /// Keys of the batch's files attached to it, in order.
    pub files: Vec<String>,
    pub sources: Vec<Source>,
    pub steps: Vec<ToolStep>,
}

impl ImportedMessage {
    pub fn new(key: String, parent: Option<String>, role: MessageRole, content: String, at: Timestamp) -> Self {
        Self {
            key,
            parent,
            role,
            content,
            reasoning: String::new(),
            status: MessageStatus::Complete,
            error_kind: None,
            error_message: None,
            provider: None,
            model: None,
            usage: None,
            ttft_ms: None,
            duration_ms: None,
            created_at: at,
            files: Vec::new(),
            sources: Vec::new(),
            steps: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ImportedFile {
    pub name: String,
    pub sha256: Option<String>,
}

/// Something an import left out, and why (a code the pages translate: `import.skip.<reason>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    /// What it was: a topic's title, a message's kind, a file's name.
    pub what: String,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The topic was imported before (or is this account's own).
    AlreadyImported,
    /// A conversation with no message to keep.
    Empty,
    /// Messages Loquat has no place for (system prompts, tool traffic, hidden rows).
    NotShown,
    /// A file the export names but does not hold, and the user does not have.
    FileMissing,
    /// A message whose parent is one of its own descendants.
    Cycle,
    /// Past the import's limits (topics, messages, length).
    TooMany,
    /// Text longer than a message may be, cut.
    Cut,
}

impl SkipReason {
    pub fn code(self) -> &'static str {
        match self {
            SkipReason::AlreadyImported => "already_imported",
            SkipReason::Empty => "empty",
            SkipReason::NotShown => "not_shown",
            SkipReason::FileMissing => "file_missing",
            SkipReason::Cycle => "cycle",
            SkipReason::TooMany => "too_many",
            SkipReason::Cut => "cut",
        }
    }
}

impl Batch {
    pub fn skip(&mut self, what: impl Into<String>, reason: SkipReason) {
        self.skipped.push(Skip { what: what.into(), reason });
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// The format it was read as: `loquat`, `chatgpt`, `lobechat`, `markdown`.
    pub format: &'static str,
    pub assistants: u64,
    pub topics: u64,
    pub messages: u64,
    pub skipped: Vec<Skip>,
}

/// Writes `batch` for `user` under ids derived from `source` (the format) and each row's key.
pub(super) async fn write(
    store: &dyn Store,
    user: UserId,
    default_assistant: AssistantId,
    source: &'static str,
    mut batch: Batch,
) -> CoreResult<ImportReport> {
    let mut report = ImportReport { format: source, ..ImportReport::default() };
    let key = |kind: &str, key: &str| format!("{source}:{kind}:{key}");
    let mut assistants = HashMap::new();
    for imported in &batch.assistants {
        if let Some(own) = imported.own_id
            && store.get_assistant(user, own).await?.is_some()
        {
            assistants.insert(imported.key.clone(), own);
            continue;
        }
        let id = AssistantId::derived(user, &key("assistant", &imported.key));
        if store.get_assistant(user, id).await?.is_none() {
            let mut config = imported.config.clone();
            tidy_config(&mut config);
            let assistant = Assistant {
                id,
                user_id: user,
                is_default: false,
                config,
                created_at: imported.created_at,
                updated_at: Timestamp::now(),
            };
            match store.insert_assistant(&assistant).await {
                Ok(()) => report.assistants += 1,
                // The same assistant written by an import running at the same time.
                Err(error) if error.kind == crate::store::StoreErrorKind::Conflict => {}
                Err(error) => return Err(error.into()),
            }
        }
        assistants.insert(imported.key.clone(), id);
    }
    let owned_files = owned_files_by_hash(store, user, &batch).await?;
    let topics = std::mem::take(&mut batch.topics);
    let mut missing_files = HashSet::new();
    for topic in topics {
        let what = if topic.title.is_empty() { topic.key.clone() } else { topic.title.clone() };
        let id = TopicId::derived(user, &key("topic", &topic.key));
        let own = match topic.own_id {
            Some(own) => store.get_topic(user, own).await?.is_some(),
            None => false,
        };
        if own || store.get_topic(user, id).await?.is_some() {
            batch.skip(what, SkipReason::AlreadyImported);
            continue;
        }
        let assistant = topic.assistant.as_ref().and_then(|key| assistants.get(key)).copied();
        let prefix = key("message", &format!("{}:", topic.key));
        let messages = planted(user, id, &prefix, &topic, &mut batch.skipped);
        if messages.is_empty() {
            batch.skip(what, SkipReason::Empty);
            continue;
        }
        let wanted = topic.active_leaf.as_deref().map(|leaf| MessageId::derived(user, &format!("{prefix}{leaf}")));
        let leaf = active_leaf(&messages, wanted);
        // A source without times: the first message's.
        let first = messages.iter().map(|(message, _)| message.created_at).min();
        let created_at =
            if topic.created_at.as_millis() > 0 { topic.created_at } else { first.unwrap_or(topic.created_at) };
        let stored = Topic {
            id,
            user_id: user,
            assistant_id: assistant.unwrap_or(default_assistant),
            title: cut(&topic.title, MAX_TITLE_CHARS),
            active_leaf_id: None,
            pinned: topic.pinned,
            created_at,
            updated_at: topic.updated_at.max(created_at),
        };
        let mut writes = vec![TreeWrite::InsertTopic(&stored)];
        writes.extend(messages.iter().map(|(message, _)| TreeWrite::ImportMessage(message)));
        for (message, imported) in &messages {
            let mut position = 0;
            for file in &imported.files {
                let found =
                    batch.files.get(file).and_then(|file| file.sha256.as_ref()).and_then(|sha| owned_files.get(sha));
                match found {
                    Some(stored_file) => {
                        writes.push(TreeWrite::AttachFile { message: message.id, file: stored_file.id, position });
                        position += 1;
                    }
                    None => {
                        missing_files.insert(batch.files.get(file).map_or_else(|| file.clone(), |f| f.name.clone()));
                    }
                }
            }
            writes
                .extend(imported.sources.iter().map(|source| TreeWrite::InsertSource { message: message.id, source }));
        }
        writes.push(TreeWrite::SetActiveLeaf { topic: id, leaf, at: stored.updated_at });
        match store.write_tree(user, &writes).await {
            Ok(_) => {}
            // The same topic written by an import running at the same time.
            Err(error) if error.kind == crate::store::StoreErrorKind::Conflict => {
                batch.skip(what, SkipReason::AlreadyImported);
                continue;
            }
            Err(error) => return Err(error.into()),
        }
        for (message, imported) in &messages {
            for step in &imported.steps {
                store.save_tool_step(user, &ToolStep { message_id: message.id, ..step.clone() }).await?;
            }
        }
        report.topics += 1;
        report.messages += messages.len() as u64;
        if topic.left_out > 0 {
            batch.skip(format!("{what} ({})", topic.left_out), SkipReason::NotShown);
        }
    }
    let mut missing: Vec<_> = missing_files.into_iter().collect();
    missing.sort();
    for name in missing {
        batch.skip(name, SkipReason::FileMissing);
    }
    report.skipped = batch.skipped;
    Ok(report)
}

/// The user's files by their content's hash, when the batch names any.
async fn owned_files_by_hash(
    store: &dyn Store,
    user: UserId,
    batch: &Batch,
) -> CoreResult<HashMap<String, StoredFile>> {
    if batch.files.values().all(|file| file.sha256.is_none()) {
        return Ok(HashMap::new());
    }
    let files = store.list_files(user).await?;
    Ok(files.into_iter().map(|file| (file.sha256.clone(), file)).collect())
}

/// The topic's messages as rows to store, parents before children: ids derived from
/// `prefix` and each key, a parent the topic does not hold makes a root, rows on a cycle are
/// left out, each child is stored after its parent (times moved on by a millisecond where the
/// source's are equal or backwards, so a branch reads in order), texts cut to the limit.
fn planted<'a>(
    user: UserId,
    topic: TopicId,
    prefix: &str,
    source: &'a ImportedTopic,
    skipped: &mut Vec<Skip>,
) -> Vec<(Message, &'a ImportedMessage)> {
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    for (index, message) in source.messages.iter().enumerate() {
        by_key.entry(message.key.as_str()).or_insert(index);
    }
    let mut children: HashMap<Option<usize>, Vec<usize>> = HashMap::new();
    for (index, message) in source.messages.iter().enumerate() {
        if by_key.get(message.key.as_str()) != Some(&index) {
            continue; // a repeated key: the first row wins
        }
        let parent = message.parent.as_deref().and_then(|parent| by_key.get(parent)).copied();
        let parent = parent.filter(|parent| *parent != index);
        children.entry(parent).or_default().push(index);
    }
    let mut planted = Vec::with_capacity(source.messages.len());
    let mut stack: Vec<(usize, Option<(MessageId, Timestamp)>)> = Vec::new();
    let mut roots = children.remove(&None).unwrap_or_default();
    roots.sort_by_key(|index| std::cmp::Reverse(source.messages[*index].created_at));
    stack.extend(roots.into_iter().map(|index| (index, None)));
    let mut cut_any = false;
    while let Some((index, parent)) = stack.pop() {
        let imported = &source.messages[index];
        let id = MessageId::derived(user, &format!("{prefix}{}", imported.key));
        let created_at = match parent {
            Some((_, parent_at)) if imported.created_at <= parent_at => Timestamp(parent_at.as_millis() + 1),
            _ => imported.created_at,
        };
        let content = cut(&imported.content, MAX_MESSAGE_CHARS);
        cut_any |= content.len() < imported.content.len();
        planted.push((
            Message {
                id,
                user_id: user,
                topic_id: topic,
                parent_id: parent.map(|(parent, _)| parent),
                role: imported.role,
                content,
                reasoning: cut(&imported.reasoning, MAX_MESSAGE_CHARS),
                status: imported.status,
                error_kind: imported.error_kind.clone(),
                error_message: imported.error_message.clone(),
                provider: imported.provider.clone(),
                model: imported.model.clone(),
                usage: imported.usage,
                ttft_ms: imported.ttft_ms,
                duration_ms: imported.duration_ms,
                created_at,
                updated_at: created_at,
            },
            imported,
        ));
        let mut next = children.remove(&Some(index)).unwrap_or_default();
        next.sort_by_key(|index| std::cmp::Reverse(source.messages[*index].created_at));
        stack.extend(next.into_iter().map(|child| (child, Some((id, created_at)))));
    }
    // What is left hangs off a cycle, which no root reaches.
    let unreached: usize = children.values().map(Vec::len).sum();
    if unreached > 0 {
        skipped.push(Skip { what: format!("{} ({unreached})", source.title), reason: SkipReason::Cycle });
    }
    if cut_any {
        skipped.push(Skip { what: source.title.clone(), reason: SkipReason::Cut });
    }
    planted
}

/// The leaf to show: the newest leaf under `wanted` when the topic holds it, else the newest
/// leaf of the tree.
fn active_leaf(messages: &[(Message, &ImportedMessage)], wanted: Option<MessageId>) -> Option<MessageId> {
    let mut rows: Vec<Message> = messages.iter().map(|(message, _)| message.clone()).collect();
    rows.sort_by_key(|message| (message.created_at, message.id));
    let tree = crate::tree::MessageTree::new(&rows);
    match wanted.filter(|wanted| tree.get(*wanted).is_some()) {
        Some(wanted) => Some(tree.latest_leaf_under(wanted)),
        None => rows.last().map(|newest| newest.id),
    }
}

/// An assistant from elsewhere made safe to keep: an avatar that is not a short emoji (a URL,
/// an image) becomes the default one; texts are cut.
pub(super) fn tidy_config(config: &mut AssistantConfig) {
    if config.avatar.is_empty() || config.avatar.chars().count() > 8 || config.avatar.contains('/') {
        config.avatar = AssistantConfig::default().avatar;
    }
    config.title = cut(&config.title, MAX_TITLE_CHARS);
    config.description = cut(&config.description, 2_000);
    config.opening_questions.truncate(20);
    config.tags.truncate(20);
    config.system_role = cut(&config.system_role, 100_000);
    if config.validate().is_err() {
        config.params = AssistantConfig::default().params;
    }
}

/// `text` cut to at most `max` characters.
pub(super) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}
