//! The backup archive: a zip of `tables/<table>.jsonl` (one JSON array of cells per row, in
//! the manifest's column order), `blobs/<key>` (each file's bytes, stored as they are) and
//! `manifest.json` (schema, tables with their columns, rows and SHA-256, files with theirs),
//! signed in `manifest.sig` with HMAC-SHA256 under a key derived from `KEY_VAULTS_SECRET`. The
//! manifest also carries a check value of the secret, so a restore with another secret is told
//! so before anything else; any other change of an entry or of the manifest breaks the
//! signature or an entry's hash.

use std::io::{self, Read, Write};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use loquat_core::Secret;
use loquat_store::dump::{Cell, Column, Kind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::BackupError;

pub const FORMAT: &str = "loquat-backup";
pub const VERSION: u32 = 1;
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";

/// What an archive holds, written last and read first.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    /// Unix milliseconds when the snapshot was taken.
    pub created_at: i64,
    /// The Loquat that wrote it.
    pub loquat: String,
    /// The newest migration of the database it came from.
    pub schema: i64,
    /// `sqlite` or `postgres`.
    pub backend: String,
    /// HMAC of a fixed text under the key secret: tells a wrong secret from a damaged archive.
    pub key_check: String,
    pub tables: Vec<TableEntry>,
    pub files: Vec<FileEntry>,
    /// Files whose record was in the snapshot but whose bytes were gone when they were copied
    /// (deleted meanwhile).
    #[serde(default)]
    pub missing_files: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub columns: Vec<ColumnEntry>,
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnEntry {
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FileEntry {
    pub key: String,
    pub size: u64,
    pub sha256: String,
}

impl TableEntry {
    pub fn entry_name(&self) -> String {
        table_entry(&self.name)
    }

    pub fn columns(&self) -> Result<Vec<Column>, BackupError> {
        self.columns
            .iter()
            .map(|column| {
                Kind::parse(&column.kind)
                    .map(|kind| Column::new(&column.name, kind))
                    .ok_or_else(|| BackupError::Damaged(format!("{}.{} has an unknown kind", self.name, column.name)))
            })
            .collect()
    }
}

impl FileEntry {
    pub fn entry_name(&self) -> String {
        blob_entry(&self.key)
    }
}

pub fn table_entry(table: &str) -> String {
    format!("tables/{table}.jsonl")
}

pub fn blob_entry(key: &str) -> String {
    format!("blobs/{key}")
}

/// The two keys derived from the secret: one signs manifests, one makes the check value.
struct Keys {
    signing: hmac::Key,
    check: String,
}

fn keys(secret: &Secret) -> Keys {
    let root = hmac::Key::new(hmac::HMAC_SHA256, secret.expose().trim().as_bytes());
    let signing = hmac::Key::new(hmac::HMAC_SHA256, hmac::sign(&root, b"loquat backup signature v1").as_ref());
    let check = hex::encode(hmac::sign(&root, b"loquat backup key check v1").as_ref());
    Keys { signing, check }
}

/// The check value of `secret`, for [`Manifest::key_check`].
pub fn key_check(secret: &Secret) -> String {
    keys(secret).check
}

/// The signature of a manifest's bytes.
pub fn sign(secret: &Secret, manifest: &[u8]) -> String {
    hex::encode(hmac::sign(&keys(secret).signing, manifest).as_ref())
}

/// Reads the manifest, refusing another secret's archive and a manifest not signed by it.
pub fn verified_manifest(secret: &Secret, manifest: &[u8], signature: &[u8]) -> Result<Manifest, BackupError> {
    #[derive(Deserialize)]
    struct Head {
        format: String,
        version: u32,
        key_check: String,
    }
    let head: Head = serde_json::from_slice(manifest)
        .map_err(|error| BackupError::Damaged(format!("its manifest does not read: {error}")))?;
    if head.format != FORMAT {
        return Err(BackupError::Damaged("it is not a Loquat backup".into()));
    }
    if head.version != VERSION {
        return Err(BackupError::Damaged(format!(
            "it has format version {}, this Loquat reads {VERSION}",
            head.version
        )));
    }
    let keys = keys(secret);
    if head.key_check != keys.check {
        return Err(BackupError::OtherSecret);
    }
    let signature = std::str::from_utf8(signature).ok().and_then(|text| hex::decode(text.trim()).ok());
    let signed = signature.is_some_and(|signature| hmac::verify(&keys.signing, manifest, &signature).is_ok());
    if !signed {
        return Err(BackupError::Damaged("its manifest is not the one this instance signed (changed)".into()));
    }
    serde_json::from_slice(manifest)
        .map_err(|error| BackupError::Damaged(format!("its manifest does not read: {error}")))
}

/// A writer that counts and hashes what passes through it.
pub struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Self { inner, hasher: Sha256::new(), bytes: 0 }
    }

    /// The lower-case hex SHA-256 and the size of everything written.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The SHA-256 and size of everything `reader` gives.
pub fn hash_all(mut reader: impl Read) -> io::Result<(String, u64)> {
    let mut hashing = Hashing::new(io::sink());
    io::copy(&mut reader, &mut hashing)?;
    Ok(hashing.finish())
}

/// Writes one row as a JSON array (bytes as base64) and a newline.
pub fn write_row(out: &mut impl Write, row: &[Cell]) -> io::Result<()> {
    out.write_all(b"[")?;
    for (at, cell) in row.iter().enumerate() {
        if at > 0 {
            out.write_all(b",")?;
        }
        match cell {
            Cell::Null => out.write_all(b"null")?,
            Cell::Int(value) => write!(out, "{value}")?,
            Cell::Bool(value) => out.write_all(if *value { b"true" } else { b"false" })?,
            Cell::Text(value) => serde_json::to_writer(&mut *out, value)?,
            Cell::Bytes(value) => serde_json::to_writer(&mut *out, &BASE64.encode(value))?,
        }
    }
    out.write_all(b"]\n")
}

/// Reads one row written by [`write_row`] for `columns`.
pub fn read_row(line: &str, columns: &[Column]) -> Result<Vec<Cell>, String> {
    let values: Vec<serde_json::Value> = serde_json::from_str(line).map_err(|error| error.to_string())?;
    if values.len() != columns.len() {
        return Err(format!("a row has {} values for {} columns", values.len(), columns.len()));
    }
    values
        .into_iter()
        .zip(columns)
        .map(|(value, column)| {
            use serde_json::Value;
            Ok(match (value, column.kind) {
                (Value::Null, _) => Cell::Null,
                (Value::Number(number), Kind::Int) => {
                    Cell::Int(number.as_i64().ok_or_else(|| format!("{}: {number} is not an integer", column.name))?)
                }
                (Value::String(text), Kind::Text) => Cell::Text(text),
                (Value::Bool(value), Kind::Bool) => Cell::Bool(value),
                (Value::String(text), Kind::Bytes) => {
                    Cell::Bytes(BASE64.decode(text).map_err(|_| format!("{}: bytes that are not base64", column.name))?)
                }
                (other, kind) => return Err(format!("{}: {other} is not {}", column.name, kind.as_str())),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_back_as_written() {
        let columns = [
            Column::new("a", Kind::Int),
            Column::new("b", Kind::Text),
            Column::new("c", Kind::Bool),
            Column::new("d", Kind::Bytes),
            Column::new("e", Kind::Text),
        ];
        let row = vec![
            Cell::Int(-9_007_199_254_740_993),
            Cell::Text("line\n\"quoted\" 中文".into()),
            Cell::Bool(true),
            Cell::Bytes(vec![0, 255, 7]),
            Cell::Null,
        ];
        let mut out = Vec::new();
        write_row(&mut out, &row).expect("writes");
        let line = String::from_utf8(out).expect("utf-8");
        assert_eq!(line.matches('\n').count(), 1, "one line per row");
        assert_eq!(read_row(line.trim_end(), &columns), Ok(row));
        assert!(read_row("[1,2]", &columns).is_err());
        assert!(read_row(r#"["1","x",true,"AA==",null]"#, &columns).is_err(), "a string is not an integer");
    }

    #[test]
    fn another_secret_and_a_changed_manifest_are_told_apart() {
        let secret = Secret::new("c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTEyMw==");
        let manifest = serde_json::to_vec(&Manifest {
            format: FORMAT.into(),
            version: VERSION,
            created_at: 1,
            loquat: "test".into(),
            schema: 22,
            backend: "sqlite".into(),
            key_check: key_check(&secret),
            tables: Vec::new(),
            files: Vec::new(),
            missing_files: Vec::new(),
        })
        .expect("serializes");
        let signature = sign(&secret, &manifest);
        assert!(verified_manifest(&secret, &manifest, signature.as_bytes()).is_ok());
        let other = Secret::new("b3RoZXItb3RoZXItb3RoZXItb3RoZXItb3RoZXItMTI=");
        assert!(matches!(verified_manifest(&other, &manifest, signature.as_bytes()), Err(BackupError::OtherSecret)));
        let mut changed = manifest.clone();
        let at = changed.windows(4).position(|w| w == b"\"22\"" || w == b":22,").expect("schema");
        changed[at + 1] = b'3';
        assert!(matches!(verified_manifest(&secret, &changed, signature.as_bytes()), Err(BackupError::Damaged(_))));
        assert!(matches!(verified_manifest(&secret, &manifest, b"00"), Err(BackupError::Damaged(_))));
    }
}
