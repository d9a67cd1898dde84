//! One job's rules: batched saves and one final write, stop, failures and fallbacks, the
//! three timeouts, subscribers, heartbeats and shutdown.

use super::*;
use crate::domain::MessageStatus;
use crate::generation::Outcome;
use crate::llm::ProviderErrorKind;

#[tokio::test(start_paused = true)]
async fn progress_is_saved_in_batches_and_the_final_state_once() {
    let node = Node::new([Script::words(20, ms(100))]).await;
    let answer = node.run().await;
    assert_eq!(answer.status, MessageStatus::Complete);
    assert_eq!(answer.content, words(20));
    assert_eq!((answer.ttft_ms, answer.duration_ms), (Some(100), Some(2_000)));

    // 20 chunks over two seconds: a save every `persist_interval`, not one per chunk.
    let saves = node.saves();
    let times: Vec<Duration> = saves.iter().map(|(at, _)| *at).collect();
    assert_eq!(times, [ms(600), ms(1_100), ms(1_600)], "{saves:?}");
    assert!(saves.windows(2).all(|pair| pair[1].1.starts_with(&pair[0].1)), "only growing: {saves:?}");
    assert!(saves.iter().all(|(_, content)| answer.content.starts_with(content.as_str())));

    let finishes = node.finishes();
    assert_eq!(finishes.len(), 1, "the final state is written once");
    assert!(finishes[0].applied);
    let stored = node.stored().await;
    assert_eq!((stored.status, stored.content), (MessageStatus::Complete, words(20)));
    assert_eq!((stored.provider.as_deref(), stored.model.as_deref()), (Some("provider-of-model-a"), Some("model-a")));
    assert!(!node.generations.is_running(node.user, node.answer.id));
    assert_eq!(node.client.cancelled(), 0);
}

#[tokio::test(start_paused = true)]
async fn text_followed_by_a_pause_reaches_the_store_within_the_persist_interval() {
    let node = Node::new([Script::new().text("Let me think.").wait(secs(4)).text(" Done.")]).await;
    let answer = node.run().await;
    assert_eq!(answer.content, "Let me think. Done.");
    assert_eq!(node.saves().first(), Some(&(ms(500), "Let me think.".to_owned())), "{:?}", node.saves());
}

#[tokio::test(start_paused = true)]
async fn stop_cancels_the_upstream_and_keeps_what_arrived() {
    let node = Node::new([Script::words(50, ms(100))]).await;
    let finished = node.start(&["model-a"]);
    tokio::time::sleep(ms(350)).await;
    assert!(node.generations.stop(node.user, node.answer.id));
    let answer = finished.await.expect("finishes");
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Stopped, "w1 w2 w3 "));
    assert_eq!(answer.error_kind, None);
    assert_eq!(node.client.cancelled(), 1, "the upstream stream was dropped");
    let stored = node.stored().await;
    assert_eq!((stored.status, stored.content.as_str()), (MessageStatus::Stopped, "w1 w2 w3 "));
    assert!(!node.generations.stop(node.user, node.answer.id), "nothing runs any more");
}

#[tokio::test(start_paused = true)]
async fn a_stop_while_waiting_for_the_first_token_cancels_the_request() {
    let node = Node::new([Script::new().hang()]).await;
    let finished = node.start(&["model-a", "model-b"]);
    tokio::time::sleep(secs(1)).await;
    node.generations.stop(node.user, node.answer.id);
    let answer = finished.await.expect("finishes");
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Stopped, ""));
    assert_eq!(node.client.cancelled(), 1);
    assert_eq!(node.client.requests().len(), 1, "a stop is not a reason to ask the fallback");
}

#[tokio::test(start_paused = true)]
async fn a_failure_mid_stream_keeps_the_partial_text_with_its_kind_and_does_not_fall_back() {
    let failing = Script::new().text("one ").wait(ms(100)).text("two ").fail(ProviderErrorKind::Unavailable);
    let node = Node::new([failing, Script::new().text("never")]).await;
    let answer = node.start(&["model-a", "model-b"]).await.expect("finishes");
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Error, "one two "));
    assert_eq!(answer.error_kind.as_deref(), Some("unavailable"));
    assert_eq!(answer.model.as_deref(), Some("model-a"));
    assert_eq!(node.client.requests().len(), 1, "an answer already begun is not asked again");
    let stored = node.stored().await;
    assert_eq!((stored.status, stored.error_kind.as_deref()), (MessageStatus::Error, Some("unavailable")));
    assert_eq!(stored.content, "one two ");
}

