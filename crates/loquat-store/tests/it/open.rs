//! Opening, migrating, pinging and closing stores; concurrent use; the URL forms `open`
//! accepts; and PostgreSQL replicas migrating together.

use std::sync::Arc;

use loquat_core::domain::MessageRole;
use loquat_core::store::{MessageStore, Store, StoreErrorKind, UserStore};
use loquat_store::{SQLITE_FILE_NAME, SqlStore, StoreOptions, open};
use loquat_test_support::postgres::TestDatabase;
use sqlx::Connection;

use crate::fixtures::{message, user, world};
use crate::harness::{TempDir, on_every_backend, sqlite_store};

async fn ping_migrate_and_name(store: SqlStore) {
    store.ping().await.expect("the database answers");
    assert!(["sqlite", "postgres"].contains(&store.backend_name()));
    store.migrate().await.expect("migrating a migrated database does nothing");
    store.migrate().await.expect("and again");
}

async fn concurrent_writes_are_read_back(store: SqlStore) {
    let w = Arc::new(world(&store).await);
    let mut tasks = Vec::new();
    for task in 0..16 {
        let (store, w) = (store.clone(), w.clone());
        tasks.push(tokio::spawn(async move {
            for index in 0..25 {
                let new = message(&w.topic, None, MessageRole::User, &format!("{task}/{index}"), index);
                store.insert_message(&new).await.expect("inserted");
                // A read right after the write sees it, even though reads use other connections.
                let read = store.get_message(w.alice.id, new.id).await.expect("loads");
                assert_eq!(read.map(|m| m.content), Some(new.content));
            }
        }));
    }
    for task in tasks {
        task.await.expect("the task succeeds");
    }
    assert_eq!(store.list_messages(w.alice.id, w.topic.id).await.expect("lists").len(), 16 * 25);
}

async fn a_closed_store_is_unavailable(store: SqlStore) {
    store.close().await;
    let error = store.ping().await.expect_err("closed");
    assert_eq!(error.kind, StoreErrorKind::Unavailable);
    let error = store.get_user(user("x").id).await.expect_err("closed");
    assert!(error.is_unavailable());
}

on_every_backend!(ping_migrate_and_name, concurrent_writes_are_read_back, a_closed_store_is_unavailable);

#[tokio::test]
async fn sqlite_file_goes_in_the_data_dir_and_survives_reopening() {
    let root = TempDir::new("reopen");
    let dir = TempDir { path: root.path.join("nested").join("data") };
    let alice = user("Alice");
    {
        let store = sqlite_store(&dir).await;
        assert_eq!(store.backend_name(), "sqlite");
        store.ensure_user(&alice).await.expect("inserted");
        store.close().await;
    }
    let file = dir.path.join(SQLITE_FILE_NAME);
    assert!(file.is_file(), "{} exists", file.display());

    let mut connection = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await.expect("opens");
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode").fetch_one(&mut connection).await.expect("reads");
    assert_eq!(mode, "wal");
    connection.close().await.expect("closes");

    let store = sqlite_store(&dir).await;
    assert_eq!(store.get_user(alice.id).await.expect("loads"), Some(alice));
    store.close().await;
}

#[tokio::test]
async fn sqlite_urls_are_accepted() {
    let dir = TempDir::new("url");
    std::fs::create_dir_all(&dir.path).expect("the directory is created");
    let url = format!("sqlite://{}", dir.path.join("custom.db").display());
    let options = StoreOptions { database_url: Some(url), data_dir: dir.path.join("unused") };
    let store = open(&options).await.expect("opens");
    let alice = user("Alice");
    store.ensure_user(&alice).await.expect("inserted");
    assert_eq!(store.get_user(alice.id).await.expect("loads"), Some(alice));
    store.close().await;
    assert!(dir.path.join("custom.db").is_file());
    assert!(!dir.path.join("unused").exists(), "the data dir is not used");

    let options = StoreOptions { database_url: Some("sqlite::memory:".into()), data_dir: dir.path.clone() };
    let store = open(&options).await.expect("opens in memory");
    let bob = user("Bob");
    store.ensure_user(&bob).await.expect("inserted");
    assert_eq!(store.get_user(bob.id).await.expect("loads"), Some(bob));
    store.close().await;
}

#[tokio::test]
async fn an_empty_url_means_the_data_dir() {
    let dir = TempDir::new("empty-url");
    let options = StoreOptions { database_url: Some("  ".into()), data_dir: dir.path.clone() };
    let store = open(&options).await.expect("opens");
    store.close().await;
    assert!(dir.path.join(SQLITE_FILE_NAME).is_file());
}

#[tokio::test]
async fn unknown_schemes_are_refused() {
    let dir = TempDir::new("scheme");
    let options =
        StoreOptions { database_url: Some("mysql://root:secret@localhost/db".into()), data_dir: dir.path.clone() };
    let error = open(&options).await.expect_err("refused");
    assert!(error.to_string().contains("mysql"));
    assert!(!error.to_string().contains("secret"), "the URL's password is not echoed");
}

#[tokio::test]
async fn unreachable_postgres_is_unavailable() {
    let options = StoreOptions {
        database_url: Some("postgres://postgres@127.0.0.1:9/loquat".into()),
        data_dir: std::env::temp_dir(),
    };
    let error = open(&options).await.expect_err("nothing listens on port 9");
    assert_eq!(error.kind, StoreErrorKind::Unavailable, "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_replicas_starting_together_migrate_once() {
    let Some(database) = TestDatabase::from_env().await else {
        println!("postgres_replicas_starting_together_migrate_once: skipped (LOQUAT_TEST_DATABASE_URL is not set)");
        return;
    };
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let options = StoreOptions { database_url: Some(database.url.clone()), data_dir: std::env::temp_dir() };
            tokio::spawn(async move { open(&options).await })
        })
        .collect();
    let mut stores = Vec::new();
    for replica in replicas {
        stores.push(replica.await.expect("the task succeeds").expect("every replica opens"));
    }
    let alice = user("Alice");
    stores[0].ensure_user(&alice).await.expect("inserted");
    assert_eq!(stores[3].get_user(alice.id).await.expect("loads"), Some(alice));
    for store in &stores {
        store.close().await;
    }
    database.drop().await.expect("dropped");
}
