//! Users' files: uploads streamed into file storage (`loquat_files::Blobs`) under the size
//! limit, their type read from their content, one record per owner and content; listing,
//! reading and deleting by their owner only.

use bytes::Bytes;
use futures_util::Stream;
use futures_util::stream::BoxStream;
use loquat_files::{BlobError, Blobs};

use crate::domain::file::file_name;
use crate::domain::{StoredFile, User};
use crate::error::{CoreError, CoreResult};
use crate::id::{FileId, UserId};
use crate::store::{FileInsert, Store};
use crate::time::Timestamp;

use super::Instance;
use std::sync::Arc;

#[derive(Clone)]
pub struct Files {
    store: Arc<dyn Store>,
    blobs: Blobs,
    max_bytes: u64,
    /// The storage quotas.
    instance: Instance,
    /// Wakes the document reader when a document was stored.
    reader_wake: Arc<tokio::sync::Notify>,
}

/// A file's bytes on their way to the client.
pub struct FileContent {
    pub file: StoredFile,
    pub body: BoxStream<'static, Result<Bytes, BlobError>>,
}

impl Files {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: Blobs,
        max_bytes: u64,
        instance: Instance,
        reader_wake: Arc<tokio::sync::Notify>,
    ) -> Self {
        Self { store, blobs, max_bytes, instance, reader_wake }
    }

    /// What the user's files hold, and their storage quota in MiB (`None`: no quota).
    pub async fn storage(&self, owner: &User) -> CoreResult<(u64, Option<u64>)> {
        let quota = self.instance.quota(owner).await?;
        Ok((self.store.user_file_bytes(owner.id).await?, quota.storage_mb))
    }

    /// The largest file a user may upload, in bytes.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// Stores `content` as `user`'s file `name`; `true` with a new file. The same content
    /// uploaded again returns the file already kept, with `false` (and keeps nothing new). Past
    /// the size limit or what the storage quota has left, empty, or cut off: an error, and
    /// nothing is kept. The quota is checked again as the file is recorded, one upload of the
    /// user at a time, so uploads racing for its last bytes cannot both pass it.
    pub async fn upload<S, E>(&self, owner: &User, name: &str, content: S) -> CoreResult<(StoredFile, bool)>
    where
        S: Stream<Item = Result<Bytes, E>> + Send,
        E: std::fmt::Display,
    {
        let mut limit = self.max_bytes;
        // The quota in MiB, when it (not the file size limit) bounds this upload.
        let mut quota_bound = None;
        let user = owner.id;
        let quota_mb = self.instance.quota(owner).await?.storage_mb;
        if let Some(quota_mb) = quota_mb {
            let used = self.store.user_file_bytes(user).await?;
            let remaining = quota_mb.saturating_mul(1024 * 1024).saturating_sub(used);
            if remaining == 0 {
                return Err(storage_full(quota_mb));
            }
            if remaining < limit {
                limit = remaining;
                quota_bound = Some(quota_mb);
            }
        }
        let stored = match self.blobs.put(&user.to_string(), content, limit).await {
            Ok(stored) => stored,
            Err(BlobError::TooLarge { .. }) if let Some(quota_mb) = quota_bound => return Err(storage_full(quota_mb)),
            Err(error) => {
                log_storage(&error);
                return Err(error.into());
            }
        };
        let name = file_name(name);
        let file = StoredFile {
            id: FileId::new(),
            user_id: user,
            mime: content_type(&stored.head, &name),
            name,
            size: stored.size,
            sha256: stored.sha256,
            storage_key: stored.key,
            created_at: Timestamp::now(),
        };
        let quota_bytes = quota_mb.map(|mb| mb.saturating_mul(1024 * 1024));
        // A document is read in the background at once, so it is ready when it is asked about.
        let ingest = loquat_docs::Format::of(&file.mime, &file.name).is_some();
        let outcome = self.store.insert_file(&file, quota_bytes, ingest).await;
        match outcome {
            Ok(FileInsert::Inserted) => {
                if ingest {
                    self.reader_wake.notify_one();
                }
                Ok((file, true))
            }
            Ok(FileInsert::Existing(existing)) => {
                self.remove_bytes(&file.storage_key).await;
                Ok((existing, false))
            }
            Ok(FileInsert::OverQuota) => {
                self.remove_bytes(&file.storage_key).await;
                Err(storage_full(quota_mb.unwrap_or_default()))
            }
            Err(error) => {
                self.remove_bytes(&file.storage_key).await;
                Err(error.into())
            }
        }
    }

    /// The user's files, newest first.
    pub async fn list(&self, user: UserId) -> CoreResult<Vec<StoredFile>> {
        Ok(self.store.list_files(user).await?)
    }

    /// The user's files, newest first, each with the number of messages it is attached to.
    pub async fn list_with_uses(&self, user: UserId) -> CoreResult<Vec<(StoredFile, u64)>> {
        let (files, uses) = tokio::join!(self.store.list_files(user), self.store.file_message_counts(user));
        let uses: std::collections::HashMap<FileId, u64> = uses?.into_iter().collect();
        Ok(files?
            .into_iter()
            .map(|file| {
                let count = uses.get(&file.id).copied().unwrap_or(0);
                (file, count)
            })
            .collect())
    }

    pub async fn get(&self, user: UserId, id: FileId) -> CoreResult<StoredFile> {
        self.store.get_file(user, id).await?.ok_or(CoreError::NotFound("file"))
    }

    /// The file with its bytes, streamed from storage.
    pub async fn content(&self, user: UserId, id: FileId) -> CoreResult<FileContent> {
        let file = self.get(user, id).await?;
        let (_, body) = self.blobs.get(&file.storage_key).await.inspect_err(log_storage)?;
        Ok(FileContent { file, body })
    }

    /// Deletes the file and its bytes.
    pub async fn delete(&self, user: UserId, id: FileId) -> CoreResult<StoredFile> {
        let file = self.store.delete_file(user, id).await?.ok_or(CoreError::NotFound("file"))?;
        self.remove_bytes(&file.storage_key).await;
        Ok(file)
    }

    /// Per person, how many files and bytes they keep, the largest first: administrators only.
    pub async fn admin_storage_report(&self, actor: UserId) -> CoreResult<Vec<(User, u64, u64)>> {
        super::admin_user(self.store.as_ref(), actor).await?;
        Ok(self.store.file_totals_by_user().await?)
    }

    /// Removes bytes no record names any more; a failure leaves an orphan object, logged.
    async fn remove_bytes(&self, key: &str) {
        if let Err(error) = self.blobs.delete(key).await {
            tracing::warn!(%key, %error, "could not remove a file's bytes from storage");
        }
    }
}

