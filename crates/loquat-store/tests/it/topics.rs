//! `TopicStore`: list order, renaming, auto-titling, the active leaf, cascading delete, and
//! that another user's id finds and changes nothing.

use loquat_core::domain::MessageRole;
use loquat_core::id::{AssistantId, MessageId, TopicId};
use loquat_core::store::{AssistantStore, MessageStore, StoreErrorKind, TopicStore};
use loquat_store::SqlStore;

use crate::fixtures::{assistant, at, insert, message, topic, world};
use crate::harness::on_every_backend;

async fn insert_and_get(store: SqlStore) {
    let w = world(&store).await;
    let mut titled = topic(w.alice.id, w.assistant.id, "关于量子计算的讨论", 7);
    titled.active_leaf_id = Some(MessageId::new());
    store.insert_topic(&titled).await.expect("inserted");
    assert_eq!(store.get_topic(w.alice.id, titled.id).await.expect("loads"), Some(titled.clone()));
    assert_eq!(store.get_topic(w.bob.id, titled.id).await.expect("loads"), None);
    assert_eq!(store.get_topic(w.alice.id, TopicId::new()).await.expect("loads"), None);
}

async fn most_recently_active_first(store: SqlStore) {
    let w = world(&store).await;
    let other = assistant(w.alice.id, false, "other", 1);
    store.insert_assistant(&other).await.expect("inserted");
    let old = topic(w.alice.id, w.assistant.id, "old", 10);
    let new = topic(w.alice.id, w.assistant.id, "new", 30);
    let middle = topic(w.alice.id, w.assistant.id, "middle", 20);
    let elsewhere = topic(w.alice.id, other.id, "elsewhere", 40);
    for t in [&old, &new, &middle, &elsewhere] {
        store.insert_topic(t).await.expect("inserted");
    }
    let titles = |topics: Vec<loquat_core::domain::Topic>| topics.into_iter().map(|t| t.title).collect::<Vec<_>>();
    let listed = store.list_topics(w.alice.id, w.assistant.id).await.expect("lists");
    assert_eq!(titles(listed), ["new", "middle", "old", ""]);

    // Activity moves a topic to the top.
    assert!(store.set_active_leaf(w.alice.id, old.id, None, at(50)).await.expect("runs"));
    let listed = store.list_topics(w.alice.id, w.assistant.id).await.expect("lists");
    assert_eq!(titles(listed), ["old", "new", "middle", ""]);

    assert_eq!(titles(store.list_topics(w.alice.id, other.id).await.expect("lists")), ["elsewhere"]);
    assert!(store.list_topics(w.bob.id, w.assistant.id).await.expect("lists").is_empty());
    assert!(store.list_topics(w.alice.id, AssistantId::new()).await.expect("lists").is_empty());
}

async fn rename_is_owner_only(store: SqlStore) {
    let w = world(&store).await;
    assert!(!store.rename_topic(w.bob.id, w.topic.id, "hijacked", at(5)).await.expect("runs"));
    assert_eq!(store.get_topic(w.alice.id, w.topic.id).await.expect("loads"), Some(w.topic.clone()));

    assert!(store.rename_topic(w.alice.id, w.topic.id, "新的标题", at(5)).await.expect("runs"));
    let stored = store.get_topic(w.alice.id, w.topic.id).await.expect("loads").expect("exists");
    assert_eq!((stored.title.as_str(), stored.updated_at), ("新的标题", at(5)));
    assert!(!store.rename_topic(w.alice.id, TopicId::new(), "x", at(5)).await.expect("runs"));
}

async fn auto_title_never_overwrites(store: SqlStore) {
    let w = world(&store).await;
    assert!(!store.set_title_if_empty(w.bob.id, w.topic.id, "bob's title").await.expect("runs"));
    assert!(store.set_title_if_empty(w.alice.id, w.topic.id, "自动标题").await.expect("runs"));
    assert!(!store.set_title_if_empty(w.alice.id, w.topic.id, "second").await.expect("runs"));
    let stored = store.get_topic(w.alice.id, w.topic.id).await.expect("loads").expect("exists");
    assert_eq!(stored.title, "自动标题");

    assert!(store.rename_topic(w.alice.id, w.topic.id, "renamed", at(3)).await.expect("runs"));
    assert!(!store.set_title_if_empty(w.alice.id, w.topic.id, "auto").await.expect("runs"));
    let stored = store.get_topic(w.alice.id, w.topic.id).await.expect("loads").expect("exists");
    assert_eq!(stored.title, "renamed");
    assert!(!store.set_title_if_empty(w.alice.id, TopicId::new(), "x").await.expect("runs"));
}

