//! Azure OpenAI: Chat Completions addressed to a deployment
//! (`{endpoint}/openai/deployments/{deployment}/chat/completions?api-version=…`) with an
//! `api-key` header, and embeddings from a deployment (`…/deployments/{deployment}/embeddings`).
//! Request mapping, stream parsing, error mapping and the embeddings' answer are OpenAI's.

use loquat_core::llm::{ChatRequest, ChatStream, Embeddings, Endpoint, ProviderError};
use serde::Deserialize;

use crate::errors;
use crate::openai::embeddings::send_embeddings;
use crate::openai::request::{Dialect, wire_request};
use crate::openai::{error_response, send_streaming};
use crate::transport::{Http, KeyHeader, join_url, read_bounded, with_key};

/// Used when neither the provider nor `AZURE_API_VERSION` names one (the current GA version).
pub(crate) const DEFAULT_API_VERSION: &str = "2024-10-21";

fn api_version(endpoint: &Endpoint) -> &str {
    endpoint.api_version.as_deref().filter(|version| !version.is_empty()).unwrap_or(DEFAULT_API_VERSION)
}

fn authorize(builder: reqwest::RequestBuilder, endpoint: &Endpoint) -> Result<reqwest::RequestBuilder, ProviderError> {
    with_key(builder, endpoint, KeyHeader::Named("api-key"))
}

/// `request.model` is the deployment name (`id->deployment` in the model list).
pub(crate) async fn stream_chat(
    http: &Http,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<ChatStream, ProviderError> {
    let deployment: String = url_segment(&request.model);
    let url = join_url(&endpoint.base_url, &format!("openai/deployments/{deployment}/chat/completions"));
    // Azure's reasoning deployments take `max_completion_tokens`; the others `max_tokens`.
    let dialect = Dialect { max_completion_tokens: request.reasoning.is_some(), model_in_body: false };
    let builder =
        http.client.post(url).query(&[("api-version", api_version(endpoint))]).json(&wire_request(request, dialect));
    send_streaming(http, authorize(builder, endpoint)?).await
}

/// Embeddings from the deployment `model` (`id->deployment` in the model list).
pub(crate) async fn embed(
    http: &Http,
    endpoint: &Endpoint,
    model: &str,
    inputs: &[String],
) -> Result<Embeddings, ProviderError> {
    let deployment = url_segment(model);
    let url = join_url(&endpoint.base_url, &format!("openai/deployments/{deployment}/embeddings"));
    let body = serde_json::json!({ "input": inputs, "encoding_format": "float" });
    let builder = http
        .client
        .post(url)
        .query(&[("api-version", api_version(endpoint))])
        .json(&body)
        .timeout(http.non_streaming_timeout);
    send_embeddings(http, authorize(builder, endpoint)?, inputs.len()).await
}

/// The models the resource can deploy (`GET /openai/models`); deployments themselves are named
/// in the model list.
pub(crate) async fn list_models(http: &Http, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
    let builder = http
        .client
        .get(join_url(&endpoint.base_url, "openai/models"))
        .query(&[("api-version", api_version(endpoint))])
        .timeout(http.non_streaming_timeout);
    let mut response = http.send(authorize(builder, endpoint)?).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    let (body, _) = read_bounded(&mut response, 8 * 1024 * 1024).await.map_err(errors::transport)?;
    #[derive(Deserialize)]
    struct Models {
        data: Vec<Model>,
    }
    #[derive(Deserialize)]
    struct Model {
        id: String,
    }
    let models: Models = serde_json::from_slice(&body)
        .map_err(|error| errors::protocol(format!("the model list is not Azure's format: {error}")))?;
    Ok(models.data.into_iter().map(|model| model.id).collect())
}

/// A deployment name as one URL path segment (deployment names are letters, digits, `-`, `_`,
/// `.`; anything else is percent-encoded rather than allowed to change the path).
fn url_segment(name: &str) -> String {
    let mut segment = String::with_capacity(name.len());
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.') {
            segment.push(byte as char);
        } else {
            segment.push_str(&format!("%{byte:02X}"));
        }
    }
    segment
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_names_cannot_escape_their_path_segment() {
        assert_eq!(url_segment("gpt-4o_prod.1"), "gpt-4o_prod.1");
        assert_eq!(url_segment("../admin?x=1"), "..%2Fadmin%3Fx%3D1");
    }
}
