//! Who is asking: the signed-in `Viewer` (from the session cookie) for every page and action
//! that needs one, the `Visitor` (maybe signed in) for the sign-in pages, in which language, and
//! from where (`ClientInfo` for sessions, rate limits and the audit log).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use loquat_core::domain::{Locale, Role, Theme, User};
use loquat_core::service::ClientInfo;
use loquat_core::{CoreError, Secret};

use crate::AppState;
use crate::error::{Flavor, WebError};
use crate::forwarded::TrustedProxies;
use crate::i18n::Tr;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "loquat_session";
/// The access-code cookie's name (`ACCESS_CODE`).
pub const ACCESS_COOKIE: &str = "loquat_access";

/// A signed-in user: a browser with a session cookie (pages), or a program with a personal API
/// token (the `/v1` API builds its `Viewer` itself, with no session).
pub struct Viewer {
    pub user: User,
    pub tr: Tr,
    pub theme: Theme,
    pub flavor: Flavor,
    pub client: ClientInfo,
    /// The session token of this browser (`None` for API-token requests).
    pub session: Option<Secret>,
    /// The browser's time zone, minutes east of UTC (the page script's `tz` cookie; 0 without).
    pub utc_offset_minutes: i32,
}

impl Viewer {
    /// Converts a core error into this viewer's error response.
    pub fn fail(&self) -> impl Fn(CoreError) -> WebError + '_ {
        move |error| WebError::from_core(error, self.tr, self.flavor)
    }

    pub fn locale(&self) -> Locale {
        self.tr.locale
    }

    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }

    /// A 400 for a form field holding a value none of our forms sends (an unknown role, a bad
    /// number): named, never replaced by a default.
    pub fn invalid_field(&self, field: &str) -> WebError {
        WebError::bad_request(self.tr.t_with("error.invalid_field", "field", field), self.tr, self.flavor)
    }

    /// A checkbox: ticked (`on`) or not (absent or empty); anything else is a 400.
    pub fn checkbox(&self, field: &str, value: &str) -> Result<bool, WebError> {
        match value {
            "" => Ok(false),
            "on" => Ok(true),
            _ => Err(self.invalid_field(field)),
        }
    }

    /// A program calling with a personal API token (as opposed to a browser's session).
    pub fn uses_api_token(&self) -> bool {
        self.session.is_none()
    }
}

/// Anyone: signed in or not (sign-in, registration and access-code pages).
pub struct Visitor {
    pub user: Option<User>,
    pub tr: Tr,
    pub theme: Theme,
    pub flavor: Flavor,
    pub client: ClientInfo,
}

impl Visitor {
    pub fn fail(&self) -> impl Fn(CoreError) -> WebError + '_ {
        move |error| WebError::from_core(error, self.tr, self.flavor)
    }
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

fn flavor(parts: &Parts) -> Flavor {
    flavor_of(&parts.headers, &parts.uri)
}

/// Whether the client wants errors as JSON (scripts, the API) or as a page.
pub(crate) fn flavor_of(headers: &HeaderMap, uri: &axum::http::Uri) -> Flavor {
    let wants_json = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.starts_with("application/json") || accept.starts_with("text/event-stream"));
    if wants_json || uri.path().starts_with("/api/") || uri.path().starts_with("/v1/") {
        Flavor::Json
    } else {
        Flavor::Html
    }
}

fn browser_locale(parts: &Parts) -> Locale {
    browser_locale_of(&parts.headers)
}

/// The language the browser asks for (before a signed-in user's preference).
pub(crate) fn browser_locale_of(headers: &HeaderMap) -> Locale {
    let accept_language = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).unwrap_or("");
    Locale::from_accept_language(accept_language)
}

/// Where the request comes from: the peer address, or the address the trusted reverse proxies
/// saw (`forwarded::TrustedProxies`: read from the right of `X-Forwarded-For`).
pub fn client_info(parts: &Parts, proxies: &TrustedProxies) -> ClientInfo {
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip());
    let ip = peer.map(|peer| {
        let forwarded: Vec<&str> =
            parts.headers.get_all("x-forwarded-for").iter().filter_map(|value| value.to_str().ok()).collect();
        proxies.client(peer, &forwarded).to_string()
    });
    let user_agent = parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    ClientInfo { ip: ip.unwrap_or_default(), user_agent: user_agent.chars().take(300).collect() }
}

/// The signed-in user of this request and their session token: the session cookie only. A
/// personal API token is for the `/v1` API (`api::openai::caller`), never for pages: a leaked
/// token must not open the admin panel or mint more tokens.
async fn signed_in(parts: &Parts, state: &AppState) -> Result<(Option<User>, Option<Secret>), CoreError> {
    if let Some(token) = cookie(&parts.headers, SESSION_COOKIE)
        && let Some(user) = state.services.accounts.session_user(&token).await?
    {
        return Ok((Some(user), Some(Secret::new(token))));
    }
    Ok((None, None))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let flavor = flavor(parts);
        let browser_locale = browser_locale(parts);
        let (user, session) = signed_in(parts, state)
            .await
            .map_err(|error| WebError::from_core(error, Tr::new(browser_locale), flavor))?;
        let Some(user) = user else {
            let next = parts.uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
            return Err(WebError::sign_in_required(Tr::new(browser_locale), flavor, next));
        };
        let tr = Tr::new(user.locale.unwrap_or(browser_locale));
        let client = client_info(parts, &state.settings.trusted_proxies);
        let utc_offset_minutes = cookie(&parts.headers, "tz")
            .and_then(|value| value.parse::<i32>().ok())
            .filter(|minutes| minutes.abs() <= 14 * 60)
            .unwrap_or(0);
        Ok(Self { theme: user.theme, user, tr, flavor, client, session, utc_offset_minutes })
    }
}

/// A signed-in administrator: admin pages and actions take this, so a member is turned away
/// (404, as for anything they cannot see) before the request body is even read. The services
/// check the role again.
pub struct AdminViewer(pub Viewer);

impl FromRequestParts<AppState> for AdminViewer {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        if viewer.is_admin() && !viewer.user.disabled {
            Ok(Self(viewer))
        } else {
            Err(WebError::not_found(viewer.tr, viewer.flavor))
        }
    }
}

impl FromRequestParts<AppState> for Visitor {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let flavor = flavor(parts);
        let browser_locale = browser_locale(parts);
        let (user, _) = signed_in(parts, state)
            .await
            .map_err(|error| WebError::from_core(error, Tr::new(browser_locale), flavor))?;
        let locale = user.as_ref().and_then(|user| user.locale).unwrap_or(browser_locale);
        let theme = user.as_ref().map_or(Theme::System, |user| user.theme);
        let client = client_info(parts, &state.settings.trusted_proxies);
        Ok(Self { user, tr: Tr::new(locale), theme, flavor, client })
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn cookies_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_static("a=1; loquat_session=tok en; b=2"));
        headers.append(header::COOKIE, HeaderValue::from_static("loquat_access=xyz"));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("tok en"));
        assert_eq!(cookie(&headers, ACCESS_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&headers, "missing"), None);
    }
}
