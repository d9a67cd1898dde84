//! Small HTTP helpers shared by the OIDC and GitHub flows: bounded bodies, redacted error
//! descriptions, form encoding.

use std::error::Error as _;

use reqwest::{RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

/// The most an IdP answer may weigh (discovery, JWKS, tokens, profiles are a few KiB).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Sends `request` and reads the whole body (at most 1 MiB). The error text names neither the
/// URL's query nor anything sent.
pub(crate) async fn send(request: RequestBuilder) -> Result<(StatusCode, Vec<u8>), String> {
    let mut response = request.send().await.map_err(|error| describe(&error))?;
    let status = response.status();
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|error| describe(&error))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err("the answer is larger than 1 MiB".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// Sends `request` and parses a JSON answer of a 2xx status.
pub(crate) async fn json<T: DeserializeOwned>(request: RequestBuilder) -> Result<T, String> {
    let (status, body) = send(request).await?;
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    serde_json::from_slice(&body).map_err(|error| format!("the answer is not the expected JSON ({error})"))
}

/// What failed, without the URL (it could carry a query) and without any request content.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let what = if error.is_timeout() {
        "the request timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the answer could not be read"
    } else if error.is_redirect() {
        "unexpected redirect"
    } else {
        "the request failed"
    };
    let mut text = what.to_owned();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 §2.3.1 applies it to the
/// client id and secret before HTTP Basic).
pub(crate) fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(char::from(byte)),
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// The `error` code of an OAuth error answer (`invalid_grant`, …), if it looks like one. The
/// free-text `error_description` is left out: some IdPs echo the code in it.
pub(crate) fn oauth_error_code(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let code = value.get("error")?.as_str()?;
    let plausible = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-');
    plausible.then(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding() {
        assert_eq!(form_encode("a b:c/d%e+f"), "a+b%3Ac%2Fd%25e%2Bf");
        assert_eq!(form_encode("Iv1.abc-_*"), "Iv1.abc-_*");
    }

    #[test]
    fn oauth_error_codes() {
        assert_eq!(
            oauth_error_code(br#"{"error":"invalid_grant","error_description":"code abc"}"#).as_deref(),
            Some("invalid_grant")
        );
        assert_eq!(oauth_error_code(br#"{"error":"Code ABC used"}"#), None);
        assert_eq!(oauth_error_code(b"<html>"), None);
    }
}
