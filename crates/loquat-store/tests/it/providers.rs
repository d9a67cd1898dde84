//! `ProviderStore`: round trip, list order, update and delete; another user's id finds and
//! changes nothing.

use loquat_core::domain::ProviderOverride;
use loquat_core::id::ProviderSettingId;
use loquat_core::store::{ProviderStore, StoreErrorKind};
use loquat_store::SqlStore;

use crate::fixtures::{at, provider, world};
use crate::harness::on_every_backend;

async fn insert_get_and_list(store: SqlStore) {
    let w = world(&store).await;
    let mut second = provider(w.alice.id, "第二个", 20);
    second.protocol = loquat_core::domain::Protocol::Azure;
    second.api_version = "2024-10-21".into();
    let mut first = provider(w.alice.id, "Local Ollama", 10);
    first.api_key_encrypted = None;
    first.enabled = false;
    let bobs = provider(w.bob.id, "Bob's", 5);
    for p in [&second, &first, &bobs] {
        store.insert_provider(p).await.expect("inserted");
    }
    assert_eq!(store.get_provider(w.alice.id, first.id).await.expect("loads"), Some(first.clone()));
    assert_eq!(store.get_provider(w.alice.id, second.id).await.expect("loads"), Some(second.clone()));
    assert_eq!(store.get_provider(w.bob.id, first.id).await.expect("loads"), None);
    assert_eq!(store.get_provider(w.alice.id, ProviderSettingId::new()).await.expect("loads"), None);
    assert_eq!(store.list_providers(w.alice.id).await.expect("lists"), vec![first, second]);
    assert_eq!(store.list_providers(w.bob.id).await.expect("lists"), vec![bobs]);
}

async fn update_is_owner_only(store: SqlStore) {
    let w = world(&store).await;
    let original = provider(w.alice.id, "Mine", 1);
    store.insert_provider(&original).await.expect("inserted");

    let mut changed = original.clone();
    changed.name = "改名了".into();
    changed.base_url = "http://localhost:11434/v1".into();
    changed.api_key_encrypted = None;
    changed.model_list = "-all,+llama3".into();
    changed.enabled = false;
    changed.updated_at = at(9);

    let hijack = loquat_core::domain::ProviderSetting { user_id: w.bob.id, ..changed.clone() };
    assert!(!store.update_provider(&hijack).await.expect("runs"), "bob cannot change it");
    assert_eq!(store.get_provider(w.alice.id, original.id).await.expect("loads"), Some(original.clone()));

    assert!(store.update_provider(&changed).await.expect("runs"));
    assert_eq!(store.get_provider(w.alice.id, original.id).await.expect("loads"), Some(changed));

    let missing = provider(w.alice.id, "missing", 1);
    assert!(!store.update_provider(&missing).await.expect("runs"));
}

async fn delete_is_owner_only(store: SqlStore) {
    let w = world(&store).await;
    let mine = provider(w.alice.id, "Mine", 1);
    store.insert_provider(&mine).await.expect("inserted");
    assert!(!store.delete_provider(w.bob.id, mine.id).await.expect("runs"));
    assert!(store.get_provider(w.alice.id, mine.id).await.expect("loads").is_some());
    assert!(store.delete_provider(w.alice.id, mine.id).await.expect("runs"));
    assert_eq!(store.get_provider(w.alice.id, mine.id).await.expect("loads"), None);
    assert!(!store.delete_provider(w.alice.id, mine.id).await.expect("runs"));

    store.insert_provider(&mine).await.expect("the deleted id is free again");
    let taken = store.insert_provider(&mine).await.expect_err("the id is taken");
    assert_eq!(taken.kind, StoreErrorKind::Conflict);
}

async fn overrides_are_per_user_and_replaceable(store: SqlStore) {
    let w = world(&store).await;
    let mine = ProviderOverride {
        user_id: w.alice.id,
        provider_id: "openai".into(),
        api_key_encrypted: Some("aa:bb:cc".into()),
        base_url: String::new(),
        updated_at: at(10),
    };
    store.upsert_provider_override(&mine).await.expect("inserted");
    assert_eq!(store.get_provider_override(w.alice.id, "openai").await.expect("loads"), Some(mine.clone()));
    assert_eq!(store.get_provider_override(w.bob.id, "openai").await.expect("loads"), None);
    let replaced = ProviderOverride {
        api_key_encrypted: None,
        base_url: "https://proxy.example/v1".into(),
        updated_at: at(20),
        ..mine
    };
    store.upsert_provider_override(&replaced).await.expect("replaced");
    let ollama = ProviderOverride { provider_id: "ollama".into(), ..replaced.clone() };
    store.upsert_provider_override(&ollama).await.expect("inserted");
    assert_eq!(store.list_provider_overrides(w.alice.id).await.expect("lists"), vec![ollama, replaced]);
    assert!(store.list_provider_overrides(w.bob.id).await.expect("lists").is_empty());
    assert!(!store.delete_provider_override(w.bob.id, "openai").await.expect("runs"));
    assert!(store.delete_provider_override(w.alice.id, "openai").await.expect("runs"));
    assert_eq!(store.get_provider_override(w.alice.id, "openai").await.expect("loads"), None);
}

on_every_backend!(
    insert_get_and_list,
    update_is_owner_only,
    delete_is_owner_only,
    overrides_are_per_user_and_replaceable
);
