//! The deployment files and the README agree with what Loquat reads (`config::known_env_vars`):
//! the compose file sets only variables Loquat reads and has its services, the Dockerfile runs
//! unprivileged with a health check, and the README documents every setting's variable.

use std::path::PathBuf;

use loquat::config::{known_env_vars, provider_env_vars, settings_env_vars};

fn repo_file(name: &str) -> String {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    std::fs::read_to_string(root.join(name)).unwrap_or_else(|error| panic!("{name}: {error}"))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The compose file's services, each with its lines (a line-based reading of the two-space
/// layout the file uses; comments dropped).
fn compose_services(text: &str) -> Vec<(String, Vec<String>)> {
    let mut services: Vec<(String, Vec<String>)> = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        match indent(line) {
            0 => inside = trimmed == "services:",
            2 if inside => services.push((trimmed.trim_end_matches(':').to_owned(), Vec::new())),
            _ if inside => {
                if let Some((_, lines)) = services.last_mut() {
                    lines.push(line.to_owned());
                }
            }
            _ => {}
        }
    }
    services
}

/// The variable names under a service's `environment:` (map or list form).
fn environment(lines: &[String]) -> Vec<String> {
    let mut names = Vec::new();
    let mut block: Option<usize> = None;
    for line in lines {
        let trimmed = line.trim();
        if let Some(depth) = block {
            if indent(line) <= depth {
                block = None;
            } else {
                let item = trimmed.trim_start_matches("- ");
                let name = item.split([':', '=']).next().unwrap_or_default().trim();
                names.push(name.to_owned());
                continue;
            }
        }
        if trimmed == "environment:" {
            block = Some(indent(line));
        }
    }
    names
}

#[test]
fn the_compose_file_sets_only_variables_loquat_reads() {
    let text = repo_file("docker-compose.yml");
    let services = compose_services(&text);
    let names: Vec<&str> = services.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["loquat", "postgres", "redis", "minio", "minio-init"] {
        assert!(names.contains(&expected), "service {expected} missing: {names:?}");
    }
    let loquat = &services.iter().find(|(name, _)| name == "loquat").expect("loquat").1;
    assert!(loquat.iter().any(|line| line.trim() == "build: ."), "loquat is built from this folder");
    let set = environment(loquat);
    for required in ["DATABASE_URL", "REDIS_URL", "KEY_VAULTS_SECRET"] {
        assert!(set.iter().any(|name| name == required), "loquat gets {required}: {set:?}");
    }
    let known = known_env_vars();
    let unknown: Vec<&String> = set.iter().filter(|name| !known.contains(name)).collect();
    assert!(unknown.is_empty(), "the compose file sets variables Loquat does not read: {unknown:?}");
    let database = loquat.iter().find(|line| line.trim().starts_with("DATABASE_URL:")).expect("DATABASE_URL");
    assert!(database.contains("@postgres:5432/"), "{database}");
    assert!(loquat.iter().any(|line| line.contains("redis://redis:6379")));
    // The S3 names wait, commented, for the release that reads them.
    assert!(text.contains("# S3_ENDPOINT:"));
}

#[test]
fn the_line_reader_understands_both_environment_forms() {
    let text = "services:\n  app:\n    environment:\n      A: 1\n      # B: 2\n    ports:\n      - \"1:1\"\n  other:\n    environment:\n      - C=3\nvolumes:\n  x:\n";
    let services = compose_services(text);
    assert_eq!(services.iter().map(|(name, _)| name.as_str()).collect::<Vec<_>>(), ["app", "other"]);
    assert_eq!(environment(&services[0].1), ["A"]);
    assert_eq!(environment(&services[1].1), ["C"]);
}

#[test]
fn the_image_runs_unprivileged_with_a_health_check() {
    let text = repo_file("Dockerfile");
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|line| !line.starts_with('#')).collect();
    assert!(lines.iter().any(|line| line.starts_with("FROM rust:1.95-bookworm AS builder")));
    assert!(text.contains("cargo build --release --locked -p loquat"));
    let user = lines.iter().rev().find(|line| line.starts_with("USER ")).expect("a USER line");
    assert!(!matches!(user.trim_start_matches("USER ").trim(), "root" | "0"), "{user}");
    assert!(text.contains("--uid 10001"));
    assert!(lines.iter().any(|line| line.starts_with("HEALTHCHECK ") && line.contains("loquat\", \"healthcheck")));
    assert!(lines.contains(&"EXPOSE 3210"));
    assert!(lines.contains(&"VOLUME /data"));
    assert!(text.contains("LOQUAT_DATA_DIR=/data") && text.contains("LOQUAT_LISTEN=0.0.0.0:3210"));
    let ignored = repo_file(".dockerignore");
    for entry in ["target", "data", ".git"] {
        assert!(ignored.lines().any(|line| line.trim() == entry), ".dockerignore lacks {entry}");
    }
}

#[test]
fn the_readme_documents_every_variable_loquat_reads() {
    let readme = repo_file("README.md");
    let configuration = readme.split("\n## Configuration").nth(1).expect("a Configuration section");
    let configuration = configuration.split("\n## ").next().unwrap_or_default();
    let missing: Vec<String> =
        settings_env_vars().into_iter().filter(|name| !configuration.contains(&format!("`{name}`"))).collect();
    assert!(missing.is_empty(), "README's Configuration section does not document: {missing:?}");
    // Providers are documented by their prefix in the providers table.
    for entry in loquat_core::catalogue::catalogue() {
        assert!(configuration.contains(&format!("| `{}` |", entry.env)), "the providers table lacks {}", entry.env);
    }
    // And the README names no LOQUAT_ variable that Loquat does not read (a shell variable of an
    // example, `$LOQUAT_…`, is the reader's own; the tests and the benchmark have their own).
    let known = known_env_vars();
    let mut rest = readme.as_str();
    while let Some(start) = rest.find("LOQUAT_") {
        let shell_variable = rest[..start].ends_with('$') || rest[..start].ends_with("${");
        let tail = &rest[start..];
        let end =
            tail.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        assert!(
            shell_variable
                || known.iter().any(|known| known == name)
                || name.starts_with("LOQUAT_TEST_")
                || name.starts_with("LOQUAT_BENCH_"),
            "README names {name}, which Loquat does not read"
        );
        rest = &tail[end..];
    }
    assert!(provider_env_vars().contains(&"AZURE_ENDPOINT".to_owned()));
}
