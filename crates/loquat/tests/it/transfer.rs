//! Import and export: ChatGPT's and LobeChat's exports, Loquat's own JSON and Markdown, agents
//! in LobeChat's format; branches kept, imports idempotent and bounded, hostile text inert,
//! nobody else's data touched.

use std::io::Write;

use loquat_core::domain::{Message, MessageRole, Topic};
use loquat_core::id::UserId;
use loquat_core::tree::MessageTree;
use loquat_test_support::fake_openai::Reply;
use serde_json::{Value, json};

use crate::files_api::{BOUNDARY, multipart_body};
use crate::helpers::{TestApp, TestOptions};

/// Uploads `content` as `name` to the import form; the status and the page.
pub(crate) async fn import(app: &TestApp, client: &reqwest::Client, name: &str, content: &[u8]) -> (u16, String) {
    let response = client
        .post(app.url("/settings/data/import"))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart_body(None, &[(name, content)]))
        .send()
        .await
        .expect("import");
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

/// Every topic of `user` (all assistants), oldest first, with its messages.
async fn everything(app: &TestApp, user: UserId) -> Vec<(Topic, Vec<Message>)> {
    let assistants = &app.services.assistants;
    let mut all = Vec::new();
    for assistant in assistants.list_assistants(user).await.expect("assistants") {
        for topic in assistants.list_topics(user, assistant.id).await.expect("topics") {
            let messages = app.services.assistants.topic_messages(user, topic.id).await.expect("messages");
            all.push((topic, messages));
        }
    }
    all.sort_by_key(|(topic, _)| topic.created_at);
    all
}

/// The texts of the branch a topic shows.
fn shown(topic: &Topic, messages: &[Message]) -> Vec<String> {
    MessageTree::new(messages).branch(topic.active_leaf_id).into_iter().map(|entry| entry.message.content).collect()
}

/// A ChatGPT export: one conversation with an edited question, a regenerated answer (the
/// shown one), hidden and tool rows and an image; one whose title is a script.
fn chatgpt_export() -> Value {
    let node = |id: &str, parent: Option<&str>, children: &[&str], message: Value| {
        (id.to_owned(), json!({ "id": id, "parent": parent, "children": children, "message": message }))
    };
    let text = |role: &str, text: &str, time: f64| {
        json!({ "author": { "role": role }, "create_time": time, "recipient": "all",
                "content": { "content_type": "text", "parts": [text] }, "metadata": { "model_slug": "gpt-4o" } })
    };
    let mut first = serde_json::Map::new();
    for (id, value) in [
        node("root", None, &["sys"], Value::Null),
        node("sys", Some("root"), &["q1", "q1-edit"], {
            let mut hidden = text("system", "", 1.0);
            hidden["metadata"]["is_visually_hidden_from_conversation"] = json!(true);
            hidden
        }),
        node("q1", Some("sys"), &["a1", "a2"], text("user", "What is a loquat?", 1_700_000_000.0)),
        node("a1", Some("q1"), &[], text("assistant", "A fruit.", 1_700_000_001.0)),
        node("a2", Some("q1"), &["call"], text("assistant", "A small orange fruit.", 1_700_000_002.0)),
        node("call", Some("a2"), &["result"], {
            let mut call = text("assistant", "print(1)", 1_700_000_003.0);
            call["recipient"] = json!("python");
            call["content"] = json!({ "content_type": "code", "language": "python", "text": "print(1)" });
            call
        }),
        node("result", Some("call"), &["after"], {
            let mut result = text("tool", "1", 1_700_000_004.0);
            result["content"] = json!({ "content_type": "execution_output", "text": "1" });
            result
        }),
        node("after", Some("result"), &[], text("assistant", "It grows in China.", 1_700_000_005.0)),
        node("q1-edit", Some("sys"), &["a3"], {
            let mut edited = text("user", "What is a loquat tree?", 1_700_000_006.0);
            edited["content"] = json!({ "content_type": "multimodal_text", "parts": [
                { "content_type": "image_asset_pointer", "asset_pointer": "file-service://file-1" },
                "What is a loquat tree?"
            ]});
            edited
        }),
        node("a3", Some("q1-edit"), &[], text("assistant", "An evergreen tree.", 1_700_000_007.0)),
    ] {
        first.insert(id, value);
    }
    let mut second = serde_json::Map::new();
    for (id, value) in [
        node("r", None, &["m1"], Value::Null),
        node("m1", Some("r"), &["m2"], text("user", "<img src=x onerror=alert(1)>", 1_700_000_100.0)),
        node("m2", Some("m1"), &[], text("assistant", "<script>alert(2)</script>", 1_700_000_101.0)),
    ] {
        second.insert(id, value);
    }
    json!([
        { "id": "conv-1", "title": "Loquats", "create_time": 1_700_000_000.0, "update_time": 1_700_000_007.0,
          "current_node": "after", "mapping": first },
        { "id": "conv-2", "title": "<script>alert('title')</script>", "create_time": 1_700_000_100.0,
          "current_node": "m2", "mapping": second },
    ])
}

