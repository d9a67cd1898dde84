//! Search figures: one person's 1,000,000 messages (questions and answers of 30–90 words,
//! English and Chinese, each with a ticket number as a rare term), searched through the store
//! for a rare term, a common word, a Chinese word and two common words at once.

use std::time::Instant;

use loquat_core::domain::{MessageRole, MessageStatus, NewMessage, Topic};
use loquat_core::id::{MessageId, TopicId};
use loquat_core::store::{Store, TreeWrite};
use loquat_core::time::Timestamp;
use loquat_docs::search::Tokenizer;
use loquat_store::StoreOptions;
use loquat_test_support::postgres::TestDatabase;
use serde_json::{Value, json};

use crate::{seed, stats, temp_dir};

const MESSAGES: usize = 1_000_000;
/// Messages per topic, and per transaction while seeding.
const PER_TOPIC: usize = 1_000;
const RUNS: usize = 100;
const QUERIES: [(&str, &str); 4] =
    [("rare", "ticket 424242"), ("common", "latency"), ("chinese", "服务器"), ("two_common", "cache replica")];

pub async fn run() -> Value {
    let dir = temp_dir("search");
    let store =
        loquat_store::open(&StoreOptions { database_url: None, data_dir: dir.clone() }).await.expect("SQLite opens");
    let mut result = json!({ "sqlite": measure(&store).await });
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
    match std::env::var("LOQUAT_BENCH_DATABASE_URL") {
        Ok(admin) => {
            let database = TestDatabase::create(&admin).await.expect("a fresh PostgreSQL database");
            let options = StoreOptions { database_url: Some(database.url.clone()), data_dir: temp_dir("pg-search") };
            let store = loquat_store::open(&options).await.expect("PostgreSQL opens");
            result["postgres"] = measure(&store).await;
            drop(store);
            database.drop().await.expect("database dropped");
        }
        Err(_) => println!("search: PostgreSQL skipped (set LOQUAT_BENCH_DATABASE_URL to an admin URL)"),
    }
    result
}

async fn measure(store: &dyn Store) -> Value {
    let (user, assistant) = seed::account_and_assistant(store).await;
    let started = Instant::now();
    let now = Timestamp::now();
    for batch in 0..MESSAGES / PER_TOPIC {
        let topic = Topic {
            id: TopicId::new(),
            user_id: user,
            assistant_id: assistant,
            title: format!("Topic {batch}"),
            active_leaf_id: None,
            pinned: false,
            created_at: now,
            updated_at: now,
        };
        let mut messages = Vec::with_capacity(PER_TOPIC);
        let mut parent = None;
        for index in 0..PER_TOPIC {
            let n = batch * PER_TOPIC + index;
            let id = MessageId::new();
            let role = if n.is_multiple_of(2) { MessageRole::User } else { MessageRole::Assistant };
            let words = if role == MessageRole::User { 30 } else { 90 };
            messages.push(NewMessage {
                id,
                user_id: user,
                topic_id: topic.id,
                parent_id: parent,
                role,
                content: format!("{} ticket {}", seed::paragraph(n, words), (n * 7_919) % 1_000_000),
                status: MessageStatus::Complete,
                provider: None,
                model: None,
                generating_by: None,
                created_at: Timestamp(now.0 + n as i64),
            });
            parent = Some(id);
        }
        let mut writes = vec![TreeWrite::InsertTopic(&topic)];
        writes.extend(messages.iter().map(TreeWrite::InsertMessage));
        store.write_tree(user, &writes).await.expect("seeded");
    }
    let seeded = started.elapsed();
    println!("search: {MESSAGES} messages written and indexed in {:.1} s", seeded.as_secs_f64());
    let tokenizer = Tokenizer::default();
    let mut result = json!({ "messages": MESSAGES, "seed_seconds": stats::round(seeded.as_secs_f64()) });
    for (name, query) in QUERIES {
        let terms = tokenizer.collect(query);
        let mut samples = Vec::with_capacity(RUNS);
        let mut found = 0;
        for _ in 0..RUNS {
            let started = Instant::now();
            found = store.search_messages(user, &terms, 50).await.expect("searches").len();
            samples.push(started.elapsed());
        }
        let summary = stats::summarize(&mut samples);
        println!(
            "search ({}) \"{query}\": {found} results, p50 {:.2} ms, p99 {:.2} ms",
            store.backend_name(),
            summary.p50_ms,
            summary.p99_ms
        );
        result[name] = json!({ "query": query, "results": found, "time": stats::json(summary) });
    }
    result
}
