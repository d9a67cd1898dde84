//! `FileStore`: one record per owner and content (also when uploads race), found and deleted
//! by its owner only, listed newest first, summed for the quota, attached to messages.

use loquat_core::domain::{MessageRole, StoredFile};
use loquat_core::id::{FileId, UserId};
use loquat_core::store::{FileInsert, FileStore, MessageStore, StoreErrorKind, TreeWrite};
use loquat_store::SqlStore;

use crate::fixtures::{at, message, world};
use crate::harness::on_every_backend;

pub(crate) fn file(user: UserId, name: &str, sha256: &str, size: u64, created: i64) -> StoredFile {
    StoredFile {
        id: FileId::new(),
        user_id: user,
        name: name.to_owned(),
        mime: "application/pdf".to_owned(),
        size,
        sha256: sha256.to_owned(),
        storage_key: format!("files/{user}/{}", FileId::new().as_uuid().simple()),
        created_at: at(created),
    }
}

async fn files_are_kept_once_per_owner_and_content(store: SqlStore) {
    let w = world(&store).await;
    let report = file(w.alice.id, "年报 2025.pdf", "aaa", 1_000, 10);
    assert_eq!(store.insert_file(&report, None, false).await.expect("inserted"), FileInsert::Inserted);
    // The same content again, under another name: the first record stands.
    let again = file(w.alice.id, "copy.pdf", "aaa", 1_000, 20);
    assert_eq!(store.insert_file(&again, None, false).await.expect("runs"), FileInsert::Existing(report.clone()));
    assert_eq!(store.get_file(w.alice.id, again.id).await.expect("loads"), None);
    // Another owner's same content is their own file.
    let bobs = file(w.bob.id, "report.pdf", "aaa", 1_000, 30);
    assert_eq!(store.insert_file(&bobs, None, false).await.expect("inserted"), FileInsert::Inserted);
    let notes = file(w.alice.id, "<b>notes</b>.txt", "bbb", 20, 40);
    assert_eq!(store.insert_file(&notes, None, false).await.expect("inserted"), FileInsert::Inserted);

    assert_eq!(store.get_file(w.alice.id, report.id).await.expect("loads"), Some(report.clone()));
    assert_eq!(store.list_files(w.alice.id).await.expect("lists"), vec![notes.clone(), report.clone()]);
    assert_eq!(store.user_file_bytes(w.alice.id).await.expect("sums"), 1_020);
    assert_eq!(store.user_file_bytes(UserId::new()).await.expect("sums"), 0);
    let totals = store.file_totals_by_user().await.expect("totals");
    let totals: Vec<_> = totals.into_iter().map(|(user, files, bytes)| (user.id, files, bytes)).collect();
    assert_eq!(totals, vec![(w.alice.id, 2, 1_020), (w.bob.id, 1, 1_000)], "the largest first");
    // An id taken is a conflict, not a silent skip.
    let same_id = StoredFile { sha256: "ccc".to_owned(), ..report.clone() };
    assert_eq!(store.insert_file(&same_id, None, false).await.expect_err("id taken").kind, StoreErrorKind::Conflict);
}

async fn files_are_their_owners_only(store: SqlStore) {
    let w = world(&store).await;
    let report = file(w.alice.id, "report.pdf", "aaa", 1_000, 10);
    store.insert_file(&report, None, false).await.expect("inserted");
    assert_eq!(store.get_file(w.bob.id, report.id).await.expect("runs"), None);
    assert_eq!(store.delete_file(w.bob.id, report.id).await.expect("runs"), None);
    assert!(store.list_files(w.bob.id).await.expect("lists").is_empty());
    assert_eq!(store.delete_file(w.alice.id, report.id).await.expect("deleted"), Some(report.clone()));
    assert_eq!(store.delete_file(w.alice.id, report.id).await.expect("runs"), None, "once");
    assert_eq!(store.get_file(w.alice.id, report.id).await.expect("runs"), None);
    // After the delete, the same content can be uploaded again.
    let later = file(w.alice.id, "report.pdf", "aaa", 1_000, 50);
    assert_eq!(store.insert_file(&later, None, false).await.expect("inserted"), FileInsert::Inserted);
    let orphan = file(UserId::new(), "x.pdf", "zzz", 1, 60);
    assert_eq!(store.insert_file(&orphan, None, false).await.expect_err("no such user").kind, StoreErrorKind::Conflict);
}