fn zipped(name: &str, content: &[u8]) -> Vec<u8> {
    let mut archive = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    archive.start_file(name, options).expect("entry");
    archive.write_all(content).expect("written");
    archive.finish().expect("finished").into_inner()
}

#[tokio::test]
async fn a_chatgpt_export_keeps_its_branches_and_imports_once() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let export = serde_json::to_vec(&chatgpt_export()).expect("json");
    let (status, page) = import(&app, &app.client, "conversations.json", &export).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("a ChatGPT export: 2 topics with 7 messages"), "{page}");
    assert!(page.contains("system, tool or hidden messages left out"), "{page}");
    let topics = everything(&app, admin).await;
    assert_eq!(topics.len(), 2);
    let (loquats, messages) = &topics[0];
    assert_eq!(loquats.title, "Loquats");
    // The shown branch is ChatGPT's current one; the tool call folded into one answer.
    assert_eq!(
        shown(loquats, messages),
        ["What is a loquat?", "A small orange fruit.\n\nIt grows in China."],
        "the current branch"
    );
    let tree = MessageTree::new(messages);
    let roots: Vec<_> = messages.iter().filter(|m| m.parent_id.is_none()).collect();
    assert_eq!(roots.len(), 2, "the edited question is a sibling of the first");
    let answers = messages.iter().filter(|m| m.parent_id == Some(roots[0].id)).count();
    assert_eq!(answers, 2, "the regenerated answer is a sibling");
    assert_eq!(tree.branch(Some(tree.latest_leaf_under(roots[1].id)))[0].message.content, "What is a loquat tree?");
    assert!(messages.iter().all(|m| m.role != MessageRole::Assistant || m.model.as_deref() == Some("gpt-4o")));
    // Hostile text is text.
    let (_, page) = app.page(&format!("/chat/{}/{}", topics[1].0.assistant_id, topics[1].0.id)).await;
    assert!(!page.contains("<script>alert") && !page.contains("<img src=x"), "inert: {page}");
    assert!(page.contains("&#60;script&#62;alert(&#39;title&#39;)"), "the title, escaped: {page}");
    // The zip of the same export: nothing twice.
    let (status, page) = import(&app, &app.client, "chatgpt-export.zip", &zipped("conversations.json", &export)).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("0 topics with 0 messages"), "{page}");
    assert!(page.contains("already here"), "{page}");
    assert_eq!(everything(&app, admin).await.len(), 2);
    app.cleanup().await;
}