async fn active_leaf_is_set_and_cleared(store: SqlStore) {
    let w = world(&store).await;
    let leaf = insert(&store, &message(&w.topic, None, MessageRole::User, "hi", 1)).await;
    assert!(!store.set_active_leaf(w.bob.id, w.topic.id, Some(leaf.id), at(2)).await.expect("runs"));
    assert_eq!(store.get_topic(w.alice.id, w.topic.id).await.expect("loads"), Some(w.topic.clone()));

    assert!(store.set_active_leaf(w.alice.id, w.topic.id, Some(leaf.id), at(2)).await.expect("runs"));
    let stored = store.get_topic(w.alice.id, w.topic.id).await.expect("loads").expect("exists");
    assert_eq!((stored.active_leaf_id, stored.updated_at), (Some(leaf.id), at(2)));

    assert!(store.set_active_leaf(w.alice.id, w.topic.id, None, at(3)).await.expect("runs"));
    let stored = store.get_topic(w.alice.id, w.topic.id).await.expect("loads").expect("exists");
    assert_eq!((stored.active_leaf_id, stored.updated_at), (None, at(3)));
    assert!(!store.set_active_leaf(w.alice.id, TopicId::new(), None, at(3)).await.expect("runs"));
}

async fn delete_cascades_to_messages(store: SqlStore) {
    let w = world(&store).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "q", 1)).await;
    let answer = insert(&store, &message(&w.topic, Some(question.id), MessageRole::Assistant, "a", 2)).await;
    let follow_up = insert(&store, &message(&w.topic, Some(answer.id), MessageRole::User, "q2", 3)).await;
    let bobs = insert(&store, &message(&w.bob_topic, None, MessageRole::User, "bob", 1)).await;

    assert!(!store.delete_topic(w.bob.id, w.topic.id).await.expect("runs"));
    assert_eq!(store.list_messages(w.alice.id, w.topic.id).await.expect("lists").len(), 3);

    assert!(store.delete_topic(w.alice.id, w.topic.id).await.expect("runs"));
    assert_eq!(store.get_topic(w.alice.id, w.topic.id).await.expect("loads"), None);
    for gone in [question.id, answer.id, follow_up.id] {
        assert_eq!(store.get_message(w.alice.id, gone).await.expect("loads"), None);
    }
    assert!(store.list_messages(w.alice.id, w.topic.id).await.expect("lists").is_empty());
    assert!(!store.delete_topic(w.alice.id, w.topic.id).await.expect("runs"), "already gone");
    assert_eq!(store.get_message(w.bob.id, bobs.id).await.expect("loads"), Some(bobs));
}

async fn a_topic_needs_its_assistant(store: SqlStore) {
    let w = world(&store).await;
    let orphan = topic(w.alice.id, AssistantId::new(), "", 0);
    let error = store.insert_topic(&orphan).await.expect_err("the assistant does not exist");
    assert_eq!(error.kind, StoreErrorKind::Conflict);
    let error = store.insert_topic(&w.topic).await.expect_err("the id is taken");
    assert_eq!(error.kind, StoreErrorKind::Conflict);
}

async fn pinning_is_owner_only_and_keeps_the_time(store: SqlStore) {
    let w = world(&store).await;
    assert!(!store.set_topic_pinned(w.bob.id, w.topic.id, true).await.expect("runs"));
    assert!(store.set_topic_pinned(w.alice.id, w.topic.id, true).await.expect("runs"));
    let pinned = store.get_topic(w.alice.id, w.topic.id).await.expect("loads").expect("exists");
    assert_eq!((pinned.pinned, pinned.updated_at), (true, w.topic.updated_at));
    let listed = store.list_topics(w.alice.id, w.assistant.id).await.expect("lists");
    assert!(listed.iter().find(|t| t.id == w.topic.id).expect("listed").pinned);
    assert!(store.set_topic_pinned(w.alice.id, w.topic.id, false).await.expect("runs"));
    assert!(!store.get_topic(w.alice.id, w.topic.id).await.expect("loads").expect("exists").pinned);
}

on_every_backend!(
    insert_and_get,
    pinning_is_owner_only_and_keeps_the_time,
    most_recently_active_first,
    rename_is_owner_only,
    auto_title_never_overwrites,
    active_leaf_is_set_and_cleared,
    delete_cascades_to_messages,
    a_topic_needs_its_assistant,
);
