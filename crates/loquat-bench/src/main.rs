//! `loquat-bench`: measures Loquat against a fake upstream in one run and prints readable lines
//! and a JSON summary. Build first with `cargo build --release`, then `target/release/loquat-bench`
//! (`--only store|process|page|gateway|scale|knowledge|tools|search`, `--json PATH`, `--streams N`, `--rounds N`,
//! `--http1`). Every gateway figure is a delta against calling the fake upstream directly.

mod backup;
mod footprint;
mod gateway;
mod knowledge;
mod scale;
mod search;
mod seed;
mod server;
mod stats;
mod store;
mod tools;

use std::path::PathBuf;

use serde_json::{Value, json};

fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loquat-bench-{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory_kib: u64 = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    json!({
        "cpu": model,
        "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "memory_gib": stats::round(memory_kib as f64 / 1024.0 / 1024.0),
    })
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut binary = server::default_binary();
    let mut json_out: Option<PathBuf> = None;
    let mut only: Option<String> = None;
    let mut streams = 10_000;
    let mut rounds = 2;
    let mut connections = scale::ClientConnections::Http2;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--loquat" => binary = PathBuf::from(args.next().expect("--loquat PATH")),
            "--json" => json_out = Some(PathBuf::from(args.next().expect("--json PATH"))),
            "--only" => {
                only = Some(args.next().expect("--only store|process|page|gateway|scale|knowledge|tools|search|backup"))
            }
            "--streams" => streams = args.next().and_then(|n| n.parse().ok()).expect("--streams N"),
            "--rounds" => rounds = args.next().and_then(|n| n.parse().ok()).expect("--rounds N"),
            "--http1" => connections = scale::ClientConnections::Http1,
            _ => {
                eprintln!(
                    "usage: loquat-bench [--loquat PATH] [--json PATH] [--only store|process|page|gateway|scale|knowledge|tools|search|backup] \
                     [--streams N] [--rounds N] [--http1]"
                );
                std::process::exit(2);
            }
        }
    }
    assert!(binary.exists(), "{} not found: run `cargo build --release` first", binary.display());

    let mut report = json!({ "machine": machine() });
    println!("Loquat benchmark on {}", report["machine"]);
    let wanted = |name: &str| only.as_deref().is_none_or(|only| only == name);
    if wanted("store") {
        report["store"] = store::run().await;
    }
    if wanted("process") {
        report["process"] = footprint::process(&binary).await;
    }
    if wanted("page") {
        report["page"] = footprint::pages(&binary).await;
    }
    if wanted("gateway") {
        report["gateway"] = gateway::overhead(&binary).await;
    }
    if wanted("knowledge") {
        report["knowledge"] = knowledge::run(&binary).await;
    }
    if wanted("search") {
        report["search"] = search::run().await;
    }
    if wanted("tools") {
        report["tools"] = tools::run(&binary).await;
    }
    if wanted("backup") {
        report["backup"] = backup::run(&binary).await;
    }
    if wanted("scale") {
        report["scale"] = scale::slow_streams(&binary, streams, connections, rounds).await;
    }
    let text = serde_json::to_string_pretty(&report).expect("serializable");
    if let Some(path) = json_out {
        std::fs::write(&path, &text).expect("JSON written");
    }
    println!("\n{text}");
}