#[tokio::test]
async fn loquat_json_carries_everything_to_another_account_and_markdown_reads_back() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("First answer"));
    app.fake.push_reply(Reply::text("Greeting"));
    let sent = app.send(assistant, None, "Hello <b>there</b>").await;
    app.finished(sent.answer).await;
    app.titled(sent.topic).await;
    // A second answer: a branch.
    app.fake.push_reply(Reply::text("Second answer"));
    let location = app.post_redirect(&format!("/messages/{}/regenerate", sent.answer), &[]).await;
    assert!(location.contains(&sent.topic.to_string()));
    crate::helpers::eventually("the second answer", || async {
        let messages = app.services.assistants.topic_messages(admin, sent.topic).await.expect("messages");
        messages
            .iter()
            .any(|m| m.content == "Second answer" && m.status == loquat_core::domain::MessageStatus::Complete)
    })
    .await;
    app.post_redirect(&format!("/topics/{}/pin", sent.topic), &[("pinned", "1"), ("back", "/")]).await;
    let created = app
        .post_redirect("/assistants", &[("title", "Tea Guide"), ("system_role", "You know tea."), ("tags", "tea, 茶")])
        .await;
    assert!(created.starts_with("/chat/"), "{created}");
    // The whole export, streamed.
    let response = app.client.get(app.url("/settings/data/export")).send().await.expect("export");
    assert_eq!(response.status().as_u16(), 200);
    let disposition = response.headers()["content-disposition"].to_str().expect("ascii").to_owned();
    assert!(disposition.starts_with("attachment;") && disposition.contains("loquat-export-"), "{disposition}");
    let export = response.bytes().await.expect("body");
    let document: Value = serde_json::from_slice(&export).expect("one JSON document");
    assert_eq!(document["format"], "loquat-export");
    assert_eq!(document["topics"][0]["messages"].as_array().map(Vec::len), Some(3));
    // Into the same account: already here.
    let (_, page) = import(&app, &app.client, "loquat-export.json", &export).await;
    assert!(page.contains("0 topics with 0 messages and 0 assistants"), "{page}");
    // Into Bob's: the same tree, the same shown branch, pinned, the assistant with its tags.
    let (bob, bob_id) = crate::hardening::member(&app, "Bob").await;
    let (status, page) = import(&app, &bob, "loquat-export.json", &export).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("1 topics with 3 messages and 1 assistants"), "{page}");
    let mine = everything(&app, admin).await;
    let theirs = everything(&app, bob_id).await;
    assert_eq!(theirs.len(), 1);
    let ((original, original_messages), (copy, copy_messages)) = (&mine[0], &theirs[0]);
    assert_eq!(shown(original, original_messages), shown(copy, copy_messages));
    assert_eq!(shown(copy, copy_messages), ["Hello <b>there</b>", "Second answer"]);
    assert_eq!(copy.title, original.title);
    assert!(copy.pinned);
    assert_eq!(copy_messages.len(), 3);
    let tea = app.services.assistants.list_assistants(bob_id).await.expect("assistants");
    let tea = tea.iter().find(|a| a.config.title == "Tea Guide").expect("the assistant came along");
    assert_eq!(tea.config.tags, ["tea", "茶"]);
    // Again: nothing twice; the administrator's data untouched by Bob's imports.
    let (_, page) = import(&app, &bob, "loquat-export.json", &export).await;
    assert!(page.contains("0 topics with 0 messages and 0 assistants") && page.contains("already here"), "{page}");
    assert_eq!(everything(&app, bob_id).await.len(), 1);
    assert_eq!(everything(&app, admin).await.len(), 1);
    // One topic as Markdown, read back as a topic; Bob cannot export the administrator's.
    let markdown_url = format!("/topics/{}/export?format=markdown", sent.topic);
    let markdown = app.client.get(app.url(&markdown_url)).send().await.expect("markdown");
    assert!(markdown.headers()["content-type"].to_str().expect("ascii").starts_with("text/markdown"));
    let markdown = markdown.text().await.expect("text");
    assert!(markdown.contains("## User\n\nHello <b>there</b>") && markdown.contains("## Assistant · gpt-4.1"));
    assert!(!markdown.contains("First answer"), "only the shown branch: {markdown}");
    let not_yours = bob.get(app.url(&markdown_url)).send().await.expect("GET");
    assert_eq!(not_yours.status().as_u16(), 404);
    let (status, page) = import(&app, &bob, "greeting.md", markdown.as_bytes()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Markdown: 1 topics with 2 messages"), "{page}");
    let theirs = everything(&app, bob_id).await;
    let (from_markdown, messages) = &theirs[1];
    assert_eq!(from_markdown.title, original.title);
    assert_eq!(shown(from_markdown, messages), ["Hello <b>there</b>", "Second answer"]);
    // One topic as JSON.
    let json_url = format!("/topics/{}/export?format=json", sent.topic);
    let topic: Value = app.client.get(app.url(&json_url)).send().await.expect("json").json().await.expect("JSON");
    assert_eq!(topic["topics"].as_array().map(Vec::len), Some(1));
    assert_eq!(topic["assistants"][0]["is_default"], true);
    app.cleanup().await;
}

