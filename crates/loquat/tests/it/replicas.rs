//! Replicas: two real `loquat` processes on one PostgreSQL database and one Redis. An answer
//! generating on one is watched live from the other, stopped from the other, and when its
//! process is killed the survivor marks it interrupted, keeping what was saved.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use loquat_test_support::fake_openai::{FakeOpenAi, Reply};
use loquat_test_support::postgres::TestDatabase;
use serde_json::Value;

use crate::helpers::{eventually, temp_dir, test_redis_url};
use crate::recovery::{Process, start_process};

struct Replicas {
    a: Process,
    b: Process,
    fake: FakeOpenAi,
    client: reqwest::Client,
    chat_path: String,
    database: TestDatabase,
    redis: Option<String>,
    prefix: String,
    data_dirs: [std::path::PathBuf; 2],
}

impl Replicas {
    /// Two processes sharing a fresh database (and a Redis prefix, `with_redis`), and a
    /// signed-in user.
    async fn start(with_redis: bool) -> Option<Self> {
        let redis = if with_redis { Some(test_redis_url()?) } else { None };
        let database = TestDatabase::from_env().await?;
        let fake = FakeOpenAi::start().await;
        fake.set_default_reply(Reply::text("A title"));
        let prefix = format!("loquat-test-{}", uuid::Uuid::new_v4().simple());
        let mut env = vec![
            ("DATABASE_URL", database.url.clone()),
            ("REDIS_PREFIX", prefix.clone()),
            // One key for both (they share the encrypted settings).
            ("KEY_VAULTS_SECRET", "cmVwbGljYXMtc2hhcmUtb25lLXZhdWx0LWtleS0zMiE=".to_owned()),
            ("LOQUAT_GENERATION__HEARTBEAT_SECS", "1".to_owned()),
            ("LOQUAT_GENERATION__STALE_AFTER_SECS", "3".to_owned()),
        ];
        env.extend(redis.clone().map(|url| ("REDIS_URL", url)));
        let data_dirs = [temp_dir("replica-a"), temp_dir("replica-b")];
        let a = start_process(&data_dirs[0], &fake, &env).await;
        let b = start_process(&data_dirs[1], &fake, &env).await;
        // One cookie jar: the session lives in the shared database, so it works on both.
        let client = reqwest::Client::builder().cookie_store(true).build().expect("client");
        let registered = client
            .post(format!("{}/register", a.base))
            .form(&[("name", "Ada"), ("email", "ada@example.com"), ("password", "long enough password")])
            .send()
            .await
            .expect("register");
        assert!(registered.status().is_success(), "registered and redirected home");
        let chat_path = registered.url().path().to_owned();
        Some(Self { a, b, fake, client, chat_path, database, redis, prefix, data_dirs })
    }

    async fn send(&self, base: &str, topic: &str, content: &str) -> Value {
        let response = self
            .client
            .post(format!("{base}{}/send", self.chat_path))
            .header("accept", "application/json")
            .form(&[("content", content), ("topic_id", topic)])
            .send()
            .await
            .expect("send");
        assert_eq!(response.status().as_u16(), 200);
        response.json().await.expect("JSON")
    }

    async fn raw(&self, base: &str, answer: &str) -> String {
        let response = self.client.get(format!("{base}/messages/{answer}/raw")).send().await.expect("raw");
        response.text().await.expect("body")
    }

    /// Opens an answer's event stream on `base`: once it answers, that node follows the answer.
    async fn events(&self, base: &str, answer: &str) -> Events {
        use eventsource_stream::Eventsource;
        let response = self
            .client
            .get(format!("{base}/messages/{answer}/events"))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("events");
        assert_eq!(response.status().as_u16(), 200);
        Box::pin(response.bytes_stream().eventsource().map(|event| {
            let event = event.expect("valid SSE");
            (event.event, serde_json::from_str(&event.data).expect("JSON"))
        }))
    }

    /// Follows an answer's events on `base`: the `render` events, then the `done` event.
    async fn watch(&self, base: &str, answer: &str) -> (Vec<Value>, Value) {
        until_done(self.events(base, answer).await).await
    }

