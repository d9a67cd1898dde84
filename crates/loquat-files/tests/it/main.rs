//! The file-storage conformance suite: the same cases on a folder and on an S3-compatible
//! server (`LOQUAT_TEST_S3_URL`, moto in CI).

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt, stream};
use loquat_files::{BlobError, Blobs};
use loquat_test_support::s3::{TestBucket, test_s3_url};
use sha2::{Digest, Sha256};

const MIB: usize = 1024 * 1024;

/// `content` as a client sends it: in pieces of `piece` bytes.
fn pieces(content: &[u8], piece: usize) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let parts: Vec<Result<Bytes, std::io::Error>> =
        content.chunks(piece).map(|part| Ok(Bytes::copy_from_slice(part))).collect();
    stream::iter(parts)
}

/// Bytes that do not repeat in a way storage could compress away.
fn content(len: usize, seed: u8) -> Vec<u8> {
    let mut state = u32::from(seed) + 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect()
}

async fn read_back(blobs: &Blobs, key: &str) -> Vec<u8> {
    let (size, body) = blobs.get(key).await.expect("the stored file");
    let bytes: Vec<Bytes> = body.try_collect().await.expect("its bytes");
    let bytes = bytes.concat();
    assert_eq!(size as usize, bytes.len());
    bytes
}

/// What every backend must do. `keys` lists what the backend holds, to see nothing is left.
async fn conformance<K, F>(blobs: Blobs, keys: K)
where
    K: Fn() -> F,
    F: Future<Output = Vec<String>>,
{
    // A small file, streamed in small pieces: stored under its owner, with its hash.
    let small = content(10_000, 1);
    let stored = blobs.put("alice", pieces(&small, 1000), 1_000_000).await.expect("stored");
    assert_eq!(stored.sha256, hex::encode(Sha256::digest(&small)));
    assert!(stored.key.starts_with("files/alice/"), "{}", stored.key);
    assert_eq!(stored.size, 10_000);
    assert_eq!(read_back(&blobs, &stored.key).await, small);
    assert_eq!(blobs.read(&stored.key).await.expect("read whole"), small);

    // Each upload is an object of its own (the store keeps one record per content); the same
    // content hashes the same.
    let again = blobs.put("alice", pieces(&small, 333), 1_000_000).await.expect("stored again");
    assert_eq!(again.sha256, stored.sha256);
    assert_ne!(again.key, stored.key);
    blobs.delete(&again.key).await.expect("the second copy removed");
    let bobs = blobs.put("bob", pieces(&small, 4096), 1_000_000).await.expect("bob's");
    assert!(bobs.key.starts_with("files/bob/"), "{}", bobs.key);
    assert_eq!(keys().await.len(), 2, "{:?}", keys().await);

    // Larger than one part (several multipart parts), in uneven pieces.
    let large = content(12 * MIB + 17, 2);
    let stored_large = blobs.put("alice", pieces(&large, 64 * 1024 + 3), 100 * MIB as u64).await.expect("large");
    assert_eq!(stored_large.size as usize, large.len());
    assert_eq!(read_back(&blobs, &stored_large.key).await, large);

    // Too large, empty, or a stream that breaks: refused, and nothing is left behind.
    let before = keys().await;
    let over = blobs.put("alice", pieces(&content(6 * MIB, 3), MIB), 5 * MIB as u64).await;
    assert!(matches!(over, Err(BlobError::TooLarge { limit }) if limit == 5 * MIB as u64), "{over:?}");
    let empty = blobs.put("alice", pieces(&[], 1), 100).await;
    assert!(matches!(empty, Err(BlobError::Empty)), "{empty:?}");
    let broken = stream::iter(vec![Ok(Bytes::from(content(7 * MIB, 4))), Err(std::io::Error::other("reset"))]);
    let broken = blobs.put("alice", broken, 100 * MIB as u64).await;
    assert!(matches!(&broken, Err(BlobError::Upload(message)) if message.contains("reset")), "{broken:?}");
    // An upload whose client goes away: the future is dropped mid-stream.
    let endless = stream::iter(0..).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![7u8; 256 * 1024])));
    let dropped = tokio::time::timeout(Duration::from_millis(300), blobs.put("alice", endless, u64::MAX)).await;
    assert!(dropped.is_err(), "an endless upload cannot finish");
    wait_for(|| async { keys().await == before }, "the dropped upload's parts to go").await;

    // Deleting: gone, and deleting again is fine; a missing key is NotFound.
    blobs.delete(&stored_large.key).await.expect("deleted");
    blobs.delete(&stored_large.key).await.expect("deleted twice");
    assert!(matches!(blobs.get(&stored_large.key).await, Err(BlobError::NotFound)));
    assert!(matches!(blobs.read("files/alice/nothing").await, Err(BlobError::NotFound)));

    // The doctor's probe leaves nothing.
    blobs.probe().await.expect("probe");
    assert_eq!(keys().await.len(), 2);
    assert_eq!(blobs.sweep_interrupted_uploads(Duration::ZERO).await.expect("sweep"), 0);
}

