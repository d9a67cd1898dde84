//! `MessageStore`: round trip, order, the generating-only rule of progress and finish, subtree
//! deletion on a branched tree, start-up recovery, a long topic, and ownership.

use loquat_core::domain::{Message, MessageRole, MessageStatus, NewMessage, TokenUsage};
use loquat_core::id::{MessageId, TopicId};
use loquat_core::store::{FinishedAnswer, MessageStore, StoreErrorKind, TopicStore, TreeWrite};
use loquat_store::SqlStore;

use crate::fixtures::{at, generating, insert, message, topic, world};
use crate::harness::on_every_backend;

pub(crate) fn finished(status: MessageStatus, content: &str, updated: i64) -> FinishedAnswer {
    FinishedAnswer {
        status,
        content: content.to_owned(),
        reasoning: "先想一想……".to_owned(),
        error_kind: None,
        error_message: None,
        provider: Some("openai".to_owned()),
        model: Some("gpt-4o".to_owned()),
        usage: Some(TokenUsage {
            prompt_tokens: 120,
            completion_tokens: 48,
            reasoning_tokens: 16,
            ..TokenUsage::default()
        }),
        ttft_ms: Some(350),
        duration_ms: Some(2_400),
        updated_at: at(updated),
    }
}

async fn insert_and_get_round_trip(store: SqlStore) {
    let w = world(&store).await;
    let mut new = message(&w.topic, None, MessageRole::User, "你好，世界！🌏 Ünïcödé «quotes» 'single'", 1);
    new.model = Some("gpt-4o".into());
    let stored = insert(&store, &new).await;
    let expected = Message {
        id: new.id,
        user_id: w.alice.id,
        topic_id: w.topic.id,
        parent_id: None,
        role: MessageRole::User,
        content: new.content.clone(),
        reasoning: String::new(),
        status: MessageStatus::Complete,
        error_kind: None,
        error_message: None,
        provider: None,
        model: Some("gpt-4o".into()),
        usage: None,
        ttft_ms: None,
        duration_ms: None,
        created_at: at(1),
        updated_at: at(1),
    };
    assert_eq!(stored, expected);

    let answer = insert(&store, &generating(&w.topic, new.id, 2)).await;
    assert_eq!(
        (answer.parent_id, answer.role, answer.status),
        (Some(new.id), MessageRole::Assistant, MessageStatus::Generating)
    );
    assert_eq!((answer.provider.as_deref(), answer.model.as_deref()), (Some("openai"), Some("gpt-4o")));

    assert_eq!(store.get_message(w.bob.id, new.id).await.expect("loads"), None, "bob cannot see it");
    assert_eq!(store.get_message(w.alice.id, MessageId::new()).await.expect("loads"), None);
}

async fn list_is_in_creation_order(store: SqlStore) {
    let w = world(&store).await;
    let other_topic = topic(w.alice.id, w.assistant.id, "", 0);
    store.insert_topic(&other_topic).await.expect("inserted");
    // Inserted out of order; two share a timestamp and are ordered by id.
    let third = message(&w.topic, None, MessageRole::User, "third", 30);
    let first = message(&w.topic, None, MessageRole::User, "first", 10);
    let tie_a = message(&w.topic, None, MessageRole::User, "tie", 20);
    let tie_b = message(&w.topic, None, MessageRole::User, "tie", 20);
    let elsewhere = message(&other_topic, None, MessageRole::User, "elsewhere", 15);
    for m in [&third, &tie_b, &first, &elsewhere, &tie_a] {
        store.insert_message(m).await.expect("inserted");
    }
    let (low, high) = if tie_a.id < tie_b.id { (tie_a.id, tie_b.id) } else { (tie_b.id, tie_a.id) };
    let ids: Vec<MessageId> =
        store.list_messages(w.alice.id, w.topic.id).await.expect("lists").into_iter().map(|m| m.id).collect();
    assert_eq!(ids, [first.id, low, high, third.id]);

    assert!(store.list_messages(w.bob.id, w.topic.id).await.expect("lists").is_empty(), "bob sees nothing");
    assert!(store.list_messages(w.alice.id, TopicId::new()).await.expect("lists").is_empty());
    assert_eq!(store.list_messages(w.alice.id, other_topic.id).await.expect("lists").len(), 1);
}

