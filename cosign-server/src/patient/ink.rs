//! Strokes drawn into a transparent PNG: the appearance of a handwritten copy (逐字抄录), one
//! square cell per character, each character scaled into its cell by its own bounding box.

use cosign_proto::v1::patient::Stroke;

/// Pixels per character cell.
const CELL: usize = 96;
/// Blank border inside a cell.
const MARGIN: f64 = 10.0;
/// Pen radius in pixels.
const PEN: f64 = 2.5;

/// Draws each character's strokes into its own cell, left to right; black ink on transparent.
pub fn row_png(chars: &[&[Stroke]]) -> Result<Vec<u8>, png::EncodingError> {
    let w = CELL * chars.len().max(1);
    let h = CELL;
    let mut alpha = vec![0u8; w * h];
    for (i, strokes) in chars.iter().enumerate() {
        let pts = strokes.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in pts {
            x0 = x0.min(p.x);
            y0 = y0.min(p.y);
            x1 = x1.max(p.x);
            y1 = y1.max(p.y);
        }
        if x0 > x1 {
            continue;
        }
        #[allow(clippy::cast_precision_loss)]
        let room = CELL as f64 - 2.0 * MARGIN;
        let scale = room / (x1 - x0).max(y1 - y0).max(1.0);
        #[allow(clippy::cast_precision_loss)]
        let ox = (i * CELL) as f64 + MARGIN + (room - (x1 - x0) * scale) / 2.0;
        let oy = MARGIN + (room - (y1 - y0) * scale) / 2.0;
        let map = |x: f64, y: f64| (ox + (x - x0) * scale, oy + (y - y0) * scale);
        for s in *strokes {
            let mut prev: Option<(f64, f64)> = None;
            for p in &s.points {
                let here = map(p.x, p.y);
                line(&mut alpha, w, h, prev.unwrap_or(here), here);
                prev = Some(here);
            }
        }
    }
    let mut rgba = Vec::with_capacity(w * h * 4);
    for a in alpha {
        rgba.extend_from_slice(&[0, 0, 0, a]);
    }
    let mut out = Vec::new();
    let (w32, h32) = (
        u32::try_from(w).unwrap_or(u32::MAX),
        u32::try_from(h).unwrap_or(u32::MAX),
    );
    let mut enc = png::Encoder::new(&mut out, w32, h32);
    enc.set_color(png::ColorType::Rgba);
    enc.set_depth(png::BitDepth::Eight);
    let mut wr = enc.write_header()?;
    wr.write_image_data(&rgba)?;
    wr.finish()?;
    Ok(out)
}

/// A round-pen segment from `a` to `b`.
#[allow(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_precision_loss
)]
fn line(alpha: &mut [u8], w: usize, h: usize, a: (f64, f64), b: (f64, f64)) {
    let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
    let steps = (len / 1.0).ceil().max(1.0) as usize;
    for k in 0..=steps {
        let t = k as f64 / steps as f64;
        let (cx, cy) = (a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t);
        let (xa, xb) = (
            (cx - PEN).floor().max(0.0) as usize,
            (cx + PEN).ceil() as usize,
        );
        let (ya, yb) = (
            (cy - PEN).floor().max(0.0) as usize,
            (cy + PEN).ceil() as usize,
        );
        for y in ya..=yb.min(h - 1) {
            for x in xa..=xb.min(w - 1) {
                let d = ((x as f64 - cx).powi(2) + (y as f64 - cy).powi(2)).sqrt();
                if d <= PEN {
                    alpha[y * w + x] = 255;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cosign_proto::v1::patient::StrokePoint;

    #[test]
    fn draws_ink_in_each_cell() {
        let pt = |x, y, t| StrokePoint { x, y, t, p: None };
        let a = vec![Stroke {
            points: vec![pt(0.0, 0.0, 0.0), pt(100.0, 100.0, 10.0)],
        }];
        let b = vec![Stroke {
            points: vec![pt(5.0, 5.0, 20.0)],
        }];
        let png = row_png(&[&a, &b, &[]]).unwrap();
        let img = doc_sign::SignatureImage::from_png(&png).unwrap();
        let cell = u32::try_from(CELL).unwrap();
        assert_eq!(img.size(), (3 * cell, cell));
    }
}
