//! Many slow streams held at once by one Loquat process: `/v1/chat/completions` streams whose
//! upstream sends one chunk per second, opened until all are running, then held while Loquat's
//! memory, CPU and the chunks it delivers are read.
//!
//! This machine allows a process 20,000 open files, and each stream through Loquat holds two
//! sockets in it (the client's and the upstream's). So by default the clients share HTTP/2
//! connections to Loquat (as behind a reverse proxy that speaks h2c), while every stream still
//! has its own HTTP/1.1 connection to the upstream; `--http1` gives every client its own
//! connection too, for as many streams as the file limit allows.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use loquat_test_support::fake_openai::Reply;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, watch};

use crate::gateway::{Setup, api_request, api_stream};
use crate::stats;

/// The upstream's pace.
const CHUNK_INTERVAL: Duration = Duration::from_secs(1);
/// Chunks per slow answer: longer than any ramp and hold (the streams are dropped after).
const SLOW_CHUNKS: usize = 1_800;
/// Streams that may be opening (sent, no first chunk yet) at once.
const OPENING_AT_ONCE: usize = 200;
/// Streams sharing one HTTP/2 connection to Loquat (below hyper's 200 per connection).
const STREAMS_PER_CONNECTION: usize = 100;
/// How long the held streams are watched.
const HOLD: Duration = Duration::from_secs(10);
/// Sockets (and other files) Loquat keeps beside the streams: listener, database, pools.
const SPARE_FILES: u64 = 500;

/// How the clients reach Loquat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientConnections {
    /// One HTTP/1.1 connection per stream.
    Http1,
    /// HTTP/2 with prior knowledge, [`STREAMS_PER_CONNECTION`] streams per connection.
    Http2,
}

/// The most streams the open-file limit allows here. In HTTP/1.1 mode each stream costs Loquat
/// two sockets (client and upstream) and the harness two (its client's and the fake upstream's);
/// with HTTP/2 clients, one each (the upstream's, at both ends).
pub fn stream_limit(connections: ClientConnections) -> usize {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let soft: u64 = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))
        .and_then(|line| line.split_whitespace().nth(3)?.parse().ok())
        .unwrap_or(1_024);
    let per_stream = match connections {
        ClientConnections::Http1 => 2,
        ClientConnections::Http2 => 1,
    };
    (soft.saturating_sub(SPARE_FILES) / per_stream) as usize
}

