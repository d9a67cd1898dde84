//! Where the bytes of users' files live: a folder under the data directory, or an
//! S3-compatible bucket (AWS, Alibaba OSS, MinIO, Cloudflare R2) through `object_store`.
//!
//! An upload is streamed: read in pieces from the client, hashed (SHA-256) and sent on as a
//! multipart upload to a temporary object, so at most a few parts are in memory whatever the
//! file's size. When it is complete it moves to `files/<owner>/<random>`: nothing half-written
//! ever has a final name. An upload that fails, is too large or is dropped (the client went
//! away) is aborted and its temporary object removed; what a crash leaves under `tmp/` is swept
//! at start-up. Each object belongs to one file record: the store keeps one record per owner and
//! content hash (so the same file uploaded twice is kept once), and deleting the record deletes
//! its object, with nothing shared that a concurrent upload could still need.
//!
//! This crate knows bytes and keys only; which user owns which file, its name and type are the
//! store's, and every route checks them before it asks for bytes.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{Stream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart};
use sha2::{Digest, Sha256};

/// Parts of a multipart upload (S3's smallest part but the last is 5 MiB).
const PART_BYTES: usize = 5 * 1024 * 1024;
/// Parts sent at once; with the part being filled, what an upload holds in memory.
const PARTS_IN_FLIGHT: usize = 2;
/// How long an upload may send nothing before it is given up (a client trickling bytes must
/// not hold a connection and a half-written upload for ever).
pub const UPLOAD_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// An S3-compatible bucket, in LobeChat's terms (`S3_ENDPOINT`, `S3_BUCKET`, `S3_REGION`,
/// `S3_ACCESS_KEY_ID`, `S3_SECRET_ACCESS_KEY`, `S3_ENABLE_PATH_STYLE`).
#[derive(Clone, Default)]
pub struct S3Settings {
    /// `https://oss-cn-hangzhou.aliyuncs.com`, `http://minio:9000`…; unset, AWS itself.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// `https://endpoint/bucket/key` instead of `https://bucket.endpoint/key` (MinIO).
    pub path_style: bool,
}

impl std::fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id.as_ref().map(|_| "…"))
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "…"))
            .field("path_style", &self.path_style)
            .finish()
    }
}

/// Where files are kept, for messages and `loquat doctor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backend {
    Folder(PathBuf),
    S3 { bucket: String },
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Folder(path) => write!(f, "the folder {}", path.display()),
            Backend::S3 { bucket } => write!(f, "the S3 bucket {bucket}"),
        }
    }
}

/// A stored file's bytes: where they are, their hash and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBlob {
    /// `files/<owner>/<random>`.
    pub key: String,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    pub size: u64,
    /// The first bytes of the content (up to [`HEAD_BYTES`]), to tell its type by.
    pub head: Vec<u8>,
}

/// How much of the start of an upload [`StoredBlob::head`] keeps.
pub const HEAD_BYTES: usize = 8 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BlobError {
    #[error("the file is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is empty")]
    Empty,
    /// The client's stream failed (a dropped connection, a malformed upload).
    #[error("the upload did not arrive whole: {0}")]
    Upload(String),
    #[error("no such file in storage")]
    NotFound,
    /// The folder or bucket failed (unreachable, refused, full).
    #[error("file storage failed: {0}")]
    Storage(String),
}

impl From<object_store::Error> for BlobError {
    fn from(error: object_store::Error) -> Self {
        match error {
            object_store::Error::NotFound { .. } => BlobError::NotFound,
            other => BlobError::Storage(other.to_string()),
        }
    }
}

/// The file storage of an instance; cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    store: Arc<dyn ObjectStore>,
    backend: Backend,
    idle_timeout: Duration,
}

impl std::fmt::Debug for Blobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blobs").field("backend", &self.backend).finish()
    }
}

