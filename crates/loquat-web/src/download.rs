//! A stored file sent back to its owner: streamed from storage, always as an attachment (the
//! name quoted for every browser), never sniffed, and never as an active type (HTML, SVG, XML
//! go out as `application/octet-stream`), so a hostile upload cannot run in Loquat's origin.

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;
use loquat_core::service::FileContent;

/// The response carrying `content`.
pub fn attachment(content: FileContent) -> Response {
    let FileContent { file, body } = content;
    let mime = if is_active(&file.mime) { "application/octet-stream" } else { file.mime.as_str() };
    let body = Body::from_stream(body.map_err(std::io::Error::other));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(file.size));
    if let Ok(value) = HeaderValue::from_str(&content_disposition(&file.name)) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    response
}

/// Raster images, which a page may show inline: browsers never run them.
pub fn shows_inline(mime: &str) -> bool {
    matches!(mime, "image/png" | "image/jpeg" | "image/gif" | "image/webp")
}

/// The response showing a raster image inline (in an `<img>` or a tab of its own), under a
/// policy that forbids everything else; any other file goes as an attachment.
pub fn inline_image(content: FileContent) -> Response {
    if !shows_inline(&content.file.mime) {
        return attachment(content);
    }
    let mut response = attachment(content);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("inline"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("default-src 'none'; sandbox"));
    // A file id always means the same bytes.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400, immutable"));
    response
}

/// Types a browser would run or render with scripts.
fn is_active(mime: &str) -> bool {
    let mime = mime.to_ascii_lowercase();
    mime.contains("html") || mime.contains("xml") || mime.contains("javascript") || mime.starts_with("multipart/")
}

/// `attachment; filename="<ASCII fallback>"; filename*=UTF-8''<percent-encoded name>` (RFC 6266).
pub fn content_disposition(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' || c == ' ' { c } else { '_' })
        .collect();
    let mut encoded = String::with_capacity(name.len() * 3);
    for byte in name.bytes() {
        if byte.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&byte) {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_for_every_browser() {
        assert_eq!(
            content_disposition("report.pdf"),
            "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
        );
        let chinese = content_disposition("年报 2025.pdf");
        assert!(
            chinese.starts_with("attachment; filename=\"__ 2025.pdf\"; filename*=UTF-8''%E5%B9%B4%E6%8A%A5%202025.pdf"),
            "{chinese}"
        );
        let hostile = content_disposition("a\"b\\c\r\nSet-Cookie: x.txt");
        assert!(!hostile.contains('\r') && !hostile.contains('\n'), "{hostile}");
        assert!(hostile.starts_with("attachment; filename=\"a_b_c__Set-Cookie: x.txt\""), "{hostile}");
        assert!(is_active("text/html") && is_active("image/svg+xml") && !is_active("application/pdf"));
    }
}