/// LobeChat's table dump: the inbox and an agent's session, a topic, messages outside topics,
/// a tool call and its result, an error answer.
fn lobechat_dump() -> Value {
    json!({
        "mode": "postgres",
        "schemaHash": "abc",
        "data": {
            "sessions": [
                { "id": "ssn_inbox", "slug": "inbox", "type": "agent" },
                { "id": "ssn_tea", "slug": "tea", "type": "agent", "title": "Tea session",
                  "createdAt": "2025-01-02T10:00:00.000Z" }
            ],
            "agents": [{ "id": "agt_tea", "title": "Tea Guide", "avatar": "🍵", "tags": ["tea"],
                         "systemRole": "You are a tea expert.", "model": "gpt-4o", "provider": "openai",
                         "params": { "temperature": 0.6 }, "openingQuestions": ["Green or black?"] }],
            "agentsToSessions": [{ "agentId": "agt_tea", "sessionId": "ssn_tea" }],
            "topics": [{ "id": "tpc_1", "title": "Oolong", "sessionId": "ssn_tea", "favorite": true,
                         "createdAt": "2025-01-02T10:00:00.000Z" }],
            "messages": [
                { "id": "msg_1", "role": "user", "content": "What is oolong?", "topicId": "tpc_1",
                  "sessionId": "ssn_tea", "createdAt": "2025-01-02T10:00:01.000Z" },
                { "id": "msg_2", "role": "assistant", "content": "", "topicId": "tpc_1", "parentId": "msg_1",
                  "tools": [{ "id": "call_1", "apiName": "search", "arguments": "{}", "identifier": "web" }],
                  "sessionId": "ssn_tea", "createdAt": "2025-01-02T10:00:02.000Z" },
                { "id": "msg_3", "role": "tool", "content": "results", "topicId": "tpc_1", "parentId": "msg_2",
                  "sessionId": "ssn_tea", "createdAt": "2025-01-02T10:00:03.000Z" },
                { "id": "msg_4", "role": "assistant", "content": "A partly oxidised tea.", "topicId": "tpc_1",
                  "parentId": "msg_3", "model": "gpt-4o", "provider": "openai",
                  "sessionId": "ssn_tea", "createdAt": "2025-01-02T10:00:04.000Z" },
                { "id": "msg_5", "role": "user", "content": "Hi", "sessionId": null, "topicId": null,
                  "createdAt": "2025-01-03T10:00:00.000Z" },
                { "id": "msg_6", "role": "assistant", "content": "", "parentId": "msg_5", "sessionId": null,
                  "error": { "type": "InvalidAPIKey", "message": "bad key" },
                  "createdAt": "2025-01-03T10:00:01.000Z" }
            ]
        }
    })
}