async fn progress_only_while_generating(store: SqlStore) {
    let w = world(&store).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "q", 1)).await;
    let answer = insert(&store, &generating(&w.topic, question.id, 2)).await;

    assert!(!store.save_progress(w.bob.id, answer.id, "bob", "", at(3)).await.expect("runs"), "bob cannot write");
    assert!(store.save_progress(w.alice.id, answer.id, "部分", "想", at(3)).await.expect("runs"));
    assert!(store.save_progress(w.alice.id, answer.id, "部分回答", "想法", at(4)).await.expect("runs"));
    let stored = store.get_message(w.alice.id, answer.id).await.expect("loads").expect("exists");
    assert_eq!((stored.content.as_str(), stored.reasoning.as_str()), ("部分回答", "想法"));
    assert_eq!((stored.status, stored.updated_at), (MessageStatus::Generating, at(4)));

    assert!(!store.save_progress(w.alice.id, question.id, "edit", "", at(5)).await.expect("runs"), "complete");
    assert_eq!(store.get_message(w.alice.id, question.id).await.expect("loads"), Some(question));

    assert!(
        store
            .finish_message(w.alice.id, answer.id, &finished(MessageStatus::Stopped, "部分回答", 6))
            .await
            .expect("runs")
    );
    assert!(!store.save_progress(w.alice.id, answer.id, "late", "late", at(7)).await.expect("runs"), "finished");
    let stored = store.get_message(w.alice.id, answer.id).await.expect("loads").expect("exists");
    assert_eq!(
        (stored.content.as_str(), stored.status, stored.updated_at),
        ("部分回答", MessageStatus::Stopped, at(6))
    );
    assert!(!store.save_progress(w.alice.id, MessageId::new(), "x", "", at(7)).await.expect("runs"));
}

async fn finish_writes_the_final_state_once(store: SqlStore) {
    let w = world(&store).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "q", 1)).await;
    let answer = insert(&store, &generating(&w.topic, question.id, 2)).await;
    let done = finished(MessageStatus::Complete, "完整的回答。", 9);

    assert!(!store.finish_message(w.bob.id, answer.id, &done).await.expect("runs"), "bob cannot finish it");
    assert_eq!(store.get_message(w.alice.id, answer.id).await.expect("loads"), Some(answer.clone()));

    assert!(store.finish_message(w.alice.id, answer.id, &done).await.expect("runs"));
    let stored = store.get_message(w.alice.id, answer.id).await.expect("loads").expect("exists");
    let expected = Message {
        status: MessageStatus::Complete,
        content: done.content.clone(),
        reasoning: done.reasoning.clone(),
        usage: done.usage,
        ttft_ms: Some(350),
        duration_ms: Some(2_400),
        updated_at: at(9),
        ..answer.clone()
    };
    assert_eq!(stored, expected);

    let again = FinishedAnswer { content: "overwritten".into(), ..finished(MessageStatus::Error, "", 10) };
    assert!(!store.finish_message(w.alice.id, answer.id, &again).await.expect("runs"), "already finished");
    assert_eq!(store.get_message(w.alice.id, answer.id).await.expect("loads"), Some(expected));
    assert!(!store.finish_message(w.alice.id, MessageId::new(), &done).await.expect("runs"));
}

async fn finish_records_errors_and_keeps_the_model(store: SqlStore) {
    let w = world(&store).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "q", 1)).await;
    let answer = insert(&store, &generating(&w.topic, question.id, 2)).await;
    let failed = FinishedAnswer {
        status: MessageStatus::Error,
        content: "half".into(),
        reasoning: String::new(),
        error_kind: Some("rate_limited".into()),
        error_message: Some("请求过于频繁".into()),
        provider: None,
        model: None,
        usage: None,
        ttft_ms: None,
        duration_ms: Some(800),
        updated_at: at(5),
    };
    assert!(store.finish_message(w.alice.id, answer.id, &failed).await.expect("runs"));
    let stored = store.get_message(w.alice.id, answer.id).await.expect("loads").expect("exists");
    assert_eq!(stored.status, MessageStatus::Error);
    assert_eq!(
        (stored.error_kind.as_deref(), stored.error_message.as_deref()),
        (Some("rate_limited"), Some("请求过于频繁"))
    );
    assert_eq!((stored.provider.as_deref(), stored.model.as_deref()), (Some("openai"), Some("gpt-4o")), "kept");
    assert_eq!((stored.usage, stored.ttft_ms, stored.duration_ms), (None, None, Some(800)));
}

