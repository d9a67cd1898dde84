//! Browser tests in real headless Chromium (Debian's `chromium` + `chromedriver`) driven over
//! WebDriver: send a message and watch it stream, reload and find it, switch a branch, type
//! Chinese, follow an answer through a dropped connection, drop a PDF in the composer and open
//! the answer's citation, and take desktop and phone screenshots (saved under the target folder).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use loquat_test_support::fake_openai::Reply;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::task::{AbortHandle, JoinHandle};

use crate::helpers::{TestApp, TestOptions, temp_dir};

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub(crate) struct Browser {
    pub(crate) client: Client,
    _driver: Child,
    profile: PathBuf,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session, or `None` to skip (unless
    /// `LOQUAT_TEST_REQUIRE_ALL=1`, where a missing browser fails the test).
    pub(crate) async fn start() -> Option<Self> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists() {
            assert!(
                std::env::var("LOQUAT_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
                "LOQUAT_TEST_REQUIRE_ALL=1 but chromium/chromedriver are not installed"
            );
            println!("skipped: chromium and chromedriver are not installed");
            return None;
        }
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("free port");
            listener.local_addr().expect("address").port()
        };
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let profile = temp_dir("chromium");
        let capabilities = json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", "--window-size=1280,900", "--lang=en-US",
                    // A microphone that plays a tone, granted without asking.
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let capabilities = capabilities.as_object().expect("object").clone();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let connected = ClientBuilder::rustls()
                .expect("TLS connector")
                .capabilities(capabilities.clone())
                .connect(&format!("http://127.0.0.1:{port}"))
                .await;
            match connected {
                Ok(client) => return Some(Self { client, _driver: driver, profile }),
                Err(error) if Instant::now() > deadline => panic!("cannot start a Chromium session: {error}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// Polls a JavaScript expression until it is truthy.
    pub(crate) async fn until(&self, what: &str, expression: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let value =
                self.client.execute(&format!("return Boolean({expression});"), vec![]).await.expect("script runs");
            if value == json!(true) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub(crate) async fn text_of(&self, expression: &str) -> String {
        let value = self.client.execute(&format!("return String({expression});"), vec![]).await.expect("script runs");
        value.as_str().unwrap_or_default().to_owned()
    }

    pub(crate) async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot folder");
        std::fs::write(dir.join(name), png).expect("screenshot saved");
    }

    /// Creates the first account through the registration page (the browser is then signed in).
    pub(crate) async fn sign_up(&self, app: &TestApp, email: &str) {
        self.sign_up_at(&app.url(""), email).await;
    }

    /// [`Browser::sign_up`] through the server at `base` (`http://host:port`).
    async fn sign_up_at(&self, base: &str, email: &str) {
        self.client.goto(&format!("{base}/")).await.expect("opens");
        self.until("the registration page", "location.pathname === '/register'").await;
        for (field, value) in [("name", "Browser Admin"), ("email", email), ("password", "a long enough password")] {
            let input = self.client.find(Locator::Css(&format!("input[name={field}]"))).await.expect("field");
            input.send_keys(value).await.expect("types");
        }
        self.client.find(Locator::Css("form button")).await.expect("button").click().await.expect("submits");
        self.until("the chat page", "location.pathname.startsWith('/chat/')").await;
    }

    pub(crate) async fn close(self) {
        let _ = self.client.close().await;
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[tokio::test]
async fn chat_in_a_real_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    let client = &browser.client;
    browser.sign_up(&app, "browser@example.com").await;
    app.fake.push_reply(
        Reply::text("Here is **bold** text and code:\n\n```rust\nfn main() { println!(\"hi\"); }\n```\n\nDone.")
            .delay_between_chunks(Duration::from_millis(60)),
    );
    app.fake.push_reply(Reply::text("Rust sample"));
    client.goto(&app.url("/")).await.expect("opens");
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("Show me some Rust").await.expect("types");
    textarea.send_keys("\u{E007}").await.expect("Enter sends");

    // The answer streams in: partial text appears before the answer is finished. Screen readers
    // do not read out every render (the list is not live, the answer is busy); they hear the end.
    browser
        .until("the user message", "document.querySelector('.msg.user')?.textContent.includes('Show me some Rust')")
        .await;
    assert_eq!(browser.text_of("document.querySelector('#messages').hasAttribute('aria-live')").await, "false");
    browser
        .until(
            "partial text while generating",
            "document.querySelector('.msg.assistant[data-status=generating][aria-busy=true] .content')\
             ?.textContent.length > 0",
        )
        .await;
    browser
        .until("the finished answer", "document.querySelector('.msg.assistant')?.dataset.status === 'complete'")
        .await;
    browser
        .until("the end announced", "document.querySelector('#announcer').textContent === 'The answer is ready.'")
        .await;
    assert_eq!(browser.text_of("document.querySelector('.msg.assistant').hasAttribute('aria-busy')").await, "false");
    let topic: loquat_core::id::TopicId =
        browser.text_of("location.pathname.split('/')[3]").await.parse().expect("the URL names the new topic");
    assert_eq!(app.titled(topic).await, "Rust sample");
    let answer_html = browser.text_of("document.querySelector('.msg.assistant .content').innerHTML").await;
    assert!(answer_html.contains("<strong>bold</strong>"));
    assert!(answer_html.contains("hl-"), "code is highlighted");
    browser.screenshot("desktop-chat.png").await;

    // Reload: the conversation is still there.
    client.refresh().await.expect("reloads");
    browser
        .until("the stored answer", "document.querySelector('.msg.assistant .content strong')?.textContent === 'bold'")
        .await;

    // The model picker is a menu of buttons: Escape closes it, a click on a model switches to it.
    let picker = client.find(Locator::Css(".model-current")).await.expect("picker");
    picker.click().await.expect("opens");
    browser.until("the menu open", "document.querySelector('.model-picker').open").await;
    client.active_element().await.expect("focus").send_keys("\u{E00C}").await.expect("Escape");
    browser.until("the menu closed", "!document.querySelector('.model-picker').open").await;
    picker.click().await.expect("opens again");
    client.find(Locator::Css(".model-option[value='openai::o3']")).await.expect("o3").click().await.expect("picks");
    browser.until("o3 chosen", "document.querySelector('.model-current .model-name')?.textContent === 'o3'").await;
    assert_eq!(browser.text_of("location.pathname.split('/')[3]").await, topic.to_string(), "back on the topic");

    // Regenerate, then switch back to the first version.
    app.fake.push_reply(Reply::text("A second, different answer.").delay_between_chunks(Duration::from_millis(20)));
    client
        .find(Locator::Css(".msg.assistant button[formaction$='/regenerate']"))
        .await
        .expect("button")
        .click()
        .await
        .expect("clicks");
    browser.until("the second version", "document.querySelector('.msg.assistant[data-status=complete] .content')?.textContent.includes('second, different')").await;
    assert_eq!(browser.text_of("document.querySelector('.msg.assistant .branches .count').textContent").await, "2/2");
    client
        .find(Locator::Css(".msg.assistant .branches button[formaction$='/switch']"))
        .await
        .expect("previous")
        .click()
        .await
        .expect("clicks");
    browser
        .until(
            "the first version again",
            "document.querySelector('.msg.assistant .branches .count')?.textContent === '1/2'",
        )
        .await;
    assert!(browser.text_of("document.querySelector('.msg.assistant .content').textContent").await.contains("bold"));

    // Chinese input arrives intact.
    app.fake.push_reply(Reply::text("收到。"));
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("你好，世界").await.expect("types Chinese");
    client.find(Locator::Css("#composer .send-btn")).await.expect("send").click().await.expect("clicks");
    browser
        .until(
            "the Chinese message",
            "[...document.querySelectorAll('.msg.user')].some(m => m.textContent.includes('你好，世界'))",
        )
        .await;
    browser
        .until("its answer", "document.querySelector('.msg.assistant:last-of-type')?.dataset.status === 'complete'")
        .await;

    // Phone width: the sidebar is a drawer that opens from the menu button.
    client.set_window_size(390, 844).await.expect("resizes");
    browser.until("the sidebar hidden", "document.querySelector('.sidebar').getBoundingClientRect().right <= 0").await;
    browser.screenshot("phone-chat.png").await;
    client.find(Locator::Css("[data-action=open-sidebar]")).await.expect("menu").click().await.expect("opens");
    browser.until("the drawer open", "document.querySelector('.sidebar').getBoundingClientRect().left >= 0").await;
    browser.screenshot("phone-drawer.png").await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn stop_in_a_real_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    let client = &browser.client;
    browser.sign_up(&app, "stopper@example.com").await;
    app.fake.push_reply(Reply::tokens(2000).delay_between_chunks(Duration::from_millis(15)));
    client.goto(&app.url("/")).await.expect("opens");
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("Go on and on").await.expect("types");
    textarea.send_keys("\u{E007}").await.expect("Enter sends");
    browser.until("streaming text", "document.querySelector('.msg.assistant .content')?.textContent.length > 20").await;
    client.find(Locator::Css("#composer .stop-btn")).await.expect("stop").click().await.expect("clicks");
    browser.until("stopped", "document.querySelector('.msg.assistant')?.dataset.status === 'stopped'").await;
    browser
        .until("the stop announced", "document.querySelector('#announcer').textContent === 'The answer was stopped.'")
        .await;
    assert!(app.fake.wait_for_cancellation(Duration::from_secs(5)).await);
    browser.until("the composer ready again", "!document.querySelector('#composer').classList.contains('busy')").await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn sign_in_out_sso_and_disable_in_a_real_browser() {
    use loquat_test_support::fake_idp::{FakeIdp, FakeUser};
    let Some(browser) = Browser::start().await else { return };
    let idp = FakeIdp::start().await;
    idp.set_user(FakeUser {
        subject: "sso-7".into(),
        email: Some("sso.user@example.com".into()),
        email_verified: true,
        name: Some("Sso User".into()),
    });
    let app = TestApp::spawn_with(TestOptions {
        first_account: false,
        env: crate::people::oidc_env(&idp, &[]),
        // Registration is invite-only: the allow-list lets this person in through SSO.
        configure: |config| config.auth_allowed_emails = "sso.user@example.com,owner@example.com".into(),
        ..TestOptions::default()
    })
    .await;
    let client = &browser.client;
    browser.sign_up(&app, "owner@example.com").await;

    // Sign out from the account page, then back in with the password.
    client.goto(&app.url("/account")).await.expect("account");
    client.find(Locator::Css("form[action='/logout'] button")).await.expect("sign out").click().await.expect("clicks");
    browser.until("the sign-in page", "location.pathname === '/login'").await;
    client
        .find(Locator::Css("input[name=email]"))
        .await
        .expect("email")
        .send_keys("owner@example.com")
        .await
        .expect("types");
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .expect("password")
        .send_keys("a long enough password")
        .await
        .expect("types");
    client.find(Locator::Css("form[action='/login'] button")).await.expect("button").click().await.expect("clicks");
    browser.until("signed in again", "location.pathname.startsWith('/chat/')").await;
    browser.screenshot("desktop-signed-in.png").await;

    // Sign out and come back through single sign-on: a new member account.
    client.goto(&app.url("/account")).await.expect("account");
    client.find(Locator::Css("form[action='/logout'] button")).await.expect("sign out").click().await.expect("clicks");
    browser.until("the sign-in page", "location.pathname === '/login'").await;
    browser.screenshot("desktop-login.png").await;
    client.find(Locator::Css("a.sso-button")).await.expect("the SSO button").click().await.expect("clicks");
    browser.until("signed in through SSO", "location.pathname.startsWith('/chat/')").await;
    client.goto(&app.url("/account")).await.expect("account");
    browser.until("the SSO account", "document.body.textContent.includes('sso.user@example.com')").await;
    // A member signed in through SSO cannot reach the admin panel.
    client.goto(&app.url("/admin")).await.expect("admin");
    browser.until("not found", "document.body.textContent.includes('does not exist')").await;
    assert!(!browser.text_of("document.body.textContent").await.contains("owner@example.com"));

    // The admin disables that member: the next page sends the browser to sign in.
    let member = app.services.admin.admin_list_users(app.admin().await, "sso.user", 0).await.expect("users")[0].id;
    app.services
        .admin
        .admin_set_disabled(app.admin().await, member, true, &Default::default())
        .await
        .expect("disabled");
    client.goto(&app.url("/")).await.expect("home");
    browser.until("signed out", "location.pathname === '/login'").await;
    browser.close().await;
    app.cleanup().await;
}

/// A TCP relay in front of the app for the browser: the test can cut every open connection
/// (a dropped network) and refuse new ones for a while (a server that is away).
struct Relay {
    address: SocketAddr,
    open: Arc<Mutex<Vec<AbortHandle>>>,
    refusing: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl Relay {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let address = listener.local_addr().expect("address");
        let open = Arc::new(Mutex::new(Vec::<AbortHandle>::new()));
        let refusing = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (open, refusing, accepted) = (open.clone(), refusing.clone(), accepted.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if refusing.load(Ordering::SeqCst) {
                        drop(inbound);
                        continue;
                    }
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let relay = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                    open.lock().expect("lock").push(relay.abort_handle());
                }
            }
        });
        Self { address, open, refusing, accepted, task }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Drops every open connection at once.
    fn cut(&self) {
        for connection in self.open.lock().expect("lock").drain(..) {
            connection.abort();
        }
    }

    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.cut();
        self.task.abort();
    }
}

#[tokio::test]
async fn a_dropped_stream_reconnects_or_shows_an_error_in_a_real_browser() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    let relay = Relay::start(app.address).await;
    let client = &browser.client;
    browser.sign_up_at(&relay.url(), "dropped@example.com").await;
    let composer_free = "!document.querySelector('#composer').classList.contains('busy')";

    // The connection drops mid-answer: the page reconnects and the answer completes.
    app.fake.push_reply(Reply::tokens(150).delay_between_chunks(Duration::from_millis(20)));
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("Keep talking").await.expect("types");
    textarea.send_keys("\u{E007}").await.expect("Enter sends");
    let answer = "document.querySelector('.msg.assistant')";
    browser.until("streaming text", &format!("{answer}?.querySelector('.content').textContent.length > 20")).await;
    let before = relay.accepted();
    relay.cut();
    browser.until("the finished answer", &format!("{answer}.dataset.status === 'complete'")).await;
    assert!(relay.accepted() > before, "the page opened a new connection");
    assert!(browser.text_of(&format!("{answer}.textContent")).await.contains("elit."), "the whole answer arrived");
    browser.until("the composer ready", composer_free).await;
    assert_eq!(browser.text_of("document.querySelectorAll('.stream-error').length").await, "0");

    // The server stays away: after a few attempts an error with a retry shows and the composer
    // is free; once the server is back, retrying finishes the answer.
    app.fake.push_reply(Reply::tokens(400).delay_between_chunks(Duration::from_millis(20)));
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("Once more").await.expect("types");
    textarea.send_keys("\u{E007}").await.expect("Enter sends");
    let second = "document.querySelectorAll('.msg.assistant')[1]";
    browser.until("streaming text", &format!("{second}?.querySelector('.content').textContent.length > 20")).await;
    relay.refuse(true);
    relay.cut();
    browser.until("the error", &format!("{second}.querySelector('.stream-error')")).await;
    browser.until("the composer free", composer_free).await;
    let notice = browser.text_of(&format!("{second}.querySelector('.stream-error').textContent")).await;
    assert!(notice.contains("live view of this answer was lost") && notice.contains("Retry"), "{notice}");
    browser.screenshot("desktop-stream-error.png").await;
    relay.refuse(false);
    client.find(Locator::Css(".stream-error button")).await.expect("retry").click().await.expect("clicks");
    browser.until("the second answer finished", &format!("{second}.dataset.status === 'complete'")).await;
    assert_eq!(browser.text_of("document.querySelectorAll('.stream-error').length").await, "0");
    browser.until("the composer ready", composer_free).await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_long_topic_loads_earlier_messages_as_the_reader_scrolls_up() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    let client = &browser.client;
    browser.sign_up(&app, "reader@example.com").await;
    let (assistant, topic, ids) = app.seed_topic(150).await;
    client.goto(&app.url(&format!("/chat/{assistant}/{topic}"))).await.expect("opens");
    browser.until("the latest page", "document.querySelectorAll('#messages .msg').length === 50").await;
    let count = "document.querySelectorAll('#messages .msg').length";
    assert_eq!(browser.text_of(count).await, "50", "nothing more before the reader scrolls up");
    // Scroll to the top: the part before is loaded, and the message that was first stays put.
    let first = format!("document.getElementById('m-{}')", ids[100]);
    let before: f64 = browser
        .text_of(&format!(
            "(() => {{ const list = document.getElementById('messages'); list.scrollTop = 0; \
             return {first}.getBoundingClientRect().top; }})()"
        ))
        .await
        .parse()
        .expect("a position");
    browser.until("the part before", &format!("{count} === 100")).await;
    let after: f64 =
        browser.text_of(&format!("{first}.getBoundingClientRect().top")).await.parse().expect("a position");
    assert!((after - before).abs() < 2.0, "the message on screen moved from {before} to {after}");
    // And the rest, further up.
    browser.text_of("document.getElementById('messages').scrollTop = 0").await;
    browser.until("the start of the topic", &format!("{count} === 150")).await;
    assert_eq!(browser.text_of("document.querySelectorAll('.earlier').length").await, "0");
    browser.screenshot("desktop-long-topic.png").await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_pdf_dropped_in_the_composer_is_answered_with_a_citation_of_its_page() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    let client = &browser.client;
    browser.sign_up(&app, "reader@example.com").await;
    app.fake.set_default_reply(Reply::text("R&D grew 15% in 2023 [2].").delay_between_chunks(Duration::from_millis(5)));
    let pdf = loquat_docs::fixtures::annual_report_pdf();
    // A drop of a real File on the composer, as a user dragging it from their desktop.
    let drop = "const bytes = Uint8Array.from(arguments[0]);
         const file = new File([bytes], 'annual-report.pdf', { type: 'application/pdf' });
         const data = new DataTransfer();
         data.items.add(file);
         const composer = document.getElementById('composer');
         composer.dispatchEvent(new DragEvent('dragover', { dataTransfer: data, bubbles: true, cancelable: true }));
         composer.dispatchEvent(new DragEvent('drop', { dataTransfer: data, bubbles: true, cancelable: true }));";
    client.execute(drop, vec![json!(pdf)]).await.expect("drops");
    browser
        .until(
            "the chip uploaded",
            "document.querySelector('.chip:not(.uploading) .name')?.textContent === 'annual-report.pdf' \
             && document.querySelector('.chip .size')?.textContent === '3.0 KB'",
        )
        .await;
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("研发投入增长了多少？").await.expect("types");
    textarea.send_keys("\u{E007}").await.expect("Enter sends");
    browser
        .until(
            "the question shows its file",
            "document.querySelector('.msg.user .file-chip .name')?.textContent === 'annual-report.pdf'",
        )
        .await;
    browser.until("the chips cleared", "document.querySelectorAll('#composer .chip').length === 0").await;
    browser.until("the answer with its citation", "document.querySelector('.msg.assistant sup.cite a')").await;
    assert_eq!(
        browser.text_of("document.querySelector('.msg.assistant .sources li:nth-child(2)').textContent").await.trim(),
        "annual-report.pdf · p. 2"
    );
    browser.screenshot("citation.png").await;
    client.find(Locator::Css(".msg.assistant sup.cite a")).await.expect("citation").click().await.expect("opens");
    browser.until("the source page", "location.pathname.endsWith('/sources/2')").await;
    let text = browser.text_of("document.querySelector('.source-text').textContent").await;
    assert!(text.contains("公司2023年研发投入为12亿元，同比增长15%。"), "{text}");
    assert!(browser.text_of("document.querySelector('.source .help').textContent").await.contains("Page 2"));
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn a_tool_call_shows_running_then_folds_in_place_and_stays_after_a_reload() {
    let Some(browser) = Browser::start().await else { return };
    let web = crate::tools::fake_web_after(Duration::from_millis(1_500)).await;
    let options = TestOptions {
        first_account: false,
        env: vec![("SEARXNG_URL", format!("http://{web}"))],
        ..TestOptions::default()
    };
    let app = TestApp::spawn_with(options).await;
    let client = &browser.client;
    browser.sign_up(&app, "researcher@example.com").await;
    let (user, assistant) = (app.admin().await, app.default_assistant().await);
    let mut config = app.services.assistants.assistant(user, assistant).await.expect("assistant").config;
    (config.provider, config.model, config.tools) = ("openai".into(), "gpt-4.1".into(), vec!["web_search".into()]);
    app.services.assistants.update_assistant(user, assistant, config).await.expect("saved");
    app.fake.push_reply(Reply::text("Searching.").tool_call("web_search", r#"{"query":"loquat R&D"}"#));
    app.fake.push_reply(Reply::text("").tool_call("web_search", r#"{"query":"loquat R&D 2023"}"#));
    app.fake.push_reply(Reply::text("Spending grew 15% [1].").delay_between_chunks(Duration::from_millis(5)));
    app.fake.set_default_reply(Reply::text("A title"));
    client.goto(&app.url(&format!("/chat/{assistant}"))).await.expect("opens the chat");
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("How did R&D spending change?").await.expect("types");
    textarea.send_keys("\u{E007}").await.expect("Enter sends");
    // The search takes a moment: the call shows open, running, after the words before it.
    browser
        .until("the running call", "document.querySelector('.msg.assistant details.tool-step.step-running[open]')")
        .await;
    browser.screenshot("tool-running.png").await;
    // While the second search runs, the reader unfolds the first: it stays unfolded as the
    // answer goes on rendering.
    let second_running = "document.querySelectorAll('.msg.assistant details.tool-step').length === 2 \
                          && document.querySelector('.msg.assistant details.tool-step.step-running')";
    browser.until("the second call running", second_running).await;
    let unfold = "document.querySelector('.msg.assistant details.tool-step.step-done').open = true;";
    client.execute(unfold, vec![]).await.expect("unfolds");
    let answered = "document.querySelectorAll('.msg.assistant details.tool-step.step-done').length === 2 \
                    && document.querySelector('.msg.assistant sup.cite a')";
    browser.until("both calls done and the cited answer", answered).await;
    let first_open = "document.querySelector('.msg.assistant details.tool-step').open";
    assert_eq!(browser.text_of(first_open).await, "true", "the unfolded call stayed unfolded");
    let done = "document.querySelector('.msg.assistant details.tool-step.step-done:not([open])') \
                && document.querySelector('.msg.assistant sup.cite a')";
    let order = "(() => { const body = document.querySelector('.msg.assistant .content').innerHTML; \
                 return body.indexOf('Searching.') < body.indexOf('tool-step') \
                 && body.indexOf('tool-step') < body.indexOf('Spending grew'); })()";
    browser.until("the call between the words", order).await;
    assert_eq!(
        browser.text_of("document.querySelector('.msg.assistant .sources li:first-child').textContent").await.trim(),
        "Loquat annual report 2023"
    );
    client.refresh().await.expect("reloads");
    browser.until("the same call after a reload", done).await;
    browser.until("in the same place", order).await;
    browser.screenshot("tool-done.png").await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn the_app_installs_its_worker_and_shows_the_offline_page_without_the_server() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    browser.sign_up(&app, "installer@example.com").await;
    let client = &browser.client;
    let manifest = "document.querySelector('link[rel=manifest]').href.endsWith('/static/pwa/manifest.webmanifest')";
    browser.until("the manifest link", manifest).await;
    // The worker takes over the site and keeps the shell, never a page.
    browser.until("the worker", "navigator.serviceWorker.controller").await;
    let cached = "(async () => { const names = await caches.keys(); \
                  const cache = await caches.open(names[0]); \
                  return (await cache.keys()).map((request) => new URL(request.url).pathname); })()";
    let kept = client.execute(&format!("return await {cached};"), vec![]).await.expect("caches read");
    let kept: Vec<String> = serde_json::from_value(kept).expect("paths");
    assert!(kept.iter().any(|path| path == "/static/pwa/offline"), "{kept:?}");
    assert!(kept.iter().all(|path| path.starts_with("/static/")), "only the shell is kept: {kept:?}");
    // Without the server, a page shows the offline page instead of the browser's error.
    let chat = client.current_url().await.expect("url").to_string();
    app.cleanup().await;
    client.goto(&chat).await.expect("navigates");
    browser.until("the offline page", "document.querySelector('h1')?.textContent === 'You are offline'").await;
    browser.screenshot("offline.png").await;
    browser.close().await;
}

#[tokio::test]
async fn keyboard_shortcuts_work_and_question_mark_lists_them() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    browser.sign_up(&app, "typist@example.com").await;
    let client = &browser.client;
    let user = app.admin().await;
    let config = loquat_core::domain::AssistantConfig { title: "Second".into(), ..Default::default() };
    let second = app.services.assistants.create_assistant(user, config).await.expect("assistant");
    let first = app.default_assistant().await;
    // Long enough to be stopped while it is written.
    let long = "An answer that goes on. ".repeat(100);
    for _ in 0..2 {
        app.fake.push_reply(Reply::text(&long).delay_between_chunks(Duration::from_millis(20)));
    }
    app.fake.set_default_reply(Reply::text("A title"));
    client.goto(&app.url(&format!("/chat/{first}"))).await.expect("opens the chat");
    let body = client.find(Locator::Css("body")).await.expect("body");
    // `?` lists the shortcuts, in a dialog Esc closes.
    body.send_keys("?").await.expect("types");
    browser.until("the shortcuts", "document.getElementById('shortcuts').open").await;
    let listed = browser.text_of("document.getElementById('shortcuts').textContent").await;
    assert!(listed.contains("Start a new topic") && listed.contains("Write the last answer again"), "{listed}");
    browser.screenshot("shortcuts.png").await;
    body.send_keys("\u{E00C}").await.expect("Esc");
    browser.until("the dialog closed", "!document.getElementById('shortcuts').open").await;
    // Shift+Esc goes to the composer; a message sent there, Esc stops it.
    body.send_keys("\u{E008}\u{E00C}\u{E000}").await.expect("Shift+Esc");
    browser
        .until("the composer focused", "document.activeElement === document.querySelector('#composer textarea')")
        .await;
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("A long answer, please").await.expect("types");
    textarea.send_keys("\u{E007}").await.expect("Enter sends");
    browser.until("the answer writing", "document.getElementById('composer').dataset.generating").await;
    textarea.send_keys("\u{E00C}").await.expect("Esc");
    browser.until("the answer stopped", "document.querySelector('.msg.assistant[data-status=stopped]')").await;
    // Alt+R writes it again (the last answer gets a second version).
    let answers = "document.querySelectorAll('.msg.assistant').length";
    body.send_keys("\u{E00A}r\u{E000}").await.expect("Alt+R");
    browser
        .until("a new version", "document.querySelector('.msg.assistant .branches .count')?.textContent === '2/2'")
        .await;
    assert_eq!(browser.text_of(answers).await, "1", "the same place, another version");
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("\u{E00C}").await.expect("Esc");
    browser.until("the new version stopped", "!document.getElementById('composer').dataset.generating").await;
    // Alt+N leaves the topic for a new one; Alt+↓ goes to the next assistant.
    browser.until("the topic's address", &format!("location.pathname.startsWith('/chat/{first}/')")).await;
    let body = client.find(Locator::Css("body")).await.expect("body");
    body.send_keys("\u{E00A}n\u{E000}").await.expect("Alt+N");
    browser.until("a new topic", &format!("location.pathname === '/chat/{first}'")).await;
    let body = client.find(Locator::Css("body")).await.expect("body");
    body.send_keys("\u{E00A}\u{E015}\u{E000}").await.expect("Alt+Down");
    browser.until("the next assistant", &format!("location.pathname === '/chat/{}'", second.id)).await;
    browser.close().await;
    app.cleanup().await;
}

#[tokio::test]
async fn ctrl_k_searches_all_chats_and_a_result_opens_the_topic_at_the_message() {
    let Some(browser) = Browser::start().await else { return };
    let app = TestApp::spawn_with(TestOptions { first_account: false, ..TestOptions::default() }).await;
    browser.sign_up(&app, "seeker@example.com").await;
    let client = &browser.client;
    let assistant = app.default_assistant().await;
    app.fake.push_reply(Reply::text("公司2023年研发投入为12亿元，同比增长15%。"));
    app.fake.set_default_reply(Reply::text("A title"));
    client.goto(&app.url(&format!("/chat/{assistant}"))).await.expect("opens the chat");
    let textarea = client.find(Locator::Css("#composer textarea")).await.expect("composer");
    textarea.send_keys("研发投入是多少？\u{E007}").await.expect("sends");
    browser.until("the answer", "document.querySelector('.msg.assistant[data-status=complete]')").await;
    let answer_id = browser.text_of("document.querySelector('.msg.assistant').id.slice(2)").await;
    let topic = browser.text_of("location.pathname.split('/').pop()").await;
    client.goto(&app.url(&format!("/chat/{assistant}"))).await.expect("a new topic");
    let body = client.find(Locator::Css("body")).await.expect("body");
    body.send_keys("\u{E009}k\u{E000}").await.expect("Ctrl+K");
    browser
        .until("the search box focused", "document.activeElement === document.querySelector('.side-search input')")
        .await;
    let search = client.find(Locator::Css(".side-search input")).await.expect("search box");
    search.send_keys("研发投入\u{E007}").await.expect("types and searches");
    browser
        .until("highlighted results", "document.querySelector('.search-results mark')?.textContent === '研发投入'")
        .await;
    browser.screenshot("search.png").await;
    let answer = format!("a.result-message[href$='#m-{answer_id}']");
    client.find(Locator::Css(&answer)).await.expect("the answer found").click().await.expect("opens");
    browser.until("the topic at the message", &format!("document.getElementById('m-{answer_id}')")).await;
    assert!(client.current_url().await.expect("url").path().ends_with(&topic), "{topic}");
    browser.close().await;
    app.cleanup().await;
}