async fn wait_for<F, Fut>(condition: F, what: &str)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..100 {
        if condition().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("waited 5 s for {what}");
}

fn temp_dir() -> PathBuf {
    std::env::temp_dir().join(format!("loquat-files-{}", uuid::Uuid::new_v4().simple()))
}

/// Every file under `dir`, relative, skipping empty folders.
fn files_under(dir: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out);
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_folder_keeps_files() {
    let dir = temp_dir();
    let blobs = Blobs::folder(&dir).expect("folder");
    conformance(blobs, || async { files_under(&dir) }).await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_bucket_keeps_files() {
    let Some(url) = test_s3_url() else {
        eprintln!("skipped: LOQUAT_TEST_S3_URL is not set");
        return;
    };
    let bucket = TestBucket::create(&url).await;
    let blobs = Blobs::s3(&bucket.settings()).expect("s3");
    conformance(blobs, || bucket.keys()).await;
    bucket.remove().await;
}

#[tokio::test]
async fn interrupted_uploads_are_swept() {
    let dir = temp_dir();
    std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
    // What a crash leaves: a multipart upload's staging file, which the object listing hides.
    std::fs::write(dir.join("tmp/0123456789abcdef#1"), b"half").expect("a leftover");
    let blobs = Blobs::folder(&dir).expect("folder");
    assert_eq!(blobs.sweep_interrupted_uploads(Duration::from_secs(3600)).await.expect("sweep"), 0);
    assert_eq!(blobs.sweep_interrupted_uploads(Duration::ZERO).await.expect("sweep"), 1);
    assert!(files_under(&dir).is_empty());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_upload_that_stalls_is_given_up_and_leaves_nothing() {
    let dir = temp_dir();
    let blobs = Blobs::folder(&dir).expect("folder").with_idle_timeout(Duration::from_millis(200));
    // A client that sends one piece, then nothing, and never ends.
    let stalled = stream::iter(vec![Ok::<_, std::io::Error>(Bytes::from_static(b"a start"))]).chain(stream::pending());
    let started = std::time::Instant::now();
    let given_up = blobs.put("alice", stalled, 1_000_000).await;
    assert!(
        matches!(&given_up, Err(BlobError::Upload(message)) if message.contains("nothing arrived")),
        "{given_up:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(files_under(&dir).is_empty(), "{:?}", files_under(&dir));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_unreachable_bucket_fails_clearly() {
    let blobs = Blobs::s3(&loquat_files::S3Settings {
        endpoint: Some("http://127.0.0.1:9".to_owned()),
        bucket: "nowhere".to_owned(),
        access_key_id: Some("id".to_owned()),
        secret_access_key: Some("secret".to_owned()),
        path_style: true,
        ..Default::default()
    })
    .expect("settings");
    let probe = blobs.probe().await;
    assert!(matches!(&probe, Err(BlobError::Storage(_))), "{probe:?}");
    let put = blobs.put("alice", pieces(b"hello", 5), 100).await;
    assert!(matches!(&put, Err(BlobError::Storage(_))), "{put:?}");
    assert!(!format!("{probe:?}{put:?}").contains("secret"));
}