/// Holds `wanted` slow streams (or as many as the open-file limit allows), `rounds` times: a
/// second round shows whether what the first kept is reused or lost.
pub async fn slow_streams(binary: &Path, wanted: usize, connections: ClientConnections, rounds: usize) -> Value {
    let limit = stream_limit(connections);
    let streams = wanted.min(limit);
    if streams < wanted {
        println!("scale: {wanted} streams asked, {streams} possible with this process's open-file limit");
    }
    let setup = Setup::start(binary, "scale", &[]).await;
    let base = setup.loquat.base.clone();
    let token = setup.api_token().await;
    // Warm up (pools, caches, the allocator), then read the idle memory.
    for index in 0..20 {
        api_stream(setup.client.clone(), base.clone(), token.clone(), index).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = setup.loquat.rss_kib();
    let idle_files = setup.loquat.open_files();
    setup.fake.set_default_reply(Reply::tokens(SLOW_CHUNKS).delay_between_chunks(CHUNK_INTERVAL));

    let clients: Vec<reqwest::Client> = match connections {
        ClientConnections::Http1 => vec![reqwest::Client::builder().build().expect("client")],
        ClientConnections::Http2 => (0..streams.div_ceil(STREAMS_PER_CONNECTION))
            .map(|_| reqwest::Client::builder().http2_prior_knowledge().build().expect("client"))
            .collect(),
    };
    let client_side = match connections {
        ClientConnections::Http1 => "HTTP/1.1, one connection per stream".to_owned(),
        ClientConnections::Http2 => format!("HTTP/2, {} connections", clients.len()),
    };
    let mib = |kib: u64| stats::round(kib as f64 / 1024.0);
    let mut figures = Vec::new();
    for round in 1..=rounds {
        let held = hold_round(&setup, &clients, &token, streams).await;
        let per_stream_kib = held.peak_kib.saturating_sub(idle_kib) as f64 / held.running.max(1) as f64;
        println!(
            "scale round {round} ({client_side}): {} of {streams} slow streams held ({} refused), opened in {:.1} s; \
             RSS idle {:.1} MiB, holding {:.1} MiB ({per_stream_kib:.1} KiB per stream), after {:.1} MiB, \
             settled {:.1} MiB; \
             {:.0} chunks/s delivered, {:.1}% of one core; open files idle {idle_files}, holding {}, after {}",
            held.running,
            held.failed,
            held.ramp.as_secs_f64(),
            mib(idle_kib),
            mib(held.peak_kib),
            mib(held.after_kib),
            mib(held.settled_kib),
            held.delivered,
            held.cpu_percent,
            held.peak_files,
            held.after_files,
        );
        figures.push(json!({
            "streams_held": held.running,
            "streams_refused": held.failed,
            "ramp_seconds": stats::round(held.ramp.as_secs_f64()),
            "holding_rss_mib": mib(held.peak_kib),
            "rss_per_stream_kib": stats::round(per_stream_kib),
            "rss_after_mib": mib(held.after_kib),
            "rss_settled_mib": mib(held.settled_kib),
            "chunks_per_second_delivered": stats::round(held.delivered),
            "cpu_percent_of_one_core": stats::round(held.cpu_percent),
            "open_files_holding": held.peak_files,
            "open_files_after": held.after_files,
        }));
    }
    setup.stop().await;
    json!({
        "client_connections": client_side,
        "streams_asked": wanted,
        "streams_possible": limit,
        "idle_rss_mib": mib(idle_kib),
        "open_files_idle": idle_files,
        "rounds": figures,
    })
}

/// What one round of holding `streams` slow streams showed.
struct Held {
    ramp: Duration,
    running: usize,
    failed: usize,
    peak_kib: u64,
    peak_files: usize,
    delivered: f64,
    cpu_percent: f64,
    after_kib: u64,
    /// 15 s after the streams ended.
    settled_kib: u64,
    after_files: usize,
}

/// Opens `streams` slow streams, holds them for [`HOLD`] while reading Loquat's figures, then
/// lets go of them all and reads what is left.
async fn hold_round(setup: &Setup, clients: &[reqwest::Client], token: &str, streams: usize) -> Held {
    let counters = Arc::new(Counters::default());
    let opening = Arc::new(Semaphore::new(OPENING_AT_ONCE));
    let (stop, stopped) = watch::channel(false);
    let ramp_started = Instant::now();
    let tasks: Vec<_> = (0..streams)
        .map(|index| {
            let client = clients[index % clients.len()].clone();
            let (base, token, counters, opening, stopped) =
                (setup.loquat.base.clone(), token.to_owned(), counters.clone(), opening.clone(), stopped.clone());
            tokio::spawn(async move {
                let permit = opening.acquire_owned().await.expect("semaphore");
                hold_stream(client, &base, &token, index, permit, &counters, stopped).await;
            })
        })
        .collect();

    // Ramp: until every stream has its first chunk or has failed.
    while counters.running.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed) < streams {
        assert!(ramp_started.elapsed() < Duration::from_secs(600), "scale: the streams did not all start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ramp = ramp_started.elapsed();
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Hold: memory at its highest, chunks delivered and CPU used while every stream runs.
    let chunks_before = counters.chunks.load(Ordering::Relaxed);
    let cpu_before = setup.loquat.cpu_seconds();
    let held_from = Instant::now();
    let (mut peak_kib, mut peak_files) = (0, 0);
    while held_from.elapsed() < HOLD {
        peak_kib = peak_kib.max(setup.loquat.rss_kib());
        peak_files = peak_files.max(setup.loquat.open_files());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let held_for = held_from.elapsed().as_secs_f64();
    let delivered = (counters.chunks.load(Ordering::Relaxed) - chunks_before) as f64 / held_for;
    let cpu_percent = (setup.loquat.cpu_seconds() - cpu_before) / held_for * 100.0;
    let running = counters.running.load(Ordering::Relaxed) - counters.ended.load(Ordering::Relaxed);
    let failed = counters.failed.load(Ordering::Relaxed);

    // Let go of every stream; Loquat must close the upstream side of each.
    let _ = stop.send(true);
    for task in tasks {
        let _ = task.await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after_kib = setup.loquat.rss_kib();
    // And once the answers' last writes (usage) are done and the allocator has given back what
    // it can.
    tokio::time::sleep(Duration::from_secs(12)).await;
    Held {
        settled_kib: setup.loquat.rss_kib(),
        ramp,
        running,
        failed,
        peak_kib,
        peak_files,
        delivered,
        cpu_percent,
        after_kib,
        after_files: setup.loquat.open_files(),
    }
}

#[derive(Default)]
struct Counters {
    /// Streams that delivered their first chunk.
    running: AtomicUsize,
    /// Streams refused or broken before their first chunk.
    failed: AtomicUsize,
    /// Running streams that ended before they were let go.
    ended: AtomicUsize,
    /// Content chunks delivered, over all streams.
    chunks: AtomicU64,
}

/// Opens one slow stream and reads it until `stopped` turns true.
async fn hold_stream(
    client: reqwest::Client,
    base: &str,
    token: &str,
    index: usize,
    opening: tokio::sync::OwnedSemaphorePermit,
    counters: &Counters,
    mut stopped: watch::Receiver<bool>,
) {
    let mut opening = Some(opening);
    let response = match api_request(&client, base, token, index).await {
        Ok(response) if response.status().is_success() => response,
        Ok(response) => {
            if counters.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                let status = response.status();
                println!("scale: first refusal {status}: {}", response.text().await.unwrap_or_default());
            }
            return;
        }
        Err(error) => {
            if counters.failed.fetch_add(1, Ordering::Relaxed) == 0 {
                println!("scale: first failed request: {error}");
            }
            return;
        }
    };
    let mut events = crate::gateway::sse(response);
    loop {
        tokio::select! {
            event = events.next() => match event {
                Some(Ok(event)) if event.data.contains("\"content\"") => {
                    counters.chunks.fetch_add(1, Ordering::Relaxed);
                    if opening.take().is_some() {
                        counters.running.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    if opening.is_some() {
                        counters.failed.fetch_add(1, Ordering::Relaxed);
                    } else {
                        counters.ended.fetch_add(1, Ordering::Relaxed);
                    }
                    return;
                }
            },
            _ = stopped.changed() => return,
        }
    }
}
