//! `AssistantStore`: JSON config round trip, list order, ownership, cascading delete.

use loquat_core::domain::{AssistantConfig, MessageRole, ModelParams};
use loquat_core::id::AssistantId;
use loquat_core::store::{AssistantStore, MessageStore, StoreErrorKind, TopicStore, UserStore};
use loquat_store::SqlStore;

use crate::fixtures::{assistant, at, insert, message, topic, user, world};
use crate::harness::on_every_backend;

fn rich_config() -> AssistantConfig {
    AssistantConfig {
        title: "翻译助手".into(),
        description: "把中文翻译成英文 — and back".into(),
        avatar: "🦊".into(),
        system_role: "你是一名专业的翻译。\n\"Quotes\", 'apostrophes', \\backslashes\\ and {{braces}}".into(),
        provider: "openai".into(),
        model: "gpt-4o-mini".into(),
        fallback_provider: "deepseek".into(),
        fallback_model: "deepseek-chat".into(),
        params: ModelParams {
            temperature: Some(0.25),
            top_p: Some(0.9),
            presence_penalty: Some(-1.5),
            frequency_penalty: None,
            max_tokens: Some(4096),
        },
        reasoning_effort: Some(loquat_core::llm::ReasoningEffort::High),
        history_limit: Some(12),
        input_template: "请翻译：{{text}}".into(),
        opening_message: "你好！".into(),
        opening_questions: vec!["这是什么？".into(), "How are you?".into()],
        tools: vec!["web_search".into(), "read_page".into()],
        tags: vec!["writing".into(), "翻译".into()],
        pinned: true,
        position: 3,
        voice: "nova".into(),
        compress_history: true,
        summary_model: "openai::gpt-4o-mini".into(),
    }
}

async fn config_round_trips(store: SqlStore) {
    let w = world(&store).await;
    let mut custom = assistant(w.alice.id, false, "", 5);
    custom.config = rich_config();
    store.insert_assistant(&custom).await.expect("inserted");
    assert_eq!(store.get_assistant(w.alice.id, custom.id).await.expect("loads"), Some(custom.clone()));
    assert_eq!(store.get_assistant(w.bob.id, custom.id).await.expect("loads"), None, "bob cannot see it");
    assert_eq!(store.get_assistant(w.alice.id, AssistantId::new()).await.expect("loads"), None);
}

async fn default_first_then_by_creation(store: SqlStore) {
    let alice = user("Alice");
    let bob = user("Bob");
    store.ensure_user(&alice).await.expect("alice");
    store.ensure_user(&bob).await.expect("bob");
    let second = assistant(alice.id, false, "second", 20);
    let first = assistant(alice.id, false, "first", 10);
    let default = assistant(alice.id, true, "default", 30);
    let bobs = assistant(bob.id, true, "bob's", 0);
    for a in [&second, &default, &first, &bobs] {
        store.insert_assistant(a).await.expect("inserted");
    }
    let listed = store.list_assistants(alice.id).await.expect("lists");
    let titles: Vec<&str> = listed.iter().map(|a| a.config.title.as_str()).collect();
    assert_eq!(titles, ["default", "first", "second"]);
    assert_eq!(listed[0], default);
    assert_eq!(store.list_assistants(bob.id).await.expect("lists"), vec![bobs]);
}

async fn update_changes_only_the_owners_assistant(store: SqlStore) {
    let w = world(&store).await;
    let config = rich_config();
    assert!(!store.update_assistant(w.bob.id, w.assistant.id, &config, at(99)).await.expect("runs"));
    assert_eq!(store.get_assistant(w.alice.id, w.assistant.id).await.expect("loads"), Some(w.assistant.clone()));

    assert!(store.update_assistant(w.alice.id, w.assistant.id, &config, at(99)).await.expect("runs"));
    let stored = store.get_assistant(w.alice.id, w.assistant.id).await.expect("loads").expect("exists");
    assert_eq!(stored.config, config);
    assert_eq!(stored.updated_at, at(99));
    assert_eq!(stored.created_at, w.assistant.created_at);
    assert!(stored.is_default);

    assert!(!store.update_assistant(w.alice.id, AssistantId::new(), &config, at(99)).await.expect("runs"));
}

async fn delete_cascades_to_topics_and_messages(store: SqlStore) {
    let w = world(&store).await;
    let other = assistant(w.alice.id, false, "other", 1);
    store.insert_assistant(&other).await.expect("inserted");
    let kept_topic = topic(w.alice.id, other.id, "kept", 1);
    store.insert_topic(&kept_topic).await.expect("inserted");
    let kept = insert(&store, &message(&kept_topic, None, MessageRole::User, "kept", 1)).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "q", 1)).await;
    let answer = insert(&store, &message(&w.topic, Some(question.id), MessageRole::Assistant, "a", 2)).await;

    assert!(!store.delete_assistant(w.bob.id, w.assistant.id).await.expect("runs"), "bob cannot delete it");
    assert!(store.get_assistant(w.alice.id, w.assistant.id).await.expect("loads").is_some());

    assert!(store.delete_assistant(w.alice.id, w.assistant.id).await.expect("runs"));
    assert_eq!(store.get_assistant(w.alice.id, w.assistant.id).await.expect("loads"), None);
    assert_eq!(store.get_topic(w.alice.id, w.topic.id).await.expect("loads"), None);
    assert_eq!(store.get_message(w.alice.id, question.id).await.expect("loads"), None);
    assert_eq!(store.get_message(w.alice.id, answer.id).await.expect("loads"), None);
    assert!(!store.delete_assistant(w.alice.id, w.assistant.id).await.expect("runs"), "already gone");

    assert_eq!(store.get_message(w.alice.id, kept.id).await.expect("loads"), Some(kept));
    assert!(store.get_topic(w.bob.id, w.bob_topic.id).await.expect("loads").is_some());
    assert!(store.get_assistant(w.bob.id, w.bob_assistant.id).await.expect("loads").is_some());
}

async fn broken_rules_are_conflicts(store: SqlStore) {
    let w = world(&store).await;
    let duplicate = store.insert_assistant(&w.assistant).await.expect_err("the id is taken");
    assert_eq!(duplicate.kind, StoreErrorKind::Conflict);
    let orphan = assistant(user("nobody").id, false, "", 0);
    let missing_user = store.insert_assistant(&orphan).await.expect_err("the user does not exist");
    assert_eq!(missing_user.kind, StoreErrorKind::Conflict);
}

on_every_backend!(
    config_round_trips,
    default_first_then_by_creation,
    update_changes_only_the_owners_assistant,
    delete_cascades_to_topics_and_messages,
    broken_rules_are_conflicts,
);