#[tokio::test(start_paused = true)]
async fn a_failure_before_the_first_token_moves_on_to_the_fallback() {
    let refused = Script::new().wait(secs(1)).fail(ProviderErrorKind::RateLimited);
    let node = Node::new([refused, Script::new().text("Hello from B")]).await;
    let answer = node.start(&["model-a", "model-b"]).await.expect("finishes");
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Complete, "Hello from B"));
    assert_eq!((answer.provider.as_deref(), answer.model.as_deref()), (Some("provider-of-model-b"), Some("model-b")));
    let asked: Vec<String> = node.client.requests().into_iter().map(|request| request.model).collect();
    assert_eq!(asked, ["model-a", "model-b"]);
    assert_eq!(node.stored().await.model.as_deref(), Some("model-b"));
}

#[tokio::test(start_paused = true)]
async fn a_silent_model_times_out_and_the_fallback_answers() {
    let node = Node::new([Script::new().hang(), Script::new().text("I am here")]).await;
    let answer = node.start(&["model-a", "model-b"]).await.expect("finishes");
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Complete, "I am here"));
    assert_eq!(node.client.cancelled(), 1, "the silent request was dropped");
    assert_eq!(answer.ttft_ms, Some(10_000), "counted from the job's start");
}

#[tokio::test(start_paused = true)]
async fn when_every_model_fails_before_answering_the_last_error_is_kept() {
    let node = Node::new([
        Script::new().fail(ProviderErrorKind::RateLimited),
        Script::new().fail(ProviderErrorKind::InvalidKey),
    ])
    .await;
    let answer = node.start(&["model-a", "model-b"]).await.expect("finishes");
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Error, ""));
    assert_eq!(answer.error_kind.as_deref(), Some("invalid_key"));
    assert_eq!(answer.model.as_deref(), Some("model-b"));
}

#[tokio::test(start_paused = true)]
async fn the_first_token_must_come_within_the_first_event_timeout() {
    let node = Node::new([Script::new().hang()]).await;
    let answer = node.run().await;
    assert_eq!((answer.status, answer.error_kind.as_deref()), (MessageStatus::Error, Some("timeout")));
    assert_eq!(answer.duration_ms, Some(10_000));
    assert_eq!(node.client.cancelled(), 1);
}

