//! Footprint figures of the real binary: start-up time, idle memory, and the chat page of long
//! topics.

use std::path::Path;
use std::time::{Duration, Instant};

use loquat_store::StoreOptions;
use serde_json::{Value, json};

use crate::{seed, server, stats, temp_dir};

const STARTS: usize = 7;

/// Start-to-ready (fresh data folder and existing one) and idle RSS.
pub async fn process(binary: &Path) -> Value {
    let mut fresh = Vec::new();
    let mut warm = Vec::new();
    let (mut rss, mut private) = (0, 0);
    for _ in 0..STARTS {
        let dir = temp_dir("start");
        let loquat = server::start(binary, &dir, &[]).await;
        fresh.push(loquat.ready_after);
        loquat.stop().await;
        let loquat = server::start(binary, &dir, &[]).await;
        warm.push(loquat.ready_after);
        // Idle after serving one page, as after a user's first visit.
        let _ = reqwest::get(format!("{}/login", loquat.base)).await.and_then(|r| r.error_for_status());
        tokio::time::sleep(Duration::from_millis(300)).await;
        rss = rss.max(loquat.rss_kib());
        private = private.max(loquat.private_kib());
        loquat.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
    let fresh = stats::summarize(&mut fresh);
    let warm = stats::summarize(&mut warm);
    println!(
        "process: ready in {:.1} ms (new data folder, p50) / {:.1} ms (existing, p50); idle RSS {:.1} MiB, of \
         it private {:.1} MiB",
        fresh.p50_ms,
        warm.p50_ms,
        rss as f64 / 1024.0,
        private as f64 / 1024.0
    );
    json!({
        "ready_new_data_dir": stats::json(fresh),
        "ready_existing_data_dir": stats::json(warm),
        "idle_rss_mib": stats::round(rss as f64 / 1024.0),
        "idle_private_mib": stats::round(private as f64 / 1024.0),
    })
}

/// The chat page of a 200- and a 2,000-message topic: bytes on the wire (brotli) and time.
pub async fn pages(binary: &Path) -> Value {
    let dir = temp_dir("pages");
    let (assistant, small, large) = {
        let store =
            loquat_store::open(&StoreOptions { database_url: None, data_dir: dir.clone() }).await.expect("store");
        let (user, assistant) = seed::account_and_assistant(&store).await;
        let small = seed::topic(&store, user, assistant, 200).await;
        let large = seed::topic(&store, user, assistant, 2_000).await;
        (assistant, small, large)
    };
    let loquat = server::start(binary, &dir, &[]).await;
    let client = reqwest::Client::builder().cookie_store(true).build().expect("client");
    sign_in(&client, &loquat.base).await;
    let mut result = json!({});
    for (name, topic, runs) in [("topic_200", small, 30), ("topic_2000", large, 10)] {
        let url = format!("{}/chat/{assistant}/{topic}", loquat.base);
        let mut times = Vec::new();
        let mut wire = 0;
        let mut plain = 0;
        for run in 0..=runs {
            let started = Instant::now();
            let response = client.get(&url).header("accept-encoding", "br, gzip").send().await.expect("page");
            assert!(response.status().is_success());
            let body = response.bytes().await.expect("body");
            if run > 0 {
                times.push(started.elapsed()); // the first request warms caches
            }
            wire = body.len();
        }
        let plain_body = client.get(&url).header("accept-encoding", "identity").send().await.expect("page");
        plain = plain.max(plain_body.bytes().await.expect("body").len());
        let summary = stats::summarize(&mut times);
        println!(
            "page {name}: {:.1} KB on the wire (brotli), {:.1} KB uncompressed, served in p50 {:.1} ms",
            wire as f64 / 1000.0,
            plain as f64 / 1000.0,
            summary.p50_ms
        );
        result[name] = json!({
            "wire_kb": stats::round(wire as f64 / 1000.0),
            "uncompressed_kb": stats::round(plain as f64 / 1000.0),
            "served": stats::json(summary),
        });
    }
    loquat.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Signs in as the seeded account; the client keeps the session cookie.
async fn sign_in(client: &reqwest::Client, base: &str) {
    let response = client
        .post(format!("{base}/login"))
        .form(&[("email", seed::EMAIL), ("password", seed::PASSWORD)])
        .send()
        .await
        .expect("sign in");
    assert!(response.status().is_success(), "the bench account signs in");
}
