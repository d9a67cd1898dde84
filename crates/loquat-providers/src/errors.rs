//! Protocol-neutral error mapping: an HTTP status plus the provider's code, type and message
//! become a [`ProviderErrorKind`]; transport (reqwest) failures become kinds too; and every
//! detail leaving this crate is redacted of the API key and bounded in length.

use std::error::Error as StdError;

use loquat_core::Secret;
use loquat_core::llm::{ProviderError, ProviderErrorKind};

/// Details longer than this are cut (at a character boundary) before they leave the crate.
const MAX_DETAIL_CHARS: usize = 2_000;

/// What a provider said about a failure, whatever the shape of its protocol's error body.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ErrorInfo {
    /// The provider's own words; may be empty.
    pub message: String,
    /// A machine code such as `invalid_api_key` (numbers are kept as text).
    pub code: Option<String>,
    /// An error type such as `invalid_request_error`.
    pub kind: Option<String>,
}

impl ErrorInfo {
    /// The error for this info: the provider's message as detail, the status when known.
    pub fn into_error(self, status: Option<u16>) -> ProviderError {
        let status = status.or_else(|| self.numeric_code());
        let kind = classify(status, &self);
        let detail = if !self.message.trim().is_empty() {
            self.message
        } else if let Some(text) = self.code.or(self.kind) {
            text
        } else {
            match status {
                Some(status) => format!("the provider answered HTTP {status} without an error message"),
                None => "the provider reported an error without a message".to_owned(),
            }
        };
        let error = ProviderError::new(kind, detail);
        match status {
            Some(status) => error.with_status(status),
            None => error,
        }
    }

    /// Some servers put the HTTP status in `code` (`{"code": 429, ...}`), notably in-stream.
    fn numeric_code(&self) -> Option<u16> {
        self.code.as_deref().and_then(|code| code.parse::<u16>().ok()).filter(|code| (400..600).contains(code))
    }
}

/// Maps a failure to the user-facing kind. `status` is `None` for errors sent inside a stream.
pub(crate) fn classify(status: Option<u16>, info: &ErrorInfo) -> ProviderErrorKind {
    let code = info.code.as_deref().unwrap_or_default().to_ascii_lowercase();
    let kind = info.kind.as_deref().unwrap_or_default().to_ascii_lowercase();
    let message = info.message.to_lowercase();
    let tagged = |needle: &str| code.contains(needle) || kind.contains(needle);
    let said = |needles: &[&str]| needles.iter().any(|needle| message.contains(needle));

    if status.is_some_and(|status| status >= 500) {
        return ProviderErrorKind::Unavailable;
    }
    if status == Some(402)
        || tagged("insufficient_quota")
        || tagged("quota_exceeded")
        || said(&["exceeded your current quota", "insufficient balance", "insufficient_quota"])
    {
        return ProviderErrorKind::QuotaExceeded;
    }
    if matches!(status, Some(401 | 403))
        || tagged("invalid_api_key")
        || tagged("authentication")
        || said(&["incorrect api key", "invalid api key"])
    {
        return ProviderErrorKind::InvalidKey;
    }
    if status == Some(404)
        || tagged("model_not_found")
        || (message.contains("model") && said(&["does not exist", "not exist", "model not found"]))
    {
        return ProviderErrorKind::ModelNotFound;
    }
    if tagged("context_length_exceeded")
        || said(&["maximum context length", "context length", "context_length", "maximum model length"])
        || said(&["prompt is too long", "context window"])
    {
        return ProviderErrorKind::ContextTooLong;
    }
    if tagged("content_filter")
        || tagged("content_policy")
        || tagged("data_inspection_failed")
        || said(&["content policy", "content management policy", "content_filter", "inappropriate content"])
    {
        return ProviderErrorKind::ContentFiltered;
    }
    if status == Some(429) || tagged("rate_limit") || said(&["rate limit"]) {
        return ProviderErrorKind::RateLimited;
    }
    match status {
        Some(400..=499) => ProviderErrorKind::BadRequest,
        // An error inside a stream (or a 2xx body that is an error): the server gave up mid-way,
        // unless it blames the request.
        _ if tagged("invalid_request") => ProviderErrorKind::BadRequest,
        _ => ProviderErrorKind::Unavailable,
    }
}

/// Maps a failure to send the request or to receive the response head.
pub(crate) fn transport(error: reqwest::Error) -> ProviderError {
    let kind = if error.is_timeout() {
        ProviderErrorKind::Timeout
    } else if error.is_connect() || error.is_dns() {
        ProviderErrorKind::Unreachable
    } else if error.is_builder() {
        ProviderErrorKind::BadRequest
    } else if error.is_redirect() || error.is_decode() {
        ProviderErrorKind::Protocol
    } else {
        ProviderErrorKind::Unavailable
    };
    let lead = match kind {
        ProviderErrorKind::Timeout => "the provider did not answer in time",
        ProviderErrorKind::Unreachable => "could not connect to the provider",
        ProviderErrorKind::BadRequest => "could not build the request",
        _ => "the request to the provider failed",
    };
    ProviderError::new(kind, format!("{lead}: {}", chain(error)))
}

/// Maps a failure while reading a streamed body (after the response head arrived).
pub(crate) fn body(error: reqwest::Error) -> ProviderError {
    if error.is_timeout() {
        ProviderError::new(ProviderErrorKind::Timeout, format!("the provider stopped sending: {}", chain(error)))
    } else {
        closed_early(Some(&chain(error)))
    }
}

