//! Backup figures: an instance of 100,000 messages (100 topics of questions and Markdown
//! answers with code) and 200 files of 256 KiB, backed up with `loquat backup` and restored with
//! `loquat restore` into a new SQLite folder and, with `LOQUAT_BENCH_DATABASE_URL`, a new
//! PostgreSQL database — the real binary, as an operator runs it.

use std::path::Path;
use std::time::Instant;

use loquat_core::store::{FileStore, Store};
use loquat_core::time::Timestamp;
use loquat_store::StoreOptions;
use loquat_test_support::postgres::TestDatabase;
use serde_json::{Value, json};
use tokio::process::Command;

use crate::{seed, stats, temp_dir};

const TOPICS: usize = 100;
const PER_TOPIC: usize = 1_000;
const FILES: usize = 200;
const FILE_BYTES: usize = 256 * 1024;
/// The key secret of the bench's instances (a restore needs the backed-up one's).
const SECRET: &str = "YmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtYmVuY2gtMTI=";

pub async fn run(binary: &Path) -> Value {
    let source = temp_dir("backup-source");
    seed_instance(&source).await;
    let archive = temp_dir("backup-archive").join("bench.zip");
    std::fs::create_dir_all(archive.parent().expect("a folder")).expect("folder");
    let backup = timed(binary, &source, &["backup", "--to", path(&archive)], &[]).await;
    let size = std::fs::metadata(&archive).expect("the archive").len();
    let mut result = json!({
        "messages": TOPICS * PER_TOPIC,
        "files": FILES,
        "backup_seconds": backup,
        "archive_mb": stats::round(size as f64 / 1024.0 / 1024.0),
    });
    let target = temp_dir("backup-restored");
    result["restore_sqlite_seconds"] = timed(binary, &target, &["restore", "--from", path(&archive)], &[]).await.into();
    let _ = std::fs::remove_dir_all(&target);
    match std::env::var("LOQUAT_BENCH_DATABASE_URL") {
        Ok(admin) => {
            let database = TestDatabase::create(&admin).await.expect("a fresh PostgreSQL database");
            let target = temp_dir("backup-restored-pg");
            let env = [("DATABASE_URL", database.url.clone())];
            let seconds = timed(binary, &target, &["restore", "--from", path(&archive)], &env).await;
            result["restore_postgres_seconds"] = seconds.into();
            let _ = std::fs::remove_dir_all(&target);
            database.drop().await.expect("database dropped");
        }
        Err(_) => println!("backup: PostgreSQL skipped (set LOQUAT_BENCH_DATABASE_URL to an admin URL)"),
    }
    let _ = std::fs::remove_dir_all(&source);
    let _ = std::fs::remove_dir_all(archive.parent().expect("a folder"));
    println!("backup: {result}");
    result
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

/// Runs `loquat <args>` on `data_dir` and returns its seconds; it must succeed.
async fn timed(binary: &Path, data_dir: &Path, args: &[&str], env: &[(&str, String)]) -> f64 {
    let started = Instant::now();
    let output = Command::new(binary)
        .args(args)
        .env_clear()
        .env("LOQUAT_DATA_DIR", data_dir)
        .env("KEY_VAULTS_SECRET", SECRET)
        .env("ENABLED_OLLAMA", "0")
        .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
        .output()
        .await
        .expect("loquat runs");
    assert!(output.status.success(), "loquat {args:?}: {}", String::from_utf8_lossy(&output.stderr));
    stats::round(started.elapsed().as_secs_f64())
}

async fn seed_instance(data_dir: &Path) {
    let store = loquat_store::open(&StoreOptions { database_url: None, data_dir: data_dir.to_owned() })
        .await
        .expect("SQLite opens");
    let (user, assistant) = seed::account_and_assistant(&store).await;
    for _ in 0..TOPICS {
        seed::topic(&store, user, assistant, PER_TOPIC).await;
    }
    let blobs = loquat_files::Blobs::folder(data_dir.join("files")).expect("file storage");
    for index in 0..FILES {
        let content: Vec<u8> = (0..FILE_BYTES).map(|at| ((at * 31 + index * 7) % 251) as u8).collect();
        let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(content))]);
        let stored = blobs.put(&user.to_string(), stream, u64::MAX).await.expect("stored");
        let file = loquat_core::domain::StoredFile {
            id: loquat_core::id::FileId::new(),
            user_id: user,
            name: format!("file-{index}.bin"),
            mime: "application/octet-stream".into(),
            size: stored.size,
            sha256: stored.sha256,
            storage_key: stored.key,
            created_at: Timestamp::now(),
        };
        store.insert_file(&file, None, false).await.expect("recorded");
    }
    let _ = store.ping().await;
    store.close().await;
}