#[tokio::test(start_paused = true)]
async fn an_upstream_silent_for_the_idle_timeout_fails_and_keeps_the_text() {
    let node = Node::new([Script::new().text("partial").hang()]).await;
    let answer = node.run().await;
    assert_eq!((answer.status, answer.content.as_str()), (MessageStatus::Error, "partial"));
    assert_eq!(answer.error_kind.as_deref(), Some("timeout"));
    // Heartbeats (every 2 s) write to the store but do not restart the 5 s clock.
    assert_eq!(answer.duration_ms, Some(5_000));
    assert!(node.saves().len() >= 2, "{:?}", node.saves());
    assert_eq!(node.client.cancelled(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_whole_answer_may_not_take_longer_than_the_total_timeout() {
    // A chunk every 0.7 s never trips the idle timeout, but 30 s is all an answer gets.
    let node = Node::new([Script::words(100, ms(700))]).await;
    let answer = node.run().await;
    assert_eq!((answer.status, answer.error_kind.as_deref()), (MessageStatus::Error, Some("timeout")));
    assert_eq!(answer.duration_ms, Some(30_000));
    assert_eq!(answer.content, words(42), "the 42 chunks of the first 29.4 s are kept");
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_gets_the_answer_so_far_then_each_delta_then_the_end() {
    let node = Node::new([Script::words(10, ms(100))]).await;
    let finished = node.start(&["model-a"]);
    tokio::time::sleep(ms(350)).await;
    let subscription = node.subscribe();
    assert_eq!((subscription.snapshot.content.as_str(), &subscription.snapshot.finished), ("w1 w2 w3 ", &None));
    let (text, events) = follow(subscription).await;
    assert_eq!(text, words(10));
    let deltas = events.iter().filter(|event| matches!(event, GenerationEvent::Delta { .. })).count();
    assert_eq!(deltas, 7, "one per chunk after the snapshot: {events:?}");
    let complete = Outcome { status: MessageStatus::Complete, error_kind: None, error_message: None };
    assert_eq!(events.last(), Some(&GenerationEvent::Finished(complete)));
    assert_eq!(finished.await.expect("finishes").content, words(10));
}

#[tokio::test(start_paused = true)]
async fn a_subscriber_that_goes_away_does_not_stop_the_job() {
    let node = Node::new([Script::words(10, ms(100))]).await;
    let finished = node.start(&["model-a"]);
    let mut leaving = node.subscribe();
    let staying = node.subscribe();
    assert!(matches!(leaving.events.recv().await, Ok(GenerationEvent::Delta { .. })));
    drop(leaving);
    let (text, _) = follow(staying).await;
    assert_eq!(text, words(10));
    let answer = finished.await.expect("finishes");
    assert_eq!((answer.status, answer.content), (MessageStatus::Complete, words(10)));
    assert_eq!(node.client.cancelled(), 0);
    assert!(node.generations.subscribe(node.user, node.answer.id).is_none(), "a finished job is gone");
}

#[tokio::test(start_paused = true)]
async fn a_model_thinking_before_its_first_token_still_shows_the_node_alive() {
    let node = Node::new([Script::new().wait(secs(7)).text("Finally")]).await;
    let answer = node.run().await;
    assert_eq!(answer.content, "Finally");
    let times: Vec<Duration> = node.saves().iter().map(|(at, _)| *at).collect();
    assert_eq!(times, [secs(2), secs(4), secs(6)], "a heartbeat every 2 s while waiting");
    assert!(node.longest_silence() <= secs(2));
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_the_answer_fresh_while_a_long_answer_streams() {
    // Bursts of text with pauses shorter than the idle timeout, for about 40 s.
    let burst = |script: Script| (1..=10).fold(script, |script, n| script.wait(ms(100)).text(format!("b{n} ")));
    let script = (0..10).fold(Script::new(), |script, _| burst(script).wait(secs(3)));
    let node = Node::with(GenerationSettings { total_timeout: secs(60), ..settings("node-a") }, None, [script]).await;
    let answer = node.run().await;
    assert_eq!(answer.status, MessageStatus::Complete);
    assert_eq!(answer.content.split_whitespace().count(), 100);
    assert!(node.longest_silence() <= secs(2), "the store heard from the job every heartbeat");
    assert!(node.saves().len() < 50, "but was not written per chunk: {}", node.saves().len());
}

#[tokio::test(start_paused = true)]
async fn a_stop_stored_by_another_node_is_noticed_at_the_next_save() {
    let node = Node::new([Script::words(50, ms(100))]).await;
    let finished = node.start(&["model-a"]);
    tokio::time::sleep(ms(700)).await;
    // Another replica without a bus: the stop goes to the store.
    let elsewhere = Generations::new(settings("node-b"), None);
    elsewhere.stop_anywhere(node.store.clone(), node.user, node.answer.id).await.expect("stored");
    let saved_before_the_stop = node.saves().last().expect("one save at 600 ms").1.clone();
    let answer = finished.await.expect("finishes");
    assert_eq!(answer.status, MessageStatus::Stopped);
    assert_eq!(node.client.cancelled(), 1);
    assert!(!node.finishes()[0].applied, "the store already holds the final state");
    let stored = node.stored().await;
    assert_eq!((stored.status, stored.content), (MessageStatus::Stopped, saved_before_the_stop));
}

#[tokio::test(start_paused = true)]
async fn the_final_state_is_retried_until_the_store_takes_it() {
    let node = Node::new([Script::new().text("Hi")]).await;
    node.store.fail_next(3);
    let answer = node.run().await;
    assert_eq!(answer.status, MessageStatus::Complete);
    let finishes = node.finishes();
    assert_eq!(finishes.len(), 1);
    assert_eq!(finishes[0].at - node.started, ms(100 + 200 + 400), "backing off between attempts");
    assert_eq!(node.stored().await.status, MessageStatus::Complete);
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_waits_for_its_grace_then_stores_running_answers_as_interrupted() {
    let node = Node::new([Script::words(50, ms(100))]).await;
    let finished = node.start(&["model-a"]);
    tokio::time::sleep(ms(350)).await;
    node.generations.shutdown(secs(1)).await;
    let answer = finished.await.expect("finishes");
    assert_eq!((answer.status, answer.content), (MessageStatus::Interrupted, words(13)));
    assert_eq!(node.stored().await.status, MessageStatus::Interrupted);
    assert_eq!(node.generations.running(), 0);
}
