//! `TestApp`: the real Loquat server on port 0 with a fresh store (SQLite in a temporary
//! folder, or a fresh PostgreSQL database) and a fake OpenAI-compatible upstream, plus typed
//! helpers for the endpoints the tests use.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use loquat::Config;
use loquat_core::Services;
use loquat_core::domain::{Message, MessageStatus};
use loquat_core::id::{AssistantId, MessageId, TopicId};
use loquat_test_support::fake_openai::FakeOpenAi;
use loquat_test_support::postgres::TestDatabase;
use reqwest::redirect::Policy;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const TEST_KEY: &str = "sk-test-0123456789abcdef";
/// The first account of every test app (the administrator).
pub const ADMIN_EMAIL: &str = "admin@example.com";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

/// A change to the configuration made with values of the test.
pub type Adjust = Box<dyn FnOnce(&mut Config) + Send>;

/// How to start a test app.
pub struct TestOptions {
    /// Extra provider environment (on top of the fake upstream as OpenAI, unless `no_provider`).
    pub env: Vec<(&'static str, String)>,
    pub no_provider: bool,
    pub database: Option<TestDatabase>,
    pub configure: fn(&mut Config),
    /// Register the administrator account on start (browser tests do it through the page).
    pub first_account: bool,
    /// A configuration change that needs values of the test (addresses of fakes), after
    /// `configure`.
    pub adjust: Option<Adjust>,
}

impl Default for TestOptions {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            no_provider: false,
            database: None,
            configure: |_| {},
            first_account: true,
            adjust: None,
        }
    }
}

pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub fake: FakeOpenAi,
    pub services: Services,
    pub data_dir: PathBuf,
    admin: std::sync::OnceLock<loquat_core::id::UserId>,
    shutdown: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    database: Option<TestDatabase>,
}

/// An HTTP client that keeps cookies (a browser's session) and does not follow redirects.
pub fn cookie_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(Policy::none()).cookie_store(true).build().expect("client")
}

