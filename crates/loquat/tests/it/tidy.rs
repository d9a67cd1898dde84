//! House rules checked by machine: every Rust file opens with a `//!` header saying what it
//! owns, no file grows past the size where it should be split, and templates stay readable
//! HTML (short lines, two-space indentation) rather than minified by hand.

use std::path::{Path, PathBuf};

const MAX_LINES: usize = 800;
/// Longer template lines are elements that should be split over several lines.
const MAX_TEMPLATE_LINE: usize = 120;

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

#[test]
fn templates_are_formatted_html() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates folder");
    let mut templates = Vec::new();
    for krate in std::fs::read_dir(crates).expect("crates") {
        let folder = krate.expect("entry").path().join("templates");
        if folder.is_dir() {
            for entry in std::fs::read_dir(&folder).expect("templates folder") {
                templates.push(entry.expect("entry").path());
            }
        }
    }
    assert!(templates.len() > 20, "found the templates");
    let mut problems = Vec::new();
    for file in &templates {
        let text = std::fs::read_to_string(file).expect("utf-8 template");
        for (number, line) in text.lines().enumerate() {
            let place = format!("{}:{}", file.display(), number + 1);
            let length = line.chars().count();
            if length > MAX_TEMPLATE_LINE {
                problems.push(format!("{place}: {length} characters (split it below {MAX_TEMPLATE_LINE})"));
            }
            let indent = line.len() - line.trim_start().len();
            if line[..indent].contains('\t') || indent % 2 == 1 {
                problems.push(format!("{place}: indent with two spaces per level"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
