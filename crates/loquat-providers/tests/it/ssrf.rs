//! The SSRF guard end to end: `HttpChatClient` with an untrusted (user-supplied) endpoint
//! refuses the loopback in every notation (literal, `localhost` through the resolver, mapped
//! IPv6, hex and decimal IPv4), refuses redirects to the loopback, to cloud metadata and to
//! other schemes, refuses `file://` and `ftp://`, and reaches what the administrator
//! allow-listed; trusted endpoints still reach the loopback. Refused requests never arrive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use loquat_core::domain::Protocol;
use loquat_core::llm::{ChatClient, ChatMessage, ChatRequest, ChatRole, Endpoint, ProviderError, ProviderErrorKind};
use loquat_providers::{HttpChatClient, HttpClientSettings, RetryPolicy};
use loquat_test_support::fake_openai::FakeOpenAi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A client without retries whose guard allow-lists `allow`.
fn client_allowing(allow: &[String]) -> HttpChatClient {
    let settings = HttpClientSettings {
        ssrf_allow: allow.to_vec(),
        retry: RetryPolicy { max_retries: 0, ..RetryPolicy::default() },
        ..HttpClientSettings::default()
    };
    HttpChatClient::new(&settings).expect("the HTTP client builds")
}

fn user_endpoint(base_url: impl Into<String>) -> Endpoint {
    Endpoint::new(Protocol::OpenAi, base_url, None).untrusted()
}

#[track_caller]
fn assert_refused(result: Result<Vec<String>, ProviderError>, expected_detail: &str) {
    let error = result.expect_err("the guard refuses");
    assert_eq!(error.kind, ProviderErrorKind::BadRequest, "{error:?}");
    assert!(error.detail.contains(expected_detail), "{:?} should contain {expected_detail:?}", error.detail);
}

/// A server on 127.0.0.1 answering every request with a 307 to `location` (given its address).
struct Redirector {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    server: JoinHandle<()>,
}

