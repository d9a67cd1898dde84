//! Voice and pictures: an answer read aloud (kept, so the second play asks no provider; a
//! failure keeps nothing), the microphone's recording written down (only audio is sent on), and
//! pictures drawn into a topic as the answer's files.

use loquat_test_support::fake_openai::Reply;
use serde_json::Value;

use crate::helpers::TestApp;

/// A few bytes that start like a WebM recording.
const WEBM: &[u8] = &[0x1A, 0x45, 0xDF, 0xA3, 0x9F, 0x42, 0x86, 0x81, 0x01, 0x42, 0xF7, 0x81, 0x01];

fn audio_form(content: &[u8]) -> (String, Vec<u8>) {
    let boundary = "loquat-audio-boundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; filename=\"speech.webm\"\r\n\
         Content-Type: audio/webm\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[tokio::test]
async fn an_answer_is_read_aloud_once_and_kept() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Loquats are **sweet**.\n\n```rust\nfn main() {}\n```"));
    app.fake.push_reply(Reply::text("Loquats"));
    let sent = app.send(assistant, None, "Tell me about loquats").await;
    app.finished(sent.answer).await;
    app.titled(sent.topic).await;
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("spoken"));
    let speak = || app.client.post(app.url(&format!("/messages/{}/speech", sent.answer))).send();
    let first = speak().await.expect("POST");
    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(first.headers()["content-type"], "audio/mpeg");
    let audio = first.bytes().await.expect("audio");
    assert!(audio.starts_with(b"ID3") && audio.ends_with(b"spoken"));
    let requests = app.fake.requests();
    let asked = requests.iter().find(|r| r.path == "/v1/audio/speech").expect("asked the provider");
    assert_eq!(asked.body["model"], "tts-1");
    assert_eq!(asked.body["voice"], "alloy");
    assert_eq!(asked.body["input"], "Loquats are sweet.", "marks and code are not read aloud");
    // The second play is the kept file.
    let second = speak().await.expect("POST").bytes().await.expect("audio");
    assert_eq!(second, audio);
    assert_eq!(app.fake.requests().iter().filter(|r| r.path == "/v1/audio/speech").count(), 1);
    // A provider that fails: a clear error, nothing kept.
    let files_before = app.services.files.list(admin).await.expect("files").len();
    app.fake.push_reply(Reply::text("Another answer"));
    let other = app.send(assistant, Some(sent.topic), "More?").await;
    app.finished(other.answer).await;
    app.fake.push_reply(Reply::error(500));
    let failed = app
        .client
        .post(app.url(&format!("/messages/{}/speech", other.answer)))
        .header("accept", "application/json")
        .send()
        .await
        .expect("POST");
    assert!(failed.status().is_server_error() || failed.status().as_u16() == 502, "{}", failed.status());
    let body: Value = failed.json().await.expect("JSON");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert_eq!(app.services.files.list(admin).await.expect("files").len(), files_before);
    // Someone else's message is not read to them.
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let theirs = bob.post(app.url(&format!("/messages/{}/speech", sent.answer))).send().await.expect("POST");
    assert_eq!(theirs.status().as_u16(), 404);
    app.cleanup().await;
}

#[tokio::test]
async fn the_microphone_is_written_down_and_only_audio_goes_on() {
    let app = TestApp::spawn().await;
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("Hello from the microphone"));
    let (content_type, body) = audio_form(WEBM);
    let response = app
        .client
        .post(app.url("/chat/transcribe"))
        .header("accept", "application/json")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST");
    let status = response.status().as_u16();
    let text: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{text}");
    assert_eq!(text["text"], "Hello from the microphone");
    let asked = app.fake.requests().into_iter().find(|r| r.path == "/v1/audio/transcriptions").expect("asked");
    let form = asked.body.as_str().map(str::to_owned).unwrap_or_else(|| asked.body.to_string());
    assert!(form.contains("whisper-1") && form.contains("speech.webm"), "{form}");
    // Not audio: refused before any provider hears of it.
    let (content_type, body) = audio_form(b"%PDF-1.7 not a recording");
    let refused = app
        .client
        .post(app.url("/chat/transcribe"))
        .header("accept", "application/json")
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 422);
    let error: Value = refused.json().await.expect("JSON");
    assert!(error["error"]["message"].as_str().is_some_and(|m| m.contains("not audio")), "{error}");
    assert_eq!(app.fake.requests().iter().filter(|r| r.path == "/v1/audio/transcriptions").count(), 1);
    app.cleanup().await;
}

#[tokio::test]
async fn pictures_are_drawn_into_a_topic_as_the_answers_files() {
    let app = TestApp::spawn().await;
    let admin = app.admin().await;
    let assistant = app.default_assistant().await;
    app.fake.set_recording(true);
    app.fake.push_reply(Reply::text("A ripe loquat on a branch, watercolour"));
    let drawn = app
        .post_form(
            &format!("/chat/{assistant}/draw"),
            &[("prompt", "a loquat, watercolour"), ("size", "1536x1024"), ("count", "2"), ("topic_id", "")],
        )
        .await;
    let status = drawn.status().as_u16();
    let location = drawn.headers().get("location").map(|l| l.to_str().expect("ascii").to_owned());
    let Some(location) = location else { panic!("{status}: {}", drawn.text().await.expect("body")) };
    let topic: loquat_core::id::TopicId = location.rsplit('/').next().expect("topic").parse().expect("an id");
    let asked = app.fake.requests().into_iter().find(|r| r.path == "/v1/images/generations").expect("asked");
    assert_eq!((asked.body["n"].as_u64(), asked.body["size"].as_str()), (Some(2), Some("1536x1024")));
    let conversation = app.services.assistants.conversation(admin, topic).await.expect("the topic");
    let shown: Vec<_> = conversation.branch.iter().map(|entry| entry.message.content.clone()).collect();
    assert_eq!(shown, ["a loquat, watercolour", "A ripe loquat on a branch, watercolour"]);
    let answer = &conversation.branch[1].message;
    let images = &conversation.files[&answer.id];
    assert_eq!(images.len(), 2);
    assert!(images.iter().all(|file| file.mime == "image/png"));
    let (_, page) = app.page(&location).await;
    assert!(page.contains(&format!("/files/{}/view", images[0].id)), "the pictures show in the topic");
    let picture = app.client.get(app.url(&format!("/files/{}", images[0].id))).send().await.expect("GET");
    assert_eq!(picture.status().as_u16(), 200, "downloadable");
    // Bad options and someone else's assistant are refused; nothing is asked of the provider.
    let before = app.fake.requests().len();
    let refused =
        app.post_form(&format!("/chat/{assistant}/draw"), &[("prompt", "x"), ("size", "99x99"), ("count", "1")]).await;
    assert_eq!(refused.status().as_u16(), 422);
    let (bob, _) = crate::hardening::member(&app, "Bob").await;
    let theirs = bob
        .post(app.url(&format!("/chat/{assistant}/draw")))
        .form(&[("prompt", "x"), ("size", "1024x1024"), ("count", "1")])
        .send()
        .await
        .expect("POST");
    assert_eq!(theirs.status().as_u16(), 404);
    assert_eq!(app.fake.requests().len(), before);
    app.cleanup().await;
}