/// A fresh, unique temporary folder.
pub fn temp_dir(label: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("loquat-{label}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(TestOptions::default()).await
    }

    pub async fn spawn_with(options: TestOptions) -> Self {
        let fake = FakeOpenAi::start().await;
        let data_dir = temp_dir("it");
        // Bound first, so the public URL (SSO callbacks, invitation links) is known.
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await.expect("binds");
        let address = listener.local_addr().expect("has an address");
        let mut config = Config {
            listen: address,
            app_url: Some(format!("http://{address}")),
            data_dir: data_dir.clone(),
            database_url: options.database.as_ref().map(|db| loquat_core::Secret::new(db.url.clone())),
            ..Config::default()
        };
        config.generation.persist_interval_ms = 50;
        config.http.retry_base_delay_ms = 5;
        (options.configure)(&mut config);
        if let Some(adjust) = options.adjust {
            adjust(&mut config);
        }
        // Hermetic: a local Ollama on this machine must not change what the tests see.
        let mut env: HashMap<String, String> = HashMap::from([("ENABLED_OLLAMA".to_owned(), "0".to_owned())]);
        if !options.no_provider {
            env.insert("OPENAI_API_KEY".into(), TEST_KEY.into());
            env.insert("OPENAI_PROXY_URL".into(), fake.base_url());
            // Pinned, so the tests do not move with the model bank.
            env.insert("OPENAI_MODEL_LIST".into(), "-all,gpt-4.1,gpt-4o,gpt-4o-mini,o3".into());
        }
        for (name, value) in options.env {
            env.insert(name.to_owned(), value);
        }
        let app = loquat::build(&config, &|name| env.get(name).cloned()).await.expect("Loquat builds");
        let services = app.services.clone();
        let (shutdown, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.serve(listener, async move {
                let _ = stopped.await;
            })
            .await
            .expect("serves");
        });
        let client = cookie_client();
        let first_account = options.first_account;
        let app = Self {
            address,
            client,
            fake,
            services,
            data_dir,
            admin: std::sync::OnceLock::new(),
            shutdown: Some(shutdown),
            server: Some(server),
            database: options.database,
        };
        if first_account {
            app.sign_up(&app.client, "Ada Admin", ADMIN_EMAIL, ADMIN_PASSWORD, "").await;
        }
        app
    }

    /// Registers an account through the form; the client keeps its session cookie.
    pub async fn sign_up(&self, client: &reqwest::Client, name: &str, email: &str, password: &str, invite: &str) {
        let response = client
            .post(self.url("/register"))
            .form(&[("name", name), ("email", email), ("password", password), ("invite", invite)])
            .send()
            .await
            .expect("register");
        assert_eq!(response.status().as_u16(), 303, "registration of {email} should succeed");
    }

    /// Signs an account in through the form; returns the status (303 on success).
    pub async fn sign_in(&self, client: &reqwest::Client, email: &str, password: &str) -> u16 {
        let response = client
            .post(self.url("/login"))
            .form(&[("email", email), ("password", password)])
            .send()
            .await
            .expect("login");
        response.status().as_u16()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The first administrator's id (the first account: [`ADMIN_EMAIL`], or whoever registered
    /// first through a browser), found once it registered.
    pub async fn admin(&self) -> loquat_core::id::UserId {
        if let Some(id) = self.admin.get() {
            return *id;
        }
        let users = self.services.store().list_users("", 1000, 0).await.expect("reads");
        let first =
            users.iter().filter(|user| user.role == loquat_core::domain::Role::Admin).min_by_key(|u| u.created_at);
        let id = first.expect("the administrator has registered").id;
        *self.admin.get_or_init(|| id)
    }

    pub async fn default_assistant(&self) -> AssistantId {
        self.services.assistants.default_assistant(self.admin().await).await.expect("default assistant").id
    }

    /// GET a page as the administrator, following redirects; returns status and body.
    pub async fn page(&self, path: &str) -> (u16, String) {
        self.page_as(&self.client, path).await
    }

    /// GET a page with `client`, following redirects; returns status and body.
    pub async fn page_as(&self, client: &reqwest::Client, path: &str) -> (u16, String) {
        let mut url = self.url(path);
        for _ in 0..5 {
            let response = client.get(&url).header("accept", "text/html").send().await.expect("GET");
            if response.status().is_redirection() {
                let location = response.headers()["location"].to_str().expect("ascii").to_owned();
                url = if location.starts_with('/') { self.url(&location) } else { location };
                continue;
            }
            let status = response.status().as_u16();
            return (status, response.text().await.expect("body"));
        }
        panic!("too many redirects from {path}");
    }

    /// POST a form without following the redirect.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.client.post(self.url(path)).form(form).send().await.expect("POST")
    }

    /// POST a form and return where it redirects to (panics if it does not redirect).
    pub async fn post_redirect(&self, path: &str, form: &[(&str, &str)]) -> String {
        let response = self.post_form(path, form).await;
        assert_eq!(response.status().as_u16(), 303, "POST {path} should redirect");
        response.headers()["location"].to_str().expect("ascii").to_owned()
    }

    /// Sends a message the way the page script does; returns the JSON answer.
    pub async fn send(&self, assistant: AssistantId, topic: Option<TopicId>, content: &str) -> SendResult {
        let topic_text = topic.map(|t| t.to_string()).unwrap_or_default();
        let response = self
            .client
            .post(self.url(&format!("/chat/{assistant}/send")))
            .header("accept", "application/json")
            .form(&[("content", content), ("topic_id", &topic_text)])
            .send()
            .await
            .expect("send");
        let status = response.status().as_u16();
        let json: Value = response.json().await.expect("JSON");
        assert_eq!(status, 200, "send failed: {json}");
        SendResult {
            topic: json["topic_id"].as_str().expect("topic id").parse().expect("valid id"),
            answer: json["answer_id"].as_str().expect("answer id").parse().expect("valid id"),
            json,
        }
    }

    /// A topic of the default assistant with a linear branch of `count` finished messages
    /// ("message 0", "message 1", …), written straight to the store. Returns it and the ids in
    /// branch order.
    pub async fn seed_topic(&self, count: usize) -> (AssistantId, TopicId, Vec<MessageId>) {
        use loquat_core::domain::{MessageRole, NewMessage, Topic};
        use loquat_core::store::TreeWrite;
        let (user, assistant) = (self.admin().await, self.default_assistant().await);
        let now = loquat_core::time::Timestamp::now();
        let topic = Topic {
            id: TopicId::new(),
            user_id: user,
            assistant_id: assistant,
            title: "A long topic".into(),
            active_leaf_id: None,
            pinned: false,
            created_at: now,
            updated_at: now,
        };
        let mut messages: Vec<NewMessage> = Vec::with_capacity(count);
        for index in 0..count {
            messages.push(NewMessage {
                id: MessageId::new(),
                user_id: user,
                topic_id: topic.id,
                parent_id: messages.last().map(|parent| parent.id),
                role: if index % 2 == 0 { MessageRole::User } else { MessageRole::Assistant },
                content: format!("message {index}"),
                status: MessageStatus::Complete,
                provider: None,
                model: None,
                created_at: loquat_core::time::Timestamp(now.0 + index as i64),
                generating_by: None,
            });
        }
        let mut writes = vec![TreeWrite::InsertTopic(&topic)];
        writes.extend(messages.iter().map(TreeWrite::InsertMessage));
        let leaf = messages.last().map(|message| message.id);
        writes.push(TreeWrite::SetActiveLeaf { topic: topic.id, leaf, at: now });
        self.services.store().write_tree(user, &writes).await.expect("seeded");
        (assistant, topic.id, messages.iter().map(|message| message.id).collect())
    }

    /// Waits until the message has left `generating`.
    pub async fn finished(&self, id: MessageId) -> Message {
        self.finished_of(self.admin().await, id).await
    }

    /// Waits until `user`'s message has left `generating`.
    pub async fn finished_of(&self, user: loquat_core::id::UserId, id: MessageId) -> Message {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let message = self.services.assistants.message(user, id).await.expect("message exists");
            if message.status != MessageStatus::Generating && !self.services.generations().is_running(user, id) {
                return message;
            }
            assert!(Instant::now() < deadline, "message {id} still generating");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until a new topic has been titled, so the title request cannot consume a reply
    /// queued for a later message. Returns the title.
    pub async fn titled(&self, topic: TopicId) -> String {
        let user = self.admin().await;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let title = self.services.assistants.topic(user, topic).await.expect("topic").title;
            if !title.is_empty() {
                return title;
            }
            assert!(Instant::now() < deadline, "topic {topic} was not titled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Reads the SSE stream of an answer until `done` or `error` (or the timeout).
    pub async fn events(&self, id: MessageId) -> Vec<(String, Value)> {
        use eventsource_stream::Eventsource;
        let response = self
            .client
            .get(self.url(&format!("/messages/{id}/events")))
            .header("accept", "text/event-stream")
            .send()
            .await
            .expect("events");
        assert_eq!(response.status().as_u16(), 200);
        let mut stream = response.bytes_stream().eventsource();
        let mut events = Vec::new();
        let collect = async {
            while let Some(event) = stream.next().await {
                let event = event.expect("valid SSE");
                let data: Value = serde_json::from_str(&event.data).expect("JSON data");
                let done = event.event == "done" || event.event == "error";
                events.push((event.event, data));
                if done {
                    break;
                }
            }
        };
        tokio::time::timeout(Duration::from_secs(20), collect).await.expect("stream ends with done or error");
        events
    }

    /// Stops the server the way SIGTERM does and waits for it.
    pub async fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(30), server).await;
        }
    }

    /// Shuts down and removes the store.
    pub async fn cleanup(mut self) {
        self.stop().await;
        if let Some(database) = self.database.take() {
            database.drop().await.expect("test database dropped");
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

pub struct SendResult {
    pub topic: TopicId,
    pub answer: MessageId,
    pub json: Value,
}

/// Redis for tests of several processes, or `None` to skip (a failure under
/// `LOQUAT_TEST_REQUIRE_ALL=1`).
pub fn test_redis_url() -> Option<String> {
    let url = std::env::var("LOQUAT_TEST_REDIS_URL").ok().filter(|url| !url.trim().is_empty());
    if url.is_none() {
        assert!(
            std::env::var("LOQUAT_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
            "LOQUAT_TEST_REQUIRE_ALL=1 but LOQUAT_TEST_REDIS_URL is not set"
        );
        println!("skipped: LOQUAT_TEST_REDIS_URL is not set");
    }
    url
}

/// Polls `condition` until it holds (or fails after 10 s).
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An audit filter of one action.
pub fn action_filter(action: &str) -> loquat_core::store::AuditFilter {
    loquat_core::store::AuditFilter { action: Some(action.to_owned()), ..Default::default() }
}
