//! `/v1/files` over HTTP: uploads streamed under the size limit with their type read from the
//! content, one file per content, names made safe, downloads as attachments that never run in
//! the page's origin, and every file its owner's only.

use loquat_core::id::FileId;
use serde_json::Value;

use crate::helpers::{TestApp, TestOptions};
use crate::openai_api::api_token;

pub(crate) const BOUNDARY: &str = "loquat-test-boundary-7d3f";

/// A `multipart/form-data` body: a `purpose` field (when given), then a `file` field per file.
pub(crate) fn multipart_body(purpose: Option<&str>, files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut body = Vec::new();
    if let Some(purpose) = purpose {
        body.extend_from_slice(
            format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\n{purpose}\r\n").as_bytes(),
        );
    }
    for (name, content) in files {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn upload(app: &TestApp, token: &str, name: &str, content: &[u8], purpose: Option<&str>) -> (u16, Value) {
    let response = app
        .client
        .post(app.url("/v1/files"))
        .bearer_auth(token)
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .body(multipart_body(purpose, &[(name, content)]))
        .send()
        .await
        .expect("upload");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn call(app: &TestApp, token: &str, method: reqwest::Method, path: &str) -> reqwest::Response {
    app.client.request(method, app.url(path)).bearer_auth(token).send().await.expect("request")
}

fn file_id(api_id: &str) -> FileId {
    api_id.strip_prefix("file-").expect("file-…").parse().expect("a file id")
}

/// The files under the data folder's file storage (temporary uploads included).
fn stored_objects(app: &TestApp) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.path().is_dir() {
                walk(&entry.path(), out);
            } else {
                out.push(entry.path().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(&app.data_dir.join("files"), &mut out);
    out
}

#[tokio::test]
async fn files_are_uploaded_typed_by_content_served_safely_and_kept_to_their_owner() {
    let app = TestApp::spawn().await;
    let token = api_token(&app).await;
    let admin = app.admin().await;
    let pdf = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n";

    let (status, report) = upload(&app, &token, "年报 2025.txt", pdf, Some("assistants")).await;
    assert_eq!(status, 200, "{report}");
    let id = report["id"].as_str().expect("id").to_owned();
    assert_eq!((report["object"].as_str(), report["filename"].as_str()), (Some("file"), Some("年报 2025.txt")));
    assert_eq!(report["bytes"].as_u64(), Some(pdf.len() as u64));
    let stored = app.services.files.get(admin, file_id(&id)).await.expect("stored");
    assert_eq!(stored.mime, "application/pdf", "the content decides, not the name");

    // The same content again is the same file; nothing new is stored.
    let (status, again) = upload(&app, &token, "copy.pdf", pdf, None).await;
    assert_eq!((status, again["id"].as_str()), (200, Some(id.as_str())));
    assert_eq!(stored_objects(&app).len(), 1, "{:?}", stored_objects(&app));

    // A name with path separators keeps its last part; HTML is never served as HTML.
    let page = b"<html><script>alert(document.cookie)</script></html>";
    let (status, hostile) = upload(&app, &token, "../../etc/page.html", page, None).await;
    assert_eq!((status, hostile["filename"].as_str()), (200, Some("page.html")));
    let download =
        call(&app, &token, reqwest::Method::GET, &format!("/v1/files/{}/content", hostile["id"].as_str().expect("id")))
            .await;
    assert_eq!(download.status().as_u16(), 200);
    let headers = download.headers();
    assert_eq!(headers["content-type"], "application/octet-stream");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(headers["content-disposition"].to_str().expect("ascii").starts_with("attachment;"));
    assert_eq!(download.bytes().await.expect("body").as_ref(), page);

    let download = call(&app, &token, reqwest::Method::GET, &format!("/v1/files/{id}/content")).await;
    let disposition = download.headers()["content-disposition"].to_str().expect("ascii").to_owned();
    assert!(disposition.contains("filename*=UTF-8''%E5%B9%B4%E6%8A%A5%202025.txt"), "{disposition}");
    assert_eq!(download.bytes().await.expect("body").as_ref(), pdf);

    // Bad uploads: empty, an unknown purpose (nothing kept), not multipart.
    let (status, empty) = upload(&app, &token, "empty.txt", b"", None).await;
    assert_eq!(status, 400, "{empty}");
    assert!(empty["error"]["message"].as_str().is_some_and(|m| m.contains("empty")), "{empty}");
    let (status, purpose) = upload(&app, &token, "x.txt", b"some text", Some("training")).await;
    assert_eq!((status, purpose["error"]["param"].as_str()), (400, Some("purpose")), "{purpose}");
    // The same refusal for content the caller already had leaves their file alone.
    let (status, _) = upload(&app, &token, "again.pdf", pdf, Some("training")).await;
    assert_eq!(status, 400);
    assert!(app.services.files.get(admin, file_id(&id)).await.is_ok(), "the earlier file stays");
    let plain = app.client.post(app.url("/v1/files")).bearer_auth(&token).body("file=x").send().await.expect("post");
    assert_eq!(plain.status().as_u16(), 400);
    let listed: Value = call(&app, &token, reqwest::Method::GET, "/v1/files").await.json().await.expect("list");
    assert_eq!(listed["data"].as_array().map(Vec::len), Some(2), "{listed}");

    // Another user's token finds nothing: not the file, its bytes, nor a way to delete it.
    let (_, bob) = crate::hardening::member(&app, "Bob").await;
    let (bob_token, _) = app.services.accounts.create_api_token(bob, "bob", &Default::default()).await.expect("token");
    let bob_token = bob_token.expose().to_owned();
    for (method, path) in [
        (reqwest::Method::GET, format!("/v1/files/{id}")),
        (reqwest::Method::GET, format!("/v1/files/{id}/content")),
        (reqwest::Method::DELETE, format!("/v1/files/{id}")),
        (reqwest::Method::GET, "/v1/files/file-nonsense".to_owned()),
    ] {
        let response = call(&app, &bob_token, method.clone(), &path).await;
        assert_eq!(response.status().as_u16(), 404, "{method} {path}");
    }
    let bobs: Value = call(&app, &bob_token, reqwest::Method::GET, "/v1/files").await.json().await.expect("list");
    assert_eq!(bobs["data"], serde_json::json!([]));
    // Bob's own copy of the same content is his own file.
    let (status, bobs_copy) = upload(&app, &bob_token, "mine.pdf", pdf, None).await;
    assert_eq!(status, 200);
    assert_ne!(bobs_copy["id"], report["id"]);

    // Deleting removes the record and the bytes.
    let deleted: Value =
        call(&app, &token, reqwest::Method::DELETE, &format!("/v1/files/{id}")).await.json().await.expect("json");
    assert_eq!((deleted["id"].as_str(), deleted["deleted"].as_bool()), (Some(id.as_str()), Some(true)));
    assert_eq!(call(&app, &token, reqwest::Method::GET, &format!("/v1/files/{id}")).await.status().as_u16(), 404);
    assert_eq!(stored_objects(&app).len(), 2, "the hostile page and Bob's copy: {:?}", stored_objects(&app));
    app.cleanup().await;
}

#[tokio::test]
async fn a_file_over_the_limit_is_refused_with_413_and_nothing_is_kept() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.files.max_bytes = 64 * 1024,
        ..TestOptions::default()
    })
    .await;
    let token = api_token(&app).await;
    let (status, refused) = upload(&app, &token, "big.bin", &vec![7u8; 200 * 1024], None).await;
    assert_eq!(status, 413, "{refused}");
    let message = refused["error"]["message"].as_str().expect("a message");
    assert!(message.contains("64 KB"), "{message}");
    assert!(stored_objects(&app).is_empty(), "{:?}", stored_objects(&app));
    let (status, _) = upload(&app, &token, "small.bin", &vec![7u8; 60 * 1024], None).await;
    assert_eq!(status, 200);
    // A part header the size of a file is not read into memory: the request's body is bounded.
    let (status, _) = upload(&app, &token, &"n".repeat(2 * 1024 * 1024), b"tiny", None).await;
    assert!((400..500).contains(&status), "{status}");
    app.cleanup().await;
}

/// The Files page's upload: a session cookie, `multipart/form-data` with `file` fields.
async fn page_upload(
    client: &reqwest::Client,
    app: &TestApp,
    files: &[(&str, &[u8])],
    json: bool,
) -> reqwest::Response {
    let body = multipart_body(None, files);
    client
        .post(app.url("/files"))
        .header("content-type", format!("multipart/form-data; boundary={BOUNDARY}"))
        .header("accept", if json { "application/json" } else { "text/html" })
        .body(body)
        .send()
        .await
        .expect("upload")
}

#[tokio::test]
async fn the_files_page_uploads_lists_serves_and_deletes_a_users_own_files() {
    let app = TestApp::spawn_with(TestOptions {
        configure: |config| config.files.max_bytes = 4 * 1024 * 1024,
        ..TestOptions::default()
    })
    .await;
    let admin = app.admin().await;
    // Larger than the pages' 2 MiB body limit: uploads are bounded by the file limit instead.
    let large = vec![b'x'; 3 * 1024 * 1024];
    let uploaded =
        page_upload(&app.client, &app, &[("<img src=x onerror=alert(1)>.txt", b"hello"), ("large.txt", &large)], false)
            .await;
    assert_eq!(uploaded.status().as_u16(), 303);
    assert_eq!(uploaded.headers()["location"], "/files?uploaded=2");
    let page = app.client.get(app.url("/files?uploaded=2")).send().await.expect("page").text().await.expect("html");
    assert!(page.contains("&#60;img src=x") && !page.contains("<img src=x"), "names are escaped: {page}");
    assert!(page.contains("3 MB") && page.contains("5 bytes"), "sizes in words");
    let files = app.services.files.list(admin).await.expect("files");
    let notes = files.iter().find(|file| file.size == 5).expect("the notes");

    let download = app.client.get(app.url(&format!("/files/{}", notes.id))).send().await.expect("download");
    assert_eq!(download.status().as_u16(), 200);
    assert!(download.headers()["content-disposition"].to_str().expect("ascii").starts_with("attachment;"));
    assert_eq!(download.bytes().await.expect("bytes").as_ref(), b"hello");

    // Too large, from the page script: a JSON error naming the file and the limit.
    let too_large = page_upload(&app.client, &app, &[("huge.bin", &vec![0u8; 5 * 1024 * 1024])], true).await;
    assert_eq!(too_large.status().as_u16(), 413);
    let error: Value = too_large.json().await.expect("json");
    let message = error["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("huge.bin: ") && message.contains("4 MB"), "{message}");
    // A form without a file says what it needs.
    let empty = page_upload(&app.client, &app, &[], false).await;
    assert_eq!(empty.status().as_u16(), 422);

    // Bob sees none of it.
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    assert_eq!(bob.get(app.url(&format!("/files/{}", notes.id))).send().await.expect("get").status().as_u16(), 404);
    let stolen = bob.post(app.url(&format!("/files/{}/delete", notes.id))).send().await.expect("post");
    assert_eq!(stolen.status().as_u16(), 404);
    let bobs_page = bob.get(app.url("/files")).send().await.expect("page").text().await.expect("html");
    assert!(!bobs_page.contains("img src=x"), "Bob's page lists only his files");

    let deleted = app.client.post(app.url(&format!("/files/{}/delete", notes.id))).send().await.expect("delete");
    assert_eq!(
        (deleted.status().as_u16(), deleted.headers()["location"].to_str().ok()),
        (303, Some("/files?deleted=1"))
    );
    assert_eq!(app.services.files.list(admin).await.expect("files").len(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn the_storage_quota_of_a_role_bounds_its_members_files() {
    let app = TestApp::spawn().await;
    app.admin().await;
    let set = app
        .client
        .post(app.url("/admin/settings/quota-user"))
        .form(&[("tokens_per_day", ""), ("tokens_per_month", ""), ("requests_per_minute", ""), ("storage_mb", "1")])
        .send()
        .await
        .expect("quota set");
    assert!(set.status().is_success() || set.status().as_u16() == 303, "{}", set.status());
    let refused = app
        .client
        .post(app.url("/admin/settings/quota-user"))
        .form(&[("storage_mb", "0")])
        .header("accept", "application/json")
        .send()
        .await
        .expect("posted");
    assert_eq!(refused.status().as_u16(), 422, "a zero quota is refused, not read as 'nothing allowed'");

    let (bob, bob_id) = crate::hardening::member(&app, "Bob").await;
    let piece = vec![b'a'; 600 * 1024];
    assert_eq!(page_upload(&bob, &app, &[("first.txt", &piece)], true).await.status().as_u16(), 200);
    let page = bob.get(app.url("/files")).send().await.expect("page").text().await.expect("html");
    assert!(page.contains("600 KB of your 1 MB quota"), "the page shows what is used");
    let account = bob.get(app.url("/account")).send().await.expect("account").text().await.expect("html");
    assert!(
        account.contains("<strong>600 KB</strong>") && account.contains("in files</a> / 1 MB"),
        "and so does the account page"
    );
    let admin_view = app.client.get(app.url(&format!("/admin/users/{bob_id}"))).send().await.expect("page");
    let admin_view = admin_view.text().await.expect("html");
    assert!(admin_view.contains("Their files use 600 KB of a 1 MB quota."), "the administrator sees it too");
    let usage = app.client.get(app.url("/admin/usage")).send().await.expect("usage").text().await.expect("html");
    assert!(usage.contains("Files on this instance take 600 KB in all."), "and in the usage report");
    assert!(usage.contains("Bob &#60;bob@example.com&#62;"), "per person");
    let members_view = bob.get(app.url("/admin/usage")).send().await.expect("usage").status().as_u16();
    assert_eq!(members_view, 404, "members see no report");
    let other = vec![b'b'; 600 * 1024];
    let full = page_upload(&bob, &app, &[("second.txt", &other)], true).await;
    assert_eq!(full.status().as_u16(), 429);
    let error: Value = full.json().await.expect("json");
    let message = error["error"]["message"].as_str().expect("message");
    assert!(message.starts_with("second.txt: ") && message.contains("1 MB"), "{message}");
    // What still fits is taken; the administrator's own role has no quota.
    assert_eq!(page_upload(&bob, &app, &[("small.txt", &vec![b'c'; 100 * 1024])], true).await.status().as_u16(), 200);
    let big = vec![b'd'; 2 * 1024 * 1024];
    assert_eq!(page_upload(&app.client, &app, &[("admin.txt", &big)], true).await.status().as_u16(), 200);
    app.cleanup().await;
}
