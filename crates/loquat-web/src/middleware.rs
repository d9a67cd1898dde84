//! Cross-cutting HTTP behaviour: security headers on every response and a cross-origin check
//! on every state-changing request (a browser on another site cannot post to Loquat).

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::markdown::ImageHosts;

/// The Content-Security-Policy: scripts, styles and connections only from Loquat; images from
/// Loquat, `data:` and exactly the allowed image hosts (no `https:` wildcard: a remote image
/// in a model's answer must not load unless its host is allowed).
pub fn content_security_policy(images: &ImageHosts) -> HeaderValue {
    let mut img_src = "'self' data:".to_owned();
    if !images.is_empty() {
        img_src.push(' ');
        img_src.push_str(&images.csp_sources());
    }
    let policy = format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src {img_src}; connect-src 'self'; \
         font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    );
    // Host names are checked to be letters, digits, `-`, `.` and `*`: always a valid header.
    HeaderValue::from_str(&policy).unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"))
}

pub async fn security_headers(State(csp): State<HeaderValue>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    // A handler's own (stricter) policy stays: an image shown inline is sandboxed.
    headers.entry(header::CONTENT_SECURITY_POLICY).or_insert(csp);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // A handler's stricter one stays too: a shared page sends no referrer at all.
    headers.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
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
    fn images_come_only_from_allowed_hosts() {
        let csp = content_security_policy(&ImageHosts::none());
        let csp = csp.to_str().expect("ascii");
        assert!(csp.contains("img-src 'self' data:;"), "{csp}");
        assert!(!csp.contains("https:"), "{csp}");
        let hosts = ImageHosts::parse(&["img.example.com", "*.cdn.example.org"]).expect("valid");
        let csp = content_security_policy(&hosts);
        let csp = csp.to_str().expect("ascii");
        assert!(csp.contains("img-src 'self' data: https://img.example.com https://*.cdn.example.org;"), "{csp}");
        assert!(csp.contains("script-src 'self';") && csp.contains("frame-ancestors 'none'"), "{csp}");
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
