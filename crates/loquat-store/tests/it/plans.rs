//! Query plans: loading a topic's messages finds them through the (topic_id, created_at, id)
//! index, which also yields them in order, on both backends. The SQL mirrors `list_messages` in
//! src/messages.rs.

use loquat_core::domain::MessageRole;
use loquat_core::store::{MessageStore, TopicStore};
use loquat_store::{SQLITE_FILE_NAME, StoreOptions, open};
use loquat_test_support::postgres::TestDatabase;
use sqlx::Connection;

use crate::fixtures::{message, topic, world};
use crate::harness::{TempDir, sqlite_store};

const LIST_MESSAGES: &str = "SELECT id, user_id, topic_id, parent_id, role, content, reasoning, status, error_kind, \
     error_message, provider, model, prompt_tokens, completion_tokens, reasoning_tokens, ttft_ms, \
     duration_ms, created_at, updated_at FROM messages WHERE topic_id = $1 AND user_id = $2 \
     ORDER BY created_at, id";

#[tokio::test]
async fn sqlite_lists_messages_through_the_index() {
    let dir = TempDir::new("plan");
    let store = sqlite_store(&dir).await;
    store.close().await;
    let url = format!("sqlite://{}", dir.path.join(SQLITE_FILE_NAME).display());
    let mut connection = sqlx::SqliteConnection::connect(&url).await.expect("opens");
    let plan: Vec<(i64, i64, i64, String)> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {LIST_MESSAGES}")))
            .bind("t")
            .bind("u")
            .fetch_all(&mut connection)
            .await
            .expect("explains");
    let details: Vec<&str> = plan.iter().map(|row| row.3.as_str()).collect();
    assert!(details.iter().any(|d| d.contains("USING INDEX messages_topic_created")), "{details:?}");
    assert!(!details.iter().any(|d| d.contains("TEMP B-TREE")), "no sort step: {details:?}");
    connection.close().await.expect("closes");
}

#[tokio::test]
async fn postgres_lists_messages_through_the_index() {
    let Some(database) = TestDatabase::from_env().await else {
        println!("postgres_lists_messages_through_the_index: skipped (LOQUAT_TEST_DATABASE_URL is not set)");
        return;
    };
    let options = StoreOptions { database_url: Some(database.url.clone()), data_dir: std::env::temp_dir() };
    let store = open(&options).await.expect("opens");
    let w = world(&store).await;
    // Enough topics for the statistics to favour the index.
    let mut topics = vec![w.topic.clone()];
    for _ in 0..49 {
        let t = topic(w.alice.id, w.assistant.id, "", 0);
        store.insert_topic(&t).await.expect("inserted");
        topics.push(t);
    }
    for index in 0..2_000 {
        let t = &topics[index % topics.len()];
        store.insert_message(&message(t, None, MessageRole::User, "x", index as i64)).await.expect("inserted");
    }
    store.close().await;

    let mut connection = sqlx::PgConnection::connect(&database.url).await.expect("connects");
    sqlx::query("ANALYZE messages").execute(&mut connection).await.expect("analyzes");
    let explain = async |connection: &mut sqlx::PgConnection| -> Vec<String> {
        let plan: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!("EXPLAIN {LIST_MESSAGES}")))
            .bind(w.topic.id.to_string())
            .bind(w.alice.id.to_string())
            .fetch_all(connection)
            .await
            .expect("explains");
        plan.into_iter().map(|row| row.0).collect()
    };
    // The planner may prefer a bitmap scan of the index plus an in-memory sort of the topic's
    // rows (they are spread over the table); either way it finds them through the index.
    let plan = explain(&mut connection).await;
    assert!(plan.iter().any(|line| line.contains("messages_topic_created")), "{plan:#?}");
    // Walking the index itself yields the rows in order: no sort step.
    sqlx::raw_sql("SET enable_bitmapscan = off; SET enable_seqscan = off")
        .execute(&mut connection)
        .await
        .expect("sets");
    let plan = explain(&mut connection).await;
    assert!(plan.iter().any(|line| line.contains("Index Scan using messages_topic_created")), "{plan:#?}");
    assert!(!plan.iter().any(|line| line.contains("Sort")), "no sort step: {plan:#?}");
    connection.close().await.expect("closes");
    database.drop().await.expect("dropped");
}
