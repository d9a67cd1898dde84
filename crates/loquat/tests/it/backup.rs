//! Backups and restores: a populated instance (branches, files, a knowledge base, tokens, own
//! keys, shares, audit) comes back row for row into a new instance of either backend and
//! serves it; a backup taken during writes restores consistently; a cut, changed or other
//! secret's archive is refused before anything is written; scheduled backups keep the newest
//! in a folder or a bucket and tell their outcome in `/readyz`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use loquat::Config;
use loquat::backup;
use loquat_core::Secret;
use loquat_store::StoreOptions;
use loquat_store::dump::TABLES;
use loquat_test_support::fake_openai::Reply;
use loquat_test_support::postgres::TestDatabase;
use serde_json::Value;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, TestOptions, eventually, temp_dir};

fn config_of(data_dir: &Path, database_url: Option<&str>, secret: Option<&Secret>) -> Config {
    Config {
        data_dir: data_dir.to_owned(),
        database_url: database_url.map(Secret::new),
        key_vaults_secret: secret.cloned(),
        ..Config::default()
    }
}

fn store_options(config: &Config) -> StoreOptions {
    loquat::store_options(config)
}

/// Every backed-up table's rows, each table's sorted.
async fn contents(options: &StoreOptions) -> Vec<(String, Vec<String>)> {
    let store = loquat_store::open(options).await.expect("opens");
    let mut snapshot = store.snapshot().await.expect("snapshot");
    let mut all = Vec::new();
    for &table in TABLES {
        let columns = snapshot.columns(table).await.expect("columns");
        let mut rows: Vec<String> =
            snapshot.rows(table, &columns).map(|row| format!("{:?}", row.expect("a row"))).collect().await;
        rows.sort();
        all.push((table.to_owned(), rows));
    }
    drop(snapshot);
    store.close().await;
    all
}

fn secret_of(data_dir: &Path) -> Secret {
    Secret::new(std::fs::read_to_string(data_dir.join("key_vaults_secret")).expect("the generated key").trim())
}

struct Populated {
    topic: String,
    file: String,
    file_bytes: Vec<u8>,
}

/// Gives the instance some of everything: a conversation with two answers (branches), a file
/// in a message and in a knowledge base, an API token, an own provider key, a member, a share.
async fn populate(app: &TestApp) -> Populated {
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("First answer"));
    app.fake.push_reply(Reply::text("Quarterly figures"));
    let sent = app.send(assistant, None, "What were the quarterly figures?").await;
    app.finished(sent.answer).await;
    app.titled(sent.topic).await;
    app.fake.push_reply(Reply::text("Second answer"));
    app.post_redirect(&format!("/messages/{}/regenerate", sent.answer), &[]).await;
    let conversation = app.services.assistants.conversation(app.admin().await, sent.topic).await.expect("topic");
    app.finished(conversation.branch.last().expect("an answer").message.id).await;

    let file_bytes = b"Revenue grew 12% in the third quarter, led by exports.\n".repeat(40);
    let file = crate::attachments::upload(app, &app.client, "report.txt", &file_bytes).await;
    let created = app.post_form("/knowledge", &[("name", "Reports"), ("description", "")]).await;
    let base = created.headers()["location"].to_str().expect("ascii").trim_start_matches("/knowledge/").to_owned();
    app.post_form(&format!("/knowledge/{base}/files"), &[("file", file.as_str())]).await;
    crate::attachments::wait_ready(app, &base).await;

    crate::openai_api::api_token(app).await;
    let saved = app.post_form("/settings/server-providers/openai", &[("api_key", "sk-admin-own-key")]).await;
    assert_eq!(saved.status().as_u16(), 303);
    crate::hardening::member(app, "Bob").await;
    let shared = app.post_form(&format!("/topics/{}/shares", sent.topic), &[("expires", "never")]).await;
    assert!(shared.status().is_redirection() || shared.status().is_success());
    Populated { topic: sent.topic.to_string(), file, file_bytes }
}

