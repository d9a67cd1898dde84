//! Cross-cutting HTTP behaviour: security headers on every response and a cross-origin check
//! on every state-changing request (a browser on another site cannot post to Loquat).

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: https:; connect-src 'self'; font-src 'self'; object-src 'none'; \
    base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.entry(header::CACHE_CONTROL).or_insert_with(|| HeaderValue::from_static("no-store"));
    response
}

/// Refuses state-changing requests that a browser marks as coming from another site, and
/// requests whose `Origin` does not match the `Host` they were sent to. Requests without
/// either header come from non-browser clients, which carry no ambient credentials to abuse.
pub async fn cross_origin_protection(request: Request, next: Next) -> Response {
    if is_cross_origin_write(request.method(), request.headers()) {
        return (StatusCode::FORBIDDEN, "cross-origin request refused").into_response();
    }
    next.run(request).await
}

fn is_cross_origin_write(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return !matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn cross_origin_writes_are_refused() {
        let post = Method::POST;
        assert!(!is_cross_origin_write(&Method::GET, &headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_origin_write(&post, &headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_cross_origin_write(&post, &headers(&[("sec-fetch-site", "same-site")])));
        assert!(!is_cross_origin_write(&post, &headers(&[("sec-fetch-site", "same-origin")])));
        assert!(is_cross_origin_write(
            &post,
            &headers(&[("origin", "https://evil.example"), ("host", "loquat.local")])
        ));
        assert!(!is_cross_origin_write(
            &post,
            &headers(&[("origin", "http://loquat.local:3210"), ("host", "loquat.local:3210")])
        ));
        assert!(is_cross_origin_write(&post, &headers(&[("origin", "null"), ("host", "loquat.local")])));
        assert!(!is_cross_origin_write(&post, &headers(&[])));
    }
}
