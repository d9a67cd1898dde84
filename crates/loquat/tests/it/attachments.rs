//! Files in messages, over HTTP as the page script does it: images go to vision models as
//! base64 in the request, documents as their text (whole, or their best passages when too long
//! for the model), a model without vision refuses images before anything is stored, unreadable
//! files say why, and another user's file cannot be attached.

use std::time::Duration;

use loquat_docs::fixtures;
use serde_json::Value;

use crate::files_api::{BOUNDARY, multipart_body};
use crate::hardening::member;
use crate::helpers::{TestApp, TestOptions};

/// A 1×1 PNG.
pub(crate) const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0D, 0x49,
    0x44, 0x41, 0x54, 0x78, 0xDA, 0x63, 0x64, 0x60, 0xF8, 0x5F, 0x0F, 0x00, 0x02, 0x87, 0x01, 0x80, 0xEB, 0x47, 0xBA,
    0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

/// Uploads a file as the composer does; returns its id.
pub(crate) async fn upload(app: &TestApp, client: &reqwest::Client, name: &str, content: &[u8]) -> String {
    let response = client
        .post(app.url("/files"))
        .header("accept", "application/json")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart_body(None, &[(name, content)]))
        .send()
        .await
        .expect("upload");
    assert_eq!(response.status().as_u16(), 200);
    let json: Value = response.json().await.expect("json");
    json["files"][0]["id"].as_str().expect("an id").to_owned()
}

async fn send(app: &TestApp, client: &reqwest::Client, content: &str, files: &[&str]) -> (u16, Value) {
    let assistant = app.default_assistant().await;
    let response = client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", content), ("topic_id", ""), ("files", &files.join(","))])
        .send()
        .await
        .expect("send");
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

async fn choose_model(app: &TestApp, model: &str) {
    let assistant = app.default_assistant().await;
    let chosen = app.post_form(&format!("/assistants/{assistant}/model"), &[("model", model)]).await;
    assert!(chosen.status().is_success() || chosen.status().is_redirection());
}

/// The last user message of the first chat request the fake received.
async fn sent_question(app: &TestApp) -> Value {
    assert!(app.fake.wait_for_requests(1, Duration::from_secs(10)).await, "the model was asked");
    let request = app.fake.requests().into_iter().next().expect("a request");
    let messages = request.body["messages"].as_array().expect("messages").clone();
    messages.into_iter().rev().find(|m| m["role"] == "user").expect("a user message")
}

fn text_of(message: &Value) -> String {
    match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|part| part["text"].as_str()).collect::<Vec<_>>().join("\n"),
        _ => String::new(),
    }
}

#[tokio::test]
async fn an_image_and_a_pdf_reach_a_vision_model_and_show_with_the_question() {
    let app = TestApp::spawn().await;
    app.fake.set_recording(true);
    choose_model(&app, "openai::gpt-4.1").await;
    let image = upload(&app, &app.client, "chart.png", PNG).await;
    let report = upload(&app, &app.client, "annual-report.pdf", &fixtures::annual_report_pdf()).await;
    let (status, sent) = send(&app, &app.client, "How much did R&D grow in 2023?", &[&image, &report]).await;
    assert_eq!(status, 200, "{sent}");

    let question = sent_question(&app).await;
    let parts = question["content"].as_array().expect("text and image parts");
    let image_url = parts.iter().find_map(|part| part["image_url"]["url"].as_str()).expect("an image part");
    assert!(image_url.starts_with("data:image/png;base64,iVBORw0KGgo"), "{image_url}");
    let text = text_of(&question);
    assert!(text.starts_with("How much did R&D grow in 2023?"), "{text}");
    assert!(text.contains("<file name=\"annual-report.pdf\">"), "{text}");
    assert!(text.contains("公司2023年研发投入为12亿元，同比增长15%。"), "{text}");
    assert!(text.contains("Revenue was flat"), "a short file goes whole: {text}");

    // The question shows its files: a thumbnail for the image, a chip for the document.
    let html = sent["html"].as_str().expect("html");
    assert!(html.contains(&format!("<img src=\"/files/{image}/view\"")), "{html}");
    assert!(html.contains("annual-report.pdf"), "{html}");
    let topic = sent["topic_url"].as_str().expect("url").to_owned();
    let (_, page) = app.page(&topic).await;
    assert!(page.contains(&format!("/files/{report}\"")), "the reloaded page shows them too");

    // The image shows inline, sandboxed; a document behind the same route still downloads.
    let shown = app.client.get(app.url(&format!("/files/{image}/view"))).send().await.expect("view");
    assert_eq!(shown.headers()["content-type"], "image/png");
    assert_eq!(shown.headers()["content-disposition"], "inline");
    assert!(shown.headers()["content-security-policy"].to_str().expect("ascii").contains("sandbox"));
    let document = app.client.get(app.url(&format!("/files/{report}/view"))).send().await.expect("view");
    assert!(document.headers()["content-disposition"].to_str().expect("ascii").starts_with("attachment"));
    app.cleanup().await;
}

