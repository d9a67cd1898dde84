//! `loquat backup` and `loquat restore`: everything an instance holds — every table of the
//! database, whichever backend, and every file's bytes, whichever storage — in one archive
//! ([`archive`]), taken while the server runs, and put back into an empty instance of either
//! backend (SQLite → PostgreSQL is how a person grows into a company deployment).
//!
//! A backup reads the database in one snapshot (`loquat_store::dump`), then copies the bytes of
//! the files that snapshot holds. It is written beside its destination as `….partial` and
//! renamed when whole, so a name never holds half an archive. A restore checks everything
//! before it writes anything: the archive is whole, it was signed with this instance's
//! `KEY_VAULTS_SECRET` (the stored API keys are encrypted with it), every entry has the hash
//! the manifest gives, the target database is empty and of the backup's schema (or new). Then
//! it puts the files back, writes every row in one transaction and applies the migrations
//! newer than the backup's.
//!
//! The archive and the database are blocking work: each runs on a blocking thread, which waits
//! on the store and file storage through the runtime's handle.

pub mod archive;
pub mod schedule;

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::StreamExt;
use loquat_core::Secret;
use loquat_core::store::{Store, StoreError};
use loquat_core::time::Timestamp;
use loquat_files::{BlobError, Blobs};
use loquat_store::dump::{self, Cell, Column, Restore, RestoreRefused};
use loquat_store::{SqlStore, StoreOptions};
use tokio::runtime::Handle;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipArchive, ZipWriter};

