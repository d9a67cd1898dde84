//! Static assets embedded in the binary and served at content-hashed URLs with immutable
//! caching, so a new release never meets a stale script and a reload costs no requests.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

struct Asset {
    body: Vec<u8>,
    content_type: &'static str,
}

/// The embedded assets by hashed name, plus the logical-name → URL map templates use.
pub struct Assets {
    by_hashed_name: HashMap<String, Asset>,
    urls: HashMap<&'static str, String>,
}

/// The assets, hashed once on first use (the server touches them at start-up).
pub fn assets() -> &'static Assets {
    static ASSETS: LazyLock<Assets> = LazyLock::new(Assets::build);
    &ASSETS
}

impl Assets {
    fn build() -> Self {
        let sources: [(&'static str, Vec<u8>, &'static str); 4] = [
            ("app.css", include_bytes!("../assets/app.css").to_vec(), "text/css; charset=utf-8"),
            ("app.js", include_bytes!("../assets/app.js").to_vec(), "text/javascript; charset=utf-8"),
            ("icon.svg", include_bytes!("../assets/icon.svg").to_vec(), "image/svg+xml"),
            ("highlight.css", crate::markdown::highlight_css().into_bytes(), "text/css; charset=utf-8"),
        ];
        let mut by_hashed_name = HashMap::new();
        let mut urls = HashMap::new();
        for (name, body, content_type) in sources {
            let digest = hex::encode(&Sha256::digest(&body)[..6]);
            let hashed = match name.rsplit_once('.') {
                Some((stem, extension)) => format!("{stem}.{digest}.{extension}"),
                None => format!("{name}.{digest}"),
            };
            urls.insert(name, format!("/static/{hashed}"));
            by_hashed_name.insert(hashed, Asset { body, content_type });
        }
        Self { by_hashed_name, urls }
    }

    /// The URL of an asset by its logical name (`app.css`).
    pub fn url(&self, name: &str) -> &str {
        self.urls.get(name).map(String::as_str).unwrap_or("/static/missing")
    }
}

pub async fn serve_asset(Path(name): Path<String>) -> Response {
    let Some(asset) = assets().by_hashed_name.get(&name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
        ],
        asset.body.clone(),
    )
        .into_response()
}