/// root ─ a1 ─ q2 ─ a2
///      ├ a1' (regenerated)
///      └ a1'' ─ q3
async fn subtree_delete_on_a_branched_tree(store: SqlStore) {
    let w = world(&store).await;
    let root = insert(&store, &message(&w.topic, None, MessageRole::User, "root", 1)).await;
    let a1 = insert(&store, &message(&w.topic, Some(root.id), MessageRole::Assistant, "a1", 2)).await;
    let q2 = insert(&store, &message(&w.topic, Some(a1.id), MessageRole::User, "q2", 3)).await;
    let a2 = insert(&store, &message(&w.topic, Some(q2.id), MessageRole::Assistant, "a2", 4)).await;
    let a1b = insert(&store, &message(&w.topic, Some(root.id), MessageRole::Assistant, "a1'", 5)).await;
    let a1c = insert(&store, &message(&w.topic, Some(root.id), MessageRole::Assistant, "a1''", 6)).await;
    let q3 = insert(&store, &message(&w.topic, Some(a1c.id), MessageRole::User, "q3", 7)).await;
    let bobs = insert(&store, &message(&w.bob_topic, None, MessageRole::User, "bob", 1)).await;
    let ids = |messages: Vec<Message>| messages.into_iter().map(|m| m.id).collect::<Vec<_>>();

    assert_eq!(store.delete_message_subtree(w.bob.id, a1.id).await.expect("runs"), 0, "bob deletes nothing");
    assert_eq!(store.delete_message_subtree(w.alice.id, MessageId::new()).await.expect("runs"), 0);
    assert_eq!(store.list_messages(w.alice.id, w.topic.id).await.expect("lists").len(), 7);

    assert_eq!(store.delete_message_subtree(w.alice.id, a1.id).await.expect("runs"), 3);
    let left = ids(store.list_messages(w.alice.id, w.topic.id).await.expect("lists"));
    assert_eq!(left, [root.id, a1b.id, a1c.id, q3.id]);
    for gone in [a1.id, q2.id, a2.id] {
        assert_eq!(store.get_message(w.alice.id, gone).await.expect("loads"), None);
    }

    assert_eq!(store.delete_message_subtree(w.alice.id, a1b.id).await.expect("runs"), 1, "a leaf alone");
    assert_eq!(store.delete_message_subtree(w.alice.id, root.id).await.expect("runs"), 3, "the rest");
    assert!(store.list_messages(w.alice.id, w.topic.id).await.expect("lists").is_empty());
    assert_eq!(store.get_message(w.bob.id, bobs.id).await.expect("loads"), Some(bobs));
}

