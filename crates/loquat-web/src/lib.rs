//! Loquat's front doors: the route table, server-rendered pages, the JSON/SSE endpoints the
//! page scripts use, embedded assets, markdown rendering and translations. Handlers are thin:
//! they parse input, call one `Services` method and render.

rust_i18n::i18n!("locales", fallback = "en");

mod api;
mod assets;
mod chart;
mod context;
mod download;
mod error;
mod form;
mod forwarded;
pub mod health;
mod i18n;
mod limits;
pub mod markdown;
pub mod metrics;
mod middleware;
mod pages;
mod pwa;
mod render_cache;
pub mod request_id;
mod routes;
mod views;

use std::sync::Arc;

use loquat_core::Services;

use crate::markdown::ImageHosts;
use crate::render_cache::Renderer;

pub use assets::assets;
pub use forwarded::TrustedProxies;
pub use routes::{route_list, router};

/// Settings of the HTTP layer.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Largest accepted request body, in bytes.
    pub body_limit: usize,
    /// Whether cookies get the `Secure` flag (the public URL is https).
    pub secure_cookies: bool,
    /// `ACCESS_CODE`: shared passwords in front of the whole instance (empty = none).
    pub access_codes: Vec<loquat_core::Secret>,
    /// A server secret that makes the access cookie unforgeable (`AUTH_SECRET`).
    pub auth_secret: loquat_core::Secret,
    /// Which `X-Forwarded-For` entries to believe for the client's address (behind reverse
    /// proxies only; none by default).
    pub trusted_proxies: TrustedProxies,
    /// Answers one client address may start per minute on the chat pages (`0`: no limit).
    pub chat_per_address_per_minute: u32,
    /// `AUTH_ALLOWED_EMAILS`: addresses or domains SSO sign-ins are restricted to.
    pub allowed_emails: Vec<String>,
    /// The public URL (`APP_URL`), for links shown to users (invitations).
    pub public_url: String,
    /// `LOQUAT_IMAGE_HOSTS`: hosts whose images rendered markdown may load (and the CSP's
    /// `img-src` lists); empty, remote images are shown as links.
    pub image_hosts: ImageHosts,
}

impl Default for WebSettings {
    fn default() -> Self {
        Self {
            body_limit: 2 * 1024 * 1024,
            secure_cookies: false,
            access_codes: Vec::new(),
            auth_secret: loquat_core::Secret::default(),
            trusted_proxies: TrustedProxies::None,
            chat_per_address_per_minute: 120,
            allowed_emails: Vec::new(),
            public_url: "http://127.0.0.1:3210".to_owned(),
            image_hosts: ImageHosts::none(),
        }
    }
}

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// Behind one `Arc`: the state is cloned for every request, the services inside it never.
    pub services: Arc<Services>,
    pub settings: Arc<WebSettings>,
    pub limiter: Arc<dyn loquat_limits::RateLimiter>,
    pub sso: Option<Arc<loquat_auth::SsoClient>>,
    /// `GET /metrics` on the main port (`None`: 404); see [`AppState::with_metrics`].
    pub metrics: Option<metrics::MetricsEndpoint>,
    /// Markdown rendering off the async workers, with its cache.
    pub renderer: Renderer,
    /// The last scheduled backup, for `/readyz` (`None`: no schedule).
    pub backup: Option<health::BackupStatus>,
}

impl AppState {
    pub fn new(
        services: Services,
        settings: WebSettings,
        limiter: Arc<dyn loquat_limits::RateLimiter>,
        sso: Option<Arc<loquat_auth::SsoClient>>,
    ) -> Self {
        let renderer = Renderer::new(settings.image_hosts.clone());
        Self {
            services: Arc::new(services),
            settings: Arc::new(settings),
            limiter,
            sso,
            metrics: None,
            renderer,
            backup: None,
        }
    }

    /// Serves the installed recorder's metrics at `GET /metrics` (behind its token).
    pub fn with_metrics(mut self, endpoint: metrics::MetricsEndpoint) -> Self {
        self.metrics = Some(endpoint);
        self
    }
}
