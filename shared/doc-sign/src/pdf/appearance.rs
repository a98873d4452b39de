//! Visible signature appearances: a handwritten signature image, an electronic seal image and a
//! text block (signer, time, certificate serial), composable in one box on one page.
//!
//! Images are PNG (any colour type and bit depth the `png` crate expands to 8-bit); transparency
//! becomes a soft mask (/SMask), so a transparent handwriting or seal image does not hide the page.
//! Text uses the Adobe standard CJK font `STSong-Light` with `UniGB-UCS2-H` (not embedded: every
//! conforming reader has it or a substitute, e.g. Noto Sans CJK with poppler).

use crate::error::{Error, Result};
use flate2::Compression;
use flate2::write::ZlibEncoder;
use lopdf::{Dictionary, Object, Stream};
use std::fmt::Write as _;
use std::io::Write as _;

/// Largest accepted image side in pixels.
pub const MAX_IMAGE_SIDE: u32 = 4096;

/// A box on a page, in PDF user-space points, measured from the page's lower-left corner
/// (the MediaBox origin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    /// Left edge.
    pub x: f32,
    /// Bottom edge.
    pub y: f32,
    /// Width (> 0).
    pub width: f32,
    /// Height (> 0).
    pub height: f32,
}

/// A decoded PNG: 8-bit RGB samples plus optional 8-bit alpha.
#[derive(Debug, Clone)]
pub struct SignatureImage {
    width: u32,
    height: u32,
    rgb: Vec<u8>,
    alpha: Option<Vec<u8>>,
}

impl SignatureImage {
    /// Decode a PNG (untrusted bytes: errors, never panics).
    pub fn from_png(bytes: &[u8]) -> Result<Self> {
        decode_png(
            bytes,
            MAX_IMAGE_SIDE,
            u64::from(MAX_IMAGE_SIDE) * u64::from(MAX_IMAGE_SIDE),
        )
        .map(|(img, _)| img)
    }

    /// Pixel size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }
}

/// Decode a PNG of at most `max_side` pixels a side and `max_pixels` in all; also returns its
/// resolution in dots per inch when the file has a pHYs chunk in metres.
pub(crate) fn decode_png(
    bytes: &[u8],
    max_side: u32,
    max_pixels: u64,
) -> Result<(SignatureImage, Option<(f32, f32)>)> {
    let mut dec = png::Decoder::new(std::io::Cursor::new(bytes));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| Error::Image(e.to_string()))?;
    let (w, h, dpi) = {
        let info = reader.info();
        #[allow(clippy::cast_precision_loss)]
        let dpi = info
            .pixel_dims
            .filter(|d| d.unit == png::Unit::Meter)
            .map(|d| (d.xppu as f32 * 0.0254, d.yppu as f32 * 0.0254));
        (info.width, info.height, dpi)
    };
    if w == 0 || h == 0 || w > max_side || h > max_side || u64::from(w) * u64::from(h) > max_pixels
    {
        return Err(Error::Image(format!(
            "{w}x{h} pixels is outside 1..={max_side} a side or over {max_pixels} pixels"
        )));
    }
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::Image("image too large".into()))?;
    let mut buf = vec![0; size];
    let frame = reader
        .next_frame(&mut buf)
        .map_err(|e| Error::Image(e.to_string()))?;
    let data = buf.get(..frame.buffer_size()).unwrap_or_default();
    let px = usize::try_from(u64::from(w) * u64::from(h))
        .map_err(|_| Error::Image("too large".into()))?;
    let (rgb, alpha) = match frame.color_type {
        png::ColorType::Rgb => (data.to_vec(), None),
        png::ColorType::Rgba => {
            let mut rgb = Vec::with_capacity(px * 3);
            let mut a = Vec::with_capacity(px);
            for c in data.chunks_exact(4) {
                rgb.extend_from_slice(c.get(..3).unwrap_or(&[0, 0, 0]));
                a.push(c.get(3).copied().unwrap_or(255));
            }
            (rgb, Some(a))
        }
        png::ColorType::Grayscale => (data.iter().flat_map(|&g| [g, g, g]).collect(), None),
        png::ColorType::GrayscaleAlpha => {
            let mut rgb = Vec::with_capacity(px * 3);
            let mut a = Vec::with_capacity(px);
            for c in data.chunks_exact(2) {
                let g = c.first().copied().unwrap_or(0);
                rgb.extend_from_slice(&[g, g, g]);
                a.push(c.get(1).copied().unwrap_or(255));
            }
            (rgb, Some(a))
        }
        png::ColorType::Indexed => return Err(Error::Image("palette not expanded".into())),
    };
    if rgb.len() != px * 3 || alpha.as_ref().is_some_and(|a| a.len() != px) {
        return Err(Error::Image("truncated image data".into()));
    }
    Ok((
        SignatureImage {
            width: w,
            height: h,
            rgb,
            alpha,
        },
        dpi,
    ))
}

