//! Files users upload: the record the store keeps (the bytes live in file storage under
//! `storage_key`).

use crate::id::{FileId, UserId};
use crate::time::Timestamp;

/// The longest file name kept, in characters; longer names are cut (keeping the extension).
pub const MAX_FILE_NAME_CHARS: usize = 255;

/// One uploaded file. An owner has at most one file per content hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    pub id: FileId,
    pub user_id: UserId,
    /// The name as the user gave it, made safe by [`file_name`].
    pub name: String,
    /// The type detected from the content (not from the name), e.g. `application/pdf`.
    pub mime: String,
    pub size: u64,
    /// Lower-case hex SHA-256 of the content.
    pub sha256: String,
    /// Where the bytes are in file storage.
    pub storage_key: String,
    pub created_at: Timestamp,
}

/// A file name safe to keep and show: the last path component (a name with `/` or `\` keeps
/// what follows the last one), without control characters, trimmed, at most
/// [`MAX_FILE_NAME_CHARS`] characters (the extension kept when cut); `file` when nothing is left.
/// It is still text from a stranger: pages escape it, downloads quote it.
pub fn file_name(raw: &str) -> String {
    let last = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let clean: String = last.chars().filter(|c| !c.is_control()).collect();
    let clean = clean.trim().trim_start_matches('.').trim();
    if clean.is_empty() {
        return "file".to_owned();
    }
    if clean.chars().count() <= MAX_FILE_NAME_CHARS {
        return clean.to_owned();
    }
    let extension = clean.rsplit_once('.').map(|(_, ext)| ext).filter(|ext| ext.chars().count() <= 16);
    let keep = MAX_FILE_NAME_CHARS - extension.map_or(0, |ext| ext.chars().count() + 1);
    let stem: String = clean.chars().take(keep).collect();
    match extension {
        Some(ext) => format!("{stem}.{ext}"),
        None => stem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_made_safe() {
        assert_eq!(file_name("report.pdf"), "report.pdf");
        assert_eq!(file_name("../../etc/passwd"), "passwd");
        assert_eq!(file_name("C:\\Users\\me\\年报 2025.pdf"), "年报 2025.pdf");
        assert_eq!(file_name("a\u{0}b\nc.txt"), "abc.txt");
        assert_eq!(file_name("  "), "file");
        assert_eq!(file_name("dir/"), "file");
        assert_eq!(file_name(".."), "file");
        assert_eq!(file_name(".hidden"), "hidden");
        let long = format!("{}.docx", "名".repeat(300));
        let cut = file_name(&long);
        assert_eq!(cut.chars().count(), MAX_FILE_NAME_CHARS);
        assert!(cut.ends_with(".docx"));
        assert_eq!(file_name(&"x".repeat(300)).chars().count(), MAX_FILE_NAME_CHARS);
        // HTML is kept as text; escaping is the page's job.
        assert_eq!(file_name("<img src=x onerror=alert(1)>.png"), "<img src=x onerror=alert(1)>.png");
    }
}
