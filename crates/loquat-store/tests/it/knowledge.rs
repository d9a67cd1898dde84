//! `KnowledgeStore`: the reading queue (one claim per job, also when nodes race; stale claims
//! taken over; a node that lost its claim writes nothing), chunks with their vectors, knowledge
//! bases with revisions that move on every change, assistants' knowledge and answers' sources,
//! each its owner's only.

use loquat_core::domain::{IngestState, KnowledgeBase, MessageRole, Role, Source, StoredChunk, TopicFeature};
use loquat_core::id::{ChunkId, KnowledgeBaseId, UserId};
use loquat_core::store::{FileStore, IngestStore, KnowledgeStore, MessageStore, TopicStore, TreeWrite};
use loquat_store::SqlStore;

use crate::files::file;
use crate::fixtures::{at, message, world};
use crate::harness::on_every_backend;

fn chunk(
    user: UserId,
    file: loquat_core::id::FileId,
    seq: u32,
    text: &str,
    embedding: Option<Vec<f32>>,
) -> StoredChunk {
    StoredChunk {
        id: ChunkId::new(),
        file_id: file,
        user_id: user,
        seq,
        text: text.to_owned(),
        headings: "Report › R&D".to_owned(),
        page_start: Some(seq + 1),
        page_end: Some(seq + 2),
        tokens: 12,
        embedding,
    }
}

fn base(user: UserId, name: &str, created: i64) -> KnowledgeBase {
    KnowledgeBase {
        id: KnowledgeBaseId::new(),
        user_id: user,
        name: name.to_owned(),
        description: String::new(),
        revision: 0,
        shared_with: None,
        created_at: at(created),
        updated_at: at(created),
    }
}

async fn the_reading_queue_gives_each_job_to_one_node(store: SqlStore) {
    let w = world(&store).await;
    let report = file(w.alice.id, "report.pdf", "aaa", 100, 10);
    let photo = file(w.alice.id, "photo.png", "bbb", 100, 20);
    store.insert_file(&report, None, true).await.expect("inserted");
    store.insert_file(&photo, None, false).await.expect("inserted");
    let stale = at(-1_000_000);
    // Two nodes race for the one queued job: one gets it.
    let (a, b) = tokio::join!(store.claim_ingestion("a", at(100), stale), store.claim_ingestion("b", at(100), stale));
    let (a, b) = (a.expect("claims"), b.expect("claims"));
    assert_eq!(a.is_some() as u8 + b.is_some() as u8, 1, "exactly one claim");
    let (winner, loser) = if a.is_some() { ("a", "b") } else { ("b", "a") };
    assert_eq!(a.or(b).expect("claimed").id, report.id);
    assert!(store.claim_ingestion("c", at(101), stale).await.expect("runs").is_none(), "nothing else waits");
    // The loser cannot write it.
    assert!(!store.update_ingestion(report.id, loser, IngestState::Indexing, 50, at(102)).await.expect("runs"));
    assert!(store.update_ingestion(report.id, winner, IngestState::Indexing, 50, at(102)).await.expect("runs"));
    // A node that stops beating loses the job to another.
    let taken = store.claim_ingestion("c", at(200), at(150)).await.expect("runs").expect("taken over");
    assert_eq!(taken.id, report.id);
    let chunks = [
        chunk(w.alice.id, report.id, 0, "first", Some(vec![0.5, -1.0])),
        chunk(w.alice.id, report.id, 1, "second", None),
    ];
    assert!(!store.finish_ingestion(report.id, winner, &chunks, Some(3), Some("m"), at(201)).await.expect("runs"));
    assert!(store.file_chunks(w.alice.id, report.id).await.expect("loads").is_empty(), "nothing written");
    assert!(store.finish_ingestion(report.id, "c", &chunks, Some(3), Some("m"), at(202)).await.expect("finished"));
    assert_eq!(store.file_chunks(w.alice.id, report.id).await.expect("loads"), chunks.to_vec());
    assert!(store.file_chunks(w.bob.id, report.id).await.expect("loads").is_empty());
    let ingestions = store.ingestions(w.alice.id).await.expect("loads");
    assert_eq!(ingestions.len(), 1);
    let ready = &ingestions[0];
    assert_eq!(
        (ready.state, ready.pages, ready.chunks, ready.embedding_model.as_deref()),
        (IngestState::Ready, Some(3), 2, Some("m"))
    );
    assert!(store.ingestions(w.bob.id).await.expect("loads").is_empty());

    // A failure is kept with its reason and can be retried by its owner only; a new embedding
    // model queues what the old one embedded.
    assert!(store.requeue_ingestion(w.alice.id, report.id, at(300)).await.expect("runs"));
    store.claim_ingestion("a", at(301), stale).await.expect("runs").expect("claimed");
    assert!(store.fail_ingestion(report.id, "a", "file_unreadable", at(302)).await.expect("runs"));
    let failed = &store.ingestions(w.alice.id).await.expect("loads")[0];
    assert_eq!((failed.state, failed.error.as_deref()), (IngestState::Failed, Some("file_unreadable")));
    assert!(!store.requeue_ingestion(w.bob.id, report.id, at(303)).await.expect("runs"));
    assert!(store.requeue_ingestion(w.alice.id, report.id, at(303)).await.expect("runs"));
    store.claim_ingestion("a", at(304), stale).await.expect("runs").expect("claimed");
    assert!(store.finish_ingestion(report.id, "a", &chunks, Some(3), Some("m"), at(305)).await.expect("finished"));
    assert_eq!(store.ingestion_counts().await.expect("counts"), vec![(IngestState::Ready, Some("m".into()), 1)]);
    assert_eq!(store.requeue_other_embeddings(Some("m"), at(306)).await.expect("runs"), 0);
    assert_eq!(store.requeue_other_embeddings(None, at(306)).await.expect("runs"), 1);
    assert_eq!(store.ingestion_counts().await.expect("counts"), vec![(IngestState::Queued, Some("m".into()), 1)]);
}