    async fn cleanup(self) {
        drop((self.a, self.b));
        if let Some(redis) = &self.redis
            && let Ok(client) = redis::Client::open(redis.as_str())
            && let Ok(mut connection) = client.get_multiplexed_async_connection().await
        {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{}:*", self.prefix))
                .query_async(&mut connection)
                .await
                .unwrap_or_default();
            for key in keys {
                let _: Result<(), _> = redis::cmd("DEL").arg(key).query_async(&mut connection).await;
            }
        }
        self.database.drop().await.expect("test database dropped");
        for dir in self.data_dirs {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// An answer's server-sent events: name and data.
type Events = Pin<Box<dyn Stream<Item = (String, Value)> + Send>>;

/// Reads `events` until `done`: the `render` events before it, and `done`'s data.
async fn until_done(mut events: Events) -> (Vec<Value>, Value) {
    let mut renders = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while let Ok(Some((name, data))) = tokio::time::timeout_at(deadline.into(), events.next()).await {
        if name == "done" {
            return (renders, data);
        }
        renders.push(data);
    }
    panic!("no done event after {} renders", renders.len());
}

/// Waits for the first event, a `render` of the text saved so far: the node follows the answer.
async fn following(events: &mut Events) {
    let first = tokio::time::timeout(Duration::from_secs(10), events.next()).await.expect("an event in time");
    let (name, data) = first.expect("the stream is open");
    assert_eq!(name, "render", "{data}");
}

fn words_in(html: &Value) -> usize {
    html["html"].as_str().unwrap_or_default().split_whitespace().count()
}

fn logged(process: &Process, text: &str) -> bool {
    process.log.lock().expect("log").iter().any(|line| line.contains(text))
}

/// Sends on A and watches on B until done; returns the answer and topic ids and B's renders.
async fn watched_from_b(replicas: &Replicas, words: usize) -> (String, String, Vec<Value>) {
    let (a, b) = (&replicas.a.base, &replicas.b.base);
    replicas.fake.push_reply(Reply::tokens(words).delay_between_chunks(Duration::from_millis(25)));
    let sent = replicas.send(a, "", "Tell me a story").await;
    let answer = sent["answer_id"].as_str().expect("answer id").to_owned();
    let topic = sent["topic_id"].as_str().expect("topic id").to_owned();
    let (renders, done) = replicas.watch(b, &answer).await;
    assert_eq!(done["status"], "complete", "{done}");
    let counts: Vec<usize> = renders.iter().map(words_in).collect();
    assert!(counts.windows(2).all(|pair| pair[0] <= pair[1]), "only ever growing: {counts:?}");
    let stored = replicas.raw(a, &answer).await;
    assert_eq!(stored.split_whitespace().count(), words);
    assert_eq!(replicas.raw(b, &answer).await, stored);
    let tail = stored.split_whitespace().last().expect("words");
    assert!(done["html"].as_str().expect("html").contains(tail), "B ends with A's whole answer");
    // The new topic's title request comes next; let it pass before queueing the next reply.
    assert!(replicas.fake.wait_for_requests(2, Duration::from_secs(10)).await, "titled");
    (answer, topic, renders)
}

/// Sends a long answer on A, waits until part of it is saved, and stops it from B.
async fn stopped_from_b(replicas: &Replicas, topic: &str) {
    let b = &replicas.b.base;
    replicas.fake.push_reply(Reply::tokens(2_000).delay_between_chunks(Duration::from_millis(10)));
    let sent = replicas.send(&replicas.a.base, topic, "A very long one").await;
    let answer = sent["answer_id"].as_str().expect("answer id").to_owned();
    eventually("part of the answer is saved", || async {
        replicas.raw(b, &answer).await.split_whitespace().count() > 5
    })
    .await;
    let mut events = replicas.events(b, &answer).await;
    following(&mut events).await;
    let response =
        replicas.client.post(format!("{b}/messages/{answer}/stop")).header("accept", "application/json").send().await;
    assert_eq!(response.expect("stop").status().as_u16(), 204);
    let (_, done) = until_done(events).await;
    assert_eq!(done["status"], "stopped", "{done}");
    assert!(replicas.fake.wait_for_cancellation(Duration::from_secs(5)).await, "A cancelled its upstream request");
    let kept = replicas.raw(&replicas.a.base, &answer).await.split_whitespace().count();
    assert!(kept > 5 && kept < 2_000, "the text up to the stop is kept ({kept} words)");
}

#[tokio::test]
async fn with_redis_an_answer_is_watched_stopped_and_recovered_from_another_replica() {
    let Some(replicas) = Replicas::start(true).await else { return };

    // B follows A's deltas on the bus: many renders, not one per store poll.
    let (_, topic, renders) = watched_from_b(&replicas, 60).await;
    assert!(renders.len() >= 5, "B saw the answer grow: {} renders", renders.len());

    // The stop reaches A's job over the bus at once (not by A finding the answer stopped in
    // the store at its next save).
    stopped_from_b(&replicas, &topic).await;
    assert!(!logged(&replicas.a, "stopped elsewhere"), "A heard the stop on the bus");

    // Sent on A, and A dies: B, watching, sees the answer end as interrupted once A's
    // heartbeat is overdue, with what A had saved.
    let b = replicas.b.base.clone();
    replicas.fake.push_reply(Reply::tokens(2_000).delay_between_chunks(Duration::from_millis(10)));
    let sent = replicas.send(&replicas.a.base, &topic, "Another long one").await;
    let answer = sent["answer_id"].as_str().expect("answer id").to_owned();
    eventually("part of the answer is saved", || async {
        replicas.raw(&b, &answer).await.split_whitespace().count() > 5
    })
    .await;
    let mut events = replicas.events(&b, &answer).await;
    following(&mut events).await;
    let pid = replicas.a.child.id().expect("A runs").to_string();
    let status = tokio::process::Command::new("kill").args(["-KILL", &pid]).status().await.expect("kill runs");
    assert!(status.success());
    let killed = Instant::now();
    let (_, done) = until_done(events).await;
    assert_eq!(done["status"], "interrupted", "{done}");
    assert!(killed.elapsed() < Duration::from_secs(10), "noticed within the stale time and a sweep");
    let saved = replicas.raw(&b, &answer).await;
    assert!(saved.split_whitespace().count() > 5, "what A saved is kept: {saved:?}");
    replicas.cleanup().await;
}

#[tokio::test]
async fn without_redis_replicas_follow_and_stop_through_the_store() {
    let Some(replicas) = Replicas::start(false).await else { return };
    // B reads A's saves; the stop is stored, and A's next save finds it.
    let (_, topic, _) = watched_from_b(&replicas, 60).await;
    stopped_from_b(&replicas, &topic).await;
    assert!(logged(&replicas.a, "stopped elsewhere"));
    replicas.cleanup().await;
}