#[tokio::test]
async fn lobechat_exports_of_both_kinds_import_as_assistants_and_topics() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let dump = serde_json::to_vec(&lobechat_dump()).expect("json");
    let (status, page) = import(&app, &app.client, "lobechat-data.json", &dump).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("a LobeChat export: 2 topics with 4 messages and 1 assistants"), "{page}");
    let assistants = app.services.assistants.list_assistants(admin).await.expect("assistants");
    let tea = assistants.iter().find(|a| a.config.title == "Tea Guide").expect("the agent");
    assert_eq!((tea.config.avatar.as_str(), tea.config.model.as_str()), ("🍵", "gpt-4o"));
    assert_eq!(tea.config.system_role, "You are a tea expert.");
    assert_eq!(tea.config.params.temperature, Some(0.6));
    let topics = everything(&app, admin).await;
    let (oolong, messages) = topics.iter().find(|(t, _)| t.title == "Oolong").expect("the topic");
    assert_eq!(oolong.assistant_id, tea.id);
    assert!(oolong.pinned, "a favourite is pinned");
    assert_eq!(shown(oolong, messages), ["What is oolong?", "A partly oxidised tea."]);
    let (inbox, messages) = topics.iter().find(|(t, _)| t.title.is_empty()).expect("the inbox's messages");
    assert_eq!(inbox.assistant_id, app.default_assistant().await);
    assert_eq!(messages[1].status, loquat_core::domain::MessageStatus::Error);
    assert_eq!(messages[1].error_message.as_deref(), Some("bad key"));
    let (_, page) = import(&app, &app.client, "lobechat-data.json", &dump).await;
    assert!(page.contains("0 topics with 0 messages and 0 assistants"), "{page}");
    // The older settings file (version 7).
    let legacy = json!({
        "exportType": "sessions", "version": 7,
        "state": {
            "sessions": [{ "id": "s1", "type": "agent", "meta": { "title": "Poet", "avatar": "https://x/y.png" },
                           "config": { "systemRole": "Write poems.", "model": "gpt-4o-mini",
                                       "chatConfig": { "enableHistoryCount": true, "historyCount": 4 } },
                           "createdAt": 1_735_000_000_000_i64 }],
            "topics": [{ "id": "t1", "title": "Haiku", "sessionId": "s1", "createdAt": 1_735_000_000_000_i64 }],
            "messages": [
                { "id": "m1", "role": "user", "content": "A haiku", "topicId": "t1", "sessionId": "s1",
                  "createdAt": 1_735_000_000_001_i64 },
                { "id": "m2", "role": "assistant", "content": "Autumn moon", "topicId": "t1", "sessionId": "s1",
                  "parentId": "m1", "extra": { "fromModel": "gpt-4o-mini", "fromProvider": "openai" },
                  "createdAt": 1_735_000_000_002_i64 }
            ]
        }
    });
    let (status, page) = import(&app, &app.client, "old.json", legacy.to_string().as_bytes()).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("1 topics with 2 messages and 1 assistants"), "{page}");
    let assistants = app.services.assistants.list_assistants(admin).await.expect("assistants");
    let poet = assistants.iter().find(|a| a.config.title == "Poet").expect("the session's agent");
    assert_eq!(poet.config.avatar, "🤖", "an image avatar becomes the default emoji");
    assert_eq!(poet.config.history_limit, Some(4));
    app.cleanup().await;
}

#[tokio::test]
async fn files_that_are_not_exports_are_refused_clearly() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let cases: [(&str, Vec<u8>); 6] = [
        ("photo.png", crate::attachments::PNG.to_vec()),
        ("conversations.json", b"[{\"mapping\": ".to_vec()),
        ("data.json", br#"{"hello": "world"}"#.to_vec()),
        ("export.zip", zipped("readme.txt", b"nothing here")),
        ("notes.md", b"# Just notes\n\nNo conversation here.".to_vec()),
        ("deep.json", format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes()),
    ];
    for (name, content) in cases {
        let (status, page) = import(&app, &app.client, name, &content).await;
        assert_eq!(status, 422, "{name}: {page}");
        assert!(page.contains("not an export Loquat can read"), "{name}: {page}");
    }
    let old = json!({ "exportType": "all", "version": 1, "state": { "sessions": {} } });
    let (status, page) = import(&app, &app.client, "v1.json", old.to_string().as_bytes()).await;
    assert_eq!(status, 422);
    assert!(page.contains("export it again from a current version"), "{page}");
    assert!(everything(&app, admin).await.is_empty(), "nothing was written");
    app.cleanup().await;
}

/// Serves `body` as JSON to one request on a local port; its address.
async fn serve_once(body: String) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        if let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0; 4096];
            let _ = socket.read(&mut request).await;
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
        }
    });
    format!("http://{address}/tea-guide.json")
}

