//! `McpServerStore`: a member's limit of own servers holds when additions race (each counts
//! under a lock of the owner's row); shared servers are not counted.

use loquat_core::domain::{McpServerRecord, McpTransport};
use loquat_core::id::{McpServerId, UserId};
use loquat_core::store::McpServerStore;
use loquat_store::SqlStore;

use crate::fixtures::{at, world};
use crate::harness::on_every_backend;

fn server(owner: UserId, index: usize, shared: bool) -> McpServerRecord {
    McpServerRecord {
        id: McpServerId::new(),
        user_id: owner,
        name: format!("server-{index}"),
        transport: McpTransport::Http,
        target: format!("https://mcp{index}.example.com/mcp"),
        args: Vec::new(),
        manifest: None,
        secrets_encrypted: None,
        shared,
        enabled: true,
        created_at: at(index as i64),
        updated_at: at(index as i64),
    }
}

async fn the_limit_of_own_servers_holds_when_additions_race(store: SqlStore) {
    let w = world(&store).await;
    // A shared server of the same person does not count.
    assert!(store.insert_mcp_server(&server(w.alice.id, 100, true), None).await.expect("inserts"));
    let additions = (0..12).map(|index| {
        let store = store.clone();
        let record = server(w.alice.id, index, false);
        tokio::spawn(async move { store.insert_mcp_server(&record, Some(5)).await.expect("answers") })
    });
    let mut stored = 0;
    for addition in additions {
        stored += usize::from(addition.await.expect("joins"));
    }
    assert_eq!(stored, 5, "exactly the limit");
    assert_eq!(store.list_mcp_servers(w.alice.id).await.expect("lists").len(), 5);
    // Bob's count is his own.
    assert!(store.insert_mcp_server(&server(w.bob.id, 0, false), Some(5)).await.expect("inserts"));
}

on_every_backend!(the_limit_of_own_servers_holds_when_additions_race);