async fn racing_uploads_of_one_content_keep_one_record(store: SqlStore) {
    let w = world(&store).await;
    let uploads: Vec<StoredFile> = (0..8).map(|n| file(w.alice.id, &format!("{n}.pdf"), "same", 5, n)).collect();
    let results =
        futures_util::future::join_all(uploads.iter().map(|upload| store.insert_file(upload, None, false))).await;
    let inserted = results.iter().filter(|result| matches!(result, Ok(FileInsert::Inserted))).count();
    assert_eq!(inserted, 1, "{results:?}");
    let kept = store.list_files(w.alice.id).await.expect("lists");
    assert_eq!(kept.len(), 1);
    for result in results {
        if let FileInsert::Existing(existing) = result.expect("no error") {
            assert_eq!(existing, kept[0]);
        }
    }
}

async fn racing_uploads_cannot_pass_a_quota_together(store: SqlStore) {
    let w = world(&store).await;
    store.insert_file(&file(w.alice.id, "old.txt", "old", 10, 0), None, false).await.expect("inserted");
    // 10 used of 45: room for three more files of 10 bytes, whatever the order.
    let uploads: Vec<StoredFile> =
        (0..8).map(|n| file(w.alice.id, &format!("{n}.txt"), &format!("content {n}"), 10, n + 1)).collect();
    let results =
        futures_util::future::join_all(uploads.iter().map(|upload| store.insert_file(upload, Some(45), false))).await;
    let inserted = results.iter().filter(|result| matches!(result, Ok(FileInsert::Inserted))).count();
    let refused = results.iter().filter(|result| matches!(result, Ok(FileInsert::OverQuota))).count();
    assert_eq!((inserted, refused), (3, 5), "{results:?}");
    assert_eq!(store.user_file_bytes(w.alice.id).await.expect("sums"), 40);
    // The same content as a kept file is that file, even when the quota is full.
    let again = file(w.alice.id, "again.txt", "old", 10, 20);
    assert!(matches!(store.insert_file(&again, Some(45), false).await.expect("runs"), FileInsert::Existing(_)));
    // Another owner's quota is their own.
    let bobs = file(w.bob.id, "b.txt", "content 0", 10, 30);
    assert_eq!(store.insert_file(&bobs, Some(10), false).await.expect("runs"), FileInsert::Inserted);
}

async fn files_attach_to_messages_of_their_owner_and_go_with_either(store: SqlStore) {
    let w = world(&store).await;
    let question = message(&w.topic, None, MessageRole::User, "look", 10);
    let report = file(w.alice.id, "report.pdf", "aaa", 1_000, 10);
    let photo = file(w.alice.id, "photo.png", "bbb", 10, 20);
    let bobs = file(w.bob.id, "bob.pdf", "ccc", 10, 30);
    for f in [&report, &photo, &bobs] {
        store.insert_file(f, None, false).await.expect("inserted");
    }
    let attach = |file: &StoredFile, position| TreeWrite::AttachFile { message: question.id, file: file.id, position };
    let changed = store
        .write_tree(
            w.alice.id,
            &[TreeWrite::InsertMessage(&question), attach(&photo, 1), attach(&report, 0), attach(&bobs, 2)],
        )
        .await
        .expect("written");
    assert_eq!(changed, vec![1, 1, 1, 0], "Bob's file is not attached to Alice's message");
    let in_order = vec![report.clone(), photo.clone()];
    assert_eq!(store.message_files(w.alice.id, question.id).await.expect("loads"), in_order);
    let topic_files = store.topic_message_files(w.alice.id, w.topic.id).await.expect("loads");
    assert_eq!(topic_files, vec![(question.id, report.clone()), (question.id, photo.clone())]);
    assert!(store.topic_message_files(w.bob.id, w.topic.id).await.expect("loads").is_empty());
    assert!(store.message_files(w.bob.id, question.id).await.expect("loads").is_empty());
    let mut counts = store.file_message_counts(w.alice.id).await.expect("counts");
    counts.sort();
    let mut expected = vec![(report.id, 1), (photo.id, 1)];
    expected.sort();
    assert_eq!(counts, expected);
    // Deleting a file takes it off the message; deleting the message takes the rest.
    store.delete_file(w.alice.id, photo.id).await.expect("deleted");
    assert_eq!(store.message_files(w.alice.id, question.id).await.expect("loads"), vec![report.clone()]);
    store.delete_message_subtree(w.alice.id, question.id).await.expect("deleted");
    assert!(store.file_message_counts(w.alice.id).await.expect("counts").is_empty());
    assert!(store.get_file(w.alice.id, report.id).await.expect("loads").is_some(), "the file stays");
}

on_every_backend!(
    files_attach_to_messages_of_their_owner_and_go_with_either,
    files_are_kept_once_per_owner_and_content,
    files_are_their_owners_only,
    racing_uploads_of_one_content_keep_one_record,
    racing_uploads_cannot_pass_a_quota_together,
);