/// The storage quota (in MiB) has no room for the file.
fn storage_full(quota_mb: u64) -> CoreError {
    CoreError::Limited { code: "storage", detail: quota_mb.to_string() }
}

fn log_storage(error: &BlobError) {
    if let BlobError::Storage(detail) = error {
        tracing::error!(%detail, "file storage failed");
    }
}

/// The type of a file from its first bytes: a known signature (PDF, images, Office files,
/// archives…) whatever the name says; otherwise UTF-8 text is typed by its extension among the
/// text formats (`.md`, `.csv`, `.json`, `.html`…, else `text/plain`), and anything else is
/// `application/octet-stream`. A name cannot make a binary file pass as text, nor text as PDF.
pub fn content_type(head: &[u8], name: &str) -> String {
    if let Some(kind) = infer::get(head) {
        return kind.mime_type().to_owned();
    }
    if !looks_like_text(head) {
        return "application/octet-stream".to_owned();
    }
    let extension = name.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase()).unwrap_or_default();
    let mime = match extension.as_str() {
        "md" | "markdown" => "text/markdown",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "json" => "application/json",
        "html" | "htm" => "text/html",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        _ => "text/plain",
    };
    mime.to_owned()
}

/// UTF-8 (a character cut at the end of the sample is fine) without NUL bytes.
fn looks_like_text(head: &[u8]) -> bool {
    if head.contains(&0) {
        return false;
    }
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(error) => error.error_len().is_none() && head.len() - error.valid_up_to() < 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_come_from_content_not_names() {
        assert_eq!(content_type(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "notes.txt"), "application/pdf");
        assert_eq!(content_type(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "photo.jpg"), "image/png");
        assert_eq!(content_type(b"hello, world", "fake.pdf"), "text/plain");
        assert_eq!(content_type("# 标题\n正文".as_bytes(), "README.md"), "text/markdown");
        assert_eq!(content_type(b"a,b\n1,2\n", "table.CSV"), "text/csv");
        assert_eq!(content_type(b"\x00\x01\x02binary", "data.txt"), "application/octet-stream");
        // A sample ending inside a character is still text.
        let cut = &"年报".as_bytes()[..4];
        assert_eq!(content_type(cut, "a.txt"), "text/plain");
        assert_eq!(content_type(b"\xff\xfe\xfd", "a.txt"), "application/octet-stream");
    }
}
