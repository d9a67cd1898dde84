//! Backups' view of the store: every table of the schema is either backed up or left out on
//! purpose, its columns are of the kinds a backup knows, and a snapshot's rows (messages
//! parents first) insert into an empty store of the same schema.

use futures_util::StreamExt;
use loquat_core::domain::MessageRole;
use loquat_core::id::MessageId;
use loquat_store::SqlStore;
use loquat_store::dump::{LEFT_OUT, TABLES};

use crate::fixtures::{insert, message, world};
use crate::harness::on_every_backend;

async fn every_table_is_backed_up_or_left_out_on_purpose(store: SqlStore) {
    let tables = store.tables().await.expect("lists tables");
    for table in &tables {
        let fts_shadow = table.starts_with("message_search_") || table == "sqlite_sequence";
        assert!(
            TABLES.contains(&table.as_str()) || LEFT_OUT.contains(&table.as_str()) || fts_shadow,
            "the table {table} is neither backed up nor left out: add it to loquat_store::dump::TABLES \
             (after the tables it refers to) or LEFT_OUT"
        );
    }
    for table in TABLES {
        assert!(tables.iter().any(|t| t == table), "{table} is in TABLES but not in the schema");
    }
    // Every backed-up column has a kind a backup knows.
    let mut snapshot = store.snapshot().await.expect("snapshot");
    for table in TABLES {
        snapshot.columns(table).await.unwrap_or_else(|error| panic!("{table}: {error}"));
    }
}

async fn messages_come_parents_first(store: SqlStore) {
    let w = world(&store).await;
    // Each child's id sorts before its parent's: a scan by id would give children first.
    let mut ids: Vec<MessageId> = (0..31).map(|_| MessageId::new()).collect();
    ids.sort_by_key(|id| std::cmp::Reverse(id.to_string()));
    let mut parent = None;
    for (step, id) in ids.into_iter().enumerate() {
        let mut new = message(&w.topic, parent, MessageRole::User, &format!("m{step}"), 5 + step as i64);
        new.id = id;
        parent = Some(insert(&store, &new).await.id);
    }
    let mut snapshot = store.snapshot().await.expect("snapshot");
    let columns = snapshot.columns("messages").await.expect("columns");
    let (id, parent_at) = (
        columns.iter().position(|c| c.name == "id").expect("id"),
        columns.iter().position(|c| c.name == "parent_id").expect("parent"),
    );
    let rows: Vec<_> = snapshot.rows("messages", &columns).map(|row| row.expect("row")).collect().await;
    let mut seen = std::collections::HashSet::new();
    for row in &rows {
        if let loquat_store::dump::Cell::Text(parent) = &row[parent_at] {
            assert!(seen.contains(parent), "a message came before its parent");
        }
        if let loquat_store::dump::Cell::Text(id) = &row[id] {
            seen.insert(id.clone());
        }
    }
    assert!(rows.len() >= 31);
}

on_every_backend!(every_table_is_backed_up_or_left_out_on_purpose, messages_come_parents_first);
