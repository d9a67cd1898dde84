//! The installable app (PWA), all public and under `/static/pwa/`: the web manifest, icons
//! drawn once from the shapes of `icon.svg`, the service worker (allowed the whole site as its
//! scope) and the offline page. The worker keeps the shell — the content-hashed assets, the
//! icons and the offline page — and nothing else: never a page or an API response, which hold a
//! person's conversations; a page that cannot load offline shows the offline page.

use std::sync::LazyLock;

use askama::Template;
use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use image::{ImageFormat, Rgba, RgbaImage};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::assets::assets;
use crate::context::Visitor;
use crate::error::WebResult;
use crate::i18n::Tr;
use crate::pages::{Chrome, render};

pub const MANIFEST: &str = "/static/pwa/manifest.webmanifest";
pub const WORKER: &str = "/static/pwa/sw.js";
pub const OFFLINE: &str = "/static/pwa/offline";
/// The brand's orange, for the browser's chrome around the installed app.
const THEME_COLOR: &str = "#f08a1c";

/// `GET /static/pwa/manifest.webmanifest`.
pub async fn manifest() -> Response {
    let icon = |name: &str, size: &str, purpose: &str| json!({ "src": format!("/static/pwa/{name}"), "sizes": size, "type": "image/png", "purpose": purpose });
    let manifest = json!({
        "name": "Loquat",
        "short_name": "Loquat",
        "id": "/",
        "start_url": "/",
        "scope": "/",
        "display": "standalone",
        "background_color": "#ffffff",
        "theme_color": THEME_COLOR,
        "icons": [
            { "src": assets().url("icon.svg"), "sizes": "any", "type": "image/svg+xml", "purpose": "any" },
            icon("icon-192.png", "192x192", "any"),
            icon("icon-512.png", "512x512", "any"),
            icon("maskable-512.png", "512x512", "maskable"),
        ],
    });
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("application/manifest+json")),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
    ];
    (headers, manifest.to_string()).into_response()
}

/// The worker's script: the shell's files, and a cache named after them, so a new release
/// (new asset hashes) replaces the old cache.
static WORKER_SCRIPT: LazyLock<String> = LazyLock::new(|| {
    let assets = assets();
    let shell = [
        OFFLINE.to_owned(),
        assets.url("app.css").to_owned(),
        assets.url("app.js").to_owned(),
        assets.url("highlight.css").to_owned(),
        assets.url("icon.svg").to_owned(),
        "/static/pwa/icon-192.png".to_owned(),
    ];
    let list = serde_json::to_string(&shell).unwrap_or_else(|_| "[]".to_owned());
    let version = hex::encode(&Sha256::digest(list.as_bytes())[..6]);
    include_str!("../assets/sw.js").replace("__VERSION__", &version).replace("__SHELL__", &list)
});

/// `GET /static/pwa/sw.js`: revalidated on every check, so an update is found at once.
pub async fn service_worker() -> Response {
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (header::HeaderName::from_static("service-worker-allowed"), HeaderValue::from_static("/")),
    ];
    (headers, WORKER_SCRIPT.as_str()).into_response()
}

#[derive(Template)]
#[template(path = "offline.html")]
struct OfflinePage {
    tr: Tr,
    chrome: Chrome,
}