#[tokio::test]
async fn agents_travel_in_lobechats_format_from_files_and_addresses() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.ssrf_allow = "127.0.0.1".into(),
        ..TestOptions::default()
    })
    .await;
    let agent = json!({
        "identifier": "tea-guide", "schemaVersion": 1, "createdAt": "2025-03-01",
        "meta": { "title": "Tea Guide", "description": "Explains teas", "avatar": "🍵", "tags": ["tea"] },
        "config": { "systemRole": "You are a tea expert.", "openingQuestions": ["Green or black?"],
                    "params": { "temperature": 0.6 } }
    });
    let response = app
        .client
        .post(app.url("/assistants/import"))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart_body(None, &[("tea-guide.json", agent.to_string().as_bytes())]))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status().as_u16(), 303);
    let edit = response.headers()["location"].to_str().expect("ascii").to_owned();
    let id = edit.trim_start_matches("/assistants/").trim_end_matches("/edit").to_owned();
    let (_, page) = app.page(&edit).await;
    assert!(page.contains("You are a tea expert.") && page.contains("value=\"tea\""), "{page}");
    // Exported again in the same format.
    let exported: Value = app
        .client
        .get(app.url(&format!("/assistants/{id}/export")))
        .send()
        .await
        .expect("export")
        .json()
        .await
        .expect("JSON");
    assert_eq!(exported["identifier"], "tea-guide");
    assert_eq!(exported["meta"]["tags"], json!(["tea"]));
    assert_eq!(exported["config"]["systemRole"], "You are a tea expert.");
    assert_eq!(exported["config"]["openingQuestions"], json!(["Green or black?"]));
    // From an address (allowed here: the test server is local).
    let url = serve_once(agent.to_string().replace("Tea Guide", "Tea Guide 2")).await;
    let response = app
        .client
        .post(app.url("/assistants/import"))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\n{url}\r\n--{BOUNDARY}--\r\n"
        ))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status().as_u16(), 303);
    let titles: Vec<String> = app
        .services
        .assistants
        .list_assistants(app.admin().await)
        .await
        .expect("assistants")
        .into_iter()
        .map(|a| a.config.title)
        .collect();
    assert!(titles.contains(&"Tea Guide 2".to_owned()), "{titles:?}");
    // Someone else's assistant is not exported; a document that is not an agent is refused.
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let theirs = bob.get(app.url(&format!("/assistants/{id}/export"))).send().await.expect("GET");
    assert_eq!(theirs.status().as_u16(), 404);
    let refused = app
        .client
        .post(app.url("/assistants/import"))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart_body(None, &[("x.json", br#"{"title": "no meta"}"#)]))
        .send()
        .await
        .expect("import");
    assert_eq!(refused.status().as_u16(), 422);
    app.cleanup().await;
}

#[tokio::test]
async fn an_agent_address_goes_through_the_ssrf_guard() {
    let app = TestApp::spawn().await;
    let url = serve_once("{}".to_owned()).await;
    let response = app
        .client
        .post(app.url("/assistants/import"))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"url\"\r\n\r\n{url}\r\n--{BOUNDARY}--\r\n"
        ))
        .send()
        .await
        .expect("import");
    assert_eq!(response.status().as_u16(), 422);
    let page = response.text().await.expect("page");
    assert!(page.contains("could not be fetched"), "{page}");
    app.cleanup().await;
}

