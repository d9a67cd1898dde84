//! Gemini error mapping: Google's `{"error": {code, message, status, details}}` (or a one-element
//! array of it), in a non-2xx body or inside the stream, becomes a [`ProviderError`] with the
//! kind for the user and the wait Google asks for (`RetryInfo`, `Retry-After`, the message).

use std::time::Duration;

use loquat_core::llm::{ProviderError, ProviderErrorKind};
use reqwest::header::RETRY_AFTER;
use serde_json::Value;

use crate::errors::{self, ErrorInfo};
use crate::transport::{Http, read_bounded};

/// Longest wait taken from a provider's answer; longer ones are ignored as nonsense.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// What one Google error says.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct GoogleError {
    /// The HTTP status Google puts in `code`.
    pub code: Option<u16>,
    pub message: String,
    /// The canonical status: `RESOURCE_EXHAUSTED`, `INVALID_ARGUMENT`…
    pub status: Option<String>,
    /// `google.rpc.ErrorInfo.reason`: `API_KEY_INVALID`…
    pub reason: Option<String>,
    /// `google.rpc.QuotaFailure` violations: quota ids and metrics.
    pub quotas: Vec<String>,
    /// `google.rpc.RetryInfo.retryDelay`.
    pub retry_delay: Option<Duration>,
}

impl GoogleError {
    /// Reads Google's shape and the variants proxies send: an array of one, `{"error": "text"}`,
    /// a bare `{code, message, status}`.
    pub(crate) fn parse(value: &Value) -> Self {
        let value = match value {
            Value::Array(items) => items.first().unwrap_or(&Value::Null),
            other => other,
        };
        match value.get("error") {
            Some(error @ (Value::String(_) | Value::Object(_))) => Self::from_error(error),
            _ => Self::from_object(value),
        }
    }

    /// Reads the `error` member of a body: a message, or `{code, message, status, details}`.
    pub(crate) fn from_error(error: &Value) -> Self {
        match error {
            Value::String(message) => Self { message: message.clone(), ..Self::default() },
            object => Self::from_object(object),
        }
    }

    fn from_object(object: &Value) -> Self {
        let text = |field: &str| object.get(field).and_then(Value::as_str).filter(|text| !text.is_empty());
        let code = match object.get("code") {
            Some(Value::Number(number)) => number.as_u64().and_then(|code| u16::try_from(code).ok()),
            Some(Value::String(code)) => code.parse().ok(),
            _ => None,
        };
        let mut error = Self {
            code: code.filter(|code| (400..600).contains(code)),
            message: text("message").unwrap_or_default().to_owned(),
            status: text("status").map(str::to_owned),
            ..Self::default()
        };
        for detail in object.get("details").and_then(Value::as_array).into_iter().flatten() {
            let kind = detail.get("@type").and_then(Value::as_str).unwrap_or_default();
            if kind.ends_with("google.rpc.ErrorInfo") {
                error.reason = detail.get("reason").and_then(Value::as_str).map(str::to_owned);
            } else if kind.ends_with("google.rpc.RetryInfo") {
                error.retry_delay = detail.get("retryDelay").and_then(Value::as_str).and_then(duration);
            } else if kind.ends_with("google.rpc.QuotaFailure") {
                let violations = detail.get("violations").and_then(Value::as_array).into_iter().flatten();
                for violation in violations {
                    for field in ["quotaId", "quotaMetric"] {
                        if let Some(quota) = violation.get(field).and_then(Value::as_str) {
                            error.quotas.push(quota.to_owned());
                        }
                    }
                }
            }
        }
        error
    }

    /// The error for this body: `status` is the HTTP status, `None` inside a stream (where
    /// Google's `code` stands in for it); `retry_after` is the `Retry-After` header.
    pub(crate) fn into_error(self, status: Option<u16>, retry_after: Option<Duration>) -> ProviderError {
        let status = status.or(self.code);
        let kind = self.kind(status);
        let retry_after = self.retry_delay.or(retry_after).or_else(|| retry_in_message(&self.message));
        let detail = if !self.message.trim().is_empty() {
            self.message
        } else if let Some(text) = self.status.or(self.reason) {
            text
        } else {
            match status {
                Some(status) => format!("the provider answered HTTP {status} without an error message"),
                None => "the provider reported an error without a message".to_owned(),
            }
        };
        let error = ProviderError::new(kind, detail).with_retry_after(retry_after);
        match status {
            Some(status) => error.with_status(status),
            None => error,
        }
    }