/// A block of text lines, drawn from the top-left of the box.
#[derive(Debug, Clone)]
pub struct TextBlock {
    /// Lines, top to bottom.
    pub lines: Vec<String>,
    /// Font size in points; `None` picks the largest that fits (at most 12).
    pub font_size: Option<f32>,
}

impl TextBlock {
    /// The usual block: signer name, signing time, certificate serial number.
    pub fn signer_time_serial(
        cert: &gm_pki::ParsedCertificate,
        time: std::time::SystemTime,
    ) -> Self {
        let name = cert
            .subject_attr(gm_pki::oid::AT_COMMON_NAME)
            .unwrap_or_else(|| cert.subject_string());
        Self {
            lines: vec![
                format!("签名人: {name}"),
                format!("时间: {}", crate::pdf::syntax::human_time(time)),
                format!("证书序列号: {}", cert.serial_hex()),
            ],
            font_size: None,
        }
    }
}

/// One layer of an appearance; layers are drawn in order (later on top).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Layer {
    /// A handwritten signature image, scaled to fit the box (aspect kept, centred).
    Handwriting(SignatureImage),
    /// An electronic seal image (typically a round red seal with transparency), fitted likewise.
    Seal(SignatureImage),
    /// Text.
    Text(TextBlock),
}

/// Where and what to draw.
#[derive(Debug, Clone)]
pub struct Appearance {
    /// Page number, 1-based.
    pub page: u32,
    /// The box.
    pub rect: Rect,
    /// Layers, bottom first.
    pub layers: Vec<Layer>,
}

fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).map_err(|_| Error::Internal("deflate"))?;
    e.finish().map_err(|_| Error::Internal("deflate"))
}

fn num(v: f32) -> String {
    let mut o = Vec::new();
    crate::pdf::syntax::write_object(&mut o, &Object::Real(v));
    String::from_utf8_lossy(&o).into_owned()
}

/// Width of a string in em, roughly: CJK and full-width characters 1 em, others 0.5 em.
fn text_width_em(s: &str) -> f32 {
    s.chars()
        .map(|c| if u32::from(c) < 0x2E80 { 0.5 } else { 1.0 })
        .sum()
}

/// The image XObject of `img` (RGB, Flate) with its alpha as /SMask; returns its number.
pub(crate) fn image_xobject(
    img: &SignatureImage,
    alloc: &mut dyn FnMut() -> u32,
    objects: &mut Vec<(u32, Object)>,
) -> Result<u32> {
    let id = alloc();
    let base = |space: &[u8]| {
        let mut d = Dictionary::new();
        d.set("Type", Object::Name(b"XObject".to_vec()));
        d.set("Subtype", Object::Name(b"Image".to_vec()));
        d.set("Width", Object::Integer(i64::from(img.width)));
        d.set("Height", Object::Integer(i64::from(img.height)));
        d.set("ColorSpace", Object::Name(space.to_vec()));
        d.set("BitsPerComponent", Object::Integer(8));
        d.set("Filter", Object::Name(b"FlateDecode".to_vec()));
        d
    };
    let mut d = base(b"DeviceRGB");
    if let Some(a) = &img.alpha {
        let sid = alloc();
        objects.push((
            sid,
            Object::Stream(Stream::new(base(b"DeviceGray"), deflate(a)?)),
        ));
        d.set("SMask", Object::Reference((sid, 0)));
    }
    objects.push((id, Object::Stream(Stream::new(d, deflate(&img.rgb)?))));
    Ok(id)
}

/// Objects an appearance adds: the form XObject (last) and its resources (images, font).
pub(crate) struct Built {
    /// (object number, object) for each new object; the appearance stream is `ap_id`.
    pub objects: Vec<(u32, Object)>,
    pub ap_id: u32,
}

