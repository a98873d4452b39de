//! Bounded image decoding for input a stranger controls: the format is sniffed from the magic
//! bytes (PNG, JPEG, BMP, WebP only: OpenCV's other decoders stay unreachable) and the pixel
//! count is read from the header before OpenCV allocates anything.

use opencv::core::{Mat, Vector};
use opencv::imgcodecs;
use opencv::prelude::*;

use crate::{Error, Result};

/// Limits on one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest encoded size, bytes.
    pub max_bytes: usize,
    /// Most pixels (width × height).
    pub max_pixels: u64,
    /// Longest side, pixels.
    pub max_side: u32,
}

impl Default for ImageLimits {
    /// 12 MB, 24 megapixels, 8000 pixels a side: any phone photo, nothing absurd.
    fn default() -> Self {
        Self {
            max_bytes: 12 * 1024 * 1024,
            max_pixels: 24_000_000,
            max_side: 8000,
        }
    }
}

/// Checks the bytes against the limits and decodes them to a BGR image.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<Mat> {
    if bytes.is_empty() {
        return Err(Error::EmptyImage);
    }
    if bytes.len() > limits.max_bytes {
        return Err(Error::TooLarge(format!(
            "{} bytes, at most {}",
            bytes.len(),
            limits.max_bytes
        )));
    }
    let supported = bytes.starts_with(b"\x89PNG\r\n\x1a\n")
        || bytes.starts_with(&[0xff, 0xd8, 0xff])
        || bytes.starts_with(b"BM")
        || (bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP");
    if !supported {
        return Err(Error::NotAnImage);
    }
    let size = imagesize::blob_size(bytes).map_err(|_| Error::NotAnImage)?;
    let (w, h) = (size.width as u64, size.height as u64);
    if w == 0 || h == 0 {
        return Err(Error::NotAnImage);
    }
    if w * h > limits.max_pixels || w.max(h) > u64::from(limits.max_side) {
        return Err(Error::TooLarge(format!(
            "{w}×{h} pixels, at most {} pixels and {} a side",
            limits.max_pixels, limits.max_side
        )));
    }
    let buf = Vector::<u8>::from_slice(bytes);
    let img = imgcodecs::imdecode(&buf, imgcodecs::IMREAD_COLOR)?;
    if img.empty() {
        return Err(Error::NotAnImage);
    }
    Ok(img)
}
