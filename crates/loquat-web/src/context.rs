//! The request's viewer: who is asking (for now the single local user), in which language,
//! and whether they want a page or JSON.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use loquat_core::domain::{Locale, Theme, User};
use loquat_core::{CoreError, Services};

use crate::AppState;
use crate::error::{Flavor, WebError};
use crate::i18n::Tr;

pub struct Viewer {
    pub user: User,
    pub tr: Tr,
    pub theme: Theme,
    pub flavor: Flavor,
}

impl Viewer {
    /// Converts a core error into this viewer's error response.
    pub fn fail(&self) -> impl Fn(CoreError) -> WebError + '_ {
        move |error| WebError::from_core(error, self.tr, self.flavor)
    }

    pub fn locale(&self) -> Locale {
        self.tr.locale
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let accept_language = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
        let browser_locale = Locale::from_accept_language(accept_language);
        let wants_json =
            parts.headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|accept| {
                accept.starts_with("application/json") || accept.starts_with("text/event-stream")
            });
        let flavor = if wants_json || parts.uri.path().starts_with("/api/") { Flavor::Json } else { Flavor::Html };
        let user = state
            .services
            .user(Services::local_user_id())
            .await
            .map_err(|error| WebError::from_core(error, Tr::new(browser_locale), flavor))?;
        let tr = Tr::new(user.locale.unwrap_or(browser_locale));
        Ok(Self { theme: user.theme, user, tr, flavor })
    }
}
