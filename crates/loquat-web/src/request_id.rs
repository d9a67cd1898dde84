//! Request ids: every request carries an `x-request-id` (the caller's when it is sane, else a
//! new UUID, set by tower-http's layers in the route table), echoed on the response and recorded
//! in the request's trace span, so every log line written while serving it carries the id.
//! Handlers read it with the [`RequestId`] extractor (e.g. to hand it to an upstream call).

use std::convert::Infallible;

use axum::extract::{FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Span;

/// The header that carries the id in both directions.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// The longest id accepted from a caller.
const MAX_LENGTH: usize = 128;

/// Middleware, before the id is set: drops a caller's id that is too long or holds anything but
/// letters, digits and `-_.:`, so a client cannot put arbitrary text into the logs.
pub async fn drop_unsafe_request_id(mut request: Request, next: Next) -> Response {
    let unsafe_id = request.headers().get(REQUEST_ID_HEADER).is_some_and(|value| !is_safe(value.as_bytes()));
    if unsafe_id {
        request.headers_mut().remove(REQUEST_ID_HEADER);
    }
    next.run(request).await
}

/// Middleware, after the id is set: makes it the current request id of everything the handler
/// runs (`loquat_core::request`), generation jobs and upstream calls included.
pub async fn carry_request_id(request: Request, next: Next) -> Response {
    let id = id_of(request.extensions(), request.headers()).map(std::sync::Arc::<str>::from);
    loquat_core::request::scope(id, next.run(request)).await
}

fn is_safe(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LENGTH
        && id.iter().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b':'))
}

/// The span of one request (for `TraceLayer::make_span_with`): at INFO level, so the id is on
/// every line at the default log level; the path without its query (which may hold codes).
pub fn request_span(request: &Request) -> Span {
    let route = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str).unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %request.method(),
        route,
        path = %logged_path(request.uri().path()),
        request_id = id_of(request.extensions(), request.headers()).unwrap_or_default(),
    )
}

/// The path as logs keep it: a shared link's secret is not written down.
fn logged_path(path: &str) -> &str {
    if path.starts_with("/share/") { "/share/…" } else { path }
}

/// The id of the request being served; `None` only when the request-id layers are missing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestId(Option<String>);

impl RequestId {
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }

    pub fn into_inner(self) -> Option<String> {
        self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestId {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(RequestId(id_of(&parts.extensions, &parts.headers).map(str::to_owned)))
    }
}

fn id_of<'a>(extensions: &'a axum::http::Extensions, headers: &'a axum::http::HeaderMap) -> Option<&'a str> {
    extensions
        .get::<tower_http::request_id::RequestId>()
        .map(|id| id.header_value())
        .or_else(|| headers.get(REQUEST_ID_HEADER))
        .and_then(|value| value.to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_kept() {
        assert!(is_safe(b"0190b1c2-7d1e-7abc-8def-0123456789ab"));
        assert!(is_safe(b"req_42.retry:1"));
        assert!(!is_safe(b""));
        assert!(!is_safe(b"id with spaces"));
        assert!(!is_safe(b"{\"injected\":true}"));
        assert!(!is_safe("é".as_bytes()));
        assert!(!is_safe(&[b'a'; MAX_LENGTH + 1]));
    }

    #[tokio::test]
    async fn handlers_read_the_id_the_layers_set() {
        use axum::routing::get;
        use tower::ServiceExt;
        use tower_http::request_id::{MakeRequestUuid, SetRequestIdLayer};

        let app = axum::Router::new()
            .route("/", get(|id: RequestId| async move { id.into_inner().unwrap_or_default() }))
            .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
            .layer(axum::middleware::from_fn(drop_unsafe_request_id));
        let body = |response: Response| async move {
            let bytes = axum::body::to_bytes(response.into_body(), 1024).await.expect("body");
            String::from_utf8(bytes.to_vec()).expect("utf-8")
        };
        let given = Request::builder().uri("/").header(REQUEST_ID_HEADER, "lb-42").body(axum::body::Body::empty());
        let response = app.clone().oneshot(given.expect("request")).await.expect("response");
        assert_eq!(body(response).await, "lb-42");
        let unsafe_id = Request::builder().uri("/").header(REQUEST_ID_HEADER, "x y").body(axum::body::Body::empty());
        let response = app.oneshot(unsafe_id.expect("request")).await.expect("response");
        let replaced = body(response).await;
        assert_eq!(replaced.len(), 36, "a UUID: {replaced}");
    }
}
