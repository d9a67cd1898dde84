//! Server-rendered pages: one typed template per page, plus the frame (`Chrome`) they share.

pub mod account;
pub mod admin;
pub mod assistants;
pub mod auth;
pub mod chat;
pub mod settings;
pub mod sso;

use askama::Template;
use axum::http::StatusCode;
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

/// After a form post: go back to a page (303 so the browser GETs it).
pub fn see_other(location: &str) -> Response {
    Redirect::to(location).into_response()
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