#[tokio::test]
async fn a_model_without_vision_refuses_images_before_anything_is_stored() {
    let options = TestOptions {
        env: vec![("OPENAI_MODEL_LIST", "-all,gpt-4o,plain-model=Plain".into())],
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(options).await;
    app.fake.set_recording(true);
    choose_model(&app, "openai::plain-model").await;
    let image = upload(&app, &app.client, "photo.png", PNG).await;
    let (status, body) = send(&app, &app.client, "What is this?", &[&image]).await;
    assert_eq!(status, 422, "{body}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(message.contains("Plain") && message.contains("does not read images"), "{message}");
    let assistant = app.default_assistant().await;
    let topics = app.services.assistants.list_topics(app.admin().await, assistant).await.expect("topics");
    assert!(topics.is_empty(), "nothing was stored");
    assert_eq!(app.fake.request_count(), 0);
    // The composer knows, and warns before sending.
    let (_, page) = app.page(&format!("/chat/{assistant}")).await;
    assert!(page.contains("data-vision=\"false\""), "the composer is told");

    // A document alone is fine, and needs no text.
    let notes = upload(&app, &app.client, "notes.md", b"# Notes\n\nThe launch is on Tuesday.").await;
    let (status, sent) = send(&app, &app.client, "", &[&notes]).await;
    assert_eq!(status, 200, "{sent}");
    let text = text_of(&sent_question(&app).await);
    assert!(text.starts_with("<file name=\"notes.md\">") && text.contains("The launch is on Tuesday."), "{text}");
    app.cleanup().await;
}

#[tokio::test]
async fn unreadable_and_foreign_files_are_refused_with_the_reason() {
    let app = TestApp::spawn().await;
    app.fake.set_recording(true);
    let scanned = upload(&app, &app.client, "scan.pdf", &fixtures::pdf(&["", ""])).await;
    let locked = upload(&app, &app.client, "locked.pdf", &fixtures::encrypted_pdf()).await;
    let bomb = upload(&app, &app.client, "bomb.docx", &fixtures::docx_bomb(200 << 20)).await;
    for (file, expected) in [
        (&scanned, "scan.pdf has no text layer (a scanned document?); OCR is not available."),
        (&locked, "locked.pdf is encrypted"),
        (&bomb, "bomb.docx expands to too much content"),
    ] {
        let (status, body) = send(&app, &app.client, "Summarise", &[file]).await;
        assert_eq!(status, 422, "{body}");
        assert!(body["error"]["message"].as_str().unwrap_or_default().starts_with(expected), "{body}");
    }
    // Another user's file is not found; so is an id that is not a file.
    let (bob, _) = member(&app, "Bob").await;
    let bobs = upload(&app, &bob, "secret.txt", b"Bob's secret plans").await;
    let (status, _) = send(&app, &app.client, "Read this", &[&bobs]).await;
    assert_eq!(status, 404);
    let (status, _) = send(&app, &app.client, "Read this", &["not-an-id"]).await;
    assert!(status == 404 || status == 422, "{status}");
    let shown = app.client.get(app.url(&format!("/files/{bobs}/view"))).send().await.expect("view");
    assert_eq!(shown.status().as_u16(), 404);
    // Nothing was stored or sent for any of them.
    let assistant = app.default_assistant().await;
    let topics = app.services.assistants.list_topics(app.admin().await, assistant).await.expect("topics");
    assert!(topics.is_empty());
    assert_eq!(app.fake.request_count(), 0);
    app.cleanup().await;
}

#[tokio::test]
async fn a_document_too_long_for_the_model_sends_its_best_passages_again_on_regenerate() {
    let options = TestOptions {
        env: vec![("OPENAI_MODEL_LIST", "-all,small-model=Small<4000>".into())],
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(options).await;
    app.fake.set_recording(true);
    choose_model(&app, "openai::small-model").await;
    let mut long = String::from("# Handbook\n\n");
    for section in 0..300 {
        long.push_str(&format!(
            "## Section {section}\n\nRoutine paragraph number {section} about office procedures.\n\n"
        ));
    }
    long.push_str("## Parking\n\nThe parking garage password is heliotrope.\n");
    let handbook = upload(&app, &app.client, "handbook.md", long.as_bytes()).await;
    let (status, sent) = send(&app, &app.client, "What is the parking garage password?", &[&handbook]).await;
    assert_eq!(status, 200, "{sent}");
    let text = text_of(&sent_question(&app).await);
    assert!(text.contains("(Excerpts: the file is too long to include whole."), "{text}");
    assert!(text.contains("[1] (Handbook › Parking)\nThe parking garage password"), "a numbered source: {text}");
    assert!(text.contains("The parking garage password is heliotrope."), "{text}");
    assert!(text.contains("(Handbook › Parking)"), "passages say where they are: {text}");
    assert!(text.len() < long.len() / 2, "not the whole file: {} of {}", text.len(), long.len());

    // Regenerating sends the question's file again.
    let answer = sent["answer_id"].as_str().expect("answer").parse().expect("id");
    app.finished(answer).await;
    let before = app.fake.request_count();
    let regenerated = app.post_form(&format!("/messages/{answer}/regenerate"), &[]).await;
    assert!(regenerated.status().is_redirection(), "{}", regenerated.status());
    assert!(app.fake.wait_for_requests(before + 1, Duration::from_secs(10)).await);
    let again =
        app.fake.requests().into_iter().rev().find(|r| {
            r.body["messages"].as_array().is_some_and(|m| m.iter().any(|m| text_of(m).contains("heliotrope")))
        });
    assert!(again.is_some(), "the regenerated request carries the passages");
    app.cleanup().await;
}

/// Waits until every document of the knowledge base page reads as ready.
pub(crate) async fn wait_ready(app: &TestApp, base: &str) -> String {
    for _ in 0..200 {
        let (_, page) = app.page(&format!("/knowledge/{base}")).await;
        if !page.contains("Waiting to be read") && !page.contains("Reading…") && !page.contains("Indexing…") {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the documents were not read in time");
}

#[tokio::test]
async fn a_knowledge_base_answers_with_citations_that_open_their_passage() {
    let options = TestOptions {
        configure: |config| {
            config.default_files_config = Some("embedding_model=openai/text-embedding-3-small".into());
        },
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(options).await;
    let created = app.post_form("/knowledge", &[("name", "Annual reports"), ("description", "2021–2023")]).await;
    let base = created.headers()["location"].to_str().expect("ascii").trim_start_matches("/knowledge/").to_owned();
    let report = upload(&app, &app.client, "annual-report.pdf", &fixtures::annual_report_pdf()).await;
    let scan = upload(&app, &app.client, "scan.pdf", &fixtures::pdf(&["", ""])).await;
    for file in [&report, &scan] {
        let added = app.post_form(&format!("/knowledge/{base}/files"), &[("file", file)]).await;
        assert!(added.status().is_redirection());
    }
    let page = wait_ready(&app, &base).await;
    assert!(page.contains("Ready: 3 pages"), "{page}");
    assert!(page.contains("Failed: no text layer (a scanned document?); OCR is not available"), "{page}");
    let (_, files) = app.page("/files").await;
    assert!(files.contains("Ready: 3 pages") && files.contains("Failed: no text layer"), "the Files page says too");

    // The default assistant answers from it.
    let assistant = app.default_assistant().await;
    let attached = app
        .post_form(&format!("/knowledge/{base}/assistants"), &[("assistant", &assistant.to_string()), ("on", "1")])
        .await;
    assert!(attached.status().is_redirection());
    app.fake.set_recording(true);
    app.fake.set_default_reply(loquat_test_support::fake_upstream::Reply::text("R&D grew 15% in 2023 [1]."));
    let (status, sent) = send(&app, &app.client, "研发投入增长了多少？", &[]).await;
    assert_eq!(status, 200, "{sent}");
    assert!(app.fake.wait_for_requests(2, Duration::from_secs(10)).await, "embedding and chat");
    let requests = app.fake.requests();
    let chat = requests.iter().find(|r| r.path.ends_with("/chat/completions")).expect("a chat request");
    let question = chat.body["messages"].as_array().expect("messages").last().expect("the question").clone();
    let text = text_of(&question);
    assert!(text.starts_with("研发投入增长了多少？"), "{text}");
    assert!(text.contains("<sources>") && text.contains("[1] annual-report.pdf, page 2"), "{text}");
    assert!(text.contains("公司2023年研发投入为12亿元"), "{text}");
    let paths: Vec<&str> = requests.iter().map(|r| r.path.as_str()).collect();
    assert!(paths.iter().any(|p| p.ends_with("/embeddings")), "the question was embedded (hybrid search): {paths:?}");

    // The answer cites its source, and the citation opens the passage.
    let answer = sent["answer_id"].as_str().expect("answer").parse().expect("id");
    app.finished(answer).await;
    let topic_url = sent["topic_url"].as_str().expect("url").to_owned();
    let (_, page) = app.page(&topic_url).await;
    let link = format!("/messages/{answer}/sources/1");
    assert!(page.contains(&format!("<a href=\"{link}\" data-source=\"1\">1</a>")), "{page}");
    assert!(page.contains("annual-report.pdf · p. 2"), "{page}");
    let (status, source) = app.page(&link).await;
    assert_eq!(status, 200);
    assert!(source.contains("公司2023年研发投入为12亿元") && source.contains("Page 2"), "{source}");
    // Knowledge can be turned off for one topic: the next question goes without sources.
    let topic: loquat_core::id::TopicId = sent["topic_id"].as_str().expect("topic").parse().expect("id");
    assert!(page.contains("Turn off for this topic"), "the chat page offers it");
    let (bob_client, _) = member(&app, "Carol").await;
    let refused = bob_client.post(app.url(&format!("/topics/{topic}/knowledge"))).form(&[("on", "0")]).send().await;
    assert_eq!(refused.expect("post").status().as_u16(), 404, "only by its owner");
    let off = app.post_form(&format!("/topics/{topic}/knowledge"), &[("on", "0")]).await;
    assert!(off.status().is_redirection());
    let before = app.fake.request_count();
    let response = app
        .client
        .post(app.url(&format!("/chat/{assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", "And in 2022?"), ("topic_id", &topic.to_string())])
        .send()
        .await
        .expect("send");
    assert_eq!(response.status().as_u16(), 200);
    // Its question arrives as typed (a title request of the topic may come and go around it).
    let last_text = |r: &loquat_test_support::fake_upstream::RecordedRequest| {
        r.body["messages"].as_array().and_then(|m| m.last()).map(text_of).unwrap_or_default()
    };
    crate::helpers::eventually("the question without sources", || async {
        app.fake.requests().iter().skip(before).any(|r| last_text(r) == "And in 2022?")
    })
    .await;
    let later = app.fake.requests();
    assert!(later.iter().skip(before).all(|r| !last_text(r).contains("<sources>")), "no sources when turned off");
    let (_, page) = app.page(&topic_url).await;
    assert!(page.contains("Use in this topic"));

    // A number the answer does not have, or another user, is not found.
    assert_eq!(app.page(&format!("/messages/{answer}/sources/9")).await.0, 404);
    let (bob, _) = member(&app, "Bob").await;
    assert_eq!(app.page_as(&bob, &link).await.0, 404);
    assert_eq!(app.page_as(&bob, &format!("/knowledge/{base}")).await.0, 404);
    app.cleanup().await;
}

#[tokio::test]
async fn a_failed_embedding_marks_the_document_failed_and_a_retry_reads_it() {
    let options = TestOptions {
        configure: |config| {
            config.default_files_config = Some("embedding_model=openai/text-embedding-3-small".into());
        },
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(options).await;
    let created = app.post_form("/knowledge", &[("name", "Notes")]).await;
    let base = created.headers()["location"].to_str().expect("ascii").trim_start_matches("/knowledge/").to_owned();
    let refusal = serde_json::json!({ "error": { "message": "embedding model overloaded" } });
    app.fake.push_reply(loquat_test_support::fake_upstream::Reply::http_error(400, refusal));
    let notes = upload(&app, &app.client, "notes.md", b"# Notes\n\nThe launch is on Tuesday.").await;
    app.post_form(&format!("/knowledge/{base}/files"), &[("file", &notes)]).await;
    let page = wait_ready(&app, &base).await;
    assert!(page.contains("Failed: the embedding model did not answer; retry later"), "{page}");
    assert!(page.contains(&format!("/knowledge/{base}/files/{notes}/retry")), "a retry button");
    // Another user cannot retry it; its owner can, and it is read.
    let (bob, _) = member(&app, "Bob").await;
    let refused = bob.post(app.url(&format!("/knowledge/{base}/files/{notes}/retry"))).send().await.expect("post");
    assert_eq!(refused.status().as_u16(), 404);
    let retried = app.post_form(&format!("/knowledge/{base}/files/{notes}/retry"), &[]).await;
    assert!(retried.status().is_redirection());
    let page = wait_ready(&app, &base).await;
    assert!(page.contains("Ready: 1 passage<"), "{page}");
    app.cleanup().await;
}

#[tokio::test]
async fn with_file_storage_unreachable_uploads_fail_clearly_and_chat_goes_on() {
    let options = TestOptions {
        configure: |config| {
            // A bucket on a port nobody listens on.
            config.s3_bucket = Some("loquat-down".into());
            config.s3_endpoint = Some("http://127.0.0.1:9".into());
            config.s3_access_key_id = Some("key".into());
            config.s3_secret_access_key = Some(loquat_core::Secret::new("secret".to_owned()));
            config.s3_enable_path_style = true;
        },
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(options).await;
    let response = app
        .client
        .post(app.url("/files"))
        .header("accept", "application/json")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart_body(None, &[("notes.md", b"# Notes\n\nhello")]))
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("json");
    assert!(status == 502 || status == 503, "{status} {body}");
    let message = body["error"]["message"].as_str().expect("a message");
    assert!(message.starts_with("notes.md: ") && message.contains("storage"), "{message}");
    // Chatting does not need file storage.
    let (status, sent) = send(&app, &app.client, "Still there?", &[]).await;
    assert_eq!(status, 200, "{sent}");
    app.cleanup().await;
}

#[tokio::test]
async fn an_administrator_shares_a_knowledge_base_that_members_answer_from_but_cannot_change() {
    let app = TestApp::spawn().await;
    let created = app.post_form("/knowledge", &[("name", "Company policies")]).await;
    let base = created.headers()["location"].to_str().expect("ascii").trim_start_matches("/knowledge/").to_owned();
    // Uploaded straight into the knowledge base.
    let response = app
        .client
        .post(app.url(&format!("/knowledge/{base}/upload")))
        .header("accept", "application/json")
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart_body(None, &[("policy.md", b"# Travel\n\nEconomy class for flights under six hours.")]))
        .send()
        .await
        .expect("upload");
    let uploaded: Value = response.json().await.expect("json");
    let policy = uploaded["files"][0]["id"].as_str().expect("an id").to_owned();
    wait_ready(&app, &base).await;

    let (bob, bob_id) = member(&app, "Bob").await;
    assert_eq!(app.page_as(&bob, &format!("/knowledge/{base}")).await.0, 404, "private at first");
    let shared = app.post_form(&format!("/knowledge/{base}/sharing"), &[("shared_with", "everyone")]).await;
    assert!(shared.status().is_redirection());
    // A member cannot upload into it (nothing of theirs is stored), nor share it.
    let intruding = bob
        .post(app.url(&format!("/knowledge/{base}/upload")))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart_body(None, &[("x.md", b"intruder")]))
        .send()
        .await
        .expect("upload");
    assert_eq!(intruding.status().as_u16(), 404);
    assert!(app.services.files.list(bob_id).await.expect("lists").is_empty());
    let (status, _) = app.page_as(&bob, "/knowledge").await;
    assert_eq!(status, 200);
    let refused = bob.post(app.url(&format!("/knowledge/{base}/sharing"))).form(&[("shared_with", "")]).send().await;
    assert_eq!(refused.expect("post").status().as_u16(), 404);

    // Bob sees it read-only and lets his assistant answer from it.
    let (_, list) = app.page_as(&bob, "/knowledge").await;
    assert!(list.contains("Company policies") && list.contains("Shared with you (read-only)"), "{list}");
    let (status, page) = app.page_as(&bob, &format!("/knowledge/{base}")).await;
    assert_eq!(status, 200);
    assert!(page.contains("policy.md") && !page.contains("/delete") && !page.contains("/remove"), "read-only");
    for (path, form) in [
        (format!("/knowledge/{base}/edit"), vec![("name", "mine now")]),
        (format!("/knowledge/{base}/delete"), vec![]),
        (format!("/knowledge/{base}/files/{policy}/remove"), vec![]),
    ] {
        let response = bob.post(app.url(&path)).form(&form).send().await.expect("post");
        assert_eq!(response.status().as_u16(), 404, "{path}");
    }
    let bobs_assistant = app.services.assistants.default_assistant(bob_id).await.expect("assistant").id;
    let attach = bob
        .post(app.url(&format!("/knowledge/{base}/assistants")))
        .form(&[("assistant", bobs_assistant.to_string().as_str()), ("on", "1")])
        .send()
        .await
        .expect("attach");
    assert!(attach.status().is_success() || attach.status().is_redirection(), "{}", attach.status());
    app.fake.set_recording(true);
    let sent = bob
        .post(app.url(&format!("/chat/{bobs_assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", "Which class for short flights?"), ("topic_id", "")])
        .send()
        .await
        .expect("send");
    assert_eq!(sent.status().as_u16(), 200);
    assert!(app.fake.wait_for_requests(1, Duration::from_secs(10)).await);
    let question = sent_question(&app).await;
    assert!(text_of(&question).contains("Economy class for flights under six hours."), "answered from the shared base");

    // The administrators' panel lists it with its owner; a member sees no such panel.
    let (status, panel) = app.page("/admin/knowledge").await;
    assert_eq!(status, 200);
    assert!(panel.contains("Company policies") && panel.contains("Everyone"), "{panel}");
    assert_eq!(app.page_as(&bob, "/admin/knowledge").await.0, 404);
    let unshare = format!("/admin/knowledge/{base}/unshare");
    let refused = bob.post(app.url(&unshare)).form(&[("x", "")]).send().await.expect("post");
    assert_eq!(refused.status().as_u16(), 404);
    // Made private again from there, it is no longer Bob's to read or answer from.
    assert!(app.post_form(&unshare, &[("x", "")]).await.status().is_redirection());
    let (_, panel) = app.page("/admin/knowledge").await;
    assert!(panel.contains("private to its owner again") && !panel.contains("Company policies"), "{panel}");
    assert_eq!(app.page_as(&bob, &format!("/knowledge/{base}")).await.0, 404);
    let before = app.fake.request_count();
    bob.post(app.url(&format!("/chat/{bobs_assistant}/send")))
        .header("accept", "application/json")
        .form(&[("content", "Which class for short flights?"), ("topic_id", "")])
        .send()
        .await
        .expect("send");
    // The second topic's question (not a title request of the first) goes without sources.
    let question_of = |r: &loquat_test_support::fake_upstream::RecordedRequest| {
        r.body["messages"].as_array().and_then(|m| m.last()).map(text_of).unwrap_or_default()
    };
    crate::helpers::eventually("the second question", || async {
        app.fake.requests().iter().skip(before).any(|r| question_of(r) == "Which class for short flights?")
    })
    .await;
    let later = app.fake.requests();
    assert!(later.iter().skip(before).all(|r| !question_of(r).contains("Economy class")), "no sources once private");
    app.cleanup().await;
}

#[tokio::test]
async fn the_administrator_chooses_the_embedding_model_and_documents_are_embedded_again() {
    // No DEFAULT_FILES_CONFIG: words only at first.
    let app = TestApp::spawn().await;
    let created = app.post_form("/knowledge", &[("name", "Annual reports")]).await;
    let base = created.headers()["location"].to_str().expect("ascii").trim_start_matches("/knowledge/").to_owned();
    let report = upload(&app, &app.client, "annual-report.pdf", &fixtures::annual_report_pdf()).await;
    app.post_form(&format!("/knowledge/{base}/files"), &[("file", &report)]).await;
    wait_ready(&app, &base).await;
    let (_, panel) = app.page("/admin/knowledge").await;
    assert!(panel.contains("In use: none") && panel.contains("(words only)"), "{panel}");

    // The assistant form chooses the knowledge bases its assistant answers from.
    let assistant = app.default_assistant().await;
    let (_, form) = app.page(&format!("/assistants/{assistant}/edit")).await;
    assert!(form.contains(&format!("name=\"knowledge\" value=\"{base}\"")) && form.contains("Annual reports"));
    let saved = app.post_form(&format!("/assistants/{assistant}"), &[("title", "Analyst"), ("knowledge", &base)]).await;
    assert!(saved.status().is_redirection(), "{}", saved.status());
    let (_, form) = app.page(&format!("/assistants/{assistant}/edit")).await;
    assert!(form.contains(&format!("value=\"{base}\" checked")), "{form}");
    // Thousands of ids are refused before they cost a query each.
    let many: Vec<(&str, String)> =
        (0..51).map(|_| ("knowledge", loquat_core::id::KnowledgeBaseId::new().to_string())).collect();
    let refused = app.client.post(app.url(&format!("/assistants/{assistant}"))).form(&many).send().await.expect("post");
    assert_eq!(refused.status().as_u16(), 422);
    assert!(refused.text().await.expect("page").contains("at most 50 knowledge bases"));
    let (_, form) = app.page(&format!("/assistants/{assistant}/edit")).await;
    assert!(form.contains("value=\"Analyst\"") && form.contains(&format!("value=\"{base}\" checked")), "unchanged");

    // A provider the server does not have, or a name without one, is refused; nothing changes.
    let shared = &app;
    let choose = |choice: &'static str, model: &'static str| async move {
        shared.post_form("/admin/knowledge/embedding", &[("choice", choice), ("model", model)]).await
    };
    let refused = choose("model", "nowhere/embedder").await;
    assert_eq!(refused.status().as_u16(), 200);
    let text = refused.text().await.expect("page");
    assert!(text.contains("is not one of the server") && text.contains("nowhere/embedder"), "{text}");
    assert!(choose("model", "no-slash").await.text().await.expect("page").contains("provider/model"));
    let (_, panel) = app.page("/admin/knowledge").await;
    assert!(panel.contains("In use: none"), "unchanged");

    // A model that answers is taken; the document is embedded again in the background.
    app.fake.set_recording(true);
    let chosen = choose("model", "openai/text-embedding-3-small").await;
    assert!(chosen.status().is_redirection(), "{}", chosen.status());
    assert!(chosen.headers()["location"].to_str().expect("ascii").ends_with("queued=1"));
    crate::helpers::eventually("the document embedded with the new model", || async {
        app.page("/admin/knowledge").await.1.contains("<td class=\"mono\">openai/text-embedding-3-small</td>")
    })
    .await;
    let (_, panel) = app.page("/admin/knowledge").await;
    assert!(panel.contains("In use: <code>openai/text-embedding-3-small</code>"), "{panel}");
    // Questions are now searched by meaning too: the question is embedded.
    let before = app.fake.request_count();
    let (status, _) = send(&app, &app.client, "研发投入增长了多少？", &[]).await;
    assert_eq!(status, 200);
    crate::helpers::eventually("the question embedded and answered with sources", || async {
        let requests = app.fake.requests();
        let later = &requests[before.min(requests.len())..];
        let embedded =
            later.iter().any(|r| r.path.ends_with("/embeddings") && r.body["input"][0] == "研发投入增长了多少？");
        let cited = later.iter().any(|r| {
            r.path.ends_with("/chat/completions")
                && r.body["messages"]
                    .as_array()
                    .and_then(|m| m.last())
                    .is_some_and(|m| text_of(m).contains("<sources>"))
        });
        embedded && cited
    })
    .await;

    // Back to words only: the vectors go with the next reading; the audit log has each change.
    let chosen = choose("none", "").await;
    assert!(chosen.status().is_redirection());
    crate::helpers::eventually("the document read again without vectors", || async {
        let panel = app.page("/admin/knowledge").await.1;
        panel.contains("(words only)") && !panel.contains("<td class=\"mono\">openai/")
    })
    .await;
    let (_, audit) = app.page("/admin/audit").await;
    assert!(audit.contains("embedding_model") && audit.contains("openai/text-embedding-3-small"), "{audit}");
    // Members have no say.
    let (bob, _) = member(&app, "Bob").await;
    let form = [("choice", "none"), ("model", "")];
    let refused = bob.post(app.url("/admin/knowledge/embedding")).form(&form).send().await.expect("post");
    assert_eq!(refused.status().as_u16(), 404);
    app.cleanup().await;
}
