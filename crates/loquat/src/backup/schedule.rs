//! Scheduled backups (`LOQUAT_BACKUP__EVERY`, `__KEEP`, `__TO`): every node checks each minute
//! whether a backup is due; the one that moves the instance's next due time on (a conditional
//! write, so of replicas checking at once one wins) takes it, into a folder or an S3 prefix,
//! then removes the oldest archives beyond the number to keep. The outcome is written to the
//! store, so every node's `/readyz` and metrics tell the instance's last backup.

use std::path::PathBuf;
use std::time::Duration;

use loquat_core::Secret;
use loquat_core::store::AdminStore;
use loquat_core::time::Timestamp;
use loquat_files::Blobs;
use loquat_store::SqlStore;
use loquat_web::health::{BackupStatus, LastBackup};

use super::{BackupError, backup};

/// The instance's next backup time (unix milliseconds, zero-padded: compared as text).
const NEXT_DUE: &str = "backup.next_due";
/// The last backup's outcome ([`LastBackup`] as JSON).
const LAST: &str = "backup.last";
/// How often a node looks whether a backup is due.
const CHECK_EVERY: Duration = Duration::from_secs(60);
/// Gauges: when the last backup ended well (unix seconds), and whether the last one failed.
pub const LAST_SUCCESS_METRIC: &str = "loquat_backup_last_success_timestamp_seconds";
pub const LAST_FAILED_METRIC: &str = "loquat_backup_last_failed";

/// Where scheduled backups go.
#[derive(Debug, Clone)]
pub enum Destination {
    Folder(PathBuf),
    /// A prefix in a bucket (`s3://bucket/prefix`), reached with the instance's S3 settings.
    Bucket {
        blobs: Blobs,
        prefix: String,
    },
}