use archive::{ColumnEntry, FileEntry, Hashing, Manifest, TableEntry};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the backup cannot be used: {0}; nothing was restored")]
    Damaged(String),
    #[error(
        "the backup was made with another KEY_VAULTS_SECRET: set the secret of the instance it came from (its stored API keys are encrypted with it); nothing was restored"
    )]
    OtherSecret,
    #[error("{0}")]
    Refused(String),
    #[error("the database: {0}")]
    Store(#[from] StoreError),
    #[error("file storage: {0}")]
    Files(#[from] BlobError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("the archive: {0}")]
    Zip(#[from] zip::result::ZipError),
}

impl From<RestoreRefused> for BackupError {
    fn from(refused: RestoreRefused) -> Self {
        match refused {
            RestoreRefused::Store(error) => BackupError::Store(error),
            other => BackupError::Refused(other.to_string()),
        }
    }
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io { path: path.display().to_string(), source }
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct BackupSummary {
    pub path: PathBuf,
    pub rows: u64,
    pub files: usize,
    /// Files deleted between the snapshot and their copy (their records are kept).
    pub missing_files: usize,
    /// The archive's size.
    pub bytes: u64,
}

/// What a restore put back.
#[derive(Debug, Clone)]
pub struct RestoreSummary {
    pub rows: u64,
    pub files: usize,
    /// When the backup was taken (unix milliseconds).
    pub taken_at: i64,
}

/// The archive a backup to `to` writes: `to` itself, or a new name in `to` when it is a folder.
pub fn archive_path(to: &Path, now: Timestamp) -> PathBuf {
    if to.is_dir() {
        // Names sort by time (the schedule keeps the newest by name).
        let stamp = now.to_jiff().strftime("%Y%m%d-%H%M%S");
        to.join(format!("loquat-backup-{stamp}-{:03}.zip", now.as_millis().rem_euclid(1000)))
    } else {
        to.to_owned()
    }
}

/// Backs up `store` and `blobs` into a new archive at `to` (a file that must not exist yet, or
/// a folder to write a dated one into), signed with `secret`.
pub async fn backup(store: &SqlStore, blobs: &Blobs, secret: &Secret, to: &Path) -> Result<BackupSummary, BackupError> {
    let path = archive_path(to, Timestamp::now());
    if path.exists() {
        return Err(BackupError::Refused(format!("{} already exists: choose a new name", path.display())));
    }
    let mut partial = path.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    // Only the owner reads it: it holds conversations, files and password hashes.
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&partial).map_err(io_error(&partial))?;
    let (store, blobs, secret, handle) = (store.clone(), blobs.clone(), secret.clone(), Handle::current());
    let written = tokio::task::spawn_blocking(move || write_archive(&handle, &store, &blobs, &secret, file))
        .await
        .unwrap_or_else(|error| Err(BackupError::Refused(format!("the backup stopped: {error}"))));
    let manifest = match written {
        Ok(manifest) => manifest,
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            return Err(error);
        }
    };
    std::fs::rename(&partial, &path).map_err(io_error(&path))?;
    let bytes = std::fs::metadata(&path).map_err(io_error(&path))?.len();
    Ok(BackupSummary {
        path,
        rows: manifest.tables.iter().map(|table| table.rows).sum(),
        files: manifest.files.len(),
        missing_files: manifest.missing_files.len(),
        bytes,
    })
}

fn write_archive(
    rt: &Handle,
    store: &SqlStore,
    blobs: &Blobs,
    secret: &Secret,
    file: File,
) -> Result<Manifest, BackupError> {
    let mut zip = ZipWriter::new(BufWriter::with_capacity(256 * 1024, file));
    let deflated = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated).large_file(true);
    let stored = SimpleFileOptions::default().compression_method(CompressionMethod::Stored).large_file(true);
    let mut snapshot = rt.block_on(store.snapshot())?;
    let mut manifest = Manifest {
        format: archive::FORMAT.into(),
        version: archive::VERSION,
        created_at: Timestamp::now().as_millis(),
        loquat: env!("CARGO_PKG_VERSION").into(),
        schema: rt.block_on(snapshot.schema_version())?,
        backend: store.backend_name().into(),
        key_check: archive::key_check(secret),
        tables: Vec::new(),
        files: Vec::new(),
        missing_files: Vec::new(),
    };
    let mut file_keys = Vec::new();
    for &table in dump::TABLES {
        let columns = rt.block_on(snapshot.columns(table))?;
        let key_at = (table == "files").then(|| columns.iter().position(|c| c.name == "storage_key")).flatten();
        zip.start_file(archive::table_entry(table), deflated)?;
        let mut out = Hashing::new(&mut zip);
        let mut rows = 0;
        let mut stream = snapshot.rows(table, &columns);
        while let Some(row) = rt.block_on(stream.next()) {
            let row = row?;
            if let Some(Cell::Text(key)) = key_at.map(|at| &row[at]) {
                file_keys.push(key.clone());
            }
            archive::write_row(&mut out, &row).map_err(|source| BackupError::Io { path: table.into(), source })?;
            rows += 1;
        }
        drop(stream);
        let (sha256, _) = out.finish();
        let columns = columns.iter().map(|c| ColumnEntry { name: c.name.clone(), kind: c.kind.as_str().into() });
        manifest.tables.push(TableEntry { name: table.into(), columns: columns.collect(), rows, sha256 });
    }
    // The snapshot ends before the files are copied (a long read would hold the database's log).
    drop(snapshot);
    for key in file_keys {
        let (size, mut content) = match rt.block_on(blobs.get(&key)) {
            Ok(found) => found,
            Err(BlobError::NotFound) => {
                manifest.missing_files.push(key);
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        zip.start_file(archive::blob_entry(&key), stored)?;
        let mut out = Hashing::new(&mut zip);
        while let Some(piece) = rt.block_on(content.next()) {
            out.write_all(&piece?).map_err(io_error(Path::new(&key)))?;
        }
        let (sha256, written) = out.finish();
        if written != size {
            return Err(BackupError::Files(BlobError::Storage(format!("{key} changed while it was copied"))));
        }
        manifest.files.push(FileEntry { key, size, sha256 });
    }
    let body = serde_json::to_vec_pretty(&manifest).map_err(|error| BackupError::Refused(error.to_string()))?;
    zip.start_file(archive::MANIFEST, deflated)?;
    zip.write_all(&body).map_err(io_error(Path::new(archive::MANIFEST)))?;
    zip.start_file(archive::SIGNATURE, deflated)?;
    zip.write_all(archive::sign(secret, &body).as_bytes()).map_err(io_error(Path::new(archive::SIGNATURE)))?;
    let file = zip
        .finish()?
        .into_inner()
        .map_err(|error| BackupError::Io { path: "the archive".into(), source: error.into_error() })?;
    file.sync_all().map_err(io_error(Path::new("the archive")))?;
    Ok(manifest)
}

/// Reads and checks the archive at `from`: whole, signed with `secret`, every entry as the
/// manifest says. Writes nothing.
pub async fn verify(from: &Path, secret: &Secret) -> Result<Manifest, BackupError> {
    let (from, secret) = (from.to_owned(), secret.clone());
    tokio::task::spawn_blocking(move || {
        let mut zip = open_archive(&from)?;
        verified(&mut zip, &secret)
    })
    .await
    .unwrap_or_else(|error| Err(BackupError::Refused(format!("the check stopped: {error}"))))
}

fn open_archive(from: &Path) -> Result<ZipArchive<BufReader<File>>, BackupError> {
    let file = File::open(from).map_err(io_error(from))?;
    ZipArchive::new(BufReader::new(file))
        .map_err(|_| BackupError::Damaged("it is not a whole zip archive (cut short, or not a backup)".into()))
}

fn read_entry(zip: &mut ZipArchive<BufReader<File>>, name: &str) -> Result<Vec<u8>, BackupError> {
    let mut entry = zip.by_name(name).map_err(|_| BackupError::Damaged(format!("{name} is missing")))?;
    let mut bytes = Vec::new();
    entry.read_to_end(&mut bytes).map_err(|_| BackupError::Damaged(format!("{name} does not read")))?;
    Ok(bytes)
}

fn verified(zip: &mut ZipArchive<BufReader<File>>, secret: &Secret) -> Result<Manifest, BackupError> {
    let body = read_entry(zip, archive::MANIFEST)?;
    let signature = read_entry(zip, archive::SIGNATURE)?;
    let manifest = archive::verified_manifest(secret, &body, &signature)?;
    let entries = manifest
        .tables
        .iter()
        .map(|table| (table.entry_name(), table.sha256.as_str(), None))
        .chain(manifest.files.iter().map(|file| (file.entry_name(), file.sha256.as_str(), Some(file.size))));
    for (name, sha256, size) in entries {
        let entry = zip.by_name(&name).map_err(|_| BackupError::Damaged(format!("{name} is missing")))?;
        let (found, bytes) =
            archive::hash_all(entry).map_err(|_| BackupError::Damaged(format!("{name} does not read")))?;
        if found != sha256 || size.is_some_and(|size| size != bytes) {
            return Err(BackupError::Damaged(format!("{name} is not what was backed up (changed)")));
        }
    }
    for file in &manifest.files {
        if !loquat_files::is_file_key(&file.key) {
            return Err(BackupError::Damaged(format!("{:?} is not a file's key", file.key)));
        }
    }
    Ok(manifest)
}

/// Restores the archive at `from` into the empty store of `target` and into `blobs`, after
/// checking it with `secret`.
pub async fn restore(
    from: &Path,
    target: &StoreOptions,
    blobs: &Blobs,
    secret: &Secret,
) -> Result<RestoreSummary, BackupError> {
    let (from, target, blobs, secret, handle) =
        (from.to_owned(), target.clone(), blobs.clone(), secret.clone(), Handle::current());
    tokio::task::spawn_blocking(move || restore_archive(&handle, &from, &target, &blobs, &secret))
        .await
        .unwrap_or_else(|error| Err(BackupError::Refused(format!("the restore stopped: {error}"))))
}

fn restore_archive(
    rt: &Handle,
    from: &Path,
    target: &StoreOptions,
    blobs: &Blobs,
    secret: &Secret,
) -> Result<RestoreSummary, BackupError> {
    let mut zip = open_archive(from)?;
    let manifest = verified(&mut zip, secret)?;
    let mut restore = rt.block_on(dump::open_for_restore(target, manifest.schema))?;
    // Every table's columns match before anything is written.
    let mut plans = Vec::new();
    for table in &manifest.tables {
        let theirs = table.columns()?;
        let ours = rt.block_on(restore.columns(&table.name))?;
        plans.push((table, theirs.clone(), column_order(&table.name, &theirs, &ours)?));
    }
    let mut written = Vec::new();
    let result: Result<(SqlStore, u64), BackupError> = (|| {
        for file in &manifest.files {
            let entry = zip.by_name(&file.entry_name())?;
            rt.block_on(blobs.put_as(&file.key, pieces(entry), u64::MAX))?;
            written.push(file.key.clone());
        }
        let mut rows = 0;
        for (table, theirs, order) in &plans {
            rows += restore_table(rt, &mut restore, &mut zip, table, theirs, order)?;
        }
        Ok((rt.block_on(restore.commit())?, rows))
    })();
    match result {
        Ok((store, rows)) => {
            rt.block_on(store.complete_restore())?;
            rt.block_on(store.close());
            Ok(RestoreSummary { rows, files: written.len(), taken_at: manifest.created_at })
        }
        Err(error) => {
            // The rows were never committed; the files put back go too.
            for key in written {
                let _ = rt.block_on(blobs.delete(&key));
            }
            Err(error)
        }
    }
}

/// For each of the target's columns, where its value is in the archive's rows; the two must
/// have the same columns of the same kinds.
fn column_order(table: &str, theirs: &[Column], ours: &[Column]) -> Result<(Vec<Column>, Vec<usize>), BackupError> {
    if theirs.len() != ours.len() {
        return Err(BackupError::Refused(format!("{table} has other columns here than in the backup")));
    }
    let mut order = Vec::with_capacity(ours.len());
    for column in ours {
        let at = theirs.iter().position(|their| their.name == column.name && their.kind == column.kind).ok_or_else(
            || BackupError::Refused(format!("{table}.{} is not in the backup as it is here", column.name)),
        )?;
        order.push(at);
    }
    Ok((ours.to_vec(), order))
}

fn restore_table(
    rt: &Handle,
    restore: &mut Restore,
    zip: &mut ZipArchive<BufReader<File>>,
    table: &TableEntry,
    theirs: &[Column],
    (ours, order): &(Vec<Column>, Vec<usize>),
) -> Result<u64, BackupError> {
    let entry = zip.by_name(&table.entry_name())?;
    let mut lines = BufReader::with_capacity(256 * 1024, entry);
    let batch_rows = Restore::batch_rows(ours.len());
    let mut batch = Vec::with_capacity(batch_rows);
    let mut line = String::new();
    let mut rows = 0;
    loop {
        line.clear();
        let read =
            lines.read_line(&mut line).map_err(|_| BackupError::Damaged(format!("{} does not read", table.name)))?;
        if read > 0 {
            let mut row = archive::read_row(line.trim_end_matches('\n'), theirs)
                .map_err(|error| BackupError::Damaged(format!("{}: {error}", table.name)))?;
            batch.push(order.iter().map(|&at| std::mem::replace(&mut row[at], Cell::Null)).collect());
            rows += 1;
        }
        if batch.len() == batch_rows || (read == 0 && !batch.is_empty()) {
            rt.block_on(restore.insert(&table.name, ours, &batch))?;
            batch.clear();
        }
        if read == 0 {
            break;
        }
    }
    if rows != table.rows {
        return Err(BackupError::Damaged(format!("{} has {rows} rows, not {}", table.name, table.rows)));
    }
    Ok(rows)
}

/// An archive entry's bytes as the stream file storage takes (read on the blocking thread that
/// polls it).
fn pieces(mut entry: impl Read + Send) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let mut done = false;
    futures_util::stream::iter(std::iter::from_fn(move || {
        if done {
            return None;
        }
        let mut buffer = vec![0; 1024 * 1024];
        match entry.read(&mut buffer) {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some(Ok(Bytes::from(buffer)))
            }
            Err(error) => {
                done = true;
                Some(Err(error))
            }
        }
    }))
}