impl Blobs {
    /// Files in `dir` (created when missing).
    pub fn folder(dir: impl Into<PathBuf>) -> Result<Self, BlobError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)
            .map_err(|error| BlobError::Storage(format!("cannot create {}: {error}", dir.display())))?;
        let store = LocalFileSystem::new_with_prefix(&dir)?.with_automatic_cleanup(true);
        Ok(Self { store: Arc::new(store), backend: Backend::Folder(dir), idle_timeout: UPLOAD_IDLE_TIMEOUT })
    }

    /// Files in an S3-compatible bucket. Nothing is contacted yet; [`Blobs::probe`] checks it.
    pub fn s3(settings: &S3Settings) -> Result<Self, BlobError> {
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&settings.bucket)
            .with_region(settings.region.as_deref().filter(|region| !region.is_empty()).unwrap_or("us-east-1"))
            .with_virtual_hosted_style_request(!settings.path_style)
            // An unreachable bucket is a clear error within seconds, not minutes of retries.
            .with_retry(RetryConfig {
                backoff: BackoffConfig {
                    init_backoff: Duration::from_millis(100),
                    max_backoff: Duration::from_secs(2),
                    base: 2.0,
                },
                max_retries: 3,
                retry_timeout: Duration::from_secs(15),
            })
            .with_client_options(
                ClientOptions::new()
                    .with_connect_timeout(Duration::from_secs(5))
                    .with_timeout(Duration::from_secs(120)),
            );
        if let Some(endpoint) = settings.endpoint.as_deref().filter(|endpoint| !endpoint.is_empty()) {
            builder = builder.with_endpoint(endpoint).with_allow_http(endpoint.starts_with("http://"));
        }
        if let Some(id) = &settings.access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &settings.secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        let store = builder.build()?;
        let backend = Backend::S3 { bucket: settings.bucket.clone() };
        Ok(Self { store: Arc::new(store), backend, idle_timeout: UPLOAD_IDLE_TIMEOUT })
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// The same storage, giving up on uploads that send nothing for `timeout` (tests).
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = timeout;
        self
    }

    /// Streams `content` into storage as `owner`'s, refusing more than `limit` bytes, an empty
    /// file and a stream that fails; in each of those cases nothing is left behind.
    pub async fn put<S, E>(&self, owner: &str, content: S, limit: u64) -> Result<StoredBlob, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let key = format!("files/{owner}/{}", uuid::Uuid::new_v4().simple());
        self.put_at(key, content, limit).await
    }

    /// Streams `content` into storage under `key`, a key [`Blobs::put`] gave (a restore puts
    /// each file back where its record says it is), as `put` does.
    pub async fn put_as<S, E>(&self, key: &str, content: S, limit: u64) -> Result<StoredBlob, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        if !is_file_key(key) {
            return Err(BlobError::Storage(format!("{key:?} is not a file's key")));
        }
        self.put_at(key.to_owned(), content, limit).await
    }

    /// Streams `content` into storage under any `key` (backup archives in a bucket of their
    /// own), as `put` does.
    pub async fn put_object<S, E>(&self, key: &str, content: S) -> Result<StoredBlob, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        self.put_at(key.to_owned(), content, u64::MAX).await
    }

    /// The keys under `prefix` with their sizes.
    pub async fn list(&self, prefix: &str) -> Result<Vec<(String, u64)>, BlobError> {
        let prefix = Path::from(prefix);
        let mut listed = self.store.list(Some(&prefix));
        let mut found = Vec::new();
        while let Some(meta) = listed.try_next().await? {
            found.push((meta.location.to_string(), meta.size));
        }
        Ok(found)
    }

    async fn put_at<S, E>(&self, key: String, content: S, limit: u64) -> Result<StoredBlob, BlobError>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let temporary = Path::from(format!("tmp/{}", uuid::Uuid::new_v4().simple()));
        let upload = self.store.put_multipart(&temporary).await?;
        let mut writer = AbortOnDrop(Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES)));
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut head = Vec::new();
        let mut content = std::pin::pin!(content);
        loop {
            let piece = match tokio::time::timeout(self.idle_timeout, content.next()).await {
                Ok(None) => break,
                Ok(Some(Ok(piece))) => piece,
                Ok(Some(Err(error))) => {
                    writer.abort().await;
                    return Err(BlobError::Upload(error.to_string()));
                }
                Err(_) => {
                    writer.abort().await;
                    let seconds = self.idle_timeout.as_secs_f64();
                    return Err(BlobError::Upload(format!("nothing arrived for {seconds} s")));
                }
            };
            size += piece.len() as u64;
            if size > limit {
                writer.abort().await;
                return Err(BlobError::TooLarge { limit });
            }
            hasher.update(&piece);
            if head.len() < HEAD_BYTES {
                head.extend_from_slice(&piece[..piece.len().min(HEAD_BYTES - head.len())]);
            }
            let Some(parts) = writer.0.as_mut() else { break };
            if let Err(error) = parts.wait_for_capacity(PARTS_IN_FLIGHT).await {
                writer.abort().await;
                return Err(error.into());
            }
            parts.put(piece);
        }
        if size == 0 {
            writer.abort().await;
            return Err(BlobError::Empty);
        }
        if let Some(parts) = writer.0.take() {
            parts.finish().await?;
        }
        let sha256 = hex::encode(hasher.finalize());
        if let Err(error) = self.store.rename(&temporary, &Path::from(key.as_str())).await {
            self.remove_quietly(&temporary).await;
            return Err(error.into());
        }
        Ok(StoredBlob { key, sha256, size, head })
    }

    /// The bytes under `key`, as a stream, with their size.
    pub async fn get(&self, key: &str) -> Result<(u64, BoxStream<'static, Result<Bytes, BlobError>>), BlobError> {
        let found = self.store.get(&Path::from(key)).await?;
        let size = found.meta.size;
        Ok((size, found.into_stream().map_err(BlobError::from).boxed()))
    }

    /// The whole content under `key` (for files small enough to hold, such as images sent to
    /// a model or text to extract).
    pub async fn read(&self, key: &str) -> Result<Bytes, BlobError> {
        Ok(self.store.get(&Path::from(key)).await?.bytes().await?)
    }

    /// Removes `key`; a key that is already gone is not an error.
    pub async fn delete(&self, key: &str) -> Result<(), BlobError> {
        match self.store.delete(&Path::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Removes temporary uploads older than `older_than`: what a crash interrupted. Returns
    /// how many went. (In a bucket, the parts of an interrupted multipart upload are not
    /// objects; a lifecycle rule aborting incomplete uploads after a day removes them.)
    pub async fn sweep_interrupted_uploads(&self, older_than: Duration) -> Result<usize, BlobError> {
        let cutoff = SystemTime::now() - older_than;
        if let Backend::Folder(dir) = &self.backend {
            // A folder's unfinished uploads are staging files the object listing hides.
            return Ok(sweep_folder(&dir.join("tmp"), cutoff));
        }
        let mut listed = self.store.list(Some(&Path::from("tmp")));
        let mut removed = 0;
        while let Some(meta) = listed.try_next().await? {
            if SystemTime::from(meta.last_modified) < cutoff {
                self.remove_quietly(&meta.location).await;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Writes, reads back and deletes a small object: what `loquat doctor` checks.
    pub async fn probe(&self) -> Result<(), BlobError> {
        let path = Path::from(format!("probe/{}", uuid::Uuid::new_v4().simple()));
        let content = Bytes::from_static(b"loquat probe");
        // Here "not found" is the bucket's or the folder's, not a file's: say what storage said.
        let storage = |error: object_store::Error| BlobError::Storage(error.to_string());
        self.store.put(&path, content.clone().into()).await.map_err(storage)?;
        let read = match self.store.get(&path).await {
            Ok(found) => found.bytes().await.map_err(storage),
            Err(error) => Err(storage(error)),
        };
        let deleted = self.store.delete(&path).await.map_err(storage);
        if read? != content {
            return Err(BlobError::Storage("a probe object read back different bytes".into()));
        }
        deleted
    }

    async fn remove_quietly(&self, path: &Path) {
        if let Err(error) = self.store.delete(path).await
            && !matches!(error, object_store::Error::NotFound { .. })
        {
            tracing::warn!(%path, %error, "could not remove a temporary upload");
        }
    }
}

/// `files/<owner>/<random>`: the shape of every key [`Blobs::put`] gives, letters, digits and
/// hyphens between the slashes (nothing that could climb out of the folder).
pub fn is_file_key(key: &str) -> bool {
    let parts: Vec<&str> = key.split('/').collect();
    parts.len() == 3
        && parts[0] == "files"
        && parts[1..].iter().all(|part| {
            !part.is_empty() && part.len() <= 64 && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

/// Removes the files in `dir` last changed before `cutoff`; returns how many went.
fn sweep_folder(dir: &std::path::Path, cutoff: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        let old = entry.metadata().ok().filter(|meta| meta.is_file()).and_then(|meta| meta.modified().ok());
        if old.is_some_and(|modified| modified < cutoff) {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(error) => {
                    tracing::warn!(path = %entry.path().display(), %error, "could not remove an interrupted upload")
                }
            }
        }
    }
    removed
}

/// A multipart upload that is aborted (its parts removed) when dropped unfinished: when the
/// client goes away mid-upload the request's future is dropped, not run to an error.
struct AbortOnDrop(Option<WriteMultipart>);

impl AbortOnDrop {
    async fn abort(&mut self) {
        if let Some(parts) = self.0.take()
            && let Err(error) = parts.abort().await
        {
            tracing::warn!(%error, "could not abort an upload");
        }
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        let Some(parts) = self.0.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = parts.abort().await {
                    tracing::warn!(%error, "could not abort a dropped upload");
                }
            });
        }
    }
}