#[tokio::test]
async fn assistants_are_pinned_and_ordered_by_their_owner() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let mut ids = Vec::new();
    for title in ["One", "Two", "Three"] {
        let location = app.post_redirect("/assistants", &[("title", title)]).await;
        ids.push(location.trim_start_matches("/chat/").to_owned());
    }
    let titles = || async {
        let list = app.services.assistants.list_assistants(admin).await.expect("assistants");
        list.into_iter().skip(1).map(|a| a.config.title).collect::<Vec<_>>()
    };
    assert_eq!(titles().await, ["One", "Two", "Three"]);
    app.post_redirect(&format!("/assistants/{}/arrange/pin", ids[2]), &[("value", "1")]).await;
    assert_eq!(titles().await, ["Three", "One", "Two"]);
    app.post_redirect(&format!("/assistants/{}/arrange/move", ids[1]), &[("value", "up")]).await;
    assert_eq!(titles().await, ["Three", "Two", "One"]);
    // A pinned one does not move past the unpinned; the order survives an edit of the form.
    app.post_redirect(&format!("/assistants/{}/arrange/move", ids[2]), &[("value", "down")]).await;
    assert_eq!(titles().await, ["Three", "Two", "One"]);
    app.post_redirect(&format!("/assistants/{}", ids[1]), &[("title", "Two, renamed")]).await;
    assert_eq!(titles().await, ["Three", "Two, renamed", "One"]);
    let (_, page) = app.page(&format!("/chat/{}", ids[0])).await;
    assert!(page.contains("Unpin") && page.contains("Move up"), "the sidebar's menu");
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let refused = bob
        .post(app.url(&format!("/assistants/{}/arrange/pin", ids[0])))
        .form(&[("value", "1")])
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn the_composer_counts_the_next_requests_tokens_against_the_context_window() {
    let app = TestApp::spawn_with(TestOptions {
        env: vec![("OPENAI_MODEL_LIST", "-all,gpt-4.1,tiny<8000>".into())],
        ..TestOptions::default()
    })
    .await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("word ".repeat(400)));
    let sent = app.send(assistant, None, "A first question").await;
    app.finished(sent.answer).await;
    let estimate = |content: String, topic: String| {
        let app = &app;
        async move {
            let response = app
                .client
                .post(app.url(&format!("/chat/{assistant}/tokens")))
                .header("accept", "application/json")
                .form(&[("content", content.as_str()), ("topic_id", topic.as_str()), ("files", "")])
                .send()
                .await
                .expect("POST");
            assert_eq!(response.status().as_u16(), 200);
            response.json::<Value>().await.expect("JSON")
        }
    };
    let fresh = estimate("Hello there".into(), String::new()).await;
    let with_history = estimate("Hello there".into(), sent.topic.to_string()).await;
    assert!(fresh["total"].as_u64() < Some(10), "{fresh}");
    assert!(with_history["total"].as_u64() > Some(500), "the history counts: {with_history}");
    assert_eq!(fresh["window"], 1_047_576, "gpt-4.1's window from the model bank: {fresh}");
    assert!(fresh["label"].as_str().is_some_and(|label| label.contains("/ 1,047,576 tokens")), "{fresh}");
    assert_eq!(fresh["too_large"], false);
    // 中文 counts about a token a character; a request past the window is flagged.
    app.post_redirect(&format!("/assistants/{assistant}/model"), &[("model", "openai::tiny")]).await;
    let chinese = estimate("枇杷".repeat(5_000), String::new()).await;
    assert!(chinese["total"].as_u64() > Some(9_000), "{chinese}");
    assert_eq!((chinese["window"].as_u64(), chinese["too_large"].as_bool()), (Some(8_000), Some(true)), "{chinese}");
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let theirs = bob
        .post(app.url(&format!("/chat/{assistant}/tokens")))
        .form(&[("content", "x"), ("topic_id", ""), ("files", "")])
        .send()
        .await
        .expect("POST");
    assert_eq!(theirs.status().as_u16(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn a_message_is_translated_into_the_readers_language_by_the_assistants_model() {
    let app = TestApp::spawn().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Loquats are **sweet**."));
    app.fake.push_reply(Reply::text("Loquats"));
    let sent = app.send(assistant, None, "Tell me about loquats").await;
    app.finished(sent.answer).await;
    app.titled(sent.topic).await;
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("枇杷很**甜**。<script>alert(1)</script>"));
    let response = app
        .client
        .post(app.url(&format!("/messages/{}/translate", sent.answer)))
        .header("accept", "application/json")
        .header("accept-language", "zh-CN")
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status().as_u16(), 200);
    let translated: Value = response.json().await.expect("JSON");
    let html = translated["html"].as_str().expect("html");
    assert!(html.contains("<strong>甜</strong>") && !html.contains("<script>"), "{html}");
    let request = app.fake.requests().pop().expect("the translation request");
    let asked = request.body.to_string();
    assert!(asked.contains("Simplified Chinese") && asked.contains("Loquats are **sweet**."), "{asked}");
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let theirs = bob.post(app.url(&format!("/messages/{}/translate", sent.answer))).send().await.expect("POST");
    assert_eq!(theirs.status().as_u16(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn a_long_topic_sends_a_summary_of_what_the_history_limit_leaves_out() {
    let app = TestApp::spawn().await;
    let location = app
        .post_redirect(
            "/assistants",
            &[("title", "Brief"), ("history_limit", "2"), ("compress_history", "on"), ("summary_model", "")],
        )
        .await;
    let assistant: loquat_core::id::AssistantId = location.trim_start_matches("/chat/").parse().expect("an id");
    app.fake.set_default_reply(Reply::text("The user asked what a loquat is: an orange fruit."));
    app.fake.push_reply(Reply::text("A loquat is an orange fruit."));
    let first = app.send(assistant, None, "What is a loquat? (first question)").await;
    app.finished(first.answer).await;
    app.titled(first.topic).await;
    app.fake.push_reply(Reply::text("They grow in China."));
    let second = app.send(assistant, Some(first.topic), "Where do they grow?").await;
    app.finished(second.answer).await;
    // Written after the answer: the first exchange is past the limit for the next question.
    let topic_url = format!("/chat/{assistant}/{}", first.topic);
    crate::helpers::eventually("the summary", || async {
        app.page(&topic_url).await.1.contains("Summary of the earlier conversation")
    })
    .await;
    let (_, page) = app.page(&topic_url).await;
    assert!(page.contains("an orange fruit.") && page.contains("Write it again"), "{page}");
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("In spring."));
    let third = app.send(assistant, Some(first.topic), "When are they ripe?").await;
    app.finished(third.answer).await;
    let asked = app
        .fake
        .requests()
        .into_iter()
        .find(|r| r.body.to_string().contains("When are they ripe?"))
        .expect("the third question's request");
    let sent = asked.body["messages"].to_string();
    assert!(sent.contains("Summary of the earlier part") && sent.contains("an orange fruit."), "{sent}");
    assert!(!sent.contains("(first question)"), "the summarised message is not sent again: {sent}");
    assert!(sent.contains("Where do they grow?"), "the limit's messages are: {sent}");
    // Written again on request, from scratch.
    app.fake.set_default_reply(Reply::text("Loquats: orange, from China, ripe in spring."));
    app.post_redirect(&format!("/topics/{}/summary", first.topic), &[]).await;
    let (_, page) = app.page(&topic_url).await;
    assert!(page.contains("ripe in spring."), "{page}");
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let refused = bob.post(app.url(&format!("/topics/{}/summary", first.topic))).send().await.expect("POST");
    assert_eq!(refused.status().as_u16(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn an_import_past_the_upload_limit_is_refused_before_it_is_read() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.files.max_bytes = 64 * 1024,
        ..TestOptions::default()
    })
    .await;
    // The limit is the file limit and the form's overhead (1 MiB): a 2 MiB export is refused.
    let huge = format!("[{}]", "{\"mapping\":{}},".repeat(150_000).trim_end_matches(','));
    let (status, _) = import(&app, &app.client, "conversations.json", huge.as_bytes()).await;
    assert_eq!(status, 413);
    assert!(everything(&app, app.admin().await).await.is_empty());
    app.cleanup().await;
}

#[tokio::test]
async fn the_same_export_imported_twice_at_once_is_kept_once() {
    let app = TestApp::spawn().await;
    let export = serde_json::to_vec(&chatgpt_export()).expect("json");
    let (first, second) = tokio::join!(
        import(&app, &app.client, "conversations.json", &export),
        import(&app, &app.client, "conversations.json", &export)
    );
    assert_eq!((first.0, second.0), (200, 200), "{} {}", first.1, second.1);
    let topics = everything(&app, app.admin().await).await;
    assert_eq!(topics.len(), 2, "each conversation once");
    assert_eq!(topics.iter().map(|(_, messages)| messages.len()).sum::<usize>(), 7);
    app.cleanup().await;
}
