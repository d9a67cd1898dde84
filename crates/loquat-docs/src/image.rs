//! Images for vision models: what a provider accepts, made from what a user uploaded. An image
//! within the size limits in a format every provider reads (PNG, JPEG, GIF, WebP) goes as it
//! is; a larger one is decoded (under a memory bound, so a crafted header cannot ask for
//! gigabytes), scaled to fit, and re-encoded as JPEG (PNG when it has transparency).

use std::io::Cursor;

use image::{DynamicImage, ImageFormat, ImageReader, Limits};

#[derive(Debug, Clone, Copy)]
pub struct Fit {
    /// The longest side, in pixels.
    pub max_edge: u32,
    /// The largest encoded size, in bytes.
    pub max_bytes: usize,
}

/// A fitted image: its type and bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fitted {
    pub mime: &'static str,
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("not an image Loquat can read: {0}")]
    Unreadable(String),
}

/// Images larger than this (in pixels) are refused rather than decoded.
const MAX_PIXELS: u64 = 100_000_000;

fn sent_as_is(format: ImageFormat) -> Option<&'static str> {
    match format {
        ImageFormat::Png => Some("image/png"),
        ImageFormat::Jpeg => Some("image/jpeg"),
        ImageFormat::Gif => Some("image/gif"),
        ImageFormat::WebP => Some("image/webp"),
        _ => None,
    }
}

/// `bytes` fitted to `fit`.
pub fn fit_image(bytes: &[u8], fit: Fit) -> Result<Fitted, ImageError> {
    let unreadable = |error: &dyn std::fmt::Display| ImageError::Unreadable(error.to_string());
    let reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| unreadable(&e))?;
    let format = reader.format().ok_or_else(|| ImageError::Unreadable("unknown format".into()))?;
    let (width, height) = reader.into_dimensions().map_err(|e| unreadable(&e))?;
    if let Some(mime) = sent_as_is(format)
        && width.max(height) <= fit.max_edge
        && bytes.len() <= fit.max_bytes
    {
        return Ok(Fitted { mime, bytes: bytes.to_vec(), width, height });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(ImageError::Unreadable(format!("{width}×{height} pixels is too large")));
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(|e| unreadable(&e))?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_PIXELS * 4 + (64 << 20));
    reader.limits(limits);
    let decoded = reader.decode().map_err(|e| unreadable(&e))?;
    let mut edge = fit.max_edge;
    loop {
        let scaled = if decoded.width().max(decoded.height()) > edge {
            decoded.resize(edge, edge, image::imageops::FilterType::Triangle)
        } else {
            decoded.clone()
        };
        let fitted = encode(&scaled)?;
        if fitted.bytes.len() <= fit.max_bytes || edge <= 256 {
            return Ok(fitted);
        }
        edge = edge * 3 / 4;
    }
}

fn encode(image: &DynamicImage) -> Result<Fitted, ImageError> {
    let mut out = Cursor::new(Vec::new());
    let (width, height) = (image.width(), image.height());
    let mime = if image.color().has_alpha() {
        image.write_to(&mut out, ImageFormat::Png).map_err(|e| ImageError::Unreadable(e.to_string()))?;
        "image/png"
    } else {
        let rgb = DynamicImage::ImageRgb8(image.to_rgb8());
        let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85);
        rgb.write_with_encoder(encoder).map_err(|e| ImageError::Unreadable(e.to_string()))?;
        "image/jpeg"
    };
    Ok(Fitted { mime, bytes: out.into_inner(), width, height })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png(width: u32, height: u32) -> Vec<u8> {
        let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(image).write_to(&mut out, ImageFormat::Png).expect("test value");
        out.into_inner()
    }

    #[test]
    fn small_images_go_as_they_are_and_large_ones_are_scaled() {
        let small = png(40, 30);
        let fitted = fit_image(&small, Fit { max_edge: 2048, max_bytes: 5 << 20 }).expect("test value");
        assert_eq!((fitted.mime, fitted.bytes == small), ("image/png", true));

        let large = png(3000, 1000);
        let fitted = fit_image(&large, Fit { max_edge: 1568, max_bytes: 5 << 20 }).expect("test value");
        assert_eq!((fitted.width, fitted.height, fitted.mime), (1568, 523, "image/jpeg"));
        let fitted = fit_image(&large, Fit { max_edge: 4000, max_bytes: 20_000 }).expect("test value");
        assert!(fitted.bytes.len() <= 20_000 || fitted.width <= 256, "{}", fitted.bytes.len());
    }

    #[test]
    fn garbage_and_huge_headers_are_refused() {
        assert!(fit_image(b"not an image", Fit { max_edge: 100, max_bytes: 100 }).is_err());
        // A PNG header claiming 100,000 × 100,000 pixels.
        let mut bomb = png(1, 1);
        bomb[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        bomb[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        assert!(fit_image(&bomb, Fit { max_edge: 100, max_bytes: 100 }).is_err());
    }
}