impl Redirector {
    async fn start(location: impl FnOnce(SocketAddr) -> String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("the redirector listens");
        let addr = listener.local_addr().expect("an address");
        let response = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            location(addr)
        );
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        let server = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let response = response.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buffer = [0u8; 1024];
                    while !head.windows(4).any(|window| window == b"\r\n\r\n") && head.len() < 16 * 1024 {
                        match socket.read(&mut buffer).await {
                            Ok(0) | Err(_) => return,
                            Ok(read) => head.extend_from_slice(&buffer[..read]),
                        }
                    }
                    let _ = socket.write_all(response.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { addr, hits, server }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    fn allow(&self) -> String {
        self.addr.to_string()
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for Redirector {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[tokio::test]
async fn a_user_url_on_the_loopback_is_refused_before_any_request() {
    let fake = FakeOpenAi::start().await;
    let client = client_allowing(&[]);
    let endpoint = user_endpoint(fake.base_url());
    assert_refused(client.list_models(&endpoint).await, "the address of 127.0.0.1 is not allowed (loopback)");
    let request = ChatRequest {
        model: "gpt-4o-mini".to_owned(),
        messages: vec![ChatMessage::new(ChatRole::User, "Hi")],
        ..ChatRequest::default()
    };
    let error = client.stream_chat(&endpoint, &request).await.err().expect("refused");
    assert_eq!(error.kind, ProviderErrorKind::BadRequest, "{error:?}");
    // The Ollama default (127.0.0.1:11434) of an empty base URL is checked too.
    let ollama = Endpoint::new(Protocol::Ollama, "", None).untrusted();
    assert_refused(client.list_models(&ollama).await, "the address of 127.0.0.1 is not allowed (loopback)");
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn trusted_endpoints_still_reach_the_loopback() {
    let fake = FakeOpenAi::start().await;
    let client = client_allowing(&[]);
    let trusted = Endpoint::new(Protocol::OpenAi, fake.base_url(), None);
    assert!(trusted.trusted);
    assert!(!client.list_models(&trusted).await.expect("listed").is_empty());
}

#[tokio::test]
async fn an_allow_listed_address_and_port_is_reached() {
    let fake = FakeOpenAi::start().await;
    let port = fake.addr().port();
    let allowed = client_allowing(&[format!("127.0.0.1:{port}")]);
    assert!(!allowed.list_models(&user_endpoint(fake.base_url())).await.expect("listed").is_empty());
    let other_port = client_allowing(&["127.0.0.1:1".to_owned()]);
    assert_refused(other_port.list_models(&user_endpoint(fake.base_url())).await, "(loopback)");
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn localhost_is_refused_by_the_resolver_unless_allow_listed() {
    let fake = FakeOpenAi::start().await;
    let port = fake.addr().port();
    let url = format!("http://localhost:{port}/v1");
    let refused = client_allowing(&[]).list_models(&user_endpoint(&url)).await;
    assert_refused(refused, "the address of localhost is not allowed (loopback)");
    let other_port = client_allowing(&["localhost:1".to_owned()]).list_models(&user_endpoint(&url)).await;
    assert_refused(other_port, "the address of localhost is not allowed (not an allow-listed port of this host)");
    assert_eq!(fake.request_count(), 0);
    let allowed = client_allowing(&[format!("localhost:{port}")]).list_models(&user_endpoint(&url)).await;
    assert!(!allowed.expect("listed").is_empty());
}

#[tokio::test]
async fn mapped_ipv6_hex_octal_and_decimal_forms_of_the_loopback_are_refused() {
    let fake = FakeOpenAi::start().await;
    let port = fake.addr().port();
    // The URL parser normalises the IPv4 forms to 127.0.0.1; refused either way.
    let client = client_allowing(&[]);
    for host in
        ["[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "0x7f.0.0.1", "0x7f000001", "0177.0.0.1", "2130706433", "127.1"]
    {
        let refused = client.list_models(&user_endpoint(format!("http://{host}:{port}/v1"))).await;
        assert_refused(refused, "is not allowed (loopback)");
    }
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn other_schemes_are_refused() {
    let client = client_allowing(&[]);
    assert_refused(client.list_models(&user_endpoint("file:///etc/passwd")).await, "the URL scheme `file`");
    assert_refused(client.list_models(&user_endpoint("ftp://example.com/v1")).await, "the URL scheme `ftp`");
}

#[tokio::test]
async fn redirects_to_the_loopback_metadata_or_other_schemes_are_refused() {
    let fake = FakeOpenAi::start().await;
    let port = fake.addr().port();
    let cases = [
        (format!("http://127.0.0.1:{port}/v1/models"), "the address of 127.0.0.1 is not allowed (loopback)"),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "169.254.169.254 is not allowed (cloud metadata service)",
        ),
        (format!("http://[::ffff:127.0.0.1]:{port}/v1/models"), "is not allowed (loopback)"),
        (format!("http://2130706433:{port}/v1/models"), "is not allowed (loopback)"),
        (format!("http://localhost:{port}/v1/models"), "the address of localhost is not allowed (loopback)"),
        ("file://files.example/etc/passwd".to_owned(), "the URL scheme `file` is not allowed"),
        ("ftp://example.com/v1/models".to_owned(), "the URL scheme `ftp` is not allowed"),
    ];
    for (target, expected) in cases {
        let redirector = Redirector::start(|_| target.clone()).await;
        let client = client_allowing(&[redirector.allow()]);
        assert_refused(client.list_models(&user_endpoint(redirector.base_url())).await, expected);
        assert_eq!(redirector.hits(), 1, "the refusal is at the redirect to {target}");
    }
    assert_eq!(fake.request_count(), 0);
    // A location that is not even an HTTP URI is not followed: the redirect is the answer.
    let redirector = Redirector::start(|_| "file:///etc/passwd".to_owned()).await;
    let client = client_allowing(&[redirector.allow()]);
    let error = client.list_models(&user_endpoint(redirector.base_url())).await.expect_err("not followed");
    assert_eq!(error.status, Some(307), "{error:?}");
}

#[tokio::test]
async fn redirects_to_allowed_targets_are_followed_at_most_five_times() {
    let fake = FakeOpenAi::start().await;
    let target = format!("{}/models", fake.base_url());
    let redirector = Redirector::start(|_| target).await;
    let client = client_allowing(&[redirector.allow(), fake.addr().to_string()]);
    let models = client.list_models(&user_endpoint(redirector.base_url())).await.expect("followed");
    assert!(!models.is_empty());
    assert_eq!(fake.request_count(), 1);

    let looping = Redirector::start(|addr| format!("http://{addr}/v1/models")).await;
    let client = client_allowing(&[looping.allow()]);
    let error = client.list_models(&user_endpoint(looping.base_url())).await.expect_err("too many redirects");
    assert_eq!(error.kind, ProviderErrorKind::Protocol, "{error:?}");
    assert!(error.detail.contains("redirected more than 5 times"), "{}", error.detail);
    assert_eq!(looping.hits(), 6, "the first request and five redirects");
}

#[test]
fn an_invalid_allow_list_entry_fails_the_client() {
    let settings = HttpClientSettings { ssrf_allow: vec!["http://gpu-box.lan/v1".to_owned()], ..Default::default() };
    let error = HttpChatClient::new(&settings).expect_err("refused");
    assert!(error.to_string().contains("`http://gpu-box.lan/v1` is not a valid allow-list entry"), "{error}");
}