/// `loquat backup --to PATH`: the configured instance (its database and file storage), while
/// it may be serving.
pub async fn backup_instance(config: &crate::Config, to: &Path) -> Result<BackupSummary, String> {
    crate::install_crypto_provider();
    let (_, secret) = crate::vault::open(config).map_err(|error| error.to_string())?;
    let store = loquat_store::open(&crate::store_options(config)).await.map_err(|error| error.to_string())?;
    let blobs = config.blobs().map_err(|error| error.to_string())?;
    let written = backup(&store, &blobs, &secret, to).await.map_err(|error| error.to_string());
    store.close().await;
    written
}

/// `loquat restore --from PATH`: into the configured instance, which must be empty. The key
/// secret must be the backed-up instance's: it is never generated here.
pub async fn restore_instance(config: &crate::Config, from: &Path) -> Result<RestoreSummary, String> {
    crate::install_crypto_provider();
    let secret = crate::vault::existing(config).map_err(|error| error.to_string())?.ok_or_else(|| {
        "no key secret: set KEY_VAULTS_SECRET to the secret of the instance the backup came from \
         (or copy its data folder's key_vaults_secret file into this data folder)"
            .to_owned()
    })?;
    std::fs::create_dir_all(&config.data_dir).map_err(|error| format!("{}: {error}", config.data_dir.display()))?;
    let blobs = config.blobs().map_err(|error| error.to_string())?;
    restore(from, &crate::store_options(config), &blobs, &secret).await.map_err(|error| error.to_string())
}

/// `loquat restore --from PATH --check`: reads and checks the archive with the configured key
/// secret, writing nothing.
pub async fn check_archive(config: &crate::Config, from: &Path) -> Result<Manifest, String> {
    let secret = crate::vault::existing(config)
        .map_err(|error| error.to_string())?
        .ok_or_else(|| "no key secret: set KEY_VAULTS_SECRET to the secret of the backed-up instance".to_owned())?;
    verify(from, &secret).await.map_err(|error| error.to_string())
}
