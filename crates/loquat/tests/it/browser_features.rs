//! More browser tests, in real headless Chromium: importing a ChatGPT export (its branches
//! appear), opening a shared link in a browser with no session, and speaking into the composer
//! (Chromium's fake microphone).

use fantoccini::Locator;
use loquat_test_support::fake_openai::Reply;

use crate::browser::Browser;
use crate::helpers::{TestApp, TestOptions, temp_dir};

#[tokio::test]
async fn a_chatgpt_export_uploaded_in_the_browser_shows_its_conversations_and_branches() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    browser.sign_up(&app, "importer@example.com").await;
    let client = &browser.client;
    let export = serde_json::json!([{
        "id": "c1", "title": "Loquat questions", "create_time": 1_700_000_000.0, "current_node": "a2",
        "mapping": {
            "root": { "id": "root", "parent": null, "children": ["q"], "message": null },
            "q": { "id": "q", "parent": "root", "children": ["a1", "a2"], "message": {
                "author": { "role": "user" }, "create_time": 1_700_000_001.0,
                "content": { "content_type": "text", "parts": ["What is a loquat?"] } } },
            "a1": { "id": "a1", "parent": "q", "children": [], "message": {
                "author": { "role": "assistant" }, "create_time": 1_700_000_002.0,
                "content": { "content_type": "text", "parts": ["A fruit."] } } },
            "a2": { "id": "a2", "parent": "q", "children": [], "message": {
                "author": { "role": "assistant" }, "create_time": 1_700_000_003.0,
                "content": { "content_type": "text", "parts": ["A small orange fruit from China."] } } }
        }
    }]);
    let folder = temp_dir("export");
    let file = folder.join("conversations.json");
    std::fs::write(&file, export.to_string()).expect("written");
    client.goto(&app.url("/settings/data")).await.expect("opens");
    let input = client.find(Locator::Css("input[type=file][name=file]")).await.expect("file input");
    input.send_keys(&file.display().to_string()).await.expect("chooses the file");
    client
        .find(Locator::Css("form[action='/settings/data/import'] button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("imports");
    browser.until("the report", "document.querySelector('.import-report')").await;
    let report = browser.text_of("document.querySelector('.import-report p').textContent").await;
    assert!(report.contains("1 topics with 3 messages"), "{report}");
    browser.screenshot("import.png").await;
    client.find(Locator::Css(".import-report a.button")).await.expect("link").click().await.expect("opens chats");
    browser
        .until(
            "the imported topic",
            "[...document.querySelectorAll('.topic a')].some(a => a.textContent.includes('Loquat questions'))",
        )
        .await;
    client
        .find(Locator::XPath("//div[contains(@class,'topic')]/a[contains(., 'Loquat questions')]"))
        .await
        .expect("the topic")
        .click()
        .await
        .expect("opens it");
    browser
        .until("the shown branch", "document.querySelector('.msg.assistant .md')?.textContent.includes('orange')")
        .await;
    let branches = browser.text_of("document.querySelector('.msg.assistant .branches .count')?.textContent").await;
    assert_eq!(branches, "2/2", "the other answer is a branch");
    browser.close().await;
    let _ = std::fs::remove_dir_all(folder);
    app.cleanup().await;
}

#[tokio::test]
async fn a_shared_link_opens_in_a_browser_with_no_session() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    browser.sign_up(&app, "sharer@example.com").await;
    let client = &browser.client;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("Loquats are **sweet** and a little tart."));
    app.fake.set_default_reply(Reply::text("Loquat taste"));
    client.goto(&app.url(&format!("/chat/{assistant}"))).await.expect("opens the chat");
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("How do loquats taste?\u{E007}").await.expect("sends");
    browser.until("the answer", "document.querySelector('.msg.assistant[data-status=complete]')").await;
    let topic = browser.text_of("location.pathname.split('/').pop()").await;
    client.goto(&app.url(&format!("/topics/{topic}/shares"))).await.expect("the share page");
    client
        .find(Locator::Css("form[action$='/shares'] button.button"))
        .await
        .expect("button")
        .click()
        .await
        .expect("creates");
    browser.until("the new link", "document.querySelector('.share-fresh .share-url')").await;
    let link = browser.text_of("document.querySelector('.share-fresh .share-url').value").await;
    browser.close().await;

    // A browser that has never signed in.
    let Some(stranger) = Browser::start().await else { return };
    stranger.client.goto(&link).await.expect("opens the link");
    stranger.until("the conversation", "document.querySelector('.shared-messages .msg.assistant')").await;
    let shown = stranger.text_of("document.querySelector('.shared-messages').textContent").await;
    assert!(shown.contains("How do loquats taste?") && shown.contains("a little tart"), "{shown}");
    let strong = stranger.text_of("document.querySelector('.shared-messages strong')?.textContent").await;
    assert_eq!(strong, "sweet", "rendered Markdown");
    let composer = stranger.text_of("document.querySelector('#composer, textarea') === null").await;
    assert_eq!(composer, "true", "read-only: no composer");
    stranger.screenshot("shared.png").await;
    stranger.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn speaking_into_the_microphone_writes_the_words_into_the_composer() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    browser.sign_up(&app, "speaker@example.com").await;
    let client = &browser.client;
    let assistant = app.default_assistant().await;
    app.fake.set_recording(true);
    app.fake.set_default_reply(Reply::text("What grows on a loquat tree"));
    client.goto(&app.url(&format!("/chat/{assistant}"))).await.expect("opens the chat");
    browser.until("the microphone button", "!document.querySelector('.mic-btn').hidden").await;
    let mic = client.find(Locator::Css(".mic-btn")).await.expect("microphone");
    mic.click().await.expect("starts recording");
    browser.until("recording", "document.querySelector('.mic-btn').getAttribute('aria-pressed') === 'true'").await;
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    mic.click().await.expect("stops recording");
    browser
        .until(
            "the words in the composer",
            "document.querySelector('#composer textarea').value.includes('loquat tree')",
        )
        .await;
    let sent = app.fake.requests().into_iter().find(|r| r.path == "/v1/audio/transcriptions").expect("transcribed");
    let form = sent.body.as_str().map(str::to_owned).unwrap_or_default();
    assert!(form.contains("speech.webm") && form.contains("whisper-1"), "a real recording went: {}", form.len());
    browser.close().await;
    app.cleanup().await;
}
