//! House rules checked by machine: every Rust file opens with a `//!` header saying what it
//! owns, and no file grows past the size where it should be split.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;

fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_file_has_a_header_and_a_sane_length() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates folder");
    let mut files = Vec::new();
    for krate in std::fs::read_dir(crates).expect("crates") {
        let krate = krate.expect("entry").path();
        for dir in ["src", "tests"] {
            if krate.join(dir).is_dir() {
                rust_files(&krate.join(dir), &mut files);
            }
        }
    }
    assert!(files.len() > 40, "found the sources");
    let mut problems = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("utf-8 source");
        if !text.starts_with("//!") {
            problems.push(format!("{}: does not start with a //! header", file.display()));
        }
        let lines = text.lines().count();
        if lines > MAX_LINES {
            problems.push(format!("{}: {lines} lines (split it below {MAX_LINES})", file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