/// A server on a restored instance: signs in with the old password, shows the branches,
/// serves the file, finds the question, and decrypts the own key.
async fn check_serves(data_dir: PathBuf, database_url: Option<String>, secret: Secret, populated: &Populated) {
    let restored = TestApp::spawn_with(TestOptions {
        first_account: false,
        adjust: Some(Box::new(move |config: &mut Config| {
            config.data_dir = data_dir;
            config.database_url = database_url.map(Secret::new);
            config.key_vaults_secret = Some(secret);
        })),
        ..TestOptions::default()
    })
    .await;
    assert_eq!(restored.sign_in(&restored.client, ADMIN_EMAIL, ADMIN_PASSWORD).await, 303, "the old password");
    let assistant = restored.default_assistant().await;
    let (status, page) = restored.page(&format!("/chat/{assistant}/{}", populated.topic)).await;
    assert_eq!(status, 200);
    assert!(page.contains("Second answer") && page.contains("2/2"), "both branches are back");
    let download = restored.client.get(restored.url(&format!("/files/{}", populated.file))).send().await.expect("get");
    assert_eq!(download.status().as_u16(), 200);
    assert_eq!(download.bytes().await.expect("bytes").as_ref(), populated.file_bytes.as_slice());
    let (_, found) = restored.page("/search?q=quarterly").await;
    assert!(found.contains("<mark>"), "the search index was rebuilt: {found}");
    // The own key, encrypted at rest, decrypts with the same secret: it is what the model gets.
    restored.fake.push_reply(Reply::text("Restored answer"));
    let sent = restored.send(assistant, None, "Still there?").await;
    restored.finished(sent.answer).await;
    let asked = restored.fake.requests().into_iter().find(|r| r.path.ends_with("/chat/completions")).expect("asked");
    assert_eq!(asked.header("authorization"), Some("Bearer sk-admin-own-key"));
    restored.cleanup().await;
}

#[tokio::test]
async fn a_populated_instance_restores_row_for_row_into_sqlite_and_postgres() {
    let app = TestApp::spawn().await;
    let populated = populate(&app).await;
    let source = config_of(&app.data_dir, None, None);
    let archive = temp_dir("backup").join("instance.zip");
    // Taken while the server runs, as an operator would.
    let written = backup::backup_instance(&source, &archive).await.expect("backs up");
    assert_eq!(written.path, archive);
    assert!(written.files >= 1 && written.rows > 20, "{written:?}");
    assert!(!archive.with_extension("zip.partial").exists(), "nothing half-written is left");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&archive).expect("metadata").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only its owner reads an archive");
    }
    let expected = contents(&store_options(&source)).await;
    let secret = secret_of(&app.data_dir);

    // Into SQLite, with the key file carried over.
    let sqlite_dir = temp_dir("restored-sqlite");
    std::fs::create_dir_all(&sqlite_dir).expect("dir");
    std::fs::copy(app.data_dir.join("key_vaults_secret"), sqlite_dir.join("key_vaults_secret")).expect("key");
    let target = config_of(&sqlite_dir, None, None);
    let restored = backup::restore_instance(&target, &archive).await.expect("restores");
    assert_eq!(restored.rows, written.rows);
    assert_eq!(restored.files, written.files);
    assert_eq!(contents(&store_options(&target)).await, expected, "every row is back");
    check_serves(sqlite_dir, None, secret.clone(), &populated).await;

    // Into PostgreSQL, with the secret set.
    if let Some(database) = TestDatabase::from_env().await {
        let pg_dir = temp_dir("restored-pg");
        let target = config_of(&pg_dir, Some(&database.url), Some(&secret));
        backup::restore_instance(&target, &archive).await.expect("restores into PostgreSQL");
        assert_eq!(contents(&store_options(&target)).await, expected, "every row is back in PostgreSQL");
        check_serves(pg_dir, Some(database.url.clone()), secret.clone(), &populated).await;
        // And back: a PostgreSQL instance backs up into an archive SQLite takes.
        let again = temp_dir("backup-pg").join("pg.zip");
        backup::backup_instance(&target, &again).await.expect("backs up PostgreSQL");
        let round_trip = config_of(&temp_dir("restored-again"), None, Some(&secret));
        backup::restore_instance(&round_trip, &again).await.expect("restores into SQLite");
        assert_eq!(contents(&store_options(&round_trip)).await, contents(&store_options(&target)).await);
        database.drop().await.expect("drops");
    }

    // A restore needs an empty instance.
    let again = backup::restore_instance(&target_of(&app.data_dir), &archive).await.expect_err("refused");
    assert!(again.contains("already holds data"), "{again}");
    app.cleanup().await;
}