/// Build the appearance stream for a box of `w`×`h` points. `alloc` hands out object numbers.
pub(crate) fn build(app: &Appearance, alloc: &mut dyn FnMut() -> u32) -> Result<Built> {
    let (w, h) = (app.rect.width, app.rect.height);
    if !(w.is_finite() && h.is_finite() && w > 0.0 && h > 0.0) {
        return Err(Error::InvalidArgument(
            "appearance box must have a positive size".into(),
        ));
    }
    let mut objects = Vec::new();
    let mut xobjects = Dictionary::new();
    let mut font_id = None;
    let mut ops = String::new();
    for (i, layer) in app.layers.iter().enumerate() {
        match layer {
            Layer::Handwriting(img) | Layer::Seal(img) => {
                let id = image_xobject(img, alloc, &mut objects)?;
                let name = format!("Im{i}");
                xobjects.set(name.clone(), Object::Reference((id, 0)));
                // Fit, keep aspect, centre.
                #[allow(clippy::cast_precision_loss)]
                let (iw, ih) = (img.width as f32, img.height as f32);
                let scale = (w / iw).min(h / ih);
                let (dw, dh) = (iw * scale, ih * scale);
                let (dx, dy) = ((w - dw) / 2.0, (h - dh) / 2.0);
                let _ = writeln!(
                    ops,
                    "q {} 0 0 {} {} {} cm /{name} Do Q",
                    num(dw),
                    num(dh),
                    num(dx),
                    num(dy)
                );
            }
            Layer::Text(tb) => {
                font_id.get_or_insert_with(&mut *alloc);
                let n = tb.lines.len().max(1);
                #[allow(clippy::cast_precision_loss)]
                let nf = n as f32;
                let widest = tb
                    .lines
                    .iter()
                    .map(|l| text_width_em(l))
                    .fold(1.0f32, f32::max);
                let pad = 2.0f32;
                let size = tb.font_size.unwrap_or_else(|| {
                    ((w - 2.0 * pad) / widest)
                        .min((h - 2.0 * pad) / (nf * 1.2))
                        .clamp(2.0, 12.0)
                });
                ops.push_str("BT 0 g /F1 ");
                ops.push_str(&num(size));
                ops.push_str(" Tf ");
                ops.push_str(&num(size * 1.2));
                ops.push_str(" TL ");
                let _ = writeln!(ops, "{} {} Td", num(pad), num(h - pad - size));
                for (k, line) in tb.lines.iter().enumerate() {
                    if k > 0 {
                        ops.push_str("T* ");
                    }
                    ops.push('<');
                    for u in line.encode_utf16() {
                        let _ = write!(ops, "{u:04X}");
                    }
                    ops.push_str("> Tj\n");
                }
                ops.push_str("ET\n");
            }
        }
    }
    let mut resources = Dictionary::new();
    if !xobjects.is_empty() {
        resources.set("XObject", Object::Dictionary(xobjects));
    }
    if let Some(fid) = font_id {
        let mut fonts = Dictionary::new();
        fonts.set("F1", Object::Reference((fid, 0)));
        resources.set("Font", Object::Dictionary(fonts));
        objects.push((fid, cjk_font()));
    }
    let ap_id = alloc();
    let mut d = Dictionary::new();
    d.set("Type", Object::Name(b"XObject".to_vec()));
    d.set("Subtype", Object::Name(b"Form".to_vec()));
    d.set(
        "BBox",
        Object::Array(vec![0.into(), 0.into(), Object::Real(w), Object::Real(h)]),
    );
    d.set("Resources", Object::Dictionary(resources));
    d.set("Filter", Object::Name(b"FlateDecode".to_vec()));
    objects.push((
        ap_id,
        Object::Stream(Stream::new(d, deflate(ops.as_bytes())?)),
    ));
    Ok(Built { objects, ap_id })
}

/// An empty appearance (for invisible signatures some validators still want /AP).
pub(crate) fn empty_form() -> Object {
    let mut d = Dictionary::new();
    d.set("Type", Object::Name(b"XObject".to_vec()));
    d.set("Subtype", Object::Name(b"Form".to_vec()));
    d.set(
        "BBox",
        Object::Array(vec![0.into(), 0.into(), 0.into(), 0.into()]),
    );
    Object::Stream(Stream::new(d, Vec::new()))
}

