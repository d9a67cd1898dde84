//! Following another node's job (`remote.rs`) through the store or the event bus, stops that
//! travel the bus, and a follower of a node that died.

use super::*;
use crate::bus::BusEvent;
use crate::domain::MessageStatus;
use crate::testing::{MemoryBus, finished_answer};
use crate::time::Timestamp;

/// A second node on the same store (and bus), following the first node's answer.
fn other_node(bus: Option<Arc<dyn EventBus>>) -> Generations {
    Generations::new(settings("node-b"), bus)
}

#[tokio::test(start_paused = true)]
async fn without_a_bus_a_follower_reads_the_store_as_the_other_node_saves() {
    let node = Node::new([Script::words(20, ms(100))]).await;
    let finished = node.start(&["model-a"]);
    tokio::time::sleep(ms(700)).await;
    let b = other_node(None);
    let following = b.subscribe_remote(node.store.clone(), node.stored().await).await.expect("follows");
    assert_eq!(following.snapshot.content, node.saves()[0].1, "starts from what was saved");
    let (text, events) = follow(following).await;
    assert_eq!(text, words(20));
    assert!(events.iter().all(|event| !matches!(event, GenerationEvent::Delta { .. })), "no bus, no deltas");
    let replaces = events.iter().filter(|event| matches!(event, GenerationEvent::Replace { .. })).count();
    assert!(replaces >= 2, "the text grew at each save: {events:?}");
    assert_eq!(finished.await.expect("finishes").status, MessageStatus::Complete);
}

#[tokio::test(start_paused = true)]
async fn with_a_bus_a_follower_gets_every_delta_in_order() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let node = Node::with(settings("node-a"), Some(bus.clone()), [Script::words(20, ms(100))]).await;
    let b = other_node(Some(bus));
    let following = b.subscribe_remote(node.store.clone(), node.stored().await).await.expect("follows");
    let finished = node.start(&["model-a"]);
    let (text, events) = follow(following).await;
    assert_eq!(text, words(20));
    let deltas = events.iter().filter(|event| matches!(event, GenerationEvent::Delta { .. })).count();
    assert_eq!(deltas, 20, "one per chunk, not one per save: {events:?}");
    assert!(
        matches!(events.last(), Some(GenerationEvent::Finished(outcome)) if outcome.status == MessageStatus::Complete)
    );
    assert_eq!(finished.await.expect("finishes").content, words(20));
}

#[tokio::test(start_paused = true)]
async fn with_a_bus_a_follower_joining_mid_answer_catches_up_and_gets_the_rest_as_deltas() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let node = Node::with(settings("node-a"), Some(bus.clone()), [Script::words(30, ms(100))]).await;
    let finished = node.start(&["model-a"]);
    // Past a save (at 600 ms): the store is behind the job by a chunk or two.
    tokio::time::sleep(ms(750)).await;
    let b = other_node(Some(bus));
    let following = b.subscribe_remote(node.store.clone(), node.stored().await).await.expect("follows");
    let (text, events) = follow(following).await;
    assert_eq!(text, words(30), "the follower's text is the whole answer when it ends: {events:?}");
    let last_deltas = events.iter().rev().skip(1).take(5);
    assert!(last_deltas.clone().all(|event| matches!(event, GenerationEvent::Delta { .. })), "{events:?}");
    finished.await.expect("finishes");
}

#[tokio::test(start_paused = true)]
async fn a_follower_that_resyncs_from_a_save_keeps_the_delta_that_starts_where_the_save_ends() {
    // Node A played by hand, in an order Redis allows: B reads the store between A's save and
    // A's next delta, which starts exactly where the saved text ends.
    let bus = Arc::new(MemoryBus::default());
    let node = Node::new([]).await;
    let (store, user, id) = (node.store.clone(), node.user, node.answer.id);
    let save = |text: &'static str| store.save_progress(user, id, text, "", Timestamp::now());
    let delta = |at: usize, text: &str| {
        let delta = BusEvent::Delta { content_at: at, reasoning_at: 0, content: text.into(), reasoning: String::new() };
        bus.publish(id, delta);
    };
    let settle = || tokio::time::sleep(ms(10));
    save("ab").await.expect("saved");
    let b = other_node(Some(bus.clone()));
    let following = b.subscribe_remote(store.clone(), node.stored().await).await.expect("follows");
    let node_a = async {
        delta(3, "d"); // "c" went out before B subscribed: a gap, and the store is behind
        settle().await;
        save("abcd").await.expect("saved");
        delta(4, "e");
        settle().await;
        delta(5, "f");
        settle().await;
        let answer = finished_answer(MessageStatus::Complete, "abcdef");
        store.finish_message(user, id, &answer).await.expect("finished");
        bus.publish(id, BusEvent::Finished);
    };
    let ((text, events), ()) = tokio::join!(follow(following), node_a);
    assert_eq!(text, "abcdef", "in step again from \"e\" on: {events:?}");
}

#[tokio::test(start_paused = true)]
async fn a_stop_pressed_on_another_node_reaches_the_job_over_the_bus() {
    let bus: Arc<dyn EventBus> = Arc::new(MemoryBus::default());
    let node = Node::with(settings("node-a"), Some(bus.clone()), [Script::words(50, ms(100))]).await;
    node.generations.listen_for_remote_stops();
    let finished = node.start(&["model-a"]);
    tokio::time::sleep(ms(750)).await;
    let b = other_node(Some(bus));
    b.stop_anywhere(node.store.clone(), node.user, node.answer.id).await.expect("asks");
    let answer = finished.await.expect("finishes");
    // At once, with everything that arrived (not at the next save, with what was saved).
    assert_eq!((answer.status, answer.content), (MessageStatus::Stopped, words(7)));
    assert_eq!(node.stored().await.content, words(7));
    assert!(node.finishes()[0].applied, "node A wrote the final state itself");
    assert_eq!(node.client.cancelled(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_follower_of_a_node_that_died_ends_when_the_answer_is_swept() {
    // Node A stored an answer as generating, saved some text and died.
    let node = Node::new([]).await;
    let store = node.store.clone();
    store.save_progress(node.user, node.answer.id, "Half an ans", "", Timestamp::now()).await.expect("saved");
    let b = other_node(None);
    let following = b.subscribe_remote(store.clone(), node.stored().await).await.expect("follows");
    assert_eq!(following.snapshot.content, "Half an ans");
    let sweep = async {
        tokio::time::sleep(secs(3)).await;
        let now = Timestamp::now();
        let swept = store.interrupt_generating(Some("node-b"), Timestamp(now.0 + 1), now).await.expect("swept");
        assert_eq!(swept, 1);
    };
    let ((text, events), ()) = tokio::join!(follow(following), sweep);
    assert_eq!(text, "Half an ans");
    assert!(
        matches!(events.last(), Some(GenerationEvent::Finished(outcome)) if outcome.status == MessageStatus::Interrupted)
    );
}

#[tokio::test(start_paused = true)]
async fn a_finished_answer_is_followed_as_finished() {
    let node = Node::new([Script::new().text("Done.")]).await;
    node.run().await;
    let b = other_node(None);
    let following = b.subscribe_remote(node.store.clone(), node.stored().await).await.expect("follows");
    assert_eq!(following.snapshot.content, "Done.");
    assert_eq!(following.snapshot.finished.map(|outcome| outcome.status), Some(MessageStatus::Complete));
}