async fn interrupt_marks_a_nodes_answers_and_silent_ones(store: SqlStore) {
    let w = world(&store).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "q", 1)).await;
    let first = insert(&store, &generating(&w.topic, question.id, 2)).await;
    let second = insert(&store, &generating(&w.topic, question.id, 3)).await;
    let finished_one = insert(&store, &generating(&w.topic, question.id, 4)).await;
    assert!(
        store
            .finish_message(w.alice.id, finished_one.id, &finished(MessageStatus::Complete, "ok", 5))
            .await
            .expect("runs")
    );
    let on_b =
        |created| NewMessage { generating_by: Some("node-b".to_owned()), ..generating(&w.topic, question.id, created) };
    let silent = insert(&store, &on_b(6)).await;
    let alive = insert(&store, &on_b(7)).await;
    assert!(store.save_progress(w.alice.id, alive.id, "still going", "", at(90)).await.expect("runs"));
    let from_before_nodes =
        insert(&store, &NewMessage { generating_by: None, ..generating(&w.topic, question.id, 8) }).await;
    let bob_question = insert(&store, &message(&w.bob_topic, None, MessageRole::User, "q", 1)).await;
    let bobs = insert(&store, &generating(&w.bob_topic, bob_question.id, 2)).await;
    assert!(store.save_progress(w.bob.id, bobs.id, "partial", "", at(95)).await.expect("runs"));

    // Node A restarts: its own answers go at once, node B's only if B fell silent.
    assert_eq!(store.interrupt_generating(Some("node-a"), at(50), at(100)).await.expect("runs"), 5);
    for (user, id) in [
        (w.alice.id, first.id),
        (w.alice.id, second.id),
        (w.alice.id, silent.id),
        (w.alice.id, from_before_nodes.id),
        (w.bob.id, bobs.id),
    ] {
        let stored = store.get_message(user, id).await.expect("loads").expect("exists");
        assert_eq!((stored.status, stored.updated_at), (MessageStatus::Interrupted, at(100)));
    }
    let bobs = store.get_message(w.bob.id, bobs.id).await.expect("loads").expect("exists");
    assert_eq!(bobs.content, "partial", "what was persisted is kept");
    let still = store.get_message(w.alice.id, alive.id).await.expect("loads").expect("exists");
    assert_eq!((still.status, still.content.as_str()), (MessageStatus::Generating, "still going"));
    let unchanged = store.get_message(w.alice.id, finished_one.id).await.expect("loads").expect("exists");
    assert_eq!((unchanged.status, unchanged.updated_at), (MessageStatus::Complete, at(5)));
    assert_eq!(store.get_message(w.alice.id, question.id).await.expect("loads"), Some(question));

    // The periodic sweep (no node of its own) takes B's answer once B has been silent.
    assert_eq!(store.interrupt_generating(None, at(90), at(150)).await.expect("runs"), 0);
    assert_eq!(store.interrupt_generating(None, at(91), at(150)).await.expect("runs"), 1);
    assert_eq!(store.interrupt_generating(None, at(200), at(200)).await.expect("runs"), 0);
}

async fn stopping_one_answer_keeps_what_was_saved(store: SqlStore) {
    let w = world(&store).await;
    let question = insert(&store, &message(&w.topic, None, MessageRole::User, "q", 1)).await;
    let answer = insert(&store, &generating(&w.topic, question.id, 2)).await;
    assert!(store.save_progress(w.alice.id, answer.id, "so far", "", at(3)).await.expect("runs"));
    assert!(store.topic_generating(w.alice.id, w.topic.id).await.expect("runs"));
    assert!(!store.topic_generating(w.bob.id, w.topic.id).await.expect("runs"), "only the owner's");
    assert!(!store.topic_generating(w.bob.id, w.bob_topic.id).await.expect("runs"));

    assert!(!store.mark_stopped(w.bob.id, answer.id, at(4)).await.expect("runs"), "only the owner");
    assert!(store.mark_stopped(w.alice.id, answer.id, at(5)).await.expect("runs"));
    let stored = store.get_message(w.alice.id, answer.id).await.expect("loads").expect("exists");
    assert_eq!((stored.status, stored.content.as_str(), stored.updated_at), (MessageStatus::Stopped, "so far", at(5)));
    // The node still running it learns from its next save that the answer was stopped.
    assert!(!store.save_progress(w.alice.id, answer.id, "so far and more", "", at(6)).await.expect("runs"));
    assert!(!store.mark_stopped(w.alice.id, answer.id, at(7)).await.expect("runs"), "once");
    assert!(!store.topic_generating(w.alice.id, w.topic.id).await.expect("runs"));
    assert!(!store.mark_stopped(w.alice.id, question.id, at(7)).await.expect("runs"), "not generating");
}

async fn a_long_topic_loads_in_order(store: SqlStore) {
    const COUNT: i64 = 2_000;
    let w = world(&store).await;
    // A chain whose creation times are shuffled against insertion order, with ties.
    let mut parent = None;
    let mut expected = Vec::new();
    for index in 0..COUNT {
        let created = (index * 7_919) % COUNT / 2;
        let role = if index % 2 == 0 { MessageRole::User } else { MessageRole::Assistant };
        let new = message(&w.topic, parent, role, &format!("第{index}条消息 — message {index}"), created);
        store.insert_message(&new).await.expect("inserted");
        parent = Some(new.id);
        expected.push((new.created_at, new.id, new.content));
    }
    expected.sort();
    let listed = store.list_messages(w.alice.id, w.topic.id).await.expect("lists");
    assert_eq!(listed.len(), expected.len());
    let got: Vec<_> = listed.into_iter().map(|m| (m.created_at, m.id, m.content)).collect();
    assert_eq!(got, expected);
}