/// Type0 STSong-Light, UniGB-UCS2-H (ISO 32000-1 §9.7.5.2 predefined CMap; Adobe-GB1).
fn cjk_font() -> Object {
    let mut info = Dictionary::new();
    info.set("Registry", Object::string_literal("Adobe"));
    info.set("Ordering", Object::string_literal("GB1"));
    info.set("Supplement", Object::Integer(2));
    let mut fd = Dictionary::new();
    fd.set("Type", Object::Name(b"FontDescriptor".to_vec()));
    fd.set("FontName", Object::Name(b"STSong-Light".to_vec()));
    fd.set("Flags", Object::Integer(6));
    fd.set(
        "FontBBox",
        Object::Array(vec![(-25).into(), (-254).into(), 1000.into(), 880.into()]),
    );
    fd.set("ItalicAngle", Object::Integer(0));
    fd.set("Ascent", Object::Integer(880));
    fd.set("Descent", Object::Integer(-120));
    fd.set("CapHeight", Object::Integer(880));
    fd.set("StemV", Object::Integer(93));
    let mut cid = Dictionary::new();
    cid.set("Type", Object::Name(b"Font".to_vec()));
    cid.set("Subtype", Object::Name(b"CIDFontType0".to_vec()));
    cid.set("BaseFont", Object::Name(b"STSong-Light".to_vec()));
    cid.set("CIDSystemInfo", Object::Dictionary(info));
    cid.set("FontDescriptor", Object::Dictionary(fd));
    cid.set("DW", Object::Integer(1000));
    // Half-width Latin CIDs 1..95 in Adobe-GB1.
    cid.set("W", Object::Array(vec![1.into(), 95.into(), 500.into()]));
    let mut f = Dictionary::new();
    f.set("Type", Object::Name(b"Font".to_vec()));
    f.set("Subtype", Object::Name(b"Type0".to_vec()));
    f.set(
        "BaseFont",
        Object::Name(b"STSong-Light-UniGB-UCS2-H".to_vec()),
    );
    f.set("Encoding", Object::Name(b"UniGB-UCS2-H".to_vec()));
    f.set(
        "DescendantFonts",
        Object::Array(vec![Object::Dictionary(cid)]),
    );
    Object::Dictionary(f)
}

/// A plain round red seal picture (PNG, `size`×`size`, transparent outside the ring): a double
/// ring and a five-pointed star. Used until an organisation uploads its own seal picture; the
/// organisation's name is drawn next to it as text, so no font is needed here.
pub fn round_seal_png(size: u32) -> Result<Vec<u8>> {
    if !(32..=MAX_IMAGE_SIDE).contains(&size) {
        return Err(Error::InvalidArgument("seal picture size 32..=4096".into()));
    }
    #[allow(clippy::cast_precision_loss)]
    let s = size as f32;
    let c = s / 2.0;
    // Star: a point is inside when it is inside the pentagram's polygon (even-odd rule).
    let star: Vec<(f32, f32)> = (0..10)
        .map(|k| {
            #[allow(clippy::cast_precision_loss)]
            let a = std::f32::consts::PI / 5.0 * k as f32 - std::f32::consts::FRAC_PI_2;
            let r = if k % 2 == 0 { 0.2 * s } else { 0.08 * s };
            (c + r * a.cos(), c + r * a.sin())
        })
        .collect();
    let inside_star = |x: f32, y: f32| {
        let mut inside = false;
        let mut j = star.len() - 1;
        for i in 0..star.len() {
            let (Some(&(xi, yi)), Some(&(xj, yj))) = (star.get(i), star.get(j)) else {
                break;
            };
            if (yi > y) != (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi {
                inside = !inside;
            }
            j = i;
        }
        inside
    };
    let mut rgba = Vec::with_capacity((size * size * 4) as usize);
    for py in 0..size {
        for px in 0..size {
            #[allow(clippy::cast_precision_loss)]
            let (x, y) = (px as f32 + 0.5, py as f32 + 0.5);
            let d = ((x - c).powi(2) + (y - c).powi(2)).sqrt() / s;
            let on = (0.44..=0.49).contains(&d) || (0.40..=0.415).contains(&d) || inside_star(x, y);
            rgba.extend_from_slice(&if on { [210, 20, 30, 255] } else { [0, 0, 0, 0] });
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, size, size);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|_| Error::Internal("png header"))?;
        w.write_image_data(&rgba)
            .map_err(|_| Error::Internal("png data"))?;
    }
    Ok(out)
}
