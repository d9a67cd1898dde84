//! Seeds a store with an administrator account, its default assistant and topics of a given
//! length, the way Loquat itself would have stored them.

use loquat_core::domain::{
    Assistant, AssistantConfig, MessageRole, MessageStatus, NewMessage, Theme, TokenUsage, Topic, User,
};
use loquat_core::id::{AssistantId, MessageId, TopicId, UserId};
use loquat_core::store::{FinishedAnswer, Store};
use loquat_core::time::Timestamp;

const QUESTION: &str = "How do I read a file line by line in Rust, and what should I watch out for with large files?";

const ANSWER: &str = "Use a `BufReader` so that reads are buffered, and iterate over `lines()`:\n\n\
```rust\nuse std::fs::File;\nuse std::io::{self, BufRead, BufReader};\n\nfn main() -> io::Result<()> {\n    \
let reader = BufReader::new(File::open(\"big.log\")?);\n    for line in reader.lines() {\n        \
println!(\"{}\", line?);\n    }\n    Ok(())\n}\n```\n\nThings to watch out for:\n\n\
1. **Invalid UTF-8** makes `lines()` return an error; use `read_until` for bytes.\n\
2. Each line is a new `String`; reuse one buffer with `read_line` in hot loops.\n\
3. Very long lines are held in memory whole.\n\n| Method | Allocates | UTF-8 checked |\n|---|---|---|\n\
| `lines()` | per line | yes |\n| `read_line` | reused | yes |\n| `read_until` | reused | no |\n";

const WORDS: [&str; 48] = [
    "buffer",
    "reader",
    "stream",
    "memory",
    "thread",
    "async",
    "future",
    "channel",
    "socket",
    "index",
    "query",
    "table",
    "cache",
    "latency",
    "request",
    "response",
    "header",
    "token",
    "model",
    "prompt",
    "answer",
    "topic",
    "branch",
    "render",
    "sanitize",
    "markdown",
    "server",
    "client",
    "replica",
    "backup",
    "的",
    "模型",
    "回答",
    "数据",
    "服务器",
    "问题",
    "性能",
    "缓存",
    "用户",
    "配置",
    "并发",
    "延迟",
    "error",
    "retry",
    "timeout",
    "config",
    "secret",
    "vault",
];

/// A deterministic paragraph of `words` words, different for every `seed`, so that pages
/// compress like real conversations rather than like one message repeated.
pub fn paragraph(seed: usize, words: usize) -> String {
    let mut state = (seed as u64).wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    let mut text = String::new();
    for index in 0..words {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        if index > 0 {
            text.push(' ');
        }
        text.push_str(WORDS[(state >> 33) as usize % WORDS.len()]);
    }
    text.push('.');
    text
}

/// The seeded account, for signing in to the pages.
pub const EMAIL: &str = "bench@example.com";
pub const PASSWORD: &str = "bench password 123";

/// Ensures the bench's account (an administrator, signed in with [`EMAIL`] and [`PASSWORD`])
/// and its default assistant; returns both ids.
pub async fn account_and_assistant(store: &dyn Store) -> (UserId, AssistantId) {
    let existing = store.find_user_by_email(EMAIL).await.expect("reads");
    let user = existing.as_ref().map_or_else(UserId::new, |user| user.id);
    let account = User {
        id: user,
        name: "Bench".into(),
        email: Some(EMAIL.into()),
        role: loquat_core::domain::Role::Admin,
        disabled: false,
        locale: None,
        theme: Theme::System,
        created_at: Timestamp::now(),
        last_active_at: None,
        named_role: None,
    };
    if existing.is_none() {
        let hash = loquat_core::crypto::hash_password(PASSWORD).expect("hashes");
        store.insert_user(&account, Some(&hash)).await.expect("user stored");
    }
    let existing = store.list_assistants(user).await.expect("assistants");
    if let Some(default) = existing.into_iter().find(|a| a.is_default) {
        return (user, default.id);
    }
    let now = Timestamp::now();
    let assistant = Assistant {
        id: AssistantId::new(),
        user_id: user,
        is_default: true,
        config: AssistantConfig::default(),
        created_at: now,
        updated_at: now,
    };
    store.insert_assistant(&assistant).await.expect("assistant stored");
    (user, assistant.id)
}

/// A topic of `count` messages alternating question and a markdown answer with code.
pub async fn topic(store: &dyn Store, user: UserId, assistant: AssistantId, count: usize) -> TopicId {
    let now = Timestamp::now();
    let topic = Topic {
        id: TopicId::new(),
        user_id: user,
        assistant_id: assistant,
        title: format!("A topic of {count} messages"),
        active_leaf_id: None,
        pinned: false,
        created_at: now,
        updated_at: now,
    };
    store.insert_topic(&topic).await.expect("topic stored");
    let mut parent = None;
    for index in 0..count {
        let role = if index % 2 == 0 { MessageRole::User } else { MessageRole::Assistant };
        let id = MessageId::new();
        let message = NewMessage {
            id,
            user_id: user,
            topic_id: topic.id,
            parent_id: parent,
            role,
            content: if role == MessageRole::User {
                format!("{QUESTION} {}", paragraph(index, 12))
            } else {
                String::new()
            },
            status: if role == MessageRole::User { MessageStatus::Complete } else { MessageStatus::Generating },
            provider: Some("openai".into()),
            model: Some("gpt-4.1".into()),
            generating_by: None,
            created_at: Timestamp(now.0 + index as i64),
        };
        store.insert_message(&message).await.expect("message stored");
        if role == MessageRole::Assistant {
            let answer = FinishedAnswer {
                status: MessageStatus::Complete,
                content: format!("{}\n\n{ANSWER}\n{}", paragraph(index, 60), paragraph(index + 7, 40)),
                reasoning: String::new(),
                error_kind: None,
                error_message: None,
                provider: Some("openai".into()),
                model: Some("gpt-4.1".into()),
                usage: Some(TokenUsage { prompt_tokens: 40, completion_tokens: 180, ..TokenUsage::default() }),
                ttft_ms: Some(350),
                duration_ms: Some(4200),
                updated_at: now,
            };
            store.finish_message(user, id, &answer).await.expect("answer stored");
        }
        parent = Some(id);
    }
    store.set_active_leaf(user, topic.id, parent, now).await.expect("leaf set");
    topic.id
}