/// The stream ended (cleanly or not) before the answer was finished.
pub(crate) fn closed_early(cause: Option<&str>) -> ProviderError {
    const DETAIL: &str = "the provider closed the stream before finishing";
    let detail = match cause {
        Some(cause) => format!("{DETAIL}: {cause}"),
        None => DETAIL.to_owned(),
    };
    ProviderError::new(ProviderErrorKind::Unavailable, detail)
}

/// How long the provider asked us to wait: a `Retry-After` header in seconds (an HTTP date is
/// not worth honouring for a chat request), or OpenAI's `retry-after-ms`.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<std::time::Duration> {
    let value = |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).map(str::trim);
    if let Some(millis) = value("retry-after-ms").and_then(|v| v.parse::<f64>().ok()).filter(|v| v.is_finite()) {
        return Some(std::time::Duration::from_millis(millis.max(0.0) as u64));
    }
    let seconds = value("retry-after")?.parse::<f64>().ok().filter(|v| v.is_finite())?;
    Some(std::time::Duration::from_millis((seconds.max(0.0) * 1000.0) as u64))
}

/// The provider answered with something that is not its protocol.
pub(crate) fn protocol(detail: impl Into<String>) -> ProviderError {
    ProviderError::new(ProviderErrorKind::Protocol, detail)
}

/// The error's message and its sources, without the URL (which could carry credentials).
fn chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Removes the API key from the detail and bounds its length; applied to every error that
/// leaves the crate.
pub(crate) fn sanitize(mut error: ProviderError, key: Option<&Secret>) -> ProviderError {
    if let Some(key) = key.map(Secret::expose).filter(|key| !key.is_empty())
        && error.detail.contains(key)
    {
        error.detail = error.detail.replace(key, "***");
    }
    if let Some((cut, _)) = error.detail.char_indices().nth(MAX_DETAIL_CHARS) {
        error.detail.truncate(cut);
        error.detail.push('…');
    }
    error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(message: &str, code: Option<&str>, kind: Option<&str>) -> ErrorInfo {
        ErrorInfo { message: message.to_owned(), code: code.map(str::to_owned), kind: kind.map(str::to_owned) }
    }

    #[test]
    fn statuses_and_codes_map_to_kinds() {
        use ProviderErrorKind::*;
        let cases: &[(Option<u16>, ErrorInfo, ProviderErrorKind)] = &[
            (Some(401), info("Incorrect API key provided", Some("invalid_api_key"), None), InvalidKey),
            (Some(403), info("forbidden", None, None), InvalidKey),
            (Some(429), info("Rate limit reached", Some("rate_limit_exceeded"), Some("requests")), RateLimited),
            (Some(429), info("You exceeded your current quota", Some("insufficient_quota"), None), QuotaExceeded),
            (Some(429), info("quota", None, Some("insufficient_quota")), QuotaExceeded),
            (Some(402), info("Insufficient Balance", None, None), QuotaExceeded),
            (Some(404), info("The model `x` does not exist", Some("model_not_found"), None), ModelNotFound),
            (Some(400), info("Model Not Exist", None, Some("invalid_request_error")), ModelNotFound),
            (Some(400), info("too long", Some("context_length_exceeded"), None), ContextTooLong),
            (Some(400), info("This model's maximum context length is 8192 tokens.", None, None), ContextTooLong),
            (Some(413), info("too long", Some("context_length_exceeded"), None), ContextTooLong),
            (Some(400), info("blocked", Some("content_filter"), None), ContentFiltered),
            (Some(400), info("Your request was rejected by our content policy", None, None), ContentFiltered),
            (Some(400), info("Invalid 'messages'", None, Some("invalid_request_error")), BadRequest),
            (Some(422), info("", None, None), BadRequest),
            (Some(500), info("The server had an error", None, Some("server_error")), Unavailable),
            (Some(503), info("maximum context length", None, None), Unavailable),
            (None, info("The server had an error", None, Some("server_error")), Unavailable),
            (None, info("slow down", Some("rate_limit_exceeded"), None), RateLimited),
            (None, info("bad", None, Some("invalid_request_error")), BadRequest),
        ];
        for (status, info, expected) in cases {
            assert_eq!(classify(*status, info), *expected, "{status:?} {info:?}");
        }
    }

    #[test]
    fn numeric_codes_act_as_statuses_in_streams() {
        let error = info("busy", Some("429"), None).into_error(None);
        assert_eq!((error.kind, error.status), (ProviderErrorKind::RateLimited, Some(429)));
        let error = info("", None, Some("server_error")).into_error(None);
        assert_eq!((error.kind, error.detail.as_str()), (ProviderErrorKind::Unavailable, "server_error"));
    }

    #[test]
    fn sanitize_redacts_the_key_and_bounds_the_detail() {
        let key = Secret::new("sk-secret-123");
        let error = ProviderError::new(ProviderErrorKind::InvalidKey, "bad key sk-secret-123!");
        assert_eq!(sanitize(error, Some(&key)).detail, "bad key ***!");
        let long = ProviderError::new(ProviderErrorKind::Protocol, "é".repeat(5_000));
        assert_eq!(sanitize(long, None).detail.chars().count(), MAX_DETAIL_CHARS + 1);
    }
}
