//! Tests of the Ollama module's calls without a server: base URL normalisation, the bearer
//! key, `/api/tags` and `/api/show` answers, error bodies, and a refused connection.

use std::time::Duration;

use loquat_core::Secret;
use loquat_core::domain::Protocol;
use loquat_core::llm::{ChatMessage, ChatRole};
use reqwest::header::AUTHORIZATION;

use super::*;

fn endpoint(base_url: &str, key: Option<&str>) -> Endpoint {
    Endpoint::new(Protocol::Ollama, base_url, key.map(Secret::new))
}

#[test]
fn base_urls_are_normalised_to_the_server_root() {
    let cases = [
        ("http://127.0.0.1:11434", "http://127.0.0.1:11434"),
        ("http://localhost:11434/", "http://localhost:11434"),
        ("http://localhost:11434/v1", "http://localhost:11434"),
        ("http://localhost:11434/v1/", "http://localhost:11434"),
        ("http://gpu:11434/api", "http://gpu:11434"),
        (" https://proxy.example.com/ollama/API/ ", "https://proxy.example.com/ollama"),
        ("https://proxy.example.com/v1beta", "https://proxy.example.com/v1beta"),
        ("", DEFAULT_BASE_URL),
        ("  ", DEFAULT_BASE_URL),
    ];
    for (given, expected) in cases {
        assert_eq!(base_url(&endpoint(given, None)), expected, "{given:?}");
    }
    assert_eq!(url(&endpoint("http://localhost:11434/v1", None), "api/chat"), "http://localhost:11434/api/chat");
}

fn http() -> Http {
    Http {
        // No proxy from the environment: the refused-connection test must reach the loopback.
        client: reqwest::Client::builder().no_proxy().build().expect("a client"),
        non_streaming_timeout: Duration::from_secs(5),
        guard: None,
        max_error_body_bytes: 64 * 1024,
    }
}

#[test]
fn a_key_is_sent_as_a_bearer_token_and_no_key_sends_nothing() {
    let http = http();
    let build = |endpoint: &Endpoint| {
        let builder = http.client.post(url(endpoint, "api/chat"));
        authorize(builder, endpoint).expect("authorized").build().expect("a request")
    };
    let request = build(&endpoint("http://h", Some("sk-proxy")));
    let value = request.headers().get(AUTHORIZATION).expect("a header");
    assert_eq!(value.to_str().ok(), Some("Bearer sk-proxy"));
    assert!(value.is_sensitive());
    assert!(build(&endpoint("http://h", None)).headers().get(AUTHORIZATION).is_none());
    assert!(build(&endpoint("http://h", Some(""))).headers().get(AUTHORIZATION).is_none());
    let error = authorize(http.client.get("http://h"), &endpoint("http://h", Some("bad\nkey"))).expect_err("refused");
    assert_eq!(error.kind, ProviderErrorKind::InvalidKey);
    assert!(!error.detail.contains("bad"), "the key stays out of the detail");
}

#[test]
fn the_chat_body_streams() {
    let request = ChatRequest {
        model: "llama3.1:8b".into(),
        messages: vec![ChatMessage::new(ChatRole::User, "hi")],
        ..ChatRequest::default()
    };
    let body = serde_json::to_value(wire_request(&request)).expect("json");
    assert_eq!(body["stream"], true);
    assert_eq!(body["model"], "llama3.1:8b");
}