/// `GET /static/pwa/offline`: what an installed app shows without a connection.
pub async fn offline(visitor: Visitor) -> WebResult<Response> {
    let mut response = render(&OfflinePage { tr: visitor.tr, chrome: Chrome::new(visitor.theme) }, visitor.tr)?;
    // Public and the same for everyone of a language; the worker keeps its own copy.
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// `GET /static/pwa/{icon}.png`.
pub async fn icon(Path(name): Path<String>) -> Response {
    static ICONS: LazyLock<[Vec<u8>; 3]> =
        LazyLock::new(|| [draw_icon(192, false), draw_icon(512, false), draw_icon(512, true)]);
    let index = match name.as_str() {
        "icon-192.png" => 0,
        "icon-512.png" => 1,
        "maskable-512.png" => 2,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let headers = [
        (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
        (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=86400")),
    ];
    (headers, ICONS[index].clone()).into_response()
}

/// The loquat of `icon.svg` (a 64-unit square) as a PNG of `size` pixels, sampled 4×4 per
/// pixel. `maskable`: on a filled square, inside the central 80% a launcher may crop to.
fn draw_icon(size: u32, maskable: bool) -> Vec<u8> {
    const SAMPLES: u32 = 4;
    let (scale, offset) = if maskable { (80.0 / size as f32, -8.0) } else { (64.0 / size as f32, 0.0) };
    let background = Rgba([255, 246, 229, 255]);
    let mut image = RgbaImage::new(size, size);
    for (x, y, pixel) in image.enumerate_pixels_mut() {
        let mut sum = [0f32; 4];
        for sy in 0..SAMPLES {
            for sx in 0..SAMPLES {
                let u = (x as f32 + (sx as f32 + 0.5) / SAMPLES as f32) * scale + offset;
                let v = (y as f32 + (sy as f32 + 0.5) / SAMPLES as f32) * scale + offset;
                let mut color = if maskable { to_f32(background) } else { [0.0; 4] };
                for (inside, paint) in shapes(u, v) {
                    if inside {
                        color = over(color, paint);
                    }
                }
                for channel in 0..4 {
                    sum[channel] += color[channel];
                }
            }
        }
        let count = (SAMPLES * SAMPLES) as f32;
        *pixel = Rgba(sum.map(|channel| (channel / count).round().clamp(0.0, 255.0) as u8));
    }
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, ImageFormat::Png).map(|_| png.into_inner()).unwrap_or_default()
}

/// The icon's shapes at a point (in the SVG's units), back to front: whether the point is in
/// each, and its paint there.
fn shapes(u: f32, v: f32) -> [(bool, [f32; 4]); 4] {
    let ellipse = |cx: f32, cy: f32, rx: f32, ry: f32| ((u - cx) / rx).powi(2) + ((v - cy) / ry).powi(2) <= 1.0;
    // The leaf: an ellipse turned 35° up to the right from the stem's top.
    let (angle, cx, cy) = (-0.61f32, 42.0, 9.0);
    let (du, dv) = (u - cx, v - cy);
    let (lu, lv) = (du * angle.cos() + dv * angle.sin(), -du * angle.sin() + dv * angle.cos());
    let leaf = (lu / 9.0).powi(2) + (lv / 3.6).powi(2) <= 1.0;
    // The fruit's gradient runs from its top left to its bottom right.
    let t = ((u - 11.0) + (v - 14.0)) / 88.0;
    let mix = |a: f32, b: f32| a + (b - a) * t.clamp(0.0, 1.0);
    let fruit = [mix(255.0, 240.0), mix(194.0, 138.0), mix(75.0, 28.0), 255.0];
    let stem = (u - 32.0).abs() <= 1.5 && (12.5..=21.5).contains(&v);
    [
        (leaf, [90.0, 158.0, 75.0, 255.0]),
        (ellipse(32.0, 37.0, 21.0, 23.0), fruit),
        (ellipse(25.0, 29.0, 6.0, 8.0), [255.0, 255.0, 255.0, 0.28 * 255.0]),
        (stem, [122.0, 74.0, 18.0, 255.0]),
    ]
}

fn to_f32(color: Rgba<u8>) -> [f32; 4] {
    color.0.map(f32::from)
}

/// `paint` over `below` (straight alpha, 0–255).
fn over(below: [f32; 4], paint: [f32; 4]) -> [f32; 4] {
    let alpha = paint[3] / 255.0;
    let below_alpha = below[3] / 255.0;
    let out_alpha = alpha + below_alpha * (1.0 - alpha);
    if out_alpha <= 0.0 {
        return [0.0; 4];
    }
    let channel = |i: usize| (paint[i] * alpha + below[i] * below_alpha * (1.0 - alpha)) / out_alpha;
    [channel(0), channel(1), channel(2), out_alpha * 255.0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn icons_are_pngs_of_their_size_with_the_fruit_in_the_middle() {
        for (size, maskable) in [(192, false), (512, true)] {
            let png = draw_icon(size, maskable);
            let image = image::load_from_memory_with_format(&png, ImageFormat::Png).expect("a PNG").to_rgba8();
            assert_eq!(image.dimensions(), (size, size));
            let middle = image.get_pixel(size / 2, size * 37 / 64);
            assert!(middle[0] > 200 && middle[2] < 120 && middle[3] == 255, "orange: {middle:?}");
            let corner = image.get_pixel(1, size - 2);
            assert_eq!(corner[3], if maskable { 255 } else { 0 }, "corner: {corner:?}");
        }
    }

    #[test]
    fn the_worker_lists_the_shell_and_never_caches_pages() {
        let script = WORKER_SCRIPT.as_str();
        assert!(script.contains(OFFLINE) && script.contains(assets().url("app.js")), "{script}");
        assert!(!script.contains("__SHELL__") && !script.contains("__VERSION__"));
    }
}