async fn knowledge_bases_are_their_owners_and_count_their_changes(store: SqlStore) {
    let w = world(&store).await;
    let report = file(w.alice.id, "report.pdf", "aaa", 100, 10);
    let bobs = file(w.bob.id, "bob.pdf", "bbb", 100, 10);
    store.insert_file(&report, None, false).await.expect("inserted");
    store.insert_file(&bobs, None, false).await.expect("inserted");
    let kb = base(w.alice.id, "Reports", 10);
    store.insert_knowledge_base(&kb).await.expect("inserted");
    store.insert_knowledge_base(&base(w.bob.id, "Bob's", 20)).await.expect("inserted");
    assert_eq!(store.list_knowledge_bases(w.alice.id).await.expect("lists"), vec![kb.clone()]);
    assert_eq!(store.get_knowledge_base(w.bob.id, kb.id).await.expect("runs"), None);
    assert!(!store.update_knowledge_base(w.bob.id, kb.id, "stolen", "", at(11)).await.expect("runs"));
    assert!(store.update_knowledge_base(w.alice.id, kb.id, "Annual reports", "2021–2023", at(11)).await.expect("runs"));

    // Adding a file queues its reading and moves the revision on; Bob's file cannot be added.
    assert!(!store.add_knowledge_file(w.alice.id, kb.id, bobs.id, at(12)).await.expect("runs"));
    assert!(!store.add_knowledge_file(w.bob.id, kb.id, report.id, at(12)).await.expect("runs"));
    assert!(store.add_knowledge_file(w.alice.id, kb.id, report.id, at(12)).await.expect("added"));
    assert!(!store.add_knowledge_file(w.alice.id, kb.id, report.id, at(12)).await.expect("runs"), "once");
    let revision = |store: SqlStore| async move {
        store.get_knowledge_base(w.alice.id, kb.id).await.expect("loads").expect("exists").revision
    };
    assert_eq!(revision(store.clone()).await, 1);
    let files = store.knowledge_files(w.alice.id, kb.id).await.expect("lists");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].1.as_ref().map(|i| i.state), Some(IngestState::Queued));
    assert!(store.knowledge_files(w.bob.id, kb.id).await.expect("lists").is_empty());

    // Finishing its reading moves the revision on, and its chunks are the knowledge base's.
    store.claim_ingestion("n", at(13), at(0)).await.expect("runs").expect("claimed");
    let chunks = [chunk(w.alice.id, report.id, 0, "R&D grew", None)];
    store.finish_ingestion(report.id, "n", &chunks, None, None, at(14)).await.expect("finished");
    assert_eq!(revision(store.clone()).await, 2);
    let found = store.knowledge_chunks(w.alice.id, kb.id).await.expect("loads");
    assert_eq!(found, vec![(chunks[0].clone(), "report.pdf".to_owned())]);
    assert!(store.knowledge_chunks(w.bob.id, kb.id).await.expect("loads").is_empty());

    // Assistants: only the user's own knowledge bases attach.
    let bob_kb = store.list_knowledge_bases(w.bob.id).await.expect("lists")[0].id;
    store.set_assistant_knowledge(w.alice.id, Role::User, w.assistant.id, &[kb.id, bob_kb]).await.expect("set");
    assert_eq!(store.assistant_knowledge(w.alice.id, w.assistant.id).await.expect("loads"), vec![kb.id]);
    store.set_assistant_knowledge(w.bob.id, Role::User, w.assistant.id, &[bob_kb]).await.expect("runs");
    assert_eq!(store.assistant_knowledge(w.alice.id, w.assistant.id).await.expect("loads"), vec![kb.id]);

    // A topic can turn its assistant's knowledge off, and on again; only its owner.
    let (knowledge, tools) = (TopicFeature::Knowledge, TopicFeature::Tools);
    let off = || store.topic_features_off(w.alice.id, w.topic.id);
    assert!(off().await.expect("reads").is_empty(), "all on at first");
    assert!(!store.set_topic_feature(w.bob.id, w.topic.id, knowledge, false).await.expect("runs"), "owner only");
    assert!(off().await.expect("reads").is_empty());
    assert!(store.set_topic_feature(w.alice.id, w.topic.id, knowledge, false).await.expect("runs"));
    assert!(store.set_topic_feature(w.alice.id, w.topic.id, knowledge, false).await.expect("runs"), "twice is fine");
    assert!(store.set_topic_feature(w.alice.id, w.topic.id, tools, false).await.expect("runs"));
    let mut both = off().await.expect("reads");
    both.sort_by_key(|feature| feature.as_str());
    assert_eq!(both, [knowledge, tools]);
    assert!(store.topic_features_off(w.bob.id, w.topic.id).await.expect("reads").is_empty(), "Bob sees nothing");
    assert!(store.set_topic_feature(w.alice.id, w.topic.id, knowledge, true).await.expect("runs"));
    assert_eq!(off().await.expect("reads"), [tools]);

    // Deleting the file moves the revision on; removing, too; deleting the base detaches it.
    store.delete_file(w.alice.id, report.id).await.expect("deleted");
    assert_eq!(revision(store.clone()).await, 3);
    assert!(store.knowledge_chunks(w.alice.id, kb.id).await.expect("loads").is_empty());
    assert!(!store.delete_knowledge_base(w.bob.id, kb.id).await.expect("runs"));
    assert!(store.delete_knowledge_base(w.alice.id, kb.id).await.expect("runs"));
    assert!(store.assistant_knowledge(w.alice.id, w.assistant.id).await.expect("loads").is_empty());
}

