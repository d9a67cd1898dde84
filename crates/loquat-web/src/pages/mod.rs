//! Server-rendered pages: one typed template per page, plus the frame (`Chrome`) they share.

pub mod account;
pub mod admin;
pub mod admin_audit;
pub mod admin_features;
pub mod assistants;
pub mod auth;
pub mod chat;
pub mod data;
pub mod files;
pub mod knowledge;
pub mod mcp;
pub mod media;
pub mod search;
pub mod settings;
pub mod share;
pub mod sso;

use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use loquat_core::domain::Theme;

use crate::error::{Flavor, WebError};
use crate::i18n::Tr;

/// What every page's `<head>` and frame needs.
#[derive(Debug, Clone)]
pub struct Chrome {
    pub css_url: String,
    pub highlight_url: String,
    pub js_url: String,
    pub icon_url: String,
    /// `system`, `light` or `dark`.
    pub theme: &'static str,
}

impl Chrome {
    pub fn new(theme: Theme) -> Self {
        let assets = crate::assets::assets();
        Self {
            css_url: assets.url("app.css").to_owned(),
            highlight_url: assets.url("highlight.css").to_owned(),
            js_url: assets.url("app.js").to_owned(),
            icon_url: assets.url("icon.svg").to_owned(),
            theme: theme.code(),
        }
    }
}

/// Renders a template into a response; a template error is a bug, logged once.
pub fn render<T: Template>(template: &T, tr: Tr) -> Result<Response, WebError> {
    match template.render() {
        Ok(html) => Ok(Html(html).into_response()),
        Err(error) => Err(WebError::internal(format_args!("template failed to render: {error}"), tr, Flavor::Html)),
    }
}

/// After a form post: go back to a page (303 so the browser GETs it). A location that cannot
/// be a header value (a bug upstream, never user input: see [`safe_next`]) goes to `/`.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => Redirect::to("/").into_response(),
    }
}

/// A same-site path to go to after signing in or posting a form (`next`, `back`), else
/// `fallback`. Only a path that starts with one `/` followed by a safe character, made of
/// visible ASCII without backslashes: browsers drop tabs and newlines and read `\` as `/`, so
/// `/\t/evil.example` or `/\\evil.example` would leave the site.
pub fn safe_next(next: &str, fallback: &str) -> String {
    let bytes = next.as_bytes();
    let starts_well = match bytes {
        [b'/'] => true,
        [b'/', second, ..] => !matches!(second, b'/' | b'\\'),
        _ => false,
    };
    let clean = bytes.iter().all(|byte| byte.is_ascii_graphic() && *byte != b'\\');
    if starts_well && clean { next.to_owned() } else { fallback.to_owned() }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    tr: Tr,
    chrome: Chrome,
    status: u16,
    message: &'a str,
}

/// The error page (needs no state, so it works when everything else fails).
pub fn error_page(tr: Tr, status: StatusCode, message: &str) -> String {
    let page = ErrorPage { tr, chrome: Chrome::new(Theme::System), status: status.as_u16(), message };
    page.render().unwrap_or_else(|_| message.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_paths_are_followed() {
        for good in ["/", "/chat/abc", "/admin?q=a%20b", "/chat/x#m-1"] {
            assert_eq!(safe_next(good, "/"), good, "{good:?}");
        }
        for bad in [
            "",
            "//evil.example",
            "/\\evil.example",
            "/\t/evil.example/x",
            "/\n/evil.example",
            "/ /evil.example",
            "/a\\b",
            "https://evil.example",
            "evil",
            "/\u{7f}",
            "/中文",
            "\t/x",
        ] {
            assert_eq!(safe_next(bad, "/"), "/", "{bad:?}");
        }
    }

    #[test]
    fn an_unusable_location_goes_home() {
        let response = see_other("/a\nb");
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()[header::LOCATION], "/");
    }
}
