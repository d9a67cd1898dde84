//! Who calls the API: the owner of the personal API token in `Authorization: Bearer lq_…`.
//! Only that header counts (no session cookie, so no cross-site request can use a browser's
//! session); a missing or invalid token is a 401 in OpenAI's shape, never a redirect.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use loquat_core::domain::Locale;

use super::error::ApiError;
use crate::AppState;
use crate::context::{Viewer, client_info};
use crate::error::Flavor;
use crate::i18n::Tr;

/// The signed-in caller, as the rest of the web layer knows users (rate limits take a `Viewer`).
pub struct ApiCaller(pub Viewer);

impl ApiCaller {
    pub fn tr(&self) -> Tr {
        self.0.tr
    }
}

/// The token of `Authorization: Bearer <token>` (the scheme in any case).
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|token| !token.is_empty())
}

impl FromRequestParts<AppState> for ApiCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let accept_language = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        let browser_locale = Locale::from_accept_language(accept_language.unwrap_or(""));
        let tr = Tr::new(browser_locale);
        let Some(token) = bearer(parts) else { return Err(ApiError::missing_key(tr)) };
        let user =
            state.services.accounts.api_token_user(token).await.map_err(|error| ApiError::from_core(error, "", tr))?;
        let Some(user) = user else { return Err(ApiError::invalid_key(tr)) };
        let tr = Tr::new(user.locale.unwrap_or(browser_locale));
        let client = client_info(parts, &state.settings.trusted_proxies);
        Ok(Self(Viewer {
            theme: user.theme,
            user,
            tr,
            flavor: Flavor::Json,
            client,
            session: None,
            utc_offset_minutes: 0,
        }))
    }
}
