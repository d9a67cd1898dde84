//! Store figures: loading a 2,000-message topic (one query) and building its visible branch, on
//! SQLite and, when a PostgreSQL admin URL is given, on a fresh PostgreSQL database.

use std::time::Instant;

use loquat_core::store::Store;
use loquat_core::tree::MessageTree;
use loquat_store::StoreOptions;
use loquat_test_support::postgres::TestDatabase;
use serde_json::{Value, json};

use crate::{seed, stats, temp_dir};

const MESSAGES: usize = 2_000;
const RUNS: usize = 50;

pub async fn run() -> Value {
    let dir = temp_dir("store");
    let sqlite =
        loquat_store::open(&StoreOptions { database_url: None, data_dir: dir.clone() }).await.expect("SQLite opens");
    let mut result = json!({ "sqlite": measure(&sqlite).await });
    drop(sqlite);
    let _ = std::fs::remove_dir_all(&dir);
    let admin = std::env::var("LOQUAT_BENCH_DATABASE_URL").or_else(|_| std::env::var("LOQUAT_TEST_DATABASE_URL"));
    match admin {
        Ok(admin) => {
            let database = TestDatabase::create(&admin).await.expect("a fresh PostgreSQL database");
            let store = loquat_store::open(&StoreOptions {
                database_url: Some(database.url.clone()),
                data_dir: temp_dir("pg"),
            })
            .await
            .expect("PostgreSQL opens");
            result["postgres"] = measure(&store).await;
            drop(store);
            database.drop().await.expect("database dropped");
        }
        Err(_) => println!("store: PostgreSQL skipped (set LOQUAT_BENCH_DATABASE_URL to an admin URL)"),
    }
    result
}

async fn measure(store: &dyn Store) -> Value {
    let (user, assistant) = seed::account_and_assistant(store).await;
    let seeded = seed::topic(store, user, assistant, MESSAGES).await;
    let mut load = Vec::with_capacity(RUNS);
    let mut branch = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let started = Instant::now();
        let messages = store.list_messages(user, seeded).await.expect("loads");
        load.push(started.elapsed());
        assert_eq!(messages.len(), MESSAGES);
        let started = Instant::now();
        let path = MessageTree::new(&messages).branch(None);
        branch.push(started.elapsed());
        assert_eq!(path.len(), MESSAGES);
    }
    let load = stats::summarize(&mut load);
    let branch = stats::summarize(&mut branch);
    println!(
        "store ({}): load {MESSAGES} messages p50 {:.2} ms p99 {:.2} ms; build branch p50 {:.2} ms",
        store.backend_name(),
        load.p50_ms,
        load.p99_ms,
        branch.p50_ms
    );
    json!({ "load_2000_messages": stats::json(load), "branch_2000_messages": stats::json(branch) })
}