    fn kind(&self, status: Option<u16>) -> ProviderErrorKind {
        let canonical = self.status.as_deref().unwrap_or_default();
        let reason = self.reason.as_deref().unwrap_or_default();
        let message = self.message.to_lowercase();
        let said = |needles: &[&str]| needles.iter().any(|needle| message.contains(needle));
        if status.is_some_and(|status| status >= 500) || matches!(canonical, "UNAVAILABLE" | "INTERNAL") {
            return ProviderErrorKind::Unavailable;
        }
        if matches!(reason, "API_KEY_INVALID" | "API_KEY_EXPIRED" | "API_KEY_SERVICE_BLOCKED")
            || matches!(canonical, "PERMISSION_DENIED" | "UNAUTHENTICATED")
            || said(&["api key not valid", "api key expired", "api_key_invalid"])
        {
            return ProviderErrorKind::InvalidKey;
        }
        if status == Some(429) || canonical == "RESOURCE_EXHAUSTED" {
            return if self.quota_is_spent() {
                ProviderErrorKind::QuotaExceeded
            } else {
                ProviderErrorKind::RateLimited
            };
        }
        if said(&["exceeds the maximum number of tokens", "input token count"]) {
            return ProviderErrorKind::ContextTooLong;
        }
        if canonical == "NOT_FOUND" {
            return ProviderErrorKind::ModelNotFound;
        }
        let info = ErrorInfo { message: self.message.clone(), code: self.status.clone(), kind: self.reason.clone() };
        errors::classify(status, &info)
    }

    /// Whether waiting a minute will not help: a daily quota is used up, or the plan has none
    /// for this model (`limit: 0`). Google says "You exceeded your current quota" for every
    /// 429, per-minute limits included, so the message alone does not tell.
    fn quota_is_spent(&self) -> bool {
        let message = self.message.to_lowercase();
        let daily_quota = |quota: &String| {
            let quota = quota.to_lowercase();
            quota.contains("perday") || quota.contains("per_day")
        };
        let no_quota = message
            .match_indices("limit: 0")
            .any(|(at, needle)| !message[at + needle.len()..].starts_with(|next: char| next.is_ascii_digit()));
        self.quotas.iter().any(daily_quota) || no_quota || message.contains("per day") || message.contains("daily")
    }
}

/// Maps a non-2xx response, reading a bounded part of its body for Google's message.
pub(crate) async fn error_response(http: &Http, mut response: reqwest::Response) -> ProviderError {
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .filter(|wait| *wait <= MAX_RETRY_AFTER);
    let body = read_bounded(&mut response, http.max_error_body_bytes).await.map(|(body, _)| body).unwrap_or_default();
    let mut error = serde_json::from_slice::<Value>(&body).map(|value| GoogleError::parse(&value)).unwrap_or_default();
    if error.message.trim().is_empty() && error.status.is_none() {
        // Not Google's shape (a proxy's HTML page, plain text): keep a readable excerpt.
        let text = String::from_utf8_lossy(&body);
        let excerpt: String = text.split_whitespace().collect::<Vec<_>>().join(" ").chars().take(300).collect();
        error.message = match (excerpt.is_empty(), status.canonical_reason()) {
            (true, Some(reason)) => reason.to_owned(),
            _ => excerpt,
        };
    }
    error.into_error(Some(status.as_u16()), retry_after)
}

/// An error sent as stream data (`{"error": {...}}`) or as an `event: error` SSE event.
pub(crate) fn in_stream_error(data: &str) -> ProviderError {
    match serde_json::from_str::<Value>(data) {
        Ok(value) => GoogleError::parse(&value).into_error(None, None),
        Err(_) => GoogleError { message: data.to_owned(), ..GoogleError::default() }.into_error(None, None),
    }
}

/// A protobuf JSON duration: `"20s"`, `"1.5s"`.
fn duration(text: &str) -> Option<Duration> {
    let seconds: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    Duration::try_from_secs_f64(seconds).ok().filter(|wait| *wait <= MAX_RETRY_AFTER)
}

/// "… Please retry in 45.578569677s." (Gemini repeats the delay in its quota messages).
fn retry_in_message(message: &str) -> Option<Duration> {
    let (_, rest) = message.split_once("retry in ")?;
    let end = rest.find('s')?;
    duration(&rest[..=end])
}
