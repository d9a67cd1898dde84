//! Google Gemini (`generativelanguage` API, `streamGenerateContent?alt=sse`) and the proxies
//! that speak it. Sections, as in every protocol module: request mapping (`request`), calls and
//! URLs (here), stream parsing (`stream`), error mapping (`error`), tests.

mod error;
mod request;
mod stream;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_request;

use loquat_core::llm::{ChatRequest, ChatStream, Endpoint, ProviderError};
use reqwest::header::ACCEPT;
use serde::Deserialize;

use self::error::error_response;
use self::request::wire_request;
use self::stream::{ResponseHandler, whole_answer_events};
use crate::errors;
use crate::stream::sse::sse_answer;
use crate::transport::{Http, KeyHeader, read_bounded, with_key};

const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";
/// The version appended to a base URL that names only a host (LobeChat's `GOOGLE_PROXY_URL`).
const DEFAULT_VERSION: &str = "v1beta";
/// A model list page may be this large.
const MAX_JSON_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Pages of 1,000 models followed at most (Google lists fewer than 100).
const MAX_MODEL_PAGES: usize = 5;

/// The key goes in a header, never in the URL (where Google's examples put it), so that it
/// cannot leak through URLs in logs or errors.
fn authorize(builder: reqwest::RequestBuilder, endpoint: &Endpoint) -> Result<reqwest::RequestBuilder, ProviderError> {
    with_key(builder, endpoint, KeyHeader::Named("x-goog-api-key"))
}

/// The API root including its version: the default when the base is empty, and `/v1beta`
/// appended when the base's last path segment is not a version (`v1`, `v1beta`, `v1alpha`…).
/// Only the last segment counts, so that gateways with their own `/v1/` early in the path
/// (Cloudflare AI Gateway) still get Google's version.
fn api_base(base_url: &str) -> String {
    let base = base_url.trim().trim_end_matches('/');
    if base.is_empty() {
        return DEFAULT_BASE_URL.to_owned();
    }
    let after_scheme = base.split_once("://").map_or(base, |(_, rest)| rest);
    let last_segment = after_scheme.split_once('/').and_then(|(_, path)| path.rsplit('/').next());
    if last_segment.is_some_and(is_version) { base.to_owned() } else { format!("{base}/{DEFAULT_VERSION}") }
}

/// `v1`, `v1beta`, `v1alpha`, `v1beta3`, `v2`…
fn is_version(segment: &str) -> bool {
    let Some(rest) = segment.strip_prefix('v') else {
        return false;
    };
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    let suffix = &rest[digits..];
    digits > 0 && suffix.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
}

/// `models/{model}` (or `tunedModels/{model}`), whether or not the id already has the prefix;
/// the id itself is percent-encoded as one path segment.
fn model_path(model: &str) -> String {
    let model = model.trim();
    if let Some(tuned) = model.strip_prefix("tunedModels/") {
        return format!("tunedModels/{}", encode_segment(tuned));
    }
    format!("models/{}", encode_segment(model.strip_prefix("models/").unwrap_or(model)))
}

/// Percent-encodes everything but RFC 3986's unreserved characters.
fn encode_segment(segment: &str) -> String {
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

fn stream_url(endpoint: &Endpoint, model: &str) -> String {
    format!("{}/{}:streamGenerateContent?alt=sse", api_base(&endpoint.base_url), model_path(model))
}

// ---- Calls ----------------------------------------------------------------------------------

pub(crate) async fn stream_chat(
    http: &Http,
    endpoint: &Endpoint,
    request: &ChatRequest,
) -> Result<ChatStream, ProviderError> {
    let builder = http
        .client
        .post(stream_url(endpoint, &request.model))
        .header(ACCEPT, "text/event-stream")
        .json(&wire_request(request));
    let response = http.send(authorize(builder, endpoint)?).await?;
    if !response.status().is_success() {
        return Err(error_response(http, response).await);
    }
    // A proxy that ignored `alt=sse` sends a JSON array of responses.
    let handler = ResponseHandler::new(ResponseHandler::fresh_id_tag());
    sse_answer(response, handler, whole_answer_events).await
}

/// The models that can chat (`supportedGenerationMethods` has `generateContent`; a proxy that
/// does not say is trusted), without the `models/` prefix.
pub(crate) async fn list_models(http: &Http, endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
    let url = format!("{}/models", api_base(&endpoint.base_url));
    let mut names = Vec::new();
    let mut page_token: Option<String> = None;
    for _ in 0..MAX_MODEL_PAGES {
        let mut builder = http.client.get(&url).query(&[("pageSize", "1000")]).timeout(http.non_streaming_timeout);
        if let Some(token) = &page_token {
            builder = builder.query(&[("pageToken", token)]);
        }
        let mut response = http.send(authorize(builder, endpoint)?).await?;
        if !response.status().is_success() {
            return Err(error_response(http, response).await);
        }
        let (body, cut) = read_bounded(&mut response, MAX_JSON_BODY_BYTES).await.map_err(errors::transport)?;
        if cut {
            return Err(errors::protocol("the provider's model list is too large"));
        }
        let page = model_page(&body)?;
        names.extend(page.names);
        page_token = page.next_page_token;
        if page_token.is_none() {
            break;
        }
    }
    Ok(names)
}

#[derive(Debug, PartialEq)]
struct ModelPage {
    names: Vec<String>,
    next_page_token: Option<String>,
}

fn model_page(body: &[u8]) -> Result<ModelPage, ProviderError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Models {
        #[serde(default)]
        models: Vec<Model>,
        next_page_token: Option<String>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Model {
        name: String,
        supported_generation_methods: Option<Vec<String>>,
    }
    let models: Models = serde_json::from_slice(body)
        .map_err(|error| errors::protocol(format!("the model list is not Gemini's format: {error}")))?;
    let names = models
        .models
        .into_iter()
        .filter(|model| {
            let methods = model.supported_generation_methods.as_deref();
            methods.is_none_or(|methods| methods.iter().any(|method| method == "generateContent"))
        })
        .map(|model| model.name.strip_prefix("models/").map_or_else(|| model.name.clone(), str::to_owned))
        .collect();
    Ok(ModelPage { names, next_page_token: models.next_page_token.filter(|token| !token.is_empty()) })
}