#[test]
fn tags_become_model_names() {
    let body = br#"{"models":[
        {"name":"codellama:13b","modified_at":"2023-11-04T14:56:49.277302595-07:00","size":7365960935,
         "digest":"9f438cb9cd581fc025612d27f7c1a6669ff83a8bb0ed86c94fcf4c5440555697",
         "details":{"format":"gguf","family":"llama","families":null,"parameter_size":"13B","quantization_level":"Q4_0"}},
        {"name":"llama3.1:8b","model":"llama3.1:8b"},
        {"model":"qwen3:8b"}
    ]}"#;
    assert_eq!(model_names(body).expect("names"), ["codellama:13b", "llama3.1:8b", "qwen3:8b"]);
    assert!(model_names(br#"{"models":[]}"#).expect("names").is_empty());
    assert!(model_names(br#"{"models":null}"#).expect("names").is_empty());
    let error = model_names(b"<html></html>").expect_err("an error");
    assert_eq!(error.kind, ProviderErrorKind::Protocol);
}

#[test]
fn show_reports_the_context_length() {
    let llama = br#"{
        "modelfile": "FROM /models/blobs/sha256:200765e1283640ffbd013184bf496e261032fa75b99498a9613be4e94d63ad52",
        "parameters": "num_keep                       24\nstop                           \"<|eot_id|>\"",
        "details": {"format":"gguf","family":"llama","parameter_size":"8.0B","quantization_level":"Q4_0"},
        "model_info": {
            "general.architecture": "llama",
            "general.parameter_count": 8030261248,
            "llama.attention.head_count": 32,
            "llama.context_length": 8192,
            "llama.embedding_length": 4096,
            "tokenizer.ggml.tokens": []
        }
    }"#;
    assert_eq!(show_details(llama).expect("details").context_tokens, Some(8192));
    // Another architecture; and a model whose architecture key is missing.
    let qwen = br#"{"model_info":{"general.architecture":"qwen2","qwen2.context_length":32768}}"#;
    assert_eq!(show_details(qwen).expect("details").context_tokens, Some(32_768));
    let bare = br#"{"model_info":{"gemma3.context_length":131072}}"#;
    assert_eq!(show_details(bare).expect("details").context_tokens, Some(131_072));
    // A `num_ctx` parameter is the window Ollama runs the model with.
    let configured = br#"{"parameters":"num_ctx                        4096\nstop \"</s>\"",
        "model_info":{"general.architecture":"llama","llama.context_length":131072}}"#;
    assert_eq!(show_details(configured).expect("details").context_tokens, Some(4096));
    let only_parameters = br#"{"parameters":"temperature 0.2\nnum_ctx 16384"}"#;
    assert_eq!(show_details(only_parameters).expect("details").context_tokens, Some(16_384));
    assert_eq!(show_details(b"{}").expect("details").context_tokens, None);
    assert_eq!(show_details(b"[1]").err().map(|error| error.kind), Some(ProviderErrorKind::Protocol));
}

#[test]
fn error_bodies_map_to_kinds() {
    use ProviderErrorKind::*;
    let cases: &[(u16, &[u8], ProviderErrorKind, &str)] = &[
        (
            404,
            br#"{"error":"model 'llama9' not found, try pulling it first"}"#,
            ModelNotFound,
            "model 'llama9' not found, try pulling it first",
        ),
        (
            400,
            br#"{"error":"model \"llama9\" not found, try pulling it first"}"#,
            ModelNotFound,
            "model \"llama9\" not found, try pulling it first",
        ),
        (
            500,
            br#"{"error":"model requires more system memory (9.4 GiB) than is available (4.1 GiB)"}"#,
            Unavailable,
            "model requires more system memory (9.4 GiB) than is available (4.1 GiB)",
        ),
        (
            400,
            br#"{"error":"registry.ollama.ai/library/llama2:latest does not support tools"}"#,
            BadRequest,
            "registry.ollama.ai/library/llama2:latest does not support tools",
        ),
        (
            401,
            b"<html><body>401 Authorization Required</body></html>",
            InvalidKey,
            "<html><body>401 Authorization Required</body></html>",
        ),
        (502, b"", Unavailable, "Bad Gateway"),
        (429, br#"{"error":{"message":"slow down"}}"#, RateLimited, "slow down"),
    ];
    for (status, body, kind, detail) in cases {
        let error = error_from_body(
            *status,
            reqwest::StatusCode::from_u16(*status).ok().and_then(|s| s.canonical_reason()),
            body,
        );
        assert_eq!((error.kind, error.detail.as_str(), error.status), (*kind, *detail, Some(*status)));
    }
    let error = in_stream_error(&json!("model 'x' not found"));
    assert_eq!((error.kind, error.status), (ModelNotFound, None));
}

#[tokio::test]
async fn a_refused_connection_is_unreachable() {
    // A port that was just free: nothing listens on it (loopback only, no network).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("an address");
    drop(listener);
    let endpoint = endpoint(&format!("http://{address}/v1"), Some("sk-secret"));
    let error = list_models(&http(), &endpoint).await.expect_err("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unreachable, "{error:?}");
    let error = model_details(&http(), &endpoint, "llama3.1").await.expect_err("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unreachable);
    let error = pull_model(&http(), &endpoint, "llama3.1").await.err().expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unreachable);
    let request = ChatRequest { model: "llama3.1".into(), ..ChatRequest::default() };
    let error = stream_chat(&http(), &endpoint, &request).await.err().expect("an error");
    assert_eq!(error.kind, ProviderErrorKind::Unreachable);
}