impl Destination {
    fn describe(&self) -> String {
        match self {
            Destination::Folder(path) => path.display().to_string(),
            Destination::Bucket { blobs, prefix } => format!("{} under {prefix}", blobs.backend()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub every: Duration,
    /// Archives kept (the newest); at least one.
    pub keep: usize,
    pub to: Destination,
    /// Where an archive for a bucket is written before it is sent.
    pub staging: PathBuf,
}

fn publish(status: &BackupStatus, last: LastBackup) {
    if let Some(success) = last.last_success_at {
        metrics::gauge!(LAST_SUCCESS_METRIC).set(success as f64 / 1000.0);
    }
    metrics::gauge!(LAST_FAILED_METRIC).set(if last.ok { 0.0 } else { 1.0 });
    status.set(last);
}

fn padded(millis: i64) -> String {
    format!("{:020}", millis.max(0))
}

/// Runs the schedule until the task is dropped.
pub async fn run(schedule: Schedule, store: SqlStore, blobs: Blobs, secret: Secret, status: BackupStatus) {
    tracing::info!(every = ?schedule.every, keep = schedule.keep, to = %schedule.to.describe(), "scheduled backups");
    loop {
        if let Err(error) = tick(&schedule, &store, &blobs, &secret, &status).await {
            tracing::warn!(%error, "could not check whether a backup is due");
        }
        tokio::time::sleep(CHECK_EVERY.min(schedule.every)).await;
    }
}

/// One check: takes the backup when it is due and this node wins it; refreshes the status.
pub async fn tick(
    schedule: &Schedule,
    store: &SqlStore,
    blobs: &Blobs,
    secret: &Secret,
    status: &BackupStatus,
) -> Result<(), BackupError> {
    let now = Timestamp::now().as_millis();
    let next = now + schedule.every.as_millis() as i64;
    if store.advance_setting(NEXT_DUE, &padded(now), &padded(next)).await? {
        let previous = read_last(store).await?;
        let outcome = take(schedule, store, blobs, secret).await;
        let last = LastBackup {
            at: Timestamp::now().as_millis(),
            ok: outcome.is_ok(),
            last_success_at: if outcome.is_ok() {
                Some(Timestamp::now().as_millis())
            } else {
                previous.and_then(|previous| previous.last_success_at)
            },
            bytes: outcome.as_ref().map_or(0, |bytes| *bytes),
        };
        match &outcome {
            Ok(bytes) => tracing::info!(bytes, "scheduled backup written"),
            Err(error) => tracing::error!(%error, "scheduled backup failed"),
        }
        let json = serde_json::to_string(&last).unwrap_or_default();
        store.set_setting(LAST, &json).await?;
    }
    if let Some(last) = read_last(store).await? {
        publish(status, last);
    }
    Ok(())
}

async fn read_last(store: &SqlStore) -> Result<Option<LastBackup>, BackupError> {
    Ok(store.get_setting(LAST).await?.and_then(|json| serde_json::from_str(&json).ok()))
}

/// Writes one archive to the destination and prunes; returns its size.
async fn take(schedule: &Schedule, store: &SqlStore, blobs: &Blobs, secret: &Secret) -> Result<u64, BackupError> {
    match &schedule.to {
        Destination::Folder(folder) => {
            std::fs::create_dir_all(folder).map_err(super::io_error(folder))?;
            let written = backup(store, blobs, secret, folder).await?;
            prune_folder(folder, schedule.keep)?;
            Ok(written.bytes)
        }
        Destination::Bucket { blobs: bucket, prefix } => {
            std::fs::create_dir_all(&schedule.staging).map_err(super::io_error(&schedule.staging))?;
            let written = backup(store, blobs, secret, &schedule.staging).await?;
            let sent = send(bucket, prefix, &written.path).await;
            let _ = std::fs::remove_file(&written.path);
            sent?;
            prune_bucket(bucket, prefix, schedule.keep).await?;
            Ok(written.bytes)
        }
    }
}

fn is_archive_name(name: &str) -> bool {
    name.starts_with("loquat-backup-") && name.ends_with(".zip")
}

/// Removes the oldest archives in `folder` beyond `keep` (their names sort by time), and what a
/// crash left half-written more than a day ago; nothing else in the folder is touched.
fn prune_folder(folder: &std::path::Path, keep: usize) -> Result<(), BackupError> {
    let names: Vec<String> = std::fs::read_dir(folder)
        .map_err(super::io_error(folder))?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .collect();
    let day_ago = std::time::SystemTime::now() - Duration::from_secs(24 * 3600);
    for name in names.iter().filter(|name| name.strip_suffix(".partial").is_some_and(is_archive_name)) {
        let path = folder.join(name);
        let modified = std::fs::metadata(&path).and_then(|meta| meta.modified());
        if modified.is_ok_and(|modified| modified < day_ago) {
            let _ = std::fs::remove_file(&path);
        }
    }
    let mut names: Vec<String> = names.into_iter().filter(|name| is_archive_name(name)).collect();
    names.sort();
    let extra = names.len().saturating_sub(keep.max(1));
    for name in &names[..extra] {
        let path = folder.join(name);
        std::fs::remove_file(&path).map_err(super::io_error(&path))?;
    }
    Ok(())
}

async fn send(bucket: &Blobs, prefix: &str, path: &std::path::Path) -> Result<(), BackupError> {
    let name = path.file_name().and_then(|name| name.to_str()).unwrap_or("loquat-backup.zip");
    let file = tokio::fs::File::open(path).await.map_err(super::io_error(path))?;
    let key = format!("{}/{name}", prefix.trim_end_matches('/'));
    bucket.put_object(key.trim_start_matches('/'), tokio_util::io::ReaderStream::new(file)).await?;
    Ok(())
}

async fn prune_bucket(bucket: &Blobs, prefix: &str, keep: usize) -> Result<(), BackupError> {
    let mut keys: Vec<String> = bucket
        .list(prefix)
        .await?
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| is_archive_name(key.rsplit('/').next().unwrap_or_default()))
        .collect();
    keys.sort();
    let extra = keys.len().saturating_sub(keep.max(1));
    for key in &keys[..extra] {
        bucket.delete(key).await?;
    }
    Ok(())
}

/// `24h`, `90m`, `7d`, `3600s` (or plain seconds).
pub fn parse_every(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let number: u64 = number.parse().ok().filter(|n| *n > 0)?;
    let seconds = match unit.trim() {
        "" | "s" => number,
        "m" => number.checked_mul(60)?,
        "h" => number.checked_mul(3600)?,
        "d" => number.checked_mul(86_400)?,
        _ => return None,
    };
    Some(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals_read_with_their_units() {
        assert_eq!(parse_every("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_every("90m"), Some(Duration::from_secs(5_400)));
        assert_eq!(parse_every("7d"), Some(Duration::from_secs(604_800)));
        assert_eq!(parse_every("30"), Some(Duration::from_secs(30)));
        assert_eq!(parse_every("0h"), None);
        assert_eq!(parse_every("weekly"), None);
        assert_eq!(parse_every("5 h"), Some(Duration::from_secs(18_000)));
    }

    #[test]
    fn due_times_compare_as_text() {
        assert!(padded(999) < padded(1_000));
        assert!(padded(1_733_000_000_000) < padded(10_000_000_000_000));
    }
}