async fn answers_keep_their_sources(store: SqlStore) {
    let w = world(&store).await;
    let answer = message(&w.topic, None, MessageRole::Assistant, "As [1] says", 10);
    let source = Source {
        number: 1,
        file_id: None,
        file_name: "report.pdf".into(),
        page: Some(4),
        page_end: Some(5),
        headings: "R&D".into(),
        text: "R&D grew 15%.".into(),
        url: None,
    };
    store
        .write_tree(
            w.alice.id,
            &[TreeWrite::InsertMessage(&answer), TreeWrite::InsertSource { message: answer.id, source: &source }],
        )
        .await
        .expect("written");
    assert_eq!(store.topic_sources(w.alice.id, w.topic.id).await.expect("loads"), vec![(answer.id, source.clone())]);
    assert_eq!(store.message_source(w.alice.id, answer.id, 1).await.expect("loads"), Some(source));
    assert_eq!(store.message_source(w.bob.id, answer.id, 1).await.expect("loads"), None);
    assert_eq!(store.message_source(w.alice.id, answer.id, 2).await.expect("loads"), None);
    assert!(store.topic_sources(w.bob.id, w.topic.id).await.expect("loads").is_empty());
    store.delete_message_subtree(w.alice.id, answer.id).await.expect("deleted");
    assert!(store.topic_sources(w.alice.id, w.topic.id).await.expect("loads").is_empty());
}

async fn shared_knowledge_bases_are_read_by_their_audience_only(store: SqlStore) {
    let w = world(&store).await;
    let kb = base(w.alice.id, "Policies", 10);
    store.insert_knowledge_base(&kb).await.expect("inserted");
    let readable = |role| store.get_readable_knowledge_base(w.bob.id, role, kb.id);
    assert_eq!(readable(Role::User).await.expect("runs"), None, "private");
    assert!(!store.set_knowledge_sharing(w.bob.id, kb.id, Some("everyone")).await.expect("runs"), "owner only");
    assert!(store.shared_knowledge_bases().await.expect("lists").is_empty());
    assert!(store.set_knowledge_sharing(w.alice.id, kb.id, Some("admin")).await.expect("runs"));
    let shared = store.shared_knowledge_bases().await.expect("lists");
    assert_eq!(shared.iter().map(|b| (b.id, b.shared_with.as_deref())).collect::<Vec<_>>(), [(kb.id, Some("admin"))]);
    assert_eq!(readable(Role::User).await.expect("runs"), None, "for administrators only");
    assert!(readable(Role::Admin).await.expect("runs").is_some());
    assert!(store.set_knowledge_sharing(w.alice.id, kb.id, Some("everyone")).await.expect("runs"));
    assert_eq!(readable(Role::User).await.expect("runs").map(|b| b.id), Some(kb.id));
    let listed = store.readable_knowledge_bases(w.bob.id, Role::User).await.expect("lists");
    assert_eq!(listed.iter().map(|b| b.id).collect::<Vec<_>>(), vec![kb.id]);
    assert_eq!(store.get_knowledge_base(w.bob.id, kb.id).await.expect("runs"), None, "not Bob's to change");
    // Bob's assistant may answer from it while it is shared.
    store.set_assistant_knowledge(w.bob.id, Role::User, w.bob_assistant.id, &[kb.id]).await.expect("set");
    assert_eq!(store.assistant_knowledge(w.bob.id, w.bob_assistant.id).await.expect("loads"), vec![kb.id]);
    assert!(store.set_knowledge_sharing(w.alice.id, kb.id, None).await.expect("runs"));
    assert_eq!(readable(Role::User).await.expect("runs"), None);
}

on_every_backend!(
    shared_knowledge_bases_are_read_by_their_audience_only,
    the_reading_queue_gives_each_job_to_one_node,
    knowledge_bases_are_their_owners_and_count_their_changes,
    answers_keep_their_sources,
);
