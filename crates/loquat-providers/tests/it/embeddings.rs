//! `ChatClient::embed` against the fakes: OpenAI's `/embeddings`, Azure's deployment route and
//! Ollama's `/api/embed` give one vector per input in order, with the token count; provider
//! errors keep their kinds; protocols without embeddings refuse.

use loquat_core::Secret;
use loquat_core::domain::Protocol;
use loquat_core::llm::{ChatClient, Endpoint, ProviderErrorKind};
use loquat_test_support::fake_upstream::{FakeUpstream, Reply, fake_embedding};

use crate::client_without_retries;

const KEY: &str = "sk-test-0123456789abcdef";

fn inputs() -> Vec<String> {
    vec!["hello world".to_owned(), "a longer piece of text".to_owned()]
}

async fn embed_with(protocol: Protocol, model: &str) -> (FakeUpstream, loquat_core::llm::Embeddings) {
    let fake = FakeUpstream::start(protocol).await;
    fake.require_key(KEY);
    let endpoint = Endpoint::new(protocol, fake.base_url(), Some(Secret::new(KEY)));
    let embeddings = client_without_retries().embed(&endpoint, model, &inputs()).await.expect("embeddings");
    (fake, embeddings)
}

#[tokio::test]
async fn openai_embeds_every_input_in_order() {
    let (fake, embeddings) = embed_with(Protocol::OpenAi, "text-embedding-3-small").await;
    assert_eq!(embeddings.vectors, vec![fake_embedding("hello world"), fake_embedding("a longer piece of text")]);
    assert_eq!(embeddings.prompt_tokens, 7);
    let request = &fake.requests()[0];
    assert_eq!(
        (request.path.as_str(), request.header("authorization")),
        ("/v1/embeddings", Some("Bearer sk-test-0123456789abcdef"))
    );
    assert_eq!(request.body["model"], "text-embedding-3-small");
    assert_eq!(request.body["input"][1], "a longer piece of text");
    assert_eq!(request.body["encoding_format"], "float");
}

#[tokio::test]
async fn azure_embeds_with_its_deployment() {
    let (fake, embeddings) = embed_with(Protocol::Azure, "embedder").await;
    assert_eq!(embeddings.vectors.len(), 2);
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/openai/deployments/embedder/embeddings");
    assert!(request.query_param("api-version").is_some_and(|version| !version.is_empty()));
    assert_eq!(request.header("api-key"), Some(KEY));
}

#[tokio::test]
async fn ollama_embeds_with_api_embed() {
    let (fake, embeddings) = embed_with(Protocol::Ollama, "llama3.2").await;
    assert_eq!(embeddings.vectors[0], fake_embedding("hello world"));
    assert_eq!(embeddings.prompt_tokens, 7);
    assert_eq!(fake.requests()[0].path, "/api/embed");
}

#[tokio::test]
async fn errors_keep_their_kind_and_other_protocols_refuse() {
    let fake = FakeUpstream::start(Protocol::OpenAi).await;
    fake.push_reply(Reply::error(429));
    let endpoint = Endpoint::new(Protocol::OpenAi, fake.base_url(), Some(Secret::new(KEY)));
    let client = client_without_retries();
    let error = client.embed(&endpoint, "m", &inputs()).await.expect_err("rate limited");
    assert_eq!(error.kind, ProviderErrorKind::RateLimited);
    assert!(!error.detail.contains(KEY));
    let ollama = FakeUpstream::start(Protocol::Ollama).await;
    let endpoint = Endpoint::new(Protocol::Ollama, ollama.base_url(), None);
    let error = client.embed(&endpoint, "missing-model", &inputs()).await.expect_err("not pulled");
    assert_eq!(error.kind, ProviderErrorKind::ModelNotFound);
    let anthropic = Endpoint::new(Protocol::Anthropic, "http://127.0.0.1:9", None);
    let error = client.embed(&anthropic, "claude", &inputs()).await.expect_err("no embeddings");
    assert_eq!(error.kind, ProviderErrorKind::BadRequest);
}