fn target_of(data_dir: &Path) -> Config {
    config_of(data_dir, None, None)
}

#[tokio::test]
async fn a_backup_taken_during_writes_restores_consistently() {
    let app = std::sync::Arc::new(TestApp::spawn().await);
    app.fake.set_default_reply(Reply::text("An answer in a few words"));
    let assistant = app.default_assistant().await;
    let writing = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut writers = Vec::new();
    for _ in 0..2 {
        let (app, writing) = (app.clone(), writing.clone());
        writers.push(tokio::spawn(async move {
            let mut sent = 0;
            while writing.load(std::sync::atomic::Ordering::Relaxed) {
                // New topics and follow-ups: a dump that read tables at different moments would
                // hold messages of topics it does not have, or questions without their answer.
                let exchange = app.send(assistant, None, "Tell me something").await;
                app.finished(exchange.answer).await;
                app.send(assistant, Some(exchange.topic), "And then?").await;
                sent += 2;
            }
            sent
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let source = config_of(&app.data_dir, None, None);
    let archive = temp_dir("busy").join("busy.zip");
    backup::backup_instance(&source, &archive).await.expect("backs up under writes");
    writing.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut sent = 0;
    for writer in writers {
        sent += writer.await.expect("writer");
    }
    assert!(sent > 4, "writes ran during the backup ({sent})");

    let target = config_of(&temp_dir("busy-restored"), None, Some(&secret_of(&app.data_dir)));
    let restored = backup::restore_instance(&target, &archive).await.expect("restores");
    assert!(restored.rows > 0);
    let store = loquat_store::open(&store_options(&target)).await.expect("opens");
    let mut snapshot = store.snapshot().await.expect("snapshot");
    let columns = snapshot.columns("messages").await.expect("columns");
    let at = |name: &str| columns.iter().position(|c| c.name == name).expect("column");
    let (id, parent, role) = (at("id"), at("parent_id"), at("role"));
    let rows: Vec<_> = snapshot.rows("messages", &columns).map(|row| row.expect("row")).collect().await;
    let text = |cell: &loquat_store::dump::Cell| match cell {
        loquat_store::dump::Cell::Text(text) => Some(text.clone()),
        _ => None,
    };
    let parents: std::collections::HashSet<String> = rows.iter().filter_map(|row| text(&row[parent])).collect();
    let questions: Vec<String> = rows
        .iter()
        .filter(|row| text(&row[role]).as_deref() == Some("user"))
        .filter_map(|row| text(&row[id]))
        .collect();
    assert!(!questions.is_empty());
    for question in &questions {
        assert!(parents.contains(question), "every question has its answer");
    }
    drop(snapshot);
    store.close().await;
    match std::sync::Arc::try_unwrap(app) {
        Ok(app) => app.cleanup().await,
        Err(_) => panic!("the writers hold the app"),
    }
}

/// Rewrites `archive` into `to`, changing the entry `name` with `change`.
fn rewrite(archive: &Path, to: &Path, name: &str, change: impl Fn(Vec<u8>) -> Vec<u8>) {
    use std::io::{Read, Write};
    let mut source = zip::ZipArchive::new(std::fs::File::open(archive).expect("opens")).expect("a zip");
    let mut out = zip::ZipWriter::new(std::fs::File::create(to).expect("creates"));
    for index in 0..source.len() {
        let mut entry = source.by_index(index).expect("entry");
        let entry_name = entry.name().to_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).expect("reads");
        let bytes = if entry_name == name { change(bytes) } else { bytes };
        out.start_file(entry_name, zip::write::SimpleFileOptions::default()).expect("starts");
        out.write_all(&bytes).expect("writes");
    }
    out.finish().expect("finishes");
}

#[tokio::test]
async fn a_cut_changed_or_foreign_archive_is_refused_before_anything_is_written() {
    let app = TestApp::spawn().await;
    let file = crate::attachments::upload(&app, &app.client, "notes.txt", b"The original notes, kept safe.").await;
    let source = config_of(&app.data_dir, None, None);
    let folder = temp_dir("damaged");
    std::fs::create_dir_all(&folder).expect("dir");
    let archive = backup::backup_instance(&source, &folder).await.expect("backs up into a folder").path;
    let name = archive.file_name().and_then(|n| n.to_str()).expect("a name");
    assert!(name.starts_with("loquat-backup-") && name.ends_with(".zip"), "{name}");
    let secret = secret_of(&app.data_dir);
    let key = {
        let store = loquat_store::open(&store_options(&source)).await.expect("opens");
        let owner = app.admin().await;
        let record = loquat_core::store::FileStore::get_file(&store, owner, file.parse().expect("an id"))
            .await
            .expect("reads")
            .expect("the file");
        store.close().await;
        record.storage_key
    };
    let bytes = std::fs::read(&archive).expect("reads");
    let cases: Vec<(&str, PathBuf, Option<Secret>, &str)> = {
        let cut = folder.join("cut.zip");
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("writes");
        let changed_file = folder.join("changed-file.zip");
        rewrite(&archive, &changed_file, &format!("blobs/{key}"), |_| b"The notes, quietly changed.".to_vec());
        let changed_rows = folder.join("changed-rows.zip");
        rewrite(&archive, &changed_rows, "tables/users.jsonl", |rows| {
            String::from_utf8(rows).expect("text").replace("\"admin\"", "\"user\"").into_bytes()
        });
        let changed_manifest = folder.join("changed-manifest.zip");
        rewrite(&archive, &changed_manifest, "manifest.json", |manifest| {
            String::from_utf8(manifest).expect("text").replace("\"schema\": ", "\"schema\": 1").into_bytes()
        });
        let other = Secret::new(loquat_core::crypto::KeyVault::generate_base64().expose());
        vec![
            ("cut short", cut, None, "not a whole zip archive"),
            ("a file changed", changed_file, None, "is not what was backed up"),
            ("rows changed", changed_rows, None, "is not what was backed up"),
            ("the manifest changed", changed_manifest, None, "not the one this instance signed"),
            ("another secret", archive.clone(), Some(other), "another KEY_VAULTS_SECRET"),
        ]
    };
    for (what, path, other_secret, message) in cases {
        let dir = temp_dir("refused");
        let target = config_of(&dir, None, Some(other_secret.as_ref().unwrap_or(&secret)));
        let refused = backup::restore_instance(&target, &path).await.expect_err(what);
        assert!(refused.contains(message) && refused.contains("nothing was restored"), "{what}: {refused}");
        assert!(!dir.join(loquat_store::SQLITE_FILE_NAME).exists(), "{what}: no database was even created");
        assert!(!dir.join("files").exists() || std::fs::read_dir(dir.join("files")).expect("dir").next().is_none());
    }
    // Without any secret, a restore says which one it needs.
    let refused = backup::restore_instance(&config_of(&temp_dir("no-secret"), None, None), &archive).await;
    assert!(refused.expect_err("no secret").contains("KEY_VAULTS_SECRET"));
    // The archive itself checks out.
    let manifest = backup::verify(&archive, &secret).await.expect("whole");
    assert_eq!(manifest.files.len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn the_command_line_backs_up_and_restores() {
    let app = TestApp::spawn().await;
    let folder = temp_dir("cli-backups");
    std::fs::create_dir_all(&folder).expect("dir");
    let archive = folder.join("cli.zip");
    let run = |data_dir: PathBuf, args: Vec<String>| async move {
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_loquat"))
            .args(&args)
            .env_clear()
            .env("LOQUAT_DATA_DIR", &data_dir)
            .env("ENABLED_OLLAMA", "0")
            .output()
            .await
            .expect("runs");
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (code, said) =
        run(app.data_dir.clone(), vec!["backup".into(), "--to".into(), archive.display().to_string()]).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("backup written"), "{said}");
    let target = temp_dir("cli-restored");
    std::fs::create_dir_all(&target).expect("dir");
    let (code, said) =
        run(target.clone(), vec!["restore".into(), "--from".into(), archive.display().to_string()]).await;
    assert_eq!(code, Some(1), "no secret yet: {said}");
    assert!(said.contains("KEY_VAULTS_SECRET"), "{said}");
    std::fs::copy(app.data_dir.join("key_vaults_secret"), target.join("key_vaults_secret")).expect("key");
    let check = vec!["restore".into(), "--from".into(), archive.display().to_string(), "--check".into()];
    let (code, said) = run(target.clone(), check).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("whole and unchanged"), "{said}");
    let (code, said) =
        run(target.clone(), vec!["restore".into(), "--from".into(), archive.display().to_string()]).await;
    assert_eq!(code, Some(0), "{said}");
    assert!(said.contains("restored the backup"), "{said}");
    app.cleanup().await;
}

async fn readiness(app: &TestApp) -> Value {
    app.client.get(app.url("/readyz")).send().await.expect("readyz").json().await.expect("json")
}

#[tokio::test]
async fn scheduled_backups_keep_the_newest_and_report_in_readiness() {
    let folder = temp_dir("scheduled");
    std::fs::create_dir_all(&folder).expect("dir");
    std::fs::write(folder.join("notes.txt"), "not a backup").expect("writes");
    std::fs::write(folder.join("loquat-backup-20200101-000000-000.zip"), "an old one").expect("writes");
    let to = folder.display().to_string();
    let app = TestApp::spawn_with(TestOptions {
        adjust: Some(Box::new(move |config: &mut Config| {
            config.backup.every = "1s".into();
            config.backup.keep = 2;
            config.backup.to = to;
            config.metrics_token = Some(Secret::new("metrics-token"));
        })),
        ..TestOptions::default()
    })
    .await;
    let archives = |folder: &Path| {
        let mut names: Vec<String> = std::fs::read_dir(folder)
            .expect("dir")
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .filter(|name| name.ends_with(".zip"))
            .collect();
        names.sort();
        names
    };
    // Several runs: the old one and the earliest new ones go, two stay.
    let first = {
        eventually("a first backup", || async { readiness(&app).await["checks"]["backup"] == "ok" }).await;
        readiness(&app).await["backup"]["at"].clone()
    };
    eventually("later backups", || async {
        let now = readiness(&app).await["backup"]["at"].clone();
        now != first && archives(&folder).len() == 2 && !archives(&folder)[0].starts_with("loquat-backup-2020")
    })
    .await;
    assert!(folder.join("notes.txt").exists(), "nothing else is touched");
    let ready = readiness(&app).await;
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["backup"]["ok"], true);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .bearer_auth("metrics-token")
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("loquat_backup_last_success_timestamp_seconds"), "{metrics}");
    assert!(metrics.contains("loquat_backup_last_failed 0"), "{metrics}");
    // What the schedule wrote restores.
    let newest = folder.join(archives(&folder).pop().expect("an archive"));
    let secret = secret_of(&app.data_dir);
    backup::verify(&newest, &secret).await.expect("a whole archive");
    app.cleanup().await;
}

#[tokio::test]
async fn scheduled_backups_go_to_a_bucket() {
    let Some(url) = loquat_test_support::s3::test_s3_url() else {
        eprintln!("skipped: LOQUAT_TEST_S3_URL is not set");
        return;
    };
    let bucket = loquat_test_support::s3::TestBucket::create(&url).await;
    let settings = bucket.settings();
    let to = format!("s3://{}/nightly", bucket.name);
    let endpoint = url.clone();
    let app = TestApp::spawn_with(TestOptions {
        adjust: Some(Box::new(move |config: &mut Config| {
            config.backup.every = "1s".into();
            config.backup.keep = 2;
            config.backup.to = to;
            config.s3_endpoint = Some(endpoint);
            config.s3_access_key_id = Some("test".into());
            config.s3_secret_access_key = Some(Secret::new("test"));
            config.s3_enable_path_style = true;
        })),
        ..TestOptions::default()
    })
    .await;
    let objects = loquat_files::Blobs::s3(&settings).expect("bucket");
    eventually("backups in the bucket", || async {
        let listed = objects.list("nightly").await.expect("lists");
        readiness(&app).await["checks"]["backup"] == "ok" && listed.len() == 2
    })
    .await;
    // Later runs still leave the newest two (each run sends its archive, then prunes: a listing
    // between the two sees three for a moment).
    let newest = |listed: &[(String, u64)]| listed.iter().map(|(key, _)| key.clone()).max();
    let first = newest(&objects.list("nightly").await.expect("lists"));
    eventually("later backups pruned to the newest two", || async {
        let listed = objects.list("nightly").await.expect("lists");
        listed.len() == 2 && newest(&listed) != first
    })
    .await;
    let listed = objects.list("nightly").await.expect("lists");
    assert!(listed.iter().all(|(key, size)| key.starts_with("nightly/loquat-backup-") && *size > 0));
    app.cleanup().await;
    bucket.remove().await;
}

#[tokio::test]
async fn files_move_between_a_folder_and_a_bucket() {
    let Some(url) = loquat_test_support::s3::test_s3_url() else {
        eprintln!("skipped: LOQUAT_TEST_S3_URL is not set");
        return;
    };
    let app = TestApp::spawn().await;
    let bytes = b"Minutes of the board meeting, kept in a bucket now.".repeat(100);
    let file = crate::attachments::upload(&app, &app.client, "minutes.txt", &bytes).await;
    let archive = temp_dir("to-bucket").join("folder.zip");
    std::fs::create_dir_all(archive.parent().expect("folder")).expect("dir");
    backup::backup_instance(&config_of(&app.data_dir, None, None), &archive).await.expect("backs up");

    let bucket = loquat_test_support::s3::TestBucket::create(&url).await;
    let mut target = config_of(&temp_dir("in-bucket"), None, Some(&secret_of(&app.data_dir)));
    target.s3_endpoint = Some(url.clone());
    target.s3_bucket = Some(bucket.name.clone());
    target.s3_access_key_id = Some("test".into());
    target.s3_secret_access_key = Some(Secret::new("test"));
    target.s3_enable_path_style = true;
    let restored = backup::restore_instance(&target, &archive).await.expect("restores into the bucket");
    assert_eq!(restored.files, 1);
    let store = loquat_store::open(&store_options(&target)).await.expect("opens");
    let owner = loquat_core::store::UserStore::find_user_by_email(&store, crate::helpers::ADMIN_EMAIL)
        .await
        .expect("reads")
        .expect("the administrator");
    let record = loquat_core::store::FileStore::get_file(&store, owner.id, file.parse().expect("an id"))
        .await
        .expect("reads")
        .expect("the file");
    store.close().await;
    let objects = loquat_files::Blobs::s3(&bucket.settings()).expect("bucket");
    assert_eq!(objects.read(&record.storage_key).await.expect("the bytes").as_ref(), bytes.as_slice());

    // And back out of the bucket: the bucket instance backs up, a folder instance restores it.
    let again = temp_dir("from-bucket").join("bucket.zip");
    std::fs::create_dir_all(again.parent().expect("folder")).expect("dir");
    backup::backup_instance(&target, &again).await.expect("backs up from the bucket");
    let folder = config_of(&temp_dir("out-of-bucket"), None, Some(&secret_of(&app.data_dir)));
    backup::restore_instance(&folder, &again).await.expect("restores into a folder");
    let restored_bytes = std::fs::read(folder.data_dir.join("files").join(&record.storage_key)).expect("in the folder");
    assert_eq!(restored_bytes, bytes);
    bucket.remove().await;
    app.cleanup().await;
}
