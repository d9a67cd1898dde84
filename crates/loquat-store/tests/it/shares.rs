//! `ShareStore` and imported messages: a link is made only for its owner's topic, found by its
//! secret's hash alone, listed and revoked only by its owner, gone with its topic; an imported
//! message keeps every field and is searchable at once; a topic's summary is its owner's.

use loquat_core::domain::{Message, MessageRole, MessageStatus, Share, TokenUsage, Topic};
use loquat_core::id::{MessageId, ShareId, TopicId};
use loquat_core::store::{MessageStore, SearchStore, ShareStore, TopicStore, TreeWrite};
use loquat_store::SqlStore;

use crate::fixtures::{at, world};
use crate::harness::on_every_backend;

fn share(topic: &Topic, token: &str, created: i64) -> Share {
    Share {
        id: ShareId::new(),
        user_id: topic.user_id,
        topic_id: topic.id,
        token: token.to_owned(),
        leaf_id: None,
        show_name: true,
        created_at: at(created),
        expires_at: Some(at(created + 1_000)),
    }
}

async fn links_belong_to_their_topics_owner(store: SqlStore) {
    let w = world(&store).await;
    let first = share(&w.topic, "secret-1", 1);
    assert!(store.insert_share(&first, "hash-1").await.expect("inserted"));
    let second = share(&w.topic, "secret-2", 2);
    assert!(store.insert_share(&second, "hash-2").await.expect("inserted"));
    // Bob cannot share Alice's topic, even naming himself as its owner.
    let stolen = Share { user_id: w.bob.id, ..share(&w.topic, "secret-3", 3) };
    assert!(!store.insert_share(&stolen, "hash-3").await.expect("refused quietly"));

    let found = store.find_share("hash-1").await.expect("found").expect("a link");
    assert_eq!(found, first);
    assert!(store.find_share("secret-1").await.expect("looked up").is_none(), "found by hash only");
    let listed = store.list_shares(w.alice.id, w.topic.id).await.expect("listed");
    assert_eq!(listed.iter().map(|s| s.id).collect::<Vec<_>>(), [second.id, first.id], "newest first");
    assert!(store.list_shares(w.bob.id, w.topic.id).await.expect("listed").is_empty());

    assert!(!store.delete_share(w.bob.id, first.id).await.expect("not his"));
    assert!(store.delete_share(w.alice.id, first.id).await.expect("revoked"));
    assert!(store.find_share("hash-1").await.expect("looked up").is_none());
    assert!(store.delete_topic(w.alice.id, w.topic.id).await.expect("deleted"));
    assert!(store.find_share("hash-2").await.expect("looked up").is_none(), "gone with the topic");
}

async fn an_imported_message_keeps_every_field(store: SqlStore) {
    let w = world(&store).await;
    let topic = Topic { id: TopicId::new(), pinned: true, title: "Imported".into(), ..w.topic.clone() };
    let question = Message {
        id: MessageId::new(),
        user_id: w.alice.id,
        topic_id: topic.id,
        parent_id: None,
        role: MessageRole::User,
        content: "What grows on loquat trees?".into(),
        reasoning: String::new(),
        status: MessageStatus::Complete,
        error_kind: None,
        error_message: None,
        provider: None,
        model: None,
        usage: None,
        ttft_ms: None,
        duration_ms: None,
        created_at: at(10),
        updated_at: at(10),
    };
    let answer = Message {
        id: MessageId::new(),
        parent_id: Some(question.id),
        role: MessageRole::Assistant,
        content: "Loquats, small and orange.".into(),
        reasoning: "Think of fruit.".into(),
        status: MessageStatus::Stopped,
        error_kind: Some("upstream".into()),
        error_message: Some("cut".into()),
        provider: Some("openai".into()),
        model: Some("gpt-4o".into()),
        usage: Some(TokenUsage { prompt_tokens: 12, completion_tokens: 7, reasoning_tokens: 3, ..Default::default() }),
        ttft_ms: Some(120),
        duration_ms: Some(900),
        created_at: at(11),
        updated_at: at(12),
        ..question.clone()
    };
    // A row that says it is still generating is stored as interrupted.
    let generating = Message {
        id: MessageId::new(),
        parent_id: Some(question.id),
        role: MessageRole::Assistant,
        status: MessageStatus::Generating,
        content: String::new(),
        created_at: at(13),
        updated_at: at(13),
        ..question.clone()
    };
    let writes = [
        TreeWrite::InsertTopic(&topic),
        TreeWrite::ImportMessage(&question),
        TreeWrite::ImportMessage(&answer),
        TreeWrite::ImportMessage(&generating),
        TreeWrite::SetActiveLeaf { topic: topic.id, leaf: Some(answer.id), at: at(14) },
    ];
    store.write_tree(w.alice.id, &writes).await.expect("written");
    let stored = store.list_messages(w.alice.id, topic.id).await.expect("listed");
    assert_eq!(stored[..2], [question.clone(), answer.clone()]);
    assert_eq!(stored[2].status, MessageStatus::Interrupted);
    let kept = store.get_topic(w.alice.id, topic.id).await.expect("read").expect("there");
    assert!(kept.pinned);
    assert_eq!(kept.active_leaf_id, Some(answer.id));
    let terms = loquat_docs::search::Tokenizer::default().collect("loquats orange");
    let found = store.search_messages(w.alice.id, &terms, 10).await.expect("searched");
    assert_eq!(found.iter().map(|hit| hit.message_id).collect::<Vec<_>>(), [answer.id]);
}

async fn a_topics_summary_is_kept_for_its_owner_and_replaced(store: SqlStore) {
    use loquat_core::domain::TopicSummary;
    use loquat_core::store::SummaryStore;
    let w = world(&store).await;
    let summary = TopicSummary {
        topic_id: w.topic.id,
        content: "Loquats are orange.".into(),
        upto: MessageId::new(),
        model: "openai::gpt-4o".into(),
        updated_at: at(5),
    };
    assert!(store.keep_topic_summary(w.alice.id, &summary).await.expect("kept"));
    assert!(!store.keep_topic_summary(w.bob.id, &summary).await.expect("refused quietly"));
    assert_eq!(store.topic_summary(w.alice.id, w.topic.id).await.expect("read"), Some(summary.clone()));
    assert_eq!(store.topic_summary(w.bob.id, w.topic.id).await.expect("read"), None);
    let newer = TopicSummary { content: "Loquats are orange and sweet.".into(), updated_at: at(6), ..summary };
    assert!(store.keep_topic_summary(w.alice.id, &newer).await.expect("replaced"));
    assert_eq!(store.topic_summary(w.alice.id, w.topic.id).await.expect("read"), Some(newer));
    assert!(store.delete_topic(w.alice.id, w.topic.id).await.expect("deleted"));
    assert_eq!(store.topic_summary(w.alice.id, w.topic.id).await.expect("read"), None);
}

on_every_backend!(
    links_belong_to_their_topics_owner,
    an_imported_message_keeps_every_field,
    a_topics_summary_is_kept_for_its_owner_and_replaced
);
