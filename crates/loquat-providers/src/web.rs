//! Fetching for tools: a search API the administrator configured, or a page a model or a
//! person asked for. Addresses that come from users or models go through the SSRF guard (no
//! private networks, no metadata service, redirects checked); bodies are read up to a limit.

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;

use crate::transport::{Http, read_bounded};

/// A fetched response: status, content type, the address it came from after redirects, and
/// its body up to the limit asked for.
#[derive(Debug, Clone)]
pub struct WebResponse {
    pub status: u16,
    pub content_type: String,
    pub url: String,
    pub body: Bytes,
    /// Whether the body was longer than the limit (and cut).
    pub truncated: bool,
}

/// Why a fetch failed, in words for the model and the person reading the tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebError(pub String);

impl std::fmt::Display for WebError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for WebError {}

/// Whom a request goes to: an address the administrator configured (a search API) or one a
/// user or a model chose (checked by the SSRF guard).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Administrator,
    Untrusted,
}

/// The fetching side of [`crate::HttpChatClient`]: the same pooled clients and guard. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct WebClient {
    pub(crate) trusted: Http,
    pub(crate) guarded: Http,
}

impl WebClient {
    fn http(&self, origin: Origin) -> &Http {
        match origin {
            Origin::Administrator => &self.trusted,
            Origin::Untrusted => &self.guarded,
        }
    }

    /// The pooled client itself, for protocols with a client of their own (MCP). The
    /// untrusted one resolves names through the guard and checks redirects; a caller must
    /// check a literal-IP address with [`WebClient::check_url`] first.
    pub fn client(&self, origin: Origin) -> reqwest::Client {
        self.http(origin).client.clone()
    }

    /// Whether the guard lets an untrusted request go to `url` (scheme, literal addresses,
    /// and host names resolved now).
    pub async fn check_url(&self, url: &str) -> Result<(), WebError> {
        let parsed = reqwest::Url::parse(url).map_err(|_| WebError(format!("\"{url}\" is not an address")))?;
        match &self.guarded.guard {
            Some(guard) => guard.check(&parsed).await.map_err(|refusal| WebError(refusal.to_string())),
            None => Ok(()),
        }
    }

    /// A GET of `url` with `headers`, its body read up to `max_bytes`.
    pub async fn get(
        &self,
        origin: Origin,
        url: &str,
        headers: &[(&str, &str)],
        max_bytes: usize,
    ) -> Result<WebResponse, WebError> {
        let http = self.http(origin);
        let mut builder = http.client.get(url).timeout(http.non_streaming_timeout);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.fetch(http, builder, max_bytes).await
    }

    /// A POST of `body` as JSON to `url` with `headers`, its answer read up to `max_bytes`.
    pub async fn post_json(
        &self,
        origin: Origin,
        url: &str,
        headers: &[(&str, &str)],
        body: &serde_json::Value,
        max_bytes: usize,
    ) -> Result<WebResponse, WebError> {
        let http = self.http(origin);
        let mut builder = http.client.post(url).timeout(http.non_streaming_timeout).json(body);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        self.fetch(http, builder, max_bytes).await
    }

    /// A request of any method, with a JSON body or none, its answer read up to `max_bytes`.
    pub async fn send(
        &self,
        origin: Origin,
        method: reqwest::Method,
        url: &str,
        headers: &[(String, String)],
        body: Option<&serde_json::Value>,
        max_bytes: usize,
    ) -> Result<WebResponse, WebError> {
        let http = self.http(origin);
        let mut builder = http.client.request(method, url).timeout(http.non_streaming_timeout);
        if let Some(body) = body {
            builder = builder.json(body);
        }
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        self.fetch(http, builder, max_bytes).await
    }

    async fn fetch(
        &self,
        http: &Http,
        builder: reqwest::RequestBuilder,
        max_bytes: usize,
    ) -> Result<WebResponse, WebError> {
        let mut response = http.send(builder).await.map_err(|error| WebError(error.detail))?;
        let status = response.status().as_u16();
        let url = response.url().to_string();
        let content_type =
            response.headers().get(CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default().to_owned();
        let (body, truncated) = read_bounded(&mut response, max_bytes)
            .await
            .map_err(|error| WebError(format!("the response could not be read: {error}")))?;
        Ok(WebResponse { status, content_type, url, body, truncated })
    }
}