async fn a_message_needs_its_topic_and_parent(store: SqlStore) {
    let w = world(&store).await;
    let mut orphan = message(&w.topic, None, MessageRole::User, "x", 1);
    orphan.topic_id = TopicId::new();
    let error = store.insert_message(&orphan).await.expect_err("the topic does not exist");
    assert_eq!(error.kind, StoreErrorKind::Conflict);
    let dangling = message(&w.topic, Some(MessageId::new()), MessageRole::User, "x", 1);
    let error = store.insert_message(&dangling).await.expect_err("the parent does not exist");
    assert_eq!(error.kind, StoreErrorKind::Conflict);
    let fine = insert(&store, &message(&w.topic, None, MessageRole::User, "x", 1)).await;
    let duplicate = message(&w.topic, None, MessageRole::User, "y", 2);
    let error = store.insert_message(&loquat_core::domain::NewMessage { id: fine.id, ..duplicate }).await;
    assert_eq!(error.expect_err("the id is taken").kind, StoreErrorKind::Conflict);
}

async fn an_exchange_is_written_whole_or_not_at_all(store: SqlStore) {
    let w = world(&store).await;
    // A new topic, a question, its answer and the leaf, together.
    let fresh = topic(w.alice.id, w.assistant.id, "", 5);
    let question = message(&fresh, None, MessageRole::User, "hi", 6);
    let answer = generating(&fresh, question.id, 7);
    let leaf = TreeWrite::SetActiveLeaf { topic: fresh.id, leaf: Some(answer.id), at: at(8) };
    let writes =
        [TreeWrite::InsertTopic(&fresh), TreeWrite::InsertMessage(&question), TreeWrite::InsertMessage(&answer), leaf];
    assert_eq!(store.write_tree(w.alice.id, &writes).await.expect("written"), [1, 1, 1, 1]);
    let stored = store.get_topic(w.alice.id, fresh.id).await.expect("loads").expect("exists");
    assert_eq!((stored.active_leaf_id, stored.updated_at), (Some(answer.id), at(8)));
    assert_eq!(store.list_messages(w.alice.id, fresh.id).await.expect("lists").len(), 2);

    // The second answer's parent does not exist: nothing of this batch stays.
    let next = message(&fresh, Some(answer.id), MessageRole::User, "more", 9);
    let broken = message(&fresh, Some(MessageId::new()), MessageRole::Assistant, "", 10);
    let leaf = TreeWrite::SetActiveLeaf { topic: fresh.id, leaf: Some(broken.id), at: at(11) };
    let writes = [TreeWrite::InsertMessage(&next), TreeWrite::InsertMessage(&broken), leaf];
    let error = store.write_tree(w.alice.id, &writes).await.expect_err("the parent is missing");
    assert_eq!(error.kind, StoreErrorKind::Conflict);
    assert_eq!(store.list_messages(w.alice.id, fresh.id).await.expect("lists").len(), 2, "the question rolled back");
    let stored = store.get_topic(w.alice.id, fresh.id).await.expect("loads").expect("exists");
    assert_eq!(stored.active_leaf_id, Some(answer.id), "the leaf rolled back");

    // A subtree and the new leaf go together; another user's ids change nothing.
    let writes = [
        TreeWrite::DeleteSubtree(answer.id),
        TreeWrite::SetActiveLeaf { topic: fresh.id, leaf: Some(question.id), at: at(12) },
    ];
    assert_eq!(store.write_tree(w.bob.id, &writes).await.expect("runs"), [0, 0]);
    assert_eq!(store.write_tree(w.alice.id, &writes).await.expect("runs"), [1, 1]);
    assert_eq!(store.list_messages(w.alice.id, fresh.id).await.expect("lists").len(), 1);
}

on_every_backend!(
    an_exchange_is_written_whole_or_not_at_all,
    insert_and_get_round_trip,
    list_is_in_creation_order,
    progress_only_while_generating,
    finish_writes_the_final_state_once,
    finish_records_errors_and_keeps_the_model,
    subtree_delete_on_a_branched_tree,
    interrupt_marks_a_nodes_answers_and_silent_ones,
    stopping_one_answer_keeps_what_was_saved,
    a_long_topic_loads_in_order,
    a_message_needs_its_topic_and_parent,
);
