//! The gemini wire protocol (being written; see the provider issue).

use loquat_core::llm::{ChatRequest, ChatStream, Endpoint, ProviderError, ProviderErrorKind};

use crate::http::Http;

pub(crate) async fn stream_chat(
    _http: &Http,
    _endpoint: &Endpoint,
    _request: &ChatRequest,
) -> Result<ChatStream, ProviderError> {
    Err(ProviderError::new(ProviderErrorKind::BadRequest, "this protocol is not available yet"))
}

pub(crate) async fn list_models(_http: &Http, _endpoint: &Endpoint) -> Result<Vec<String>, ProviderError> {
    Err(ProviderError::new(ProviderErrorKind::BadRequest, "this protocol is not available yet"))
}
