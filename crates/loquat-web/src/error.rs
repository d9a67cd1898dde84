//! The web layer's error: maps a core error's kind to an HTTP status in one place, renders a
//! friendly page or JSON, and logs server-side failures once without sending their detail.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use loquat_core::{CoreError, ErrorKind};

use crate::i18n::Tr;

/// How the client wants errors: a page or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Html,
    Json,
}

#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    /// Shown to the user (already translated or safe to show).
    pub message: String,
    pub flavor: Flavor,
    pub tr: Tr,
    /// For pages: send the browser here instead of showing an error (sign-in).
    pub redirect: Option<String>,
}

impl WebError {
    pub fn from_core(error: CoreError, tr: Tr, flavor: Flavor) -> Self {
        let kind = error.kind();
        let status = status_of(kind);
        let message = user_message(&error, tr);
        if matches!(kind, ErrorKind::Internal | ErrorKind::Unavailable) {
            tracing::error!(error = %error, "request failed");
        }
        Self { status, message, flavor, tr, redirect: None }
    }

    /// A failure of our own (a template that did not render: a bug), logged once here; the
    /// user gets the generic message.
    pub fn internal(error: impl std::fmt::Display, tr: Tr, flavor: Flavor) -> Self {
        tracing::error!(%error, "request failed");
        let message = tr.t("error.internal").into_owned();
        Self { status: StatusCode::INTERNAL_SERVER_ERROR, message, flavor, tr, redirect: None }
    }

    pub fn bad_request(message: impl Into<String>, tr: Tr, flavor: Flavor) -> Self {
        Self { status: StatusCode::BAD_REQUEST, message: message.into(), flavor, tr, redirect: None }
    }

    pub fn not_found(tr: Tr, flavor: Flavor) -> Self {
        let message = tr.t("error.not_found").into_owned();
        Self { status: StatusCode::NOT_FOUND, message, flavor, tr, redirect: None }
    }

    /// Not signed in: pages go to the sign-in page (and back to `next` afterwards), the API
    /// answers 401.
    pub fn sign_in_required(tr: Tr, flavor: Flavor, next: &str) -> Self {
        let redirect = format!("/login?next={}", percent_encode(next));
        let message = tr.t("auth.sign_in_required").into_owned();
        Self { status: StatusCode::UNAUTHORIZED, message, flavor, tr, redirect: Some(redirect) }
    }

    pub fn too_many_requests(tr: Tr, flavor: Flavor) -> Self {
        let message = tr.t("limited.too_many_requests").into_owned();
        Self { status: StatusCode::TOO_MANY_REQUESTS, message, flavor, tr, redirect: None }
    }
}

/// What the user is told about a core error, in their language. Internal detail never leaks.
pub fn user_message(error: &CoreError, tr: Tr) -> String {
    match error {
        CoreError::Invalid { code, detail } => tr.t_with(&format!("invalid.{code}"), "detail", detail),
        CoreError::Conflict(code) => tr.t(&format!("conflict.{code}")).into_owned(),
        CoreError::Limited { code, detail } => tr.t_with(&format!("limited.{code}"), "detail", detail),
        CoreError::NotFound(_) => tr.t("error.not_found").into_owned(),
        CoreError::Provider(provider) => tr.t(&format!("provider_error.{}", provider.kind.code())).into_owned(),
        CoreError::Store(store) if store.is_unavailable() => tr.t("error.unavailable").into_owned(),
        CoreError::Store(_) | CoreError::Vault(_) => tr.t("error.internal").into_owned(),
        CoreError::TooLarge { limit } => {
            tr.t_with("limited.file_too_large", "detail", &crate::views::human_bytes(*limit))
        }
        CoreError::Files(_) => tr.t("error.file_storage").into_owned(),
    }
}

/// The one mapping from error kinds to HTTP statuses.
pub fn status_of(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Limited => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Unavailable => StatusCode::BAD_GATEWAY,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match self.flavor {
            Flavor::Json => {
                (self.status, Json(serde_json::json!({ "error": { "message": self.message } }))).into_response()
            }
            Flavor::Html if self.redirect.is_some() => crate::pages::see_other(self.redirect.as_deref().unwrap_or("/")),
            Flavor::Html => {
                let page = crate::pages::error_page(self.tr, self.status, &self.message);
                (self.status, Html(page)).into_response()
            }
        }
    }
}

pub type WebResult<T> = Result<T, WebError>;

/// Percent-encodes a path for a query value (everything but unreserved characters and `/`).
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~' | b'/') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}
