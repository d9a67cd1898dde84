//! `SearchStore`: messages are searchable as soon as their text is final (a question at once,
//! an answer when it finishes), by stemmed English words and Chinese text without spaces, only
//! by their owner, and no longer once deleted; messages written before the index are filled in.

use loquat_core::domain::{MessageRole, SearchHit};
use loquat_core::store::{MessageStore, SearchStore, TreeWrite};
use loquat_docs::search::Tokenizer;
use loquat_store::SqlStore;

use crate::fixtures::{generating, insert, message, world};
use crate::harness::on_every_backend;

fn terms(query: &str) -> Vec<String> {
    Tokenizer::default().collect(query)
}

fn contents(hits: &[SearchHit]) -> Vec<&str> {
    hits.iter().map(|hit| hit.content.as_str()).collect()
}

async fn messages_are_found_by_their_owner_as_soon_as_they_are_final(store: SqlStore) {
    let w = world(&store).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "How did R&D spending grow?", 1)).await;
    let chinese = message(&w.topic, Some(question.id), MessageRole::User, "公司2023年研发投入为12亿元", 2);
    store.write_tree(w.alice.id, &[TreeWrite::InsertMessage(&chinese)]).await.expect("written");
    let answer = generating(&w.topic, question.id, 3);
    store.insert_message(&answer).await.expect("inserted");
    insert(&store, &message(&w.bob_topic, None, MessageRole::User, "Bob's spending grows too", 4)).await;

    // Word forms meet; Chinese is found without spaces; nobody else's messages appear.
    let found = store.search_messages(w.alice.id, &terms("growing spend"), 10).await.expect("searches");
    assert_eq!(contents(&found), ["How did R&D spending grow?"]);
    assert_eq!((found[0].topic_id, found[0].assistant_id), (w.topic.id, w.assistant.id));
    let found = store.search_messages(w.alice.id, &terms("研发投入"), 10).await.expect("searches");
    assert_eq!(contents(&found), ["公司2023年研发投入为12亿元"]);
    assert!(store.search_messages(w.alice.id, &terms("Bob"), 10).await.expect("searches").is_empty());
    assert!(store.search_messages(w.alice.id, &[], 10).await.expect("searches").is_empty());

    // An answer is found once it is written.
    assert!(store.search_messages(w.alice.id, &terms("fifteen"), 10).await.expect("searches").is_empty());
    let finished =
        crate::messages::finished(loquat_core::domain::MessageStatus::Complete, "It grew fifteen percent.", 5);
    assert!(store.finish_message(w.alice.id, answer.id, &finished).await.expect("finished"));
    let found = store.search_messages(w.alice.id, &terms("fifteen percent"), 10).await.expect("searches");
    assert_eq!((found.len(), found[0].role), (1, MessageRole::Assistant));

    // Deleted messages are gone from the index with them.
    store.delete_message_subtree(w.alice.id, question.id).await.expect("deleted");
    assert!(store.search_messages(w.alice.id, &terms("grow"), 10).await.expect("searches").is_empty());
    assert!(store.search_messages(w.alice.id, &terms("研发"), 10).await.expect("searches").is_empty());
    // Queries that are only punctuation, or enormous, cost nothing special.
    let long = "检索 ".repeat(5_000);
    assert!(store.search_messages(w.alice.id, &terms(&long), 10).await.expect("searches").is_empty());
    assert!(
        store.search_messages(w.alice.id, &terms("\"' OR 1=1 -- * ( ) NEAR"), 10).await.expect("searches").is_empty()
    );
    assert_eq!(store.index_unindexed(100).await.expect("fills"), 0, "everything final is indexed");
}

async fn an_interrupted_answer_is_filled_in_later(store: SqlStore) {
    let w = world(&store).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "Tell me", 1)).await;
    let answer = generating(&w.topic, question.id, 2);
    store.insert_message(&answer).await.expect("inserted");
    let at = crate::fixtures::at;
    assert!(store.save_progress(w.alice.id, answer.id, "The partial harvest", "", at(3)).await.expect("saved"));
    // The process died: the answer is interrupted with what was saved, not yet searchable.
    assert_eq!(store.interrupt_generating(None, at(4), at(5)).await.expect("recovered"), 1);
    assert!(store.search_messages(w.alice.id, &terms("harvest"), 10).await.expect("searches").is_empty());
    assert_eq!(store.index_unindexed(100).await.expect("fills"), 1);
    let found = store.search_messages(w.alice.id, &terms("harvests"), 10).await.expect("searches");
    assert_eq!(contents(&found), ["The partial harvest"]);
    assert_eq!(store.index_unindexed(100).await.expect("fills"), 0);
}

on_every_backend!(
    messages_are_found_by_their_owner_as_soon_as_they_are_final,
    an_interrupted_answer_is_filled_in_later
);
