//! Prometheus metrics of the HTTP layer: the names Loquat records, a middleware that counts and
//! times every request by its route template (never the raw path: ids would explode the series),
//! and `GET /metrics`. The binary installs the recorder and hands its renderer over as a
//! [`MetricsEndpoint`]; this crate only records through the `metrics` facade.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use loquat_core::Secret;
use loquat_core::crypto::token_hash;
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};

use crate::AppState;

/// Requests answered, by `route` (the template, e.g. `/chat/{assistant}/send`), `method` and
/// `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "loquat_http_requests_total";
/// Time until the response head, by `route` and `method` (a stream's body is not included).
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "loquat_http_request_duration_seconds";
/// Requests refused by a rate limit, by `rule` (`login-ip`, `chat-user`, …).
pub const RATE_LIMITED_TOTAL: &str = "loquat_rate_limited_total";
/// Store round trips, by `query` (recorded by the store; the readiness check's is `ping`).
pub use loquat_core::store::QUERY_DURATION_SECONDS as STORE_QUERY_DURATION_SECONDS;
/// The route label of requests no route matched (404s of the fallback).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Registers the help text of the web layer's metrics with the installed recorder.
pub fn describe() {
    describe_counter!(HTTP_REQUESTS_TOTAL, "HTTP requests answered, by route template, method and status.");
    describe_histogram!(
        HTTP_REQUEST_DURATION_SECONDS,
        Unit::Seconds,
        "Time until the response head was ready, by route template and method (streamed bodies excluded)."
    );
    describe_counter!(RATE_LIMITED_TOTAL, "Requests refused by a rate limit, by rule.");
    describe_histogram!(
        STORE_QUERY_DURATION_SECONDS,
        Unit::Seconds,
        "Store round trips by query (the store method), waiting for a connection included."
    );
}

/// What `GET /metrics` on the main port serves: the exporter's text, behind a bearer token.
#[derive(Clone)]
pub struct MetricsEndpoint {
    token: Option<Secret>,
    render: Arc<dyn Fn() -> String + Send + Sync>,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint").field("token", &self.token).finish_non_exhaustive()
    }
}

impl MetricsEndpoint {
    /// `token` unset (or empty) keeps `/metrics` off the main port (404); `render` produces the
    /// Prometheus text.
    pub fn new(token: Option<Secret>, render: Arc<dyn Fn() -> String + Send + Sync>) -> Self {
        Self { token: token.filter(|token| !token.is_empty()), render }
    }

    fn allows(&self, headers: &HeaderMap) -> Option<bool> {
        let token = self.token.as_ref()?;
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or_default();
        // Compared as hashes: equal-length digests, and the token's length does not leak.
        Some(!given.is_empty() && token_hash(given) == token_hash(token.expose()))
    }
}

/// Middleware: counts and times every request under its route template.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| UNMATCHED_ROUTE.to_owned(), |path| path.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let elapsed = started.elapsed().as_secs_f64();
    let status = response.status().as_u16().to_string();
    counter!(HTTP_REQUESTS_TOTAL, "route" => route.clone(), "method" => method, "status" => status).increment(1);
    histogram!(HTTP_REQUEST_DURATION_SECONDS, "route" => route, "method" => method).record(elapsed);
    response
}

/// `GET /metrics` on the main port: 404 without `LOQUAT_METRICS_TOKEN`, 401 without the right
/// `Authorization: Bearer` token.
pub async fn serve_metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(endpoint) = state.metrics.as_ref() else { return StatusCode::NOT_FOUND.into_response() };
    match endpoint.allows(&headers) {
        None => StatusCode::NOT_FOUND.into_response(),
        Some(false) => {
            let mut response = (StatusCode::UNAUTHORIZED, "a metrics token is required").into_response();
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            response
        }
        Some(true) => exposition((endpoint.render)()),
    }
}

/// The router of the separate metrics listener (`LOQUAT_METRICS_LISTEN`): `/metrics` without a
/// token, for an address only the monitoring network reaches.
pub fn metrics_router(render: Arc<dyn Fn() -> String + Send + Sync>) -> Router {
    Router::new().route("/metrics", get(move || std::future::ready(exposition(render()))))
}

fn exposition(text: String) -> Response {
    let content_type = HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8");
    ([(header::CONTENT_TYPE, content_type)], text).into_response()
}

/// Standard methods by name; anything else as `other`, so a client cannot mint label values.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(token: Option<&str>) -> MetricsEndpoint {
        MetricsEndpoint::new(token.map(Secret::new), Arc::new(|| "# metrics\n".to_owned()))
    }

    fn bearer(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn the_token_decides_who_may_scrape() {
        assert_eq!(endpoint(None).allows(&bearer("Bearer x")), None);
        assert_eq!(endpoint(Some("")).allows(&bearer("Bearer ")), None);
        assert_eq!(endpoint(Some("s3cret")).allows(&bearer("Bearer s3cret")), Some(true));
        assert_eq!(endpoint(Some("s3cret")).allows(&bearer("Bearer wrong")), Some(false));
        assert_eq!(endpoint(Some("s3cret")).allows(&bearer("s3cret")), Some(false));
        assert_eq!(endpoint(Some("s3cret")).allows(&HeaderMap::new()), Some(false));
        assert!(!format!("{:?}", endpoint(Some("s3cret"))).contains("s3cret"));
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::POST), "POST");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").expect("valid method")), "other");
    }
}
