//! Loquat's front doors: the route table, server-rendered pages, the JSON/SSE endpoints the
//! page scripts use, embedded assets, markdown rendering and translations. Handlers are thin:
//! they parse input, call one `Services` method and render.

rust_i18n::i18n!("locales", fallback = "en");

mod api;
mod assets;
mod context;
mod error;
mod i18n;
pub mod markdown;
mod middleware;
mod pages;
mod render_cache;
mod routes;
mod views;

use std::sync::Arc;

use loquat_core::Services;

pub use assets::assets;
pub use routes::router;

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Whether cookies get the `Secure` flag (the public URL is https).
    pub secure_cookies: bool,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self { body_limit: 2 * 1024 * 1024, secure_cookies: false }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub settings: Arc<WebSettings>,
}

impl AppState {
    pub fn new(services: Services, settings: WebSettings) -> Self {
        Self { services, settings: Arc::new(settings) }
    }
}
