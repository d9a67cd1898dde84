//! Errors of the OpenAI-compatible API in OpenAI's shape,
//! `{"error":{"message","type","param","code"}}`, with OpenAI's statuses: 400 for bad input
//! (naming the `param`), 401 `invalid_api_key`, 404 `model_not_found`, 429
//! `rate_limit_exceeded` / `insufficient_quota`, 502/503 when the provider fails. Server-side
//! failures are logged once and never described.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use loquat_core::llm::{ProviderError, ProviderErrorKind};
use loquat_core::{CoreError, ErrorKind};
use serde_json::{Value, json};

use crate::error::{WebError, user_message};
use crate::i18n::Tr;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    /// OpenAI's `type`: `invalid_request_error`, `insufficient_quota`, `requests`, `api_error`…
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>, kind: &'static str, code: Option<&'static str>) -> Self {
        Self { status, message: message.into(), kind, param: None, code, retry_after: None }
    }

    /// A 400 about the request itself (no particular field).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, "invalid_request_error", None)
    }

    /// A 400 about one field, named as OpenAI names it (`messages[2].role`).
    pub fn invalid_param(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self { param: Some(param.into()), ..Self::invalid(message) }
    }

    pub fn missing_key(tr: Tr) -> Self {
        let message = tr.t("api.missing_key").into_owned();
        Self::new(StatusCode::UNAUTHORIZED, message, "invalid_request_error", Some("invalid_api_key"))
    }

    pub fn invalid_key(tr: Tr) -> Self {
        let message = tr.t("api.invalid_key").into_owned();
        Self::new(StatusCode::UNAUTHORIZED, message, "invalid_request_error", Some("invalid_api_key"))
    }

    pub fn model_not_found(model: &str, tr: Tr) -> Self {
        let message = tr.t_with("api.model_not_found", "model", model);
        let error = Self::new(StatusCode::NOT_FOUND, message, "invalid_request_error", Some("model_not_found"));
        Self { param: Some("model".to_owned()), ..error }
    }

    /// A file id that names none of the caller's files (another user's included).
    pub fn file_not_found(id: &str, tr: Tr) -> Self {
        let message = tr.t_with("api.file_not_found", "id", id);
        Self::new(StatusCode::NOT_FOUND, message, "invalid_request_error", None)
    }

    pub fn unknown_url(url: &str, tr: Tr) -> Self {
        let message = tr.t_with("api.unknown_url", "url", url);
        Self::new(StatusCode::NOT_FOUND, message, "invalid_request_error", Some("unknown_url"))
    }

    pub fn body_too_large() -> Self {
        let message = "The request body is larger than this server accepts.";
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, message, "invalid_request_error", Some("request_too_large"))
    }

    /// The web layer's refusal (the chat rate limit), in OpenAI's words.
    pub fn from_web(error: WebError) -> Self {
        match error.status {
            StatusCode::TOO_MANY_REQUESTS => {
                Self::new(error.status, error.message, "requests", Some("rate_limit_exceeded"))
            }
            status if status.is_server_error() => Self::new(status, error.message, "api_error", None),
            status => Self::new(status, error.message, "invalid_request_error", None),
        }
    }

    /// A core error; `model` is the name the request used (for "not found").
    pub fn from_core(error: CoreError, model: &str, tr: Tr) -> Self {
        match error {
            CoreError::Provider(provider) => Self::from_provider(&provider, tr),
            CoreError::NotFound(_) => Self::model_not_found(model, tr),
            CoreError::Invalid { code, .. } => {
                let param = match code {
                    "messages_empty" => Some("messages"),
                    "model_missing" | "model_ambiguous" | "embedding_model" => Some("model"),
                    "embedding_input" => Some("input"),
                    _ => None,
                };
                let api_error = Self::invalid(user_message(&error, tr));
                Self { param: param.map(str::to_owned), ..api_error }
            }
            CoreError::Limited { .. } => {
                let message = user_message(&error, tr);
                Self::new(StatusCode::TOO_MANY_REQUESTS, message, "insufficient_quota", Some("insufficient_quota"))
            }
            CoreError::Conflict(_) => {
                Self::new(StatusCode::CONFLICT, user_message(&error, tr), "invalid_request_error", None)
            }
            CoreError::TooLarge { .. } => {
                Self::new(StatusCode::PAYLOAD_TOO_LARGE, user_message(&error, tr), "invalid_request_error", None)
            }
            CoreError::Store(_) | CoreError::Vault(_) | CoreError::Files(_) => {
                tracing::error!(%error, "API request failed");
                let status = if error.kind() == ErrorKind::Unavailable {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                Self::new(status, user_message(&error, tr), "api_error", None)
            }
        }
    }

    /// A provider failure: the client's mistakes (a bad request, a too long conversation) keep
    /// the provider's words; failures of the provider itself are 5xx with a translated message.
    pub fn from_provider(error: &ProviderError, tr: Tr) -> Self {
        let translated = tr.t(&format!("provider_error.{}", error.kind.code())).into_owned();
        let words = || {
            let detail: String = error.detail.chars().take(500).collect();
            if detail.trim().is_empty() { translated.clone() } else { detail }
        };
        let upstream = |status, code| Self::new(status, translated.clone(), "api_error", Some(code));
        let api_error = match error.kind {
            ProviderErrorKind::BadRequest => Self::invalid(words()),
            ProviderErrorKind::ContextTooLong => {
                Self::new(StatusCode::BAD_REQUEST, words(), "invalid_request_error", Some("context_length_exceeded"))
            }
            ProviderErrorKind::ContentFiltered => {
                Self::new(StatusCode::BAD_REQUEST, translated.clone(), "invalid_request_error", Some("content_filter"))
            }
            ProviderErrorKind::ModelNotFound => {
                Self::new(StatusCode::NOT_FOUND, translated.clone(), "invalid_request_error", Some("model_not_found"))
            }
            ProviderErrorKind::RateLimited => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, translated.clone(), "requests", Some("rate_limit_exceeded"))
            }
            ProviderErrorKind::QuotaExceeded => Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                translated.clone(),
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
            ProviderErrorKind::InvalidKey => upstream(StatusCode::BAD_GATEWAY, "upstream_invalid_key"),
            ProviderErrorKind::Unreachable => upstream(StatusCode::BAD_GATEWAY, "upstream_unreachable"),
            ProviderErrorKind::Protocol => upstream(StatusCode::BAD_GATEWAY, "upstream_protocol"),
            ProviderErrorKind::Timeout => upstream(StatusCode::SERVICE_UNAVAILABLE, "upstream_timeout"),
            ProviderErrorKind::Unavailable => upstream(StatusCode::SERVICE_UNAVAILABLE, "upstream_unavailable"),
        };
        Self { retry_after: error.retry_after, ..api_error }
    }

    /// The `{"error": …}` object, as sent in a response body or inside a stream.
    pub fn body(&self) -> Value {
        json!({ "error": { "message": self.message, "type": self.kind, "param": self.param, "code": self.code } })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body())).into_response();
        if let Some(wait) = self.retry_after
            && let Ok(value) = HeaderValue::try_from(wait.as_secs().max(1).to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use loquat_core::domain::Locale;

    use super::*;

    #[test]
    fn provider_failures_map_to_openai_statuses() {
        let tr = Tr::new(Locale::English);
        let status = |kind| ApiError::from_provider(&ProviderError::new(kind, "detail"), tr).status.as_u16();
        assert_eq!(status(ProviderErrorKind::RateLimited), 429);
        assert_eq!(status(ProviderErrorKind::QuotaExceeded), 429);
        assert_eq!(status(ProviderErrorKind::ModelNotFound), 404);
        assert_eq!(status(ProviderErrorKind::BadRequest), 400);
        assert_eq!(status(ProviderErrorKind::InvalidKey), 502);
        assert_eq!(status(ProviderErrorKind::Unavailable), 503);
        let limited = ApiError::from_provider(
            &ProviderError::new(ProviderErrorKind::RateLimited, "slow").with_retry_after(Some(Duration::from_secs(7))),
            tr,
        );
        assert_eq!(limited.body()["error"]["code"], "rate_limit_exceeded");
        assert_eq!(limited.into_response().headers()[header::RETRY_AFTER], "7");
    }

    #[test]
    fn quota_and_invalid_input_keep_their_translated_message_and_param() {
        let tr = Tr::new(Locale::English);
        let quota = ApiError::from_core(CoreError::Limited { code: "quota_day", detail: "100".into() }, "m", tr);
        assert_eq!((quota.status.as_u16(), quota.code), (429, Some("insufficient_quota")));
        assert!(quota.message.contains("100"), "{}", quota.message);
        let empty = ApiError::from_core(CoreError::invalid("messages_empty"), "m", tr);
        assert_eq!(empty.body()["error"]["param"], "messages");
        let missing = ApiError::from_core(CoreError::NotFound("model"), "nope", tr);
        assert_eq!(missing.body()["error"]["code"], "model_not_found");
        assert!(missing.message.contains("nope"));
    }
}
